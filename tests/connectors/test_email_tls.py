"""The e-mail connector over TLS: IMAP on imaps and with STARTTLS against a real Dovecot, SMTP
with implicit TLS and with STARTTLS against a real aiosmtpd, all on 127.0.0.1.

Every server presents the same throwaway self-signed certificate for localhost/127.0.0.1.
A test trusts it the way an operator trusts a private mail server: `tls_ca_path` names the
certificate. Without that option the connector must refuse the server, because encrypting
to a server nobody vouched for protects nothing. Nothing of ours is mocked; whether a
connection was really encrypted is read from the server side (Dovecot's login log, the
SMTP server's transport), so a connector that quietly skipped STARTTLS would fail here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ChannelContext, PermanentError
from connectors.email import EmailConnector
from tests.connectors.test_email import ADDRESS, MailboxSink, eventually, mail, make_connector, outbound, running
from tests.peers.dovecot import (  # noqa: F401 - fixtures
    DovecotServer,
    dovecot,
    dovecot_server,
    dovecot_tls,
    dovecot_tls_server,
    make_certificate,
    tls_certificate,
)
from tests.peers.smtp import (  # noqa: F401 - fixtures
    SmtpServer,
    running_smtp,
    server_context,
    smtp_server,
    smtp_starttls_server,
    smtp_tls_server,
)


def imap_over(server: DovecotServer, security: str) -> dict[str, Any]:
    """Connector options that reach `server` with `security` and trust its certificate."""
    assert server.certificate is not None and server.tls_port is not None
    port = server.tls_port if security == "tls" else server.port
    return {"imap_security": security, "imap_port": port, "tls_ca_path": str(server.certificate.cert)}


async def tls_logins_after(server: DovecotServer, before: int, count: int = 1) -> list[str]:
    """The Login lines written after the first `before` ones, once there are `count` of them;
    the line is written as the login process hands over, a moment after the client's OK."""
    await eventually(lambda: len(server.logins()) >= before + count, timeout=5)
    return server.logins()[before:]


# -- receiving ---------------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_receives_over_tls_and_idles(dovecot_tls: DovecotServer, tmp_path: Path, security: str):
    """Mail comes in over an encrypted connection, and IDLE still works on it: after STARTTLS
    the connection's transport is swapped underneath aioimaplib, and new mail must still be
    pushed through the swapped one."""
    dovecot_tls.append(mail(1))
    logins_before = len(dovecot_tls.logins())
    sink = MailboxSink()
    # A long poll interval: only IDLE can bring the second mail in within the test's patience.
    connector = make_connector(dovecot_tls, tmp_path, poll_interval=600, **imap_over(dovecot_tls, security))
    async with running(connector, sink) as task:
        await eventually(lambda: task.done() or "<m1@example.org>" in sink.stored)
        (login,) = await tls_logins_after(dovecot_tls, logins_before)
        await asyncio.sleep(0.3)  # in IDLE now
        await asyncio.to_thread(dovecot_tls.append, mail(2))
        await eventually(lambda: task.done() or "<m2@example.org>" in sink.stored, timeout=5)
        assert not task.done(), f"the connector stopped: {task.exception()!r}"
    # Dovecot ends the line with `TLS` for an encrypted login, `secured` for plain loopback.
    assert ", TLS, session=<" in login, login
    assert sink.stored["<m1@example.org>"].body == "Where is my order? #1"
    assert sink.connected_details == ["127.0.0.1, 1 folder"]


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_untrusted_certificate_is_refused_in_words(dovecot_tls: DovecotServer, tmp_path: Path, security: str):
    """Without tls_ca_path the self-signed certificate is nobody's: refused before the password
    is sent, permanently (retrying cannot make it trusted), with the way out named."""
    options = imap_over(dovecot_tls, security)
    del options["tls_ca_path"]
    logins_before = len(dovecot_tls.logins())
    with pytest.raises(PermanentError, match="certificate of 127.0.0.1:.* is not trusted") as refused:
        # Bounded: a connector that skipped the handshake would log in and receive for ever.
        await asyncio.wait_for(make_connector(dovecot_tls, tmp_path, **options).run(MailboxSink()), 10)
    assert "tls_ca_path" in refused.value.reason
    await asyncio.sleep(0.2)
    assert len(dovecot_tls.logins()) == logins_before, "logged in despite the untrusted certificate"


