"""The bot's rows: which conversations the bot is in, their state, and what it did.

A conversation the bot took part in has one `bot_conversations` row. Its `state` is the
handoff state the core owns (issue #17): `bot` (the bot may answer) -> `human` (handed off: the
bot stays silent until the conversation is resolved) -> `done` (resolved). Every change is an
event (`bot.answered`, `bot.handoff`, `bot.resolved`, `bot.taken_over`, `bot.withdrawn`) with
its reason. Times are float epoch seconds.

`BotStore` is the async face the answers package and the window use; the functions below it
run inside one write transaction each (`Database.write`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field

from omniconsole.i18n import N_
from omniconsole.models import ConversationStatus
from omniconsole.store import actions, search
from omniconsole.store import schedule as timers
from omniconsole.store.events import add_event

#: A customer who comes back within this long reopens the issue (METRICS.md "Issue", "Bot").
REOPEN_WINDOW = 7 * 86400.0
#: The schedule row that resolves an answered conversation nobody resolved (`assume`).
ASSUME = "bot.assume"

_COLUMNS = (
    "conversation_id",
    "customer_id",
    "state",
    "language",
    "topic",
    "unconfirmed",
    "answered",
    "last_question",
    "awaiting",
    "offered",
    "handoff_reason",
    "outcome",
    "repeat_contact",
    "started_at",
    "updated_at",
    "resolved_at",
)


@dataclass
class BotConversation:
    """One conversation's bot state. `answered` is the article keys sent, in order; `offered`
    the (button id, title) pairs last offered; `awaiting` 'feedback' | 'choice' | ''."""

    conversation_id: int
    customer_id: int
    state: str = "bot"
    language: str = ""
    topic: str = ""
    unconfirmed: int = 0
    answered: list[str] = field(default_factory=list)
    last_question: str = ""
    awaiting: str = ""
    offered: list[tuple[str, str]] = field(default_factory=list)
    handoff_reason: str = ""
    outcome: str = ""
    repeat_contact: int = 0
    started_at: float = 0.0
    updated_at: float = 0.0
    resolved_at: float | None = None


@dataclass(frozen=True, slots=True)
class BotReport:
    """What the bot did in one conversation, for the block at the top of the operator's
    timeline: its state now, the customer's question (at the handoff, else the last one it
    took), the answers sent as `(article key, confidence 0..1 or None, the start of the sent
    text)`, and the handoff's reason, category, confidence and moment (epoch seconds; empty and
    None while the bot still answers). Texts are the customer's and the library's: draw them
    as data."""

    conversation_id: int
    state: str
    language: str
    topic: str
    question: str
    answers: tuple[tuple[str, float | None, str], ...]
    handoff_reason: str
    handoff_category: str
    confidence: float | None
    handed_off_at: float | None


#: Steps kept in a conversation's report (the bot gives at most a few answers before a handoff).
REPORT_STEPS = 20
#: Characters of each sent answer kept in a report.
EXCERPT = 160


def add_to_report(conn: sqlite3.Connection, conversation_id: int, step: dict) -> None:
    """Append one step (`{"kind": "answered" | "offered" | "handoff" | "taken_over", ...}`) to
    the conversation's report of what the bot did (the last REPORT_STEPS are kept)."""
    row = conn.execute("SELECT report FROM bot_conversations WHERE conversation_id = ?", (conversation_id,)).fetchone()
    if row is None:
        return
    try:
        steps = json.loads(row[0]) if row[0] else []
    except ValueError:
        steps = []
    steps = [*(steps if isinstance(steps, list) else []), step][-REPORT_STEPS:]
    conn.execute(
        "UPDATE bot_conversations SET report = ? WHERE conversation_id = ?",
        (json.dumps(steps, ensure_ascii=False), conversation_id),
    )


