"""What reports, the wallboard and surveys read and write: the rows behind every figure of
../shared/METRICS.md (computed in omniconsole/analytics/figures.py), and the surveys table.

Times are float epoch seconds. Reads run in one connection (one snapshot); writes run inside
the caller's write transaction and append their events through the one events writer.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass, field

from omniconsole.store.events import add_event
from omniconsole.store.search import index_message

#: Event kinds that change a conversation's status (kept under the `events_status` index).
STATUS_KINDS = (
    "conversation.resolved",
    "conversation.open",
    "conversation.reopened",
    "conversation.snoozed",
    "conversation.woke",
    "conversation.pending",
    "bot.handoff",
)
# The same list as the partial index's condition, written identically so SQLite uses it.
_STATUS_IN = (
    "('conversation.resolved', 'conversation.open', 'conversation.reopened', 'conversation.snoozed',"
    " 'conversation.woke', 'conversation.pending', 'bot.handoff')"
)


@dataclass(slots=True)
class ConversationHistory:
    """One conversation as the figures need it.

    `messages`: (epoch seconds, direction 'in'|'out', author, flags set, channel kind or None),
    in time order; notes and timeline lines are left out. `status`: (epoch seconds, event kind,
    actor) in id order. `surveys`: (kind, score, answered_at, handled_by) of answered surveys."""

    id: int
    customer_id: int
    status: str
    assignee: str | None
    opened_at: float
    resolved_at: float | None
    labels: list[str] = field(default_factory=list)
    messages: list[tuple[float, str, str, frozenset, str | None]] = field(default_factory=list)
    status_events: list[tuple[float, str, str]] = field(default_factory=list)
    surveys: list[tuple[str, int, float, str]] = field(default_factory=list)


def report_histories(
    conn: sqlite3.Connection, start: float | None, end: float | None, conversation_ids: list[int] | None = None
) -> list[ConversationHistory]:
    """Every conversation a figure of the period [start, end) may come from: opened before
    `end` and active, resolved or answered in the period, or still unresolved (None: no bound).
    With `conversation_ids`, exactly those. One snapshot: the caller runs this in one read."""
    lo = float("-inf") if start is None else start
    hi = float("inf") if end is None else end
    if conversation_ids is not None:
        params = {f"id{n}": cid for n, cid in enumerate(conversation_ids)}
        cond = f"c.id IN ({', '.join(':' + name for name in params) or 'NULL'})"
    else:
        cond = (
            "c.opened_at < :hi AND (c.last_activity_at >= :lo OR c.status != 'resolved' OR c.resolved_at >= :lo"
            " OR c.id IN (SELECT s.conversation_id FROM surveys s WHERE s.answered_at >= :lo AND s.answered_at < :hi))"
        )
        params = {"lo": lo, "hi": hi}
    histories: dict[int, ConversationHistory] = {}
    for cid, customer, status, assignee, opened, resolved in conn.execute(
        f"SELECT c.id, c.customer_id, c.status, c.assignee, c.opened_at, c.resolved_at FROM conversations c WHERE {cond}"
        " ORDER BY c.id",
        params,
    ):
        histories[cid] = ConversationHistory(cid, customer, status, assignee, opened, resolved)
    if not histories:
        return []
    flag_sets: dict[str, frozenset] = {"": frozenset()}  # a few distinct flag strings: one set each
    channel_kinds = dict(conn.execute("SELECT id, kind FROM channels").fetchall())
    current_id, current = None, None
    for cid, at, direction, author, flags, channel_id in conn.execute(
        "SELECT m.conversation_id, m.created_at, m.direction, m.author, m.flags, m.channel_id FROM conversations c"
        " JOIN messages m ON m.conversation_id = c.id"
        f" WHERE {cond} AND m.direction IN ('in', 'out') ORDER BY m.conversation_id, m.created_at, m.id",
        params,
    ):
        if cid != current_id:
            current_id, current = cid, histories[cid].messages
        flag_set = flag_sets.get(flags)
        if flag_set is None:
            flag_set = flag_sets[flags] = frozenset(flags.split())
        current.append((at, direction, author, flag_set, channel_kinds.get(channel_id)))
    for cid, at, kind, actor in conn.execute(
        "SELECT e.conversation_id, e.at, e.kind, e.actor FROM conversations c JOIN events e ON e.conversation_id = c.id"
        f" WHERE {cond} AND e.kind IN {_STATUS_IN} ORDER BY e.conversation_id, e.id",
        params,
    ):
        histories[cid].status_events.append((at, kind, actor))
    for cid, name in conn.execute(
        "SELECT cl.conversation_id, l.name FROM conversations c JOIN conversation_labels cl ON cl.conversation_id = c.id"
        f" JOIN labels l ON l.id = cl.label_id WHERE {cond} ORDER BY cl.conversation_id, l.name",
        params,
    ):
        histories[cid].labels.append(name)
    for cid, kind, score, answered, handled in conn.execute(
        "SELECT s.conversation_id, s.kind, s.score, s.answered_at, s.handled_by FROM conversations c"
        f" JOIN surveys s ON s.conversation_id = c.id WHERE {cond} AND s.score IS NOT NULL ORDER BY s.conversation_id, s.id",
        params,
    ):
        histories[cid].surveys.append((kind, score, answered, handled))
    return list(histories.values())


def surveys_sent_between(conn: sqlite3.Connection, start: float | None, end: float | None) -> dict[str, int]:
    """How many surveys of each kind were sent in [start, end) (for response rates)."""
    lo = float("-inf") if start is None else start
    hi = float("inf") if end is None else end
    return dict(
        conn.execute("SELECT kind, count(*) FROM surveys WHERE sent_at >= ? AND sent_at < ? GROUP BY kind", (lo, hi)).fetchall()
    )


def newest_activity(conn: sqlite3.Connection) -> float | None:
    """The latest activity or resolution of any conversation (epoch seconds), None in an
    empty history."""
    last, resolved = conn.execute("SELECT max(last_activity_at), max(resolved_at) FROM conversations").fetchone()
    return last if resolved is None else max(last, resolved)


def conversation_spans(conn: sqlite3.Connection) -> list[tuple[int, float, float]]:
    """(id, opened_at, last_activity_at) of every conversation, by id (epoch seconds)."""
    return [tuple(r) for r in conn.execute("SELECT id, opened_at, last_activity_at FROM conversations ORDER BY id")]


def customer_names(conn: sqlite3.Connection, customer_ids: list[int]) -> dict[int, str]:
    """Display names of these customers (erased ones have none)."""
    names: dict[int, str] = {}
    for start in range(0, len(customer_ids), 500):
        part = customer_ids[start : start + 500]
        marks = ", ".join("?" * len(part))
        names.update(conn.execute(f"SELECT id, display_name FROM customers WHERE id IN ({marks})", part).fetchall())
    return names


# --- surveys ---------------------------------------------------------------------------


@dataclass(slots=True)
class SurveyTarget:
    """Who a survey of a conversation would go to, and what decides whether it may.

    `attributes`: the customer's attributes (JSON object); `erased`: the customer was erased;
    `imported`: the conversation came from an import (no pipeline, no survey); `route`:
    (channel id, channel kind, identity id, identity kind) of the customer's latest inbound
    message, or None; `handled_by`: the assignee, else who resolved it ('bot' included);
    `bot_confirmed`: the customer confirmed the bot's answer helped (store/bot.py outcome
    `confirmed`)."""

    conversation_id: int
    customer_id: int
    status: str
    attributes: dict
    erased: bool
    imported: bool
    route: tuple[int, str, int, str] | None
    handled_by: str
    sample_text: str
    last_csat_at: float | None
    last_nps_at: float | None
    csat_for_conversation: bool
    bot_confirmed: bool = False
    #: The language the customer's channel said for their latest messages (`messages.meta`
    #: "language", e.g. the web chat widget's), 'ru'/'en'/..., None when none said one.
    channel_language: str | None = None


def survey_target(conn: sqlite3.Connection, conversation_id: int) -> SurveyTarget | None:
    """Everything `analytics.surveys` needs to decide on a survey for a conversation, or None
    when the conversation does not exist. Merged customers: the live customer's surveys count."""
    row = conn.execute(
        "SELECT c.customer_id, c.status, c.assignee, cu.attributes, cu.erased_at, cu.merged_into FROM conversations c"
        " JOIN customers cu ON cu.id = c.customer_id WHERE c.id = ?",
        (conversation_id,),
    ).fetchone()
    if row is None:
        return None
    customer_id, status, assignee, attributes, erased_at, _merged = row
    try:
        attrs = json.loads(attributes or "{}")
    except ValueError:
        attrs = {}
    route = conn.execute(
        "SELECT m.channel_id, ch.kind, m.identity_id, i.kind FROM messages m JOIN channels ch ON ch.id = m.channel_id"
        " JOIN identities i ON i.id = m.identity_id WHERE m.conversation_id = ? AND m.direction = 'in'"
        " ORDER BY m.id DESC LIMIT 1",
        (conversation_id,),
    ).fetchone()
    resolver = conn.execute(
        "SELECT actor FROM events WHERE conversation_id = ? AND kind = 'conversation.resolved' ORDER BY id DESC LIMIT 1",
        (conversation_id,),
    ).fetchone()
    imported = (
        conn.execute(
            "SELECT 1 FROM events WHERE conversation_id = ? AND kind = 'conversation.resolved' AND payload LIKE '%import%'",
            (conversation_id,),
        ).fetchone()
        is not None
    )
    latest = conn.execute(
        "SELECT body, meta FROM messages WHERE conversation_id = ? AND direction = 'in' ORDER BY id DESC LIMIT 5",
        (conversation_id,),
    ).fetchall()
    texts = [body for body, _meta in latest]
    channel_language = None
    for _body, meta in latest:
        try:
            said = json.loads(meta or "{}").get("language")
        except (ValueError, AttributeError):
            continue
        if isinstance(said, str) and said:
            channel_language = said
            break
    # The customer and everyone merged into them: one person, one survey rhythm.
    last = dict(
        conn.execute(
            "WITH RECURSIVE family(id) AS (SELECT ? UNION SELECT cu.id FROM customers cu JOIN family f ON cu.merged_into = f.id)"
            " SELECT s.kind, max(s.sent_at) FROM surveys s WHERE s.customer_id IN (SELECT id FROM family) GROUP BY s.kind",
            (customer_id,),
        ).fetchall()
    )
    csat_here = (
        conn.execute("SELECT 1 FROM surveys WHERE conversation_id = ? AND kind = 'csat'", (conversation_id,)).fetchone()
        is not None
    )
    bot_confirmed = (
        conn.execute(
            "SELECT 1 FROM bot_conversations WHERE conversation_id = ? AND outcome = 'confirmed'", (conversation_id,)
        ).fetchone()
        is not None
    )
    handled_by = assignee or (resolver[0] if resolver and resolver[0] else "") or "unassigned"
    return SurveyTarget(
        conversation_id,
        customer_id,
        status,
        attrs if isinstance(attrs, dict) else {},
        erased_at is not None,
        imported,
        tuple(route) if route else None,
        handled_by,
        "\n".join(texts),
        last.get("csat"),
        last.get("nps"),
        csat_here,
        bot_confirmed,
        channel_language,
    )