async def test_tls_to_a_plain_port_is_explained(dovecot_tls: DovecotServer, tmp_path: Path):
    """imap_security = "tls" pointed at the STARTTLS port (993 vs 143 mixed up): the server
    answers in plain text and the handshake fails; the reason names the likely mistake."""
    options = {**imap_over(dovecot_tls, "tls"), "imap_port": dovecot_tls.port}
    with pytest.raises(PermanentError, match="imap_port and imap_security"):
        await asyncio.wait_for(make_connector(dovecot_tls, tmp_path, **options).run(MailboxSink()), 10)


async def test_starttls_is_required_not_hoped_for(dovecot: DovecotServer, tmp_path: Path):
    """imap_security = "starttls" against a server that does not offer it (the plain test
    Dovecot, or an attacker who strips the capability): no login in the clear, a permanent
    error that names the alternative."""
    options = {"imap_security": "starttls", "imap_port": dovecot.port}
    with pytest.raises(PermanentError, match="does not offer STARTTLS"):
        await asyncio.wait_for(make_connector(dovecot, tmp_path, **options).run(MailboxSink()), 10)


# -- sending -----------------------------------------------------------------------------------


@pytest.fixture(params=["tls", "starttls"])
def smtp_secure(request: pytest.FixtureRequest) -> tuple[str, SmtpServer]:
    """Each TLS flavour of SMTP with the smtp_security value that matches it."""
    name = "smtp_tls_server" if request.param == "tls" else "smtp_starttls_server"
    return request.param, request.getfixturevalue(name)


async def test_sends_over_tls_and_files_in_sent(dovecot_tls: DovecotServer, smtp_secure: tuple[str, SmtpServer], tmp_path: Path):
    """The mail goes out encrypted, the login happens inside TLS, and the copy for the Sent
    folder goes over IMAP with the same security setting."""
    security, smtp = smtp_secure
    connector = make_connector(
        dovecot_tls, tmp_path, smtp, smtp_security=security, sent_folder="Sent", **imap_over(dovecot_tls, security)
    )
    result = await connector.send(outbound())
    (received,) = smtp.received
    assert received.tls, "the mail went out unencrypted"
    assert smtp.handler.logins == [smtp.user]
    assert received.message["Message-ID"] == result.external_id == "<omniconsole.42.3@shop.example>"
    (copy,) = dovecot_tls.messages("Sent")
    assert b"Message-ID: <omniconsole.42.3@shop.example>" in copy


async def test_smtp_untrusted_certificate_is_refused_in_words(
    dovecot_tls: DovecotServer, smtp_secure: tuple[str, SmtpServer], tmp_path: Path
):
    security, smtp = smtp_secure
    connector = make_connector(dovecot_tls, tmp_path, smtp, smtp_security=security)  # no tls_ca_path
    with pytest.raises(PermanentError, match=f"certificate of 127.0.0.1:{smtp.port} is not trusted") as refused:
        await connector.send(outbound())
    assert "tls_ca_path" in refused.value.reason
    assert smtp.received == [] and smtp.handler.logins == []


async def test_certificate_for_another_name_is_refused(dovecot_tls: DovecotServer, tmp_path: Path):
    """A trusted certificate that names another host is refused too: the hostname is checked,
    not only the signature. (An SMTP server is the cheap peer to give another certificate.)"""
    other = tmp_path / "other-name"
    other.mkdir()
    certificate = await asyncio.to_thread(make_certificate, other, "mail.example.com")
    with running_smtp(ssl_context=server_context(certificate)) as smtp:
        connector = make_connector(dovecot_tls, tmp_path, smtp, smtp_security="tls", tls_ca_path=str(certificate.cert))
        with pytest.raises(PermanentError, match="is not for 127.0.0.1") as refused:
            await connector.send(outbound())
        assert smtp.received == []
    assert "smtp_host" in refused.value.reason


async def test_smtp_tls_on_a_plain_port_is_explained(dovecot_tls: DovecotServer, smtp_server: SmtpServer, tmp_path: Path):
    """smtp_security = "tls" against a server that speaks plain SMTP (465 vs 587 mixed up):
    no retry can fix that, so it is permanent and names the two options to look at."""
    options = imap_over(dovecot_tls, "tls")
    connector = make_connector(dovecot_tls, tmp_path, smtp_server, smtp_security="tls", tls_ca_path=options["tls_ca_path"])
    with pytest.raises(PermanentError, match="smtp_port and smtp_security"):
        await connector.send(outbound())
    assert smtp_server.received == []


