"""The words the store and the core hand the window, drawn in the operator's language (issue
#24): a timeline line kept as a phrase is drawn in Russian, an older row (English body, no
phrase) still draws its English, and a refused action is said in Russian."""

from __future__ import annotations

import sqlite3

from tests.tui.conftest import NOW
from tests.tui.test_actions import open_conversation, settle
from tests.tui.test_russian_window import russian_app


def _drawn(screen) -> str:
    return " ".join(" ".join(line.text for line in screen.timeline._lines).split())


async def test_a_timeline_line_is_drawn_in_russian_and_an_old_row_in_its_english(shop) -> None:
    settings, ids = shop
    conn = sqlite3.connect(settings.database)
    try:
        customer = conn.execute("SELECT customer_id FROM conversations WHERE id = ?", (ids["emma"],)).fetchone()[0]
        # A line written before #24: English body, no phrase in meta.
        conn.execute(
            "INSERT INTO messages (conversation_id, customer_id, direction, author, body, created_at)"
            " VALUES (?, ?, 'event', 'carol', 'marked pending', ?)",
            (ids["emma"], customer, NOW - 20 * 60),
        )
        conn.commit()
    finally:
        conn.close()
    app = russian_app(shop)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["emma"])
        shown = _drawn(screen)
        # build_shop: bob assigned the conversation to himself (a phrase since #24).
        assert "bob назначил(а) на bob" in shown
        assert "assigned to bob" not in shown
        assert "carol marked pending" in shown
        bodies = [e.body for e in screen.timeline.entries if e.direction == "event"]
        assert "assigned to bob" in bodies  # what is stored stays English


async def test_a_refused_action_is_said_in_russian(shop) -> None:
    ids = shop[1]
    app = russian_app(shop)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["ivan"])
        done = await screen._do(screen.store.set_subject(ids["ivan"], "   ", "alice"))
        await settle(pilot)
        assert done is False
        said = [str(n.message) for n in app._notifications]
        assert "тема не может быть пустой" in said