def record_survey(
    conn: sqlite3.Connection,
    kind: str,
    conversation_id: int,
    customer_id: int,
    channel_id: int,
    identity_id: int,
    handled_by: str,
    language: str,
    body: str,
    meta: dict | None,
    now: float | None = None,
) -> tuple[int, str] | None:
    """Queue a survey question for the outbox and remember the survey; returns (survey id,
    token), or None when this conversation had its CSAT survey already. `{token}` in the body
    and in button ids is replaced by the survey's token (the e-mail link names it). The message is flagged `survey`: it is no human reply, answers nobody's wait and
    leaves the conversation's status and response times alone."""
    now = now or time.time()
    token = secrets.token_urlsafe(18)
    row = conn.execute(
        "INSERT INTO surveys (kind, conversation_id, customer_id, channel_id, identity_id, handled_by, language, token, sent_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id) WHERE kind = 'csat' DO NOTHING RETURNING id",
        (kind, conversation_id, customer_id, channel_id, identity_id, handled_by, language, token, now),
    ).fetchone()
    if row is None:
        return None
    survey_id = row[0]
    body = body.replace("{token}", token)
    meta = json.loads(json.dumps(meta or {}).replace("{token}", token))
    meta["survey"] = token
    message_id = conn.execute(
        "INSERT INTO messages (conversation_id, customer_id, channel_id, identity_id, direction, author, body, created_at,"
        " state, next_attempt_at, flags, meta) VALUES (?, ?, ?, ?, 'out', 'survey', ?, ?, 'queued', ?, 'survey', ?) RETURNING id",
        (conversation_id, customer_id, channel_id, identity_id, body, now, now, json.dumps(meta, ensure_ascii=False)),
    ).fetchone()[0]
    index_message(conn, message_id, body, customer_id)  # every message is in the index (erasure deletes it there)
    conn.execute("UPDATE surveys SET message_id = ? WHERE id = ?", (message_id, survey_id))
    conn.execute("UPDATE conversations SET message_count = message_count + 1 WHERE id = ?", (conversation_id,))
    add_event(
        conn,
        "survey.sent",
        actor="survey",
        conversation_id=conversation_id,
        customer_id=customer_id,
        message_id=message_id,
        payload={"kind": kind, "survey_id": survey_id},
        at=now,
    )
    return survey_id, token


