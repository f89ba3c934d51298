"""Mail that people really send (issue #14), received the live way: a real Dovecot on
127.0.0.1 holds the mail, a real core runs the e-mail channel (IMAP) into a fresh history.
The inputs are copies of ../shared/cases/real-world/ in tests/fixtures/real_world/."""

from __future__ import annotations

import asyncio
import imaplib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.models import ConversationStatus
from omniconsole.store import Store
from tests.peers.dovecot import DovecotServer, dovecot, dovecot_server  # noqa: F401 - fixtures
from tests.rig import free_port, running_core

CASES = Path(__file__).parents[1] / "fixtures" / "real_world"


def settings_for(server: DovecotServer, tmp_path: Path) -> Settings:
    options: dict[str, Any] = {
        "address": "support@shop.example",
        "imap_host": server.host,
        "imap_port": server.port,
        "imap_security": "plain",
        "imap_user": server.user,
        "imap_password": server.password,
        "folders": ["INBOX"],
        "poll_interval": 0.3,
    }
    return Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        channels=[ChannelSettings("email", "support mailbox", options)],
        listener=ListenerSettings(port=free_port(), enabled=True),
    )


async def rows(store: Store, sql: str, *params) -> list[tuple]:
    return await store.db.run(lambda conn: [tuple(row) for row in conn.execute(sql, params)])


async def received(store: Store, count: int, timeout: float = 20.0) -> None:
    """Wait until the history holds `count` inbound messages (generous: a loaded machine is slow)."""
    deadline = time.monotonic() + timeout
    while (await rows(store, "SELECT count(*) FROM messages WHERE direction = 'in'"))[0][0] < count:
        assert time.monotonic() < deadline, f"fewer than {count} messages arrived in {timeout:g} s"
        await asyncio.sleep(0.05)


async def test_group_rewrites_unknown_8bit_and_bare_ids_over_imap(dovecot: DovecotServer, tmp_path: Path):
    group = CASES / "14-google-group-from-rewrite"
    dovecot.append_many(
        [
            (group / "1-ivan.eml").read_bytes(),
            (group / "2-olga.eml").read_bytes(),
            (CASES / "01-unknown-8bit-encoded-subject" / "mail.eml").read_bytes(),
            (CASES / "05-bare-in-reply-to" / "1-question.eml").read_bytes(),
        ]
    )
    settings = settings_for(dovecot, tmp_path)
    store = await Store.open(settings.database)
    try:
        async with running_core(settings, store):
            await received(store, 4)
            customers = await rows(
                store,
                "SELECT c.display_name, i.address FROM customers c JOIN identities i ON i.customer_id = c.id ORDER BY i.address",
            )
            assert customers == [
                ("Григорий Пробный", "grigory.probny@example.org"),
                ("Ivan Testov", "ivan.testov@mailbox.example"),
                ("Olga Primerova", "olga.primerova@post.example"),
                ("Petr Probnikov", "petr@example.org"),
            ]
            # Nobody took the group's mail for auto-replies: every conversation waits.
            waiting = await rows(store, "SELECT subject, waiting_since IS NOT NULL FROM conversations ORDER BY id")
            assert sorted(waiting) == [
                ("Order 6101 never arrived", 1),
                ("Please cancel order 6150", 1),
                ("Where is my refund? [Ticket 88120]", 1),
                ("Возврат за заказ 7731", 1),
            ]

            # The question is answered and resolved; two weeks later the reply with bare ids comes.
            ((question, conversation),) = await rows(
                store, "SELECT id, conversation_id FROM messages WHERE external_id = '<88120.1731049872@tracker.example.org>'"
            )
            await store.set_status(conversation, ConversationStatus.RESOLVED, "alice")
            dovecot.append((CASES / "05-bare-in-reply-to" / "2-reply.eml").read_bytes())
            await received(store, 5)
            reply = await rows(
                store, "SELECT conversation_id FROM messages WHERE external_id = '<88121.1732255200@tracker.example.org>'"
            )
            assert reply == [(conversation,)]
            assert (await store.conversation(conversation)).status == ConversationStatus.OPEN
    finally:
        await store.close()


def _append_at(server: DovecotServer, raw: bytes, moment: datetime) -> None:
    with server.imap() as client:
        status, data = client.append("INBOX", None, imaplib.Time2Internaldate(moment), raw)
        assert status == "OK", data


async def test_mail_without_a_date_gets_the_date_it_carries_not_the_time_of_reading(dovecot: DovecotServer, tmp_path: Path):
    stored_at = datetime(2024, 11, 5, 9, 30, tzinfo=UTC)
    # No Date, a Received hop: the hop's date. No date at all: when the server stored it.
    _append_at(
        dovecot,
        b"From: Vera <vera@example.net>\r\nMessage-ID: <nodate-1@example.net>\r\n"
        b"Received: from mx.example.net by mx.shop.example; Tue, 05 Nov 2024 08:41:07 +0000\r\n"
        b"Subject: one\r\n\r\nNo Date header here.\r\n",
        stored_at,
    )
    _append_at(
        dovecot,
        b"From: Lidia <lidia@example.net>\r\nMessage-ID: <nodate-2@example.net>\r\nSubject: two\r\n\r\nNo dates at all.\r\n",
        stored_at,
    )
    settings = settings_for(dovecot, tmp_path)
    store = await Store.open(settings.database)
    try:
        async with running_core(settings, store):
            await received(store, 2)
            dates = dict(await rows(store, "SELECT external_id, created_at FROM messages WHERE direction = 'in'"))
    finally:
        await store.close()
    assert dates["<nodate-1@example.net>"] == datetime(2024, 11, 5, 8, 41, 7, tzinfo=UTC).timestamp()
    assert dates["<nodate-2@example.net>"] == stored_at.timestamp()
