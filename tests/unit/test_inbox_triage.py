"""Issue #15 triage and #17's inbox part: blocking senders into Spam, sort orders remembered per
operator, filters with keyset paging and counts, conversations the bot answers out of the
operators' waiting views."""

from __future__ import annotations

import time

import pytest

from omniconsole.core.ingest import Ingestor
from omniconsole.models import ConversationStatus, IdentityKind, InboxOrder, InboxView, OperatorRole
from omniconsole.store import ActionError, InboxCursor, InboxFilter, Store
from omniconsole.store.bot import BotStore
from tests.conftest import inbound

T0 = time.time() - 7200  # the bot's handoff stamps the wall clock


@pytest.fixture
async def ingest(store: Store, tmp_path):
    ingestor = Ingestor(store, tmp_path / "data")
    channels: dict[str, int] = {}

    async def deliver(messages, channel="telegram"):
        if channel not in channels:
            channels[channel] = await store.ensure_channel(channel, channel)
        return await ingestor.ingest(channels[channel], channel, messages, None)

    return deliver


async def _conversation_of(store: Store, address: str) -> int:
    customer = await store.identity_owner("telegram", address)
    profile = await store.customer_profile(customer)
    return profile.conversations[0].id


async def test_block_moves_conversations_to_spam_and_later_messages_land_there(store, ingest):
    await ingest(
        [inbound("a1", "buy cheap pills", address="666", at=T0), inbound("b1", "where is my order", address="7", at=T0 + 1)]
    )
    spam_conv = await _conversation_of(store, "666")
    spammer = (await store.conversation(spam_conv)).customer_id
    await store.add_operator("alice", "Alice", OperatorRole.AGENT)

    moved = await store.block_sender(spammer, None, "alice")
    assert moved == [spam_conv]
    assert (await store.conversation(spam_conv)).status == "spam"
    counts = await store.inbox_counts("alice")
    assert counts[InboxView.SPAM] == 1 and counts[InboxView.ALL] == 1 and counts[InboxView.UNASSIGNED] == 1
    assert [r.conversation_id for r in await store.inbox_page(InboxView.SPAM)] == [spam_conv]
    assert spam_conv not in [r.conversation_id for r in await store.inbox_page(InboxView.ALL)]
    # The block is a line in the timeline and an event.
    assert any(e.direction == "event" and "blocked" in e.body for e in await store.timeline(spam_conv))
    assert "customer.blocked" in [e.kind for e in await store.events_since(0)]

    # Later messages are stored, in Spam, never waiting anywhere, and kept out of the pipeline.
    result = await ingest([inbound("a2", "more pills", address="666", at=T0 + 60)])
    assert len(result.stored) == 1 and result.spam == {spam_conv}
    assert [e.body for e in await store.timeline(spam_conv) if e.direction == "in"] == ["buy cheap pills", "more pills"]
    assert await store.next_waiting("alice") != spam_conv
    assert (await store.inbox_counts("alice"))[InboxView.SPAM] == 1
    with pytest.raises(ActionError, match="Spam"):
        await store.set_status(spam_conv, ConversationStatus.RESOLVED, "alice")
    with pytest.raises(ActionError, match="blocked already"):
        await store.block_sender(spammer, None, "alice")

    restored = await store.unblock_customer(spammer, "alice")
    assert restored == [spam_conv]
    assert (await store.conversation(spam_conv)).status == "open"
    counts = await store.inbox_counts("alice")
    assert counts[InboxView.SPAM] == 0 and counts[InboxView.ALL] == 2
    assert "customer.unblocked" in [e.kind for e in await store.events_since(0)]
    # Unblocked: their next message is ordinary work again.
    result = await ingest([inbound("a3", "sorry", address="666", at=T0 + 120)])
    assert result.spam == set() and result.conversations == {spam_conv}