@dataclass(slots=True)
class PendingSurvey:
    """A survey waiting for its answer: id, kind ('csat'|'nps'), conversation, customer, token."""

    id: int
    kind: str
    conversation_id: int
    customer_id: int
    token: str
    sent_at: float
    language: str


def pending_survey(
    conn: sqlite3.Connection,
    *,
    token: str | None = None,
    identity_kind: str | None = None,
    address: str | None = None,
    since: float = 0.0,
) -> PendingSurvey | None:
    """The unanswered survey named by `token`, or the newest unanswered one sent after `since`
    to the customer who holds the identity (kind, address); None when there is none."""
    if token is not None:
        row = conn.execute(
            "SELECT id, kind, conversation_id, customer_id, token, sent_at, language FROM surveys WHERE token = ?", (token,)
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT s.id, s.kind, s.conversation_id, s.customer_id, s.token, s.sent_at, s.language FROM surveys s"
            " JOIN identities i ON i.customer_id = s.customer_id WHERE i.kind = ? AND i.address = ?"
            " AND s.score IS NULL AND s.sent_at >= ? ORDER BY s.id DESC LIMIT 1",
            (identity_kind, address, since),
        ).fetchone()
    return PendingSurvey(*row) if row else None


def record_survey_answer(
    conn: sqlite3.Connection,
    survey_id: int,
    score: int,
    *,
    comment: str = "",
    low_score_below: int | None = None,
    answer_message_id: int | None = None,
    now: float | None = None,
) -> bool:
    """Keep a survey's answer (the first one wins: a second click changes nothing; returns
    whether this one was kept). `answer_message_id`: the customer's message that carried it
    (flagged `survey_answer`, see `take_survey_answer`), None for the e-mail page's click. A
    score below `low_score_below` leaves a note in the timeline."""
    now = now or time.time()
    row = conn.execute(
        "SELECT conversation_id, customer_id, kind, handled_by FROM surveys WHERE id = ? AND score IS NULL",
        (survey_id,),
    ).fetchone()
    if row is None:
        return False
    conversation_id, customer_id, kind, handled_by = row
    answer_id = answer_message_id
    conn.execute(
        "UPDATE surveys SET score = ?, comment = ?, answered_at = ?, answer_message_id = ? WHERE id = ?",
        (score, comment, now, answer_id, survey_id),
    )
    add_event(
        conn,
        "survey.answered",
        actor="customer",
        conversation_id=conversation_id,
        customer_id=customer_id,
        message_id=answer_id,
        payload={"kind": kind, "score": score, "survey_id": survey_id},
        at=now,
    )
    if low_score_below is not None and score < low_score_below:
        scale = "1-5" if kind == "csat" else "0-10"
        note = f"Low {kind.upper()} score: {score} on {scale} (handled by {handled_by})"
        if comment:
            note += f": {comment}"
        note_id = conn.execute(
            "INSERT INTO messages (conversation_id, customer_id, direction, author, body, created_at)"
            " VALUES (?, ?, 'note', 'survey', ?, ?) RETURNING id",
            (conversation_id, customer_id, note, now),
        ).fetchone()[0]
        index_message(conn, note_id, note, customer_id)
        conn.execute("UPDATE conversations SET message_count = message_count + 1 WHERE id = ?", (conversation_id,))
        add_event(
            conn,
            "survey.low_score",
            actor="survey",
            conversation_id=conversation_id,
            customer_id=customer_id,
            payload={"kind": kind, "score": score},
            at=now,
        )
    return True


