"""Rules of the unified history added with issue #14: delivery states only move forward,
edits are ordered by the channel's sequence and keep their new files, replaced versions live
in their own table, and the events log's retention classes (live pruned, history and audit
kept; old message texts erased on request with counts kept)."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.base import InboundAttachment
from omniconsole.config import RetentionSettings, Settings, parse_settings
from omniconsole.core.hub import Hub
from omniconsole.core.ingest import Ingestor
from omniconsole.errors import UsageError
from omniconsole.models import DeliveryState, InboxView
from omniconsole.store import Store, events, outbox
from omniconsole.store.database import connect
from omniconsole.store.schema import MIGRATIONS
from tests.conftest import inbound

DAY = 86400.0


@pytest.fixture
async def ingest(store: Store, tmp_path: Path):
    ingestor = Ingestor(store, tmp_path / "data")
    channel = await store.ensure_channel("telegram", "telegram")

    async def deliver(messages, cursor=None):
        return await ingestor.ingest(channel, "telegram", messages, cursor)

    deliver.channel = channel
    return deliver


def _edit(external_id: str, body: str, edited_at: float, seq: int | None = None, **fields):
    return inbound(external_id, body, edited_at=datetime.fromtimestamp(edited_at, UTC), edit_seq=seq, **fields)


async def _entry(store: Store, message_id: int):
    conversation_id = (await store.inbox_page(InboxView.ALL))[0].conversation_id
    return next(e for e in await store.timeline(conversation_id) if e.id == message_id)


# -- delivery states ------------------------------------------------------------------------


async def _sent_reply(store: Store, ingest, external_id: str = "wamid.1") -> int:
    await ingest([inbound("in-1", "where is my order?")])
    conversation_id = (await store.inbox_page(InboxView.ALL))[0].conversation_id
    reply = await store.queue_reply(conversation_id, "tomorrow", "alice")
    await store.claim_outbox([ingest.channel])
    await store.mark_sent(reply, external_id, DeliveryState.SENT, None)
    return reply


async def test_a_failure_and_its_reason_survive_a_late_sent_delivered_or_read(store, ingest):
    reply = await _sent_reply(store, ingest)
    update = store.apply_delivery_updates
    assert await update(ingest.channel, [("wamid.1", DeliveryState.FAILED, "131026: undeliverable")]) == 1
    # Webhooks overtake each other: the earlier stages arrive after the failure.
    late = [("wamid.1", DeliveryState.SENT, ""), ("wamid.1", DeliveryState.DELIVERED, ""), ("wamid.1", DeliveryState.READ, "")]
    assert await update(ingest.channel, late) == 0
    entry = await _entry(store, reply)
    assert (entry.state, entry.error) == ("failed", "131026: undeliverable")
    # A repeated failure without words does not erase the reason either.
    assert await update(ingest.channel, [("wamid.1", DeliveryState.FAILED, "")]) == 0
    assert (await _entry(store, reply)).error == "131026: undeliverable"
    # Only the operator's retry moves a failed message on.
    assert await store.retry_failed(reply, "alice")
    assert (await _entry(store, reply)).state == "queued"


async def test_states_move_forward_only(store, ingest):
    reply = await _sent_reply(store, ingest)
    update = store.apply_delivery_updates
    assert await update(ingest.channel, [("wamid.1", DeliveryState.READ, "")]) == 1
    assert await update(ingest.channel, [("wamid.1", DeliveryState.DELIVERED, ""), ("wamid.1", DeliveryState.SENT, "")]) == 0
    assert (await _entry(store, reply)).state == "read"
    # A failure reported after the customer read it is still the channel's last word.
    assert await update(ingest.channel, [("wamid.1", DeliveryState.FAILED, "expired")]) == 1
    assert (await _entry(store, reply)).state == "failed"


def test_the_order_of_states():
    order = [DeliveryState.QUEUED, DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.READ]
    for i, current in enumerate(order):
        for j, new in enumerate(order):
            assert outbox.moves_forward(current, new) is (j > i), (current, new)
        assert outbox.moves_forward(current, DeliveryState.FAILED)
        assert not outbox.moves_forward(DeliveryState.FAILED, current, "reason")
        assert not outbox.moves_forward(DeliveryState.FAILED, current, "")
    assert outbox.moves_forward(DeliveryState.FAILED, DeliveryState.FAILED, "")
    assert not outbox.moves_forward(DeliveryState.FAILED, DeliveryState.FAILED, "reason")


async def test_an_early_failure_is_kept_when_the_send_is_recorded(store, ingest):
    await ingest([inbound("in-1", "hello")])
    conversation_id = (await store.inbox_page(InboxView.ALL))[0].conversation_id
    reply = await store.queue_reply(conversation_id, "hi", "alice")
    await store.claim_outbox([ingest.channel])
    # The status webhook overtakes the answer to the send, failure first, then a late "sent".
    await store.apply_delivery_updates(
        ingest.channel, [("wamid.2", DeliveryState.FAILED, "blocked"), ("wamid.2", DeliveryState.SENT, "")]
    )
    await store.mark_sent(reply, "wamid.2", DeliveryState.SENT, None)
    entry = await _entry(store, reply)
    assert (entry.state, entry.error) == ("failed", "blocked")


# -- edits ----------------------------------------------------------------------------------


async def test_edits_within_one_second_follow_the_channel_sequence(store, ingest):
    [message_id] = (await ingest([inbound("1001:7", "v0")])).stored
    second = time.time() // 1 + 5
    results = [await ingest([_edit("1001:7", f"v{n}", second, seq=100 + n)]) for n in range(1, 21)]
    assert [r.edited for r in results] == [1] * 20
    assert (await _entry(store, message_id)).body == "v20"
    # An older edit arriving late, and the same edit delivered again, change nothing.
    assert (await ingest([_edit("1001:7", "v3", second, seq=103)])).duplicates == 1
    assert (await ingest([_edit("1001:7", "v20", second, seq=120)])).duplicates == 1
    assert (await _entry(store, message_id)).body == "v20"
    versions = await store.message_versions(message_id)
    assert [v["body"] for v in versions] == [f"v{n}" for n in range(20)]
    # Search finds the current text only.
    assert [h.message_id for h in (await store.search("v20")).messages] == [message_id]
    assert (await store.search("v7")).messages == ()


async def test_edits_without_a_sequence_still_order_by_time(store, ingest):
    [message_id] = (await ingest([inbound("1001:8", "first")])).stored
    now = time.time()
    await ingest([_edit("1001:8", "second", now + 2)])
    assert (await ingest([_edit("1001:8", "stale", now + 1)])).duplicates == 1
    assert (await _entry(store, message_id)).body == "second"


async def test_an_edit_that_replaces_the_file_keeps_the_new_file(store, ingest, tmp_path):
    photo = InboundAttachment("photo_a.jpg", "image/jpeg", data=b"first photo")
    [message_id] = (await ingest([inbound("1001:9", "box 2 of 2", attachments=(photo,))])).stored
    new_photo = InboundAttachment("photo_b.jpg", "image/jpeg", data=b"second photo")
    result = await ingest([_edit("1001:9", "box 2 of 2", time.time() + 40, seq=5, attachments=(new_photo,))])
    assert result.edited == 1
    [current] = (await _entry(store, message_id)).attachments
    assert current.filename == "photo_b.jpg"
    assert (tmp_path / "data" / "attachments" / current.path).read_bytes() == b"second photo"
    [version] = await store.message_versions(message_id)
    assert version["files"] == ["photo_a.jpg"] and version["body"] == "box 2 of 2"
    # A caption edit that does not resend the photo leaves it alone.
    await ingest([_edit("1001:9", "box 2 of 2, damaged", time.time() + 80, seq=6)])
    entry = await _entry(store, message_id)
    assert entry.body == "box 2 of 2, damaged" and [a.filename for a in entry.attachments] == ["photo_b.jpg"]


async def test_an_edit_keeps_the_previous_text_out_of_the_events_log(store, ingest):
    [message_id] = (await ingest([inbound("1001:10", "secret v1")])).stored
    await ingest([_edit("1001:10", "v2", time.time() + 1, seq=1)])
    edited = [e for e in await store.events_since(0) if e.kind == "message.edited"]
    assert len(edited) == 1 and "secret" not in str(edited[0].payload)
    assert (await store.message_versions(message_id))[0]["body"] == "secret v1"


def test_migration_moves_old_edit_payloads_into_versions(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for n, script in enumerate(MIGRATIONS[:6], start=1):
        conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {n}")
    conn.execute("INSERT INTO customers (id, created_at) VALUES (1, 1.0)")
    conn.execute("INSERT INTO conversations (id, customer_id, opened_at, last_activity_at) VALUES (1, 1, 1.0, 1.0)")
    conn.execute(
        "INSERT INTO messages (id, conversation_id, customer_id, direction, body, created_at) VALUES (42, 1, 1, 'in', 'new', 1.0)"
    )
    conn.execute(
        "INSERT INTO events (at, kind, message_id, payload) VALUES (5.0, 'message.edited', 42, '{\"previous\": \"old words\"}')"
    )
    # An edit event about a message that is not there (damaged history) is left out, not fatal.
    conn.execute("INSERT INTO events (at, kind, message_id, payload) VALUES (5.5, 'message.edited', 99, '{\"previous\": \"x\"}')")
    conn.execute("INSERT INTO events (at, kind, payload) VALUES (6.0, 'customer.exported', '{}')")
    conn.execute("INSERT INTO events (at, kind) VALUES (7.0, 'conversation.assigned')")
    conn.close()
    conn = connect(path)
    assert [tuple(r) for r in conn.execute("SELECT message_id, body, replaced_at FROM message_versions")] == [
        (42, "old words", 5.0)
    ]
    assert [tuple(r) for r in conn.execute("SELECT kind, keep, payload FROM events ORDER BY id")] == [
        ("message.edited", "live", None),
        ("message.edited", "live", None),
        ("customer.exported", "audit", "{}"),
        ("conversation.assigned", "history", None),
    ]
    conn.close()


# -- the events log's retention ---------------------------------------------------------------


async def test_pruning_removes_only_live_events_and_only_old_ones(store, ingest):
    await store.add_operator("alice", "Alice")  # audit
    await ingest([inbound("in-1", "hello")])  # live arrival, history: customer created, conversation opened
    conversation_id = (await store.inbox_page(InboxView.ALL))[0].conversation_id
    await store.assign(conversation_id, "alice", "alice")  # history
    await store.mark_read("alice", conversation_id)  # live
    customer_id = (await store.inbox_page(InboxView.ALL))[0].customer_id
    await store.export_customer(customer_id, "alice")  # audit
    before = await store.events_since(0)
    classes = {e.kind: events.retention_class(e.kind) for e in before}
    assert classes["message.received"] == classes["conversation.read"] == "live"
    assert classes["conversation.assigned"] == classes["conversation.opened"] == classes["customer.created"] == "history"
    assert classes["customer.exported"] == classes["operator.added"] == "audit"

    assert await store.prune_live_events(time.time() - 3600) == 0  # nothing is that old yet
    pruned = await store.prune_live_events(time.time() + 1, batch=1)  # in batches of one
    after = await store.events_since(0)
    assert pruned == sum(1 for e in before if classes[e.kind] == "live") >= 2
    assert [e.id for e in after] == [e.id for e in before if classes[e.kind] != "live"]
    # A follower keeps its place: ids are never reused.
    await ingest([inbound("in-2", "again")])
    assert (await store.events_since(0))[-1].id > before[-1].id


async def test_messages_days_erases_old_texts_and_their_search_entries_but_keeps_counts(store, ingest):
    old = time.time() - 400 * DAY
    await ingest([inbound("old-1", "ancient parcel complaint", at=old), inbound("old-2", "ancient refund", at=old + 1)])
    [old_id] = [
        e.id for e in await store.timeline((await store.inbox_page(InboxView.ALL))[0].conversation_id) if e.external_id == "old-1"
    ]
    await ingest([_edit("old-1", "ancient parcel complaint, edited", old + 5, seq=1)])
    await ingest([inbound("new-1", "fresh parcel question")])
    await ingest([inbound("other-old", "ancient words of another customer", address="2002", at=old)])
    stats_before = await store.stats()
    erased = await store.erase_texts_before(time.time() - 365 * DAY, batch=1)
    assert erased == 3
    previews = {row.customer_id: row.preview for row in await store.inbox_page(InboxView.ALL)}
    assert sorted(previews.values()) == ["", "fresh parcel question"]
    assert (await store.search("ancient")).messages == ()
    assert [h.body for h in (await store.search("parcel")).messages] == ["fresh parcel question"]
    assert await store.message_versions(old_id) == []
    assert await store.stats() == stats_before  # every count stays
    entries = await store.timeline((await store.inbox_page(InboxView.ALL))[0].conversation_id)
    assert {e.external_id: e.body for e in entries if e.direction == "in"} == {
        "old-1": "",
        "old-2": "",
        "new-1": "fresh parcel question",
    }
    [audit] = [e for e in await store.events_since(0) if e.kind == "messages.expired"]
    assert json.loads(audit.payload)["messages"] == 3 and events.retention_class(audit.kind) == "audit"
    assert await store.erase_texts_before(time.time() - 365 * DAY) == 0  # nothing left to do


async def test_the_core_applies_the_retention_settings(store, ingest, tmp_path):
    old = time.time() - 100 * DAY
    await ingest([inbound("old", "very old text", at=old)])
    settings = Settings(
        database=store.path, data_dir=tmp_path / "data", retention=RetentionSettings(live_days=1, messages_days=90)
    )
    hub = Hub(settings, store)
    pruned, erased = await hub.apply_retention(now=time.time() + 2 * DAY)
    assert pruned >= 1 and erased == 1
    assert all(events.retention_class(e.kind) != "live" for e in await store.events_since(0))
    # Without messages_days texts stay.
    await ingest([inbound("old2", "kept text", at=old)])
    hub.settings = Settings(database=store.path, data_dir=tmp_path / "data")
    assert (await hub.apply_retention())[1] == 0


def test_retention_config_is_read_and_checked(tmp_path):
    config = tmp_path / "omniconsole.toml"
    settings = parse_settings({"retention": {"live_days": 7, "messages_days": 365}}, config)
    assert settings.retention == RetentionSettings(live_days=7, messages_days=365)
    assert parse_settings({}, config).retention == RetentionSettings(live_days=30, messages_days=None)
    with pytest.raises(UsageError, match=r"\[retention\]: live_days must be a whole number of days"):
        parse_settings({"retention": {"live_days": 0}}, config)
    with pytest.raises(UsageError, match="unknown key 'message_days'"):
        parse_settings({"retention": {"message_days": 3}}, config)


def test_pruning_finds_the_age_boundary_and_never_deletes_newer_events(tmp_path):
    conn = connect(tmp_path / "events.db")
    conn.execute("BEGIN IMMEDIATE")
    # An import stamped one event in the past after newer ones (ids 1..6).
    ats = [1.0, 2.0, 3.0, 10.0, 4.0, 11.0]
    ids = [events.add_event(conn, "message.received", at=at) for at in ats]
    events.add_event(conn, "conversation.assigned", at=0.5)
    assert events.age_boundary(conn, 0.1) == ids[0]
    assert events.age_boundary(conn, 100.0) == ids[-1] + 2
    assert events.prune_live(conn, 5.0) in (3, 4)  # ids 1-3, and 5 only if the bisection passed 10.0
    left = {r[0] for r in conn.execute("SELECT at FROM events")}
    assert {10.0, 11.0, 0.5} <= left and not {1.0, 2.0, 3.0} & left
    assert events.prune_live(conn, 100.0) == len(left) - 1  # every live event goes, history stays
    assert [r[0] for r in conn.execute("SELECT kind FROM events")] == ["conversation.assigned"]
    conn.execute("COMMIT")
    conn.close()


async def test_the_ingest_bench_reports_growth_before_and_after_pruning(store, ingest):
    from omniconsole.bench.ingest import storage_growth

    await ingest([inbound(f"m{n}", f"message number {n}", address=str(1000 + n % 7)) for n in range(200)])
    figures = await storage_growth(store)
    assert figures["events_per_100k"] > 100_000  # an arrival event per message, plus customers and conversations
    assert 0 < figures["events_per_100k_pruned"] < figures["events_per_100k"] - 99_000
    assert 0 < figures["bytes_per_100k_pruned"] < figures["bytes_per_100k"]
