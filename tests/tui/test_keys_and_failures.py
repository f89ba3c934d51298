"""One source of key display (help, palette, status hints and view bar agree after a keymap
change), and workers' failures reach the operator in words."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from omniconsole.store import Operator
from omniconsole.tui.app import OmniApp
from omniconsole.tui.commands import ActionCommands
from tests.tui.conftest import NOW
from tests.tui.test_actions import dialog, open_conversation, settle


async def test_a_remapped_key_is_shown_alike_in_status_hints_help_palette_and_view_bar(shop):
    settings, _ = shop
    keymap = {"conversation.reply": "ctrl+r", "app.search": "f2", "view.mine": "f5"}
    app = OmniApp(replace(settings, keymap=keymap), Operator("alice", "Alice", "admin"), clock=lambda: NOW, run_core=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.main.inbox_ready.wait()
        await settle(pilot)
        status = str(app.main.query_one("#status").render())
        assert "^r reply" in status and "f2 search" in status and "? help" in status
        assert " r reply" not in status and "/ search" not in status
        views = str(app.main.query_one("#views").render())
        assert " f5 Mine " in views and " 2 Unassigned " in views

        hits = [hit async for hit in ActionCommands(app.main).search("Reply")]
        assert [hit.help for hit in hits if str(hit.text) == "Reply"] == ["key: ^r"]

        await pilot.press("question_mark")
        await settle(pilot)
        rows = {description: keys for keys, description in app.screen.rows}
        assert rows["Reply"] == "^r" and rows["Search"] == "f2" and rows["Mine"] == "f5"
        await pilot.press("escape")
        await settle(pilot)

        # The remapped keys act, the old ones do not.
        await pilot.press("f2")
        await dialog(pilot, "SearchScreen")


async def test_a_store_error_during_h_is_shown_not_silent(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["ivan"])
        # The database changes under the window (another process broke it): the customer's
        # conversations cannot be read.
        other = sqlite3.connect(shop[0].database)
        other.execute("ALTER TABLE customers RENAME TO customers_gone")
        other.commit()
        try:
            await pilot.press("h")
            for _ in range(60):
                if any("Customer's conversations" in str(n.message) for n in app._notifications):
                    break
                await pilot.pause(0.05)
            [note] = [n for n in app._notifications if "Customer's conversations" in str(n.message)]
            assert "customers" in str(note.message) and note.severity == "error"
            assert app.is_running
        finally:
            other.execute("ALTER TABLE customers_gone RENAME TO customers")
            other.commit()
            other.close()
