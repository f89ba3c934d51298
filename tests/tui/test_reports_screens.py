"""The reports screen and the wallboard: pilot tests and snapshots on the fixed shop of
tests/tui/conftest.py (clock frozen at NOW, UTC)."""

from __future__ import annotations

from textual.widgets import DataTable, OptionList

from omniconsole.tui.screens.reports import ReportsScreen
from omniconsole.tui.screens.wallboard import WallboardScreen
from tests.tui.test_snapshots import _pause, _until


async def _reports(pilot) -> None:
    await _pause(pilot)
    await pilot.press("ctrl+r")
    await _until(pilot, lambda: isinstance(pilot.app.screen, ReportsScreen) and pilot.app.screen.report)
    await pilot.pause(0.2)


async def _wallboard(pilot) -> None:
    await _pause(pilot)
    await pilot.press("W")
    await _until(pilot, lambda: isinstance(pilot.app.screen, WallboardScreen) and pilot.app.screen.board is not None)
    await pilot.pause(0.2)


async def test_reports_figures_group_and_the_conversations_behind_one(make_app, shop):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await _reports(pilot)
        screen = pilot.app.screen
        # Four conversations opened in the last 7 days; Emma's got a (failed) reply from bob:
        # three customers wait, unattended now.
        assert screen.report["conversations"] == 4 and screen.report["unattended"] == 3
        assert screen.report["frt_responses"] == 1
        await pilot.press("g")  # by channel
        await _until(pilot, lambda: screen.group == "channel" and "rows" in screen.report)
        assert {row["key"] for row in screen.report["rows"]} == {"telegram"}
        # The "unattended" total opens the list of the three conversations behind it.
        table = screen.query_one(DataTable)
        total_row = table.row_count - 1
        table.move_cursor(row=total_row, column=7)
        await pilot.press("enter")
        await _until(pilot, lambda: pilot.app.screen.query(OptionList))
        options = pilot.app.screen.query_one(OptionList)
        assert options.option_count == 3
        await pilot.press("enter")
        await _until(pilot, lambda: pilot.app.screen is pilot.app.main and pilot.app.main.opened is not None)
        assert pilot.app.main.opened in {shop[1]["ivan"], shop[1]["mallory"], shop[1]["oliver"]}


async def test_enter_on_a_rows_name_says_to_move_to_a_figure(make_app, shop):
    """The cursor starts on the rows' names; Enter there listed nothing and said nothing."""
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await _reports(pilot)
        assert pilot.app.screen.query_one(DataTable).cursor_coordinate.column == 0
        await pilot.press("enter")
        await _until(pilot, lambda: any("Move to a figure" in str(n.message) for n in app._notifications))
        assert not pilot.app.screen.query(OptionList)


async def test_wallboard_live_from_the_events_log(make_app, shop):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await _wallboard(pilot)
        screen = pilot.app.screen
        assert (screen.board.open, screen.board.unattended, screen.board.unassigned) == (4, 3, 3)
        # Another operator answers Oliver: the board follows the events log.
        await app.store.queue_reply(shop[1]["oliver"], "Yes, tomorrow at 10", "alice")
        await _until(pilot, lambda: screen.board.unattended == 2, timeout=5)
        await pilot.press("escape")
        assert pilot.app.screen is pilot.app.main


async def test_an_agent_sees_own_figures_beside_the_team(make_app, shop):
    """An agent's reports screen: one row of their own figures, the team's totals below; no
    grouping and no other operator's row."""
    app = make_app(login="bob", role="agent")
    async with app.run_test(size=(160, 48)) as pilot:
        await _reports(pilot)
        screen = pilot.app.screen
        assert [row["key"] for row in screen.report["rows"]] == ["bob"]
        # bob's (failed) reply to Emma is the team's one first response, and it is his.
        assert screen.report["frt_responses"] == 1 and screen.report["rows"][0]["frt_responses"] == 1
        assert screen.report["conversations"] == 4
        await pilot.press("g")
        await pilot.pause(0.2)
        assert screen.group is None and [row["key"] for row in screen.report["rows"]] == ["bob"]
    app = make_app(login="alice", role="agent")
    async with app.run_test(size=(160, 48)) as pilot:
        await _reports(pilot)
        own = pilot.app.screen.report["rows"][0]
        assert own["key"] == "alice" and own["frt_responses"] == 0


def test_reports_screen_snapshot(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(160, 48), run_before=_reports)


def test_wallboard_snapshot(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(120, 30), run_before=_wallboard)
