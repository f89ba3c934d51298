"""The events log's one writer, and what each kind of event is kept for.

Every change a window must learn about is appended here, inside the transaction that made it
(`add_event`); followers read `events WHERE id > ?` (ids come from AUTOINCREMENT, so they only
grow and are never reused). No other module writes the table: a test greps the tree for it.

Each event belongs to one of three retention classes, stored in its `keep` column:

* ``live``: it only drives live updates (a message arrived or changed state, a read mark, a
  channel's health, a ringing phone, a refresh hint). What it points at is kept elsewhere (the
  message row, the channel row), so the core prunes these after `[retention] live_days`.
* ``history``: everything a timeline shows or a figure is computed from: conversations opened,
  reopened, resolved, snoozed, assigned, prioritised, labelled; customers created, identities
  added, suggestions; calls; bot, rule, routing and SLA decisions. Kept.
* ``audit``: who did what to people's data and rights: exports, erasures, merges and unmerges,
  operators added or removed (role changes). Kept.

A kind not listed here is history: keeping an unknown event is the safe mistake.
"""

from __future__ import annotations

import json
import sqlite3
import time

#: Event kinds that only drive live updates; pruned after `[retention] live_days`.
LIVE_KINDS = frozenset(
    {
        "message.received",
        "message.queued",
        "message.sent",
        "message.delivery",
        "message.retrying",
        "message.failed",
        "message.edited",
        "note.added",
        "conversation.read",
        "channel.health",
        "call.ringing",
    }
)
#: Event kinds of the audit trail: personal-data requests, merges, operators and their roles.
AUDIT_KINDS = frozenset(
    {
        "customer.exported",
        "customer.erased",
        "customer.merged",
        "customer.merged_away",
        "customer.unmerged",
        "operator.added",
        "operator.removed",
        "messages.expired",
    }
)
LIVE, HISTORY, AUDIT = "live", "history", "audit"

#: Event kinds that can change a conversation's figures (store/facts.py): appending one marks
#: the conversation stale, and its `conversation_facts` rows are rewritten before COMMIT.
FACT_EVENT_KINDS = frozenset(
    {
        "bot.handoff",
        "bot.resolved",
        "bot.taken_over",
        "bot.withdrawn",
        "bot.repeat_contact",
        "message.queued",
        "survey.answered",
        "call.updated",
        "call.noted",
    }
)
#: `conversation.*` kinds that change no figure (every other `conversation.*` kind does).
_NO_FACT_CONVERSATION_KINDS = frozenset({"conversation.read", "conversation.priority", "conversation.subject"})
# Conversations whose facts are stale in the open transaction of each connection (keyed by
# id(conn): sqlite3 connections take no attributes or weak references). Emptied at COMMIT by
# database.write_transaction (facts.flush) and at ROLLBACK.
_stale: dict[int, set[int]] = {}


def mark_stale(conn: sqlite3.Connection, conversation_id: int) -> None:
    """Have the conversation's facts rewritten before this transaction commits."""
    stale = _stale.get(id(conn))
    if stale is None:
        _stale[id(conn)] = stale = set()
    stale.add(conversation_id)


def take_stale(conn: sqlite3.Connection) -> set[int]:
    """The conversations marked stale on this connection since the last call (and forget them)."""
    return _stale.pop(id(conn), None) or set()


def changes_facts(kind: str) -> bool:
    """Whether an event of this kind can change its conversation's figures."""
    return kind in FACT_EVENT_KINDS or (kind.startswith("conversation.") and kind not in _NO_FACT_CONVERSATION_KINDS)


def retention_class(kind: str) -> str:
    """'live', 'history' or 'audit' for an event kind (unknown kinds are history)."""
    if kind in LIVE_KINDS:
        return LIVE
    if kind in AUDIT_KINDS:
        return AUDIT
    return HISTORY


def add_event(
    conn: sqlite3.Connection,
    kind: str,
    *,
    actor: str = "",
    conversation_id: int | None = None,
    customer_id: int | None = None,
    message_id: int | None = None,
    payload: dict | None = None,
    at: float | None = None,
) -> int:
    """Append one entry to the events log inside the caller's transaction; returns its id.

    `at` is epoch seconds (now when omitted); `payload` a JSON-ready dict (None or empty: no
    payload). The retention class follows from `kind` (see the module docstring). A kind that
    can change figures (`changes_facts`) marks the conversation's facts stale (store/facts.py)."""
    if conversation_id is not None and changes_facts(kind):
        mark_stale(conn, conversation_id)
    # lastrowid, not RETURNING id: this runs once per stored message, and RETURNING doubled the
    # statement's cost here (measured); a PostgreSQL port changes this one line.
    return conn.execute(
        "INSERT INTO events (at, kind, actor, conversation_id, customer_id, message_id, payload, keep)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            at or time.time(),
            kind,
            actor,
            conversation_id,
            customer_id,
            message_id,
            json.dumps(payload, ensure_ascii=False) if payload else None,
            retention_class(kind),
        ),
    ).lastrowid


def age_boundary(conn: sqlite3.Connection, before: float) -> int:
    """The first event id whose `at` is `before` (epoch seconds) or later; one past the last
    id when every event is older.

    Events are appended in time order, so ids are bisected through the primary key instead of
    keeping an index on `at` (which would cost every ingest). Where an import stamped events
    out of order, the boundary is only approximate; `prune_live` checks `at` as well, so
    nothing newer than `before` is ever deleted."""
    low, high = conn.execute("SELECT min(id), max(id) FROM events").fetchone()
    if low is None:
        return 0
    high += 1
    while low < high:
        middle = (low + high) // 2
        row = conn.execute("SELECT id, at FROM events WHERE id >= ? ORDER BY id LIMIT 1", (middle,)).fetchone()
        if row is None or row[1] >= before:
            high = middle
        else:
            low = row[0] + 1
    return low


def prune_live(conn: sqlite3.Connection, before: float, limit: int = 50_000) -> int:
    """Delete up to `limit` live events older than `before` (epoch seconds); returns how many.

    History and audit events are never touched. Run it again while it returns `limit`: one
    short transaction each, so windows and ingest are not held up by a long delete."""
    boundary = age_boundary(conn, before)
    return conn.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id < ? AND keep = 'live' AND at < ? ORDER BY id LIMIT ?)",
        (boundary, before, limit),
    ).rowcount
