"""The window in Russian (issue #24): snapshots of the main screen, help and a dialog, the keys
working as in English (Latin and ЙЦУКЕН), notifications and questions in Russian, and the
language chosen operator > config > locale. The English snapshots stay as they are."""

from __future__ import annotations

import dataclasses

from omniconsole.i18n import current_language
from omniconsole.store import Operator
from omniconsole.tui.app import OmniApp
from omniconsole.tui.keys import help_rows
from tests.tui.conftest import NOW
from tests.tui.test_actions import dialog, open_conversation, settle, store_of
from tests.tui.test_snapshots import _pause


def russian_app(shop, login: str = "alice", role: str = "admin", **settings_changes) -> OmniApp:
    settings, _ = shop
    settings = dataclasses.replace(settings, **settings_changes)
    return OmniApp(settings, Operator(login, login.capitalize(), role, language="ru"), clock=lambda: NOW, run_core=False)


def test_main_screen_in_russian_160x48(snap_compare, shop):
    assert snap_compare(russian_app(shop), terminal_size=(160, 48), run_before=_pause)


def test_main_screen_in_russian_80x24(snap_compare, shop):
    assert snap_compare(russian_app(shop), terminal_size=(80, 24), run_before=_pause)


def test_help_in_russian(snap_compare, shop):
    async def run_before(pilot) -> None:
        await _pause(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.3)

    assert snap_compare(russian_app(shop), terminal_size=(120, 40), run_before=run_before)


def test_snooze_dialog_in_russian(snap_compare, shop):
    async def run_before(pilot) -> None:
        await _pause(pilot)
        await pilot.press("enter")
        await pilot.pause(0.3)
        await pilot.press("z")
        await dialog(pilot, "SnoozeDialog")
        await pilot.pause(0.2)

    assert snap_compare(russian_app(shop), terminal_size=(100, 30), run_before=run_before)


async def test_keys_act_in_russian_and_the_window_answers_in_russian(shop) -> None:
    ids = shop[1]
    app = russian_app(shop)
    async with app.run_test(size=(160, 48)) as pilot:
        assert current_language() == "ru"
        screen = app.main
        await settle(pilot)
        rows = dict(help_rows(screen))
        assert "Решить и дальше" in rows.values() and "Ответить" in rows.values()
        start = screen.inbox.cursor
        await pilot.press("j")
        await settle(pilot, 0.1)
        assert screen.inbox.cursor == start + 1
        await pilot.press("л")  # k on a Russian keyboard
        await settle(pilot, 0.1)
        assert screen.inbox.cursor == start
        # Emma's conversation is Bob's: replying asks first, in Russian.
        screen = await open_conversation(pilot, app, ids["emma"])
        await pilot.press("r")
        await dialog(pilot, "ConfirmDialog")
        question = str(app.screen.query_one("Label").render())
        assert question == "Разговор ведёт bob. Всё равно ответить?"
        await pilot.press("n")
        await settle(pilot)
        assert app.screen is app.main
        screen.inbox.focus()
        await pilot.press("п")  # g on a Russian keyboard: the first row
        await settle(pilot, 0.1)
        assert screen.inbox.cursor == 0
        screen = await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("e")
        await settle(pilot)
        assert (await app.store.conversation(ids["oliver"])).status == "resolved"
        assert "Решено" in [str(n.message) for n in app._notifications]
    store = await store_of(shop)
    await store.close()


async def test_the_palette_offers_the_actions_in_russian(shop) -> None:
    from omniconsole.tui.commands import ActionCommands

    app = russian_app(shop)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        provider = ActionCommands(app.main)
        offered = {description: keys for description, keys, _node, _action in provider._commands()}
        assert offered["Решить и дальше"] == "E" and offered["Отложить"] == "z"


async def test_the_language_comes_from_the_operator_then_the_config(shop, monkeypatch) -> None:
    settings, _ = shop
    app = OmniApp(
        dataclasses.replace(settings, language="ru"), Operator("alice", "Alice", "admin"), clock=lambda: NOW, run_core=False
    )
    assert app.language == "ru"
    app = OmniApp(
        dataclasses.replace(settings, language="ru"),
        Operator("alice", "Alice", "admin", language="en"),
        clock=lambda: NOW,
        run_core=False,
    )
    assert app.language == "en" and current_language() == "en"
    monkeypatch.setenv("LANGUAGE", "")
    monkeypatch.setenv("LC_ALL", "ru_RU.UTF-8")
    app = OmniApp(settings, Operator("alice", "Alice", "admin"), clock=lambda: NOW, run_core=False)
    assert app.language == "ru"