async def test_block_remembers_each_status_and_a_resolved_blocked_customer_opens_spam(store, ingest):
    await ingest([inbound("a1", "hi", address="666", at=T0)])
    first = await _conversation_of(store, "666")
    customer = (await store.conversation(first)).customer_id
    await store.set_status(first, ConversationStatus.RESOLVED, "alice")
    await store.block_sender(customer, None, "alice")
    # A message after the block (the only conversation is resolved): a new one, in Spam.
    result = await ingest([inbound("a2", "again", address="666", at=T0 + 60)])
    [fresh] = result.spam
    assert fresh != first and (await store.conversation(fresh)).status == "spam"
    await store.unblock_customer(customer, "alice")
    assert (await store.conversation(first)).status == "resolved"
    assert (await store.conversation(fresh)).status == "open"


async def test_blocking_one_identity_leaves_the_customers_other_identity(store, ingest):
    await ingest([inbound("a1", "hi", address="666", at=T0)])
    conv = await _conversation_of(store, "666")
    customer = (await store.conversation(conv)).customer_id
    await store.add_identity(customer, "email", "x@example.com", "alice")
    profile = await store.customer_profile(customer)
    telegram = next(i for i in profile.identities if i.kind == "telegram")
    assert await store.block_sender(customer, telegram.id, "alice") == [conv]
    # Mail from the same customer is not blocked: it opens ordinary work, not Spam.
    result = await ingest(
        [inbound("m1", "by mail", kind=IdentityKind.EMAIL, address="x@example.com", at=T0 + 60)], channel="email"
    )
    assert result.spam == set()
    [mail_conv] = result.conversations
    assert mail_conv != conv and (await store.conversation(mail_conv)).status == "open"
    result = await ingest([inbound("a2", "tg again", address="666", at=T0 + 120)])
    assert result.spam == {conv}


async def _shop(store, ingest, n=30):
    """n customers; every third high or urgent, every fifth answered (not waiting)."""
    await store.add_operator("bob", "Bob")
    for i in range(n):
        await ingest([inbound(f"m{i}", f"question {i}", address=str(1000 + i), at=T0 + i * 60)])
    by_address = {}
    for i in range(n):
        conv = await _conversation_of(store, str(1000 + i))
        by_address[i] = conv
        if i % 3 == 0:
            await store.set_priority(conv, 1 + (i % 2), "alice")
        if i % 5 == 0:
            await store.queue_reply(conv, "answer", "bob")
        if i % 4 == 0:
            await store.assign(conv, "bob", "alice")
        if i % 6 == 0:
            await store.set_labels(conv, ["vip"], "alice")
    return by_address


async def _all_pages(store, view, order, only=None, operator="bob", size=7):
    rows, after = [], None
    while True:
        page = await store.inbox_page(view, operator, after=after, limit=size, order=order, only=only)
        rows += page
        if len(page) < size:
            return rows
        after = InboxCursor.after_row(page[-1], order)


@pytest.mark.parametrize("order", list(InboxOrder))
@pytest.mark.parametrize(
    "only",
    [None, InboxFilter(label="vip"), InboxFilter(priority=0), InboxFilter(channel="telegram", assignee="bob")],
)
async def test_orders_and_filters_page_by_keyset_and_offset_alike_and_count_right(store, ingest, order, only):
    await _shop(store, ingest)
    await ingest([inbound("e1", "by mail", kind=IdentityKind.EMAIL, address="e@example.com", at=T0 + 9999)], channel="email")
    for view in (InboxView.ALL, InboxView.MINE, InboxView.UNASSIGNED):
        everything = await store.inbox_page(view, "bob", limit=1000, order=order, only=only)
        paged = await _all_pages(store, view, order, only)
        assert [r.conversation_id for r in paged] == [r.conversation_id for r in everything]
        by_offset = []
        for offset in range(0, len(everything) + 7, 7):
            by_offset += await store.inbox_page(view, "bob", limit=7, offset=offset, order=order, only=only)
        assert [r.conversation_id for r in by_offset] == [r.conversation_id for r in everything]
        assert (await store.inbox_counts("bob", only))[view] == len(everything)
        for index, row in enumerate(everything):
            assert await store.conversation_index(view, "bob", row.conversation_id, order, only) == index
        if only and only.label:
            labels = [(await store.conversation(r.conversation_id)).labels for r in everything]
            assert labels and all("vip" in x for x in labels)
        if only and only.channel:
            assert all("telegram" in r.channel_kinds and r.assignee == "bob" for r in everything)
        if order is InboxOrder.PRIORITY:
            assert [r.priority for r in everything] == sorted((r.priority for r in everything), reverse=True)
            normal = [r.last_activity_at for r in everything if r.priority == 0]
            assert normal == sorted(normal, reverse=True)
        if order is InboxOrder.WAITING:
            waits = [r.waiting_since for r in everything]
            waiting = [w for w in waits if w is not None]
            assert waiting == sorted(waiting) and waits[: len(waiting)] == waiting  # waiting ones first, longest first
        if order is InboxOrder.ACTIVITY:
            assert [r.last_activity_at for r in everything] == sorted((r.last_activity_at for r in everything), reverse=True)


