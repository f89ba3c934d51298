"""Webhooks out (issue #22) against a CRM on 127.0.0.1 (tests/peers/crm.py): signed, in order
per conversation, retried with capped backoff, at least once with an event id, a dead endpoint
that never slows ingest, and no personal data for an erased customer."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import time
from pathlib import Path

import pytest

from connectors import signing
from connectors.api import ApiConnector
from connectors.base import ChannelContext, OutboundMessage
from omniconsole.config import Settings, WebhookSettings, parse_settings
from omniconsole.core.ingest import Ingestor
from omniconsole.errors import UsageError
from omniconsole.integrations.webhooks import WebhookEndpoint, core_services
from omniconsole.models import ConversationStatus, Health, IdentityKind, InboxView
from omniconsole.store import Store
from tests.conftest import inbound
from tests.peers.crm import crm_peer
from tests.rig import FAST
from tests.waiting import eventually as wait_until

eventually = functools.partial(wait_until, timeout=15.0, poll=0.01)
SECRET = "hook-secret-4e1d"


def hook(url: str, name: str = "crm", events: tuple[str, ...] = ("*",), **more) -> WebhookSettings:
    settings = parse_settings(
        {"webhooks": [{"name": name, "url": url, "events": list(events), "secret": SECRET, **more}]},
        Path("/tmp/omniconsole.toml"),
    )
    return settings.webhooks[0]


@contextlib.asynccontextmanager
async def delivering(store: Store, settings: WebhookSettings, **kwargs):
    endpoint = WebhookEndpoint(store, settings, poll=0.01, **kwargs)
    task = asyncio.create_task(endpoint.run())
    try:
        # The cursor starts at the newest event: wait until it exists before making events.
        await eventually(lambda: endpoint._client is not None)
        await asyncio.sleep(0.05)
        yield endpoint
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def ingest(store: Store, *messages) -> None:
    channel_id = await store.ensure_channel("telegram", "tg")
    await Ingestor(store, store.path.parent, "RU").ingest(channel_id, "telegram", list(messages), None)


async def test_events_arrive_signed_in_order_per_conversation(store: Store) -> None:
    async with crm_peer() as crm, delivering(store, hook(f"{crm.url}/hooks")):
        for n in range(5):
            await ingest(store, inbound(f"a{n}", f"Ann {n}", address="1001"), inbound(f"b{n}", f"Bob {n}", address="2002"))
        row = (await store.inbox_page(InboxView.ALL))[0]
        await store.add_operator("alice", "Alice")
        await store.assign(row.conversation_id, "alice", "alice")
        await store.set_status(row.conversation_id, ConversationStatus.RESOLVED, "alice")
        await eventually(lambda: sum(b["event"] == "conversation.resolved" for b in crm.bodies) == 1)

    bodies = crm.bodies
    events = [b["event"] for b in bodies]
    assert events.count("conversation.created") == 2 and events.count("customer.created") == 2
    assert events.count("message.received") == 10
    # The events log's order, hence each conversation's: Ann's texts arrive 0..4, so do Bob's.
    ids = [b["id"] for b in bodies]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for who in ("Ann", "Bob"):
        texts = [
            b["message"]["body"] for b in bodies if b["event"] == "message.received" and b["message"]["body"].startswith(who)
        ]
        assert texts == [f"{who} {n}" for n in range(5)]
    received = next(b for b in bodies if b["event"] == "message.received")
    assert received["customer"]["identities"] == [{"kind": "telegram", "address": "1001"}]
    assert received["conversation"]["status"] == "open" or received["conversation"]["status"] == "resolved"
    assert received["message"]["channel"] == "telegram" and received["message"]["direction"] == "in"
    assert [b["event"] for b in bodies][-2:] == ["conversation.assigned", "conversation.resolved"]
    assert bodies[-2]["data"] == {"assignee": "alice"} and bodies[-2]["actor"] == "alice"
    # Every request is signed over its timestamp and body, and names its event and id.
    for request in crm.received:
        assert signing.verify(SECRET, request.headers, request.body) is None
        assert abs(int(request.headers[signing.TIMESTAMP_HEADER]) - time.time()) < 60
        assert request.headers["X-Omniconsole-Event-Id"] == str(request.json["id"])
        assert request.headers["X-Omniconsole-Event"] == request.json["event"]
    # A receiver refuses a tampered body, a wrong secret and an old (replayed) timestamp.
    first = crm.received[0]
    assert signing.verify(SECRET, first.headers, first.body + b" ") is not None
    assert signing.verify("other", first.headers, first.body) is not None
    assert "replay" in signing.verify(SECRET, first.headers, first.body, now=time.time() + 3600)


async def test_only_the_subscribed_events_are_sent(store: Store) -> None:
    async with crm_peer() as crm, delivering(store, hook(f"{crm.url}/hooks", events=("conversation.resolved",))) as endpoint:
        await ingest(store, inbound("a1", "hello", address="1001"))
        conversation_id = (await store.inbox_page(InboxView.ALL))[0].conversation_id
        await store.set_status(conversation_id, ConversationStatus.RESOLVED, "alice")
        await eventually(lambda: len(crm.received) == 1)
        last = await store.last_event_id()
        await asyncio.sleep(0.1)
    assert crm.bodies[0]["event"] == "conversation.resolved" and crm.bodies[0]["conversation"]["id"] == conversation_id
    states = await store.webhook_states()
    # The cursor moved past the events nobody subscribed to, so they are not read again.
    assert states[0][0].endpoint == endpoint.settings.name and states[0][0].last_event_id == last
    assert states[0][1] == 0 and states[0][0].delivered == 1


async def test_a_failing_endpoint_is_retried_with_capped_backoff_and_the_same_event_id(store: Store) -> None:
    delays: list[float] = []
    # The fake clock holds the third retry until the test has looked at the failing state (the
    # retries otherwise run faster than a test can poll).
    looked = asyncio.Event()

    async def sleep(seconds: float) -> None:
        if seconds >= 0.05:
            delays.append(seconds)
            if len(delays) == 3:
                await looked.wait()
        await asyncio.sleep(0.001)

    async with crm_peer() as crm:
        crm.fail_next = 5
        settings = hook(f"{crm.url}/hooks", events=("message.received",), retry_base=0.05, retry_max=0.3)
        async with delivering(store, settings, sleep=sleep):
            await ingest(store, inbound("a1", "first", address="1001"))
            await eventually(lambda: len(crm.received) == 3 and len(delays) == 3)
            state = (await store.webhook_states())[0][0]
            assert state.failures >= 2 and "HTTP 503" in state.last_error and state.next_attempt_at is not None
            looked.set()
            await ingest(store, inbound("a2", "second", address="1001"))
            await eventually(lambda: len(crm.received) == 7)
            # The peer has answered the seventh request; its delivery is recorded just after.
            for _ in range(250):
                if (await store.webhook_states())[0][0].delivered == 2:
                    break
                await asyncio.sleep(0.02)
    # Five refusals, then the first event accepted, then the second: never out of order.
    ids = [r.json["id"] for r in crm.received]
    assert ids[:6] == [ids[0]] * 6 and ids[6] > ids[0]
    assert [b["message"]["body"] for b in crm.bodies] == ["first"] * 6 + ["second"]
    assert delays[:5] == [0.05, 0.1, 0.2, 0.3, 0.3]  # doubling, capped at retry_max
    state = (await store.webhook_states())[0][0]
    assert state.failures == 0 and state.last_error == "" and state.delivered == 2


async def test_a_dead_endpoint_never_slows_ingest_or_the_other_endpoints(tmp_path: Path) -> None:
    from omniconsole.core.hub import Hub

    store = await Store.open(tmp_path / "omniconsole.db")
    async with crm_peer() as dead, crm_peer() as alive:
        dead.hang = True
        settings = Settings(
            database=store.path,
            data_dir=tmp_path,
            webhooks=[hook(f"{dead.url}/hooks", name="dead", timeout=30), hook(f"{alive.url}/hooks", name="alive")],
        )
        hub = Hub(settings, store, timing=FAST, jobs=core_services(settings, store))
        core = asyncio.create_task(hub.run())
        try:
            await asyncio.wait_for(hub.holding_lease.wait(), 10)
            await asyncio.sleep(0.2)  # the endpoints take their cursors
            await ingest(store, inbound("first", "one", address="1001"))
            await eventually(lambda: len(dead.received) == 1)  # the dead endpoint holds its first event
            for n in range(20):
                await ingest(store, inbound(f"m{n}", f"text {n}", address=str(3000 + n)))
            assert len(await store.inbox_page(InboxView.ALL)) == 21
            await eventually(lambda: sum(b["event"] == "message.received" for b in alive.bodies) == 21)
            assert len(dead.received) == 1
            states = {s.endpoint: backlog for s, backlog in await store.webhook_states()}
            assert states["alive"] == 0 and states["dead"] > 60  # its own queue, waiting
        finally:
            core.cancel()
            await asyncio.gather(core, return_exceptions=True)
            await store.close()


async def test_an_erased_customer_s_payloads_carry_no_personal_data(store: Store) -> None:
    await ingest(store, inbound("a1", "my card is 4111 1111", address="77001", sender_name="Zinaida Secret"))
    async with crm_peer() as crm:
        crm.fail_next = 1  # the endpoint is behind when the customer is erased
        async with delivering(store, hook(f"{crm.url}/hooks")):
            pass
        customer_id = (await store.inbox_page(InboxView.ALL))[0].customer_id
        state_before = (await store.webhook_states())[0][0].last_event_id
        await ingest(store, inbound("a2", "please call +7 900 000-00-01", address="77001"))
        await store.erase_customer(customer_id, "alice")
        assert state_before < await store.last_event_id()
        async with delivering(store, hook(f"{crm.url}/hooks")):
            await eventually(lambda: any(b["event"] == "customer.erased" for b in crm.bodies))
    raw = b"".join(r.body for r in crm.received)
    for secret in (b"Zinaida", b"77001", b"4111", b"+7 900", b"please call"):
        assert secret not in raw
    received = next(b for b in crm.bodies if b["event"] == "message.received")
    assert received["customer"] == {"id": customer_id, "erased": True} and received["message"]["body"] == ""
    erased = next(b for b in crm.bodies if b["event"] == "customer.erased")
    assert erased["customer"] == {"id": customer_id, "erased": True} and erased["data"] == {}


async def test_channel_health_changes_are_events(store: Store) -> None:
    channel_id = await store.ensure_channel("telegram", "support bot")
    async with crm_peer() as crm, delivering(store, hook(f"{crm.url}/hooks", events=("channel.down", "channel.up"))):
        await store.set_channel_health(channel_id, Health.UP, "polling")
        await store.set_channel_health(channel_id, Health.DOWN, "the token was revoked")
        await store.set_channel_health(channel_id, Health.UP, "polling")
        await eventually(lambda: len(crm.received) == 3)
    assert [b["event"] for b in crm.bodies] == ["channel.up", "channel.down", "channel.up"]
    assert crm.bodies[1]["channel"] == {"id": channel_id, "kind": "telegram", "name": "support bot"}
    assert crm.bodies[1]["data"] == {"health": "down", "detail": "the token was revoked"}


async def test_the_api_callback_carries_both_signatures(tmp_path: Path) -> None:
    async with crm_peer() as crm:
        context = ChannelContext(
            1,
            "shop",
            {"callback_url": f"{crm.url}/hooks", "callback_secret": SECRET, "token": "t"},
            tmp_path,
            logging.getLogger("test"),
        )
        connector = ApiConnector(context)
        try:
            await connector.send(
                OutboundMessage(
                    id=7,
                    conversation_id=1,
                    identity_kind=IdentityKind.EMAIL,
                    address="ann@example.com",
                    body="shipped",
                    author="alice",
                )
            )
        finally:
            await connector.close()
    request = crm.received[0]
    assert signing.verify(SECRET, request.headers, request.body) is None
    assert request.headers[signing.LEGACY_SIGNATURE_HEADER] == signing.legacy_signature(SECRET, request.body)


@pytest.mark.parametrize(
    "table, problem",
    [
        ({"url": "ftp://x", "secret": "s"}, "url must be an http(s) URL"),
        ({"url": "http://127.0.0.1/h", "secret": "s", "events": ["message.exploded"]}, "unknown event 'message.exploded'"),
        ({"url": "http://127.0.0.1/h"}, "a secret is needed"),
        ({"url": "http://127.0.0.1/h", "secret": "s", "timeout": 0}, "timeout must be a positive number"),
        ({"url": "http://127.0.0.1/h", "secret": "s", "colour": "red"}, "unknown key 'colour'"),
    ],
)
def test_a_bad_webhook_table_is_refused_in_words(table: dict, problem: str) -> None:
    with pytest.raises(UsageError, match=re.escape(problem)):
        parse_settings({"webhooks": [table]}, Path("/tmp/omniconsole.toml"))


def test_the_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "from-env")
    settings = parse_settings(
        {"webhooks": [{"url": "http://127.0.0.1/h", "secret_env": "HOOK_SECRET", "events": ["message.received"]}]},
        Path("/tmp/omniconsole.toml"),
    )
    assert settings.webhooks[0].secret == "from-env" and settings.webhooks[0].events == ("message.received",)
    assert json.dumps(settings.webhooks[0].name) == '"webhook1"'
