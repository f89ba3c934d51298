"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives.

It speaks the protocol for real (EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA) in a thread of
its own; a test can tell it to answer RCPT or DATA with any code (450 for "try later",
550 for "no such user") to see how the connector words the failure.

Two TLS variants use the session's test certificate (`tests.peers.dovecot.tls_certificate`):
`smtp_tls_server` is TLS from the first byte (port 465's job), `smtp_starttls_server` offers
STARTTLS and refuses mail until the client has used it (port 587's job). Each received mail
records whether it came over TLS, so a test sees that the connector really encrypted.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.peers.dovecot import TlsCertificate, free_port, tls_certificate  # noqa: F401 - fixture

SMTP_USER = "support"
SMTP_PASSWORD = "secret pass"


@dataclass
class ReceivedMail:
    """One mail as the server took it: the envelope and the parsed message."""

    sender: str
    recipients: list[str]
    raw: bytes
    #: The mail came over an encrypted connection (implicit TLS or after STARTTLS).
    tls: bool = False

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]


@dataclass
class RecordingHandler:
    """aiosmtpd handler: keeps every accepted mail; `rcpt_reply`/`data_reply` override the answer."""

    received: list[ReceivedMail] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str | None = None
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook name
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.data_reply:
            return self.data_reply
        tls = server.transport is not None and server.transport.get_extra_info("ssl_object") is not None
        self.received.append(
            ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content), tls)
        )
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler
    user: str = SMTP_USER
    password: str = SMTP_PASSWORD

    @property
    def received(self) -> list[ReceivedMail]:
        return self.handler.received


@contextlib.contextmanager
def running_smtp(**tls: object) -> Iterator[SmtpServer]:
    """An SMTP server on a free 127.0.0.1 port with one user; `tls` are aiosmtpd's TLS options."""
    handler = RecordingHandler()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == SMTP_USER
            and auth_data.password.decode() == SMTP_PASSWORD
        )
        if ok:
            handler.logins.append(auth_data.login.decode())
        # handled=False makes aiosmtpd answer "535"; its default leaves the client waiting.
        return AuthResult(success=ok, handled=False)

    options: dict[str, object] = {"auth_require_tls": False, **tls}
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_exclude_mechanism=["LOGIN"],
        decode_data=False,
        **options,
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


def server_context(certificate: TlsCertificate) -> ssl.SSLContext:
    """The server side of TLS with `certificate`, for aiosmtpd's `ssl_context`/`tls_context`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)
    return context


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server on a free 127.0.0.1 port for one test, with one user (AUTH without TLS,
    as loopback allows)."""
    with running_smtp() as server:
        yield server


@pytest.fixture
def smtp_tls_server(tls_certificate: TlsCertificate) -> Iterator[SmtpServer]:
    """SMTP over implicit TLS. AUTH is offered without `auth_require_tls`: aiosmtpd only counts
    a connection as encrypted after STARTTLS and would otherwise hide AUTH here, though the
    whole connection is TLS."""
    with running_smtp(ssl_context=server_context(tls_certificate)) as server:
        yield server


@pytest.fixture
def smtp_starttls_server(tls_certificate: TlsCertificate) -> Iterator[SmtpServer]:
    """SMTP with STARTTLS as a submission server does it: AUTH is offered only after STARTTLS
    and mail is refused ("530 Must issue a STARTTLS command first") before it."""
    with running_smtp(tls_context=server_context(tls_certificate), require_starttls=True, auth_require_tls=True) as server:
        yield server
