"""A small, fixed shop for window tests: fixed clock, fixed timestamps, UTC, hostile names."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.base import InboundAttachment, InboundMessage
from omniconsole.config import ChannelSettings, Settings
from omniconsole.core.ingest import Ingestor
from omniconsole.models import IdentityKind, InboxView, OperatorRole
from omniconsole.store import Operator, Store, history
from omniconsole.tui.app import OmniApp
from tests.conftest import HOSTILE_TEXTS

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC
os.environ["TZ"] = "UTC"
time.tzset()


def at(minutes_ago: float) -> datetime:
    return datetime.fromtimestamp(NOW - minutes_ago * 60, UTC)


def message(external_id: str, body: str, minutes_ago: float, kind=IdentityKind.TELEGRAM, address="1001", **fields):
    return InboundMessage(
        external_id=external_id, identity_kind=kind, address=address, body=body, sent_at=at(minutes_ago), **fields
    )


async def build_shop(path: Path) -> dict[str, int]:
    """Customers on several channels, a failed reply, a note, a hostile customer."""
    store = await Store.open(path)
    try:
        ingestor = Ingestor(store, path.parent / "data")
        tg = await store.ensure_channel("telegram", "Telegram")
        em = await store.ensure_channel("email", "Support mail")
        await store.add_operator("alice", "Alice", OperatorRole.ADMIN)
        await store.add_operator("bob", "Bob")
        ivan = await store.db.write(
            history.add_customer,
            "Иван Петров",
            [("telegram", "1001", "@ivan"), ("email", "ivan@example.com", "ivan@example.com")],
        )
        await ingestor.ingest(
            tg, "telegram", [message("t1", "Здравствуйте! Где мой заказ №4711?", 180, sender_name="Иван Петров")], "1"
        )
        await ingestor.ingest(
            em,
            "email",
            [
                message(
                    "<m1@example.com>",
                    "Пишу ещё и на почту: заказ так и не пришёл.\n\n> quoted history\n> more",
                    120,
                    kind=IdentityKind.EMAIL,
                    address="ivan@example.com",
                    subject="Заказ 4711",
                    sender_name="Иван Петров",
                    thread_key="<m1@example.com>",
                    meta={"fold_at": 44},
                    attachments=(InboundAttachment("чек.pdf", "application/pdf", b"%PDF-1.4 fake"),),
                )
            ],
            None,
        )
        await ingestor.ingest(
            tg, "telegram", [message("t2", "My card was charged twice", 30, address="2002", sender_name="Emma Wilson")], "2"
        )
        await ingestor.ingest(
            tg,
            "telegram",
            [
                message(
                    "t3", "\n".join(HOSTILE_TEXTS[:9]), 10, address="3003", sender_name="[@click=app.quit]Mallory[/] \x1b]0;x\x07"
                )
            ],
            "3",
        )
        await ingestor.ingest(
            tg, "telegram", [message("t4", "Can I book a fitting?", 5, address="4004", sender_name="Oliver Hall")], "4"
        )
        rows = {r.customer_name: r.conversation_id for r in await store.inbox_page(InboxView.ALL)}
        emma = rows["Emma Wilson"]
        failed = await store.queue_reply(emma, "We have refunded the second charge.", "bob")
        await store.db.write(
            lambda c: c.execute(
                "UPDATE messages SET state = 'failed', error = 'the customer blocked the bot',"
                " attempts = 1, created_at = ? WHERE id = ?",
                (NOW - 25 * 60, failed),
            )
        )
        note = await store.add_note(rows["Иван Петров"], "VIP customer, be quick", "alice")
        await store.db.write(lambda c: c.execute("UPDATE messages SET created_at = ? WHERE id = ?", (NOW - 100 * 60, note)))
        await store.assign(emma, "bob", "bob")
        await store.db.write(
            lambda c: c.execute("UPDATE messages SET created_at = ? WHERE direction = 'event'", (NOW - 26 * 60,))
        )
        return {
            "ivan": rows["Иван Петров"],
            "emma": emma,
            "mallory": rows[next(n for n in rows if "Mallory" in n)],
            "oliver": rows["Oliver Hall"],
            "ivan_customer": ivan,
            "failed": failed,
        }
    finally:
        await store.close()


@pytest.fixture
def shop(tmp_path) -> tuple[Settings, dict[str, int]]:
    path = tmp_path / "shop.db"
    ids = asyncio.run(build_shop(path))
    settings = Settings(
        database=path, data_dir=path.parent / "data", channels=[ChannelSettings("demo", "Telegram", {"simulate": "telegram"})]
    )
    return settings, ids


@pytest.fixture(params=["in-process", "socket"])
async def make_window(request, shop, tmp_path):
    """`make_app` twice over: the window on the database in-process, and the window of a team
    setup whose every read and write goes to a core over its Unix socket. All windows of a test
    run as one uid, so each operator gets a core socket of their own (over the same database)
    that knows that uid as them."""
    settings, _ = shop
    if request.param == "in-process":

        def make(login: str = "alice", role: str = "admin") -> OmniApp:
            return OmniApp(settings, Operator(login, login.capitalize(), role), clock=lambda: NOW, run_core=False)

        yield make
        return
    import dataclasses

    from omniconsole.config import TeamSettings
    from omniconsole.core.control import ControlServer

    cores = []
    sockets = {}
    for login in ("alice", "bob"):
        store = await Store.open(settings.database)
        server = ControlServer(store, tmp_path / f"{login}.sock", logins=lambda uid, login=login: login)
        await server.start()
        cores.append((server, store))
        sockets[login] = server.path

    def make(login: str = "alice", role: str = "admin") -> OmniApp:
        team = dataclasses.replace(settings, team=TeamSettings(socket=sockets[login]))
        return OmniApp(team, Operator(login, login.capitalize(), role), clock=lambda: NOW, run_core=False)

    yield make
    for server, store in cores:
        await server.close()
        await store.close()


@pytest.fixture
def make_app(shop):
    settings, _ = shop

    def make(login: str = "alice", role: str = "admin") -> OmniApp:
        return OmniApp(settings, Operator(login, login.capitalize(), role), clock=lambda: NOW, run_core=False)

    return make
