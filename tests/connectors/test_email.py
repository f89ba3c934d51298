"""The e-mail connector against a real Dovecot (IMAP) and a real aiosmtpd (SMTP) on 127.0.0.1.

Nothing of ours is mocked. The sink stands in for the core: it commits a batch and its cursor
together, and counts every delivery, so "nothing lost, nothing doubled" is checked by
counting unique external ids against deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from connectors.base import (
    ChannelContext,
    DeliveryUpdate,
    InboundMessage,
    OutboundMessage,
    PermanentError,
    TransientError,
)
from connectors.email import EmailConnector, imap_utf7, reply_subject, uid_set
from omniconsole.models import IdentityKind
from tests.peers.dovecot import DovecotServer, dovecot, dovecot_server  # noqa: F401 - fixtures
from tests.peers.smtp import SmtpServer, smtp_server  # noqa: F401 - fixture
from tests.waiting import eventually

ADDRESS = "support@shop.example"


class MailboxSink:
    """An InboundSink that commits each batch and its cursor together, like the core, and
    keeps one row per external id (the core's `(channel, external_id)` uniqueness)."""

    def __init__(self, cursor: str | None = None, on_deliver: Callable[[int], None] | None = None):
        self._cursor = cursor
        self.stored: dict[str, InboundMessage] = {}
        self.deliveries: list[str] = []
        self.batches = 0
        self.connected_details: list[str] = []
        self.on_deliver = on_deliver

    @property
    def cursor(self) -> str | None:
        return self._cursor

    async def deliver(self, messages: Sequence[InboundMessage], cursor: str | None) -> None:
        await asyncio.sleep(0)  # a real commit yields; cancellation may land here
        for message in messages:
            self.deliveries.append(message.external_id)
            self.stored.setdefault(message.external_id, message)
        self._cursor = cursor
        self.batches += 1
        if self.on_deliver:
            self.on_deliver(self.batches)

    async def delivery_updates(self, updates: Sequence[DeliveryUpdate]) -> None:
        pass

    def connected(self, detail: str = "") -> None:
        self.connected_details.append(detail)


def mail(number: int, *, subject: str = "Order question", body: str = "Where is my order?", extra: str = "") -> bytes:
    return (
        f"From: Customer {number} <customer{number}@example.org>\r\n"
        f"To: {ADDRESS}\r\nSubject: {subject} {number}\r\n"
        f"Date: Mon, 02 Mar 2026 10:{number % 60:02d}:00 +0300\r\n"
        f"Message-ID: <m{number}@example.org>\r\n{extra}"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body} #{number}\r\n"
    ).encode()


def make_connector(server: DovecotServer, tmp_path: Path, smtp: SmtpServer | None = None, **options: Any) -> EmailConnector:
    settings: dict[str, Any] = {
        "address": ADDRESS,
        "display_name": "Shop Support",
        "imap_host": server.host,
        "imap_port": server.port,
        "imap_security": "plain",
        "imap_user": server.user,
        "imap_password": server.password,
        "folders": ["INBOX"],
        "poll_interval": 0.3,
    }
    if smtp is not None:
        settings.update(
            smtp_host=smtp.host, smtp_port=smtp.port, smtp_security="plain", smtp_user=smtp.user, smtp_password=smtp.password
        )
    settings.update(options)
    return EmailConnector(ChannelContext(channel_id=3, name="support mailbox", settings=settings, data_dir=tmp_path))


@contextlib.asynccontextmanager
async def running(connector: EmailConnector, sink: MailboxSink) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(connector.run(sink))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def cursor_uid(sink: MailboxSink, folder: str = "INBOX") -> int:
    return json.loads(sink.cursor or "{}").get(folder, {}).get("uid", -1)


# -- receiving ---------------------------------------------------------------------------------


async def test_receives_mail_with_threading_keys(dovecot: DovecotServer, tmp_path: Path):
    dovecot.append(mail(1))
    dovecot.append(
        mail(
            2,
            subject="Re: Order question",
            extra="In-Reply-To: <omniconsole.7.3@shop.example>\r\nReferences: <m1@example.org> <omniconsole.7.3@shop.example>\r\n",
        )
    )
    sink = MailboxSink()
    async with running(make_connector(dovecot, tmp_path), sink) as task:
        await eventually(lambda: task.done() or len(sink.stored) == 2)
    assert sink.connected_details == ["127.0.0.1, 1 folder"]
    first, second = sink.stored["<m1@example.org>"], sink.stored["<m2@example.org>"]
    assert (first.identity_kind, first.address, first.sender_name) == (IdentityKind.EMAIL, "customer1@example.org", "Customer 1")
    assert first.body == "Where is my order? #1"
    assert second.thread_key == "<m2@example.org>"
    assert second.reply_to_keys == ("<omniconsole.7.3@shop.example>", "<m1@example.org>")
    assert second.meta["folder"] == "INBOX"
    cursor = json.loads(sink.cursor)
    assert cursor["INBOX"] == {"uidvalidity": dovecot.uidvalidity(), "uid": dovecot.last_uid()}


