"""Conversation facts: every figure of ../shared/METRICS.md as dated rows, kept in the same
transaction as the events that end them.

**The one-pass computation.** A conversation's history (store/analytics.py
`ConversationHistory`) is walked once in time order; each figure it yields is a `Fact` dated by
its **ending** event (METRICS.md: a first response is counted on the day it was sent), so a
report of any period, grouped any way, is a filter and a fold over facts. Readings METRICS.md
leaves open are written in docs/metrics.md. Durations are wall-clock seconds.

**The `conversation_facts` table** (schema.py; journeys and other readers may rely on it):

    conversation_id  the conversation (rows are replaced whole, per conversation)
    figure           opened | resolved | frt | nrt | resolution | full_resolution |
                     waiting_on_customer | unattended | csat | nps | bot_contained | bot_handoff
    ended_at         epoch seconds of the ending event (`opened`: opened_at; `unattended`: 0,
                     a marker counted as of now whatever the period)
    value            seconds for durations, the score for csat (1-5) / nps (0-10), NULL for counts
    operator         who it is credited to: a login, 'bot' or 'unassigned'
    channel          kind of the conversation's first customer message (else its first message)
    labels           the conversation's label names, sorted, one per line ('' for none)

indexed on (figure, ended_at, value) for periods (covering: a report's medians are read from
the index alone) and on conversation_id for the replacement.

**When rows are written.** `events.add_event` (the one events writer) marks a conversation
stale when it appends an event that can change its figures (`FACT_EVENT_KINDS`: status changes,
assignment, labels, bot handoffs, replies queued, survey answers, calls); ingest marks one when
an inbound message can move them (a first or out-of-order message, a new channel, the
customer's word in a conversation not yet counted unattended), and a call's effect on its
conversation marks it too. `database.write_transaction` runs `flush` just before COMMIT (a hook
this module registers): the stale conversations' histories are read (indexed by conversation)
and their rows replaced, so the facts never differ from what committed. A customer writing on
in an unattended conversation (most of ingest) rewrites nothing. Databases from before the
table get every conversation queued in `conversation_facts_backfill` by the migration;
`backfill` works through it in short transactions (reports and the wallboard call it first).
"""

from __future__ import annotations

import math
import sqlite3
import statistics
from dataclasses import dataclass

from omniconsole.store import database
from omniconsole.store.analytics import ConversationHistory, report_histories
from omniconsole.store.events import take_stale

#: Inbound flags that make a message no customer message (METRICS.md "Customer message").
NOT_CUSTOMER = frozenset({"auto_reply", "bounce", "reaction", "survey_answer"})
#: Outbound flags and authors that make a message no human reply (METRICS.md "Human reply").
NOT_HUMAN_FLAGS = frozenset({"bot", "auto_reply", "automation", "survey", "system"})
NOT_HUMAN_AUTHORS = frozenset({"", "bot", "survey", "system", "automation"})
#: Scores that count as satisfied on CSAT's 1-5 scale; NPS promoters and detractors.
CSAT_GOOD = 4
NPS_PROMOTER, NPS_DETRACTOR = 9, 6

# Figure names, as the facts and the report's keys use them.
OPENED, RESOLVED, FRT, NRT = "opened", "resolved", "frt", "nrt"
RESOLUTION, FULL_RESOLUTION, WAITING_ON_CUSTOMER = "resolution", "full_resolution", "waiting_on_customer"
UNATTENDED, CSAT, NPS, BOT_CONTAINED, BOT_HANDOFF = "unattended", "csat", "nps", "bot_contained", "bot_handoff"


@dataclass(frozen=True, slots=True)
class Fact:
    """One figure of one conversation: `figure` (names above), `at` (epoch seconds of its
    ending event), `value` (seconds, a score, or None for counts), credited to `operator` (a
    login, 'bot' or 'unassigned'); `channel` is the kind of the conversation's first customer
    message, `labels` its labels."""

    figure: str
    at: float
    value: float | None
    conversation_id: int
    operator: str
    channel: str
    labels: tuple[str, ...]


