"""Automation rules and macros as written in TOML, read and checked at load with one-line errors
that name the rule (issue #19). Pure: no store, no core; `engine.py` matches and acts.

```toml
[[rules]]
name = "labels from keywords"
on = "message.received"           # or a timer: timer = "waiting_for_us", after = "30min"
match = "any"                     # all (default) | any
conditions = [
  { field = "message.body", contains = "refund" },
  { field = "message.body", matches = "(?i)money\\s+back" },
]
actions = [ { add_labels = ["refund"] }, { priority = "high" } ]

[[macros]]
name = "Close politely"
key = "f5"                        # optional: a key in the window
owner = "anna"                    # optional: a personal macro (default: shared)
actions = [ { reply = "thanks-bye" }, { resolve = true } ]
```

Events (`on`): see `EVENTS`. Timers: `timer` one of `TIMERS` with `after` ("30min", "2h",
"7d"), in business time of `calendar` (a `[[calendars]]` name) when `business_time = true`.
Condition operators: `is`, `is_not`, `contains`, `matches` (a Python regular expression),
`in`, `above`, `below`, `has` (a list field such as labels holds the value); fields: see
`FIELDS` (plus `customer.attributes.KEY` and `event.KEY`, the trigger event's payload).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omniconsole.i18n import N_, Np_, english, phrase, render, word

#: Event triggers: the name a rule writes -> what happens.
EVENTS = {
    "message.received": "a customer's message arrives",
    "conversation.opened": "a customer opens a new conversation",
    "conversation.reopened": "a conversation is reopened",
    "conversation.resolved": "a conversation is resolved",
    "conversation.assigned": "a conversation is assigned",
    "label.added": "a label is added to a conversation",
    "sla.warning": "an SLA target nears its due time",
    "sla.breach": "an SLA target is breached",
    "survey.answered": "a customer answers a survey",
    "channel.down": "a channel goes down",
    "channel.up": "a channel comes back up",
}
#: Events without a conversation: only conversation-less actions (notify, webhook) make sense.
CHANNEL_EVENTS = frozenset({"channel.down", "channel.up"})
#: Timers: the state a conversation must stay in for `after`.
TIMERS = {
    "no_customer_reply": "no customer reply",
    "waiting_for_us": "waiting for us",
    "resolved": "resolved",
}
#: Fields a condition may name (besides customer.attributes.KEY and event.KEY).
FIELDS = frozenset(
    {
        "message.body",
        "message.subject",
        "message.language",
        "conversation.id",
        "conversation.status",
        "conversation.priority",
        "conversation.assignee",
        "conversation.queue",
        "conversation.subject",
        "conversation.labels",
        "conversation.message_count",
        "conversation.channels",
        "customer.name",
        "customer.labels",
        "customer.language",
        "channel.kind",
        "channel.name",
        "channel.health",
        "office_hours",
    }
)
OPERATORS = ("is", "is_not", "contains", "matches", "in", "above", "below", "has")
PRIORITIES = {"normal": 0, "high": 1, "urgent": 2}
#: The priorities' names as words of a phrase, translated where drawn (`word("priority", name)`).
PRIORITY_WORDS = (Np_("priority", "normal"), Np_("priority", "high"), Np_("priority", "urgent"))
#: Action keys and what their value must be.
ACTIONS = (
    "reply",
    "note",
    "add_labels",
    "remove_labels",
    "priority",
    "assign",
    "assign_queue",
    "snooze",
    "resolve",
    "reopen",
    "survey",
    "webhook",
    "notify",
)
CONVERSATIONLESS = frozenset({"notify", "webhook"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hours?|d|days?)\s*$", re.I)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400}


class RulesError(ValueError):
    """A rules file that cannot be used; the message is one line naming the file and rule."""


@dataclass(frozen=True)
class Condition:
    """One test of a field: `op` one of OPERATORS against `value`."""

    field: str
    op: str
    value: Any
    pattern: re.Pattern | None = None

    def describe(self) -> str:
        return f"{self.field} {self.op.replace('_', ' ')} {self.value!r}"


@dataclass(frozen=True)
class Action:
    """One thing to do: `kind` one of ACTIONS with its `value`; `operators` for notify."""

    kind: str
    value: Any
    operators: tuple[str, ...] = ()

    def describe(self) -> str:
        """The action in English words, as the events log, the rule's timeline line and tests
        keep it (`said()` is the same in the reader's language)."""
        return english(self.phrase())

    def said(self) -> str:
        """The action in words in the current language (omniconsole.i18n), for a preview drawn
        in the window or printed by the CLI."""
        return render(self.phrase())

    def phrase(self) -> dict:
        """The action as a phrase (`omniconsole.i18n.phrase`): English template and values, so
        a timeline line written by the core is drawn in each operator's language (issue #24)."""
        v = self.value
        match self.kind:
            case "reply":
                return phrase(N_("reply with answer {key}"), key=repr(v))
            case "note":
                return phrase(N_("add a private note {text}"), text=repr(_short(v)))
            case "add_labels":
                return phrase(N_("add labels {labels}") if len(v) > 1 else N_("add label {labels}"), labels=", ".join(v))
            case "remove_labels":
                return phrase(N_("remove labels {labels}") if len(v) > 1 else N_("remove label {labels}"), labels=", ".join(v))
            case "priority":
                name = next(k for k, n in PRIORITIES.items() if n == v)
                return phrase(N_("set priority {priority}"), priority=word("priority", name))
            case "assign":
                return phrase(N_("assign to {login}"), login=v)
            case "assign_queue":
                return phrase(N_("move to queue {queue}"), queue=v)
            case "snooze":
                return phrase(N_("snooze for {duration}"), duration=duration_phrase(v))
            case "resolve":
                return phrase(N_("resolve"))
            case "reopen":
                return phrase(N_("reopen"))
            case "survey":
                return phrase(N_("send a {kind} survey"), kind=v.upper())
            case "webhook":
                return phrase(N_("call webhook {name}"), name=v)
            case "notify":
                who = ", ".join(self.operators) if self.operators else phrase(N_("the assignee (everyone when none)"))
                return phrase(N_("notify {who}: {text}"), who=who, text=repr(_short(v)))
        return phrase(self.kind)


@dataclass(frozen=True)
class Rule:
    """A checked rule: an event (`on`) or a timer (`timer` + `after` seconds), conditions
    joined by `match` ('all'|'any'), and actions in order."""

    name: str
    on: str | None
    timer: str | None
    after: float
    business_time: bool
    calendar: str
    match: str
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]

    @property
    def trigger(self) -> str:
        """The trigger in words."""
        if self.timer:
            clock = " of business time" if self.business_time else ""
            return f"{TIMERS[self.timer]} for {_duration_words(self.after)}{clock}"
        return EVENTS[self.on]