def report(conn: sqlite3.Connection, conversation_id: int) -> BotReport | None:
    """What the bot did in the conversation (see `BotReport`); None when the bot never took
    part or did nothing yet (a greeting it stayed silent on)."""
    row = conn.execute(
        "SELECT state, language, topic, last_question, handoff_reason, report FROM bot_conversations WHERE conversation_id = ?",
        (conversation_id,),
    ).fetchone()
    if row is None or not row[5]:
        return None
    try:
        steps = [s for s in json.loads(row[5]) if isinstance(s, dict)]
    except (ValueError, TypeError):
        return None
    if not steps:
        return None
    sent = [s for s in steps if s.get("kind") == "answered"]
    ids = [int(s["message_id"]) for s in sent if isinstance(s.get("message_id"), int)]
    bodies: dict[int, str] = {}
    for message_id in ids:  # a handful at most
        found = conn.execute("SELECT body FROM messages WHERE id = ?", (message_id,)).fetchone()
        if found is not None:
            bodies[message_id] = found[0] or ""
    answers = tuple(
        (
            str(s.get("article") or ""),
            float(s["confidence"]) if isinstance(s.get("confidence"), (int, float)) else None,
            " ".join(bodies.get(s.get("message_id"), "").split())[:EXCERPT],
        )
        for s in sent
    )
    handoffs = [s for s in steps if s.get("kind") in ("handoff", "taken_over")]
    last = handoffs[-1] if handoffs else {}
    question = str(last.get("question") or "") or row[3] or next((str(s.get("question") or "") for s in reversed(steps)), "")
    confidence = last.get("confidence")
    return BotReport(
        conversation_id,
        row[0],
        str(last.get("language") or row[1] or ""),
        str(last.get("topic") or row[2] or ""),
        question,
        answers,
        str(last.get("reason") or row[4] or "") if last else "",
        str(last.get("category") or last.get("kind") or "") if last else "",
        float(confidence) if isinstance(confidence, (int, float)) else None,
        float(last["at"]) if isinstance(last.get("at"), (int, float)) else None,
    )


def _row(values: sqlite3.Row | tuple) -> BotConversation:
    data = dict(zip(_COLUMNS, values))
    data["answered"] = data["answered"].split()
    offered = json.loads(data["offered"]) if data["offered"] else []
    data["offered"] = [(str(i), str(t)) for i, t in offered]
    return BotConversation(**data)


def load(conn: sqlite3.Connection, conversation_id: int) -> BotConversation | None:
    """The bot state of a conversation, or None when the bot never took part in it."""
    row = conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM bot_conversations WHERE conversation_id = ?", (conversation_id,)
    ).fetchone()
    return _row(tuple(row)) if row is not None else None


