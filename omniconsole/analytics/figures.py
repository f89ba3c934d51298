"""Every figure of ../shared/METRICS.md from one conversation's history, as dated facts.

A conversation's history (store/analytics.py `ConversationHistory`) is walked once in time
order; each figure it yields is a `Fact` dated by its **ending** event (METRICS.md: a first
response is counted on the day it was sent), so a report of any period, grouped any way, is a
filter and a fold over facts. Readings METRICS.md leaves open are written in docs/metrics.md.

Durations are wall-clock seconds. Business-seconds twins need a calendar (routing, not on this
branch): `business_seconds` returns None until one applies.
"""

from __future__ import annotations

from dataclasses import dataclass

from omniconsole.store.analytics import ConversationHistory

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