def is_customer_message(direction: str, flags: frozenset) -> bool:
    """An inbound message from the customer, not an auto-reply, bounce, reaction or survey answer."""
    return direction == "in" and not (flags & NOT_CUSTOMER)


def is_human_reply(direction: str, author: str, flags: frozenset) -> bool:
    """A public outbound message written by an operator (whatever its delivery state)."""
    return direction == "out" and author not in NOT_HUMAN_AUTHORS and not (flags & NOT_HUMAN_FLAGS)


def is_bot_answer(direction: str, author: str, flags: frozenset) -> bool:
    """An outbound answer of the bot (flag `bot` or author `bot`)."""
    return direction == "out" and ("bot" in flags or author == "bot")


def business_seconds(start: float, end: float, calendar=None) -> float | None:
    """Seconds of [start, end) inside the calendar's open hours; None when no calendar applies
    (the calendars come with routing; until then every `_business` figure is null)."""
    if calendar is None:
        return None
    return calendar.business_seconds(start, end)


def conversation_facts(h: ConversationHistory, now: float) -> list[Fact]:
    """The facts of one conversation as of `now` (epoch seconds), in no particular order."""
    channel = next((m[4] for m in h.messages if is_customer_message(m[1], m[3]) and m[4]), None)
    channel = channel or next((m[4] for m in h.messages if m[4]), None) or "none"
    labels = tuple(h.labels)
    owner = h.assignee or "unassigned"
    facts: list[Fact] = []

    def fact(figure: str, at: float, value: float | None, operator: str = owner) -> None:
        facts.append(Fact(figure, at, value, h.id, operator, channel, labels))

    fact(OPENED, h.opened_at, None)
    # Messages sort before status changes of the same second: a reply, then the resolution.
    items = [(m[0], 0, i) for i, m in enumerate(h.messages)] + [(e[0], 1, i) for i, e in enumerate(h.status_events)]
    items.sort()
    status = "open"
    first_customer: float | None = None
    frt_start: float | None = None
    frt_done = False
    run_start: float | None = None
    bot_engaged = human_replied = False
    last_word: str | None = None
    paused_since: float | None = None
    waiting_on_customer = 0.0
    resolutions: list[float] = []
    resolved_by = ""

    def end_pause(at: float) -> None:
        nonlocal paused_since, waiting_on_customer
        if paused_since is not None:
            waiting_on_customer += max(0.0, at - paused_since)
            paused_since = None

    for at, source, index in items:
        if source == 0:
            _, direction, author, flags, _kind = h.messages[index]
            if is_customer_message(direction, flags):
                if first_customer is None:
                    first_customer = at
                if not frt_done and frt_start is None:
                    frt_start = at
                elif frt_done and run_start is None:
                    run_start = at
                last_word = "customer"
                if status in ("snoozed", "pending"):
                    end_pause(at)
                    status = "open"
            elif is_bot_answer(direction, author, flags):
                bot_engaged = True
            elif is_human_reply(direction, author, flags):
                if first_customer is None:
                    continue  # the company wrote first: not a response to anyone
                if not frt_done:
                    fact(FRT, at, at - frt_start, author)
                    frt_done = True
                elif run_start is not None:
                    fact(NRT, at, at - run_start, author)
                run_start = None
                human_replied = True
                last_word = "us"
            continue
        _, kind, actor = h.status_events[index]
        if kind == "conversation.resolved":
            if status != "resolved":
                resolved_by = actor
                end_pause(at)
                resolutions.append(at)
                status = "resolved"
                run_start = None
        elif kind in ("conversation.open", "conversation.reopened", "conversation.woke"):
            if status == "resolved" and first_customer is not None and not frt_done:
                frt_start = at  # the customer waits afresh from the reopening
            end_pause(at)
            status = "open"
        elif kind in ("conversation.snoozed", "conversation.pending"):
            if paused_since is None:
                paused_since = at
            status = kind.split(".")[1]
        elif kind == "bot.handoff":
            bot_engaged = True
            fact(BOT_HANDOFF, at, None, "bot")
            if first_customer is not None and not frt_done:
                frt_start = at
    final_resolved = h.status == "resolved" and bool(resolutions)
    # Who a resolution is credited to: the assignee, else who resolved it (an operator or the
    # bot), as surveys capture it when they are sent.
    resolver = h.assignee or (
        resolved_by if resolved_by not in ("", "system") else ("bot" if bot_engaged and not human_replied else owner)
    )
    issue_start = first_customer if first_customer is not None else h.opened_at
    if resolutions:
        fact(RESOLUTION, resolutions[0], max(0.0, resolutions[0] - issue_start), resolver)
    if final_resolved:
        last = resolutions[-1]
        fact(RESOLVED, last, None, resolver)
        fact(FULL_RESOLUTION, last, max(0.0, last - issue_start), resolver)
        fact(WAITING_ON_CUSTOMER, last, waiting_on_customer, resolver)
        if bot_engaged and not human_replied:
            fact(BOT_CONTAINED, last, None, "bot")
    if h.status == "open" and last_word == "customer":
        fact(UNATTENDED, now, None)
    for kind, score, answered_at, handled_by in h.surveys:
        fact(CSAT if kind == "csat" else NPS, answered_at, float(score), handled_by or owner)
    return facts


