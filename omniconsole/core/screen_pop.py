"""Screen pop: which `call.ringing` event brings the caller's conversation up in an operator's
window, and when it must not switch under them.

The core writes a `call.ringing` event (payload JSON: `extensions`, `number`, `name`) when a
PBX reports a ring. A window pops the conversation for the newest recent ring at its
operator's extension, unless the operator is writing a reply in another conversation: then it
only tells them (switching would send their words to the caller). The window turns the result
into words.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from omniconsole.store import Event

#: A ring older than this (seconds) is history by the time the window sees it (it was busy or
#: suspended for $EDITOR): popping it would throw the operator out of their work for nothing.
MAX_AGE = 60.0


@dataclass(frozen=True, slots=True)
class ScreenPop:
    """A ring for this operator: the call's conversation, who calls (name and number as the
    PBX sent them: untrusted text), and whether the window may switch to it."""

    conversation_id: int
    caller: str
    number: str
    switch: bool


def _payload(event: Event) -> dict:
    try:
        payload = json.loads(event.payload or "{}")
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def rings_here(event: Event, extension: str | None, now: float, max_age: float = MAX_AGE) -> bool:
    """Whether `event` is a `call.ringing` at `extension`, at most `max_age` seconds before
    `now` (epoch seconds), with a conversation to show."""
    if event.kind != "call.ringing" or not extension or event.conversation_id is None:
        return False
    extensions = _payload(event).get("extensions") or []
    if not isinstance(extensions, list):
        return False
    return extension in extensions and event.at > now - max_age


def screen_pop(events: Iterable[Event], extension: str | None, now: float, *, writing_in: int | None = None) -> ScreenPop | None:
    """The pop for the newest ring among `events` at `extension`, or None.

    `writing_in` is the conversation the operator is writing a reply in (or sending one from),
    None when they are not writing: a pop never switches away from a reply in progress."""
    ring = next((e for e in reversed(list(events)) if rings_here(e, extension, now)), None)
    if ring is None:
        return None
    payload = _payload(ring)
    number = str(payload.get("number") or "")
    caller = str(payload.get("name") or number or "an unknown number")
    switch = writing_in is None or writing_in == ring.conversation_id
    return ScreenPop(ring.conversation_id, caller, number, switch)
