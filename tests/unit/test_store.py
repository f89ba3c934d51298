"""The unified history: schema, ingest rules, operator actions, inbox, search, events."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import InboundAttachment
from omniconsole.core.ingest import Ingestor
from omniconsole.errors import StoreError
from omniconsole.models import ConversationStatus, IdentityKind, InboxView
from omniconsole.store import ActionError, InboxCursor, Store, history, write_transaction
from omniconsole.store.database import connect
from omniconsole.store.schema import SCHEMA_VERSION
from omniconsole.store.search import fts_query
from tests.conftest import HOSTILE_TEXTS, inbound


@pytest.fixture
async def ingest(store: Store, tmp_path):
    ingestor = Ingestor(store, tmp_path / "data")
    channels: dict[str, int] = {}

    async def deliver(messages, cursor=None, channel="telegram"):
        if channel not in channels:
            channels[channel] = await store.ensure_channel(channel, channel)
        return await ingestor.ingest(channels[channel], channel, messages, cursor)

    deliver.channels = channels
    return deliver


def test_migrations_from_empty(tmp_path):
    conn = connect(tmp_path / "new.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in (
        "customers",
        "identities",
        "channels",
        "conversations",
        "messages",
        "attachments",
        "labels",
        "operators",
        "connector_state",
        "events",
        "messages_fts",
        "customers_fts",
        "leases",
    ):
        assert table in tables
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    conn.close()
    # Opening again is a no-op.
    connect(tmp_path / "new.db").close()


def test_newer_database_is_refused(tmp_path):
    path = tmp_path / "future.db"
    conn = connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this omniconsole understands.*upgrade"):
        connect(path)


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not an omniconsole database"):
        connect(path)


async def test_redelivery_is_stored_once(store, ingest):
    first = await ingest([inbound("m1", "where is my order?"), inbound("m2", "order 123")], cursor="2")
    again = await ingest([inbound("m1", "where is my order?"), inbound("m2", "order 123")], cursor="2")
    assert len(first.stored) == 2 and again.stored == [] and again.duplicates == 2
    stats = await store.stats()
    assert sum(count for *_, direction, count in stats["messages"] if direction == "in") == 2
    assert await store.cursor(ingest.channels["telegram"]) == "2"


async def test_batch_and_cursor_commit_together(store, ingest, tmp_path):
    await ingest([inbound("a")], cursor="1")
    bad = inbound("b")
    object.__setattr__(bad, "identity_kind", "no-such-kind")  # fails inside the batch
    with pytest.raises(ValueError):
        await ingest([inbound("c"), bad], cursor="3")
    assert await store.cursor(ingest.channels["telegram"]) == "1"
    timeline = await store.timeline((await store.inbox_page(InboxView.ALL))[0].conversation_id)
    assert [e.external_id for e in timeline] == ["a"]


async def test_customer_on_two_channels_is_one_conversation(store, ingest):
    customer_id = await store.db.write(
        history.add_customer, "Ivan Petrov", [("telegram", "1001", "1001"), ("email", "ivan@example.com", "Ivan@Example.com")]
    )
    await ingest([inbound("t1", "my parcel is late", address="1001")])
    await ingest(
        [inbound("<e1@mail>", "following up by mail", kind=IdentityKind.EMAIL, address="Ivan@EXAMPLE.com", subject="Parcel")],
        channel="email",
    )
    rows = await store.inbox_page(InboxView.ALL)
    assert len(rows) == 1
    assert rows[0].customer_id == customer_id
    assert rows[0].channel_kinds == ("telegram", "email")
    timeline = await store.timeline(rows[0].conversation_id)
    assert [e.channel_kind for e in timeline] == ["telegram", "email"]
    profile = await store.customer_profile(customer_id)
    assert profile.journey == ("telegram", "email")


async def test_after_resolve_a_new_message_opens_a_new_conversation(store, ingest):
    await ingest([inbound("1", "first question")])
    first = (await store.inbox_page(InboxView.ALL))[0].conversation_id
    await store.set_status(first, ConversationStatus.RESOLVED, "alice")
    await ingest([inbound("2", "another question")])
    rows = await store.inbox_page(InboxView.ALL)
    assert len(rows) == 1 and rows[0].conversation_id != first
    assert (await store.inbox_counts())[InboxView.RESOLVED] == 1


async def test_email_reply_reopens_its_resolved_thread(store, ingest):
    await ingest(
        [inbound("<a@x>", "invoice wrong", kind=IdentityKind.EMAIL, address="c@x.org", thread_key="<a@x>")], channel="email"
    )
    conv = (await store.inbox_page(InboxView.ALL))[0].conversation_id
    await store.set_status(conv, ConversationStatus.RESOLVED, "alice")
    await ingest(
        [
            inbound(
                "<b@x>", "still wrong", kind=IdentityKind.EMAIL, address="c@x.org", thread_key="<b@x>", reply_to_keys=("<a@x>",)
            )
        ],
        channel="email",
    )
    rows = await store.inbox_page(InboxView.ALL)
    assert [r.conversation_id for r in rows] == [conv]
    assert (await store.conversation(conv)).status == "open"


async def test_edit_replaces_body_and_search_finds_new_text(store, ingest):
    await ingest([inbound("9", "original wording")])
    await ingest([inbound("9", "corrected wording", edited_at=inbound("x").sent_at)])
    assert (await store.search("corrected")).messages
    assert not (await store.search("original")).messages
    conv = (await store.inbox_page(InboxView.ALL))[0].conversation_id
    [entry] = await store.timeline(conv)
    assert entry.body == "corrected wording" and entry.edited_at is not None


async def test_hostile_text_is_sanitised_at_ingest(store, ingest):
    await ingest([inbound(str(i), text, sender_name=text[:50]) for i, text in enumerate(HOSTILE_TEXTS)])
    conv = (await store.inbox_page(InboxView.ALL))[0].conversation_id
    for entry in await store.timeline(conv):
        assert "\x1b" not in entry.body and "\x07" not in entry.body
        assert "\x1b" not in entry.author
    bodies = [e.body for e in await store.timeline(conv)]
    assert "[@click=app.quit]click me[/]" in bodies  # kept literally: drawing is the TUI's job
    assert "red" in bodies and not any("52;c" in b for b in bodies)


async def test_attachments_are_content_addressed(store, ingest, tmp_path):
    photo = InboundAttachment("../../etc/passwd", "image/png", b"\x89PNG fake")
    big = InboundAttachment("movie.mp4", "video/mp4", None, size=10**9, note="not downloaded: too large")
    await ingest([inbound("p1", "photo", attachments=(photo, big)), inbound("p2", "again", attachments=(photo,))])
    conv = (await store.inbox_page(InboxView.ALL))[0].conversation_id
    entries = await store.timeline(conv)
    first = entries[0].attachments
    assert first[0].filename == "_.._etc_passwd" and first[0].size == 9
    assert (tmp_path / "data" / "attachments" / first[0].path).read_bytes() == b"\x89PNG fake"
    assert entries[1].attachments[0].path == first[0].path  # stored once
    assert first[1].path is None and first[1].note == "not downloaded: too large"


async def test_shared_contact_adds_phone_identity(store, ingest):
    await ingest([inbound("c1", "my number", extra_identities=((IdentityKind.PHONE, "8 (999) 123-45-67"),))])
    customer = (await store.inbox_page(InboxView.ALL))[0].customer_id
    profile = await store.customer_profile(customer)
    assert ("phone", "+79991234567") in {(i.kind, i.address) for i in profile.identities}
    # Now a WhatsApp message from that number is a different identity kind but the search
    # by the number finds the customer.
    assert (await store.search("+7 999 123")).customers[0].customer_id == customer


async def test_operator_actions_and_views(store, ingest):
    await store.add_operator("alice")
    await store.add_operator("bob")
    for n in range(3):
        await ingest([inbound(f"m{n}", f"question {n}", address=str(2000 + n))])
    rows = await store.inbox_page(InboxView.ALL)
    a, b, c = (r.conversation_id for r in rows)
    await store.assign(a, "alice", "alice")
    await store.set_status(b, ConversationStatus.SNOOZED, "bob", snoozed_until=time.time() + 3600)
    await store.set_status(c, ConversationStatus.RESOLVED, "bob")
    counts = await store.inbox_counts("alice")
    assert counts == {
        InboxView.MINE: 1,
        InboxView.UNASSIGNED: 0,
        InboxView.ALL: 1,
        InboxView.SNOOZED: 1,
        InboxView.RESOLVED: 1,
        InboxView.AT_RISK: 0,
        InboxView.SPAM: 0,
    }
    with pytest.raises(ActionError, match="not an operator"):
        await store.assign(a, "mallory", "alice")
    await store.set_labels(a, ["vip", "refund", "vip"], "alice")
    assert (await store.conversation(a)).labels == ("refund", "vip")
    note = await store.add_note(a, "customer is upset", "alice")
    reply = await store.queue_reply(a, "We are on it", "alice")
    timeline = await store.timeline(a)
    kinds = [(e.direction, e.state) for e in timeline]
    assert ("note", None) in kinds and ("out", "queued") in kinds
    assert {e.id for e in timeline} >= {note, reply}
    conv = await store.conversation(a)
    assert conv.waiting_since is None and conv.first_response_at is not None
    kinds = [e.kind for e in await store.events_since(0)]
    for kind in (
        "conversation.assigned",
        "conversation.snoozed",
        "conversation.resolved",
        "conversation.labels",
        "note.added",
        "message.queued",
    ):
        assert kind in kinds


async def test_snoozed_conversation_wakes_on_time_and_on_message(store, ingest):
    await ingest([inbound("1", "hi", address="1"), inbound("2", "hi", address="2")])
    by_name = {r.customer_name: r.conversation_id for r in await store.inbox_page(InboxView.ALL)}
    first, second = by_name["1"], by_name["2"]
    await store.set_status(first, ConversationStatus.SNOOZED, "a", snoozed_until=time.time() - 1)
    await store.set_status(second, ConversationStatus.SNOOZED, "a", snoozed_until=time.time() + 3600)
    assert await store.wake_snoozed() == [first]
    await ingest([inbound("3", "anyone?", address="2")])
    assert (await store.conversation(second)).status == "open"


async def test_inbox_keyset_pages_cover_every_row_once(store, ingest):
    base = time.time() - 10_000
    await ingest([inbound(str(n), "q", address=str(n), at=base + (n % 7)) for n in range(250)])
    seen, after = [], None
    while True:
        page = await store.inbox_page(InboxView.ALL, after=after, limit=40)
        if not page:
            break
        seen += [r.conversation_id for r in page]
        after = InboxCursor(page[-1].last_activity_at, page[-1].conversation_id)
    assert len(seen) == 250 and len(set(seen)) == 250
    everything = await store.inbox_page(InboxView.ALL, limit=1000)
    assert [r.conversation_id for r in everything] == seen


async def test_search_newest_first_and_per_customer(store, ingest):
    base = time.time() - 1000
    await ingest([inbound(f"a{n}", f"delivery problem {n}", address="1", at=base + n) for n in range(5)])
    await ingest([inbound(f"b{n}", f"delivery again {n}", address="2", at=base + 10 + n) for n in range(5)])
    hits = (await store.search("delivery")).messages
    assert [h.body for h in hits][:2] == ["delivery again 4", "delivery again 3"]
    assert [h.message_id for h in hits] == sorted((h.message_id for h in hits), reverse=True)
    mine = (await store.search("delivery", customer_id=hits[-1].customer_id)).messages
    assert len(mine) == 5 and all(h.customer_id == hits[-1].customer_id for h in mine)
    assert len((await store.search("deliv")).messages) == 10  # prefix while typing
    page2 = (await store.search("delivery", limit=4, before_id=hits[3].message_id)).messages
    assert [h.message_id for h in page2] == [h.message_id for h in hits[4:8]]


@pytest.mark.parametrize("text", ['"', "AND", "foo OR", "(", "a:b", "*", "NEAR(x y", "^", 'x"y', "-", "'", *HOSTILE_TEXTS])
async def test_search_never_raises_on_what_a_user_types(store, ingest, text):
    await ingest([inbound("1", "some text AND more")])
    await store.search(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=40))
def test_fts_query_is_always_valid_fts5(text):
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE f USING fts5(body, customer_id, tokenize='unicode61 remove_diacritics 2', prefix='2 3')")
    conn.execute("INSERT INTO f (body, customer_id) VALUES ('hello world', '1')")
    query = fts_query(text)
    if query is not None:
        conn.execute("SELECT rowid FROM f WHERE f MATCH ?", (f"body : ({query})",)).fetchall()


async def test_every_write_appends_an_event_in_its_transaction(store, ingest):
    before = await store.last_event_id()
    await ingest([inbound("e1", "hi")])
    events = await store.events_since(before)
    assert [e.kind for e in events] == ["customer.created", "conversation.opened", "message.received"]
    assert events[-1].message_id is not None
    ids = [e.id for e in await store.events_since(0)]
    assert ids == sorted(ids) and len(ids) == len(set(ids))


def test_write_transaction_rolls_back_on_error(tmp_path):
    conn = connect(tmp_path / "t.db")

    def half(conn):
        conn.execute("INSERT INTO operators (login, created_at) VALUES ('x', 0)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_transaction(conn, half)
    assert conn.execute("SELECT count(*) FROM operators").fetchone()[0] == 0


async def test_auto_reply_to_a_resolved_thread_does_not_reopen_it(store, ingest):
    await ingest([inbound("<a@x>", "help", kind=IdentityKind.EMAIL, address="c@x.org", thread_key="<a@x>")], channel="email")
    conv = (await store.inbox_page(InboxView.ALL))[0].conversation_id
    await store.set_status(conv, ConversationStatus.RESOLVED, "alice")
    assert (await store.conversation(conv)).waiting_since is None
    await ingest(
        [
            inbound(
                "<b@x>",
                "I am on holiday",
                kind=IdentityKind.EMAIL,
                address="c@x.org",
                thread_key="<b@x>",
                reply_to_keys=("<a@x>",),
                flags=frozenset({"auto_reply"}),
            )
        ],
        channel="email",
    )
    assert (await store.conversation(conv)).status == "resolved"
    assert len(await store.timeline(conv)) >= 2  # recorded all the same


async def test_reply_to_a_resolved_thread_joins_the_open_conversation_if_there_is_one(store, ingest):
    await ingest([inbound("<a@x>", "first", kind=IdentityKind.EMAIL, address="c@x.org", thread_key="<a@x>")], channel="email")
    first = (await store.inbox_page(InboxView.ALL))[0].conversation_id
    await store.set_status(first, ConversationStatus.RESOLVED, "alice")
    await ingest(
        [inbound("<n@x>", "new question", kind=IdentityKind.EMAIL, address="c@x.org", thread_key="<n@x>")], channel="email"
    )
    second = (await store.inbox_page(InboxView.ALL))[0].conversation_id
    await ingest(
        [
            inbound(
                "<r@x>",
                "about the old one",
                kind=IdentityKind.EMAIL,
                address="c@x.org",
                thread_key="<r@x>",
                reply_to_keys=("<a@x>",),
            )
        ],
        channel="email",
    )
    assert (await store.conversation(first)).status == "resolved"
    assert [e.body for e in await store.timeline(second)][-1] == "about the old one"


async def test_an_older_edit_never_overwrites_a_newer_one(store, ingest):
    from datetime import datetime

    await ingest([inbound("9", "v1")])
    await ingest([inbound("9", "v3", edited_at=datetime(2030, 1, 3, tzinfo=UTC))])
    await ingest([inbound("9", "v2", edited_at=datetime(2030, 1, 2, tzinfo=UTC))])
    conv = (await store.inbox_page(InboxView.ALL))[0].conversation_id
    assert [e.body for e in await store.timeline(conv)] == ["v3"]


async def test_a_late_message_still_becomes_the_preview_and_unread(store, ingest):
    base = time.time() - 1000
    await store.add_operator("alice")
    await ingest([inbound("1", "first", at=base)])
    conv = (await store.inbox_page(InboxView.ALL))[0].conversation_id
    await store.queue_reply(conv, "our answer", "alice")
    await store.mark_read("alice", conv)
    await ingest([inbound("2", "delayed mail written before the answer", at=base + 1)])
    [row] = await store.inbox_page(InboxView.ALL, "alice")
    assert row.preview == "delayed mail written before the answer" and row.unread


def test_outbox_queries_use_their_index(tmp_path):
    """The core asks these every 150 ms: a scan of every message would cost ~70 ms at 1M."""
    from omniconsole.store import outbox

    conn = connect(tmp_path / "plan.db")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    outbox.next_due(conn, [1, 2])
    outbox.claim_due(conn, [1, 2])
    write_transaction(conn, outbox.recover_sending)
    conn.set_trace_callback(None)
    checked = 0
    for sql in statements:
        if "messages" in sql and ("next_attempt_at" in sql or "'sending'" in sql) and not sql.startswith(("BEGIN", "COMMIT")):
            plan = " ".join(str(tuple(r)) for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
            assert "messages_outbox" in plan, (sql, plan)
            checked += 1
    assert checked == 3


async def test_a_delivery_word_that_overtakes_the_send_is_applied_when_the_send_is_recorded(store, tmp_path):
    """WhatsApp's "delivered" webhook can arrive before our own record of the send: it waits
    and is applied then, in order (a late "sent" never undoes "read"; "failed" wins)."""
    from omniconsole.models import DeliveryState

    ingestor = Ingestor(store, tmp_path)
    channel = await store.ensure_channel("whatsapp", "wa")
    await ingestor.ingest(channel, "whatsapp", [inbound("w1", "hi", kind=IdentityKind.WHATSAPP, address="79991234567")], None)
    [row] = await store.inbox_page(InboxView.ALL)
    first = await store.queue_reply(row.conversation_id, "one", "alice")
    second = await store.queue_reply(row.conversation_id, "two", "alice")
    assert (
        await store.apply_delivery_updates(
            channel, [("wamid.1", DeliveryState.READ, ""), ("wamid.1", DeliveryState.DELIVERED, "")]
        )
        == 0
    )
    assert await store.apply_delivery_updates(channel, [("wamid.2", DeliveryState.FAILED, "131026: not on WhatsApp")]) == 0
    await store.mark_sent(first, "wamid.1", DeliveryState.SENT, None)
    await store.mark_sent(second, "wamid.2", DeliveryState.SENT, None)
    states = {e.id: (e.state, e.error) for e in await store.timeline(row.conversation_id)}
    assert states[first] == ("read", "") and states[second] == ("failed", "131026: not on WhatsApp")
    assert await store.db.run(lambda c: c.execute("SELECT COUNT(*) FROM early_deliveries").fetchone()[0]) == 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["new", "assign", "unassign", "resolve", "snooze", "reopen", "pending"]),
            st.integers(0, 9),
            st.sampled_from(["alice", "bob"]),
        ),
        max_size=40,
    )
)
def test_kept_view_counts_always_equal_counting_the_rows(tmp_path_factory, steps):
    """The counts the triggers keep (what every window shows in its tab bar) equal a fresh
    count of the rows after any sequence of new conversations, assignments and status changes."""
    from omniconsole.store import actions, history, queries
    from omniconsole.store.database import connect, write_transaction

    conn = connect(tmp_path_factory.mktemp("counts") / "db.sqlite")
    write_transaction(conn, lambda c: c.execute("INSERT INTO channels (kind, name, created_at) VALUES ('telegram', 'tg', 0)"))
    made = 0
    for action, n, who in steps:
        ids = [r[0] for r in conn.execute("SELECT id FROM conversations ORDER BY id")]
        try:
            if action == "new" or not ids:
                made += 1
                record = history.InboundRecord(f"m{made}", "telegram", str(1000 + made), "hi", float(made))
                write_transaction(conn, history.ingest_batch, 1, "telegram", [record], None)
                continue
            conversation = ids[n % len(ids)]
            if action == "assign":
                write_transaction(conn, actions.assign, conversation, who, who)
            elif action == "unassign":
                write_transaction(conn, actions.assign, conversation, None, who)
            else:
                status = {
                    "resolve": ConversationStatus.RESOLVED,
                    "snooze": ConversationStatus.SNOOZED,
                    "reopen": ConversationStatus.OPEN,
                    "pending": ConversationStatus.PENDING,
                }[action]
                write_transaction(
                    conn,
                    actions.set_status,
                    conversation,
                    status,
                    who,
                    snoozed_until=time.time() + 3600 if action == "snooze" else None,
                )
        except Exception as exc:  # a refused action (reopening beside an open one) changes nothing
            assert "ActionError" in type(exc).__name__ or "open conversation" in str(exc)
        for operator in ("alice", "bob", None):
            kept = queries.inbox_counts(conn, operator)
            for view in InboxView:
                where, params = queries._view_filter(view, operator)
                counted = conn.execute(f"SELECT count(*) FROM conversations c WHERE {where}", params).fetchone()[0]
                assert kept[view] == counted, (view, operator, steps)
    conn.close()


async def test_a_number_known_from_a_call_can_be_answered_by_sms(store, tmp_path):
    """A customer who only ever called has a phone identity on the telephony channel; every SMS
    channel is offered as a way to answer them (a call-back by text), the call's channel stays."""
    ingestor = Ingestor(store, tmp_path)
    calls = await store.ensure_channel("telephony", "pbx")
    sms = await store.ensure_channel("sms", "sms-aggregator")
    await store.ensure_channel("telegram", "tg")
    await ingestor.ingest(
        calls, "telephony", [inbound("c1", "missed call", kind=IdentityKind.PHONE, address="+79161234567")], None
    )
    [row] = await store.inbox_page(InboxView.ALL)
    options = await store.reply_options(row.conversation_id)
    assert [(o.kind, o.channel_name) for o in options] == [("phone", "pbx"), ("phone", "sms-aggregator")]
    assert [o.default for o in options] == [True, False] and options[1].channel_id == sms
