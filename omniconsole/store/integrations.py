"""SQL of the integrations (issue #22): "do not contact" on the customer, and each webhook
endpoint's cursor over the events log with its delivery state.

Do not contact: `customers.do_not_contact` holds why, in words ("operator alice: asked by
phone", "texted STOP on 2026-11-30 10:00"), and `do_not_contact_at` since when (epoch seconds);
NULL means the company may write first. It bars what the company starts (outbound-first
messages, surveys, rule messages, bulk sends), never a reply to the customer's own message:
`may_contact_first` is the one question other capabilities ask.

Webhooks: one `webhook_cursors` row per `[[webhooks]]` endpoint name. The dispatcher reads
`events WHERE id > last_event_id`, posts, and only then moves the cursor (at least once).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from omniconsole.store.customers import live_customer
from omniconsole.store.events import add_event


@dataclass(frozen=True, slots=True)
class WebhookState:
    """Where one endpoint stands: its cursor (an event id), how many events it took, how many
    attempts failed in a row, the last error in words, and times in epoch seconds."""

    endpoint: str
    last_event_id: int
    delivered: int
    failures: int
    last_error: str
    last_success_at: float | None
    next_attempt_at: float | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class WebhookSource:
    """One event as a webhook payload is built from it, with what is known of its customer and
    conversation (`erased`: the customer's personal data was erased, so none is sent)."""

    event_id: int
    at: float
    kind: str
    actor: str
    conversation_id: int | None
    customer_id: int | None
    message_id: int | None
    payload: dict
    erased: bool
    customer_name: str
    identities: tuple[tuple[str, str], ...]
    message: dict | None
    conversation: dict | None
    channel: dict | None = None


# --- do not contact ----------------------------------------------------------------------


def set_do_not_contact(
    conn: sqlite3.Connection, customer_id: int, reason: str | None, actor: str, now: float | None = None
) -> bool:
    """Mark (reason given) or clear (None) "do not contact" on a customer, following merges.

    Records `customer.updated` with `{"fields": ["do_not_contact"]}` when it changed; returns
    whether it did. StoreError when there is no such customer."""
    now = now or time.time()
    customer_id = live_customer(conn, customer_id)
    current = conn.execute("SELECT do_not_contact FROM customers WHERE id = ?", (customer_id,)).fetchone()[0]
    reason = (reason or "").strip() or None
    if (current is None) == (reason is None):
        return False  # already as asked (a second bar keeps the first reason and date)
    conn.execute(
        "UPDATE customers SET do_not_contact = ?, do_not_contact_at = ? WHERE id = ?",
        (reason, now if reason else None, customer_id),
    )
    add_event(
        conn,
        "customer.updated",
        actor=actor,
        customer_id=customer_id,
        payload={"fields": ["do_not_contact"], "do_not_contact": reason is not None},
        at=now,
    )
    return True


def do_not_contact(conn: sqlite3.Connection, customer_id: int) -> tuple[str, float] | None:
    """(reason, since epoch seconds) when the customer (after merges) must not be contacted
    first; None when the company may write first."""
    customer_id = live_customer(conn, customer_id)
    row = conn.execute("SELECT do_not_contact, do_not_contact_at FROM customers WHERE id = ?", (customer_id,)).fetchone()
    return None if row is None or row[0] is None else (row[0], row[1] or 0.0)


# --- webhook cursors ---------------------------------------------------------------------


def webhook_state(conn: sqlite3.Connection, endpoint: str) -> WebhookState | None:
    """One endpoint's row, or None before its first start."""
    row = conn.execute(
        "SELECT endpoint, last_event_id, delivered, failures, last_error, last_success_at, next_attempt_at, updated_at"
        " FROM webhook_cursors WHERE endpoint = ?",
        (endpoint,),
    ).fetchone()
    return WebhookState(*row) if row else None


def webhook_states(conn: sqlite3.Connection) -> list[WebhookState]:
    """Every endpoint's row, by name."""
    return [
        WebhookState(*row)
        for row in conn.execute(
            "SELECT endpoint, last_event_id, delivered, failures, last_error, last_success_at, next_attempt_at, updated_at"
            " FROM webhook_cursors ORDER BY endpoint"
        )
    ]


def start_webhook(conn: sqlite3.Connection, endpoint: str, now: float | None = None) -> WebhookState:
    """The endpoint's row, created at the newest event on its first start (a new subscription
    gets what happens from now on, not the whole past)."""
    state = webhook_state(conn, endpoint)
    if state is not None:
        return state
    now = now or time.time()
    last = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    conn.execute("INSERT INTO webhook_cursors (endpoint, last_event_id, updated_at) VALUES (?, ?, ?)", (endpoint, last, now))
    return webhook_state(conn, endpoint)


def webhook_delivered(conn: sqlite3.Connection, endpoint: str, last_event_id: int, count: int, now: float | None = None) -> None:
    """Move the endpoint's cursor past `last_event_id` after `count` events were accepted
    (or skipped as not subscribed); clears its failures."""
    now = now or time.time()
    conn.execute(
        "UPDATE webhook_cursors SET last_event_id = max(last_event_id, ?), delivered = delivered + ?, failures = 0,"
        " last_error = '', last_success_at = CASE WHEN ? > 0 THEN ? ELSE last_success_at END,"
        " next_attempt_at = NULL, updated_at = ? WHERE endpoint = ?",
        (last_event_id, count, count, now, now, endpoint),
    )


def webhook_failed(conn: sqlite3.Connection, endpoint: str, error: str, next_attempt_at: float, now: float | None = None) -> None:
    """Record one failed attempt (the cursor stays; the same event is tried again)."""
    now = now or time.time()
    conn.execute(
        "UPDATE webhook_cursors SET failures = failures + 1, last_error = ?, next_attempt_at = ?, updated_at = ?"
        " WHERE endpoint = ?",
        (error[:500], next_attempt_at, now, endpoint),
    )


def webhook_backlog(conn: sqlite3.Connection, last_event_id: int) -> int:
    """How many events are after `last_event_id` (what an endpoint has yet to see)."""
    return conn.execute("SELECT count(*) FROM events WHERE id > ?", (last_event_id,)).fetchone()[0]


def webhook_sources(
    conn: sqlite3.Connection, after: int, kinds: tuple[str, ...], limit: int = 200
) -> tuple[list[WebhookSource], int]:
    """Events after `after` whose kind is in `kinds`, oldest first, with their customer,
    conversation and message; and the last event id looked at (so events of other kinds are
    passed over once, not read again)."""
    rows = conn.execute(
        "SELECT id, at, kind, actor, conversation_id, customer_id, message_id, payload FROM events"
        " WHERE id > ? ORDER BY id LIMIT ?",
        (after, limit),
    ).fetchall()
    if not rows:
        return [], after
    wanted = set(kinds)
    sources = []
    for event_id, at, kind, actor, conversation_id, customer_id, message_id, payload in rows:
        if kind not in wanted:
            continue
        erased = False
        name = ""
        identities: tuple[tuple[str, str], ...] = ()
        if customer_id is not None:
            c = conn.execute("SELECT display_name, erased_at FROM customers WHERE id = ?", (customer_id,)).fetchone()
            if c is not None:
                erased = c[1] is not None
                name = c[0] or ""
                identities = tuple(
                    (k, a)
                    for k, a in conn.execute(
                        "SELECT kind, address FROM identities WHERE customer_id = ? ORDER BY id", (customer_id,)
                    )
                )
        message = None
        if message_id is not None:
            m = conn.execute(
                "SELECT m.direction, m.author, m.subject, m.body, m.state, m.error, m.created_at, ch.kind, ch.name"
                " FROM messages m LEFT JOIN channels ch ON ch.id = m.channel_id WHERE m.id = ?",
                (message_id,),
            ).fetchone()
            if m is not None:
                message = {
                    "id": message_id,
                    "direction": m[0],
                    "author": m[1],
                    "subject": m[2] or "",
                    "body": m[3] or "",
                    "state": m[4],
                    "error": m[5] or "",
                    "created_at": m[6],
                    "channel": m[7],
                    "channel_name": m[8],
                }
        conversation = None
        if conversation_id is not None:
            v = conn.execute(
                "SELECT status, assignee, subject, opened_at, resolved_at FROM conversations WHERE id = ?",
                (conversation_id,),
            ).fetchone()
            if v is not None:
                conversation = {
                    "id": conversation_id,
                    "status": v[0],
                    "assignee": v[1],
                    "subject": v[2] or "",
                    "opened_at": v[3],
                    "resolved_at": v[4],
                }
        data = json.loads(payload) if payload else {}
        channel = None
        if kind == "channel.health" and isinstance(data.get("channel_id"), int):
            h = conn.execute("SELECT kind, name FROM channels WHERE id = ?", (data["channel_id"],)).fetchone()
            if h is not None:
                channel = {"id": data["channel_id"], "kind": h[0], "name": h[1]}
        sources.append(
            WebhookSource(
                event_id,
                at,
                kind,
                actor or "",
                conversation_id,
                customer_id,
                message_id,
                data,
                erased,
                name,
                identities,
                message,
                conversation,
                channel,
            )
        )
    return sources, rows[-1][0]
