"""Routing decisions: which queue takes a conversation, which operator gets it, and when it goes
back. Every function that writes runs inside the caller's write transaction (the store's
`write_transaction`), so a decision and the load it was based on are one atomic step, whatever
number of windows and cores share the database.

Entry points:
* `Router.route(conn, conversation_id, now)` — the pipeline step after a customer's message
  (bot -> rules -> routing -> SLA): queue it, try stickiness, then serve its queue in turn.
* `Router.drain(conn, now)` — serve every queue in turn (capacity freed, someone came online).
* `Router.set_status(conn, login, status, ...)` — an operator's status, with the offline grace.
* `Router.fire(conn, row, now)` — a schedule row of routing's kinds came due (return timer,
  offline grace).

Load follows METRICS.md "load": assigned conversations that are open (and pending unless
`pending_counts = false`), each weighted by its channel kind; snoozed and resolved ones do not
count. Manual assignment (`store.assign`) is not routing's and may exceed capacity.
"""

from __future__ import annotations

import math
import sqlite3
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from omniconsole.i18n import N_, english, phrase
from omniconsole.routing.settings import QueueSettings, RoutingSettings
from omniconsole.store import routing as db
from omniconsole.store import schedule as timers
from omniconsole.store.routing import ConversationFacts, OperatorState
from omniconsole.store.schedule import ScheduledRow

RETURN = "routing.return"
OFFLINE_GRACE = "routing.offline_grace"
KINDS = (RETURN, OFFLINE_GRACE)


@dataclass(frozen=True, slots=True)
class Decision:
    """What routing did with one conversation: `assignee` (None: it waits), the queue, and why."""

    conversation_id: int
    queue: str
    assignee: str | None
    reason: str


def _fmt(value: float) -> str:
    return f"{value:g}"


