"""Which SLA policy applies to a conversation, and where each of its targets stands: pure
functions of one conversation's history (`store/analytics.py` `ConversationHistory`, the same
one the report's figures read), so a policy change is recomputed from the history rather than
from stored results.

Readings, following METRICS.md and `analytics/figures.py` step by step:

* **first_response**: from the moment the customer began waiting for a person (their first
  customer message; the bot's handoff; a reopening before any human reply — the latest of these)
  to the first human reply. While the bot holds the conversation (it answered, no handoff since)
  nobody waits for a person and there is no clock. A resolution stops it unmet.
* **next_response**: each run of customer messages after a human reply, from its first message
  to the next human reply; a resolution ends the run.
* **resolution**: from the issue's start (its first customer message) to its resolution. While
  resolved the clock stands; a reopening continues it (full resolution) when `pause_on` names
  "resolved", else the reopening starts a new instance (each issue's first resolution).
* **update**: after each human reply, the next one is due within the target until resolved.

Pauses: time while the conversation is snoozed or pending (waiting on the customer) does not
count when the policy's `pause_on` names it; a customer's message ends either (as ingest does).
No clock starts before `armed_at`, the moment the conversation first passed the pipeline: an
imported history has none. Times are epoch seconds; business time is the policy calendar's open
hours (`omniconsole.calendar`), wall-clock when the policy has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from omniconsole.analytics.figures import is_bot_answer, is_customer_message, is_human_reply
from omniconsole.routing.sla.settings import SlaPolicy
from omniconsole.store.analytics import ConversationHistory
from omniconsole.store.routing import ConversationFacts

INF = float("inf")

#: Target states: running (counting), paused, met / breached (decided), stopped (ended unmet by
#: a resolution before it came due).
RUNNING, PAUSED, MET, BREACHED, STOPPED = "running", "paused", "met", "breached", "stopped"


def matches(policy: SlaPolicy, facts: ConversationFacts) -> bool:
    """Whether every condition the policy gives holds for the conversation."""
    if policy.channels and facts.channel_kind not in policy.channels and facts.channel_name not in policy.channels:
        return False
    if policy.priorities and facts.priority not in policy.priorities:
        return False
    if policy.labels and not any(label in facts.labels for label in policy.labels):
        return False
    if policy.queues and facts.queue not in policy.queues:
        return False
    return not any(facts.attributes.get(k) != v for k, v in policy.attributes.items())


def choose_policy(policies: Sequence[SlaPolicy], facts: ConversationFacts) -> SlaPolicy | None:
    """The first policy whose conditions hold, or None."""
    return next((p for p in policies if matches(p, facts)), None)


@dataclass(frozen=True, slots=True)
class Clock:
    """One target's current instance: when it started (its identity), its length (seconds of
    the policy's time), its state, the due moment (when 100% is or was reached; for a paused
    one None), the seconds used so far, and the moment each share of the policy is or was
    reached (None: not reached and not foreseeable — paused, or ended before it)."""

    target: str
    started_at: float
    budget: float
    state: str
    due_at: float | None
    used: float
    moments: dict[float, float | None]
    ended: bool = False  # a reply or a resolution decided it

    @property
    def counting(self) -> bool:
        """Running now (breached or not): it has a due time the inbox counts down to."""
        return not self.ended and self.state in (RUNNING, BREACHED) and self.due_at is not None


@dataclass(slots=True)
class _Instance:
    start: float
    end: float | None = None
    how: str = ""  # "replied" | "resolved" | ""


def _instances(h: ConversationHistory, policy: SlaPolicy) -> tuple[dict[str, _Instance], list[tuple[float, str]]]:
    """Walk the history as figures.py does: each target's latest instance, and the status
    changes `(at, status)` in time order."""
    items = [(m[0], 0, i) for i, m in enumerate(h.messages)] + [(e[0], 1, i) for i, e in enumerate(h.status_events)]
    items.sort()
    status = "open"
    changes: list[tuple[float, str]] = []

    def change(at: float, new: str) -> None:
        nonlocal status
        if new != status:
            status = new
            changes.append((at, new))

    out: dict[str, _Instance] = {}
    first_customer: float | None = None
    frt_start: float | None = None
    frt_done = bot_holds = False
    run_start: float | None = None
    continue_resolution = "resolved" in policy.pause_on

    def end(target: str, at: float, how: str) -> None:
        inst = out.get(target)
        if inst is not None and inst.end is None:
            inst.end, inst.how = at, how

    for at, source, index in items:
        if source == 0:
            _, direction, author, flags, _kind = h.messages[index]
            if is_customer_message(direction, flags):
                if first_customer is None:
                    first_customer = at
                    out["resolution"] = _Instance(at)
                if not frt_done and frt_start is None:
                    frt_start = at
                    if not bot_holds:
                        out["first_response"] = _Instance(at)
                elif frt_done and run_start is None:
                    run_start = at
                    out["next_response"] = _Instance(at)
                if status in ("snoozed", "pending"):
                    change(at, "open")
            elif is_bot_answer(direction, author, flags):
                if not frt_done:
                    bot_holds = True
                    out.pop("first_response", None)
            elif is_human_reply(direction, author, flags):
                if first_customer is None:
                    continue  # the company wrote first: not a response to anyone
                if not frt_done:
                    frt_done = True
                    end("first_response", at, "replied")
                elif run_start is not None:
                    end("next_response", at, "replied")
                run_start = None
                out["update"] = _Instance(at)
            continue
        _, kind, _actor = h.status_events[index]
        if kind == "conversation.resolved":
            if status != "resolved":
                change(at, "resolved")
                run_start = None
                for target in ("first_response", "next_response", "update"):
                    end(target, at, "resolved")
        elif kind in ("conversation.open", "conversation.reopened", "conversation.woke"):
            if status == "resolved" and first_customer is not None:
                if not frt_done:
                    frt_start = at  # the customer waits afresh from the reopening
                    out["first_response"] = _Instance(at)
                if not continue_resolution:
                    out["resolution"] = _Instance(at)
            change(at, "open")
        elif kind in ("conversation.snoozed", "conversation.pending"):
            change(at, kind.split(".")[1])
        elif kind == "bot.handoff":
            bot_holds = False
            if first_customer is not None and not frt_done:
                frt_start = at
                out["first_response"] = _Instance(at)
    if h.status != status:  # a change the log does not show (the row is the truth)
        changes.append((changes[-1][0] if changes else 0.0, h.status))
    return out, changes


def _paused_intervals(changes: list[tuple[float, str]], statuses: frozenset[str]) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    since: float | None = None
    for at, status in changes:
        if status in statuses and since is None:
            since = at
        elif status not in statuses and since is not None:
            spans.append((since, at))
            since = None
    if since is not None:
        spans.append((since, INF))
    return spans


def _active(start: float, horizon: float, paused: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """[start, horizon] without the paused spans (horizon may be INF: running on)."""
    out: list[tuple[float, float]] = []
    cursor = start
    for a, b in paused:
        if b <= cursor:
            continue
        if a >= horizon:
            break
        if a > cursor:
            out.append((cursor, a))
        cursor = max(cursor, b)
        if cursor >= horizon:
            return out
    if cursor < horizon:
        out.append((cursor, horizon))
    return out


class _Time:
    """Seconds between moments and the moment after some seconds, in the policy's time."""

    def __init__(self, policy: SlaPolicy):
        self.calendar = policy.calendar

    def between(self, a: float, b: float) -> float:
        return b - a if self.calendar is None else self.calendar.business_seconds(a, b)

    def after(self, a: float, seconds: float) -> float:
        return a + seconds if self.calendar is None else self.calendar.add_business(a, seconds)

    def moment(self, active: list[tuple[float, float]], amount: float) -> float | None:
        """When `amount` seconds have been used along the active spans (the last may be open)."""
        left = amount
        for a, b in active:
            if b == INF:
                return self.after(a, left)
            span = self.between(a, b)
            if span >= left:
                return self.after(a, left)
            left -= span
        return None


