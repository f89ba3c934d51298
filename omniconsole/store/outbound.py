"""SQL of conversations the company starts (issue #22): a message to a customer who did not
write first, queued for the outbox like a reply.

The customer is found by a normalised identity, or created with it; the message joins the
customer's open conversation, else opens one `pending` (waiting on the customer) with
`started_by = 'company'`, and sets no first-response time: figures of such a conversation
measure from the customer's first reply (METRICS.md). The customer's answer finds that open
conversation (store/conversations.py), by the e-mail thread as well once the mail is sent.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from omniconsole.i18n import N_
from omniconsole.models import preview_line
from omniconsole.store.actions import ActionError, queued
from omniconsole.store.events import add_event
from omniconsole.store.identities import add_customer, identity_owner
from omniconsole.store.integrations import do_not_contact
from omniconsole.store.phones import PHONE_KINDS


@dataclass(frozen=True, slots=True)
class StartedMessage:
    """What `queue_first_message` queued (or had queued for the same idempotency key:
    `duplicate`), and its delivery state now."""

    message_id: int
    conversation_id: int
    customer_id: int
    channel_id: int
    state: str
    error: str
    duplicate: bool
    new_customer: bool = False


def by_idempotency_key(conn: sqlite3.Connection, key: str) -> StartedMessage | None:
    """The message queued earlier under `key`, with its state now; None when there is none."""
    row = conn.execute(
        "SELECT m.id, m.conversation_id, m.customer_id, m.channel_id, m.state, coalesce(m.error, '')"
        " FROM outbound_requests r JOIN messages m ON m.id = r.message_id WHERE r.idempotency_key = ?",
        (key,),
    ).fetchone()
    return StartedMessage(*row, duplicate=True) if row else None


def message_state(conn: sqlite3.Connection, message_id: int) -> StartedMessage | None:
    """An outbound message's conversation, customer, channel and delivery state, or None."""
    row = conn.execute(
        "SELECT id, conversation_id, customer_id, channel_id, state, coalesce(error, '') FROM messages"
        " WHERE id = ? AND direction = 'out'",
        (message_id,),
    ).fetchone()
    return StartedMessage(*row, duplicate=False) if row else None


def inbound_seen(conn: sqlite3.Connection, kind: str, address: str, channel_id: int) -> bool:
    """Whether the identity (kind, address) ever wrote to us on this channel."""
    kinds = PHONE_KINDS if kind in PHONE_KINDS else (kind,)
    marks = ", ".join("?" * len(kinds))
    return (
        conn.execute(
            "SELECT 1 FROM messages WHERE channel_id = ? AND direction = 'in' AND identity_id IN"
            f" (SELECT id FROM identities WHERE kind IN ({marks}) AND address = ?) LIMIT 1",
            (channel_id, *kinds, address),
        ).fetchone()
        is not None
    )


def last_inbound(conn: sqlite3.Connection, kind: str, address: str, channel_id: int) -> float | None:
    """When the identity (kind, address) last wrote to us on this channel (epoch seconds), or None."""
    kinds = PHONE_KINDS if kind in PHONE_KINDS else (kind,)
    marks = ", ".join("?" * len(kinds))
    row = conn.execute(
        "SELECT max(created_at) FROM messages WHERE channel_id = ? AND direction = 'in' AND identity_id IN"
        f" (SELECT id FROM identities WHERE kind IN ({marks}) AND address = ?)",
        (channel_id, *kinds, address),
    ).fetchone()
    return row[0] if row else None


def queue_first_message(
    conn: sqlite3.Connection,
    kind: str,
    address: str,
    channel_id: int,
    body: str,
    author: str,
    *,
    subject: str = "",
    meta: dict | None = None,
    idempotency_key: str | None = None,
    now: float | None = None,
) -> StartedMessage:
    """Queue a message the company starts to identity (kind, address), already normalised.

    With an `idempotency_key` seen before, nothing is queued and the earlier message is
    returned (`duplicate`). Raises ActionError in words when the customer is marked "do not
    contact"."""
    now = now or time.time()
    if idempotency_key:
        earlier = by_idempotency_key(conn, idempotency_key)
        if earlier is not None:
            return earlier
    customer_id = identity_owner(conn, kind, address)
    new_customer = customer_id is None
    if customer_id is None:
        customer_id = add_customer(conn, "", [(kind, address, "")], actor=author, now=now)
    barred = do_not_contact(conn, customer_id)
    if barred is not None:
        raise ActionError(
            N_('the customer is marked "do not contact" ({reason}); only replies to their own messages may go'), reason=barred[0]
        )
    kinds = PHONE_KINDS if kind in PHONE_KINDS else (kind,)
    marks = ", ".join("?" * len(kinds))
    identity_id = conn.execute(
        f"SELECT id FROM identities WHERE customer_id = ? AND address = ? AND kind IN ({marks})"
        " ORDER BY kind = ? DESC, id LIMIT 1",
        (customer_id, address, *kinds, kind),
    ).fetchone()[0]
    row = conn.execute(
        "SELECT id FROM conversations WHERE customer_id = ? AND status NOT IN ('resolved', 'spam') ORDER BY id DESC LIMIT 1",
        (customer_id,),
    ).fetchone()
    if row is not None:
        conversation_id = row[0]
    else:
        conversation_id = conn.execute(
            "INSERT INTO conversations (customer_id, status, subject, opened_at, last_activity_at, started_by)"
            " VALUES (?, 'pending', ?, ?, ?, 'company')",
            (customer_id, subject or preview_line(body, 80), now, now),
        ).lastrowid
        add_event(
            conn,
            "conversation.opened",
            actor=author,
            conversation_id=conversation_id,
            customer_id=customer_id,
            payload={"started_by": "company"},
            at=now,
        )
    message_id = conn.execute(
        "INSERT INTO messages (conversation_id, customer_id, channel_id, identity_id, direction, author, subject, body,"
        " created_at, state, next_attempt_at, meta) VALUES (?, ?, ?, ?, 'out', ?, ?, ?, ?, 'queued', ?, ?)",
        (
            conversation_id,
            customer_id,
            channel_id,
            identity_id,
            author,
            subject,
            body,
            now,
            now,
            json.dumps(meta, ensure_ascii=False) if meta else None,
        ),
    ).lastrowid
    if idempotency_key:
        conn.execute(
            "INSERT INTO outbound_requests (idempotency_key, message_id, created_at) VALUES (?, ?, ?)",
            (idempotency_key, message_id, now),
        )
    # Not a reply: the first-response clock is left alone (it starts with the customer's answer).
    queued(conn, conversation_id, customer_id, message_id, author, body, now, answered=False, payload={"started_by": "company"})
    return StartedMessage(message_id, conversation_id, customer_id, channel_id, "queued", "", False, new_customer)
