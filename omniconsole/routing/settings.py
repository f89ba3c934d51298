"""Routing's settings: `[routing]`, `[[queues]]` and `[[calendars]]` of the config, checked at load
with one-line errors that name the table. Pure (no store, no core).

```toml
[routing]
default_capacity = 5            # an operator whose capacity is 0 (never set) gets this
weights = { phone = 5, webchat = 1, telegram = 1, email = 0.5 }   # capacity units per conversation
pending_counts = true           # conversations waiting on the customer count toward load
skills = ["ru", "en", "vip"]    # words that are skills: a conversation needs those of its
                                # language, labels and channel kind that appear here
sticky_minutes = 1440           # a returning customer goes back to their last operator (0: off)
return_minutes = 15             # business minutes for the assignee to answer, else back to the queue (0: off)
offline_grace_minutes = 5       # an operator offline this long loses their unanswered conversations
return_on_offline = true
away_after_minutes = 10         # the window sets away after this idle time (0: never)
heartbeat_seconds = 15          # a window's heartbeat; three missed ones mean its process died
position_text = "You are number {position} in the queue; expected wait about {wait} min."
position_channels = ["webchat", "telegram", "vk", "whatsapp", "api"]

[[queues]]
name = "VIP"
labels = ["vip"]                # which conversations: channels, labels, languages, attributes
operators = ["anna"]            # which operators: logins and/or teams (none: everyone)
teams = ["senior"]
policy = "least_loaded"         # manual | round_robin | least_loaded
calendar = "support"
skills = ["vip"]                # skills every conversation of this queue needs
```
The first matching queue takes a conversation; a queue named `default` (added when absent,
least_loaded, everyone) takes the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omniconsole.calendar import Calendar, CalendarError, calendars_from_settings

POLICIES = ("manual", "round_robin", "least_loaded")
DEFAULT_WEIGHTS = {"phone": 5.0, "email": 0.5}


class RoutingSettingsError(ValueError):
    """A routing setting that cannot be used; the message names the table and the key."""


@dataclass(frozen=True)
class QueueSettings:
    """One `[[queues]]` table (see the module docstring)."""

    name: str
    policy: str = "least_loaded"
    channels: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)
    operators: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    calendar: str = "default"
    skills: tuple[str, ...] = ()

    def takes_operator(self, login: str, teams: tuple[str, ...]) -> bool:
        """Whether the operator works this queue (a queue naming nobody takes everyone)."""
        if not self.operators and not self.teams:
            return True
        return login in self.operators or any(t in self.teams for t in teams)


@dataclass(frozen=True)
class RoutingSettings:
    """`[routing]` with its queues and calendars (see the module docstring); minutes and
    seconds as the keys say."""

    queues: tuple[QueueSettings, ...] = (QueueSettings("default"),)
    calendars: Mapping[str, Calendar] = field(default_factory=lambda: {"default": Calendar()})
    default_capacity: int = 5
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    pending_counts: bool = True
    skills: frozenset[str] = frozenset()
    sticky_minutes: float = 1440.0
    return_minutes: float = 0.0
    offline_grace_minutes: float = 5.0
    return_on_offline: bool = True
    away_after_minutes: float = 10.0
    heartbeat_seconds: float = 15.0
    position_text: str = ""
    position_channels: frozenset[str] = frozenset({"webchat", "telegram", "vk", "whatsapp", "api"})

    def queue(self, name: str | None) -> QueueSettings:
        """The queue called `name`, else the default one."""
        for queue in self.queues:
            if queue.name == name:
                return queue
        return self.queues[-1]

    def calendar(self, queue: QueueSettings) -> Calendar:
        return self.calendars.get(queue.calendar) or self.calendars["default"]

    def weight(self, channel_kind: str) -> float:
        """Capacity units one conversation on this channel kind takes (1 unless configured)."""
        return float(self.weights.get(channel_kind, 1.0))

    def load_statuses(self) -> tuple[str, ...]:
        return ("open", "pending") if self.pending_counts else ("open",)


def _strings(table: Mapping[str, Any], key: str, where: str, lower: bool = False) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RoutingSettingsError(f'{where}: {key} must be a list of text such as ["a", "b"]')
    return tuple(v.strip().lower() if lower else v.strip() for v in value if v.strip())


def _number(table: Mapping[str, Any], key: str, default: float, where: str, low: float = 0.0) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise RoutingSettingsError(f"{where}: {key} must be a number of at least {low:g} (got {value!r})")
    return float(value)


_ROUTING_KEYS = {
    "default_capacity",
    "weights",
    "pending_counts",
    "skills",
    "sticky_minutes",
    "return_minutes",
    "offline_grace_minutes",
    "return_on_offline",
    "away_after_minutes",
    "heartbeat_seconds",
    "position_text",
    "position_channels",
}
_QUEUE_KEYS = {"name", "policy", "channels", "labels", "languages", "attributes", "operators", "teams", "calendar", "skills"}


def parse_routing(routing: Mapping[str, Any], queues: Any, calendars: Any, base: Path | None = None) -> RoutingSettings:
    """RoutingSettings from the raw `[routing]` table and the `[[queues]]` and `[[calendars]]`
    lists; RoutingSettingsError in words when anything is malformed."""
    where = "[routing]"
    unknown = sorted(set(routing) - _ROUTING_KEYS)
    if unknown:
        raise RoutingSettingsError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_ROUTING_KEYS))})")
    try:
        cals = calendars_from_settings(calendars or [], base)
    except CalendarError as exc:
        raise RoutingSettingsError(f"[[calendars]]: {exc}") from None
    weights = dict(DEFAULT_WEIGHTS)
    raw_weights = routing.get("weights", {})
    if not isinstance(raw_weights, Mapping):
        raise RoutingSettingsError(f"{where}: weights must be a table such as {{ phone = 5, email = 0.5 }}")
    for kind in raw_weights:
        weights[str(kind)] = _number(raw_weights, kind, 1.0, f"{where} weights")
    if not isinstance(queues or [], list):
        raise RoutingSettingsError("queues must be written as [[queues]] tables")
    parsed: list[QueueSettings] = []
    for number, table in enumerate(queues or [], start=1):
        qwhere = f"[[queues]] #{number}"
        if not isinstance(table, Mapping) or not isinstance(table.get("name"), str) or not table["name"].strip():
            raise RoutingSettingsError(f"{qwhere}: every queue needs a name")
        qwhere = f"queue {table['name']!r}"
        unknown = sorted(set(table) - _QUEUE_KEYS)
        if unknown:
            raise RoutingSettingsError(f"{qwhere}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_QUEUE_KEYS))})")
        policy = table.get("policy", "least_loaded")
        if policy not in POLICIES:
            raise RoutingSettingsError(f"{qwhere}: policy must be one of {', '.join(POLICIES)} (got {policy!r})")
        calendar = str(table.get("calendar", "default"))
        if calendar not in cals:
            raise RoutingSettingsError(f"{qwhere}: calendar {calendar!r} is not defined in [[calendars]]")
        attributes = table.get("attributes", {})
        if not isinstance(attributes, Mapping):
            raise RoutingSettingsError(f'{qwhere}: attributes must be a table such as {{ tier = "gold" }}')
        if any(q.name == table["name"] for q in parsed):
            raise RoutingSettingsError(f"{qwhere} is defined twice")
        parsed.append(
            QueueSettings(
                name=table["name"].strip(),
                policy=policy,
                channels=_strings(table, "channels", qwhere),
                labels=_strings(table, "labels", qwhere),
                languages=_strings(table, "languages", qwhere, lower=True),
                attributes={str(k): str(v) for k, v in attributes.items()},
                operators=_strings(table, "operators", qwhere),
                teams=_strings(table, "teams", qwhere),
                calendar=calendar,
                skills=_strings(table, "skills", qwhere, lower=True),
            )
        )
    defaults = [q for q in parsed if q.name == "default"]
    parsed = [q for q in parsed if q.name != "default"] + (defaults or [QueueSettings("default")])
    text = routing.get("position_text", "")
    if not isinstance(text, str):
        raise RoutingSettingsError(f"{where}: position_text must be text")
    try:
        text.format(position=1, wait=1, queue="q")
    except (KeyError, IndexError, ValueError) as exc:
        raise RoutingSettingsError(f"{where}: position_text may use {{position}}, {{wait}} and {{queue}} only ({exc})") from None
    return RoutingSettings(
        queues=tuple(parsed),
        calendars=cals,
        default_capacity=int(_number(routing, "default_capacity", 5, where)),
        weights=weights,
        pending_counts=bool(routing.get("pending_counts", True)),
        skills=frozenset(_strings(routing, "skills", where, lower=True)),
        sticky_minutes=_number(routing, "sticky_minutes", 1440, where),
        return_minutes=_number(routing, "return_minutes", 0, where),
        offline_grace_minutes=_number(routing, "offline_grace_minutes", 5, where),
        return_on_offline=bool(routing.get("return_on_offline", True)),
        away_after_minutes=_number(routing, "away_after_minutes", 10, where),
        heartbeat_seconds=_number(routing, "heartbeat_seconds", 15, where, low=0.05),
        position_text=text,
        position_channels=frozenset(_strings(routing, "position_channels", where))
        if "position_channels" in routing
        else RoutingSettings.position_channels,
    )