def clocks(h: ConversationHistory, policy: SlaPolicy, armed_at: float, now: float) -> dict[str, Clock]:
    """Each target of `policy` that has an instance now, by target name (see the module
    docstring for what starts, pauses and ends each)."""
    instances, changes = _instances(h, policy)
    time = _Time(policy)
    out: dict[str, Clock] = {}
    for target, budget in policy.targets.items():
        inst = instances.get(target)
        if inst is None or (inst.end is not None and inst.end <= armed_at):
            continue
        start = max(inst.start, armed_at)
        statuses = {s for s in policy.pause_on if s != "resolved"}
        end = inst.end
        if target == "resolution":
            statuses.add("resolved")  # resolving stops the resolution clock; a reopening continues it
            if h.status == "resolved":
                end = next((at for at, s in reversed(changes) if s == "resolved"), now)
        paused = _paused_intervals(changes, frozenset(statuses))
        paused_now = end is None and bool(paused) and paused[-1][1] == INF and paused[-1][0] <= now
        horizon = end if end is not None else (now if paused_now else INF)
        spans = _active(start, max(start, horizon), paused)
        used = sum(time.between(a, min(b, now)) for a, b in spans if a < now)
        due = time.moment(spans, budget)
        if due is None and end is not None:  # when it would have come due had it run on
            due = time.after(end, budget - sum(time.between(a, b) for a, b in spans))
        moments = {}
        for share in policy.shares():
            moment = time.moment(spans, share * budget)
            moments[share] = moment if moment is not None and (end is None or moment <= end) else None
        if end is not None:
            state = (
                BREACHED if moments[1.0] is not None else (MET if inst.how == "replied" or target == "resolution" else STOPPED)
            )
            shown_due = due
        elif paused_now:
            state, shown_due = (BREACHED if used >= budget else PAUSED), None
        else:
            state, shown_due = (BREACHED if due is not None and due <= now else RUNNING), due
        out[target] = Clock(target, start, budget, state, shown_due, used, moments, end is not None)
    return out