async def test_idle_wakes_on_new_mail(dovecot: DovecotServer, tmp_path: Path):
    sink = MailboxSink()
    # A long poll interval: only IDLE can bring the new mail in within the test's patience.
    connector = make_connector(dovecot, tmp_path, poll_interval=600)
    async with running(connector, sink) as task:
        await eventually(lambda: task.done() or sink.batches >= 1)
        await asyncio.sleep(0.3)  # in IDLE now
        started = time.monotonic()
        await asyncio.to_thread(dovecot.append, mail(5))
        await eventually(lambda: task.done() or "<m5@example.org>" in sink.stored, timeout=5)
        assert time.monotonic() - started < 3
    assert not task.cancelled() or "<m5@example.org>" in sink.stored


async def test_several_folders_each_with_its_own_cursor(dovecot: DovecotServer, tmp_path: Path):
    dovecot.create_folder("Заказы")
    dovecot.append(mail(1))
    dovecot.append(mail(2), folder="Заказы")
    sink = MailboxSink()
    async with running(make_connector(dovecot, tmp_path, folders=["INBOX", "Заказы"]), sink) as task:
        await eventually(lambda: task.done() or len(sink.stored) == 2)
        await asyncio.to_thread(dovecot.append, mail(3), "Заказы")
        # The second folder is polled (IDLE watches the first), at poll_interval.
        await eventually(lambda: task.done() or len(sink.stored) == 3)
    cursor = json.loads(sink.cursor)
    assert cursor["INBOX"]["uid"] == dovecot.last_uid() and cursor["Заказы"]["uid"] == dovecot.last_uid("Заказы")
    assert sink.stored["<m3@example.org>"].meta["folder"] == "Заказы"
    assert sink.connected_details == ["127.0.0.1, 2 folders"]


async def test_restart_in_the_middle_of_a_sync_loses_and_doubles_nothing(dovecot: DovecotServer, tmp_path: Path):
    total = 600
    await asyncio.to_thread(dovecot.append_many, [mail(n) for n in range(total)])
    last = dovecot.last_uid()
    stop_after = asyncio.Event()
    sink = MailboxSink(on_deliver=lambda batches: batches == 3 and stop_after.set())
    connector = make_connector(dovecot, tmp_path)
    connector.fetch_batch = 50
    async with running(connector, sink):
        await asyncio.wait_for(stop_after.wait(), 10)
    # Cancelled mid-folder: some batches in, the cursor at the last committed one.
    assert 150 <= len(sink.stored) < total
    assert cursor_uid(sink) == last - total + len(sink.deliveries)

    restarted = make_connector(dovecot, tmp_path)
    restarted.fetch_batch = 50
    async with running(restarted, sink) as task:
        await eventually(lambda: task.done() or cursor_uid(sink) == last)
    assert len(sink.stored) == total
    assert len(sink.deliveries) == total, "a committed batch was delivered again"
    assert max(Counter(sink.deliveries).values()) == 1


async def test_uidvalidity_change_resyncs_without_doubling(dovecot: DovecotServer, tmp_path: Path):
    await asyncio.to_thread(dovecot.append_many, [mail(n) for n in range(1, 6)])
    sink = MailboxSink()
    async with running(make_connector(dovecot, tmp_path), sink) as task:
        await eventually(lambda: task.done() or len(sink.stored) == 5)
    old_cursor = json.loads(sink.cursor)["INBOX"]
    ids_before = set(sink.stored)

    new_validity = await asyncio.to_thread(dovecot.change_uidvalidity)
    await asyncio.to_thread(dovecot.append, mail(6))  # one genuinely new mail
    async with running(make_connector(dovecot, tmp_path), sink) as task:
        await eventually(lambda: task.done() or json.loads(sink.cursor)["INBOX"]["uidvalidity"] == new_validity)
    assert new_validity != old_cursor["uidvalidity"]
    # Re-read from UID 1 under the new UIDVALIDITY: same external ids, one new message.
    assert set(sink.stored) == ids_before | {"<m6@example.org>"}
    assert Counter(sink.deliveries)["<m6@example.org>"] == 1
    assert json.loads(sink.cursor)["INBOX"]["uid"] == dovecot.last_uid() == 6


async def test_unreadable_mail_does_not_stop_the_mailbox(dovecot: DovecotServer, tmp_path: Path):
    dovecot.append(b"\x00\x01\x02 binary rubbish \xff\xfe\r\n\r\n\x00")
    dovecot.append(mail(9))
    sink = MailboxSink()
    async with running(make_connector(dovecot, tmp_path), sink) as task:
        await eventually(lambda: task.done() or len(sink.stored) == 2)
    flags = sorted(sorted(m.flags) for m in sink.stored.values())
    assert flags == [[], ["unreadable"]]


