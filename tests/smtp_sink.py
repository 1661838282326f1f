"""A real SMTP server for the tests (aiosmtpd): keeps every mail, counts connections,
answers a recipient as told, and speaks STARTTLS, implicit TLS and AUTH with a CA of
its own made here (so the client verifies a certificate, as it must in production)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers import free_port

HOST = "127.0.0.1"


@dataclass
class Sink:
    """What the server saw, and how it answers recipients (address → replies, in turn)."""

    mails: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    connections: int = 0
    answers: dict[str, list[str]] = field(default_factory=dict)
    logins: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for rcpt, m in self.mails if address in rcpt]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        with self.lock:
            queue = self.answers.get(address)
            answer = queue.pop(0) if queue else "250 OK"
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = message_from_bytes(data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.mails.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"mailer",
            b"p@ss:word",
        )
        if ok:
            with self.lock:
                self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=ok)


class _Counting(Controller):
    def __init__(self, sink: Sink, **kwargs: Any) -> None:
        self.sink = sink
        super().__init__(sink, **kwargs)

    def factory(self) -> SMTP:
        with self.sink.lock:
            self.sink.connections += 1
        return super().factory()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Certs:
    """A test CA and a server certificate for 127.0.0.1 signed by it."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def client(self) -> ssl.SSLContext:
        """A verifying client context trusting only the test CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def server(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context


def make_certs(folder: Path) -> Certs:
    """A CA and a certificate for 127.0.0.1, valid for a day."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "statusbot test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    certs = Certs(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    certs.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    certs.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certs.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certs


@contextmanager
def running(
    sink: Sink,
    *,
    starttls: Certs | None = None,
    implicit_tls: Certs | None = None,
    auth: bool = False,
    auth_require_tls: bool = True,
) -> Iterator[int]:
    """An SMTP server on a free port while the block runs; its port."""
    port = free_port()
    kwargs: dict[str, Any] = {"hostname": HOST, "port": port}
    if starttls is not None:
        kwargs["tls_context"] = starttls.server()
    if implicit_tls is not None:
        kwargs["ssl_context"] = implicit_tls.server()
    if auth:
        kwargs["authenticator"] = sink.authenticate
        kwargs["auth_require_tls"] = auth_require_tls
    else:
        kwargs["auth_require_tls"] = False
    controller = _Counting(sink, **kwargs)
    controller.start()
    with sink.lock:
        sink.connections = 0  # the controller's own readiness probe
    try:
        yield port
    finally:
        controller.stop()
