"""Blocked senders and the Spam view (issue #15).

An operator blocks a customer (every identity, also ones added later) or one identity of
theirs. Blocking moves the conversations that belong to the sender to status `spam` (bucket
`spam`: listed only in the Spam view, counted by the triggers like every bucket) and records
the status each had; their later messages are stored as always (nothing is dropped) in a spam
conversation, which never waits, is never routed, answered by the bot or surveyed (ingest tells
the core which messages were spam: `IngestResult.spam`). Unblocking puts every moved
conversation back to the status it had (`open` for one that began while blocked; a snoozed one
gets its snooze's end scheduled again).

Each block and unblock is a line in the timeline of every conversation it moved and one event
(`customer.blocked`, `customer.unblocked`) with what it moved. Times are float epoch seconds.
The functions run inside the caller's write transaction.
"""

from __future__ import annotations

import sqlite3
import time

from omniconsole.i18n import N_, phrase
from omniconsole.models import ConversationStatus, preview_line
from omniconsole.store import schedule as timers
from omniconsole.store.actions import SNOOZE_END, ActionError, _timeline_event, status_word  # noqa: PLC2701 - one store, one helper
from omniconsole.store.events import add_event
from omniconsole.store.records import InboundRecord
from omniconsole.store.rows import Block


def any_blocks(conn: sqlite3.Connection) -> bool:
    """Whether anyone is blocked (ingest skips the per-message lookup when nobody is)."""
    return conn.execute("SELECT EXISTS (SELECT 1 FROM blocks) AS blocked").fetchone()[0] == 1


def block_for(conn: sqlite3.Connection, customer_id: int, identity_id: int | None) -> int | None:
    """The block that holds a message of `customer_id` written from `identity_id`, or None: a
    block of that identity (wherever a merge moved it), of the whole customer, or of a customer
    merged into them (a merge says they are one person)."""
    row = conn.execute(
        "SELECT b.id FROM blocks b WHERE b.identity_id = ?"
        " UNION ALL SELECT b.id FROM blocks b WHERE b.identity_id IS NULL AND b.customer_id = ?"
        " UNION ALL SELECT b.id FROM blocks b JOIN customers cu ON cu.id = b.customer_id"
        " WHERE b.identity_id IS NULL AND cu.merged_into = ? LIMIT 1",
        (identity_id or 0, customer_id, customer_id),
    ).fetchone()
    return row[0] if row else None


def blocks(conn: sqlite3.Connection, customer_id: int) -> list[Block]:
    """The blocks that hold the customer, oldest first: theirs, those of customers merged into
    them, and those that moved a conversation now theirs to Spam."""
    return [
        Block(*r)
        for r in conn.execute(
            "SELECT b.id, b.customer_id, b.identity_id, b.blocked_by, b.blocked_at FROM blocks b"
            " WHERE b.customer_id = ? OR b.customer_id IN (SELECT cu.id FROM customers cu WHERE cu.merged_into = ?)"
            " OR b.id IN (SELECT s.block_id FROM spam_conversations s JOIN conversations c ON c.id = s.conversation_id"
            " WHERE c.customer_id = ?) ORDER BY b.id",
            (customer_id, customer_id, customer_id),
        )
    ]


def spam_conversation(
    conn: sqlite3.Connection, block_id: int, customer_id: int, record: InboundRecord, cache: dict[int, int], now: float
) -> int:
    """The spam conversation a blocked sender's message goes to: the customer's latest one that
    was not resolved before the block, else a new one (status `spam`, remembered as `open` for an unblock). `cache` maps customer
    id -> spam conversation for the current batch."""
    found = cache.get(customer_id)
    if found is not None:
        return found
    # Not one that was resolved before the block: an unblock would hide the message in it.
    row = conn.execute(
        "SELECT c.id FROM conversations c JOIN spam_conversations s ON s.conversation_id = c.id"
        " WHERE c.customer_id = ? AND c.status = 'spam' AND s.previous_status <> 'resolved' ORDER BY c.id DESC LIMIT 1",
        (customer_id,),
    ).fetchone()
    if row is not None:
        cache[customer_id] = row[0]
        return row[0]
    subject = record.subject or preview_line(record.body, 80)
    conversation_id = conn.execute(
        "INSERT INTO conversations (customer_id, status, subject, opened_at, last_activity_at) VALUES (?, 'spam', ?, ?, ?)"
        " RETURNING id",
        (customer_id, subject, record.sent_at, record.sent_at),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO spam_conversations (conversation_id, block_id, previous_status, moved_at) VALUES (?, ?, 'open', ?)",
        (conversation_id, block_id, now),
    )
    add_event(
        conn, "conversation.opened", conversation_id=conversation_id, customer_id=customer_id, payload={"spam": True}, at=now
    )
    cache[customer_id] = conversation_id
    return conversation_id


