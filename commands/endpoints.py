"""Which webhook URLs statusbot may send to (SPEC §9): the pure part of the check.

Sign-up (commands/) and every delivery (bot/notify/webhook.py, which looks the host
up and then connects to the very address checked here) use the same rules, so a
URL refused at one is refused at the other.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit

from commands import words

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# NAT64's well-known prefix: the last 32 bits are an IPv4 address (RFC 6052).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def url_problem(url: str) -> str | None:
    """Why `url` can't be a webhook endpoint by its shape alone, or None: the one rule for
    every way in (Slack, the CLI, the sign-up page) and every delivery. Present, at most
    words.MAX_URL characters, no spaces or control characters, http(s) with a host name
    and a numeric port, no user name or password."""
    text = url.strip()
    if not text:
        return words.ENDPOINT_MISSING
    if len(text) > words.MAX_URL:
        return words.ENDPOINT_TOO_LONG.format(length=len(text), limit=words.MAX_URL)
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        return words.ENDPOINT_SPACES
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError when the port is not a number
    except ValueError:
        return words.ENDPOINT_NOT_HTTP
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return words.ENDPOINT_NOT_HTTP
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in logs and proxies; receivers check the signature.
        return words.ENDPOINT_CREDENTIALS
    return None


def split(url: str) -> SplitResult:
    """The parts of a URL that `url_problem` accepted."""
    return urlsplit(url.strip())


def literal_address(host: str) -> IPAddress | None:
    """The host as an IP address when it is one (`[::1]` as written in a URL too)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def address_problem(address: IPAddress) -> str | None:
    """What kind of non-public address this is ('loopback', 'private', …), or None if public.

    IPv6 forms that carry an IPv4 address (IPv4-mapped, 6to4, NAT64, Teredo) are
    judged by the address inside too: ::ffff:127.0.0.1 is loopback.
    """
    # The address inside first: it says more ("loopback" rather than "reserved").
    for candidate in reversed(_embedded(address)):
        why = _kind(candidate)
        if why is not None:
            return why
    return None


def refusal(url: str, address: IPAddress) -> str | None:
    """The message refusing `url` because its host is at `address`, or None if allowed."""
    why = address_problem(address)
    if why is None:
        return None
    return words.ENDPOINT_PRIVATE.format(url=url, address=address, why=why)


def _embedded(address: IPAddress) -> list[IPAddress]:
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.extend(address.teredo)
        if address in _NAT64 or address in _NAT64_LOCAL:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _kind(address: IPAddress) -> str | None:
    # Order matters only for the word used: the most telling first.
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:  # shared (carrier-grade NAT) space and the like
        return "non-public"
    return None
