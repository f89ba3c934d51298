"""Snapshots of the window (committed SVGs under __snapshots__; `--snapshot-update` renews them
after a deliberate change). Fixed clock, UTC, no cursor blink, data from tests/tui/conftest.py."""

from __future__ import annotations

from tests.tui.conftest import NOW


async def _until(pilot, predicate, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("the window did not settle")


async def _pause(pilot) -> None:
    """Until the first conversation is drawn (it loads in a worker)."""
    await _until(pilot, lambda: pilot.app.main is not None and pilot.app.main.opened is not None)
    await pilot.pause(0.2)


def _open(conversation_id: int):
    async def run_before(pilot) -> None:
        await _pause(pilot)
        inbox = pilot.app.main.inbox
        for _ in range(20):
            if inbox.selected and inbox.selected.conversation_id == conversation_id:
                break
            await pilot.press("j")
        await pilot.press("enter")
        await _until(pilot, lambda: pilot.app.main.opened == conversation_id)
        await pilot.pause(0.2)

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
    async def run_before(pilot) -> None:
        await _pause(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.3)

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=run_before)


def test_search_results(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await _pause(pilot)
        await pilot.press("slash", *"заказ")
        await _until(pilot, lambda: len(getattr(pilot.app.screen, "results").messages) == 2)
        await pilot.pause(0.3)

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=run_before)


assert NOW  # the clock every snapshot is drawn at
