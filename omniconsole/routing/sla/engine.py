"""SLA clocks as the core runs them: a `CoreExtension` with the pipeline step (a customer's
message gives the conversation clocks and sets them), the scheduler's handler for `sla.due`
rows, and a follower of the events log that re-evaluates a conversation when operators act (a
human reply stops first/next response, a resolution stops resolution, snooze and pending pause,
a priority, label or queue change may choose another policy and move the due times).

`Sla.evaluate(conn, conversation_id, now)` is the one entry point all three use, inside the
caller's write transaction: it recomputes every target from the history (clocks.py), records
each warning share and the breach once per target instance (`sla.warning` / `sla.breach`,
payload `{"policy", "target", "share", "due"}`, the kinds the automation rules consume), runs the
policy's escalation ladder while the target still runs (each step an `sla.escalated` event),
keeps the nearest due moment on the conversation for the inbox, and puts one schedule row per
running target at its next share, so the scheduler wakes exactly then — never a poll. The row is
removed in the transaction that fires it and the shares already recorded are stored with the
instance, so a restart fires nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from omniconsole.core.scheduler import CoreExtension, Scheduler
from omniconsole.i18n import N_, english, phrase
from omniconsole.routing.sla import clocks as sla_clocks
from omniconsole.routing.sla.clocks import Clock
from omniconsole.routing.sla.settings import TARGET_WORDS, SlaPolicy
from omniconsole.store import routing as routing_db
from omniconsole.store import schedule as timers
from omniconsole.store import sla as db
from omniconsole.store.analytics import report_histories
from omniconsole.store.schedule import ScheduledRow

if TYPE_CHECKING:
    from omniconsole.store import Store

log = logging.getLogger(__name__)

DUE = "sla.due"
KINDS = (DUE,)
#: Events after which a conversation's clocks may change (someone replied, resolved, snoozed,
#: reopened, changed the priority, labels or queue, the bot handed over).
WATCH = frozenset(
    {
        "message.received",
        "message.queued",
        "conversation.resolved",
        "conversation.open",
        "conversation.reopened",
        "conversation.snoozed",
        "conversation.woke",
        "conversation.pending",
        "conversation.priority",
        "conversation.labels",
        "conversation.assigned",
        "routing.queued",
        "routing.returned",
        "bot.handoff",
        "customer.blocked",
    }
)
#: Moves conversations back out of Spam; its payload lists them (store/spam.py `unblock`).
UNBLOCKED = "customer.unblocked"


def _touched(events) -> list[int]:
    """The conversations whose clocks the follower re-evaluates after `events`."""
    ids = {e.conversation_id for e in events if e.kind in WATCH and e.conversation_id is not None}
    for event in events:
        if event.kind == UNBLOCKED and event.payload:
            try:
                ids.update(int(c) for c in json.loads(event.payload).get("conversations", []))
            except (ValueError, TypeError, AttributeError):
                log.warning("customer.unblocked event %s has no readable conversation list", event.id)
    return sorted(ids)


def _hhmm(seconds: float) -> dict:
    minutes = round(abs(seconds) / 60)
    if minutes >= 60:
        return phrase(N_("{hours} h {minutes} min"), hours=minutes // 60, minutes=f"{minutes % 60:02d}")
    return phrase(N_("{n} min"), n=minutes)


class Sla:
    """SLA clocks for one configuration: `policies` in the config's order."""

    def __init__(self, policies: Sequence[SlaPolicy]):
        self.policies = tuple(policies)
        self.by_name = {p.name: p for p in self.policies}

    # ---- the pipeline step -----------------------------------------------------------------

    def step(self, conn: sqlite3.Connection, conversation_id: int, now: float) -> None:
        """After a customer's message (never for imports): clocks from this message on, then
        evaluate. The clocks start at the customer's latest message (or now, if earlier)."""
        if not self.policies:
            return
        start = db.clock_start(conn, conversation_id, now)
        if start is None:
            return
        db.arm(conn, conversation_id, start, now)
        self.evaluate(conn, conversation_id, now)

    # ---- evaluation ---------------------------------------------------------------------------

    def evaluate(self, conn: sqlite3.Connection, conversation_id: int, now: float) -> dict[str, Clock]:
        """Recompute the conversation's clocks at `now` and act on them (see the module
        docstring); returns the clocks. Nothing for a conversation without clocks."""
        armed = db.armed(conn, conversation_id)
        facts = routing_db.conversation_facts(conn, conversation_id, texts=0) if armed else None
        if armed is None or facts is None:
            return {}
        previous_policy, armed_at = armed
        stored = db.targets(conn, conversation_id)
        if facts.status == "spam":
            # Blocked into Spam (store/spam.py): nobody waits for a person there, so no warning,
            # breach or escalation (which could route it back to a queue). The targets keep the
            # shares already recorded; the unblock re-evaluates (UNBLOCKED below).
            for target in stored:
                timers.unschedule(conn, DUE, conversation_id=conversation_id, subject=target)
            db.set_nearest(conn, conversation_id, previous_policy, None, 0, now)
            return {}
        policy = sla_clocks.choose_policy(self.policies, facts)
        if policy is None:
            for target in stored:
                db.drop_target(conn, conversation_id, target)
                timers.unschedule(conn, DUE, conversation_id=conversation_id, subject=target)
            if previous_policy:
                db.record(
                    conn,
                    conversation_id,
                    "sla.policy",
                    {"policy": "", "was": previous_policy},
                    phrase(N_("no SLA policy applies now")),
                    now,
                )
            db.set_nearest(conn, conversation_id, "", None, 0, now)
            return {}
        if policy.name != previous_policy:
            # The first policy is an event only; a change is also a timeline line, with the old one.
            words = (
                phrase(N_("SLA policy {policy} applies now (was {was})"), policy=policy.name, was=previous_policy)
                if previous_policy
                else ""
            )
            db.record(conn, conversation_id, "sla.policy", {"policy": policy.name, "was": previous_policy}, words, now)
        history = report_histories(conn, None, None, [conversation_id])
        found = sla_clocks.clocks(history[0], policy, armed_at, now) if history else {}
        stages: list[int] = []
        nearest: float | None = None
        for target in set(stored) - set(found):
            db.drop_target(conn, conversation_id, target)
            timers.unschedule(conn, DUE, conversation_id=conversation_id, subject=target)
        for target, clock in found.items():
            row = stored.get(target)
            fired = row.fired if row is not None and abs(row.started_at - clock.started_at) < 1e-6 else 0.0
            crossed = [s for s in policy.shares() if s > fired + 1e-9 and (clock.moments.get(s) or now + 1) <= now]
            steps: list[tuple[float, str]] = []
            for share in crossed:
                self._record_share(conn, conversation_id, policy, clock, share, now)
                fired = share
                if not clock.ended:
                    steps += [(share, step) for step in policy.steps_at(share)]
            done: set[str] = set()
            for share, step in steps:
                if step not in done:
                    done.add(step)
                    self._escalate(conn, conversation_id, policy, clock, share, step, facts, now)
            following = [
                m for s, m in clock.moments.items() if s > fired + 1e-9 and m is not None and m > now and not clock.ended
            ]
            if following and clock.state != sla_clocks.PAUSED:
                timers.schedule(
                    conn,
                    DUE,
                    min(following),
                    now,
                    conversation_id=conversation_id,
                    subject=target,
                    payload={"policy": policy.name, "started_at": clock.started_at},
                )
            else:
                timers.unschedule(conn, DUE, conversation_id=conversation_id, subject=target)
            db.save_target(
                conn, conversation_id, db.TargetRow(target, policy.name, clock.started_at, clock.state, clock.due_at, fired), now
            )
            if clock.counting:
                nearest = clock.due_at if nearest is None else min(nearest, clock.due_at)
                stages.append(2 if clock.state == sla_clocks.BREACHED else 1 if fired > 0 else 0)
        db.set_nearest(conn, conversation_id, policy.name, nearest, max(stages, default=0), now)
        return found

    def _record_share(self, conn, conversation_id: int, policy: SlaPolicy, clock: Clock, share: float, now: float) -> None:
        breach = share >= 1.0
        due = clock.moments.get(1.0) or clock.due_at
        payload = {"policy": policy.name, "target": clock.target, "share": share, "due": due, "started_at": clock.started_at}
        words = phrase(TARGET_WORDS[clock.target])
        if breach:
            line = phrase(
                N_("SLA {policy}: {target} breached (target {budget})"),
                policy=policy.name,
                target=words,
                budget=_hhmm(clock.budget),
            )
        else:
            line = phrase(
                N_("SLA {policy}: {target} at {share} of {budget}"),
                policy=policy.name,
                target=words,
                share=f"{share:.0%}",
                budget=_hhmm(clock.budget),
            )
        db.record(conn, conversation_id, "sla.breach" if breach else "sla.warning", payload, line, now)

    def _escalate(self, conn, conversation_id: int, policy: SlaPolicy, clock: Clock, share: float, step: str, facts, now: float):
        words = phrase(TARGET_WORDS[clock.target])
        if share >= 1.0:
            reason = phrase(N_("SLA {policy}: {target} breached"), policy=policy.name, target=words)
        else:
            reason = phrase(N_("SLA {policy}: {target} at {share}"), policy=policy.name, target=words, share=f"{share:.0%}")
        payload = {"policy": policy.name, "target": clock.target, "share": share, "due": clock.moments.get(1.0), "step": step}
        assignee = db.assignee(conn, conversation_id)
        if step == "notify_assignee":
            if not assignee:
                return
            payload["to"] = [assignee]
            db.record(
                conn,
                conversation_id,
                "sla.escalated",
                payload,
                phrase(N_("{reason}: {login} notified"), reason=reason, login=assignee),
                now,
            )
        elif step == "notify_admins":
            payload["to"] = db.admins(conn)
            if not payload["to"]:
                return
            db.record(
                conn, conversation_id, "sla.escalated", payload, phrase(N_("{reason}: admins notified"), reason=reason), now
            )
        elif step == "return_to_queue":
            if not assignee or not routing_db.return_to_queue(conn, conversation_id, assignee, reason, now):
                return
            if facts.queue is None:
                routing_db.put_in_queue(conn, conversation_id, "default", [], now, english(reason))
            payload["from"] = assignee
            db.record(
                conn,
                conversation_id,
                "sla.escalated",
                payload,
                phrase(N_("{reason}: back to the queue from {login}"), reason=reason, login=assignee),
                now,
            )
        elif step == "raise_priority":
            priority = db.raise_priority(conn, conversation_id, english(reason), now)
            if priority is None:
                return
            payload["priority"] = priority
            db.record(
                conn, conversation_id, "sla.escalated", payload, phrase(N_("{reason}: priority raised"), reason=reason), now
            )

    # ---- the scheduler's rows ----------------------------------------------------------------

    def fire(self, conn: sqlite3.Connection, row: ScheduledRow, now: float) -> None:
        """A target reached its next share: evaluate the conversation (inside the transaction
        that removed the row)."""
        if row.conversation_id is not None:
            self.evaluate(conn, row.conversation_id, now)


def extension(policies: Sequence[SlaPolicy], *, tick: float = 0.25, clock: Callable[[], float] = time.time) -> CoreExtension:
    """SLA's part of the core (see the module docstring)."""
    sla = Sla(policies)

    def follow_batch(conn: sqlite3.Connection, conversation_ids: list[int], now: float) -> int:
        ids = db.armed_among(conn, conversation_ids)
        for conversation_id in ids:
            sla.evaluate(conn, conversation_id, now)
        return len(ids)

    async def follow(store: Store, scheduler: Scheduler) -> None:
        # From where the clocks were last evaluated, not from the end of the log: what operators
        # did while no core ran reaches the clocks at start.
        last = await store.db.run(db.resume_point)
        while True:
            events = await store.events_since(last, limit=1000)
            if events:
                last = events[-1].id
                touched = _touched(events)
                if touched:
                    try:
                        if await store.db.write(follow_batch, touched, clock()):
                            scheduler.poke()
                    except Exception:
                        log.exception("SLA clocks of conversations %s could not be evaluated", touched[:10])
                continue
            await asyncio.sleep(tick)

    return CoreExtension(
        "sla",
        step=sla.step if policies else None,
        handlers={DUE: sla.fire} if policies else {},
        background=follow if policies else None,
    )