# -- refusals ----------------------------------------------------------------------------------


async def test_bad_password_is_permanent(dovecot: DovecotServer, tmp_path: Path):
    connector = make_connector(dovecot, tmp_path, imap_password="wrong")
    with pytest.raises(PermanentError, match=f"refused the login for {dovecot.user}"):
        await connector.run(MailboxSink())


async def test_plain_is_refused_for_a_remote_host(tmp_path: Path):
    connector = EmailConnector(
        ChannelContext(
            3,
            "m",
            {
                "address": ADDRESS,
                "imap_host": "imap.example.com",
                "imap_security": "plain",
                "smtp_host": "smtp.example.com",
                "smtp_security": "plain",
            },
            tmp_path,
        )
    )
    with pytest.raises(PermanentError, match="unencrypted.*imap.example.com"):
        await connector.run(MailboxSink())
    with pytest.raises(PermanentError, match="unencrypted.*smtp.example.com"):
        await connector.send(outbound())
    with pytest.raises(PermanentError, match="unencrypted"):
        await connector.check()


async def test_unreachable_server_is_transient(tmp_path: Path):
    from tests.peers.dovecot import free_port

    connector = EmailConnector(
        ChannelContext(
            3, "m", {"address": ADDRESS, "imap_host": "127.0.0.1", "imap_port": free_port(), "imap_security": "plain"}, tmp_path
        )
    )
    with pytest.raises(TransientError, match="refused the connection"):
        await connector.run(MailboxSink())


async def test_missing_folder_is_permanent(dovecot: DovecotServer, tmp_path: Path):
    with pytest.raises(PermanentError, match="no folder 'Nope'"):
        await make_connector(dovecot, tmp_path, folders=["Nope"]).run(MailboxSink())


async def test_bad_settings_are_explained(tmp_path: Path):
    connector = EmailConnector(ChannelContext(3, "m", {"address": "nobody", "imap_host": "x"}, tmp_path))
    with pytest.raises(PermanentError, match="address"):
        await connector.run(MailboxSink())


# -- sending -----------------------------------------------------------------------------------


def outbound(**fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "id": 42,
        "conversation_id": 7,
        "identity_kind": IdentityKind.EMAIL,
        "address": "ivan@example.ru",
        "body": "Здравствуйте, Иван! Посылка уже в пути.",
        "subject": "Где мой заказ?",
        "thread_key": "<question-1@example.ru>",
        "reply_to_keys": ("<question-1@example.ru>", "<reply-2@example.ru>"),
    }
    values.update(fields)
    return OutboundMessage(**values)


async def test_send_threads_the_reply_and_fixes_the_message_id(dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path):
    attachment = tmp_path / "Счёт 1042.pdf"
    attachment.write_bytes(b"%PDF-1.4 invoice")
    connector = make_connector(dovecot, tmp_path, smtp_server)
    result = await connector.send(outbound(attachments=(attachment,)))
    assert result.external_id == result.thread_key == "<omniconsole.42.3@shop.example>"
    (received,) = smtp_server.received
    assert received.sender == ADDRESS and received.recipients == ["ivan@example.ru"]
    message = received.message
    assert message["Message-ID"] == "<omniconsole.42.3@shop.example>"
    assert message["In-Reply-To"] == "<reply-2@example.ru>"
    assert message["References"] == "<question-1@example.ru> <reply-2@example.ru>"
    assert message["Subject"] == "Re: Где мой заказ?"
    assert message["From"].addresses[0].display_name == "Shop Support"
    assert message["From"].addresses[0].addr_spec == ADDRESS
    assert message.get_body(("plain",)).get_content().strip() == "Здравствуйте, Иван! Посылка уже в пути."
    (file,) = list(message.iter_attachments())
    assert file.get_filename() == "Счёт 1042.pdf" and file.get_content() == b"%PDF-1.4 invoice"
    assert smtp_server.handler.logins == [smtp_server.user]

    # A retry after a crash is the very same mail.
    await connector.send(outbound(attachments=(attachment,)))
    assert smtp_server.received[1].message["Message-ID"] == message["Message-ID"]


