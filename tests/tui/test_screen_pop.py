"""Screen pop and calls in the timeline: a ringing call, written into the store as the core
writes it, opens the caller's conversation in the window of the operator whose extension
rings, and in nobody else's."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from connectors.telephony import call_event
from omniconsole.core.ingest import Ingestor
from omniconsole.store import Operator, Store, TimelineEntry
from omniconsole.tui.app import OmniApp
from omniconsole.tui.widgets.timeline import entry_text
from tests.conftest import HOSTILE_TEXTS
from tests.tui.conftest import NOW
from tests.waiting import eventually

IVAN_PHONE = "+79991234567"


async def ring(
    shop, *, call_id: str = "c-1", extension: str | list[str] = "101", number: str = IVAN_PHONE, event: str = "ringing", **fields
) -> int:
    """What the core does with a PBX's event: ingest it on a telephony channel. Returns the
    call's conversation."""
    settings, ids = shop
    store = await Store.open(settings.database)
    try:
        channel = await store.ensure_channel("telephony", "Phone")
        ingestor = Ingestor(store, settings.data_dir)
        payload = {
            "event": event,
            "call_id": call_id,
            "from": number,
            "extension": extension,
            "at": datetime.now(UTC).isoformat(),
            **fields,
        }
        result = await ingestor.ingest(channel, "telephony", [call_event(payload)], None)
        return result.receipts[0][2]
    finally:
        await store.close()


async def give_extensions(shop) -> None:
    settings, ids = shop
    store = await Store.open(settings.database)
    try:
        await store.add_operator("alice", "Alice", "admin", extension="101")
        await store.add_operator("bob", "Bob", "agent", extension="102")
        # Ivan's number is known: he gave it in a chat.
        await store.add_identity(ids["ivan_customer"], "phone", IVAN_PHONE, "alice")
    finally:
        await store.close()


def window(shop, login: str, extension: str | None) -> OmniApp:
    settings, _ = shop
    operator = Operator(login, login.capitalize(), "admin" if login == "alice" else "agent", extension=extension)
    return OmniApp(settings, operator, clock=lambda: NOW, run_core=False)


async def test_a_ringing_call_opens_the_callers_conversation_at_that_extension_only(shop) -> None:
    await give_extensions(shop)
    ids = shop[1]
    alice, bob = window(shop, "alice", "101"), window(shop, "bob", "102")
    async with alice.run_test(size=(160, 48)) as alice_pilot, bob.run_test(size=(160, 48)) as bob_pilot:
        await alice.main.inbox_ready.wait()
        await bob.main.inbox_ready.wait()
        await bob_pilot.press("j", "enter")  # bob is working on something
        await eventually(lambda: bob.main.opened is not None)
        bob_was_on = bob.main.opened
        await eventually(lambda: alice.main.opened is not None)  # previewing the top of the inbox
        assert alice.main.opened != ids["ivan"]

        conversation = await ring(shop)
        assert conversation == ids["ivan"]  # the caller's open conversation
        await eventually(lambda: alice.main.opened == ids["ivan"])
        await eventually(lambda: any("Incoming call from Иван Петров" in str(n.message) for n in alice._notifications))
        assert alice.main.query_one("#customer").display  # the customer card is shown with it
        call = [e for e in alice.main.timeline.entries if "call" in e.flags]
        assert len(call) == 1 and call[0].body.endswith("ringing")
        # The call rang alice's extension: bob stays where he was and hears nothing of it.
        await bob_pilot.pause(0.5)
        assert bob.main.opened == bob_was_on
        assert not any("Incoming call" in str(n.message) for n in bob._notifications)
        await alice_pilot.pause(0.05)


async def test_a_window_with_a_reply_in_progress_is_told_not_switched(shop) -> None:
    await give_extensions(shop)
    ids = shop[1]
    bob = window(shop, "bob", "102")
    async with bob.run_test(size=(160, 48)) as pilot:
        await bob.main.inbox_ready.wait()
        await bob.main.open_conversation(ids["emma"])
        bob.main.composer.text = "We have refunded"
        await ring(shop, call_id="c-2", extension=["101", "102"])  # a ring group: both phones ring
        await eventually(lambda: any("Incoming call" in str(n.message) for n in bob._notifications))
        assert bob.main.opened == ids["emma"] and bob.main.composer.text == "We have refunded"
        [note] = [n for n in bob._notifications if "Incoming call" in str(n.message)]
        assert f"conversation #{ids['ivan']}" in str(note.message) and "writing a reply" in str(note.message)
        await pilot.pause(0.05)


