"""The outbox's rows: outbound messages move queued -> sending -> sent | failed.

A row is claimed (`sending`) in its own transaction before the connector is called, and its
result is recorded in another. A crash in between leaves it in `sending`; at start the core
puts such rows back in the queue (`recover_sending`), so every reply is sent at least once.
Connectors that can (e-mail Message-ID, VK random_id) make that resend recognisable.
"""

from __future__ import annotations

import json
import sqlite3
import time

from omniconsole.models import DeliveryState
from omniconsole.store.events import add_event
from omniconsole.store.rows import OutboxItem

# Delivery states only move forward: queued < sending < sent < delivered < read (a late
# "delivered" webhook must not undo "read"; channels' status callbacks arrive out of order).
# `failed` is final against every stage: it applies over any of them, and nothing a channel
# says afterwards (a late "sent", "delivered" or "read" for the same message) turns it back or
# erases its reason. WhatsApp may report `failed` and then nothing else, so a failure is what
# the operator must see; only the operator's retry (`retry_failed`) moves the message on.
_RANK = {
    DeliveryState.QUEUED: 0,
    DeliveryState.SENDING: 1,
    DeliveryState.SENT: 2,
    DeliveryState.DELIVERED: 3,
    DeliveryState.READ: 4,
}


def moves_forward(current: DeliveryState | None, new: DeliveryState, current_error: str = "") -> bool:
    """Whether a channel's word `new` about a message in state `current` changes it (see
    `_RANK`). A repeated failure changes only a failure that had no reason."""
    if current is DeliveryState.FAILED:
        return new is DeliveryState.FAILED and not current_error
    if new is DeliveryState.FAILED:
        return True
    return _RANK.get(new, 0) > _RANK.get(current, -1)


def recover_sending(conn: sqlite3.Connection, now: float | None = None) -> int:
    """Requeue rows a crash left in `sending`; returns how many."""
    now = now or time.time()
    return conn.execute(
        # The repeated IN (...) lets SQLite use the partial index messages_outbox.
        "UPDATE messages SET state = 'queued', next_attempt_at = ? WHERE state IN ('queued', 'sending') AND state = 'sending'",
        (now,),
    ).rowcount


def claim_due(conn: sqlite3.Connection, channel_ids: list[int], limit: int = 20, now: float | None = None) -> list[OutboxItem]:
    """Mark up to `limit` due queued messages of these channels as `sending` and return them
    with their recipient and threading details."""
    if not channel_ids:
        return []
    now = now or time.time()
    marks = ", ".join("?" * len(channel_ids))
    rows = conn.execute(
        "SELECT m.id, m.conversation_id, m.channel_id, i.kind, i.address, m.body, m.author, m.attempts, m.identity_id, m.meta"
        " FROM messages m JOIN identities i ON i.id = m.identity_id"
        # `state IN (...)` repeats the partial index's condition so SQLite uses it (plain
        # `state = 'queued'` made it scan every message).
        f" WHERE m.state IN ('queued', 'sending') AND m.state = 'queued' AND m.next_attempt_at <= ? AND m.channel_id IN ({marks})"
        " ORDER BY m.next_attempt_at, m.id LIMIT ?",
        (now, *channel_ids, limit),
    ).fetchall()
    items = []
    for r in rows:
        message_id, conversation_id, channel_id, kind, address, body, author, attempts, identity_id, own_meta = r
        conn.execute("UPDATE messages SET state = 'sending', attempts = attempts + 1 WHERE id = ?", (message_id,))
        # What to answer: the customer's latest message on this channel from this identity
        # (its chat id, its e-mail thread), preferring this conversation.
        last_in = (
            conn.execute(
                "SELECT meta, thread_key, reply_to_keys, subject, external_id FROM messages"
                " WHERE conversation_id = ? AND identity_id = ? AND channel_id = ? AND direction = 'in'"
                " ORDER BY id DESC LIMIT 1",
                (conversation_id, identity_id, channel_id),
            ).fetchone()
            or conn.execute(
                "SELECT m.meta, m.thread_key, m.reply_to_keys, m.subject, m.external_id FROM conversations c"
                " JOIN messages m ON m.conversation_id = c.id"
                " WHERE c.customer_id = (SELECT customer_id FROM identities WHERE id = ?) AND m.identity_id = ?"
                " AND m.channel_id = ? AND m.direction = 'in' ORDER BY m.id DESC LIMIT 1",
                (identity_id, identity_id, channel_id),
            ).fetchone()
        )
        meta = thread_key = subject = None
        reply_to_keys: tuple[str, ...] = ()
        if last_in is not None:
            meta, thread_key, keys, subject, _ = last_in
            reply_to_keys = tuple((keys or "").split())
        if own_meta:
            # What the operator chose for this message (a WhatsApp template) goes with what
            # the channel needs to answer (the chat id); the message's own word wins.
            meta = json.dumps({**json_object(meta), **json_object(own_meta)}, ensure_ascii=False)
        if not subject:
            subject = conn.execute("SELECT subject FROM conversations WHERE id = ?", (conversation_id,)).fetchone()[0]
        paths = tuple(
            p[0]
            for p in conn.execute(
                "SELECT path FROM attachments WHERE message_id = ? AND path IS NOT NULL ORDER BY id", (message_id,)
            )
        )
        items.append(
            OutboxItem(
                message_id,
                conversation_id,
                channel_id,
                kind,
                address,
                body,
                subject or "",
                author,
                attempts + 1,
                thread_key,
                reply_to_keys,
                None,
                meta,
                paths,
            )
        )
    return items


