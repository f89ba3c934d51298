"""Reactions in the store (omniconsole/store/reactions.py): kept on the message they are on,
never a customer message; the person's latest reaction wins, a late older one changes nothing;
they follow merges and go with an erasure."""

from __future__ import annotations

from pathlib import Path

from connectors.payload import REACTION
from omniconsole.core.ingest import Ingestor
from omniconsole.models import ConversationStatus, IdentityKind, InboxView
from omniconsole.store import Store, history
from tests.conftest import inbound


def reaction(external_id: str, target: str, emoji: str, at: float, address: str = "1001"):
    return inbound(
        external_id,
        f"Reacted {emoji}" if emoji else "Removed a reaction",
        address=address,
        at=at,
        reply_to_external_id=target,
        flags=frozenset({REACTION}),
        meta={"emoji": emoji},
    )


async def reactions_rows(store: Store) -> list[tuple]:
    return await store.db.run(
        lambda conn: [
            tuple(r) for r in conn.execute("SELECT target_external_id, message_id, customer_id, emoji FROM reactions ORDER BY id")
        ]
    )


async def test_latest_reaction_wins_replays_change_nothing_and_nothing_opens(store: Store, tmp_path: Path) -> None:
    ingestor = Ingestor(store, tmp_path / "data")
    channel = await store.ensure_channel("telegram", "telegram")
    await ingestor.ingest(channel, "telegram", [inbound("1001:1", "hello", at=1000)], "c1")
    [row] = await store.inbox_page(InboxView.ALL)
    await store.set_status(row.conversation_id, ConversationStatus.RESOLVED, "alice")
    [message] = [e.id for e in await store.timeline(row.conversation_id) if e.direction == "in"]
    await ingestor.ingest(channel, "telegram", [reaction("r1", "1001:1", "👍", 2000)], "c2")
    await ingestor.ingest(channel, "telegram", [reaction("r1", "1001:1", "👍", 2000)], "c3")  # replayed
    await ingestor.ingest(channel, "telegram", [reaction("r0", "1001:1", "👎", 1500)], "c4")  # older, late
    assert [(r.emoji, r.message_id) for r in (await store.reactions(row.conversation_id))[message]] == [("👍", message)]
    assert await store.inbox_page(InboxView.ALL) == [] and await store.cursor(channel) == "c4"
    assert (await store.conversation(row.conversation_id)).status == "resolved"
    await ingestor.ingest(channel, "telegram", [reaction("r2", "1001:1", "", 3000)], None)  # taken off
    assert await store.reactions(row.conversation_id) == {}
    kinds = [e.kind for e in await store.events_since(0)]
    assert kinds.count("message.reacted") == 2 and kinds.count("conversation.opened") == 1


async def test_a_reaction_to_an_unknown_message_is_kept_and_opens_nothing(store: Store, tmp_path: Path) -> None:
    ingestor = Ingestor(store, tmp_path / "data")
    channel = await store.ensure_channel("telegram", "telegram")
    await ingestor.ingest(channel, "telegram", [reaction("r1", "1001:77", "❤", 1000, address="5005")], None)
    assert await reactions_rows(store) == [("1001:77", None, None, "❤")]
    assert await store.inbox_page(InboxView.ALL) == [] and await store.stats() is not None


async def test_reactions_follow_a_merge_and_go_with_an_erasure(store: Store, tmp_path: Path) -> None:
    ingestor = Ingestor(store, tmp_path / "data")
    channel = await store.ensure_channel("telegram", "telegram")
    await ingestor.ingest(channel, "telegram", [inbound("1001:1", "hi", at=1000)], None)
    [row] = await store.inbox_page(InboxView.ALL)
    await ingestor.ingest(channel, "telegram", [reaction("r1", "1001:1", "👍", 2000)], None)
    other = await store.db.write(history.add_customer, "Ivan (CRM)", [(str(IdentityKind.EMAIL), "ivan@example.com", "")])
    merge = await store.merge_customers(other, row.customer_id, "alice")
    assert [r[2] for r in await reactions_rows(store)] == [other]
    await store.unmerge(merge, "alice")
    assert [r[2] for r in await reactions_rows(store)] == [row.customer_id]
    await store.erase_customer(row.customer_id, "alice")
    assert await reactions_rows(store) == []
