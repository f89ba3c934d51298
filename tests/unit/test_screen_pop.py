"""The screen-pop policy (core/screen_pop.py): which ring pops which window, and when it must
not switch under an operator who is writing."""

from __future__ import annotations

import json

from omniconsole.core.screen_pop import MAX_AGE, rings_here, screen_pop
from omniconsole.store import Event

NOW = 1_800_000_000.0


def ring(
    event_id: int = 1,
    *,
    conversation: int | None = 7,
    extensions=("101",),
    at: float = NOW - 1,
    kind: str = "call.ringing",
    **payload,
) -> Event:
    body = json.dumps({"extensions": list(extensions), **payload})
    return Event(event_id, at, kind, "core", conversation, 3, None, body)


def test_a_recent_ring_at_the_operators_extension_pops() -> None:
    assert rings_here(ring(), "101", NOW)
    pop = screen_pop([ring(number="+79991234567", name="Иван")], "101", NOW)
    assert pop is not None and (pop.conversation_id, pop.caller, pop.number, pop.switch) == (7, "Иван", "+79991234567", True)


def test_other_extensions_operators_without_one_and_other_events_do_not() -> None:
    assert not rings_here(ring(), "102", NOW)
    assert not rings_here(ring(), None, NOW)
    assert not rings_here(ring(kind="message.received"), "101", NOW)
    assert not rings_here(ring(conversation=None), "101", NOW)
    assert screen_pop([ring()], "102", NOW) is None


def test_a_ring_older_than_a_minute_is_history() -> None:
    assert not rings_here(ring(at=NOW - MAX_AGE - 1), "101", NOW)
    assert rings_here(ring(at=NOW - MAX_AGE + 1), "101", NOW)


def test_a_malformed_payload_is_no_ring() -> None:
    broken = Event(1, NOW, "call.ringing", "core", 7, 3, None, "{not json")
    odd = Event(2, NOW, "call.ringing", "core", 7, 3, None, json.dumps({"extensions": "101"}))
    listed = Event(3, NOW, "call.ringing", "core", 7, 3, None, json.dumps(["101"]))
    assert screen_pop([broken, odd, listed], "101", NOW) is None


def test_the_newest_ring_wins_and_an_unknown_caller_is_said_so() -> None:
    pop = screen_pop([ring(1, conversation=5), ring(2, conversation=9), ring(3, extensions=("102",))], "101", NOW)
    assert pop.conversation_id == 9 and pop.caller == "an unknown number" and pop.number == ""


def test_writing_a_reply_elsewhere_tells_without_switching() -> None:
    assert screen_pop([ring()], "101", NOW, writing_in=4).switch is False
    assert screen_pop([ring()], "101", NOW, writing_in=7).switch is True  # already the caller's
    assert screen_pop([ring()], "101", NOW, writing_in=None).switch is True
