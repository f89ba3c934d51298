"""Macros in the window (issue #19) with Textual's Pilot, in-process and through a core's socket:
`M` opens the dialog, the preview says in words what the highlighted macro will do, Enter runs
it and stays, ctrl+n runs it and goes to the next waiting conversation, a macro's own key runs
it at once, and a personal macro is offered only to its owner."""

from __future__ import annotations

import dataclasses
import sqlite3
import tomllib

from textual.widgets import OptionList, Static

from omniconsole.automation.rules import AutomationSettings, parse_rulebook
from tests.tui.test_actions import dialog, open_conversation, settle
from tests.tui.test_crm_card import until

MACROS = """
[[macros]]
name = "Escalate"
actions = [ { add_labels = ["escalated", "vip"] }, { priority = "urgent" }, { note = "escalated by macro" } ]

[[macros]]
name = "Close"
key = "f6"
actions = [ { resolve = true } ]

[[macros]]
name = "Bob's own"
owner = "bob"
actions = [ { note = "bob was here" } ]
"""


def with_macros(app):
    book = parse_rulebook(tomllib.loads(MACROS))
    app.settings = dataclasses.replace(app.settings, automation=AutomationSettings(None, book))
    return app


def row(shop, sql: str, *args):
    conn = sqlite3.connect(shop[0].database)
    try:
        return conn.execute(sql, args).fetchone()
    finally:
        conn.close()


async def test_a_macro_with_its_preview_runs_and_stays(make_window, shop):
    ids = shop[1]
    app = with_macros(make_window())
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("M")
        await dialog(pilot, "MacroDialog")
        options = app.screen.query_one(OptionList)
        assert [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)] == ["Escalate", "Close  [f6]"]
        preview = str(app.screen.query_one("#macro-preview", Static).render())
        assert "add labels escalated, vip" in preview and "set priority urgent" in preview
        assert "add a private note 'escalated by macro'" in preview
        await pilot.press("j")
        await settle(pilot, 0.1)
        assert "resolve" in str(app.screen.query_one("#macro-preview", Static).render())
        await pilot.press("k", "enter")
        await settle(pilot, 0.5)
        assert screen.conversation.id == ids["oliver"]  # stayed
        assert row(shop, "SELECT priority FROM conversations WHERE id = ?", ids["oliver"]) == (2,)
        assert set(screen.conversation.labels) == {"escalated", "vip"}
        assert row(
            shop,
            "SELECT author FROM messages WHERE conversation_id = ? AND direction = 'note' AND body = 'escalated by macro'",
            ids["oliver"],
        ) == ("alice",)
        line = row(shop, "SELECT body FROM messages WHERE conversation_id = ? AND body LIKE 'alice ran macro%'", ids["oliver"])
        assert line == (
            "alice ran macro Escalate: add labels escalated, vip; set priority urgent; add a private note 'escalated by macro'",
        )


async def test_run_and_go_next_and_a_macro_key(make_window, shop):
    ids = shop[1]
    app = with_macros(make_window())
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("M")
        await dialog(pilot, "MacroDialog")
        await pilot.press("j", "ctrl+n")
        await settle(pilot, 0.6)
        assert row(shop, "SELECT status FROM conversations WHERE id = ?", ids["oliver"]) == ("resolved",)
        assert screen.conversation is not None and screen.conversation.id != ids["oliver"]  # went on
        other = screen.conversation.id
        await pilot.press("f6")  # the macro's own key
        await settle(pilot, 0.6)
        assert row(shop, "SELECT status FROM conversations WHERE id = ?", other) == ("resolved",)


async def test_personal_macros_are_their_owners_only(make_app, shop):
    app = with_macros(make_app("bob", "agent"))
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, shop[1]["emma"])
        await pilot.press("M")
        await dialog(pilot, "MacroDialog")
        options = app.screen.query_one(OptionList)
        assert [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)] == [
            "Escalate",
            "Close  [f6]",
            "Bob's own",
        ]


async def test_a_rule_notice_is_shown_to_the_operators_it_names(make_app, shop):
    from omniconsole.store import Store

    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        store = await Store.open(shop[0].database)
        try:
            await store.notify_operators(shop[1]["emma"], "[b]SLA breached[/b] \x1b]0;x\x07", ["alice"], "rule:SLA alarm")
            await store.notify_operators(shop[1]["emma"], "for bob only", ["bob"], "rule:other")
        finally:
            await store.close()
        await settle(pilot, 0.6)
        shown = [str(n.message) for n in app._notifications]
        assert f"SLA alarm (#{shop[1]['emma']}): [b]SLA breached[/b] " in shown  # literal, the OSC sequence dropped
        assert not any("for bob only" in m for m in shown)


async def test_without_macros_the_hint_shows_the_config_words_literally(make_window, shop):
    """The hint names TOML tables; drawn as markup, `[automation]` vanished from the toast."""
    from textual.widgets._toast import Toast

    app = make_window()
    async with app.run_test(size=(160, 48), notifications=True) as pilot:  # this test reads the drawn toast
        await open_conversation(pilot, app, shop[1]["oliver"])
        await pilot.press("M")

        def drawn() -> list[str]:
            return [str(toast.render()) for toast in app.screen.query(Toast)]

        await until(pilot, lambda: drawn())
        assert any("add [[macros]] to the rules file ([automation] rules in the config)" in text for text in drawn()), drawn()


async def test_the_toasts_of_a_macro_and_a_rule_notice_are_drawn(make_window, shop):
    """Both toasts are literal rich Text; drawing one crashed the window (Textual's toast reads a
    string). Run with toasts on, as a real window has them."""
    from textual.widgets._toast import Toast

    from omniconsole.store import Store

    ids = shop[1]
    app = with_macros(make_window())
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("M")
        await dialog(pilot, "MacroDialog")
        await pilot.press("enter")

        def drawn() -> list[str]:
            return [str(toast.render()) for toast in app.screen.query(Toast)]

        await until(pilot, lambda: any(text.startswith("Macro Escalate: add labels") for text in drawn()))
        store = await Store.open(shop[0].database)
        try:
            await store.notify_operators(ids["oliver"], "[b]look[/b]", ["alice"], "rule:alarm")
        finally:
            await store.close()
        await until(pilot, lambda: any(f"alarm (#{ids['oliver']}): [b]look[/b]" in text for text in drawn()))
