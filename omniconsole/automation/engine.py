"""Matching rules and acting on them, live in the core and as a dry run (issue #19).

Where triggers come from:
* a customer's message, a conversation they opened or reopened: the rules' step of the
  conversation pipeline (after the bot, before routing), for what a channel delivered live;
  history brought in by imports never passes there, so it triggers nothing;
* everything else (resolved, reopened by a person, assigned, label added, SLA warning or
  breach, survey answered, channel down or up): a follower of the events log whose position is
  kept in the store and moved in the transaction that acted (a restart acts on nothing twice);
* timers ("no customer reply for 2 h of business time", "waiting for us for 30 min", "resolved
  for 7 days"): one row per conversation and rule in the core's one schedule (`rules.timer`),
  put when the conversation enters the state, checked again when it fires.

Safety: actions call the store functions operators use, with the actor `rule:NAME`; each
firing is one `rule.fired` event and one timeline line "rule NAME did …"; a rule whose actions
(or a chain of rules started by them) caused an event is not triggered by it again; a
conversation gets at most `budget` rule actions per hour (then `rule.skipped` says why).

`plan()` is the one matching function: the live run acts on what it returns, the dry run
(`dry_run`) prints it.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from omniconsole.automation.rules import Action, Rule, RuleBook
from omniconsole.calendar import Calendar
from omniconsole.errors import error_phrase
from omniconsole.i18n import N_, english, joined, phrase
from omniconsole.models import ConversationStatus
from omniconsole.store import actions as ops
from omniconsole.store import automation as db
from omniconsole.store import schedule as timers
from omniconsole.store.actions import ActionError
from omniconsole.store.events import add_event
from omniconsole.store.rows import Event
from omniconsole.store.schedule import ScheduledRow

log = logging.getLogger(__name__)

TIMER_KIND = "rules.timer"
FOLLOWER = "rules"
#: A chain of rules longer than this stops (each rule fires at most once per chain anyway).
MAX_CHAIN = 5
#: Events-log kind -> the rule event it is (reopened by a person is `conversation.open`).
FOLLOWED = {
    "conversation.resolved": "conversation.resolved",
    "conversation.open": "conversation.reopened",
    "conversation.assigned": "conversation.assigned",
    "conversation.labels": "label.added",
    "sla.warning": "sla.warning",
    "sla.breach": "sla.breach",
    "survey.answered": "survey.answered",
    "channel.health": None,  # down or up, by its payload
}
#: Seconds after which a delivered batch is no longer new to the step (see
#: store/automation.py `newest_batch`): the step runs right after ingest commits.
STEP_MAX_AGE = 600.0
#: Actors whose events are history brought in, never a trigger.
IMPORT_ACTORS = frozenset({"import"})


@dataclass(frozen=True)
class Trigger:
    """What happened: the rule event (`on` name, or `timer:KIND`), where, the event's payload
    and actor as `event.*` fields, and the rules that led to it (a chain)."""

    on: str
    conversation_id: int | None
    message_ids: tuple[int, ...] = ()
    event: Mapping[str, Any] = field(default_factory=dict)
    chain: tuple[str, ...] = ()
    channel_id: int | None = None
    at: float = 0.0
    only: str | None = None  # a timer's rule


@dataclass(frozen=True)
class Planned:
    """A rule that matched a trigger, and what it would do."""

    rule: Rule
    trigger: Trigger
    message_id: int | None = None

    def words(self) -> str:
        return "; ".join(a.describe() for a in self.rule.actions)


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return "" if value is None else str(value)


def condition_holds(op: str, actual: Any, expected: Any, pattern: re.Pattern | None = None) -> bool:
    """One condition: `actual` (a field's value) against `expected` with `op`; text compares
    case-insensitively, lists (labels) hold or contain."""
    if op == "has":
        items = actual if isinstance(actual, (list, tuple)) else [actual]
        return str(expected).casefold() in {str(i).casefold() for i in items}
    if op == "matches":
        return pattern is not None and pattern.search(_text(actual)) is not None
    if op == "contains":
        return str(expected).casefold() in _text(actual).casefold()
    if op in ("above", "below"):
        try:
            number = float(actual)
        except (TypeError, ValueError):
            return False
        return number > expected if op == "above" else number < expected
    if op == "in":
        return _text(actual).casefold() in {str(v).casefold() for v in expected}
    same = _text(actual).casefold() == _text(expected).casefold() if not isinstance(expected, bool) else bool(actual) is expected
    return same if op == "is" else not same


class Engine:
    """The rules of a RuleBook over one store (see the module docstring). `calendars` by name
    (routing's `[[calendars]]`); `settings` the whole Settings (surveys, webhooks) or None."""

    def __init__(
        self,
        book: RuleBook,
        calendars: Mapping[str, Calendar] | None = None,
        settings: Any = None,
        *,
        detect: Callable[[list[str]], str | None] | None = None,
    ):
        self.book = book
        self.calendars = dict(calendars or {})
        self.calendars.setdefault("default", Calendar())
        self.settings = settings
        self.detect = detect
        self._pruned_at = 0.0  # when the follower last forgot old firings (epoch seconds)

    # --- matching ------------------------------------------------------------------------

    def fields(self, conn: sqlite3.Connection, trigger: Trigger, message_id: int | None) -> dict[str, Any]:
        """The values conditions read for a trigger (store/automation.py names them)."""
        values: dict[str, Any] = {}
        if trigger.conversation_id is not None:
            values.update(db.conversation_fields(conn, trigger.conversation_id) or {})
        if trigger.channel_id is not None:
            values.update(db.channel_fields(conn, trigger.channel_id))
        if message_id is not None:
            values.update(db.message_fields(conn, message_id))
        for key, value in trigger.event.items():
            values[f"event.{key}"] = value
        return values

    def _language(self, conn: sqlite3.Connection, values: dict[str, Any], message: bool) -> str:
        if self.detect is None:
            return ""
        if message:
            texts = [_text(values.get("message.body"))]
        else:
            texts = db.recent_inbound_texts(conn, values.get("conversation.id", 0))
        return self.detect([t for t in texts if t]) or ""

    def matches(self, conn: sqlite3.Connection, rule: Rule, values: dict[str, Any], now: float) -> bool:
        """Whether `rule`'s conditions hold (all or any of them; no conditions: always)."""
        if not rule.conditions:
            return True
        results = []
        for condition in rule.conditions:
            name = condition.field
            if name == "office_hours":
                actual: Any = self.calendars.get(rule.calendar, self.calendars["default"]).is_open(now)
            elif name in ("message.language", "customer.language"):
                key = f"_{name}"
                if key not in values:
                    values[key] = self._language(conn, values, name == "message.language")
                actual = values[key]
            else:
                actual = values.get(name)
            ok = actual is not None and condition_holds(condition.op, actual, condition.value, condition.pattern)
            if condition.op == "is_not" and actual is None:
                ok = True
            results.append(ok)
            if rule.match == "any" and ok:
                return True
            if rule.match == "all" and not ok:
                return False
        return all(results) if rule.match == "all" else any(results)

    def plan(self, conn: sqlite3.Connection, trigger: Trigger, now: float) -> list[Planned]:
        """The rules that match `trigger` now and what each would do: the one matching code
        of the live run and the dry run. A rule in the trigger's chain is left out (no rule
        triggers itself, no chain loops); a message trigger matches a rule on the first of its
        messages that satisfies it."""
        if len(trigger.chain) >= MAX_CHAIN:
            return []
        if trigger.only is not None:
            rule = self.book.rule(trigger.only)
            rules = [rule] if rule is not None else []
        else:
            rules = self.book.for_event(trigger.on)
        rules = [r for r in rules if r.name not in trigger.chain]
        if not rules:
            return []
        planned: list[Planned] = []
        messages: list[int | None] = list(trigger.message_ids) or [None]
        read: dict[int | None, dict[str, Any]] = {}  # the fields of each message, read once
        if trigger.conversation_id is not None:
            read[messages[0]] = self.fields(conn, trigger, messages[0])
            if read[messages[0]].get("_status") == "spam":
                return []  # blocked (store/spam.py): Spam is not answered or worked, by rules neither
        for rule in rules:
            for message_id in messages:
                if message_id not in read:
                    read[message_id] = self.fields(conn, trigger, message_id)
                if self.matches(conn, rule, read[message_id], now):
                    planned.append(Planned(rule, trigger, message_id))
                    break
        return planned

    # --- acting --------------------------------------------------------------------------

    def act(self, conn: sqlite3.Connection, planned: Planned, now: float) -> list[str]:
        """Do what a matched rule says, inside the caller's transaction; returns what was done
        in words. The firing is kept (budget, chain), one `rule.fired` event and a timeline
        line say what the rule did; an action refused by the store is said, the rest go on."""
        rule, trigger = planned.rule, planned.trigger
        cid = trigger.conversation_id
        if cid is not None:
            used = db.actions_since(conn, cid, now - 3600)
            if used + len(rule.actions) > self.book.budget:
                add_event(
                    conn,
                    "rule.skipped",
                    actor=f"rule:{rule.name}",
                    conversation_id=cid,
                    payload={
                        "rule": rule.name,
                        "reason": f"the budget of {self.book.budget} rule actions per hour on this conversation is spent",
                    },
                    at=now,
                )
                return []
        before = db.last_event_id(conn)
        actor = f"rule:{rule.name}"
        did: list[dict] = []
        for action in rule.actions:
            try:
                did.append(self._do(conn, action, actor, planned, now) or action.phrase())
            except ActionError as exc:
                did.append(phrase(N_("could not {action}: {error}"), action=action.phrase(), error=error_phrase(exc)))
        done = [english(line) for line in did]
        customer_id = None
        if cid is not None:
            customer_id = db.conversation_customer(conn, cid)
            line = phrase(N_("rule {name} did: {did}"), name=rule.name, did=joined(did, "; "))
            ops._timeline_event(conn, cid, customer_id, actor, line, now)
        add_event(
            conn,
            "rule.fired",
            actor=actor,
            conversation_id=cid,
            customer_id=customer_id,
            message_id=planned.message_id,
            payload={"rule": rule.name, "trigger": trigger.on, "actions": [a.describe() for a in rule.actions], "did": done},
            at=now,
        )
        db.record_firing(
            conn, rule.name, cid, len(rule.actions), before + 1, db.last_event_id(conn), (*trigger.chain, rule.name), now
        )
        return done

    def _do(self, conn: sqlite3.Connection, action: Action, actor: str, planned: Planned, now: float) -> dict | None:
        cid = planned.trigger.conversation_id
        kind, value = action.kind, action.value
        if kind == "notify":
            db.notify_operators(conn, cid, value, self._recipients(conn, action, cid), actor, now)
            return None
        if kind == "webhook":
            db.call_webhook(conn, cid, value, actor, now, rule=actor[5:], trigger=planned.trigger.on)
            return None
        if cid is None:
            raise ActionError(N_("there is no conversation to act on"))
        if kind == "reply":
            ops.queue_reply(conn, cid, self._answer(conn, cid, value), actor, now=now)
        elif kind == "note":
            ops.add_note(conn, cid, value, actor, now)
        elif kind in ("add_labels", "remove_labels"):
            labels = db.conversation_labels(conn, cid)
            changed = sorted(set(labels) | set(value)) if kind == "add_labels" else [x for x in labels if x not in value]
            if sorted(changed) == sorted(labels):
                return phrase(N_("{action} (already so)"), action=action.phrase())
            ops.set_conversation_labels(conn, cid, changed, actor)
        elif kind == "priority":
            ops.set_priority(conn, cid, value, actor)
        elif kind == "assign":
            ops.assign(conn, cid, value, actor, now)
        elif kind == "assign_queue":
            db.move_to_queue(conn, cid, value, actor, now)
        elif kind == "snooze":
            ops.set_status(conn, cid, ConversationStatus.SNOOZED, actor, snoozed_until=now + value, now=now)
        elif kind == "resolve":
            ops.set_status(conn, cid, ConversationStatus.RESOLVED, actor, now=now)
        elif kind == "reopen":
            ops.set_status(conn, cid, ConversationStatus.OPEN, actor, now=now)
        elif kind == "survey":
            return self._survey(conn, cid, value, now)
        return None

    def _recipients(self, conn: sqlite3.Connection, action: Action, cid: int | None) -> list[str]:
        if action.operators:
            return list(action.operators)
        if cid is not None:
            assignee = (db.conversation_fields(conn, cid) or {}).get("conversation.assignee")
            if assignee:
                return [assignee]
        return db.operator_logins(conn)

    def _answer(self, conn: sqlite3.Connection, cid: int, key: str) -> str:
        """The library answer `key` rendered for the conversation's channel, in the customer's
        language when the library has it."""
        from omniconsole.store import answers

        values = db.conversation_fields(conn, cid) or {}
        variants = [a for a in answers.articles(conn) if a.key == key]
        language = self._language(conn, values, False) if len(variants) > 1 else ""
        return answer_body(
            key, variants, language, str(values.get("customer.name") or ""), cid, str(values.get("channel.kind") or "")
        )

    def _survey(self, conn: sqlite3.Connection, cid: int, kind: str, now: float) -> dict:
        from omniconsole.analytics import surveys
        from omniconsole.config import SurveySettings
        from omniconsole.store import analytics

        settings = getattr(self.settings, "surveys", None) or SurveySettings()
        target = analytics.survey_target(conn, cid)
        why = surveys.refusal(target, kind, settings, now) if target is not None else "no such conversation"
        if why is not None:
            raise ActionError(N_("no {kind} survey: {why}"), kind=kind.upper(), why=why)
        language = surveys.language_of(target)
        listener = getattr(self.settings, "listener", None)
        body, meta = surveys.question(kind, target.route[1], language, settings, getattr(listener, "public_url", None))
        channel_id, _, identity_id, _ = target.route
        analytics.record_survey(
            conn, kind, cid, target.customer_id, channel_id, identity_id, target.handled_by, language, body, meta, now
        )
        return phrase(N_("send a {kind} survey"), kind=kind.upper())

    def run(self, conn: sqlite3.Connection, trigger: Trigger, now: float) -> list[Planned]:
        """Plan and act on one trigger; returns what fired."""
        fired = self.plan(conn, trigger, now)
        for planned in fired:
            self.act(conn, planned, now)
        return fired

    # --- triggers ------------------------------------------------------------------------

    def step(self, conn: sqlite3.Connection, conversation_id: int, now: float) -> list[Planned]:
        """The pipeline step: the conversation's newest delivered batch (opened, reopened, the
        customer's messages) triggers rules once; timers of the new state are put."""
        batch = db.newest_batch(conn, conversation_id, now - STEP_MAX_AGE)
        if not batch:
            return []
        db.set_mark(conn, conversation_id, batch[-1].id)
        fired: list[Planned] = []
        for trigger in batch_triggers(batch):
            fired += self.run(conn, trigger, now)
        self._customer_wrote(conn, conversation_id, now)
        return fired

    def event_trigger(self, conn: sqlite3.Connection, event: Event) -> Trigger | None:
        """The rule trigger an events-log entry is, or None (imports, kinds rules ignore)."""
        if event.kind not in FOLLOWED or event.actor in IMPORT_ACTORS:
            return None
        payload = _payload(event)
        on = FOLLOWED[event.kind]
        if event.kind == "channel.health":
            health = payload.get("health")
            channel_id = payload.get("channel_id")
            if health == "down":
                on = "channel.down"
            elif health == "up" and db.previous_health(conn, channel_id, event.id) not in (None, "up"):
                on = "channel.up"
            else:
                return None
            return Trigger(on, None, (), {**payload, "actor": event.actor}, db.chain_of(conn, event.id), channel_id, event.at)
        if event.kind == "conversation.assigned" and not payload.get("assignee"):
            return None  # unassigned
        if event.kind == "conversation.labels":
            added = payload.get("added")
            if not added:
                return None
            payload = {**payload, "label": added[0]}
        if event.conversation_id is None:
            return None
        chain = db.chain_of(conn, event.id)
        if event.actor.startswith("rule:") and event.actor[5:] not in chain:
            chain = (*chain, event.actor[5:])
        return Trigger(on, event.conversation_id, (), {**payload, "actor": event.actor}, chain, None, event.at)

    def follow(self, conn: sqlite3.Connection, now: float, limit: int = 200) -> int:
        """One pass of the follower: act on up to `limit` events after its cursor, in one
        transaction that moves the cursor too. Returns how many events it looked at."""
        cursor = db.start_cursor(conn, FOLLOWER, now)
        events = db.events_after(conn, cursor, limit)
        for event in events:
            self._keep_timers(conn, event, now)
            trigger = self.event_trigger(conn, event)
            if trigger is not None:
                self.run(conn, trigger, now)
        if events:
            db.move_cursor(conn, FOLLOWER, events[-1].id, now)
            if now - self._pruned_at > 3600:
                self._pruned_at = now
                db.prune_firings(conn, now - 86400, events[-1].id)
        return len(events)

    def skip_failed(self, conn: sqlite3.Connection, now: float, reason: str) -> int:
        """Move the follower past the one event it cannot handle, with a `rule.failed` event
        saying why (the rules act on the events after it). Returns 1 (or 0: nothing there)."""
        cursor = db.start_cursor(conn, FOLLOWER, now)
        events = db.events_after(conn, cursor, 1)
        if not events:
            return 0
        db.move_cursor(conn, FOLLOWER, events[0].id, now)
        add_event(
            conn,
            "rule.failed",
            actor="rules",
            conversation_id=events[0].conversation_id,
            payload={"event_id": events[0].id, "kind": events[0].kind, "reason": reason},
            at=now,
        )
        return 1

    # --- timers ----------------------------------------------------------------------------

    def due(self, rule: Rule, since: float) -> float:
        """When a timer rule whose state began at `since` fires (epoch seconds)."""
        if rule.business_time:
            return self.calendars.get(rule.calendar, self.calendars["default"]).add_business(since, rule.after)
        return since + rule.after

    def _put(self, conn: sqlite3.Connection, timer: str, cid: int, since: float, now: float) -> None:
        for rule in self.book.timers(timer):
            timers.schedule(
                conn,
                TIMER_KIND,
                self.due(rule, since),
                now,
                conversation_id=cid,
                subject=rule.name,
                payload={"timer": timer, "since": since},
            )

    def _drop(self, conn: sqlite3.Connection, timer: str, cid: int) -> None:
        for rule in self.book.timers(timer):
            timers.unschedule(conn, TIMER_KIND, conversation_id=cid, subject=rule.name)

    def _customer_wrote(self, conn: sqlite3.Connection, cid: int, now: float) -> None:
        self._drop(conn, "no_customer_reply", cid)
        self._drop(conn, "resolved", cid)
        values = db.conversation_fields(conn, cid) or {}
        if values.get("_waiting_since") is not None:
            self._put(conn, "waiting_for_us", cid, values["_waiting_since"], now)

    def _keep_timers(self, conn: sqlite3.Connection, event: Event, now: float) -> None:
        cid = event.conversation_id
        if cid is None or event.actor in IMPORT_ACTORS or not any(r.timer for r in self.book.rules):
            return
        if event.kind == "message.queued":
            self._drop(conn, "waiting_for_us", cid)
            self._put(conn, "no_customer_reply", cid, event.at, now)
        elif event.kind == "conversation.resolved":
            self._drop(conn, "waiting_for_us", cid)
            self._drop(conn, "no_customer_reply", cid)
            self._put(conn, "resolved", cid, event.at, now)
        elif event.kind in ("conversation.open", "conversation.reopened", "conversation.woke"):
            self._drop(conn, "resolved", cid)

    def timer_since(self, timer: str, values: Mapping[str, Any]) -> float | None:
        """Since when the conversation is in the timer's state (epoch seconds), or None."""
        status = values.get("_status")
        if status == "spam":
            return None  # blocked (store/spam.py): Spam never waits, nor is it answered
        if timer == "waiting_for_us":
            return values.get("_waiting_since") if status in ("open", "pending") else None
        if timer == "resolved":
            return values.get("_resolved_at") if status == "resolved" else None
        last_out, last_in = values.get("_last_out_at"), values.get("_last_inbound_at")
        if status == "resolved" or last_out is None or (last_in is not None and last_in >= last_out):
            return None
        return last_out

    def fire_timer(self, conn: sqlite3.Connection, row: ScheduledRow, now: float) -> list[Planned]:
        """The scheduler's handler of `rules.timer` rows: the rule acts when the conversation
        is still in the state the timer was put for (a reply or a reopening since cancels it)."""
        rule = self.book.rule(row.subject)
        timer = row.payload.get("timer")
        if rule is None or rule.timer != timer or row.conversation_id is None:
            return []
        values = db.conversation_fields(conn, row.conversation_id) or {}
        since = self.timer_since(timer, values)
        if since is None or abs(since - float(row.payload.get("since", -1))) > 1e-6:
            return []
        return self.run(conn, Trigger(f"timer:{timer}", row.conversation_id, (), {"since": since}, (), None, now, rule.name), now)


def answer_body(key: str, variants: list, language: str, customer_name: str, conversation_id: int, channel_kind: str) -> str:
    """Library answer `key` (its `variants`, ArticleRecords) as a reply body: the variant in
    `language`, else the one without a language, else the first; placeholders filled; rendered
    for `channel_kind` (answers/render.py). ActionError when the library has no such answer."""
    from omniconsole.answers.placeholders import fill, first_name
    from omniconsole.answers.render import render

    if not variants:
        raise ActionError(N_("the library has no answer {key}"), key=repr(key))
    record = next((a for a in variants if language and a.language == language), None) or next(
        (a for a in variants if not a.language), variants[0]
    )
    values = {
        "customer.name": customer_name,
        "customer.first_name": first_name(customer_name),
        "conversation.id": conversation_id,
    }
    return render(fill(record.body, values).text, channel_kind).text.strip()


def _payload(event: Event) -> dict:
    try:
        value = json.loads(event.payload or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def batch_triggers(events: Iterable[Event]) -> list[Trigger]:
    """The triggers of one conversation's delivered batch: opened or reopened first, then its
    messages together; the opening's conditions read the messages that opened it too. The
    step and the dry run read history the same way."""
    events = list(events)
    messages = tuple(e.message_id for e in events if e.kind == "message.received" and e.message_id is not None)
    triggers = [
        Trigger(e.kind, e.conversation_id, messages, {"actor": e.actor}, (), None, e.at)
        for e in events
        if e.kind in ("conversation.opened", "conversation.reopened")
    ]
    if messages:
        triggers.append(Trigger("message.received", events[-1].conversation_id, messages, {}, (), None, events[-1].at))
    return triggers


def dry_run(engine: Engine, conn: sqlite3.Connection, since: float, now: float | None = None) -> list[Planned]:
    """What the rules would have done over the history stored since `since` (epoch seconds),
    without doing it: the same triggers and `plan` as the live run, conditions read from the
    history as it stands now. Timers: conversations whose timer would have fired by `now`."""
    now = time.time() if now is None else now
    result: list[Planned] = []
    kinds = (*db.BATCH_KINDS, *FOLLOWED)
    batch: list[Event] = []

    def flush() -> None:
        for trigger in batch_triggers(batch):
            result.extend(engine.plan(conn, trigger, trigger.at))
        batch.clear()

    for event in db.events_between(conn, since, kinds):
        if event.kind in db.BATCH_KINDS:
            if batch and (batch[-1].conversation_id, batch[-1].at) != (event.conversation_id, event.at):
                flush()
            batch.append(event)
            continue
        flush()
        trigger = engine.event_trigger(conn, event)
        if trigger is not None:
            result.extend(engine.plan(conn, trigger, event.at))
    flush()
    timer_rules = [r for r in engine.book.rules if r.timer]
    if timer_rules:
        for cid in db.open_conversations(conn, ("open", "pending", "snoozed", "resolved")):
            values = db.conversation_fields(conn, cid) or {}
            for rule in timer_rules:
                since_state = engine.timer_since(rule.timer, values)
                if since_state is None or since_state < since or engine.due(rule, since_state) > now:
                    continue
                trigger = Trigger(
                    f"timer:{rule.timer}", cid, (), {"since": since_state}, (), None, engine.due(rule, since_state), rule.name
                )
                result.extend(engine.plan(conn, trigger, trigger.at))
    return result
