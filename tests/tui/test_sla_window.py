"""The window's SLA parts (issue #19) with Textual's Pilot and a frozen clock: the inbox row's
countdown coloured by urgency, the At risk view sorted by nearest due time (in-process and
through the core's socket), the SLA lines in the timeline, and the toast an escalation sends
the operator it notifies."""

from __future__ import annotations

from omniconsole.models import InboxView
from omniconsole.routing.sla.engine import Sla
from omniconsole.routing.sla.settings import parse_sla
from omniconsole.store import sla as sla_db
from omniconsole.store.database import connect, write_transaction
from omniconsole.store.events import add_event
from omniconsole.tui.text import countdown, sla_urgency
from omniconsole.tui.widgets.view_tabs import ViewTabs
from tests.tui.conftest import NOW
from tests.tui.test_actions import open_conversation, settle


def start_clocks(database, minutes: float = 100) -> list[tuple[int, float, int]]:
    """SLA clocks for the shop's open conversations as the core's pipeline would start them,
    evaluated at the window's frozen NOW; the At risk order `(id, due, stage)`."""
    conn = connect(database)
    try:
        sla = Sla(parse_sla([{"name": "standard", "first_response_minutes": minutes}], {}))
        ids = [r[0] for r in conn.execute("SELECT id FROM conversations WHERE status = 'open' ORDER BY id")]
        for conversation in ids:
            write_transaction(conn, sla.step, conversation, NOW)
        return sla_db.due_conversations(conn)
    finally:
        conn.close()


def row_texts(screen) -> list[str]:
    inbox = screen.inbox
    return [inbox._row_text(inbox.row(i), 0, 120).plain for i in range(inbox.count) if inbox.row(i)]


async def test_countdown_in_the_inbox_and_the_at_risk_view(make_window, shop):
    settings, ids = shop
    order = start_clocks(settings.database)
    assert len(order) >= 2
    app = make_window()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = app.main
        texts = row_texts(screen)
        due_by_id = {cid: (due, stage) for cid, due, stage in order}
        for i in range(screen.inbox.count):
            row = screen.inbox.row(i)
            if row.conversation_id in due_by_id:
                due, stage = due_by_id[row.conversation_id]
                assert (row.sla_due_at, row.sla_stage) == (due, stage)
                assert f"⏱{countdown(due, NOW)}" in texts[i]
        # Ivan's clock started with his latest message, 120 min ago, for a 100 min first
        # response: breached, red, "-20m".
        assert order[0][0] == ids["ivan"] and countdown(order[0][1], NOW) == "-20m"
        assert order[0][2] == 2 and sla_urgency(order[0][1], order[0][2], NOW) == "breach"
        assert any("⏱-20m" in text for text in texts)
        # Coloured by urgency: the breached countdown in the red style.
        ivan_row = next(
            screen.inbox.row(i) for i in range(screen.inbox.count) if screen.inbox.row(i).conversation_id == ids["ivan"]
        )
        text = screen.inbox._row_text(ivan_row, 0, 120)
        start = text.plain.index("⏱")
        [style] = {span.style for span in text.spans if span.start <= start < span.end}
        assert style == screen.inbox.pane_style("sla-breach") != screen.inbox.pane_style("sla-ok")
        await pilot.press("6")
        await settle(pilot)
        assert screen.inbox.view is InboxView.AT_RISK
        listed = [screen.inbox.row(i).conversation_id for i in range(screen.inbox.count)]
        assert listed == [cid for cid, _, _ in order]  # nearest due first
        tabs = str(screen.query_one(ViewTabs).render())
        assert f"At risk {len(order)}" in tabs


async def test_sla_lines_in_the_timeline_and_a_toast_for_the_notified_operator(make_app, shop):
    settings, ids = shop
    order = start_clocks(settings.database, minutes=10)
    breached = order[0][0]
    conn = connect(settings.database)
    try:
        lines = [
            r[0] for r in conn.execute("SELECT body FROM messages WHERE author = 'sla' AND conversation_id = ?", (breached,))
        ]
        assert "SLA standard: first response breached (target 10 min)" in lines
    finally:
        conn.close()
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, breached)
        shown = " ".join(" ".join(line.text for line in screen.timeline._lines).split())
        assert "SLA standard: first response breached (target 10 min)" in shown
        conn = connect(settings.database)
        try:
            payload = {"policy": "standard", "target": "first_response", "share": 0.9, "due": NOW, "step": "notify_assignee"}
            write_transaction(
                conn,
                lambda c: add_event(c, "sla.escalated", conversation_id=breached, payload={**payload, "to": ["alice"]}, at=NOW),
            )
            write_transaction(
                conn,
                lambda c: add_event(c, "sla.escalated", conversation_id=breached, payload={**payload, "to": ["bob"]}, at=NOW),
            )
        finally:
            conn.close()
        for _ in range(40):
            await settle(pilot, 0.1)
            if app._notifications:
                break
        notes = [str(n.message) for n in app._notifications]
        assert notes == [f"Conversation #{breached}: first response at 90% (SLA standard)"]


def test_countdown_words_and_urgency_colours():
    assert [countdown(NOW + s, NOW) for s in (30, 12 * 60 + 5, 3 * 3600, 2 * 86400 + 5)] == ["<1m", "12m", "3h", "2d"]
    assert [countdown(NOW - s, NOW) for s in (1, 5 * 60, 7200)] == ["-<1m", "-5m", "-2h"]
    assert [sla_urgency(NOW + 600, 0, NOW), sla_urgency(NOW + 600, 1, NOW), sla_urgency(NOW + 600, 2, NOW)] == [
        "ok",
        "warning",
        "breach",
    ]
    assert sla_urgency(NOW - 1, 0, NOW) == "breach"  # past due before the scheduler's breach is recorded
