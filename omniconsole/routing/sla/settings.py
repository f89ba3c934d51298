"""`[[sla]]` policies of the config, checked at load with one-line errors that name the policy.
Pure (no store, no core).

```toml
[[sla]]
name = "VIP"
# Conditions (all that are given must hold; none: every conversation). The first matching
# policy applies; it is chosen again when the priority, labels or queue change.
channels = ["email", "telegram"]        # channel kinds or names of the latest message
priorities = ["high", "urgent"]         # normal | high | urgent (or 0, 1, 2)
labels = ["vip"]                        # any of these conversation or customer labels
queues = ["VIP"]                        # the routing queue that holds it
attributes = { tier = "gold" }          # customer attributes, all equal
# Targets in minutes (0 or absent: no such target), counted in the calendar's open hours
# ([[calendars]]) or, with calendar = "wall-clock" (the default), around the clock.
calendar = "support"
first_response_minutes = 30
next_response_minutes = 60
resolution_minutes = 1440
update_minutes = 0                       # a human reply at least this often until resolved
pause_on = ["snoozed", "pending", "resolved"]   # the clocks stop while the conversation is so
warn_at = [0.75, 0.9]                    # shares of a target that record `sla.warning`
# The escalation ladder: at a warning share or at 1.0 (the breach), these steps, each an event.
escalation = [
  { at = 0.75, do = ["notify_assignee"] },
  { at = 1.0, do = ["notify_assignee", "return_to_queue", "raise_priority", "notify_admins"] },
]
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omniconsole.calendar import Calendar
from omniconsole.i18n import N_

TARGETS = ("first_response", "next_response", "resolution", "update")
#: How a target is named in timeline lines and notifications.
TARGET_WORDS = {
    "first_response": N_("first response"),
    "next_response": N_("next response"),
    "resolution": N_("resolution"),
    "update": N_("update"),
}
PAUSES = ("snoozed", "pending", "resolved")
STEPS = ("notify_assignee", "return_to_queue", "raise_priority", "notify_admins")
PRIORITY_NAMES = {"normal": 0, "high": 1, "urgent": 2}
WALL_CLOCK = "wall-clock"
DEFAULT_WARN_AT = (0.75, 0.9)


class SlaSettingsError(ValueError):
    """An `[[sla]]` setting that cannot be used; the message names the policy and the key."""


@dataclass(frozen=True)
class SlaPolicy:
    """One `[[sla]]` table (see the module docstring). `targets` maps a target name to its
    length in seconds (of the calendar's open hours; wall-clock seconds when `calendar` is
    None); `escalation` is `((share, (step, ...)), ...)` in rising shares."""

    name: str
    targets: Mapping[str, float]
    calendar: Calendar | None = None
    calendar_name: str = WALL_CLOCK
    channels: tuple[str, ...] = ()
    priorities: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)
    pause_on: frozenset[str] = frozenset(PAUSES)
    warn_at: tuple[float, ...] = DEFAULT_WARN_AT
    escalation: tuple[tuple[float, tuple[str, ...]], ...] = ()

    def shares(self) -> tuple[float, ...]:
        """Every share that records an event, rising: the warnings, then 1.0 (the breach)."""
        return (*self.warn_at, 1.0)

    def steps_at(self, share: float) -> tuple[str, ...]:
        """The escalation steps the ladder takes when a target reaches `share`."""
        return next((steps for at, steps in self.escalation if abs(at - share) < 1e-9), ())


def _strings(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SlaSettingsError(f'{where}: {key} must be a list of text such as ["a", "b"]')
    return tuple(v.strip() for v in value if v.strip())


def _priorities(table: Mapping[str, Any], where: str) -> tuple[int, ...]:
    value = table.get("priorities", [])
    if not isinstance(value, list):
        value = [value]
    out = []
    for item in value:
        if isinstance(item, str) and item.strip().lower() in PRIORITY_NAMES:
            out.append(PRIORITY_NAMES[item.strip().lower()])
        elif isinstance(item, int) and not isinstance(item, bool) and item in PRIORITY_NAMES.values():
            out.append(item)
        else:
            raise SlaSettingsError(f"{where}: priorities must name normal, high or urgent (got {item!r})")
    return tuple(sorted(set(out)))


def _share(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise SlaSettingsError(f"{where}: {key} must be shares between 0 and 1 such as 0.75 (got {value!r})")
    return float(value)


_KEYS = {
    "name",
    "channels",
    "priorities",
    "labels",
    "queues",
    "attributes",
    "calendar",
    "pause_on",
    "warn_at",
    "escalation",
    *(f"{t}_minutes" for t in TARGETS),
}


def parse_policy(table: Any, number: int, calendars: Mapping[str, Calendar]) -> SlaPolicy:
    """One `[[sla]]` table (the `number`th, for errors before its name is known)."""
    if not isinstance(table, Mapping) or not isinstance(table.get("name"), str) or not table["name"].strip():
        raise SlaSettingsError(f"[[sla]] #{number}: every policy needs a name")
    name = table["name"].strip()
    where = f"SLA policy {name!r}"
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise SlaSettingsError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})")
    targets: dict[str, float] = {}
    for target in TARGETS:
        value = table.get(f"{target}_minutes", 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise SlaSettingsError(f"{where}: {target}_minutes must be a number of minutes, 0 or more (got {value!r})")
        if value > 0:
            targets[target] = float(value) * 60
    if not targets:
        raise SlaSettingsError(f"{where}: give at least one target, e.g. first_response_minutes = 30")
    calendar_name = str(table.get("calendar", WALL_CLOCK)).strip() or WALL_CLOCK
    calendar = None
    if calendar_name != WALL_CLOCK:
        if calendar_name not in calendars:
            raise SlaSettingsError(f'{where}: calendar {calendar_name!r} is not defined in [[calendars]] (or write "wall-clock")')
        calendar = calendars[calendar_name]
    pause_on = _strings(table, "pause_on", where) if "pause_on" in table else PAUSES
    wrong = [p for p in pause_on if p not in PAUSES]
    if wrong:
        raise SlaSettingsError(f"{where}: pause_on may name {', '.join(PAUSES)} (got {wrong[0]!r})")
    raw_warn = table.get("warn_at", list(DEFAULT_WARN_AT))
    if not isinstance(raw_warn, list):
        raise SlaSettingsError(f"{where}: warn_at must be a list of shares such as [0.75, 0.9]")
    warn_at = tuple(sorted({_share(v, "warn_at", where) for v in raw_warn} - {1.0}))
    shares = (*warn_at, 1.0)
    attributes = table.get("attributes", {})
    if not isinstance(attributes, Mapping):
        raise SlaSettingsError(f'{where}: attributes must be a table such as {{ tier = "gold" }}')
    escalation: dict[float, tuple[str, ...]] = {}
    raw_ladder = table.get("escalation")
    if raw_ladder is None:
        ladder: list[Any] = []
        if warn_at:
            ladder.append({"at": warn_at[0], "do": ["notify_assignee"]})
        ladder.append({"at": 1.0, "do": ["notify_assignee", "notify_admins"]})
    elif isinstance(raw_ladder, list):
        ladder = raw_ladder
    else:
        raise SlaSettingsError(f'{where}: escalation must be a list such as [{{ at = 1.0, do = ["notify_admins"] }}]')
    for rung in ladder:
        if not isinstance(rung, Mapping) or set(rung) - {"at", "do"} or "at" not in rung:
            raise SlaSettingsError(f'{where}: each escalation step is {{ at = 0.9, do = ["notify_assignee"] }}')
        at = _share(rung["at"], "escalation at", where)
        if not any(abs(at - s) < 1e-9 for s in shares):
            raise SlaSettingsError(f"{where}: escalation at {at:g} is neither a warn_at share nor 1.0 (the breach)")
        steps = _strings(rung, "do", where)
        bad = [s for s in steps if s not in STEPS]
        if bad:
            raise SlaSettingsError(f"{where}: escalation step {bad[0]!r} is not one of {', '.join(STEPS)}")
        escalation[at] = tuple(dict.fromkeys(escalation.get(at, ()) + steps))
    return SlaPolicy(
        name=name,
        targets=targets,
        calendar=calendar,
        calendar_name=calendar_name,
        channels=_strings(table, "channels", where),
        priorities=_priorities(table, where),
        labels=_strings(table, "labels", where),
        queues=_strings(table, "queues", where),
        attributes={str(k): str(v) for k, v in attributes.items()},
        pause_on=frozenset(pause_on),
        warn_at=warn_at,
        escalation=tuple(sorted(escalation.items())),
    )


def parse_sla(tables: Any, calendars: Mapping[str, Calendar]) -> tuple[SlaPolicy, ...]:
    """The `[[sla]]` list as policies in the config's order; SlaSettingsError in words (one
    line naming the policy) when anything is malformed or a name repeats."""
    if not tables:
        return ()
    if not isinstance(tables, list):
        raise SlaSettingsError("SLA policies must be written as [[sla]] tables")
    policies: list[SlaPolicy] = []
    for number, table in enumerate(tables, start=1):
        policy = parse_policy(table, number, calendars)
        if any(p.name == policy.name for p in policies):
            raise SlaSettingsError(f"SLA policy {policy.name!r} is defined twice")
        policies.append(policy)
    return tuple(policies)