#: A survey answer typed as text: a number, then perhaps a comment ("5", "2 - too slow").
_TYPED_SCORE = re.compile(r"^\s*(\d{1,2})\s*(?:[\s,.;:!)\-]+(.*))?$", re.DOTALL)
#: How long a survey waits for a typed answer (a button or a link stays valid longer).
TYPED_ANSWER_SECONDS = 7 * 86400
SCALES = {"csat": (1, 5), "nps": (0, 10)}


def button_id(token: str, score: int) -> str:
    """The id a survey button carries: `sv:<token>:<score>` (fits Telegram's 64-byte callback data)."""
    return f"sv:{token}:{score}"


def take_survey_answer(conn: sqlite3.Connection, channel_id: int, record, now: float) -> tuple[int, int, int] | None:
    """If an inbound record answers a survey (a pressed survey button, or a bare number typed
    within 7 days of an unanswered survey to this identity), keep it as the answer and return
    (answer message id, conversation id, customer id); else None and nothing is written. Runs inside ingest's transaction,
    after the duplicate check, so a redelivered answer is a duplicate like any message."""
    survey = score = None
    comment = ""
    if "button" in record.flags and record.meta:
        try:
            pressed = str(json.loads(record.meta).get("button", ""))
        except (ValueError, AttributeError):
            pressed = ""
        parts = pressed.split(":")
        if len(parts) == 3 and parts[0] == "sv" and parts[2].isdigit():
            survey = pending_survey(conn, token=parts[1])
            score = int(parts[2])
    elif len(record.body) <= 500:
        typed = _TYPED_SCORE.match(record.body)
        if typed is not None:
            survey = pending_survey(
                conn,
                identity_kind=record.identity_kind,
                address=record.address,
                since=min(now, record.sent_at) - TYPED_ANSWER_SECONDS,
            )
            score, comment = int(typed.group(1)), (typed.group(2) or "").strip()
    if survey is None or score is None:
        return None
    low, high = SCALES.get(survey.kind, (0, 10))
    if not low <= score <= high:
        return None
    already = conn.execute("SELECT score FROM surveys WHERE id = ?", (survey.id,)).fetchone()
    if already is not None and already[0] is not None:
        # A second press of a button: kept in the timeline as a survey answer, changes nothing.
        return _answer_message(conn, survey, channel_id, record, now), survey.conversation_id, survey.customer_id
    message_id = _answer_message(conn, survey, channel_id, record, now)
    low_below = 3 if survey.kind == "csat" else 7
    record_survey_answer(
        conn, survey.id, score, comment=comment, answer_message_id=message_id, low_score_below=low_below, now=now
    )
    return message_id, survey.conversation_id, survey.customer_id


