"""The one schedule (DESIGN.md, the conversation pipeline): everything that must happen later —
routing's return timers and offline grace now; SLA warnings, snooze ends and rule timers as
they come — is one row here, and the core's single scheduler (core/scheduler.py) wakes at the
earliest due time. A row is removed in the transaction that acts on it, so a restart fires
nothing twice and a crash before the commit fires it again later. Times are epoch seconds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScheduledRow:
    """One thing due later: its kind (`routing.return`, `routing.offline_grace`, ...), the
    conversation and/or subject (an operator's login) it concerns, due time (epoch seconds) and
    a JSON payload."""

    id: int
    kind: str
    conversation_id: int | None
    subject: str
    due_at: float
    payload: dict


def schedule(
    conn: sqlite3.Connection,
    kind: str,
    due_at: float,
    now: float,
    *,
    conversation_id: int | None = None,
    subject: str = "",
    payload: dict | None = None,
) -> None:
    """Put (or move) the one row of `(kind, conversation, subject)` to `due_at`."""
    conn.execute(
        "DELETE FROM schedule WHERE kind = ? AND coalesce(conversation_id, 0) = ? AND subject = ?",
        (kind, conversation_id or 0, subject),
    )
    conn.execute(
        "INSERT INTO schedule (kind, conversation_id, subject, due_at, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (kind, conversation_id, subject, due_at, json.dumps(payload or {}), now),
    )


def unschedule(conn: sqlite3.Connection, kind: str, *, conversation_id: int | None = None, subject: str = "") -> int:
    """Drop the row of `(kind, conversation, subject)`; how many were dropped (0 or 1)."""
    return conn.execute(
        "DELETE FROM schedule WHERE kind = ? AND coalesce(conversation_id, 0) = ? AND subject = ?",
        (kind, conversation_id or 0, subject),
    ).rowcount


def next_due(conn: sqlite3.Connection, kinds: Iterable[str]) -> float | None:
    """The earliest due time among rows of `kinds` (epoch seconds), or None when there are none.
    (Rows of kinds nobody in this core handles wait for a core that does.)

    One lookup per kind on the `(kind, due_at)` index: a `kind IN (...)` over 100,000 SLA rows
    read them all (~30 ms each time the scheduler woke; measured by `omniconsole bench sla`)."""
    dues = [conn.execute("SELECT min(due_at) FROM schedule WHERE kind = ?", (kind,)).fetchone()[0] for kind in sorted(set(kinds))]
    return min((due for due in dues if due is not None), default=None)


def take_due(conn: sqlite3.Connection, now: float, kinds: Iterable[str]) -> ScheduledRow | None:
    """Remove and return the earliest row of `kinds` due at `now`, or None. Call it inside the
    transaction that acts on it: a crash before the commit leaves it to fire later; after the
    commit it is gone, so nothing fires twice."""
    found = [
        conn.execute(
            "SELECT id, kind, conversation_id, subject, due_at, payload FROM schedule"
            " WHERE kind = ? AND due_at <= ? ORDER BY due_at, id LIMIT 1",
            (kind, now),
        ).fetchone()
        for kind in sorted(set(kinds))
    ]
    rows = [r for r in found if r is not None]
    if not rows:
        return None
    r = min(rows, key=lambda row: (row[4], row[0]))
    conn.execute("DELETE FROM schedule WHERE id = ?", (r[0],))
    try:
        payload = json.loads(r[5] or "{}")
    except ValueError:
        payload = {}
    return ScheduledRow(r[0], r[1], r[2], r[3], r[4], payload if isinstance(payload, dict) else {})


def drop(conn: sqlite3.Connection, row_id: int) -> None:
    """Remove one row by id (one whose action failed for good)."""
    conn.execute("DELETE FROM schedule WHERE id = ?", (row_id,))


def scheduled(conn: sqlite3.Connection) -> list[ScheduledRow]:
    """The whole schedule, earliest first (for tests and `omniconsole queues`)."""
    return [
        ScheduledRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}"))
        for r in conn.execute("SELECT id, kind, conversation_id, subject, due_at, payload FROM schedule ORDER BY due_at, id")
    ]
