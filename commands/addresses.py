"""Checks on where a subscriber is told: an email address, a webhook URL (SPEC §9).

These are checks of form only. Whether a webhook's host is one statusbot may
call (not loopback, private, link-local…) is the webhook deliverer's to judge,
at sign-up and at every delivery; `validate_endpoint` is the one place a
sign-up path calls for the form, so that check sits beside it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from commands import words
from commands.errors import CommandError
from storage.escaping import escape


def check_email(address: str, usage: str | None = None) -> str:
    """A well-formed email address, normalised (the domain in lower case, IDNA decoded)."""
    text = address.strip()
    if not text:
        raise CommandError("Give an email address, e.g. ops@example.com.", usage)
    if len(text) > words.MAX_EMAIL:
        raise CommandError(
            f"That email address is {len(text)} characters long; the most is {words.MAX_EMAIL}.",
            usage,
        )
    try:
        # No DNS here: a command must answer at once, and a typo'd domain is the
        # confirmation mail's to find out.
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise CommandError(
            f"'{escape(text)}' is not an email address: {escape(str(error))}", usage
        ) from error
    return str(checked.normalized)


def validate_endpoint(url: str, usage: str | None = None) -> str:
    """A webhook URL of the right form: http(s), a host, no credentials, ≤ 2,048 characters."""
    text = url.strip()
    if not text:
        raise CommandError("Give the webhook's URL, e.g. https://example.com/hooks/status.", usage)
    if len(text) > words.MAX_URL:
        raise CommandError(
            f"That URL is {len(text):,} characters long; the most is {words.MAX_URL:,}.", usage
        )
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise CommandError("A webhook URL can't contain spaces or control characters.", usage)
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as error:
        message = f"'{escape(text)}' is not a URL: {escape(str(error))}."
        raise CommandError(message, usage) from error
    if parts.scheme.lower() not in ("http", "https"):
        raise CommandError(
            f"A webhook URL starts with https:// (or http://), not '{escape(parts.scheme)}:'.",
            usage,
        )
    if not host:
        raise CommandError(f"'{escape(text)}' has no host name.", usage)
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in logs and proxies; receivers check the signature.
        raise CommandError(
            "A webhook URL can't carry a user name or password; statusbot signs each "
            "delivery (Standard Webhooks) so the receiver can check it instead.",
            usage,
        )
    return text