async def test_inbox_order_is_remembered_per_operator(store):
    assert await store.inbox_order("ann") is InboxOrder.PRIORITY
    await store.set_inbox_order("ann", InboxOrder.WAITING)
    await store.set_inbox_order("ben", InboxOrder.ACTIVITY)
    assert await store.inbox_order("ann") is InboxOrder.WAITING
    assert await store.inbox_order("ben") is InboxOrder.ACTIVITY
    with pytest.raises(ActionError, match="no inbox order"):
        await store.set_inbox_order("ann", "alphabetical")


async def test_conversations_the_bot_answers_stay_out_of_the_waiting_views_until_the_handoff(store, ingest):
    await store.add_operator("bob", "Bob")
    await ingest([inbound("b1", "how do I return?", address="42", at=T0), inbound("h1", "help", address="43", at=T0 + 1)])
    botted = await _conversation_of(store, "42")
    human = await _conversation_of(store, "43")
    bot = BotStore(store)
    await bot.begin(botted, (await store.conversation(botted)).customer_id)

    unassigned = [r.conversation_id for r in await store.inbox_page(InboxView.UNASSIGNED, "bob")]
    assert unassigned == [human]
    counts = await store.inbox_counts("bob")
    assert counts[InboxView.UNASSIGNED] == 1 and counts[InboxView.ALL] == 2
    # All still lists it, marked as the bot's (no waiting timer); "next waiting" skips it.
    row = next(r for r in await store.inbox_page(InboxView.ALL, "bob") if r.conversation_id == botted)
    assert row.bot
    assert await store.next_waiting("bob", human) is None
    assert await store.conversation_index(InboxView.UNASSIGNED, "bob", botted) is None
    # Assigned while the bot still answers: not in Mine either.
    await store.assign(botted, "bob", "bob")
    assert (await store.inbox_counts("bob"))[InboxView.MINE] == 0
    assert await store.inbox_page(InboxView.MINE, "bob") == []

    await bot.handoff(botted, "asked for a person", "request", "The customer asked for a person", "bot")
    mine = await store.inbox_page(InboxView.MINE, "bob")
    assert [r.conversation_id for r in mine] == [botted] and not mine[0].bot
    assert (await store.inbox_counts("bob"))[InboxView.MINE] == 1
    # The wait starts at the handoff, not at the customer's first message to the bot.
    assert mine[0].waiting_since > T0 + 1000
    assert await store.next_waiting("bob", human) == botted