# --- the conversation_facts table -------------------------------------------------------

#: Figures counted (no value); the others carry seconds or a score.
COUNTED = (OPENED, RESOLVED, BOT_CONTAINED, BOT_HANDOFF)
MEASURED = (FRT, NRT, RESOLUTION, FULL_RESOLUTION, WAITING_ON_CUSTOMER, CSAT, NPS)
_CHUNK = 500  # conversations per statement (SQLite's default limit is 32,766 variables)


def _labels_text(labels: tuple[str, ...]) -> str:
    return "\n".join(labels)


def refresh(conn: sqlite3.Connection, conversation_ids) -> int:
    """Rewrite the `conversation_facts` rows of these conversations from their histories, inside
    the caller's transaction; returns how many rows were written. A conversation that no
    longer exists keeps no rows."""
    ids = sorted(set(conversation_ids))
    written = 0
    for start in range(0, len(ids), _CHUNK):
        part = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(part))
        conn.execute(f"DELETE FROM conversation_facts WHERE conversation_id IN ({marks})", part)
        rows = [
            (x.conversation_id, x.figure, x.at, x.value, x.operator, x.channel, _labels_text(x.labels))
            for h in report_histories(conn, None, None, part)
            for x in conversation_facts(h, 0.0)
        ]
        conn.executemany(
            "INSERT INTO conversation_facts (conversation_id, figure, ended_at, value, operator, channel, labels)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        written += len(rows)
    return written


def flush(conn: sqlite3.Connection) -> None:
    """Rewrite the facts of the conversations marked stale in this transaction (called by
    `database.write_transaction` just before COMMIT)."""
    stale = take_stale(conn)
    if stale:
        refresh(conn, stale)


database.BEFORE_COMMIT.append(flush)
database.AFTER_ROLLBACK.append(take_stale)


def backfill(conn: sqlite3.Connection, limit: int = 2000) -> int:
    """Compute the facts of up to `limit` conversations queued by the migration (databases from
    before the table, and `queue_all`); returns how many were done (0: nothing left)."""
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT conversation_id FROM conversation_facts_backfill ORDER BY conversation_id LIMIT ?", (limit,)
        )
    ]
    if ids:
        refresh(conn, ids)
        for start in range(0, len(ids), _CHUNK):
            part = ids[start : start + _CHUNK]
            conn.execute(f"DELETE FROM conversation_facts_backfill WHERE conversation_id IN ({', '.join('?' * len(part))})", part)
    return len(ids)


def queue_all(conn: sqlite3.Connection) -> int:
    """Queue every conversation for `backfill` (after a bulk change that bypassed the events
    writer); returns how many were queued."""
    return conn.execute(
        "INSERT INTO conversation_facts_backfill (conversation_id) SELECT id FROM conversations WHERE true ON CONFLICT DO NOTHING"
    ).rowcount


def backfill_pending(conn: sqlite3.Connection) -> bool:
    """Whether conversations still wait for their facts to be computed."""
    return conn.execute("SELECT 1 FROM conversation_facts_backfill LIMIT 1").fetchone() is not None