def test_textuals_own_key_descriptions_are_in_the_catalog() -> None:
    """Help and the palette show Textual's bindings too (scrolling, the input line): each of
    their descriptions is listed for the catalog (tui/textual_words.py), so it is translated."""
    from textual.binding import Binding
    from textual.dom import DOMNode

    from omniconsole.tui.keys import known_binding_ids
    from omniconsole.tui.textual_words import TEXTUAL_DESCRIPTIONS

    known_binding_ids()  # imports every module of the window, and so the Textual widgets it uses
    described: set[str] = set()
    pending: list[type] = [DOMNode]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("textual."):
            for binding in cls.__dict__.get("BINDINGS", ()):
                description = binding.description if isinstance(binding, Binding) else binding[2] if len(binding) > 2 else ""
                if description:
                    described.add(description)
    assert described and described <= TEXTUAL_DESCRIPTIONS, described - TEXTUAL_DESCRIPTIONS


async def test_the_inbox_actions_speak_russian(shop) -> None:
    """The main screen's mixins too: `O` names the order, `F` asks in Russian."""
    app = russian_app(shop)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("O")
        await settle(pilot)
        assert "Порядок: дольше всех ждут" in [str(n.message) for n in app._notifications]
        await pilot.press("F")
        await dialog(pilot, "ChoiceDialog")
        assert str(app.screen.query_one("Label").render()) == "Фильтр входящих"
        await pilot.press("escape")
        await settle(pilot)


async def test_the_palette_switches_the_language_live_and_keeps_it(make_window, shop) -> None:
    """`Язык: русский` from the palette: the operator's choice is stored (through the core in a
    team setup) and the open window redraws in Russian; keys keep working; and back."""
    from omniconsole.tui.widgets.status_bar import StatusBar
    from omniconsole.tui.widgets.view_tabs import ViewTabs

    app = make_window()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.main
        await settle(pilot)
        bar, tabs = screen.query_one(StatusBar), screen.query_one(ViewTabs)
        assert "? help" in str(bar.render()) and "Mine" in str(tabs.render())
        await pilot.press("colon", *"Язык")
        await settle(pilot, 0.4)
        await pilot.press("enter")
        for _ in range(40):
            if current_language() == "ru" and "Мои" in str(tabs.render()):
                break
            await pilot.pause(0.05)
        assert "? справка" in str(bar.render()) and "Мои" in str(tabs.render())
        assert "Окно теперь на русском" in [str(n.message) for n in app._notifications]
        start = screen.inbox.cursor
        await pilot.press("о")  # j
        await settle(pilot, 0.1)
        assert screen.inbox.cursor == start + 1
        await pilot.press("colon", *"Language")
        await settle(pilot, 0.4)
        await pilot.press("enter")
        for _ in range(40):
            if current_language() == "en" and "Mine" in str(tabs.render()):
                break
            await pilot.pause(0.05)
        assert "? help" in str(bar.render())
    store = await store_of(shop)
    assert {op.login: op.language for op in await store.operators()}["alice"] == "en"
    await store.close()


async def test_search_in_russian_counts_with_plurals(shop) -> None:
    app = russian_app(shop)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"заказ")
        for _ in range(60):
            summary = str(app.screen.query_one("#search-summary").render())
            if "сообщения" in summary:
                break
            await pilot.pause(0.05)
        assert summary == "0 клиентов, 2 сообщения (сначала последние сохранённые)"


async def test_the_customer_dialogs_speak_russian(shop) -> None:
    """`c` (edit the customer) and `N` (start a conversation) ask in Russian."""
    ids = shop[1]
    app = russian_app(shop)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["ivan"])
        await pilot.press("c")
        await dialog(pilot, "ChoiceDialog")
        assert str(app.screen.query_one("Label").render()) == "Изменить данные клиента"
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("N")
        await dialog(pilot, "ChoiceDialog")
        assert str(app.screen.query_one("Label").render()) == "Начать разговор с"
        await pilot.press("escape")
        await settle(pilot)


async def test_the_queue_view_in_russian(shop) -> None:
    import sqlite3

    from textual.widgets import OptionList

    conn = sqlite3.connect(shop[0].database)
    conn.execute(
        "UPDATE conversations SET queue = 'default', needs = '[\"vip\"]', queued_at = ? WHERE assignee IS NULL", (NOW - 600,)
    )
    waiting = conn.execute("SELECT count(*) FROM conversations WHERE assignee IS NULL AND status = 'open'").fetchone()[0]
    conn.commit()
    conn.close()
    app = russian_app(shop)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("Q")
        await dialog(pilot, "QueueDialog")
        options = app.screen.query_one(OptionList)
        lines = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert lines[0] == f"default  ждут: {waiting}, дольше всех — 10 мин"
        assert lines[1].startswith("alice  в сети")
        assert str(app.screen.query_one("Label").render()) == "Очереди и команда"
