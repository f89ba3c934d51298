"""Routing end to end (issue #18): 30 customers write through the open API channel (real HTTP to
the real core's listener on 127.0.0.1); operators with capacities 2, 3 and 5 get 2, 3 and 5
conversations, the other 20 wait in order, and as operators resolve, every conversation is
assigned — each exactly once, in the order they arrived — by the core's routing follower."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import httpx

from omniconsole.models import ConversationStatus, OperatorRole
from omniconsole.routing.service import core_extensions, set_operator
from omniconsole.routing.settings import parse_routing
from omniconsole.store import Store
from tests.connectors.test_api_channel import TOKEN, CallbackServer, callback, core_settings, message  # noqa: F401
from tests.rig import free_port, running_core

CAPACITIES = {"anna": 2, "boris": 3, "cara": 5}


async def until(check, timeout: float = 15.0) -> None:
    """Return once the async `check()` holds; fail the test after `timeout` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _assigned(store: Store) -> dict[int, str]:
    rows = await store.db.run(
        lambda conn: conn.execute("SELECT id, assignee FROM conversations WHERE assignee IS NOT NULL").fetchall()
    )
    return {r[0]: r[1] for r in rows}


async def _open_of(store: Store, login: str) -> list[int]:
    rows = await store.db.run(
        lambda conn: conn.execute(
            "SELECT id FROM conversations WHERE assignee = ? AND status = 'open' ORDER BY id", (login,)
        ).fetchall()
    )
    return [r[0] for r in rows]


async def test_thirty_conversations_through_the_api_are_shared_by_capacity_and_all_assigned(
    callback: CallbackServer, tmp_path: Path
) -> None:
    port = free_port()
    settings = dataclasses.replace(
        core_settings(tmp_path, port, callback.url), routing=parse_routing({"sticky_minutes": 0}, [], [])
    )
    store = await Store.open(settings.database)
    for login, capacity in CAPACITIES.items():
        await store.add_operator(login, login, OperatorRole.AGENT, actor="admin")
        await set_operator(store, settings, login, actor="admin", status="online", capacity=capacity)
    client = httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {TOKEN}"})
    url = f"http://127.0.0.1:{port}/hooks/crm/messages"
    try:
        async with running_core(settings, store, until_up="all", extensions=core_extensions(settings)):
            arrived: list[int] = []
            for n in range(30):
                answer = await client.post(
                    url,
                    json=message(
                        f"order-{n}", customer={"name": f"Customer {n}", "external_id": f"c{n}"}, text=f"Where is order {n}?"
                    ),
                )
                assert answer.status_code == 202, answer.text
                arrived.append(answer.json()["conversation_id"])
            assert len(set(arrived)) == 30
            await until(lambda: _count(store, 10))
            first = await _assigned(store)
            assert sorted(first) == sorted(arrived[:10])  # the first ten to arrive
            assert {login: list(first.values()).count(login) for login in CAPACITIES} == CAPACITIES
            # Operators resolve one conversation at a time; the queue moves on each time.
            resolved: list[int] = []
            while len(resolved) < 30:
                progress = False
                for login in CAPACITIES:
                    mine = await _open_of(store, login)
                    if mine:
                        await store.set_status(mine[0], ConversationStatus.RESOLVED, login)
                        resolved.append(mine[0])
                        progress = True
                if not progress:
                    await until(lambda: _any_open_assigned(store))
            assert sorted(resolved) == sorted(arrived)
        events = await store.db.run(
            lambda conn: conn.execute(
                "SELECT conversation_id, payload FROM events WHERE kind = 'conversation.assigned' ORDER BY id"
            ).fetchall()
        )
        order = [cid for cid, _ in events]
        assert sorted(order) == sorted(arrived) and len(order) == 30  # each exactly once
        assert order[10:] == arrived[10:]  # the waiting ones in the order they arrived
        assert all(json.loads(p)["reason"].startswith("least loaded in queue default: ") for _, p in events)
        timeline = await store.timeline(arrived[0])
        assert any(e.direction == "event" and e.body.startswith("assigned to ") for e in timeline)
    finally:
        await client.aclose()
        await store.close()


async def _count(store: Store, n: int) -> bool:
    return len(await _assigned(store)) >= n


async def _any_open_assigned(store: Store) -> bool:
    rows = await store.db.run(
        lambda conn: conn.execute("SELECT count(*) FROM conversations WHERE assignee IS NOT NULL AND status = 'open'").fetchone()
    )
    return rows[0] > 0
