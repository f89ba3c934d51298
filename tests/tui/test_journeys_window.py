"""The journey in the customer pane and the journeys screen (J): pilot tests on the fixed shop of
tests/tui/conftest.py (clock frozen at NOW). Ivan wrote in Telegram, then by e-mail in the same
conversation: one issue with a channel switch."""

from __future__ import annotations

from textual.widgets import DataTable

from omniconsole.analytics import journeys as j
from omniconsole.store.journeys import IssueRow
from omniconsole.tui.journey_card import JourneyCardState
from omniconsole.tui.screens.journeys import JourneysScreen
from omniconsole.tui.widgets.customer_pane import CustomerPane
from tests.tui.conftest import NOW
from tests.tui.test_snapshots import _journey_read, _open, _pause, _until


async def test_customer_pane_shows_the_journey_with_the_switch(make_app, shop):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await _open(shop[1]["ivan"])(pilot)
        await _until(pilot, lambda: _journey_read(pilot.app) and pilot.app.main.query_one(CustomerPane).journey.customer_id)
        pane = pilot.app.main.query_one(CustomerPane)
        issues = pane.journey.journey.issues
        assert [i.channels for i in issues] == [("telegram", "email")]
        text = pane.card_text
        assert "Journey" in text and "TG ⇄ EM" in text and "open" in text
        assert pane.journey.advice is None  # no outcome table worth the name in a shop of four


async def test_advice_and_hostile_origin_are_drawn_as_text(make_app, shop):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await _pause(pilot)
        pane = pilot.app.main.query_one(CustomerPane)
        customer = pane.profile.id
        row = IssueRow(99, customer, "open", NOW - 600, first_contact=NOW - 600, origin="[@click=app.quit]x\x1b]52;c;eA==\x07")
        row.path.append((NOW - 600, "web"))
        issue = j.Issue(row, "refunds", ("web",), False, None, None, None, None, None)
        cell = j.Cell("refunds", "web", 340, 177, 0.52, 0.52, (0.47, 0.57))
        better = j.Cell("refunds", "phone", 120, 101, 0.84, 0.83, (0.76, 0.9))
        advice = j.Advice(
            "refunds", cell, better, "Refunds: by phone 84% resolved in one contact, in the web chat 52% (n=120/340)"
        )
        from omniconsole.analytics.journey_service import CustomerJourney

        pane.show_journey(JourneyCardState(customer, CustomerJourney([issue], {"web", "phone"}), advice))
        await pilot.pause(0.1)
        text = pane.card_text
        assert "➜ Refunds: by phone 84% resolved in one contact" in text
        assert "[@click=app.quit]x" in text and "\x1b" not in text  # literal, control bytes gone
        assert pilot.app.is_running


async def test_journeys_screen_transitions_and_paths(make_app, shop):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await _pause(pilot)
        await pilot.press("J")
        await _until(pilot, lambda: isinstance(pilot.app.screen, JourneysScreen) and pilot.app.screen.report)
        screen = pilot.app.screen
        assert screen.report["issues"] == 4 and screen.report["switched"] == 1
        transitions = screen.query_one("#journeys-transitions", DataTable)
        assert transitions.row_count == 1
        assert [str(c) for c in transitions.get_row_at(0)] == ["telegram", "email", "1"]
        paths = screen.query_one("#journeys-paths", DataTable)
        assert {str(paths.get_row_at(n)[0]) for n in range(paths.row_count)} == {"telegram", "telegram → email"}
        await pilot.press("escape")
        assert pilot.app.screen is pilot.app.main


def test_journeys_screen_snapshot(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await _pause(pilot)
        await pilot.press("J")
        await _until(pilot, lambda: isinstance(pilot.app.screen, JourneysScreen) and pilot.app.screen.report)
        await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=(160, 48), run_before=run_before)
