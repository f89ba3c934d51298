"""SLA clocks' tables and statements (issue #19): which conversations have clocks, each target's
current instance, the nearest due moment the inbox counts down to, and the SLA lines of the
timeline and the events log. The decisions (which policy, when due, what to escalate) live in
`omniconsole/routing/sla/`. Every function runs inside the caller's transaction; times are
epoch seconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from omniconsole.store.actions import _timeline_event  # noqa: PLC2701 - one store, one helper
from omniconsole.store.events import add_event, age_boundary

SLA = "sla"


@dataclass(frozen=True, slots=True)
class TargetRow:
    """A target's stored instance: policy, start (the instance's identity), state, due moment
    (None while paused or decided) and the highest share already recorded (0: none)."""

    target: str
    policy: str
    started_at: float
    state: str
    due_at: float | None
    fired: float


def arm(conn: sqlite3.Connection, conversation_id: int, armed_at: float, now: float) -> bool:
    """Give a conversation SLA clocks from `armed_at` on (the pipeline's first pass); False
    when it had them already (the first moment is kept)."""
    return bool(
        conn.execute(
            "INSERT INTO sla_conversations (conversation_id, armed_at, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (conversation_id) DO NOTHING",
            (conversation_id, armed_at, now),
        ).rowcount
    )


def armed(conn: sqlite3.Connection, conversation_id: int) -> tuple[str, float] | None:
    """`(policy, armed_at)` of a conversation with clocks, else None."""
    row = conn.execute("SELECT policy, armed_at FROM sla_conversations WHERE conversation_id = ?", (conversation_id,)).fetchone()
    return (row[0], row[1]) if row else None


def armed_among(conn: sqlite3.Connection, conversation_ids: Iterable[int]) -> list[int]:
    """Those of `conversation_ids` that have clocks, ascending."""
    ids = sorted(set(conversation_ids))
    out: list[int] = []
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        marks = ", ".join("?" for _ in part)
        out += [
            r[0] for r in conn.execute(f"SELECT conversation_id FROM sla_conversations WHERE conversation_id IN ({marks})", part)
        ]
    return sorted(out)


def targets(conn: sqlite3.Connection, conversation_id: int) -> dict[str, TargetRow]:
    """The conversation's stored target instances by target name."""
    return {
        r[0]: TargetRow(*r)
        for r in conn.execute(
            "SELECT target, policy, started_at, state, due_at, fired FROM sla_targets WHERE conversation_id = ?",
            (conversation_id,),
        )
    }


def save_target(conn: sqlite3.Connection, conversation_id: int, row: TargetRow, now: float) -> None:
    """Insert or replace one target's instance."""
    conn.execute(
        "INSERT INTO sla_targets (conversation_id, target, policy, started_at, state, due_at, fired, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id, target) DO UPDATE SET policy = excluded.policy,"
        " started_at = excluded.started_at, state = excluded.state, due_at = excluded.due_at, fired = excluded.fired,"
        " updated_at = excluded.updated_at",
        (conversation_id, row.target, row.policy, row.started_at, row.state, row.due_at, row.fired, now),
    )


def drop_target(conn: sqlite3.Connection, conversation_id: int, target: str) -> None:
    """Forget a target that no longer has an instance (its policy no longer has it)."""
    conn.execute("DELETE FROM sla_targets WHERE conversation_id = ? AND target = ?", (conversation_id, target))


def set_nearest(
    conn: sqlite3.Connection, conversation_id: int, policy: str, due_at: float | None, stage: int, now: float
) -> None:
    """What the inbox shows: the policy, the nearest due moment of the running targets (None:
    nothing counts down) and its urgency (0 on time, 1 warned, 2 breached)."""
    conn.execute(
        "UPDATE sla_conversations SET policy = ?, due_at = ?, stage = ?, updated_at = ? WHERE conversation_id = ?",
        (policy, due_at, stage, now, conversation_id),
    )


def record(
    conn: sqlite3.Connection, conversation_id: int, kind: str, payload: dict, line: str | dict, now: float, actor: str = SLA
) -> int:
    """An SLA event (`sla.warning`, `sla.breach`, `sla.escalated`, `sla.policy`) with its payload,
    and its line in the conversation's timeline (none when `line` is empty; a phrase of
    omniconsole.i18n is drawn in each reader's language, see `actions.event_line`); returns the
    event id."""
    customer_id = conn.execute("SELECT customer_id FROM conversations WHERE id = ?", (conversation_id,)).fetchone()[0]
    if line:
        _timeline_event(conn, conversation_id, customer_id, actor, line, now)
    return add_event(conn, kind, actor=actor, conversation_id=conversation_id, customer_id=customer_id, payload=payload, at=now)


def raise_priority(conn: sqlite3.Connection, conversation_id: int, reason: str, now: float, highest: int = 2) -> int | None:
    """Raise a conversation's priority one step (at most `highest`, urgent); the new priority
    and a `conversation.priority` event, or None when it was already the highest."""
    row = conn.execute(
        "UPDATE conversations SET priority = priority + 1 WHERE id = ? AND priority < ? RETURNING priority, customer_id",
        (conversation_id, highest),
    ).fetchone()
    if row is None:
        return None
    add_event(
        conn,
        "conversation.priority",
        actor=SLA,
        conversation_id=conversation_id,
        customer_id=row[1],
        payload={"priority": row[0], "reason": reason},
        at=now,
    )
    return row[0]


def clock_start(conn: sqlite3.Connection, conversation_id: int, now: float) -> float | None:
    """Where a customer's message starts the clocks: the conversation's latest inbound message
    (epoch seconds), or `now` when that is later or unknown; None when the conversation does not exist."""
    row = conn.execute("SELECT last_inbound_at FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    return None if row is None else min(now, row[0] or now)


def assignee(conn: sqlite3.Connection, conversation_id: int) -> str | None:
    """The conversation's assignee as stored now (a ladder step before may have changed it)."""
    row = conn.execute("SELECT assignee FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    return row[0] if row else None


def admins(conn: sqlite3.Connection) -> list[str]:
    """Logins of the admins, who the ladder's `notify_admins` step tells."""
    return [r[0] for r in conn.execute("SELECT login FROM operators WHERE role = 'admin' ORDER BY login")]


def due_conversations(conn: sqlite3.Connection, limit: int = 100) -> list[tuple[int, float, int]]:
    """Active conversations by nearest SLA due moment, soonest first: `(id, due_at, stage)`
    (what the At risk view lists; for tests and checks without a window)."""
    return [
        (r[0], r[1], r[2])
        for r in conn.execute(
            "SELECT s.conversation_id, s.due_at, s.stage FROM sla_conversations s JOIN conversations c ON c.id = s.conversation_id"
            " WHERE s.due_at IS NOT NULL AND c.bucket = 'active' ORDER BY s.due_at, s.conversation_id LIMIT ?",
            (limit,),
        )
    ]


def resume_point(conn: sqlite3.Connection) -> int:
    """Where a starting core's SLA follower reads the events log from: just before the first
    event at or after the last moment any clock was evaluated (what operators did while no core
    ran, e.g. from the command line, is caught up). 0 when no conversation has clocks."""
    last = conn.execute("SELECT max(updated_at) FROM sla_conversations").fetchone()[0]
    return 0 if last is None else max(0, age_boundary(conn, last) - 1)


def figures(conn: sqlite3.Connection) -> tuple[int, int, dict[str, int]]:
    """For `omniconsole bench sla`: (schedule rows, conversations with a running clock, SLA
    events by kind)."""
    rows = conn.execute("SELECT count(*) FROM schedule").fetchone()[0]
    running = conn.execute("SELECT count(*) FROM sla_conversations WHERE due_at IS NOT NULL").fetchone()[0]
    events = {r[0]: r[1] for r in conn.execute("SELECT kind, count(*) FROM events WHERE kind LIKE 'sla.%' GROUP BY kind")}
    return rows, running, events