async def test_a_missed_call_from_a_stranger_opens_an_unassigned_conversation_nobody_is_popped_for(shop) -> None:
    await give_extensions(shop)
    alice = window(shop, "alice", "101")
    async with alice.run_test(size=(160, 48)) as pilot:
        await alice.main.inbox_ready.wait()
        await eventually(lambda: alice.main.opened is not None)
        was_on, before = alice.main.opened, alice.main.inbox.count
        conversation = await ring(shop, call_id="m-1", event="missed", number="+447700900123", name="[b]Olga[/b]")
        await eventually(lambda: alice.main.inbox.count == before + 1)
        await pilot.pause(0.3)
        assert alice.main.opened == was_on != conversation  # a missed call pops nobody: it waits in the inbox
        assert not any("Incoming call" in str(n.message) for n in alice._notifications)
        store = await Store.open(shop[0].database)
        try:
            conv = await store.conversation(conversation)
            assert conv.assignee is None and conv.waiting_since is not None and conv.status == "open"
        finally:
            await store.close()


def call_entry(call: dict, flags=("call",)) -> TimelineEntry:
    return TimelineEntry(
        id=1,
        conversation_id=1,
        customer_id=1,
        direction="event",
        author="",
        body="summary",
        subject="",
        channel_id=1,
        channel_kind="telephony",
        channel_name="Phone",
        created_at=NOW - 60,
        edited_at=None,
        state="received",
        error="",
        attempts=0,
        external_id="call:1",
        reply_to_external_id=None,
        flags=flags,
        meta=json.dumps({"call": call}),
    )


def test_a_call_is_drawn_with_direction_outcome_duration_recording_and_note() -> None:
    answered = entry_text(
        call_entry(
            {
                "direction": "in",
                "from": IVAN_PHONE,
                "outcome": "answered",
                "answered": True,
                "duration": 125,
                "answered_by": ["101"],
                "recording_url": "https://pbx/rec/1.mp3",
                "note": "wants a refund",
            }
        ),
        now=NOW,
    )
    assert answered.plain.splitlines() == [
        f"📞 Incoming call from {IVAN_PHONE}  07:59",
        "answered  ⏱ 2:05  ext 101",
        "▶ recording https://pbx/rec/1.mp3",
        "wants a refund",
    ]
    missed = entry_text(call_entry({"direction": "in", "from": IVAN_PHONE, "outcome": "missed", "final": True}), now=NOW)
    assert missed.plain.splitlines()[1] == "missed: call back"
    outgoing = entry_text(call_entry({"direction": "out", "to": IVAN_PHONE, "outcome": "no answer", "final": True}), now=NOW)
    assert outgoing.plain.startswith(f"📞 Outgoing call to {IVAN_PHONE}")
    # What a PBX sent is drawn literally: no markup runs, no escape reaches the terminal.
    for hostile in HOSTILE_TEXTS[:9]:
        text = entry_text(call_entry({"direction": "in", "from": hostile, "outcome": "ringing", "note": hostile}), now=NOW)
        assert "\x1b" not in text.plain and "\x07" not in text.plain
        assert all(not span.style or "click" not in str(span.style) for span in text.spans)
    assert (
        "[@click=app.quit]click me[/]"
        in entry_text(call_entry({"direction": "in", "from": "1", "outcome": "ringing", "note": HOSTILE_TEXTS[3]}), now=NOW).plain
    )


async def test_a_note_written_on_a_selected_call_stays_on_the_call(shop) -> None:
    """n with a call selected in the timeline writes the operator's note onto that call's entry
    (drawn with it, kept when later PBX events update the call); elsewhere n is a plain note."""
    await give_extensions(shop)
    conversation = await ring(shop, call_id="n-1", event="answered")
    app = window(shop, "alice", "101")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.main
        await eventually(lambda: screen.opened is not None)
        await screen.open_conversation(conversation)
        screen.timeline.focus()
        await pilot.pause(0.2)
        timeline = screen.timeline
        for _ in range(40):
            if timeline.selected is not None and "call" in timeline.selected.flags:
                break
            await pilot.press("k")
        call_id = timeline.selected.id
        await pilot.press("n", *"обещал перезвонить [b]", "enter")
        await pilot.pause(0.3)
        [call] = [e for e in await app.store.timeline(conversation) if e.id == call_id]
        notes = json.loads(call.meta)["call"]["operator_notes"]
        assert [(n["by"], n["text"]) for n in notes] == [("alice", "обещал перезвонить [b]")]
        assert "✎ alice: обещал перезвонить [b]" in entry_text(call, now=NOW).plain
        # A later event from the PBX keeps the note.
        await ring(shop, call_id="n-1", event="ended", duration=75)
        [call] = [e for e in await app.store.timeline(conversation) if e.id == call_id]
        assert json.loads(call.meta)["call"]["operator_notes"][0]["text"] == "обещал перезвонить [b]"
        assert json.loads(call.meta)["call"]["outcome"] == "answered"