async def test_starttls_asked_of_a_server_without_it_is_permanent(
    dovecot_tls: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
):
    """The password is not sent in the clear when STARTTLS is missing (a downgrade looks just
    like this), and the operator is told which setting to change."""
    connector = make_connector(dovecot_tls, tmp_path, smtp_server, smtp_security="starttls")
    with pytest.raises(PermanentError, match="does not offer STARTTLS"):
        await connector.send(outbound())
    assert smtp_server.received == [] and smtp_server.handler.logins == []


# -- doctor ------------------------------------------------------------------------------------


async def test_check_over_tls(dovecot_tls: DovecotServer, smtp_secure: tuple[str, SmtpServer], tmp_path: Path):
    security, smtp = smtp_secure
    connector = make_connector(
        dovecot_tls, tmp_path, smtp, smtp_security=security, sent_folder="Sent", **imap_over(dovecot_tls, security)
    )
    assert await connector.check() == "imap ok (1 folder, IDLE), smtp ok"
    assert smtp.handler.logins == [smtp.user]


async def test_check_names_the_untrusted_certificate(
    dovecot_tls: DovecotServer, smtp_secure: tuple[str, SmtpServer], tmp_path: Path
):
    security, smtp = smtp_secure
    imap = imap_over(dovecot_tls, security)
    del imap["tls_ca_path"]
    with pytest.raises(PermanentError, match="is not trusted"):
        await make_connector(dovecot_tls, tmp_path, smtp, smtp_security=security, **imap).check()
    # IMAP fine (plain on loopback), SMTP untrusted: the doctor gets to SMTP and says the same of it.
    connector = make_connector(dovecot_tls, tmp_path, smtp, smtp_security=security)
    with pytest.raises(PermanentError, match=f"127.0.0.1:{smtp.port} is not trusted"):
        await connector.check()


async def test_unreadable_tls_ca_path_is_explained(tmp_path: Path):
    """A typo in tls_ca_path is the operator's to fix, said before any connection is tried."""
    missing = tmp_path / "no-such-ca.pem"
    settings = {"address": ADDRESS, "imap_host": "127.0.0.1", "imap_security": "tls", "tls_ca_path": str(missing)}
    connector = EmailConnector(ChannelContext(channel_id=3, name="support mailbox", settings=settings, data_dir=tmp_path))
    with pytest.raises(PermanentError, match="cannot load tls_ca_path"):
        await connector.run(MailboxSink())


async def test_starttls_drops_what_the_server_sent_in_the_clear_after_its_ok(tls_certificate, tmp_path: Path):
    """STARTTLS injection (the CVE-2011-0411 class): a man in the middle appends bytes after
    the server's "OK begin TLS", in the clear. They must be thrown away, not read as if they
    had come over TLS: here a half line "* BYE" that would be glued to the first encrypted
    line and end the session. The fake server speaks just enough IMAP for this."""
    import ssl

    seen: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_certificate.cert, tls_certificate.key)

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        capabilities = b"IMAP4rev1 STARTTLS LOGINDISABLED"
        writer.write(b"* OK [CAPABILITY " + capabilities + b"] fake ready\r\n")
        try:
            while line := await reader.readline():
                tag, _, command = line.decode().strip().partition(" ")
                seen.append(command.split(" ")[0].upper())
                if command.upper() == "CAPABILITY":
                    writer.write(b"* CAPABILITY " + capabilities + b"\r\n" + tag.encode() + b" OK done\r\n")
                elif command.upper() == "STARTTLS":
                    writer.write(tag.encode() + b" OK begin TLS now\r\n* BYE injected in the clear ")
                    await writer.drain()
                    await writer.start_tls(context)
                    capabilities = b"IMAP4rev1 AUTH=PLAIN"
                elif command.upper().startswith("LOGIN"):
                    writer.write(tag.encode() + b" NO [AUTHENTICATIONFAILED] this test ends here\r\n")
                else:
                    writer.write(tag.encode() + b" BAD unknown here\r\n")
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = {
        "address": "support@shop.example",
        "imap_host": "127.0.0.1",
        "imap_port": port,
        "imap_security": "starttls",
        "imap_user": "support",
        "imap_password": "secret",
        "tls_ca_path": str(tls_certificate.cert),
        "folders": ["INBOX"],
    }
    connector = EmailConnector(ChannelContext(channel_id=1, name="mitm", settings=settings, data_dir=tmp_path))
    try:
        with pytest.raises(PermanentError, match="refused the login"):
            await asyncio.wait_for(connector.run(MailboxSink()), 10)
    finally:
        await connector.close()
        server.close()
        await server.wait_closed()
    assert "STARTTLS" in seen and "LOGIN" in seen  # the login went over TLS, the session was not ended