def begin(conn: sqlite3.Connection, conversation_id: int, customer_id: int, now: float | None = None) -> BotConversation:
    """The conversation's bot state, created in state `bot` on its first customer message. A
    conversation handed off or done whose conversation was resolved since, and then reopened,
    starts afresh (the bot is silent only until resolution)."""
    now = now or time.time()
    conn.execute(
        "INSERT INTO bot_conversations (conversation_id, customer_id, state, started_at, updated_at) VALUES (?, ?, 'bot', ?, ?)"
        " ON CONFLICT (conversation_id) DO NOTHING",
        (conversation_id, customer_id, now, now),
    )
    state = load(conn, conversation_id)
    assert state is not None
    if state.state in ("human", "done"):
        resolved = conn.execute("SELECT resolved_at FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if resolved is not None and resolved[0] is not None and resolved[0] >= state.updated_at and state.state == "human":
            save(conn, conversation_id, state="bot", unconfirmed=0, awaiting="", offered=[], handoff_reason="", now=now)
            state = load(conn, conversation_id)
    return state


def save(conn: sqlite3.Connection, conversation_id: int, *, now: float | None = None, **changes) -> None:
    """Change some columns of a conversation's bot state (names of `BotConversation`)."""
    unknown = set(changes) - set(_COLUMNS)
    if unknown:
        raise ValueError(f"unknown bot state fields: {sorted(unknown)}")
    if "answered" in changes:
        changes["answered"] = " ".join(changes["answered"])
    if "offered" in changes:
        changes["offered"] = (
            json.dumps([list(pair) for pair in changes["offered"]], ensure_ascii=False) if changes["offered"] else ""
        )
    changes["updated_at"] = now or time.time()
    names = sorted(changes)
    conn.execute(
        f"UPDATE bot_conversations SET {', '.join(f'{name} = ?' for name in names)} WHERE conversation_id = ?",
        (*[changes[name] for name in names], conversation_id),
    )


def queue_message(
    conn: sqlite3.Connection,
    conversation_id: int,
    body: str,
    author: str,
    *,
    meta: dict | None = None,
    kind: str = "answered",
    payload: dict | None = None,
    now: float | None = None,
) -> int:
    """Queue one bot message for the outbox (by the customer's latest channel) and record the
    `bot.<kind>` event; returns the message id. Unlike an operator's reply it is not a human
    reply: the first-response clock and the customer's wait are left alone (METRICS.md).
    Raises ActionError when the customer has no channel to answer on."""
    now = now or time.time()
    customer_id = actions._customer_of(conn, conversation_id)  # noqa: SLF001 - one store, one helper
    route = actions.reply_route(conn, conversation_id)
    if route is None:
        raise actions.ActionError(N_("this customer has never written on a channel we can answer on"))
    channel_id, identity_id = route
    message_id = actions.insert_outbound(conn, conversation_id, customer_id, channel_id, identity_id, author, body, now, meta)
    actions.queued(conn, conversation_id, customer_id, message_id, author, body, now, answered=False)
    add_event(
        conn,
        f"bot.{kind}",
        actor=author,
        conversation_id=conversation_id,
        customer_id=customer_id,
        message_id=message_id,
        payload=payload,
        at=now,
    )
    if kind in ("answered", "offered"):
        add_to_report(conn, conversation_id, {"kind": kind, "at": now, "message_id": message_id, **(payload or {})})
    return message_id


def handoff(
    conn: sqlite3.Connection,
    conversation_id: int,
    reason: str,
    category: str,
    summary: str | dict,
    author: str,
    now: float | None = None,
    *,
    details: dict | None = None,
) -> None:
    """Hand the conversation to a person: state `human`, an assumed resolution cancelled, and
    a note for the operator saying what the bot did (`summary`: English text, or a phrase of
    omniconsole.i18n kept in the note's meta and drawn in the reader's language). `details` (the customer's
    question, the confidence 0..1 or None, language, topic) go into the `bot.handoff` event's
    payload, which the window draws at the top of the timeline (`handoff_report`). The
    conversation leaves any queue place it had: routing queues it from now (issue #17)."""
    now = now or time.time()
    state = load(conn, conversation_id)
    customer_id = actions._customer_of(conn, conversation_id)  # noqa: SLF001
    save(
        conn,
        conversation_id,
        state="human",
        handoff_reason=reason,
        awaiting="",
        offered=[],
        outcome="" if state is None or state.outcome == "assumed" else state.outcome,
        now=now,
    )
    body, meta = actions.event_line(summary)
    note_id = conn.execute(
        "INSERT INTO messages (conversation_id, customer_id, direction, author, body, created_at, meta)"
        " VALUES (?, ?, 'note', ?, ?, ?, ?) RETURNING id",
        (conversation_id, customer_id, author, body, now, meta),
    ).fetchone()[0]
    # Indexed as every note is: searchable, and erasing its text later (retention, an erasure)
    # removes an entry the index holds (store/search.py INDEXED_DIRECTIONS).
    search.index_message(conn, note_id, body, customer_id)
    # The customer waits for a person from the handoff on (METRICS.md, first response time).
    conn.execute(
        "UPDATE conversations SET waiting_since = ?, message_count = message_count + 1,"
        " queued_at = CASE WHEN assignee IS NULL THEN NULL ELSE queued_at END WHERE id = ?",
        (now, conversation_id),
    )
    add_event(
        conn,
        "bot.handoff",
        actor=author,
        conversation_id=conversation_id,
        customer_id=customer_id,
        payload={"reason": reason, "category": category, **(details or {})},
        at=now,
    )
    add_to_report(
        conn, conversation_id, {"kind": "handoff", "at": now, "reason": reason, "category": category, **(details or {})}
    )


def can_answer(conn: sqlite3.Connection, conversation_id: int) -> bool:
    """Whether the customer has a channel the bot can write to in this conversation."""
    return actions.reply_route(conn, conversation_id) is not None


def confirm(conn: sqlite3.Connection, conversation_id: int, author: str, now: float | None = None) -> None:
    """The customer said the bot's answer helped: bot-resolved (confirmed), conversation resolved."""
    now = now or time.time()
    save(
        conn, conversation_id, state="done", outcome="confirmed", awaiting="", offered=[], unconfirmed=0, resolved_at=now, now=now
    )
    actions.set_status(conn, conversation_id, ConversationStatus.RESOLVED, author, now=now)
    customer_id = actions._customer_of(conn, conversation_id)  # noqa: SLF001
    add_event(
        conn,
        "bot.resolved",
        actor=author,
        conversation_id=conversation_id,
        customer_id=customer_id,
        payload={"outcome": "confirmed"},
        at=now,
    )


def expect_assumption(conn: sqlite3.Connection, conversation_id: int, due_at: float, author: str, now: float) -> None:
    """The bot answered: unless the customer confirms, asks more or a person takes over, the
    conversation is resolved as bot-resolved (assumed) at `due_at` (epoch seconds; the one
    schedule row of `(ASSUME, conversation)`, moved by each answer)."""
    timers.schedule(conn, ASSUME, due_at, now, conversation_id=conversation_id, payload={"author": author})


def assume(conn: sqlite3.Connection, conversation_id: int, author: str, now: float | None = None) -> bool:
    """Resolve an answered conversation nobody resolved as bot-resolved (assumed): only while
    the bot still holds it (state `bot`, outcome `assumed`), it is open and nobody took it.
    The 7-day withdrawal (`withdraw_returning`) counts from the bot's last answer. False when
    it no longer applies."""
    now = now or time.time()
    state = load(conn, conversation_id)
    if state is None or state.state != "bot" or state.outcome != "assumed":
        return False
    row = conn.execute("SELECT status, assignee FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    if row is None or row[0] != "open" or row[1] is not None:
        return False
    save(conn, conversation_id, state="done", awaiting="", offered=[], now=now)
    actions.set_status(conn, conversation_id, ConversationStatus.RESOLVED, author, now=now)
    add_event(
        conn,
        "bot.resolved",
        actor=author,
        conversation_id=conversation_id,
        customer_id=state.customer_id,
        payload={"outcome": "assumed", "reason": "the customer asked for nothing more after the bot's answer"},
        at=now,
    )
    return True


def take_over(conn: sqlite3.Connection, conversation_id: int, operator: str, now: float | None = None) -> bool:
    """An operator takes a bot conversation over: the bot stops at once (state `human`) and the
    conversation is assigned to them when they are a registered operator. False when the bot
    was not answering in it."""
    now = now or time.time()
    state = load(conn, conversation_id)
    if state is None or state.state != "bot":
        return False
    save(
        conn,
        conversation_id,
        state="human",
        handoff_reason=f"taken over by {operator}",
        awaiting="",
        offered=[],
        outcome="" if state.outcome == "assumed" else state.outcome,
        now=now,
    )
    if conn.execute("SELECT 1 FROM operators WHERE login = ?", (operator,)).fetchone() is not None:
        actions.assign(conn, conversation_id, operator, operator, now=now)
    add_event(
        conn,
        "bot.taken_over",
        actor=operator,
        conversation_id=conversation_id,
        customer_id=state.customer_id,
        payload={"reason": "taken over by an operator"},
        at=now,
    )
    add_to_report(conn, conversation_id, {"kind": "taken_over", "at": now, "reason": f"taken over by {operator}"})
    return True


def withdraw_returning(conn: sqlite3.Connection, customer_id: int, conversation_id: int, now: float | None = None) -> int:
    """A customer wrote again: bot resolutions of theirs from the last 7 days in other
    conversations (or in this one, once done) are revisited. An assumed one is withdrawn, a
    confirmed one counts as a repeat contact (METRICS.md "Bot"). Returns how many changed."""
    now = now or time.time()
    rows = conn.execute(
        "SELECT conversation_id, outcome FROM bot_conversations WHERE customer_id = ? AND resolved_at >= ?"
        " AND ((outcome = 'assumed' AND (conversation_id <> ? OR state = 'done')) OR (outcome = 'confirmed' AND repeat_contact = 0))",
        (customer_id, now - REOPEN_WINDOW, conversation_id),
    ).fetchall()
    for other, outcome in rows:
        if outcome == "assumed":
            save(conn, other, outcome="withdrawn", now=now)
        else:
            save(conn, other, repeat_contact=1, now=now)
        add_event(
            conn,
            "bot.withdrawn" if outcome == "assumed" else "bot.repeat_contact",
            actor="bot",
            conversation_id=other,
            customer_id=customer_id,
            payload={"came_back_in": conversation_id},
            at=now,
        )
    return len(rows)


def conversation_facts(conn: sqlite3.Connection, conversation_id: int) -> tuple[str | None, str, float | None, str]:
    """(assignee, status, first_response_at, customer display name) of a conversation."""
    row = conn.execute(
        "SELECT c.assignee, c.status, c.first_response_at, cu.display_name FROM conversations c"
        " JOIN customers cu ON cu.id = c.customer_id WHERE c.id = ?",
        (conversation_id,),
    ).fetchone()
    if row is None:
        raise actions.ActionError(N_("conversation {id} does not exist"), id=conversation_id)
    return row[0], row[1], row[2], row[3] or ""


def live(conn: sqlite3.Connection, limit: int = 500) -> list[tuple[BotConversation, str, str]]:
    """Conversations the bot is answering now, newest activity first, each with its
    customer's name and the conversation's preview: the window's "Bot" view."""
    rows = conn.execute(
        f"SELECT {', '.join('b.' + c for c in _COLUMNS)}, cu.display_name, c.preview FROM bot_conversations b"
        " JOIN conversations c ON c.id = b.conversation_id JOIN customers cu ON cu.id = b.customer_id"
        " WHERE b.state = 'bot' AND c.status NOT IN ('resolved', 'spam') ORDER BY b.updated_at DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [(_row(tuple(r)[: len(_COLUMNS)]), r[len(_COLUMNS)] or "", r[len(_COLUMNS) + 1] or "") for r in rows]


def calibration_pairs(conn: sqlite3.Connection, limit: int = 20_000) -> list[tuple[str, str]]:
    """(customer question, article key) pairs from history: each article an operator inserted
    into a sent reply, with the customer's latest message before that reply."""
    rows = conn.execute(
        "SELECT u.article_key, (SELECT m.body FROM messages m WHERE m.conversation_id = u.conversation_id"
        "   AND m.direction = 'in' AND m.id < u.message_id ORDER BY m.id DESC LIMIT 1) AS question"
        " FROM kb_usage u WHERE u.message_id IS NOT NULL AND u.action IN ('inserted', 'accepted')"
        " ORDER BY u.id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [(question, key) for key, question in rows if question]


def figures(conn: sqlite3.Connection, since: float = 0.0) -> dict:
    """The bot's figures since `since` (METRICS.md "Bot"): engaged, contained, confirmed,
    assumed, withdrawn, repeat contacts, and handoffs by reason category."""
    engaged = conn.execute("SELECT count(*) FROM bot_conversations WHERE started_at >= ?", (since,)).fetchone()[0]
    outcomes = dict(
        conn.execute(
            "SELECT outcome, count(*) FROM bot_conversations WHERE started_at >= ? GROUP BY outcome", (since,)
        ).fetchall()
    )
    repeats = conn.execute(
        "SELECT count(*) FROM bot_conversations WHERE started_at >= ? AND repeat_contact = 1", (since,)
    ).fetchone()[0]
    handoffs: dict[str, int] = {}
    for (payload,) in conn.execute("SELECT payload FROM events WHERE kind = 'bot.handoff' AND at >= ?", (since,)):
        category = json.loads(payload).get("category", "") if payload else ""
        handoffs[category] = handoffs.get(category, 0) + 1
    return {
        "engaged": engaged,
        "confirmed": outcomes.get("confirmed", 0),
        "assumed": outcomes.get("assumed", 0),
        "withdrawn": outcomes.get("withdrawn", 0),
        "repeat_contacts": repeats,
        "handoffs": handoffs,
    }


class BotStore:
    """Async access to the bot's rows through a `Store` (one write transaction per call)."""

    def __init__(self, store):
        self.db = store.db

    async def begin(self, conversation_id: int, customer_id: int, now: float | None = None) -> BotConversation:
        """See `begin`: the state, created in `bot` on the first customer message."""
        return await self.db.write(begin, conversation_id, customer_id, now)

    async def load(self, conversation_id: int) -> BotConversation | None:
        """See `load`: None when the bot never took part."""
        return await self.db.run(load, conversation_id)

    async def save(self, conversation_id: int, **changes) -> None:
        """See `save`; ValueError for an unknown field."""
        await self.db.write(save, conversation_id, **changes)

    async def queue_message(self, conversation_id: int, body: str, author: str, **kwargs) -> int:
        """See `queue_message`: the bot's message in the outbox; its id."""
        return await self.db.write(queue_message, conversation_id, body, author, **kwargs)

    async def handoff(self, conversation_id: int, reason: str, category: str, summary: str, author: str) -> None:
        """See `handoff`: state `human` and the note for the operator."""
        await self.db.write(handoff, conversation_id, reason, category, summary, author)

    async def confirm(self, conversation_id: int, author: str) -> None:
        """See `confirm`: bot-resolved (confirmed)."""
        await self.db.write(confirm, conversation_id, author)

    async def take_over(self, conversation_id: int, operator: str) -> bool:
        """See `take_over`: False when the bot was not answering there."""
        return await self.db.write(take_over, conversation_id, operator)

    async def withdraw_returning(self, customer_id: int, conversation_id: int, now: float | None = None) -> int:
        """See `withdraw_returning`: how many resolutions changed."""
        return await self.db.write(withdraw_returning, customer_id, conversation_id, now)

    async def conversation_facts(self, conversation_id: int) -> tuple[str | None, str, float | None, str]:
        """See `conversation_facts`."""
        return await self.db.run(conversation_facts, conversation_id)

    async def live(self, limit: int = 500) -> list[tuple[BotConversation, str, str]]:
        """See `live`: the Bot view's rows."""
        return await self.db.run(live, limit)

    async def calibration_pairs(self, limit: int = 20_000) -> list[tuple[str, str]]:
        """See `calibration_pairs`."""
        return await self.db.run(calibration_pairs, limit)

    async def figures(self, since: float = 0.0) -> dict:
        """See `figures` (METRICS.md "Bot")."""
        return await self.db.run(figures, since)