def _answer_message(conn: sqlite3.Connection, survey: PendingSurvey, channel_id: int, record, now: float) -> int:
    identity = conn.execute(
        "SELECT id FROM identities WHERE kind = ? AND address = ?", (record.identity_kind, record.address)
    ).fetchone()
    message_id = conn.execute(
        "INSERT INTO messages (conversation_id, customer_id, channel_id, identity_id, direction, author, body, external_id,"
        " created_at, state, flags, meta) VALUES (?, ?, ?, ?, 'in', ?, ?, ?, ?, 'received', ?, ?) RETURNING id",
        (
            survey.conversation_id,
            survey.customer_id,
            channel_id,
            identity[0] if identity else None,
            record.sender_name,
            record.body,
            record.external_id,
            record.sent_at,
            " ".join(sorted({*record.flags, "survey_answer"})),
            record.meta,
        ),
    ).fetchone()[0]
    index_message(conn, message_id, record.body, survey.customer_id)
    conn.execute("UPDATE conversations SET message_count = message_count + 1 WHERE id = ?", (survey.conversation_id,))
    add_event(
        conn,
        "message.received",
        conversation_id=survey.conversation_id,
        customer_id=survey.customer_id,
        message_id=message_id,
        at=now,
    )
    return message_id


# --- the wallboard ---------------------------------------------------------------------


