"""Which conversation an inbound message belongs to.

Conversations belong to the customer, not to a channel (DESIGN.md): a message joins the e-mail
thread it answers (reopening it if it was resolved), else the customer's open conversation on
any channel, else it opens a new one. Runs inside the caller's write transaction.
"""

from __future__ import annotations

import sqlite3

from omniconsole.models import ConversationStatus, preview_line
from omniconsole.store.events import add_event
from omniconsole.store.records import NOT_WAITING, InboundRecord


def conversation_for(conn: sqlite3.Connection, record: InboundRecord, customer_id: int, cache: dict[int, int], now: float) -> int:
    """The id of the conversation `record` belongs to, opening one if needed.

    `cache` maps customer id -> open conversation id for the current batch (filled here), so
    a batch looks each customer up once; `now` (epoch seconds) stamps the events."""
    if record.reply_to_keys:
        marks = ", ".join("?" * len(record.reply_to_keys))
        row = conn.execute(
            f"SELECT m.conversation_id, c.status, c.customer_id FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            f" WHERE m.thread_key IN ({marks}) ORDER BY m.id DESC LIMIT 1",
            record.reply_to_keys,
        ).fetchone()
        if row is not None and row[1] == "spam":
            row = None  # a blocked sender's thread: this sender is not blocked (store/spam.py)
        open_one = None
        if row is not None and row[1] == "resolved":
            found = conn.execute(
                "SELECT id FROM conversations WHERE customer_id = ? AND status NOT IN ('resolved', 'spam') ORDER BY id DESC LIMIT 1",
                (row[2],),
            ).fetchone()
            open_one = found[0] if found else None
        if open_one is not None:
            # The customer has opened another conversation since: continue there rather than
            # keep two open at once.
            return open_one
        if row is not None and row[1] == "resolved" and record.flags & NOT_WAITING:
            # An auto-reply or bounce to our last mail is recorded, but reopens nothing.
            return row[0]
        if row is not None:
            conversation_id = row[0]
            reopened = conn.execute(
                "UPDATE conversations SET status = 'open', resolved_at = NULL, waiting_since = NULL"
                " WHERE id = ? AND status = 'resolved'",
                (conversation_id,),
            ).rowcount
            if reopened:
                add_event(
                    conn,
                    "conversation.reopened",
                    conversation_id=conversation_id,
                    customer_id=customer_id,
                    payload={"reason": "reply in an e-mail thread"},
                    at=now,
                )
            return conversation_id
    conversation_id = cache.get(customer_id)
    if conversation_id is not None:
        return conversation_id
    row = conn.execute(
        "SELECT id FROM conversations WHERE customer_id = ? AND status NOT IN ('resolved', 'spam') ORDER BY id DESC LIMIT 1",
        (customer_id,),
    ).fetchone()
    if row is not None:
        conversation_id = row[0]
    else:
        subject = record.subject or preview_line(record.body, 80)
        conversation_id = conn.execute(
            "INSERT INTO conversations (customer_id, status, subject, opened_at, last_activity_at) VALUES (?, ?, ?, ?, ?)",
            (customer_id, ConversationStatus.OPEN, subject, record.sent_at, record.sent_at),
        ).lastrowid  # the ingest hot path: see store/events.py on RETURNING
        add_event(conn, "conversation.opened", conversation_id=conversation_id, customer_id=customer_id, at=now)
    cache[customer_id] = conversation_id
    return conversation_id