async def test_an_answer_rendered_as_html_goes_as_an_alternative_part(
    dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
):
    from omniconsole.answers.render import render

    attachment = tmp_path / "label.pdf"
    attachment.write_bytes(b"%PDF-1.4 label")
    rendered = render("**Заказ 1042** в пути: [трек](https://track.example/1042) <script>x</script>", "email")
    connector = make_connector(dovecot, tmp_path, smtp_server)
    await connector.send(outbound(body=rendered.text, meta={"chat_id": None, **rendered.meta}, attachments=(attachment,)))
    message = smtp_server.received[0].message
    plain = message.get_body(("plain",)).get_content()
    html_part = message.get_body(("html",))
    assert html_part is not None, "no text/html part"
    html_text = html_part.get_content()
    assert "Заказ 1042 в пути: трек (https://track.example/1042)" in plain
    assert "<strong>Заказ 1042</strong>" in html_text and '<a href="https://track.example/1042">трек</a>' in html_text
    assert "<script>" not in html_text and "&lt;script&gt;" in html_text  # the article's raw HTML is text
    # Plain first, HTML second inside one multipart/alternative; the file still goes along.
    alternative = next(part for part in message.walk() if part.get_content_type() == "multipart/alternative")
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    (file,) = list(message.iter_attachments())
    assert file.get_filename() == "label.pdf"

    # Without an HTML rendering the mail stays a single text part.
    await connector.send(outbound())
    assert smtp_server.received[1].message.get_content_type() == "text/plain"


async def test_our_reply_is_read_back_as_part_of_the_thread(dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path):
    """The customer's mail program answers our reply; the answer carries our Message-ID."""
    connector = make_connector(dovecot, tmp_path, smtp_server)
    sent = await connector.send(outbound())
    ours = smtp_server.received[0].message
    dovecot.append(
        mail(
            11,
            subject="Re: Где мой заказ?",
            extra=f"In-Reply-To: {ours['Message-ID']}\r\nReferences: {ours['References']} {ours['Message-ID']}\r\n",
        )
    )
    sink = MailboxSink()
    async with running(connector, sink) as task:
        await eventually(lambda: task.done() or len(sink.stored) == 1)
    (answer,) = sink.stored.values()
    assert answer.reply_to_keys[0] == sent.thread_key
    assert "<question-1@example.ru>" in answer.reply_to_keys


async def test_subject_is_not_prefixed_twice():
    assert reply_subject("Re: Заказ") == "Re: Заказ"
    assert reply_subject("RE:Заказ") == "RE:Заказ"
    assert reply_subject("Заказ") == "Re: Заказ"


async def test_smtp_5xx_is_permanent_in_the_servers_words(dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path):
    smtp_server.handler.rcpt_reply = "550 5.1.1 No such user here"
    with pytest.raises(PermanentError, match="550 5.1.1 No such user here"):
        await make_connector(dovecot, tmp_path, smtp_server).send(outbound())


async def test_smtp_4xx_is_transient(dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path):
    smtp_server.handler.data_reply = "451 4.3.0 Mailbox temporarily unavailable"
    with pytest.raises(TransientError, match="451"):
        await make_connector(dovecot, tmp_path, smtp_server).send(outbound())


async def test_smtp_bad_login_is_permanent(dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path):
    connector = make_connector(dovecot, tmp_path, smtp_server, smtp_password="wrong")
    with pytest.raises(PermanentError, match="refused the login"):
        await connector.send(outbound())


async def test_smtp_down_is_transient(dovecot: DovecotServer, tmp_path: Path):
    from tests.peers.dovecot import free_port

    connector = make_connector(dovecot, tmp_path, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="plain")
    with pytest.raises(TransientError):
        await connector.send(outbound())


async def test_copy_in_sent_folder_once(dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path):
    connector = make_connector(dovecot, tmp_path, smtp_server, sent_folder="Sent")
    await connector.send(outbound())
    await connector.send(outbound())  # a retry: the Sent folder keeps one copy
    (copy,) = dovecot.messages("Sent")
    assert b"Message-ID: <omniconsole.42.3@shop.example>" in copy


async def test_a_missing_sent_folder_does_not_fail_the_send(
    dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path, caplog
):
    connector = make_connector(dovecot, tmp_path, smtp_server, sent_folder="No Such Folder")
    result = await connector.send(outbound())
    assert result.external_id == "<omniconsole.42.3@shop.example>"
    assert len(smtp_server.received) == 1
    assert "could not file it in No Such Folder" in caplog.text


# -- doctor ------------------------------------------------------------------------------------


async def test_check_reports_both_sides(dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path):
    assert await make_connector(dovecot, tmp_path, smtp_server, sent_folder="Sent").check() == "imap ok (1 folder, IDLE), smtp ok"
    with pytest.raises(PermanentError, match="refused the login"):
        await make_connector(dovecot, tmp_path, smtp_server, smtp_password="wrong").check()


# -- small pieces ------------------------------------------------------------------------------


def test_uid_set_and_folder_names():
    assert uid_set([1, 2, 3, 5, 7, 8]) == "1:3,5,7:8"
    assert imap_utf7("Отправленные") == "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"
    assert imap_utf7("A&B") == "A&-B"
