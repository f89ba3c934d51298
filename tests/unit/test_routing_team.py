"""Operator status in a team setup (issues #13 and #18): a window's `Store` calls reach the core
over its real Unix socket (`ControlServer`, `RemoteStore`), the core puts the caller's login in
place of the `operator` it was sent (an agent sets only their own status), and the core's
routing follower gives each status change its consequences: coming online serves the queue,
going offline (the last window closed) starts the grace period."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from omniconsole.config import Settings
from omniconsole.core.control import ControlServer
from omniconsole.core.remote import RemoteStore
from omniconsole.core.scheduler import Scheduler
from omniconsole.routing.service import WindowPresence, core_extensions
from omniconsole.routing.settings import parse_routing
from omniconsole.store import Store
from omniconsole.store import routing as db
from omniconsole.store import schedule as timers
from tests.conftest import inbound


async def until(check, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the core did not get there in time")


async def test_status_through_the_core_socket_serves_the_queue_and_starts_the_grace(tmp_path: Path, store: Store) -> None:
    routing = parse_routing({"offline_grace_minutes": 5, "return_minutes": 0}, [], [])
    settings = Settings(database=store.path, data_dir=tmp_path / "data", routing=routing)
    for login in ("anna", "boris"):
        await store.add_operator(login, login.capitalize(), actor="root")
    channel_id = await store.ensure_channel("telegram", "Telegram")
    from omniconsole.core.ingest import Ingestor

    result = await Ingestor(store, tmp_path / "data").ingest(channel_id, "telegram", [inbound("w1", "hello, anyone?")], None)
    (waiting,) = result.conversations
    servers = {
        login: ControlServer(store, tmp_path / f"{login}.sock", logins=lambda uid, login=login: login)
        for login in ("anna", "boris")
    }
    for server in servers.values():
        await server.start()
    anna = await RemoteStore.connect(servers["anna"].path)
    boris = await RemoteStore.connect(servers["boris"].path)
    try:
        async with routing_follower(settings, store):
            # The conversation routed before anyone was online waits in the queue.
            from omniconsole.routing.engine import Router

            await store.db.write(Router(routing).route, waiting, 0.0)
            assert (await store.conversation(waiting)).assignee is None

            # boris's window names anna: the core puts his own login in its place.
            assert await boris.set_own_status(operator="anna", status="away", reason="x", window="b1", pid=1, host="h") == "away"
            states = {s.login: s.status for s in await anna.operator_states()}
            assert states == {"anna": "offline", "boris": "away"}

            # anna's window opens through the socket: the core serves the queue to her.
            window = WindowPresence(anna, "anna", routing)
            await window.opened()
            await until(lambda: _assignee_is(store, waiting, "anna"))
            assert [w.login for w in await store.db.run(db.windows)] == ["anna", "boris"]
            figures = await anna.queue_figures()
            assert figures.get("default", (0, None))[0] == 0

            # Her (only) window closes: offline, and the core starts the grace period.
            await window.closed()
            assert {s.login: s.status for s in await anna.operator_states()}["anna"] == "offline"
            await until(lambda: _grace_for(store, "anna"))
    finally:
        await anna.close()
        await boris.close()
        for server in servers.values():
            await server.close()


@contextlib.asynccontextmanager
async def routing_follower(settings: Settings, store: Store):
    """Routing's part of the core as the Hub runs it: its background follower of the events log
    (and the scheduler it pokes), on the core's own store."""
    routing = next(e for e in core_extensions(settings) if e.name == "routing")
    scheduler = Scheduler(store, routing.handlers)
    task = asyncio.create_task(routing.background(store, scheduler))
    try:
        await asyncio.sleep(0.1)
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _assignee_is(store: Store, conversation_id: int, login: str) -> bool:
    return (await store.conversation(conversation_id)).assignee == login


async def _grace_for(store: Store, login: str) -> bool:
    return any(r.kind == "routing.offline_grace" and r.subject == login for r in await store.db.run(timers.scheduled))


async def test_operator_set_goes_through_the_core_and_only_for_an_admin(tmp_path: Path, store: Store) -> None:
    """`omniconsole operator set` in a team setup: the CLI is a client of the core's socket (it
    cannot open the database); the core records the caller as the actor and refuses an agent."""
    from omniconsole.errors import OmniError
    from omniconsole.models import OperatorRole
    from omniconsole.routing.service import set_operator

    settings = Settings(database=store.path, data_dir=tmp_path / "data", routing=parse_routing({}, [], []))
    await store.add_operator("root", "Root", OperatorRole.ADMIN, actor="root")
    await store.add_operator("anna", "Anna", actor="root")
    servers = {
        login: ControlServer(store, tmp_path / f"{login}.sock", logins=lambda uid, login=login: login)
        for login in ("root", "anna")
    }
    for server in servers.values():
        await server.start()
    admin = await RemoteStore.connect(servers["root"].path)
    agent = await RemoteStore.connect(servers["anna"].path)
    try:
        line = await set_operator(admin, settings, "anna", actor="someone else", status="away", capacity=3, skills=["ru"])
        assert line.startswith("anna: away, capacity 3, skills ru")
        updates = [e for e in await store.events_since(0) if e.kind in ("operator.updated", "operator.status")]
        assert updates and {e.actor for e in updates} == {"root"}
        try:
            await set_operator(agent, settings, "anna", actor="root", capacity=50)
        except OmniError as exc:
            assert "admin" in str(exc) or "not allowed" in str(exc) or "may not" in str(exc), exc
        else:
            raise AssertionError("an agent changed an operator's capacity")
        assert {s.login: s.capacity for s in await store.operator_states()}["anna"] == 3
    finally:
        await admin.close()
        await agent.close()
        for server in servers.values():
            await server.close()
