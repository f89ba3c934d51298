"""The automation rules' tables and reads (issue #19; omniconsole/automation/ decides).

* `rule_cursor`: where the rules' follower of the events log stands (one row per follower),
  moved in the transaction that acted on the events, so a restart acts on nothing twice.
* `rule_marks`: per conversation, the last event the rules' pipeline step looked at, so a
  customer's message triggers rules once even when the step runs again for an edit.
* `rule_firings`: each time a rule acted on a conversation: how many actions (the hourly
  budget), the range of events its actions appended and the chain of rules that led to it.

Every function runs inside the caller's transaction; times are epoch seconds.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from omniconsole.i18n import N_, english, is_phrase, joined, phrase
from omniconsole.store.events import add_event, age_boundary
from omniconsole.store.rows import Event

#: Events the pipeline step reads for one conversation's newest batch (never imports: the
#: step runs only for what a channel delivered live).
BATCH_KINDS = ("message.received", "conversation.opened", "conversation.reopened")


def last_event_id(conn: sqlite3.Connection) -> int:
    """The newest event id (0 for an empty log)."""
    return conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]


def start_cursor(conn: sqlite3.Connection, name: str, now: float) -> int:
    """The follower's position, created at the newest event on its first start (history from
    before rules existed triggers nothing)."""
    row = conn.execute("SELECT last_event_id FROM rule_cursor WHERE name = ?", (name,)).fetchone()
    if row is not None:
        return row[0]
    newest = last_event_id(conn)
    conn.execute("INSERT INTO rule_cursor (name, last_event_id, updated_at) VALUES (?, ?, ?)", (name, newest, now))
    return newest


def move_cursor(conn: sqlite3.Connection, name: str, event_id: int, now: float) -> None:
    """Move the follower past `event_id` (in the transaction that acted on it)."""
    conn.execute("UPDATE rule_cursor SET last_event_id = ?, updated_at = ? WHERE name = ?", (event_id, now, name))


def events_after(conn: sqlite3.Connection, after: int, limit: int = 500) -> list[Event]:
    """Events after id `after`, oldest first."""
    return [
        Event(*r)
        for r in conn.execute(
            "SELECT id, at, kind, actor, conversation_id, customer_id, message_id, payload FROM events"
            " WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
    ]


def events_between(conn: sqlite3.Connection, start: float, kinds: tuple[str, ...], limit: int = 1_000_000) -> list[Event]:
    """Events of `kinds` stamped at `start` or later, oldest first (the dry run's history)."""
    marks = ", ".join("?" for _ in kinds)
    first = age_boundary(conn, start)  # a range of the primary key, not a scan of the log
    return [
        Event(*r)
        for r in conn.execute(
            "SELECT id, at, kind, actor, conversation_id, customer_id, message_id, payload FROM events"
            f" WHERE id >= ? AND kind IN ({marks}) AND at >= ? ORDER BY id LIMIT ?",
            (first, *kinds, start, limit),
        )
    ]


#: How far back (event ids) the step looks for a conversation's newest message: the step runs
#: right after the batch, so it is near the end; the bound keeps a stale case a short range.
BATCH_SPAN = 50_000


def newest_batch(conn: sqlite3.Connection, conversation_id: int, since: float) -> list[Event]:
    """The events of `BATCH_KINDS` of the conversation's newest delivered batch that the step
    has not looked at yet, oldest first. A batch's events share one stamp (`ingest_batch`) and
    are appended together in one transaction, so the batch is the run of events stamped like
    the conversation's newest `message.received`, read backwards from it; one stamped before
    `since` (epoch seconds) is not new (history an import stored, reached now because of an
    edit or a reaction) and gives nothing."""
    seen = conn.execute("SELECT last_event_id FROM rule_marks WHERE conversation_id = ?", (conversation_id,)).fetchone()
    newest = conn.execute(
        "SELECT id, at FROM events WHERE id > (SELECT coalesce(max(id), 0) FROM events) - ? AND conversation_id = ?"
        " AND kind = 'message.received' ORDER BY id DESC LIMIT 1",
        (BATCH_SPAN, conversation_id),
    ).fetchone()
    if newest is None or newest[1] < since:
        return []
    after = seen[0] if seen else 0
    found: list[Event] = []
    rows = conn.execute(
        "SELECT id, at, kind, actor, conversation_id, customer_id, message_id, payload FROM events"
        " WHERE id <= ? AND id > ? ORDER BY id DESC",
        (newest[0], after),
    )
    for row in rows:
        if row[1] != newest[1]:
            break  # the batch before
        if row[4] == conversation_id and row[2] in BATCH_KINDS:
            found.append(Event(*row))
    found.reverse()
    return found


def set_mark(conn: sqlite3.Connection, conversation_id: int, event_id: int) -> None:
    """The step has looked at the conversation's events up to `event_id`."""
    conn.execute(
        "INSERT INTO rule_marks (conversation_id, last_event_id) VALUES (?, ?)"
        " ON CONFLICT (conversation_id) DO UPDATE SET last_event_id = excluded.last_event_id",
        (conversation_id, event_id),
    )


def actions_since(conn: sqlite3.Connection, conversation_id: int, since: float) -> int:
    """How many actions rules took on the conversation since `since` (the hourly budget)."""
    return conn.execute(
        "SELECT coalesce(sum(actions), 0) FROM rule_firings WHERE conversation_id = ? AND at >= ?", (conversation_id, since)
    ).fetchone()[0]


def chain_of(conn: sqlite3.Connection, event_id: int) -> tuple[str, ...]:
    """The rules whose actions (in a chain) led to event `event_id`; () when a person, a
    customer or the core caused it."""
    row = conn.execute(
        "SELECT first_event_id, chain FROM rule_firings WHERE last_event_id >= ? ORDER BY last_event_id LIMIT 1", (event_id,)
    ).fetchone()
    if row is None or row[0] is None or row[0] > event_id:
        return ()
    return tuple(json.loads(row[1] or "[]"))


def record_firing(
    conn: sqlite3.Connection,
    rule: str,
    conversation_id: int | None,
    actions: int,
    first_event_id: int | None,
    last_event_id_: int | None,
    chain: tuple[str, ...],
    now: float,
) -> None:
    """Keep one firing of `rule` (see the module docstring)."""
    conn.execute(
        "INSERT INTO rule_firings (rule, conversation_id, actions, first_event_id, last_event_id, chain, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (rule, conversation_id, actions, first_event_id, last_event_id_, json.dumps(list(chain)), now),
    )


def prune_firings(conn: sqlite3.Connection, before: float, followed: int) -> int:
    """Forget firings older than `before` (epoch seconds) whose events the follower has passed
    (`followed`, an event id): the budget looks one hour back, chains only at events not yet
    followed. Returns how many were forgotten."""
    return conn.execute("DELETE FROM rule_firings WHERE at < ? AND last_event_id <= ?", (before, followed)).rowcount


def conversation_customer(conn: sqlite3.Connection, conversation_id: int) -> int | None:
    """The customer id of a conversation; None when it does not exist."""
    row = conn.execute("SELECT customer_id FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    return row[0] if row else None


def conversation_labels(conn: sqlite3.Connection, conversation_id: int) -> list[str]:
    """The conversation's labels, by name."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT l.name FROM conversation_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.conversation_id = ?"
            " ORDER BY l.name",
            (conversation_id,),
        )
    ]


def conversation_fields(conn: sqlite3.Connection, conversation_id: int) -> dict[str, Any] | None:
    """What conditions read of a conversation, its customer and its latest channel, as
    `{field: value}` (see omniconsole/automation/rules.py FIELDS), plus the timer facts
    (`_status`, `_waiting_since`, `_last_inbound_at`, `_first_response_at`, `_resolved_at`,
    `_last_out_at`, `_customer_id`); None when there is no such conversation."""
    row = conn.execute(
        "SELECT c.id, c.status, c.priority, c.assignee, c.queue, c.subject, c.message_count, c.channel_kinds,"
        " cu.display_name, cu.attributes, coalesce(ch.kind, ''), coalesce(ch.name, ''), coalesce(ch.health, ''),"
        " c.waiting_since, c.last_inbound_at, c.first_response_at, c.resolved_at, c.customer_id"
        " FROM conversations c JOIN customers cu ON cu.id = c.customer_id"
        " LEFT JOIN channels ch ON ch.id = c.last_channel_id WHERE c.id = ?",
        (conversation_id,),
    ).fetchone()
    if row is None:
        return None
    try:
        attributes = json.loads(row[9] or "{}")
    except ValueError:
        attributes = {}
    customer_labels = [
        r[0]
        for r in conn.execute(
            "SELECT l.name FROM customer_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.customer_id = ?", (row[17],)
        )
    ]
    last_out = conn.execute(
        "SELECT max(created_at) FROM messages WHERE conversation_id = ? AND direction = 'out'", (conversation_id,)
    ).fetchone()[0]
    fields: dict[str, Any] = {
        "conversation.id": row[0],
        "conversation.status": row[1],
        "conversation.priority": row[2],
        "conversation.assignee": row[3] or "",
        "conversation.queue": row[4] or "",
        "conversation.subject": row[5],
        "conversation.message_count": row[6],
        "conversation.channels": row[7].split(),
        "conversation.labels": conversation_labels(conn, conversation_id),
        "customer.name": row[8],
        "customer.labels": customer_labels,
        "channel.kind": row[10],
        "channel.name": row[11],
        "channel.health": row[12],
        "_status": row[1],
        "_waiting_since": row[13],
        "_last_inbound_at": row[14],
        "_first_response_at": row[15],
        "_resolved_at": row[16],
        "_last_out_at": last_out,
        "_customer_id": row[17],
    }
    if isinstance(attributes, dict):
        for key, value in attributes.items():
            fields[f"customer.attributes.{key}"] = value
    return fields


def message_fields(conn: sqlite3.Connection, message_id: int) -> dict[str, Any]:
    """`message.body` and `message.subject` of one message, with its channel's fields."""
    row = conn.execute(
        "SELECT m.body, coalesce(m.subject, ''), coalesce(ch.kind, ''), coalesce(ch.name, ''), coalesce(ch.health, '')"
        " FROM messages m LEFT JOIN channels ch ON ch.id = m.channel_id WHERE m.id = ?",
        (message_id,),
    ).fetchone()
    if row is None:
        return {}
    return {
        "message.body": row[0],
        "message.subject": row[1],
        "channel.kind": row[2],
        "channel.name": row[3],
        "channel.health": row[4],
    }


def recent_inbound_texts(conn: sqlite3.Connection, conversation_id: int, limit: int = 3) -> list[str]:
    """The customer's latest message texts in the conversation, newest last (language)."""
    rows = conn.execute(
        "SELECT body FROM messages WHERE conversation_id = ? AND direction = 'in' ORDER BY id DESC LIMIT ?",
        (conversation_id, limit),
    ).fetchall()
    return [r[0] for r in reversed(rows)]


def channel_fields(conn: sqlite3.Connection, channel_id: int) -> dict[str, Any]:
    """`channel.kind`, `channel.name` and `channel.health` of one channel."""
    row = conn.execute("SELECT kind, name, health FROM channels WHERE id = ?", (channel_id,)).fetchone()
    return {} if row is None else {"channel.kind": row[0], "channel.name": row[1], "channel.health": row[2]}


def previous_health(conn: sqlite3.Connection, channel_id: int, before_event_id: int) -> str | None:
    """The health a channel had before event `before_event_id` (from the events log), or None."""
    for (payload,) in conn.execute(
        "SELECT payload FROM events WHERE kind = 'channel.health' AND id < ? AND id > ? ORDER BY id DESC LIMIT 50",
        (before_event_id, before_event_id - BATCH_SPAN),
    ):
        try:
            data = json.loads(payload or "{}")
        except ValueError:
            continue
        if data.get("channel_id") == channel_id:
            return data.get("health")
    return None


def open_conversations(conn: sqlite3.Connection, statuses: tuple[str, ...]) -> list[int]:
    """Ids of conversations in `statuses` (the dry run's timer candidates)."""
    marks = ", ".join("?" for _ in statuses)
    return [r[0] for r in conn.execute(f"SELECT id FROM conversations WHERE status IN ({marks}) ORDER BY id", statuses)]


def operator_logins(conn: sqlite3.Connection) -> list[str]:
    """Every operator's login."""
    return [r[0] for r in conn.execute("SELECT login FROM operators ORDER BY login")]


# --- what rules and macros do besides operators' actions ------------------------------------

#: Events a rule or a macro may append for others to act on: a webhook call (delivered by the
#: `[[webhooks]]` endpoint named in the payload) and a notice for operators' windows.
CALL_KINDS = ("rule.webhook", "rule.notify")


def call_webhook(
    conn: sqlite3.Connection, conversation_id: int | None, endpoint: str, actor: str, now: float, **more: Any
) -> int:
    """Ask the `[[webhooks]]` endpoint `endpoint` to be called about a conversation: one
    `rule.webhook` event that the endpoint's sender delivers, signed and retried
    (omniconsole/integrations/webhooks.py). Returns the event id."""
    return add_event(
        conn, "rule.webhook", actor=actor, conversation_id=conversation_id, payload={"endpoint": endpoint, **more}, at=now
    )


def notify_operators(
    conn: sqlite3.Connection, conversation_id: int | None, text: str, operators: list[str], actor: str, now: float
) -> int:
    """A notice for the windows of `operators` (logins) about a conversation: one
    `rule.notify` event their windows show. Returns the event id."""
    return add_event(
        conn,
        "rule.notify",
        actor=actor,
        conversation_id=conversation_id,
        payload={"text": text, "operators": list(operators)},
        at=now,
    )


def move_to_queue(conn: sqlite3.Connection, conversation_id: int, queue: str, actor: str, now: float) -> None:
    """Put a conversation in routing's queue `queue` (store/routing.py `put_in_queue`), saying
    who moved it. ActionError when the conversation does not exist."""
    from omniconsole.store.actions import ActionError
    from omniconsole.store.routing import put_in_queue

    if conn.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone() is None:
        raise ActionError(N_("conversation {id} does not exist"), id=conversation_id)
    put_in_queue(conn, conversation_id, queue, [], now, f"moved by {actor}")


def record_macro(conn: sqlite3.Connection, conversation_id: int, name: str, did: list, actor: str, now: float) -> None:
    """Keep that `actor` ran macro `name` on a conversation and what it did (a timeline line
    and a `macro.ran` event): `did` holds one English line or phrase (omniconsole.i18n) per
    action; the line is drawn in each reader's language, the event keeps the English lines."""
    from omniconsole.store.actions import _customer_of, _timeline_event

    customer_id = _customer_of(conn, conversation_id)
    did = [d if is_phrase(d) else str(d) for d in did]
    line = phrase(N_("{actor} ran macro {name}: {did}"), actor=actor, name=name, did=joined(did, "; "))
    _timeline_event(conn, conversation_id, customer_id, actor, line, now)
    add_event(
        conn,
        "macro.ran",
        actor=actor,
        conversation_id=conversation_id,
        customer_id=customer_id,
        payload={"macro": name, "did": [english(d) for d in did]},
        at=now,
    )


def figures(conn: sqlite3.Connection) -> dict[str, int]:
    """Counts for `bench rules`: events in the log, rule firings, rows waiting in the schedule."""
    return {
        "events": conn.execute("SELECT count(*) FROM events").fetchone()[0],
        "fired": conn.execute("SELECT count(*) FROM rule_firings").fetchone()[0],
        "scheduled": conn.execute("SELECT count(*) FROM schedule").fetchone()[0],
    }
