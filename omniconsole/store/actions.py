"""What operators do, written to the unified history: replies (queued outbound rows), notes,
assignment, status changes, labels, priority; and the channels' and operators' own rows.

Each function runs inside the caller's write transaction and appends its event there too, so
every window following the events log sees exactly what was committed.
"""

from __future__ import annotations

import json
import sqlite3
import time

from omniconsole.errors import OmniError
from omniconsole.i18n import N_, Np_, english, is_phrase, phrase, word
from omniconsole.models import ConversationStatus, Health, InboxOrder, OperatorRole, preview_line
from omniconsole.store import schedule as timers
from omniconsole.store import search
from omniconsole.store.events import add_event

__all__ = ["ActionError", "add_event"]  # add_event: its old home; the one writer is store/events.py


class ActionError(OmniError):
    """An operator action that cannot be done as asked (no such conversation, no channel)."""


class OpenElsewhere(ActionError):
    """Reopening refused: the customer's work continues in open conversation
    `conversation_id` (one open conversation per customer)."""

    def __init__(self, conversation_id: int) -> None:
        super().__init__(N_("this customer already has an open conversation (#{id}); continue there"), id=conversation_id)
        self.conversation_id = conversation_id


def _customer_of(conn: sqlite3.Connection, conversation_id: int) -> int:
    row = conn.execute("SELECT customer_id FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    if row is None:
        raise ActionError(N_("conversation {id} does not exist"), id=conversation_id)
    return row[0]


def reply_route(conn: sqlite3.Connection, conversation_id: int) -> tuple[int, int] | None:
    """(channel id, identity id) a reply goes by: the customer's latest inbound message,
    in this conversation if it has one, else anywhere in their history."""
    customer_id = _customer_of(conn, conversation_id)
    for sql, arg in (
        (
            "SELECT channel_id, identity_id FROM messages WHERE conversation_id = ? AND direction = 'in' ORDER BY id DESC LIMIT 1",
            conversation_id,
        ),
        # No index on messages.customer_id (it would cost every ingest): go by their conversations.
        (
            "SELECT m.channel_id, m.identity_id FROM conversations c JOIN messages m ON m.conversation_id = c.id"
            " WHERE c.customer_id = ? AND m.direction = 'in' ORDER BY m.id DESC LIMIT 1",
            customer_id,
        ),
    ):
        row = conn.execute(sql, (arg,)).fetchone()
        if row is not None and row[0] is not None and row[1] is not None:
            return row[0], row[1]
    return None


def insert_outbound(
    conn: sqlite3.Connection,
    conversation_id: int,
    customer_id: int,
    channel_id: int,
    identity_id: int,
    author: str,
    body: str,
    now: float,
    meta: dict | None = None,
) -> int:
    """Insert one outbound message, queued for the outbox now (epoch seconds); returns its id.
    The caller indexes it and touches the conversation as its kind of message needs."""
    return conn.execute(
        "INSERT INTO messages (conversation_id, customer_id, channel_id, identity_id, direction, author, body,"
        " created_at, state, next_attempt_at, meta) VALUES (?, ?, ?, ?, 'out', ?, ?, ?, 'queued', ?, ?) RETURNING id",
        (
            conversation_id,
            customer_id,
            channel_id,
            identity_id,
            author,
            body,
            now,
            now,
            json.dumps(meta, ensure_ascii=False) if meta else None,
        ),
    ).fetchone()[0]


def queue_reply(
    conn: sqlite3.Connection,
    conversation_id: int,
    body: str,
    author: str,
    *,
    identity_id: int | None = None,
    channel_id: int | None = None,
    attachments: list[tuple[str, str, str, int]] = (),  # (filename, mime type, path, size)
    meta: dict | None = None,
    now: float | None = None,
) -> int:
    """Queue an operator's reply; the core's outbox sends it. Goes by the customer's latest
    inbound channel unless `identity_id` (and its `channel_id`) say otherwise. `meta` is what
    the channel needs besides the body (a WhatsApp template and its parameters)."""
    now = now or time.time()
    customer_id = _customer_of(conn, conversation_id)
    if identity_id is None or channel_id is None:
        route = reply_route(conn, conversation_id)
        if route is None:
            raise ActionError(N_("this customer has never written on a channel we can answer on"))
        default_channel, default_identity = route
        channel_id = channel_id or default_channel
        identity_id = identity_id or default_identity
    owner = conn.execute("SELECT customer_id FROM identities WHERE id = ?", (identity_id,)).fetchone()
    if owner is None or owner[0] != customer_id:
        raise ActionError(N_("that identity does not belong to this conversation's customer"))
    message_id = insert_outbound(conn, conversation_id, customer_id, channel_id, identity_id, author, body, now, meta)
    for filename, mime, path, size in attachments:
        conn.execute(
            "INSERT INTO attachments (message_id, filename, mime_type, size, path) VALUES (?, ?, ?, ?, ?)",
            (message_id, filename, mime, size, path),
        )
    queued(conn, conversation_id, customer_id, message_id, author, body, now, answered=True)
    return message_id


def queued(
    conn: sqlite3.Connection,
    conversation_id: int,
    customer_id: int,
    message_id: int,
    author: str,
    body: str,
    now: float,
    *,
    answered: bool,
    payload: dict | None = None,
) -> None:
    """What follows storing a queued outbound message, for every writer of one (an operator's
    reply, the bot, a message the company starts): its search entry, the conversation's
    activity (`answered`: a human reply, which stops the customer's wait and sets the first
    response, METRICS.md; otherwise both are left alone) and the `message.queued` event."""
    search.index_message(conn, message_id, body, customer_id)
    _touch(conn, conversation_id, message_id, body, now, answered=answered)
    add_event(
        conn,
        "message.queued",
        actor=author,
        conversation_id=conversation_id,
        customer_id=customer_id,
        message_id=message_id,
        payload=payload,
        at=now,
    )


def add_note(conn: sqlite3.Connection, conversation_id: int, body: str, author: str, now: float | None = None) -> int:
    """A private note: in the timeline for operators, never sent to the customer."""
    now = now or time.time()
    customer_id = _customer_of(conn, conversation_id)
    message_id = conn.execute(
        "INSERT INTO messages (conversation_id, customer_id, direction, author, body, created_at)"
        " VALUES (?, ?, 'note', ?, ?, ?) RETURNING id",
        (conversation_id, customer_id, author, body, now),
    ).fetchone()[0]
    search.index_message(conn, message_id, body, customer_id)
    conn.execute("UPDATE conversations SET message_count = message_count + 1 WHERE id = ?", (conversation_id,))
    add_event(
        conn, "note.added", actor=author, conversation_id=conversation_id, customer_id=customer_id, message_id=message_id, at=now
    )
    return message_id


def _touch(conn: sqlite3.Connection, conversation_id: int, message_id: int, body: str, now: float, *, answered: bool) -> None:
    # The inbox row's preview stays the customer's latest message: what they asked is what
    # the row is about, not our answer to it.
    conn.execute(
        "UPDATE conversations SET last_activity_at = max(last_activity_at, :now), last_message_id = :mid,"
        " preview = CASE WHEN :answered THEN preview ELSE :preview END, message_count = message_count + 1,"
        " first_response_at = CASE WHEN :answered THEN coalesce(first_response_at, :now) ELSE first_response_at END,"
        " waiting_since = CASE WHEN :answered THEN NULL ELSE waiting_since END WHERE id = :id",
        {"now": now, "mid": message_id, "preview": preview_line(body), "answered": answered, "id": conversation_id},
    )


def _timeline_event(
    conn: sqlite3.Connection, conversation_id: int, customer_id: int, actor: str, text: str | dict, now: float
) -> None:
    """A system line in the timeline ("alice assigned bob") so history reads as it happened.
    `text` is a phrase (`omniconsole.i18n.phrase`) or a ready English string; see `event_line`."""
    body, meta = event_line(text)
    conn.execute(
        "INSERT INTO messages (conversation_id, customer_id, direction, author, body, created_at, meta)"
        " VALUES (?, ?, 'event', ?, ?, ?, ?)",
        (conversation_id, customer_id, actor, body, now, meta),
    )


def event_line(text: str | dict) -> tuple[str, str | None]:
    """(body, meta) of a timeline line: `body` is always the English line (search, exports,
    older versions read it); for a phrase, `meta` is `{"line": phrase}` as JSON, which the window
    draws in its operator's language (issue #24). A plain string has no meta."""
    if is_phrase(text):
        return english(text), json.dumps({"line": text}, ensure_ascii=False)
    return str(text), None


#: The statuses a timeline line may name, translated where drawn with this context.
STATUS_WORDS = {
    "open": Np_("conversation status", "open"),
    "pending": Np_("conversation status", "pending"),
    "snoozed": Np_("conversation status", "snoozed"),
    "resolved": Np_("conversation status", "resolved"),
    "spam": Np_("conversation status", "spam"),
}


def status_word(status: str) -> dict | str:
    """A conversation status as a word of a phrase (translated where drawn); an unknown one as it is."""
    status = str(getattr(status, "value", status))
    return word("conversation status", status) if status in STATUS_WORDS else status


def assign(conn: sqlite3.Connection, conversation_id: int, assignee: str | None, actor: str, now: float | None = None) -> None:
    """Assign a conversation to an operator (None: unassign)."""
    now = now or time.time()
    customer_id = _customer_of(conn, conversation_id)
    if assignee is not None and conn.execute("SELECT 1 FROM operators WHERE login = ?", (assignee,)).fetchone() is None:
        raise ActionError(N_("{login} is not an operator"), login=assignee)
    # assigned_at is routing's: a person's assignment clears it, so routing's return timer for
    # the earlier automatic assignment finds nothing to take back (manual assignment wins).
    conn.execute("UPDATE conversations SET assignee = ?, assigned_at = NULL WHERE id = ?", (assignee, conversation_id))
    text = phrase(N_("assigned to {login}"), login=assignee) if assignee else phrase(N_("unassigned"))
    _timeline_event(conn, conversation_id, customer_id, actor, text, now)
    add_event(
        conn,
        "conversation.assigned",
        actor=actor,
        conversation_id=conversation_id,
        customer_id=customer_id,
        payload={"assignee": assignee},
        at=now,
    )


def set_status(
    conn: sqlite3.Connection,
    conversation_id: int,
    status: ConversationStatus,
    actor: str,
    *,
    snoozed_until: float | None = None,
    now: float | None = None,
) -> None:
    """Resolve, reopen, snooze (until a time) or mark pending."""
    now = now or time.time()
    customer_id = _customer_of(conn, conversation_id)
    if status is ConversationStatus.SNOOZED and snoozed_until is None:
        raise ActionError(N_("snoozing needs a time to wake up"))
    if (
        status is ConversationStatus.SPAM
        or conn.execute("SELECT 1 FROM conversations WHERE id = ? AND status = 'spam'", (conversation_id,)).fetchone()
    ):
        raise ActionError(N_("this conversation is in Spam: unblock the customer (x) to work on it"))
    if status is ConversationStatus.OPEN:
        # A customer whose conversation opens again must not find a second open one.
        other = conn.execute(
            "SELECT id FROM conversations WHERE customer_id = ? AND status NOT IN ('resolved', 'spam') AND id != ?",
            (customer_id, conversation_id),
        ).fetchone()
        if other is not None:
            raise OpenElsewhere(other[0])
    conn.execute(
        "UPDATE conversations SET status = ?, snoozed_until = ?,"
        " resolved_at = CASE WHEN ? = 'resolved' THEN ? ELSE NULL END,"
        # Resolved work waits for nobody; a later message starts the wait afresh.
        " waiting_since = CASE WHEN ? = 'resolved' THEN NULL ELSE waiting_since END WHERE id = ?",
        (status, snoozed_until if status is ConversationStatus.SNOOZED else None, status, now, status, conversation_id),
    )
    # The snooze's end is one row of the core's one schedule (core/scheduler.py wakes for it).
    if status is ConversationStatus.SNOOZED:
        timers.schedule(conn, SNOOZE_END, snoozed_until, now, conversation_id=conversation_id)
    else:
        timers.unschedule(conn, SNOOZE_END, conversation_id=conversation_id)
    words = {
        ConversationStatus.RESOLVED: Np_("timeline", "resolved"),
        ConversationStatus.OPEN: Np_("timeline", "reopened"),
        ConversationStatus.PENDING: Np_("timeline", "marked pending"),
        ConversationStatus.SNOOZED: Np_("timeline", "snoozed"),
    }[status]
    _timeline_event(conn, conversation_id, customer_id, actor, word("timeline", words), now)
    add_event(
        conn,
        f"conversation.{status.value}",
        actor=actor,
        conversation_id=conversation_id,
        customer_id=customer_id,
        payload={"snoozed_until": snoozed_until} if snoozed_until else None,
        at=now,
    )


def resolve_stale(
    conn: sqlite3.Connection, conversation_ids: list[int], before: float, actor: str, reason: str, now: float | None = None
) -> int:
    """Resolve the open conversations among `conversation_ids` whose last activity is older
    than `before` (an imported mailbox's old threads: history, not work), as of that activity.

    Returns how many were resolved. No timeline entry each: an event in the log says why."""
    now = now or time.time()
    resolved = 0
    for start in range(0, len(conversation_ids), 500):
        part = conversation_ids[start : start + 500]
        marks = ", ".join("?" * len(part))
        rows = conn.execute(
            f"SELECT id, customer_id FROM conversations WHERE id IN ({marks}) AND status IN ('open', 'pending')"
            " AND last_activity_at < ?",
            (*part, before),
        ).fetchall()
        for conversation_id, customer_id in rows:
            conn.execute(
                "UPDATE conversations SET status = 'resolved', resolved_at = last_activity_at, waiting_since = NULL WHERE id = ?",
                (conversation_id,),
            )
            add_event(
                conn,
                "conversation.resolved",
                actor=actor,
                conversation_id=conversation_id,
                customer_id=customer_id,
                payload={"reason": reason},
                at=now,
            )
        resolved += len(rows)
    return resolved


#: The schedule row kind of a snooze's end (store/schedule.py): conversation = the snoozed one.
SNOOZE_END = "snooze.end"


def wake_snoozed(conn: sqlite3.Connection, now: float | None = None) -> list[int]:
    """Reopen every snoozed conversation whose time has come; returns their ids. (The running
    core wakes each one from its schedule row instead, `wake_one`.)"""
    now = now or time.time()
    ids = [r[0] for r in conn.execute("SELECT id FROM conversations WHERE status = 'snoozed' AND snoozed_until <= ?", (now,))]
    return [cid for cid in ids if wake_one(conn, cid, now)]


def wake_one(conn: sqlite3.Connection, conversation_id: int, now: float) -> bool:
    """Reopen one conversation whose snooze ended at or before `now` (epoch seconds), with a
    `conversation.woke` event; False (nothing done) when it is no longer snoozed or was snoozed
    again to a later time (a customer's message or an operator woke it first)."""
    woke = conn.execute(
        "UPDATE conversations SET status = 'open', snoozed_until = NULL WHERE id = ? AND status = 'snoozed' AND snoozed_until <= ?",
        (conversation_id, now),
    ).rowcount
    if woke:
        timers.unschedule(conn, SNOOZE_END, conversation_id=conversation_id)
        add_event(conn, "conversation.woke", conversation_id=conversation_id, at=now)
    return bool(woke)


def set_priority(conn: sqlite3.Connection, conversation_id: int, priority: int, actor: str) -> None:
    """0 normal, 1 high, 2 urgent."""
    customer_id = _customer_of(conn, conversation_id)
    conn.execute("UPDATE conversations SET priority = ? WHERE id = ?", (priority, conversation_id))
    add_event(
        conn,
        "conversation.priority",
        actor=actor,
        conversation_id=conversation_id,
        customer_id=customer_id,
        payload={"priority": priority},
    )


#: Longest subject an operator may give, in characters.
SUBJECT_MAX = 200


def set_subject(conn: sqlite3.Connection, conversation_id: int, subject: str, actor: str, now: float | None = None) -> str:
    """Rename a conversation (it collects every topic the customer raises while open, so its
    first subject goes stale): one line, at most SUBJECT_MAX characters; returns what was
    stored. ActionError when the conversation does not exist or the subject is empty."""
    now = now or time.time()
    customer_id = _customer_of(conn, conversation_id)
    subject = " ".join(subject.split())[:SUBJECT_MAX]
    if not subject:
        raise ActionError(N_("a subject cannot be empty"))
    old = conn.execute("SELECT subject FROM conversations WHERE id = ?", (conversation_id,)).fetchone()[0]
    if old == subject:
        return subject
    conn.execute("UPDATE conversations SET subject = ? WHERE id = ?", (subject, conversation_id))
    _timeline_event(
        conn,
        conversation_id,
        customer_id,
        actor,
        phrase(N_("{actor} renamed the subject to «{subject}»"), actor=actor, subject=subject),
        now,
    )
    add_event(
        conn,
        "conversation.subject",
        actor=actor,
        conversation_id=conversation_id,
        customer_id=customer_id,
        payload={"subject": subject, "was": old},
        at=now,
    )
    return subject


def set_conversation_labels(conn: sqlite3.Connection, conversation_id: int, labels: list[str], actor: str) -> None:
    """Replace a conversation's labels; unknown labels are created. The event's payload names
    the whole list and what was added and removed."""
    customer_id = _customer_of(conn, conversation_id)
    before = {
        r[0]
        for r in conn.execute(
            "SELECT l.name FROM conversation_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.conversation_id = ?",
            (conversation_id,),
        )
    }
    conn.execute("DELETE FROM conversation_labels WHERE conversation_id = ?", (conversation_id,))
    after = {label.strip() for label in labels if label.strip()}
    for name in sorted(after):
        conn.execute("INSERT INTO labels (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (name,))
        conn.execute(
            "INSERT INTO conversation_labels (conversation_id, label_id) SELECT ?, id FROM labels WHERE name = ?",
            (conversation_id, name),
        )
    add_event(
        conn,
        "conversation.labels",
        actor=actor,
        conversation_id=conversation_id,
        customer_id=customer_id,
        # What changed, for rules on "label added" (omniconsole/automation/).
        payload={"labels": labels, "added": sorted(after - before), "removed": sorted(before - after)},
    )


# --- channels ----------------------------------------------------------------------------


def ensure_channel(conn: sqlite3.Connection, kind: str, name: str) -> int:
    """The id of the channel named `name`, creating its row on first use."""
    row = conn.execute("SELECT id, kind FROM channels WHERE name = ?", (name,)).fetchone()
    if row is not None:
        if row[1] != kind:
            raise ActionError(
                N_("channel {name} was a {was} channel before and cannot become {kind}; give it another name"),
                name=repr(name),
                was=row[1],
                kind=str(kind),
            )
        return row[0]
    return conn.execute(
        "INSERT INTO channels (kind, name, created_at) VALUES (?, ?, ?) RETURNING id", (kind, name, time.time())
    ).fetchone()[0]


def set_channel_health(conn: sqlite3.Connection, channel_id: int, health: Health, detail: str = "") -> bool:
    """Record a channel's health; an event only when it changed. Returns whether it changed."""
    row = conn.execute("SELECT health, health_detail FROM channels WHERE id = ?", (channel_id,)).fetchone()
    if row is not None and row[0] == health and row[1] == detail:
        return False
    conn.execute(
        "UPDATE channels SET health = ?, health_detail = ?, health_at = ? WHERE id = ?", (health, detail, time.time(), channel_id)
    )
    add_event(conn, "channel.health", payload={"channel_id": channel_id, "health": health, "detail": detail})
    return True


# --- operators ---------------------------------------------------------------------------


def add_operator(
    conn: sqlite3.Connection,
    login: str,
    display_name: str = "",
    role: OperatorRole = OperatorRole.AGENT,
    actor: str = "",
    extension: str | None = None,
) -> None:
    """Register (or update) an operator: a Unix login allowed to open the window. `extension`
    is their phone extension (None keeps the one they have); another operator's extension is
    refused in words."""
    if extension is not None:
        taken = conn.execute("SELECT login FROM operators WHERE extension = ? AND login != ?", (extension, login)).fetchone()
        if taken is not None:
            raise ActionError(
                N_("extension {extension} already rings {taken}; give {login} another one"),
                extension=extension,
                taken=taken[0],
                login=login,
            )
    conn.execute(
        "INSERT INTO operators (login, display_name, role, created_at, extension) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (login) DO UPDATE SET display_name = excluded.display_name, role = excluded.role,"
        " extension = coalesce(excluded.extension, operators.extension)",
        (login, display_name or login, role, time.time(), extension),
    )
    add_event(conn, "operator.added", actor=actor, payload={"login": login, "role": role})


def remove_operator(conn: sqlite3.Connection, login: str, actor: str = "") -> bool:
    """Remove an operator; their conversations become unassigned."""
    gone = conn.execute("DELETE FROM operators WHERE login = ?", (login,)).rowcount
    if gone:
        conn.execute("UPDATE conversations SET assignee = NULL WHERE assignee = ?", (login,))
        add_event(conn, "operator.removed", actor=actor, payload={"login": login})
    return bool(gone)


def set_operator_language(conn: sqlite3.Connection, login: str, language: str | None, actor: str = "") -> None:
    """Set the language of an operator's window and CLI (one of omniconsole/i18n.py LANGUAGES;
    None: not chosen, the config or the locale decides); an `operator.updated` event by `actor`.
    ActionError in words for an unknown login or language."""
    from omniconsole.i18n import LANGUAGES

    if language is not None and language not in LANGUAGES:
        raise ActionError(
            N_("language must be one of {choices} (got {value})"), choices=", ".join(LANGUAGES), value=repr(language)
        )
    if conn.execute("UPDATE operators SET language = ? WHERE login = ?", (language, login)).rowcount == 0:
        raise ActionError(N_("{login} is not an operator (add them with `omniconsole operator add {login}`)"), login=login)
    add_event(conn, "operator.updated", actor=actor, payload={"login": login, "language": language})


# --- what each operator has seen -------------------------------------------------------


def mark_read(conn: sqlite3.Connection, operator: str, conversation_id: int) -> None:
    """The operator has seen the conversation up to its latest message."""
    conn.execute(
        "INSERT INTO reads (operator, conversation_id, last_message_id)"
        " SELECT ?, id, coalesce(last_message_id, 0) FROM conversations WHERE id = ?"
        " ON CONFLICT (operator, conversation_id) DO UPDATE SET last_message_id = excluded.last_message_id",
        (operator, conversation_id),
    )
    add_event(conn, "conversation.read", actor=operator, conversation_id=conversation_id)


def set_presence(conn: sqlite3.Connection, operator: str, conversation_id: int | None, typing: bool = False) -> None:
    """Where the operator is looking (soft state: no event, see the schema)."""
    conn.execute(
        "INSERT INTO presence (operator, conversation_id, typing, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (operator) DO UPDATE SET conversation_id = excluded.conversation_id, typing = excluded.typing,"
        " updated_at = excluded.updated_at",
        (operator, conversation_id, int(typing), time.time()),
    )


def inbox_order(conn: sqlite3.Connection, operator: str) -> InboxOrder:
    """The inbox order the operator last chose (models.InboxOrder; the default: priority)."""
    row = conn.execute(
        "SELECT value FROM operator_preferences WHERE operator = ? AND name = 'inbox_order'", (operator,)
    ).fetchone()
    try:
        return InboxOrder(row[0]) if row else InboxOrder.PRIORITY
    except ValueError:  # an order a newer version wrote
        return InboxOrder.PRIORITY


def set_inbox_order(conn: sqlite3.Connection, operator: str, order: InboxOrder, now: float | None = None) -> None:
    """Remember the operator's inbox order. ActionError for an order that does not exist."""
    try:
        order = InboxOrder(order)
    except ValueError:
        raise ActionError(
            N_("no inbox order {order}: one of {choices}"), order=repr(order), choices=", ".join(o.value for o in InboxOrder)
        ) from None
    conn.execute(
        "INSERT INTO operator_preferences (operator, name, value, updated_at) VALUES (?, 'inbox_order', ?, ?)"
        " ON CONFLICT (operator, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (operator, order.value, now or time.time()),
    )


def filter_choices(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
    """(channel kinds configured, label names) for the inbox's filter, each sorted."""
    kinds = [r[0] for r in conn.execute("SELECT DISTINCT kind FROM channels ORDER BY kind")]
    labels = [r[0] for r in conn.execute("SELECT name FROM labels ORDER BY name")]
    return kinds, labels