def json_object(text: str | None) -> dict:
    """A JSON object stored as text (a message's meta); {} for nothing or anything else."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def last_inbound_at(conn: sqlite3.Connection, identity_id: int, channel_id: int) -> float | None:
    """When this identity last wrote on this channel (WhatsApp's 24-hour window starts there)."""
    return conn.execute(
        "SELECT max(m.created_at) FROM identities i JOIN conversations c ON c.customer_id = i.customer_id"
        " JOIN messages m ON m.conversation_id = c.id"
        " WHERE i.id = ? AND m.identity_id = ? AND m.channel_id = ? AND m.direction = 'in'",
        (identity_id, identity_id, channel_id),
    ).fetchone()[0]


def next_due(conn: sqlite3.Connection, channel_ids: list[int]) -> float | None:
    """When the next queued message of these channels falls due (None: nothing queued)."""
    if not channel_ids:
        return None
    marks = ", ".join("?" * len(channel_ids))
    return conn.execute(
        f"SELECT min(next_attempt_at) FROM messages WHERE state IN ('queued', 'sending') AND state = 'queued'"
        f" AND channel_id IN ({marks})",
        channel_ids,
    ).fetchone()[0]


def mark_sent(conn: sqlite3.Connection, message_id: int, external_id: str, state: DeliveryState, thread_key: str | None) -> None:
    """Record a successful send with the channel's id for the message."""
    try:
        row = conn.execute(
            "UPDATE messages SET state = ?, external_id = ?, thread_key = coalesce(?, thread_key), error = '',"
            " next_attempt_at = NULL WHERE id = ? RETURNING conversation_id, customer_id",
            (state, external_id, thread_key, message_id),
        ).fetchone()
    except sqlite3.IntegrityError:
        # The channel already gave us a message with this id (our own mail came back in
        # through the mailbox): the send happened all the same; keep it without the id.
        row = conn.execute(
            "UPDATE messages SET state = ?, thread_key = coalesce(?, thread_key), error = '', next_attempt_at = NULL"
            " WHERE id = ? RETURNING conversation_id, customer_id",
            (state, thread_key, message_id),
        ).fetchone()
    if row:
        add_event(
            conn, "message.sent", conversation_id=row[0], customer_id=row[1], message_id=message_id, payload={"state": state}
        )
        channel_id = conn.execute("SELECT channel_id FROM messages WHERE id = ?", (message_id,)).fetchone()[0]
        early = conn.execute(
            "SELECT state, error FROM early_deliveries WHERE channel_id = ? AND external_id = ?", (channel_id, external_id)
        ).fetchall()
        if early:
            # The channel spoke before we recorded the send: apply what it said, in order.
            for early_state, error in sorted(early, key=lambda r: _RANK.get(DeliveryState(r[0]), 0) if r[0] != "failed" else 99):
                apply_delivery_update(conn, channel_id, external_id, DeliveryState(early_state), error)
            conn.execute("DELETE FROM early_deliveries WHERE channel_id = ? AND external_id = ?", (channel_id, external_id))


def mark_retry(conn: sqlite3.Connection, message_id: int, reason: str, retry_at: float) -> None:
    """A transient failure: back in the queue until `retry_at`, with the reason shown."""
    row = conn.execute(
        "UPDATE messages SET state = 'queued', error = ?, next_attempt_at = ? WHERE id = ? RETURNING conversation_id, customer_id",
        (reason, retry_at, message_id),
    ).fetchone()
    if row:
        add_event(
            conn,
            "message.retrying",
            conversation_id=row[0],
            customer_id=row[1],
            message_id=message_id,
            payload={"reason": reason, "retry_at": retry_at},
        )


def mark_failed(conn: sqlite3.Connection, message_id: int, reason: str) -> None:
    """A permanent failure: the operator sees the reason and may retry by hand."""
    row = conn.execute(
        "UPDATE messages SET state = 'failed', error = ?, next_attempt_at = NULL WHERE id = ? RETURNING conversation_id, customer_id",
        (reason, message_id),
    ).fetchone()
    if row:
        add_event(
            conn, "message.failed", conversation_id=row[0], customer_id=row[1], message_id=message_id, payload={"reason": reason}
        )


def retry_failed(conn: sqlite3.Connection, message_id: int, actor: str) -> bool:
    """An operator asks to send a failed message again; returns False if it had not failed."""
    row = conn.execute(
        "UPDATE messages SET state = 'queued', error = '', next_attempt_at = ? WHERE id = ? AND state = 'failed'"
        " RETURNING conversation_id, customer_id",
        (time.time(), message_id),
    ).fetchone()
    if row:
        add_event(conn, "message.queued", actor=actor, conversation_id=row[0], customer_id=row[1], message_id=message_id)
    return row is not None


_EARLY_KEEP = 86400.0  # seconds an early delivery word waits for its send's record


def apply_delivery_update(
    conn: sqlite3.Connection, channel_id: int, external_id: str, state: DeliveryState, error: str = ""
) -> bool:
    """A later word from the channel (sent, delivered, read, failed + reason in words) about a
    message we sent, for every channel. Applied only when it moves the state forward (see
    `_RANK`); a word about a send not recorded yet waits in `early_deliveries` for `mark_sent`.
    Returns True when the message changed."""
    row = conn.execute(
        "SELECT id, state, conversation_id, customer_id, error FROM messages"
        " WHERE channel_id = ? AND external_id = ? AND direction = 'out'",
        (channel_id, external_id),
    ).fetchone()
    if row is None:
        # Perhaps the send is not recorded yet: keep the word for mark_sent.
        now = time.time()
        conn.execute(
            "INSERT INTO early_deliveries (channel_id, external_id, state, error, at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (channel_id, external_id, state) DO UPDATE SET error = excluded.error, at = excluded.at",
            (channel_id, external_id, str(state), error, now),
        )
        conn.execute("DELETE FROM early_deliveries WHERE at < ?", (now - _EARLY_KEEP,))
        return False
    current = DeliveryState(row[1]) if row[1] in DeliveryState._value2member_map_ else None
    if not moves_forward(current, state, row[4]):
        return False
    # The state and its check are one statement, so a concurrent writer cannot step it back.
    changed = conn.execute(
        "UPDATE messages SET state = ?, error = ? WHERE id = ? AND state = ?", (state, error, row[0], row[1])
    ).rowcount
    if not changed:
        return False
    add_event(
        conn,
        "message.delivery",
        conversation_id=row[2],
        customer_id=row[3],
        message_id=row[0],
        payload={"state": state, "error": error},
    )
    return True
