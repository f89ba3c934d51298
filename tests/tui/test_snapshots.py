"""Snapshots of the window (committed SVGs under __snapshots__; `--snapshot-update` renews them
after a deliberate change). Fixed clock, UTC, no cursor blink, data from tests/tui/conftest.py."""

from __future__ import annotations

from tests.tui.conftest import NOW


async def _pause(pilot) -> None:
    await pilot.pause(0.4)


def _open(conversation_id: int):
    async def run_before(pilot) -> None:
        await pilot.pause(0.4)
        inbox = pilot.app.main.inbox
        for _ in range(20):
            if inbox.selected and inbox.selected.conversation_id == conversation_id:
                break
            await pilot.press("j")
        await pilot.press("enter")
        await pilot.pause(0.4)

    return run_before


def test_main_screen_80x24(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=_pause)


def test_main_screen_160x48(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(160, 48), run_before=_pause)


def test_main_screen_200x60_cross_channel_conversation(snap_compare, make_app, shop):
    assert snap_compare(make_app(), terminal_size=(200, 60), run_before=_open(shop[1]["ivan"]))


def test_failed_outbound_message(snap_compare, make_app, shop):
    assert snap_compare(make_app(), terminal_size=(160, 48), run_before=_open(shop[1]["emma"]))


def test_hostile_customer_text(snap_compare, make_app, shop):
    assert snap_compare(make_app(), terminal_size=(160, 48), run_before=_open(shop[1]["mallory"]))


def test_help(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(120, 40), press=["_", "question_mark", "_"])


def test_search_results(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await pilot.pause(0.3)
        await pilot.press("slash", *"заказ")
        await pilot.pause(0.6)

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=run_before)


assert NOW  # the clock every snapshot is drawn at