class Router:
    """Routing with one configuration. `detect_language(texts) -> 'ru' | 'en' | None` tells the
    customer's language from their latest messages (offline; see answers/language.py)."""

    def __init__(self, settings: RoutingSettings, detect_language: Callable[[list[str]], str | None] | None = None):
        self.settings = settings
        self._detect = detect_language
        self._wants_language = bool(settings.skills) or any(q.languages for q in settings.queues)

    # ---- pure parts ----------------------------------------------------------------------------

    def capacity(self, op: OperatorState) -> int:
        """The operator's capacity in units (0 in the table means the configured default)."""
        return op.capacity or self.settings.default_capacity

    def load(self, op: OperatorState) -> float:
        """Capacity units the operator's counted conversations take; one conversation takes at
        most the whole capacity (a call weighted 5 fills a capacity of 3, no more)."""
        capacity = self.capacity(op)
        return sum(min(self.settings.weight(kind), capacity) * n for kind, n in op.assigned.items())

    def has_room(self, op: OperatorState, channel_kind: str) -> bool:
        """Whether one more conversation on `channel_kind` fits (one heavier than the whole
        capacity, a call, needs an operator with nothing else)."""
        capacity = self.capacity(op)
        weight = min(self.settings.weight(channel_kind), capacity)
        return capacity > 0 and self.load(op) + weight <= capacity + 1e-9

    def language_of(self, facts: ConversationFacts) -> str | None:
        if not self._wants_language or self._detect is None or not facts.texts:
            return None
        return self._detect(facts.texts)

    def match_queue(self, facts: ConversationFacts, language: str | None) -> tuple[QueueSettings, str]:
        """The first queue whose conditions all hold, else `default`; and why, in words."""
        for queue in self.settings.queues:
            if queue.name == "default":
                continue
            why: list[str] = []
            if queue.channels:
                if facts.channel_kind not in queue.channels and facts.channel_name not in queue.channels:
                    continue
                why.append(f"channel {facts.channel_name or facts.channel_kind}")
            if queue.labels:
                hit = [label for label in queue.labels if label in facts.labels]
                if not hit:
                    continue
                why.append(f"label {hit[0]}")
            if queue.languages:
                if language not in queue.languages:
                    continue
                why.append(f"language {language}")
            if queue.attributes:
                if any(facts.attributes.get(k) != v for k, v in queue.attributes.items()):
                    continue
                why.append(", ".join(f"{k} = {v}" for k, v in queue.attributes.items()))
            return queue, f"queue {queue.name} ({'; '.join(why) or 'takes everything'})"
        queue = self.settings.queue("default")
        return queue, f"queue {queue.name} (no other queue matched)"

    def needs(self, facts: ConversationFacts, queue: QueueSettings, language: str | None) -> list[str]:
        """Skills the conversation needs: the queue's, plus its language, labels and channel
        kind where those are listed as skills in `[routing] skills`."""
        vocabulary = self.settings.skills
        wanted = set(queue.skills)
        for word in (language, facts.channel_kind, *facts.labels):
            if word and word.lower() in vocabulary:
                wanted.add(word.lower())
        return sorted(wanted)

    def choose(
        self,
        queue: QueueSettings,
        needs: Iterable[str],
        channel_kind: str,
        states: dict[str, OperatorState],
        exclude: frozenset[str] = frozenset(),
    ) -> tuple[str | None, dict]:
        """The operator the queue's policy picks for one conversation, and why as a phrase
        (omniconsole.i18n: `english()` for the English line, drawn translated in the timeline);
        None when nobody online in the queue has the skills and room."""
        if queue.policy == "manual":
            return None, phrase(N_("queue {queue} is assigned by hand"), queue=queue.name)
        needed = set(needs)
        members = [op for op in states.values() if queue.takes_operator(op.login, op.teams)]
        online = [op for op in members if op.status == "online" and op.login not in exclude]
        skilled = [op for op in online if needed <= set(op.skills)]
        fit = [op for op in skilled if self.has_room(op, channel_kind)]
        if not fit:
            if not online:
                why = phrase(N_("nobody in it is online"))
            elif not skilled:
                why = phrase(N_("nobody online has the skills {skills}"), skills=", ".join(sorted(needed)))
            else:
                figures = ", ".join(self._figure(op) for op in skilled[:6])
                why = phrase(N_("everyone online is at capacity: {figures}"), figures=figures)
            return None, phrase(N_("waits in queue {queue}: {why}"), queue=queue.name, why=why)
        if queue.policy == "round_robin":
            fit.sort(key=lambda op: (op.last_assigned_at or 0.0, op.login))
            chosen = fit[0]
            return chosen.login, phrase(
                N_("round robin in queue {queue}: {login} {figure}, longest since their last assignment"),
                queue=queue.name,
                login=chosen.login,
                figure=self._figure(chosen, bare=True),
            )
        fit.sort(key=lambda op: (self.load(op) / self.capacity(op), op.last_assigned_at or 0.0, op.login))
        figures = ", ".join(self._figure(op) for op in fit[:6])
        return fit[0].login, phrase(N_("least loaded in queue {queue}: {figures}"), queue=queue.name, figures=figures)

    def _figure(self, op: OperatorState, bare: bool = False) -> str:
        figure = f"{_fmt(self.load(op))}/{self.capacity(op)}"
        return figure if bare else f"{op.login} {figure}"

    # ---- decisions that write ----------------------------------------------------------------

    def route(self, conn: sqlite3.Connection, conversation_id: int, now: float, *, tell: bool = True) -> Decision | None:
        """The pipeline step for one conversation after a customer's message: put it in its
        queue (with the skills it needs), send a returning customer back to their operator,
        else serve the queue in turn; a conversation that waits for the first time is told its
        position on chat channels unless `tell` is False (the bot's handoff says it instead).
        None when the conversation is already someone's, not open, or the bot holds it (it
        enters the queue at the handoff, issue #17)."""
        facts = db.conversation_facts(conn, conversation_id)
        if facts is None or facts.assignee is not None or facts.status != "open" or facts.with_bot:
            return None
        language = self.language_of(facts)
        queue, why = self.match_queue(facts, language)
        needs = self.needs(facts, queue, language)
        first_time = facts.queued_at is None
        if facts.queue != queue.name or first_time:
            db.put_in_queue(conn, conversation_id, queue.name, needs, now, why + (f"; needs {', '.join(needs)}" if needs else ""))
        states = db.operator_states(conn, self.settings.load_statuses())
        sticky = self._sticky(conn, facts, states, now)
        if sticky is not None:
            login, reason = sticky
            if db.assign_if_free(conn, conversation_id, login, reason, queue.name, now):
                self._start_return_timer(conn, conversation_id, login, queue, now)
                return Decision(conversation_id, queue.name, login, english(reason))
        decisions = self._serve(conn, queue, states, now)
        mine = next((d for d in decisions if d.conversation_id == conversation_id), None)
        if mine is not None:
            return mine
        _, reason = self.choose(queue, needs, facts.channel_kind, states)
        if first_time and tell:
            self._tell_position(conn, facts, queue, now)
        return Decision(conversation_id, queue.name, None, english(reason))

    def route_at_handoff(self, conn: sqlite3.Connection, conversation_id: int, now: float) -> tuple[int, int] | None:
        """The bot handed the conversation to a person (its state is `human` now): route it at
        once, waiting from now, and return `(position in the queue, expected wait in minutes)`
        for the bot's one handoff message, or None when it was assigned, cannot wait, or its
        channel gets no position (`position_channels`)."""
        decision = self.route(conn, conversation_id, now, tell=False)
        if decision is None or decision.assignee is not None:
            return None
        facts = db.conversation_facts(conn, conversation_id, texts=0)
        if facts is None or facts.channel_kind not in self.settings.position_channels:
            return None
        return self.position(conn, conversation_id, self.settings.queue(decision.queue))

    def drain(self, conn: sqlite3.Connection, now: float, exclude: dict[int, frozenset[str]] | None = None) -> list[Decision]:
        """Serve every queue in turn: assign waiting conversations while operators have room.
        `exclude` keeps given operators from given conversations (a return timer's)."""
        states = db.operator_states(conn, self.settings.load_statuses())
        decisions: list[Decision] = []
        for queue in self.settings.queues:
            decisions.extend(self._serve(conn, queue, states, now, exclude or {}))
        return decisions

    def _serve(
        self,
        conn: sqlite3.Connection,
        queue: QueueSettings,
        states: dict[str, OperatorState],
        now: float,
        exclude: dict[int, frozenset[str]] | None = None,
    ) -> list[Decision]:
        """Assign `queue`'s waiting conversations in their turn (priority, then waiting time);
        one that needs skills nobody with room has waits without holding up the next."""
        if queue.policy == "manual":
            return []
        decisions: list[Decision] = []
        # A kind of conversation (skills, channel) that found nobody stays without anybody for
        # the rest of this pass (assignments only take room): skip its later ones at once.
        hopeless: set[tuple[tuple[str, ...], str]] = set()
        for conversation_id, needs, kind, _priority, _queued in db.waiting(conn, queue.name, limit=1000):
            excluded = (exclude or {}).get(conversation_id, frozenset())
            if (needs, kind) in hopeless and not excluded:
                continue
            if not any(
                op.status == "online" and queue.takes_operator(op.login, op.teams) and self.load(op) < self.capacity(op) - 1e-9
                for op in states.values()
            ):
                break  # nobody in the queue has any room left: the rest wait
            login, reason = self.choose(queue, needs, kind, states, excluded)
            if login is None:
                if not excluded:
                    hopeless.add((needs, kind))
                continue
            if db.assign_if_free(conn, conversation_id, login, reason, queue.name, now):
                states[login].assigned[kind] = states[login].assigned.get(kind, 0) + 1
                states[login].last_assigned_at = now
                self._start_return_timer(conn, conversation_id, login, queue, now)
                decisions.append(Decision(conversation_id, queue.name, login, english(reason)))
        return decisions

    def _sticky(
        self, conn: sqlite3.Connection, facts: ConversationFacts, states: dict[str, OperatorState], now: float
    ) -> tuple[str, dict] | None:
        if self.settings.sticky_minutes <= 0:
            return None
        handler = db.last_handler(conn, facts.customer_id, facts.id, now - self.settings.sticky_minutes * 60)
        if handler is None:
            return None
        login, last = handler
        op = states.get(login)
        if op is None or op.status != "online" or not self.has_room(op, facts.channel_kind):
            return None
        ago = max(0.0, now - last)
        when = phrase(N_("{n} h"), n=f"{ago / 3600:.0f}") if ago >= 3600 else phrase(N_("{n} min"), n=max(1, round(ago / 60)))
        return login, phrase(
            N_("returning customer: back to {login}, who handled them {when} ago ({figure})"),
            login=login,
            when=when,
            figure=self._figure(op, bare=True),
        )

    def _start_return_timer(
        self, conn: sqlite3.Connection, conversation_id: int, login: str, queue: QueueSettings, now: float
    ) -> None:
        if self.settings.return_minutes <= 0:
            return
        due = self.settings.calendar(queue).add_business(now, self.settings.return_minutes * 60)
        timers.schedule(conn, RETURN, due, now, conversation_id=conversation_id, payload={"assignee": login, "assigned_at": now})

    def position(self, conn: sqlite3.Connection, conversation_id: int, queue: QueueSettings) -> tuple[int, int] | None:
        """`(place in the queue from 1, expected wait in whole minutes)`: the median wait of the
        queue's latest assignments (5 min when none) times the place; None when not waiting."""
        order = [row[0] for row in db.waiting(conn, queue.name, limit=10_000)]
        if conversation_id not in order:
            return None
        place = order.index(conversation_id) + 1
        waits = db.recent_waits(conn, queue.name)
        per = statistics.median(waits) if waits else 300.0
        return place, max(1, math.ceil(per * place / 60))

    def _tell_position(self, conn: sqlite3.Connection, facts: ConversationFacts, queue: QueueSettings, now: float) -> None:
        text = self.settings.position_text
        if not text or facts.channel_kind not in self.settings.position_channels:
            return
        where = self.position(conn, facts.id, queue)
        if where is None:
            return
        db.queue_notice(conn, facts.id, text.format(position=where[0], wait=where[1], queue=queue.name), now)

    def _requeue(self, conn: sqlite3.Connection, conversation_id: int, now: float) -> None:
        """Put a conversation that was taken back into its queue if it never had one (it was
        assigned by hand)."""
        facts = db.conversation_facts(conn, conversation_id)
        if facts is None or facts.queue is not None:
            return
        language = self.language_of(facts)
        queue, why = self.match_queue(facts, language)
        db.put_in_queue(conn, conversation_id, queue.name, self.needs(facts, queue, language), now, why)

    # ---- operators -----------------------------------------------------------------------------

    def set_status(
        self, conn: sqlite3.Connection, login: str, status: str, now: float, actor: str, reason: str = ""
    ) -> list[Decision]:
        """Set an operator's status. Going offline starts the grace period after which their
        unanswered conversations return to the queue; coming online ends it and serves the
        queues. Returns the assignments this made."""
        previous = db.update_operator(conn, login, actor=actor, now=now, status=status, reason=reason)
        if previous is None:
            return []
        if status == "offline" and self.settings.return_on_offline:
            timers.schedule(conn, OFFLINE_GRACE, now + self.settings.offline_grace_minutes * 60, now, subject=login)
        else:
            timers.unschedule(conn, OFFLINE_GRACE, subject=login)
        return self.drain(conn, now) if status == "online" else []

    def after_status(self, conn: sqlite3.Connection, login: str, now: float) -> None:
        """What an operator's current status sets off, however it was written (the core's
        follower calls this for each `operator.status` event): offline starts the grace period
        (from the moment they went offline), any other status ends it. Idempotent."""
        current = db.operator_status(conn, login)
        if current is None:
            return
        status, since = current
        if status == "offline" and self.settings.return_on_offline:
            due = (since or now) + self.settings.offline_grace_minutes * 60
            timers.schedule(conn, OFFLINE_GRACE, due, now, subject=login)
        else:
            timers.unschedule(conn, OFFLINE_GRACE, subject=login)

    # ---- the scheduler's rows ------------------------------------------------------------------

    def fire(self, conn: sqlite3.Connection, row: ScheduledRow, now: float) -> list[Decision]:
        """Act on a due schedule row of routing's kinds (inside the transaction that removed it)."""
        if row.kind == RETURN and row.conversation_id is not None:
            login = str(row.payload.get("assignee") or "")
            since = float(row.payload.get("assigned_at") or 0.0)
            facts = db.conversation_facts(conn, row.conversation_id, texts=0)
            if facts is None or facts.assignee != login or facts.status != "open" or facts.assigned_at != since:
                return []
            if db.answered_since(conn, row.conversation_id, since):
                return []
            minutes = _fmt(self.settings.return_minutes)
            why = phrase(N_("{login} did not answer within {minutes} business minutes"), login=login, minutes=minutes)
            db.return_to_queue(conn, row.conversation_id, login, why, now)
            self._requeue(conn, row.conversation_id, now)
            return self.drain(conn, now, exclude={row.conversation_id: frozenset({login})})
        if row.kind == OFFLINE_GRACE:
            login = row.subject
            state = db.operator_states(conn, ()).get(login)
            if state is None or state.status != "offline":
                return []
            minutes = _fmt(self.settings.offline_grace_minutes)
            for conversation_id in db.unanswered_of(conn, login):
                why = phrase(N_("{login} has been offline for {minutes} min"), login=login, minutes=minutes)
                db.return_to_queue(conn, conversation_id, login, why, now)
                self._requeue(conn, conversation_id, now)
            return self.drain(conn, now, exclude={})
        return []