def _identity(conn: sqlite3.Connection, customer_id: int, identity_id: int | None) -> str:
    if identity_id is None:
        return ""
    row = conn.execute(
        "SELECT kind, address FROM identities WHERE id = ? AND customer_id = ?", (identity_id, customer_id)
    ).fetchone()
    if row is None:
        raise ActionError(
            N_("identity {identity} is not one of customer {customer}'s"), identity=identity_id, customer=customer_id
        )
    return f"{row[0]} {row[1]}"


def block(conn: sqlite3.Connection, customer_id: int, identity_id: int | None, actor: str, now: float | None = None) -> list[int]:
    """Block a customer (`identity_id` None) or one identity of theirs; returns the ids of the
    conversations moved to Spam. With an identity, only conversations in which every customer
    message came from that identity move (the customer's other conversations are theirs).
    ActionError when the customer or identity does not exist or is blocked already."""
    now = now or time.time()
    if conn.execute("SELECT 1 FROM customers WHERE id = ? AND merged_into IS NULL", (customer_id,)).fetchone() is None:
        raise ActionError(N_("customer {id} does not exist"), id=customer_id)
    what = _identity(conn, customer_id, identity_id)
    # With no identity, block_for names only whole-customer blocks: an identity's block may
    # widen to the whole customer; an identity of a blocked customer is blocked already.
    if block_for(conn, customer_id, identity_id) is not None:
        raise ActionError(N_("this sender is blocked already"))
    block_id = conn.execute(
        "INSERT INTO blocks (customer_id, identity_id, blocked_by, blocked_at) VALUES (?, ?, ?, ?) RETURNING id",
        (customer_id, identity_id, actor, now),
    ).fetchone()[0]
    sql = "SELECT c.id, c.status FROM conversations c WHERE c.customer_id = ? AND c.status <> 'spam'"
    params: list = [customer_id]
    if identity_id is not None:
        sql += (
            " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.direction = 'in'"
            " AND (m.identity_id IS NULL OR m.identity_id <> ?))"
        )
        params.append(identity_id)
    moved = conn.execute(sql + " ORDER BY c.id", params).fetchall()
    if what:
        words = phrase(N_("{actor} blocked the sender {sender}: moved to Spam"), actor=actor, sender=what)
    else:
        words = phrase(N_("{actor} blocked this customer: moved to Spam"), actor=actor)
    for conversation_id, status in moved:
        conn.execute(
            "INSERT INTO spam_conversations (conversation_id, block_id, previous_status, moved_at) VALUES (?, ?, ?, ?)",
            (conversation_id, block_id, status, now),
        )
        conn.execute("UPDATE conversations SET status = 'spam' WHERE id = ?", (conversation_id,))
        _timeline_event(conn, conversation_id, customer_id, actor, words, now)
    ids = [r[0] for r in moved]
    add_event(
        conn,
        "customer.blocked",
        actor=actor,
        conversation_id=ids[-1] if ids else None,
        customer_id=customer_id,
        payload={"identity": what, "conversations": ids},
        at=now,
    )
    return ids


def unblock(conn: sqlite3.Connection, customer_id: int, actor: str, now: float | None = None) -> list[int]:
    """Lift every block of a customer: each conversation a block moved (or opened in Spam) gets
    back the status it had; returns their ids. ActionError when the customer is not blocked."""
    now = now or time.time()
    found = blocks(conn, customer_id)
    if not found:
        raise ActionError(N_("this customer is not blocked"))
    restored: list[int] = []
    for b in found:
        for conversation_id, previous in conn.execute(
            "SELECT s.conversation_id, s.previous_status FROM spam_conversations s WHERE s.block_id = ? ORDER BY s.conversation_id",
            (b.id,),
        ).fetchall():
            status = previous if previous in {s.value for s in ConversationStatus} - {"spam"} else "open"
            back = conn.execute(
                "UPDATE conversations SET status = ? WHERE id = ? AND status = 'spam' RETURNING snoozed_until",
                (status, conversation_id),
            ).fetchone()
            if status == "snoozed" and back is not None and back[0] is not None:
                # Its `snooze.end` row may have fired (and gone) while it sat in Spam: put it
                # again, so the scheduler wakes it (at once when the time has passed).
                timers.schedule(conn, SNOOZE_END, back[0], now, conversation_id=conversation_id)
            line = phrase(N_("{actor} unblocked this customer: back as {status}"), actor=actor, status=status_word(status))
            _timeline_event(conn, conversation_id, customer_id, actor, line, now)
            restored.append(conversation_id)
        conn.execute("DELETE FROM spam_conversations WHERE block_id = ?", (b.id,))
        conn.execute("DELETE FROM blocks WHERE id = ?", (b.id,))
    add_event(
        conn,
        "customer.unblocked",
        actor=actor,
        conversation_id=restored[-1] if restored else None,
        customer_id=customer_id,
        payload={"conversations": restored},
        at=now,
    )
    return restored