async def test_a_blocked_senders_message_never_reaches_the_bot(tmp_path, store):
    from tests.unit.test_bot_states import make_rig

    rig = await make_rig(tmp_path, store, {"bot": "answer", "bot_name": "Bot"})
    question = "сколько стоит доставка и сколько дней она идёт?"
    first = await rig.say(question, address="5005")
    assert await rig.out(first)  # the bot answers an ordinary customer
    customer = (await store.conversation(first)).customer_id
    await store.set_status(first, ConversationStatus.RESOLVED, "alice")
    await store.block_sender(customer, None, "alice")
    rig.now += 60
    spam = await rig.say(question, address="5005")
    assert (await store.conversation(spam)).status == "spam"
    assert await rig.out(spam) == [] and await rig.state(spam) is None  # no bot, stored all the same
    assert [e.body for e in await store.timeline(spam) if e.direction == "in"] == [question]


async def test_a_block_holds_across_a_merge_and_unblocking_the_survivor_lifts_it(store, ingest):
    await ingest([inbound("a1", "spam", address="666", at=T0), inbound("b1", "hello", address="777", at=T0 + 1)])
    spam_conv = await _conversation_of(store, "666")
    blocked = (await store.conversation(spam_conv)).customer_id
    other_conv = await _conversation_of(store, "777")
    survivor = (await store.conversation(other_conv)).customer_id
    await store.block_sender(blocked, None, "alice")
    await store.merge_customers(survivor, blocked, "alice")
    # The same person: what either identity sends now is held.
    result = await ingest([inbound("b2", "more", address="777", at=T0 + 60)])
    assert result.spam
    assert [b.customer_id for b in await store.blocks(survivor)] == [blocked]
    restored = await store.unblock_customer(survivor, "alice")
    assert spam_conv in restored
    assert (await store.inbox_counts("alice"))[InboxView.SPAM] == 0
    assert await store.blocks(survivor) == []


async def test_a_blocked_callers_call_is_kept_in_spam_and_pops_no_window(store, tmp_path):
    from datetime import UTC, datetime

    from connectors.telephony import call_event

    ingestor = Ingestor(store, tmp_path / "data")
    phone = await store.ensure_channel("telephony", "Phone")

    async def ring(call_id: str) -> object:
        payload = {"event": "ringing", "call_id": call_id, "from": "+79991234567", "extension": "101"}
        payload["at"] = datetime.now(UTC).isoformat()
        return await ingestor.ingest(phone, "telephony", [call_event(payload)], None)

    first = await ring("c-1")
    conversation_id = first.receipts[0][2]
    customer = (await store.conversation(conversation_id)).customer_id
    await store.block_sender(customer, None, "alice")
    last_event = max(e.id for e in await store.events_since(0))
    second = await ring("c-2")
    assert second.spam == {conversation_id} and second.stored
    kinds = [e.kind for e in await store.events_since(last_event)]
    assert "call.ringing" not in kinds and "message.received" in kinds
    assert (await store.conversation(conversation_id)).status == "spam"


async def test_a_snooze_that_ended_while_blocked_still_ends_after_the_unblock(store, ingest):
    """The `snooze.end` row fires (and goes) while the conversation sits in Spam; the unblock
    gives it back as snoozed, and without a new row nothing would ever wake it."""
    from omniconsole.core.snooze import snooze_ended
    from omniconsole.store import schedule

    await ingest([inbound("a1", "hi", address="666", at=T0)])
    conversation = await _conversation_of(store, "666")
    customer = (await store.conversation(conversation)).customer_id
    until = time.time() + 60
    await store.set_status(conversation, ConversationStatus.SNOOZED, "alice", snoozed_until=until)
    await store.block_sender(customer, None, "alice")

    def fire(conn, at):
        row = schedule.take_due(conn, at, ["snooze.end"])
        return None if row is None else snooze_ended(conn, row, at)

    assert await store.db.write(fire, until + 1) is False  # in Spam: the end passes it by
    await store.unblock_customer(customer, "alice")
    assert (await store.conversation(conversation)).status == "snoozed"
    assert [(r.kind, r.conversation_id) for r in await store.db.run(schedule.scheduled)] == [("snooze.end", conversation)]
    assert await store.db.write(fire, until + 2) is True  # the core's scheduler handler wakes it
    assert (await store.conversation(conversation)).status == "open"
