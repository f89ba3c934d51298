"""Routing's tables and statements (issue #18): operators' status, skills and windows, the queue a
conversation waits in, automatic assignment, and the one schedule the core's scheduler wakes for.

Every function runs inside the caller's transaction (`write_transaction`: BEGIN IMMEDIATE), so a
decision read-then-written here is atomic across processes: `assign_if_free` assigns only a
conversation that nobody holds, and the load it was decided on cannot change before the commit,
because SQLite admits one writer at a time. Times are epoch seconds. The decisions themselves
(which queue, which operator, and why) live in `omniconsole/routing/`.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

from omniconsole.i18n import N_, english, phrase
from omniconsole.store.actions import ActionError, _timeline_event  # noqa: PLC2701 - one store, one helper
from omniconsole.store.events import add_event
from omniconsole.store.search import index_message

#: An operator's status.
STATUSES = ("online", "away", "offline")
ROUTER = "routing"


@dataclass(slots=True)
class OperatorState:
    """One operator as routing sees them: status, capacity (0 = the configured default),
    skills and teams, when their last automatic assignment was and their status changed (epoch
    seconds, None = never), and their assigned conversations counted per channel kind. It
    travels over the core's socket (core/frames.py), for the window's team and load lines."""

    login: str
    status: str
    capacity: int
    skills: tuple[str, ...]
    teams: tuple[str, ...]
    last_assigned_at: float | None
    status_at: float | None
    assigned: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WindowSlot:
    """One open window of an operator: the id it chose when it opened, its pid and host, when
    it opened and last beat (epoch seconds)."""

    login: str
    window: str
    pid: int
    host: str
    opened_at: float
    heartbeat_at: float


@dataclass(slots=True)
class ConversationFacts:
    """What queue matching and skills look at: status, assignee, queue, priority, the channel
    (kind and name) of the latest message, labels, the customer's attributes and latest inbound
    texts (newest last), when it was opened and queued (epoch seconds), and whether the bot
    holds it (state `bot` in store/bot.py: routing leaves it alone until the handoff)."""

    id: int
    customer_id: int
    status: str
    assignee: str | None
    queue: str | None
    priority: int
    channel_kind: str
    channel_name: str
    labels: tuple[str, ...]
    attributes: dict[str, str]
    texts: list[str]
    opened_at: float
    queued_at: float | None
    assigned_at: float | None
    with_bot: bool = False


@functools.lru_cache(maxsize=4096)
def _list(text: str | None) -> tuple[str, ...]:
    """A JSON list of words as a tuple (cached: operators' skills and teams repeat)."""
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


# --- operators ------------------------------------------------------------------------------


def operator_states(conn: sqlite3.Connection, load_statuses: Iterable[str] = ("open", "pending")) -> dict[str, OperatorState]:
    """Every operator by login, with their assigned conversations in `load_statuses` counted per
    channel kind of the conversation's latest message ('' when it has none)."""
    states = {
        row[0]: OperatorState(row[0], row[1], row[2], _list(row[3]), _list(row[4]), row[5], row[6])
        for row in conn.execute(
            "SELECT login, status, capacity, skills, teams, last_assigned_at, status_at FROM operators ORDER BY login"
        )
    }
    statuses = list(load_statuses)
    marks = ", ".join("?" for _ in statuses) or "NULL"
    # Per operator through the (assignee, bucket) index: resolved history is never scanned.
    for login, kind, count in conn.execute(
        "SELECT o.login, coalesce(ch.kind, ''), count(*) FROM operators o"
        " JOIN conversations c ON c.assignee = o.login AND c.bucket = 'active'"
        " LEFT JOIN channels ch ON ch.id = c.last_channel_id"
        f" WHERE c.status IN ({marks}) GROUP BY o.login, ch.kind",
        statuses,
    ):
        if login in states:
            states[login].assigned[kind] = count
    return states


def update_operator(
    conn: sqlite3.Connection,
    login: str,
    *,
    actor: str,
    now: float,
    status: str | None = None,
    capacity: int | None = None,
    skills: list[str] | None = None,
    teams: list[str] | None = None,
    reason: str = "",
) -> str | None:
    """Change an operator's routing fields (None keeps one). Returns their previous status when
    the status changed, else None. ActionError for an unknown login, status or a negative
    capacity. Each change is an `operator.updated` event; a status change `operator.status` with
    `reason` in words."""
    row = conn.execute("SELECT status FROM operators WHERE login = ?", (login,)).fetchone()
    if row is None:
        raise ActionError(N_("{login} is not an operator (add them with `omniconsole operator add {login}`)"), login=login)
    if status is not None and status not in STATUSES:
        raise ActionError(N_("status must be one of {choices} (got {value})"), choices=", ".join(STATUSES), value=repr(status))
    if capacity is not None and capacity < 0:
        raise ActionError(N_("capacity must be 0 or more (got {value})"), value=capacity)
    changes: dict[str, object] = {}
    if capacity is not None:
        changes["capacity"] = capacity
    if skills is not None:
        changes["skills"] = json.dumps(sorted({s.strip().lower() for s in skills if s.strip()}))
    if teams is not None:
        changes["teams"] = json.dumps(sorted({t.strip() for t in teams if t.strip()}))
    previous = row[0]
    if changes:
        conn.execute(
            f"UPDATE operators SET {', '.join(f'{k} = ?' for k in changes)} WHERE login = ?",  # keys are ours
            (*changes.values(), login),
        )
        add_event(conn, "operator.updated", actor=actor, payload={"login": login, **{k: v for k, v in changes.items()}}, at=now)
    if status is not None and status != previous:
        conn.execute("UPDATE operators SET status = ?, status_at = ? WHERE login = ?", (status, now, login))
        add_event(
            conn,
            "operator.status",
            actor=actor,
            payload={"login": login, "status": status, "was": previous, "reason": reason},
            at=now,
        )
        return previous
    return None


def operator_status(conn: sqlite3.Connection, login: str) -> tuple[str, float | None] | None:
    """`(status, since epoch seconds)` of an operator, None when `login` is not one."""
    row = conn.execute("SELECT status, status_at FROM operators WHERE login = ?", (login,)).fetchone()
    return (row[0], row[1]) if row else None


def is_operator(conn: sqlite3.Connection, login: str) -> bool:
    """Whether `login` is a registered operator."""
    return conn.execute("SELECT 1 FROM operators WHERE login = ?", (login,)).fetchone() is not None


def longest_assigned(conn: sqlite3.Connection) -> int | None:
    """The open assigned conversation assigned longest ago (the routing bench resolves it)."""
    row = conn.execute(
        "SELECT id FROM conversations WHERE assignee IS NOT NULL AND status = 'open' ORDER BY assigned_at LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def window_heartbeat(conn: sqlite3.Connection, login: str, window: str, pid: int, host: str, now: float) -> None:
    """The operator's window `window` (`pid` on `host`) says it is alive; its own slot, so two
    windows of one operator never overwrite each other. Soft state, no event."""
    conn.execute(
        "INSERT INTO operator_windows (login, window, pid, host, opened_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (login, window) DO UPDATE SET pid = excluded.pid, host = excluded.host,"
        " heartbeat_at = excluded.heartbeat_at",
        (login, window, pid, host, now, now),
    )


def window_closed(conn: sqlite3.Connection, login: str, window: str) -> int:
    """Forget the window `window` of `login` (it closed or died); how many of their windows
    remain."""
    conn.execute("DELETE FROM operator_windows WHERE login = ? AND window = ?", (login, window))
    return conn.execute("SELECT count(*) FROM operator_windows WHERE login = ?", (login,)).fetchone()[0]


def windows(conn: sqlite3.Connection) -> list[WindowSlot]:
    """Every open window of every operator, by login then opening time."""
    return [
        WindowSlot(*row)
        for row in conn.execute(
            "SELECT login, window, pid, host, opened_at, heartbeat_at FROM operator_windows ORDER BY login, opened_at"
        )
    ]


def set_own_status(
    conn: sqlite3.Connection, operator: str, status: str, reason: str, window: str, pid: int, host: str, now: float
) -> str:
    """An operator's window sets their status (`online`, `away`, `offline`) and beats for its
    slot (`window`: the id it chose; '' for none). Returns the status now, '' when `operator`
    is not a registered operator (a laptop without `operator add`: nothing to keep). What a
    status change sets off (the offline grace, serving the queues) is the core's routing
    follower's (omniconsole/routing/service.py), whoever wrote the change."""
    if not is_operator(conn, operator):
        return ""
    if window:
        window_heartbeat(conn, operator, window, pid, host, now)
    update_operator(conn, operator, actor=operator, now=now, status=status, reason=reason)
    return status


def beat_own_window(conn: sqlite3.Connection, operator: str, window: str, pid: int, host: str, now: float) -> None:
    """`window_heartbeat` for a registered operator's window (nothing for anyone else)."""
    if is_operator(conn, operator):
        window_heartbeat(conn, operator, window, pid, host, now)


def close_own_window(conn: sqlite3.Connection, operator: str, window: str, reason: str, now: float) -> str:
    """An operator's window closed: its slot goes, and the operator goes offline only when no
    other window of theirs lives. Returns their status now ('' for a non-operator)."""
    left = window_closed(conn, operator, window)
    row = conn.execute("SELECT status FROM operators WHERE login = ?", (operator,)).fetchone()
    if row is None:
        return ""
    if left == 0 and row[0] != "offline":
        update_operator(conn, operator, actor=operator, now=now, status="offline", reason=reason)
        return "offline"
    return row[0]


# --- conversations --------------------------------------------------------------------------


def conversation_facts(conn: sqlite3.Connection, conversation_id: int, texts: int = 3) -> ConversationFacts | None:
    """What routing needs to know about one conversation (None when it does not exist)."""
    row = conn.execute(
        "SELECT c.id, c.customer_id, c.status, c.assignee, c.queue, c.priority, coalesce(ch.kind, ''),"
        " coalesce(ch.name, ''), cu.attributes, c.opened_at, c.queued_at, c.assigned_at, b.state"
        " FROM conversations c JOIN customers cu ON cu.id = c.customer_id"
        " LEFT JOIN channels ch ON ch.id = c.last_channel_id"
        " LEFT JOIN bot_conversations b ON b.conversation_id = c.id WHERE c.id = ?",
        (conversation_id,),
    ).fetchone()
    if row is None:
        return None
    labels = tuple(
        r[0]
        for r in conn.execute(
            "SELECT l.name FROM conversation_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.conversation_id = ?"
            " UNION SELECT l.name FROM customer_labels kl JOIN labels l ON l.id = kl.label_id WHERE kl.customer_id = ?",
            (conversation_id, row[1]),
        )
    )
    try:
        attributes = {str(k): str(v) for k, v in json.loads(row[8] or "{}").items()}
    except (ValueError, AttributeError):
        attributes = {}
    bodies = [
        r[0]
        for r in conn.execute(
            "SELECT body FROM messages WHERE conversation_id = ? AND direction = 'in' ORDER BY id DESC LIMIT ?",
            (conversation_id, texts),
        )
    ]
    return ConversationFacts(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        tuple(sorted(labels)),
        attributes,
        list(reversed(bodies)),
        row[9],
        row[10],
        row[11],
        row[12] == "bot",
    )


def put_in_queue(conn: sqlite3.Connection, conversation_id: int, queue: str, needs: list[str], now: float, reason: str) -> None:
    """Place a conversation in `queue` needing the skills `needs` (it keeps the moment it first
    queued, so its turn is kept when it moves between queues or comes back); an event with the
    reason."""
    conn.execute(
        "UPDATE conversations SET queue = ?, needs = ?, queued_at = coalesce(queued_at, ?) WHERE id = ?",
        (queue, json.dumps(sorted(needs)), now, conversation_id),
    )
    add_event(
        conn, "routing.queued", actor=ROUTER, conversation_id=conversation_id, payload={"queue": queue, "reason": reason}, at=now
    )


def waiting(conn: sqlite3.Connection, queue: str, limit: int = 1000) -> list[tuple[int, tuple[str, ...], str, int, float]]:
    """Unassigned open conversations in `queue` in their turn: priority (higher first), then
    waiting time (longest first): `(conversation id, needed skills, channel kind, priority,
    queued_at)`. Conversations the bot holds (state `bot`) are not waiting for a person."""
    return [
        (r[0], _list(r[1]), r[2], r[3], r[4])
        for r in conn.execute(
            "SELECT c.id, c.needs, coalesce(ch.kind, ''), c.priority, c.queued_at FROM conversations c"
            " LEFT JOIN channels ch ON ch.id = c.last_channel_id"
            " WHERE c.queue = ? AND c.assignee IS NULL AND c.status = 'open'"
            " AND NOT EXISTS (SELECT 1 FROM bot_conversations b WHERE b.conversation_id = c.id AND b.state = 'bot')"
            " ORDER BY c.priority DESC, c.queued_at, c.id LIMIT ?",
            (queue, limit),
        )
    ]


def queue_figures(conn: sqlite3.Connection) -> dict[str, tuple[int, float | None]]:
    """Per queue: how many open conversations wait unassigned, and since when the longest has
    waited (epoch seconds)."""
    return {
        row[0]: (row[1], row[2])
        for row in conn.execute(
            "SELECT c.queue, count(*), min(c.queued_at) FROM conversations c WHERE c.queue IS NOT NULL"
            " AND c.assignee IS NULL AND c.status = 'open'"
            " AND NOT EXISTS (SELECT 1 FROM bot_conversations b WHERE b.conversation_id = c.id AND b.state = 'bot')"
            " GROUP BY c.queue"
        )
    }


def assign_if_free(
    conn: sqlite3.Connection, conversation_id: int, login: str, reason: str | dict, queue: str, now: float
) -> bool:
    """Assign an unassigned open conversation to `login` on routing's behalf: False (nothing
    written) when someone holds it already, the bot holds it, or it is no longer open. Writes the timeline line and
    a `conversation.assigned` event with the reason in words (`reason` English text or a phrase
    of omniconsole.i18n, drawn in each reader's language; the event keeps its English)."""
    done = conn.execute(
        "UPDATE conversations SET assignee = ?, assigned_at = ? WHERE id = ? AND assignee IS NULL AND status = 'open'"
        " AND NOT EXISTS (SELECT 1 FROM bot_conversations b WHERE b.conversation_id = conversations.id AND b.state = 'bot')",
        (login, now, conversation_id),
    ).rowcount
    if not done:
        return False
    conn.execute("UPDATE operators SET last_assigned_at = ? WHERE login = ?", (now, login))
    customer_id = conn.execute("SELECT customer_id FROM conversations WHERE id = ?", (conversation_id,)).fetchone()[0]
    _timeline_event(
        conn, conversation_id, customer_id, ROUTER, phrase(N_("assigned to {login}: {reason}"), login=login, reason=reason), now
    )
    add_event(
        conn,
        "conversation.assigned",
        actor=ROUTER,
        conversation_id=conversation_id,
        customer_id=customer_id,
        payload={"assignee": login, "queue": queue, "reason": english(reason)},
        at=now,
    )
    return True


def return_to_queue(
    conn: sqlite3.Connection, conversation_id: int, expected_assignee: str, reason: str | dict, now: float
) -> bool:
    """Take a conversation back from `expected_assignee` into its queue (False when it is no
    longer theirs): timeline line and `routing.returned` event with the reason."""
    done = conn.execute(
        "UPDATE conversations SET assignee = NULL, assigned_at = NULL WHERE id = ? AND assignee = ?",
        (conversation_id, expected_assignee),
    ).rowcount
    if not done:
        return False
    customer_id = conn.execute("SELECT customer_id FROM conversations WHERE id = ?", (conversation_id,)).fetchone()[0]
    line = phrase(N_("back to the queue from {login}: {reason}"), login=expected_assignee, reason=reason)
    _timeline_event(conn, conversation_id, customer_id, ROUTER, line, now)
    add_event(
        conn,
        "routing.returned",
        actor=ROUTER,
        conversation_id=conversation_id,
        customer_id=customer_id,
        payload={"from": expected_assignee, "reason": english(reason)},
        at=now,
    )
    return True


def answered_since(conn: sqlite3.Connection, conversation_id: int, since: float) -> bool:
    """Whether a person wrote to the customer in this conversation at or after `since` (routing's
    own notices do not count)."""
    return (
        conn.execute(
            "SELECT 1 FROM messages WHERE conversation_id = ? AND direction = 'out' AND created_at >= ? AND author != ? LIMIT 1",
            (conversation_id, since, ROUTER),
        ).fetchone()
        is not None
    )


def queue_notice(conn: sqlite3.Connection, conversation_id: int, body: str, now: float) -> int | None:
    """Queue an automatic message to the customer (their place in the queue) by the channel of
    their latest inbound message; unlike an operator's reply it is no first response and leaves
    the customer waiting. None when there is no channel to answer on."""
    route = conn.execute(
        "SELECT customer_id, channel_id, identity_id FROM messages WHERE conversation_id = ? AND direction = 'in'"
        " AND channel_id IS NOT NULL AND identity_id IS NOT NULL ORDER BY id DESC LIMIT 1",
        (conversation_id,),
    ).fetchone()
    if route is None:
        return None
    message_id = conn.execute(
        "INSERT INTO messages (conversation_id, customer_id, channel_id, identity_id, direction, author, body,"
        " created_at, state, next_attempt_at) VALUES (?, ?, ?, ?, 'out', ?, ?, ?, 'queued', ?)",
        (conversation_id, route[0], route[1], route[2], ROUTER, body, now, now),
    ).lastrowid
    index_message(conn, message_id, body, route[0])  # every message but timeline lines is indexed
    add_event(
        conn, "message.queued", actor=ROUTER, conversation_id=conversation_id, customer_id=route[0], message_id=message_id, at=now
    )
    return message_id


def recent_waits(conn: sqlite3.Connection, queue: str, limit: int = 20) -> list[float]:
    """How long (seconds) the latest conversations assigned from `queue` had waited."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT assigned_at - queued_at FROM conversations WHERE queue = ? AND assigned_at IS NOT NULL"
            " AND queued_at IS NOT NULL ORDER BY assigned_at DESC LIMIT ?",
            (queue, limit),
        )
    ]


def unanswered_of(conn: sqlite3.Connection, login: str) -> list[int]:
    """Open conversations assigned to `login` whose customer waits for an answer."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT id FROM conversations WHERE assignee = ? AND status = 'open' AND waiting_since IS NOT NULL ORDER BY id",
            (login,),
        )
    ]


def last_handler(conn: sqlite3.Connection, customer_id: int, conversation_id: int, since: float) -> tuple[str, float] | None:
    """Who last handled this customer in another conversation active at or after `since`:
    `(login, last activity epoch seconds)`, or None."""
    row = conn.execute(
        "SELECT assignee, last_activity_at FROM conversations WHERE customer_id = ? AND id != ? AND assignee IS NOT NULL"
        " AND last_activity_at >= ? ORDER BY last_activity_at DESC LIMIT 1",
        (customer_id, conversation_id, since),
    ).fetchone()
    return (row[0], row[1]) if row else None