def _bounds(start: float | None, end: float | None) -> tuple[float, float]:
    return (float("-inf") if start is None else start, float("inf") if end is None else end)


@dataclass(frozen=True, slots=True)
class Spread:
    """The `n` values of one figure in a period: median (the mean of the two middle ones for
    an even count), nearest-rank p90, mean (all None when n is 0; the mean also None for a
    figure not in `WITH_MEAN`, unless asked of `spread_of`); `high` and `low`: how many
    are >= and <= the thresholds asked for (CSAT's satisfied, NPS's promoters and detractors)."""

    n: int
    median: float | None
    p90: float | None
    mean: float | None
    high: int = 0
    low: int = 0


#: Figures whose mean a report shows (the others' `Spread.mean` is None).
WITH_MEAN = frozenset({FRT, NRT, RESOLUTION})
#: (high, low) thresholds per figure: CSAT 4-5 satisfied; NPS 9-10 promoters, 0-6 detractors.
THRESHOLDS = {CSAT: (CSAT_GOOD, float("-inf")), NPS: (NPS_PROMOTER, NPS_DETRACTOR)}
_NONE = (float("inf"), float("-inf"))


def p90_rank(n: int) -> int:
    """The 1-based rank of the nearest-rank p90 among n values (the float product, as the
    reports have always computed it)."""
    return max(1, math.ceil(0.9 * n))


def spread_of(values: list[float], high: float = _NONE[0], low: float = _NONE[1], *, mean: bool = True) -> Spread:
    """`Spread` of values in memory (the reference's way; `period_figures` does it in SQL);
    `mean=False` leaves the mean None."""
    if not values:
        return Spread(0, None, None, None)
    ordered = sorted(values)
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return Spread(
        n,
        median,
        ordered[p90_rank(n) - 1],
        statistics.fmean(ordered) if mean else None,
        sum(1 for v in ordered if v >= high),
        sum(1 for v in ordered if v <= low),
    )


@dataclass(slots=True)
class PeriodFigures:
    """What a report of [start, end) folds: `counts` per counted figure in the period, plus
    `unattended` (now); `spreads` per measured figure (seconds or scores)."""

    counts: dict[str, int]
    spreads: dict[str, Spread]


