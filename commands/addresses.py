"""Checks on where a subscriber is told: an email address, a webhook URL (SPEC §9).

These are checks of form only, one rule each: the email address here, the webhook
URL's shape in commands/endpoints.py (which every delivery asks too). Whether a
webhook's host is one statusbot may call (not loopback, private, link-local…) is
the webhook deliverer's to judge, at sign-up and at every delivery.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from commands import endpoints, words
from commands.errors import CommandError
from storage.escaping import escape


class AddressProblem(ValueError):
    """An email address statusbot won't take; the message (commands/words.py) says why."""


def normalised_email(address: str) -> str:
    """A well-formed email address, normalised (the domain in lower case, IDNA decoded);
    AddressProblem says what is wrong. The one rule for Slack, the CLI, CSV import and
    the sign-up page, each framing the answer its own way."""
    text = address.strip()
    if not text:
        raise AddressProblem(words.EMAIL_MISSING)
    if len(text) > words.MAX_EMAIL:
        raise AddressProblem(words.EMAIL_TOO_LONG.format(length=len(text), limit=words.MAX_EMAIL))
    try:
        # No DNS here: a command must answer at once, and a typo'd domain is the
        # confirmation mail's to find out.
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise AddressProblem(words.EMAIL_BAD.format(why=error)) from error
    return str(checked.normalized)


def check_email(address: str, usage: str | None = None) -> str:
    """normalised_email for a command: a CommandError (escaped for Slack) with the usage."""
    try:
        return normalised_email(address)
    except AddressProblem as problem:
        raise CommandError(escape(str(problem)), usage) from problem


def validate_endpoint(url: str, usage: str | None = None) -> str:
    """A webhook URL of the right form (endpoints.url_problem), stripped; CommandError if not."""
    problem = endpoints.url_problem(url)
    if problem is not None:
        raise CommandError(escape(problem), usage)
    return url.strip()
