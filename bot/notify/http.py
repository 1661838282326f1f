"""One webhook POST to an address that was checked first (SPEC §9: no SSRF, no rebinding).

The host is looked up once; every answer must be a public address (commands/
endpoints.py says which are not); then the connection goes to the first checked
address, never to the name again, so a DNS answer that changes between the check
and the connect (DNS rebinding) changes nothing. The Host header, TLS SNI and the
certificate check still use the URL's host name.

urllib3's HTTP(S)Connection does exactly that with documented arguments
(`server_hostname`, `assert_hostname`): the socket goes to the address we give it,
TLS speaks to and verifies the name. It follows no redirects and reads no proxy
settings from the environment (a proxy would connect to the name again). It is
already installed with boto3, and well kept.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from urllib3.connection import HTTPConnection, HTTPSConnection

from commands import endpoints, words

# host, port -> the addresses it resolves to, as text. Injectable: tests never use DNS.
Resolver = Callable[[str, int], Sequence[str]]

DEADLINE = 30.0  # seconds for the whole exchange: Statuspage's limit too
MAX_BODY = 64 * 1024  # of a response body, read for the error message and then dropped


class Refused(Exception):
    """The URL may never be sent to (its shape, or a non-public address): give up."""


class Unresolved(Exception):
    """The host has no address now (DNS failed): may work later."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (socket.getaddrinfo), in its order, once each."""
    found: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


@dataclass(frozen=True, slots=True)
class Target:
    """Where a webhook goes: the URL's parts, and the checked address to connect to."""

    scheme: str
    host: str  # the name, for Host, SNI and the certificate
    port: int
    path: str
    address: str

    @property
    def host_header(self) -> str:
        """The Host header: the name (bracketed if IPv6), with the port unless the default."""
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


def resolve(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> Target:
    """Check `url` and look its host up once; raises Refused or Unresolved."""
    problem = endpoints.url_problem(url)
    if problem is not None:
        raise Refused(problem)
    parts = endpoints.split(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = endpoints.literal_address(host)
    if literal is not None:
        answers: list[endpoints.IPAddress] = [literal]
    else:
        try:
            answers = [ipaddress.ip_address(a.split("%")[0]) for a in resolver(host, port)]
        except (OSError, UnicodeError, ValueError) as exc:
            raise Unresolved(words.ENDPOINT_NO_ADDRESS.format(url=url, error=exc)) from exc
        if not answers:
            raise Unresolved(words.ENDPOINT_NO_ADDRESS.format(url=url, error="no answer"))
    if not allow_private:
        # Every answer, not only the one used: a name with one private answer is refused,
        # so a later lookup that picks another answer can't be steered inside.
        for answer in answers:
            reason = endpoints.refusal(url, answer)
            if reason is not None:
                raise Refused(reason)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, str(answers[0]))


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver said."""

    status: int
    body: bytes
    location: str | None


def post(
    target: Target,
    body: bytes,
    headers: Mapping[str, str],
    *,
    deadline: float = DEADLINE,
    ca_certs: str | None = None,
) -> Answer:
    """POST `body` to the target's checked address; raises OSError (or urllib3's errors,
    which are OSErrors or HTTPErrors) on timeouts and connection failures."""
    connection: HTTPConnection
    if target.scheme == "https":
        connection = HTTPSConnection(
            target.address,
            target.port,
            timeout=deadline,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
        )
    else:
        connection = HTTPConnection(target.address, target.port, timeout=deadline)
    # Timeouts bound each socket operation; the watchdog bounds the whole exchange, so a
    # receiver that trickles a byte at a time can't hold a deliverer longer.
    expired = threading.Event()
    watchdog = threading.Timer(deadline, _abort, args=(connection, expired))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            preload_content=False,  # read at most MAX_BODY of it, below
        )
        response = connection.getresponse()
        data = b""
        with contextlib.suppress(Exception):  # the status is what counts; the body a courtesy
            data = response.read(MAX_BODY)
        return Answer(response.status, data, response.headers.get("Location"))
    except Exception as exc:
        if expired.is_set():
            raise TimeoutError(f"no complete answer within {deadline:g} s") from exc
        raise
    finally:
        watchdog.cancel()
        connection.close()


def _abort(connection: HTTPConnection, expired: threading.Event) -> None:
    expired.set()
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