def period_figures(
    conn: sqlite3.Connection, start: float | None, end: float | None, operator: str | None = None
) -> PeriodFigures:
    """Counts and spreads of every figure ended in [start, end) (epoch seconds, None:
    unbounded), folded by SQLite through the covering (figure, ended_at, value) index: a count
    and a sum, then one ordered pass that picks the median's and the p90's ranks. No row
    becomes a Python object. With `operator`, only the facts credited to that login."""
    lo, hi = _bounds(start, end)
    who = "" if operator is None else " AND operator = :operator"
    where = f"figure = :figure AND ended_at >= :lo AND ended_at < :hi{who}"
    params = {"lo": lo, "hi": hi, "operator": operator}
    counts = {figure: 0 for figure in (*COUNTED, UNATTENDED)}
    for figure in COUNTED:
        counts[figure] = conn.execute(
            f"SELECT count(*) FROM conversation_facts WHERE {where}", {**params, "figure": figure}
        ).fetchone()[0]
    counts[UNATTENDED] = conn.execute(
        f"SELECT count(*) FROM conversation_facts WHERE figure = :figure{who}", {**params, "figure": UNATTENDED}
    ).fetchone()[0]
    spreads: dict[str, Spread] = {}
    for figure in MEASURED:
        high, low = THRESHOLDS.get(figure, _NONE)
        args = {**params, "figure": figure, "high": high, "low": low}
        # Only what a report shows: each aggregate costs a pass over the period's rows.
        total = "sum(value)" if figure in WITH_MEAN else "NULL"
        split = "sum(value >= :high), sum(value <= :low)" if figure in THRESHOLDS else "0, 0"
        n, total, highs, lows = conn.execute(
            f"SELECT count(*), {total}, {split} FROM conversation_facts WHERE {where}", args
        ).fetchone()
        if not n:
            spreads[figure] = Spread(0, None, None, None)
            continue
        middle = {n // 2 + 1} if n % 2 else {n // 2, n // 2 + 1}
        wide = start is None or _wide(conn, figure, lo, hi)
        picked = _ranked(conn, figure, where, args, n, sorted({*middle, p90_rank(n)}), wide)
        median = picked[n // 2 + 1] if n % 2 else (picked[n // 2] + picked[n // 2 + 1]) / 2
        spreads[figure] = Spread(n, median, picked[p90_rank(n)], None if total is None else total / n, highs or 0, lows or 0)
    return PeriodFigures(counts, spreads)


def _wide(conn: sqlite3.Connection, figure: str, lo: float, hi: float) -> bool:
    """Whether [lo, hi) spans at least a quarter of the time the figure's facts cover (two
    reads of the index's ends)."""
    first = conn.execute("SELECT min(ended_at) FROM conversation_facts WHERE figure = ?", (figure,)).fetchone()[0]
    last = conn.execute("SELECT max(ended_at) FROM conversation_facts WHERE figure = ?", (figure,)).fetchone()[0]
    if first is None or last <= first:
        return True
    return (min(hi, last) - max(lo, first)) * 4 >= last - first


def _ranked(
    conn: sqlite3.Connection, figure: str, where: str, args: dict, n: int, ranks: list[int], wide: bool
) -> dict[int, float]:
    """The values at these 1-based ranks (in value order) among the period's `n` facts. A
    period that spans much of the history walks the (figure, value, ended_at) index in value
    order, skipping in SQLite to each rank from the nearer end (`+ended_at` keeps the planner
    on that index); a short one reads its values and sorts them here. Both are exact."""
    if not wide:
        ordered = sorted(r[0] for r in conn.execute(f"SELECT value FROM conversation_facts WHERE {where}", args))
        return {rank: ordered[rank - 1] for rank in ranks}
    walk = where.replace("ended_at >=", "+ended_at >=").replace("ended_at <", "+ended_at <")
    picked: dict[int, float] = {}
    for rank in ranks:
        if rank in picked:
            continue
        take = 2 if rank + 1 in ranks else 1
        if rank - 1 <= n - rank - take + 1:  # nearer the low end: skip up from it
            sql = f"ORDER BY value LIMIT {take} OFFSET {rank - 1}"
            first, step = rank, 1
        else:  # nearer the high end (the p90): skip down from it
            sql = f"ORDER BY value DESC LIMIT {take} OFFSET {n - rank - take + 1}"
            first, step = rank + take - 1, -1
        for offset, (value,) in enumerate(conn.execute(f"SELECT value FROM conversation_facts WHERE {walk} {sql}", args)):
            picked[first + step * offset] = value
    return picked


def period_facts(conn: sqlite3.Connection, start: float | None, end: float | None, now: float) -> list[Fact]:
    """Every fact ended in [start, end) as `Fact`s, and the `unattended` ones dated `now`
    (for grouping, charts and the conversations behind a figure)."""
    lo, hi = _bounds(start, end)
    label_sets: dict[str, tuple[str, ...]] = {"": ()}
    out: list[Fact] = []
    figures = [x for x in (*COUNTED, *MEASURED)]
    marks = ", ".join("?" * len(figures))
    rows = conn.execute(
        "SELECT figure, ended_at, value, conversation_id, operator, channel, labels FROM conversation_facts"
        f" WHERE figure IN ({marks}) AND ended_at >= ? AND ended_at < ?",
        (*figures, lo, hi),
    ).fetchall()
    rows += conn.execute(
        "SELECT figure, ended_at, value, conversation_id, operator, channel, labels FROM conversation_facts WHERE figure = ?",
        (UNATTENDED,),
    ).fetchall()
    for figure, at, value, cid, operator, channel, labels in rows:
        label_set = label_sets.get(labels)
        if label_set is None:
            label_set = label_sets[labels] = tuple(labels.split("\n"))
        out.append(Fact(figure, now if figure == UNATTENDED else at, value, cid, operator, channel, label_set))
    return out