@dataclass(frozen=True)
class Macro:
    """A named list of actions an operator runs on a conversation: shared, or personal to
    `owner`; `key` an optional key binding in the window."""

    name: str
    actions: tuple[Action, ...]
    owner: str | None = None
    key: str | None = None

    def describe(self) -> list[str]:
        """What it will do, one line per action, in the current language (omniconsole.i18n):
        it is called where the preview is drawn or printed."""
        return [a.said() for a in self.actions]


@dataclass(frozen=True)
class RuleBook:
    """Everything a rules file holds; `budget` is the most actions rules may take on one
    conversation per hour."""

    rules: tuple[Rule, ...] = ()
    macros: tuple[Macro, ...] = ()
    budget: int = 20
    path: Path | None = None

    def for_event(self, kind: str) -> list[Rule]:
        return [r for r in self.rules if r.on == kind]

    def timers(self, timer: str) -> list[Rule]:
        return [r for r in self.rules if r.timer == timer]

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def macros_for(self, operator: str) -> list[Macro]:
        """Shared macros and the operator's own, in file order."""
        return [m for m in self.macros if m.owner in (None, operator)]


def _short(text: str, width: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


#: Units of a rule's durations, largest first: (seconds, template).
_DURATION_UNITS = ((86400, N_("{n} d")), (3600, N_("{n} h")), (60, N_("{n} min")))


def duration_phrase(seconds: float) -> dict:
    """ "2 h", "30 min", "7 d", "90 s" as a phrase (the unit translated where drawn)."""
    for size, unit in _DURATION_UNITS:
        if seconds >= size and seconds % size == 0:
            return phrase(unit, n=f"{seconds / size:g}")
    return phrase(N_("{n} s"), n=f"{seconds:g}")


def _duration_words(seconds: float) -> str:
    return english(duration_phrase(seconds))


def parse_duration(value: Any, where: str) -> float:
    """Seconds from "30min", "2h", "7d", "90s" (or a number of seconds); RulesError otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(str(value)) if isinstance(value, str) else None
    if not match or float(match[1]) <= 0:
        raise RulesError(f'{where}: {value!r} is not a duration; write one such as "30min", "2h" or "7d"')
    return float(match[1]) * _UNITS[match[2].lower()]


def _condition(raw: Any, where: str) -> Condition:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("field"), str):
        raise RulesError(f'{where}: a condition is a table such as {{ field = "message.body", contains = "refund" }}')
    name = raw["field"]
    if name not in FIELDS and not name.startswith(("customer.attributes.", "event.")):
        raise RulesError(
            f"{where}: unknown field {name!r}; fields are {', '.join(sorted(FIELDS))}, customer.attributes.KEY, event.KEY"
        )
    ops = [k for k in raw if k != "field"]
    if len(ops) != 1 or ops[0] not in OPERATORS:
        raise RulesError(f"{where}: condition on {name} needs exactly one of {', '.join(OPERATORS)}")
    op, value = ops[0], raw[ops[0]]
    pattern = None
    if op == "matches":
        try:
            pattern = re.compile(str(value))
        except re.error as exc:
            raise RulesError(f"{where}: {value!r} is not a regular expression: {exc}") from None
    elif op == "in" and not isinstance(value, list):
        raise RulesError(f'{where}: `in` takes a list, e.g. in = ["telegram", "vk"]')
    elif op in ("above", "below") and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise RulesError(f"{where}: `{op}` takes a number")
    if name == "conversation.priority" and op in ("is", "is_not") and isinstance(value, str):
        if value not in PRIORITIES:
            raise RulesError(f"{where}: priority is one of {', '.join(PRIORITIES)}")
        value = PRIORITIES[value]
    return Condition(name, op, value, pattern)


def _action(raw: Any, where: str) -> Action:
    if not isinstance(raw, Mapping):
        raise RulesError(f'{where}: an action is a table such as {{ add_labels = ["refund"] }}')
    keys = [k for k in raw if k != "operators"]
    if len(keys) != 1 or keys[0] not in ACTIONS:
        raise RulesError(
            f"{where}: an action needs exactly one of {', '.join(ACTIONS)} (got {', '.join(map(str, keys)) or 'none'})"
        )
    kind, value = keys[0], raw[keys[0]]
    if "operators" in raw and kind != "notify":
        raise RulesError(f"{where}: `operators` goes only with notify")
    here = f"{where}: {kind}"
    if kind in ("reply", "note", "assign", "assign_queue", "webhook", "notify"):
        if not isinstance(value, str) or not value.strip():
            raise RulesError(f"{here} needs text")
        value = value.strip()
    elif kind in ("add_labels", "remove_labels"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise RulesError(f'{here} needs a list of labels, e.g. ["refund"]')
        value = tuple(v.strip() for v in value)
    elif kind == "priority":
        if value in PRIORITIES:
            value = PRIORITIES[value]
        elif value not in (0, 1, 2) or isinstance(value, bool):
            raise RulesError(f"{here} is one of {', '.join(PRIORITIES)} (or 0, 1, 2)")
    elif kind == "snooze":
        value = parse_duration(value, here)
    elif kind in ("resolve", "reopen"):
        if value is not True:
            raise RulesError(f"{here} = true")
    elif kind == "survey":
        if value not in ("csat", "nps"):
            raise RulesError(f'{here} is "csat" or "nps"')
    operators = raw.get("operators", [])
    if not isinstance(operators, list) or not all(isinstance(o, str) for o in operators):
        raise RulesError(f"{where}: operators must be a list of logins")
    return Action(kind, value, tuple(operators))


def _actions(raw: Any, where: str) -> tuple[Action, ...]:
    if not isinstance(raw, list) or not raw:
        raise RulesError(f"{where}: actions must be a non-empty list of tables")
    return tuple(_action(a, where) for a in raw)


_RULE_KEYS = {"name", "on", "timer", "after", "business_time", "calendar", "match", "conditions", "actions", "enabled"}


def parse_rule(raw: Any, number: int, where: str, calendars: set[str]) -> Rule | None:
    """One `[[rules]]` table, checked; None when `enabled = false`."""
    if not isinstance(raw, Mapping):
        raise RulesError(f"{where}: rule #{number} must be a [[rules]] table")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RulesError(f"{where}: rule #{number} needs a name")
    here = f"{where}: rule {name!r}"
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise RulesError(f"{here}: unknown key {unknown[0]!r}; the keys are {', '.join(sorted(_RULE_KEYS))}")
    on, timer = raw.get("on"), raw.get("timer")
    if (on is None) == (timer is None):
        raise RulesError(f"{here}: give either on = EVENT or timer = KIND with after = DURATION")
    after = 0.0
    if on is not None and on not in EVENTS:
        raise RulesError(f"{here}: unknown event {on!r}; events are {', '.join(EVENTS)}")
    if timer is not None:
        if timer not in TIMERS:
            raise RulesError(f"{here}: unknown timer {timer!r}; timers are {', '.join(TIMERS)}")
        if "after" not in raw:
            raise RulesError(f'{here}: a timer needs after = DURATION, e.g. "2h"')
        after = parse_duration(raw["after"], here)
    elif "after" in raw:
        raise RulesError(f"{here}: after goes with a timer, not with on = {on!r}")
    business = raw.get("business_time", False)
    if not isinstance(business, bool):
        raise RulesError(f"{here}: business_time must be true or false")
    calendar = raw.get("calendar", "default")
    if calendar not in calendars:
        raise RulesError(f"{here}: calendar {calendar!r} is not defined in [[calendars]]")
    match = raw.get("match", "all")
    if match not in ("all", "any"):
        raise RulesError(f'{here}: match must be "all" or "any"')
    conditions = raw.get("conditions", [])
    if not isinstance(conditions, list):
        raise RulesError(f"{here}: conditions must be a list of tables")
    parsed = tuple(_condition(c, here) for c in conditions)
    actions = _actions(raw.get("actions"), here)
    if on in CHANNEL_EVENTS:
        bad = [a.kind for a in actions if a.kind not in CONVERSATIONLESS]
        if bad:
            raise RulesError(f"{here}: {on} has no conversation, so only notify and webhook can follow it (not {bad[0]})")
        if any(c.field.startswith(("conversation.", "customer.", "message.")) for c in parsed):
            raise RulesError(f"{here}: {on} has no conversation; its conditions may name channel.* and event.* only")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RulesError(f"{here}: enabled must be true or false")
    if not enabled:
        return None
    return Rule(name.strip(), on, timer, after, business, calendar, match, parsed, actions)


def parse_macro(raw: Any, number: int, where: str) -> Macro:
    """One `[[macros]]` table, checked."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise RulesError(f"{where}: macro #{number} needs a name")
    here = f"{where}: macro {raw['name']!r}"
    unknown = sorted(set(raw) - {"name", "actions", "owner", "key"})
    if unknown:
        raise RulesError(f"{here}: unknown key {unknown[0]!r}; the keys are actions, key, name, owner")
    actions = _actions(raw.get("actions"), here)
    for key in ("owner", "key"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise RulesError(f"{here}: {key} must be text")
    return Macro(raw["name"].strip(), actions, raw.get("owner"), raw.get("key"))


def parse_rulebook(raw: Mapping[str, Any], where: str = "rules", calendars: set[str] = frozenset({"default"})) -> RuleBook:
    """A RuleBook from a parsed TOML table (`[[rules]]`, `[[macros]]`, optional `budget`)."""
    unknown = sorted(set(raw) - {"rules", "macros", "budget"})
    if unknown:
        raise RulesError(f"{where}: unknown key {unknown[0]!r}; a rules file holds [[rules]], [[macros]] and budget")
    budget = raw.get("budget", 20)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise RulesError(f"{where}: budget must be a whole number of actions per conversation per hour (1 or more)")
    rules: list[Rule] = []
    for number, table in enumerate(_tables(raw.get("rules", []), where, "rules"), start=1):
        rule = parse_rule(table, number, where, set(calendars) | {"default"})
        if rule is None:
            continue
        if any(r.name == rule.name for r in rules):
            raise RulesError(f"{where}: rule {rule.name!r} is defined twice; names must be unique")
        rules.append(rule)
    macros: list[Macro] = []
    for number, table in enumerate(_tables(raw.get("macros", []), where, "macros"), start=1):
        macro = parse_macro(table, number, where)
        if any(m.name == macro.name and m.owner == macro.owner for m in macros):
            raise RulesError(f"{where}: macro {macro.name!r} is defined twice; names must be unique")
        macros.append(macro)
    return RuleBook(tuple(rules), tuple(macros), budget)


def _tables(value: Any, where: str, name: str) -> list:
    if not isinstance(value, list):
        raise RulesError(f"{where}: {name} must be written as [[{name}]] tables")
    return value


def load_rules(path: Path, calendars: set[str] = frozenset({"default"})) -> RuleBook:
    """Read and check a rules file; RulesError with one line naming the file and the rule."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(f"rules file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"cannot read rules file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"rules file {path} is not valid TOML: {exc}") from None
    book = parse_rulebook(raw, str(path), calendars)
    return RuleBook(book.rules, book.macros, book.budget, path)


@dataclass(frozen=True)
class AutomationSettings:
    """The `[automation]` table: the rules file (None: no rules) and its book, read at load."""

    rules_path: Path | None = None
    book: RuleBook = field(default_factory=RuleBook)