@dataclass(slots=True)
class WallboardRows:
    """The live figures' raw numbers in one snapshot (epoch seconds): active (open or
    pending) and snoozed counts, unassigned active, unattended (open, the customer's word
    last), the oldest wait's start, active conversations per operator, kinds of the channel
    each conversation opened today began on, and conversations the bot is answering now."""

    active: int
    snoozed: int
    unassigned: int
    unattended: int
    oldest_wait: float | None
    per_operator: dict[str, int]
    opened_today: list[str]
    with_bot: int = 0


def wallboard_rows(conn: sqlite3.Connection, day_start: float) -> WallboardRows:
    """Read the wallboard's numbers: counts from the trigger-kept `conversation_counts` and
    `live_counts` (unattended: open with `waiting_since` set), the oldest wait through the
    `conversations_waiting` partial index, today's openings through `conversations_opened`;
    none of it scans the history or counts rows one by one."""
    active = snoozed = unassigned = 0
    per_operator: dict[str, int] = {}
    for bucket, assignee, n in conn.execute("SELECT bucket, assignee, n FROM conversation_counts WHERE n > 0"):
        if bucket == "active":
            active += n
            if assignee:
                per_operator[assignee] = n
            else:
                unassigned += n
        elif bucket == "snoozed":
            snoozed += n
    # Open and waiting for a reply, counted by triggers (schema `live_counts`); the oldest wait
    # through the partial index (min() alone reads one index entry).
    unattended = conn.execute("SELECT n FROM live_counts WHERE name = 'waiting'").fetchone()[0]
    oldest = conn.execute(
        "SELECT min(waiting_since) FROM conversations WHERE status = 'open' AND waiting_since IS NOT NULL"
    ).fetchone()[0]
    opened = [
        (kinds.split() or ["none"])[0]
        for (kinds,) in conn.execute("SELECT channel_kinds FROM conversations WHERE opened_at >= ?", (day_start,))
    ]
    # The bot's live conversations through the (state, updated_at) index: as many rows as it
    # holds now, not its history.
    with_bot = conn.execute(
        "SELECT count(*) FROM bot_conversations b JOIN conversations c ON c.id = b.conversation_id"
        " WHERE b.state = 'bot' AND c.status NOT IN ('resolved', 'spam')"
    ).fetchone()[0]
    return WallboardRows(active, snoozed, unassigned, unattended, oldest, per_operator, opened, with_bot)
