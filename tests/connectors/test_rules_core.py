"""Automation rules in a real core (issue #19): a customer writes through the open API channel
(real HTTP to the core's listener on 127.0.0.1); the rules' pipeline step labels the
conversation and calls a webhook, delivered signed to a CRM on 127.0.0.1 by the webhooks' one
sender; a "waiting for us" timer fires from the core's one scheduler; a restarted core fires
nothing twice."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from connectors import signing
from omniconsole.capabilities import hub_parts
from omniconsole.config import parse_settings
from omniconsole.store import Store
from tests.connectors.test_api_channel import TOKEN, CallbackServer, callback, message, settings_for  # noqa: F401
from tests.peers.crm import crm_peer
from tests.rig import free_port, running_core

RULES = """
[[rules]]
name = "urgent words"
on = "message.received"
conditions = [ { field = "message.body", contains = "urgent" } ]
actions = [ { add_labels = ["urgent"] }, { webhook = "crm" }, { notify = "an urgent message" } ]

[[rules]]
name = "waited"
timer = "waiting_for_us"
after = "1s"
actions = [ { priority = "urgent" } ]
"""


def core_settings(tmp_path: Path, port: int, callback: CallbackServer, crm):
    """A core with the open API channel, the CRM as the webhook endpoint `crm`, and the rules
    file `rules.toml` beside its config."""
    raw = {
        "store": {"database": str(tmp_path / "core.db"), "data_dir": str(tmp_path / "data")},
        "channels": [{"kind": "api", "name": "CRM", **settings_for(callback.url)}],
        "listener": {"port": port},
        "webhooks": [
            {"name": "crm", "url": f"{crm.url}/hooks", "events": ["channel.down"], "secret": "s3cret", "retry_base": 0.05}
        ],
        "automation": {"rules": "rules.toml"},
    }
    return parse_settings(raw, tmp_path / "omniconsole.toml")


async def until(check, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _fired(store: Store) -> list[str]:
    rows = await store.db.run(lambda c: c.execute("SELECT payload FROM events WHERE kind = 'rule.fired' ORDER BY id").fetchall())
    return [json.loads(r[0])["rule"] for r in rows]


async def test_rules_in_a_real_core_label_call_a_signed_webhook_and_fire_timers_once(
    callback: CallbackServer, tmp_path: Path
) -> None:
    (tmp_path / "rules.toml").write_text(RULES, encoding="utf-8")
    port = free_port()
    async with crm_peer() as crm:
        settings = core_settings(tmp_path, port, callback, crm)
        store = await Store.open(settings.database)
        client = httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {TOKEN}"})
        try:
            async with running_core(settings, store, until_up="all", **hub_parts(settings, store)):
                answer = await client.post(
                    f"http://127.0.0.1:{port}/hooks/crm/messages", json=message("m1", text="This is URGENT, please")
                )
                assert answer.status_code == 202, answer.text
                cid = answer.json()["conversation_id"]
                await until(lambda: _has(crm, "rule.called"))
                await until(lambda: _priority(store, cid, 2))
            called = [r for r in crm.received if r.json["event"] == "rule.called"]
            assert len(called) == 1
            assert signing.verify("s3cret", called[0].headers, called[0].body) is None
            body = called[0].json
            assert body["conversation"]["id"] == cid and body["data"] == {
                "endpoint": "crm",
                "rule": "urgent words",
                "trigger": "message.received",
            }
            view = await store.conversation(cid)
            assert "urgent" in view.labels
            assert await _fired(store) == ["urgent words", "waited"]
            # A restarted core acts on nothing twice: no second webhook, no second firing.
            async with running_core(settings, store, until_up="all", **hub_parts(settings, store)):
                await asyncio.sleep(1.0)
            assert await _fired(store) == ["urgent words", "waited"]
            assert len([r for r in crm.received if r.json["event"] == "rule.called"]) == 1
        finally:
            await client.aclose()
            await store.close()


async def _has(crm, event: str) -> bool:
    return any(r.json["event"] == event for r in crm.received)


async def _priority(store: Store, cid: int, priority: int) -> bool:
    view = await store.conversation(cid)
    return view is not None and view.priority == priority


async def test_a_mailbox_imported_while_the_core_runs_triggers_no_rule(callback: CallbackServer, tmp_path: Path) -> None:
    from omniconsole.core.mail_import import import_mailbox
    from tests.unit.test_mail_import import THREAD, mail

    (tmp_path / "rules.toml").write_text(
        RULES
        + """
[[rules]]
name = "any opening"
on = "conversation.opened"
actions = [ { note = "hello" } ]

[[rules]]
name = "any resolution"
on = "conversation.resolved"
actions = [ { note = "bye" } ]

[[rules]]
name = "any reopening"
on = "conversation.reopened"
actions = [ { note = "again" } ]
""",
        encoding="utf-8",
    )
    port = free_port()
    crm_context = crm_peer()
    crm = await crm_context.__aenter__()
    settings = core_settings(tmp_path, port, callback, crm)
    store = await Store.open(settings.database)
    client = httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        async with running_core(settings, store, until_up="all", **hub_parts(settings, store)):
            # Old mail (resolved as history by the import) and a thread, some of it urgent.
            mails = [
                ("old1", mail("<o1@x>", "Ann <ann@example.com>", "URGENT: refund")),
                *[(f"t{n}", m) for n, m in enumerate(THREAD)],
            ]
            summary = await import_mailbox(store, settings, mails, workers=0, open_days=1)
            assert summary.imported == 4 and summary.resolved >= 1
            await asyncio.sleep(1.0)  # the follower and the scheduler had their turn
            assert await _fired(store) == []
            answer = await client.post(f"http://127.0.0.1:{port}/hooks/crm/messages", json=message("live-1", text="urgent!"))
            assert answer.status_code == 202, answer.text
            await until(lambda: _count(store, 2))
            assert sorted(await _fired(store)) == ["any opening", "urgent words"]
            await until(lambda: _has(crm, "rule.called"))  # the live message's call only
        assert [r.json["data"]["rule"] for r in crm.received if r.json["event"] == "rule.called"] == ["urgent words"]
    finally:
        await client.aclose()
        await store.close()
        await crm_context.__aexit__(None, None, None)


async def _count(store: Store, n: int) -> bool:
    return len(await _fired(store)) >= n
