"""Answers in the real window (issue #16), driven by keys through the MainScreen: the `/` picker
in the reply box, placeholders and `{ask:}`, stacked answers, suggestions taken with alt+1, a
script in the side pane, saving a sent reply as an answer, the engine rebuilt on `kb.*` events,
usage recorded for assist acceptance, and the reply rendered for its channel."""

from __future__ import annotations

import asyncio
import json

import pytest

from omniconsole.answers.library import DEMO_LIBRARY, import_folder
from omniconsole.store import Store
from omniconsole.tui.screens.library import SaveAnswerDialog
from omniconsole.tui.widgets.answer_picker import AnswerPicker
from omniconsole.tui.widgets.script_pane import ScriptPane
from tests.tui.test_actions import dialog, open_conversation, settle, store_of


@pytest.fixture
def library_shop(shop):
    """The test shop with the demo library imported."""

    async def load() -> None:
        store = await Store.open(shop[0].database)
        try:
            await import_folder(store, DEMO_LIBRARY, "alice")
        finally:
            await store.close()

    asyncio.run(load())
    return shop


async def engine_ready(pilot, screen, conversation_id: int | None = None) -> None:
    """Wait until the engine is built (in a thread) and, with a conversation, its suggestions shown."""
    for _ in range(200):
        box = screen.reply_box
        if box.engine.records and (conversation_id is None or box.suggestions.hits):
            return
        await pilot.pause(0.05)
    raise AssertionError("the answers engine was not built, or suggested nothing")


async def sent_reply(shop, conversation_id: int):
    store = await store_of(shop)
    try:
        entries = await store.timeline(conversation_id)
        figures = await store.kb_figures()
    finally:
        await store.close()
    return [e for e in entries if e.direction == "out"][-1], figures


async def test_slash_picker_fills_placeholders_and_the_email_reply_gets_an_html_part(make_app, library_shop):
    ids = library_shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["ivan"])
        await engine_ready(pilot, screen)
        await pilot.press("r", *"Добрый день ", "/")
        picker = screen.query_one(AnswerPicker)
        assert picker.is_open, "/ at the start of a word opens the picker"
        await pilot.press(*"привет")
        assert picker.hits[0].key == "greeting"
        await pilot.press("enter")
        await settle(pilot)
        assert not picker.is_open and app.focused is screen.composer
        # customer.first_name from "Иван Петров", operator.name from the operator, /query replaced.
        assert screen.composer.text == "Добрый день Здравствуйте, Иван! Меня зовут Alice, я помогу вам. "
        await pilot.press(*"Заказ **уже** в пути.", "enter")  # typed at {cursor}
        await settle(pilot)
    reply, figures = await sent_reply(library_shop, ids["ivan"])
    assert reply.channel_kind == "email"
    assert reply.body == "Добрый день Здравствуйте, Иван! Меня зовут Alice, я помогу вам. Заказ уже в пути."
    meta = json.loads(reply.meta)
    assert "<strong>уже</strong>" in meta["html"]  # the e-mail connector sends it as text/html
    greeting = figures[("greeting", "ru")]
    assert (greeting.used, greeting.sent, greeting.edited) == (1, 1, 0)  # text around it is not an edit


async def test_ask_prompts_stacked_answers_and_an_edit_before_sending(make_app, library_shop):
    ids = library_shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["ivan"])
        await engine_ready(pilot, screen)
        await pilot.press("r", "ctrl+t")  # by Telegram this time
        assert screen.routes[screen.route_index].kind == "telegram"
        await pilot.press("ctrl+space", *"где мой заказ", "enter")
        picker = screen.query_one(AnswerPicker)
        assert picker.is_open and picker.query_one("#picker-ask-input").display, "{ask:} asks the operator"
        await pilot.press(*"4711", "enter")
        await settle(pilot)
        assert screen.composer.text.startswith("Заказ №4711 передан в доставку.")
        await pilot.press("alt+enter", "/", *"bye", "enter")  # a second answer stacked in the same reply
        await settle(pilot)
        text = screen.composer.text
        assert "Заказ №4711" in text and text.endswith("Хорошего дня!")
        assert [t for _, t in screen.reply_box.insertions][1].endswith("Хорошего дня!")
        await pilot.press("backspace", "backspace", "backspace", "enter")  # "Хорошего д": edited
        await settle(pilot)
    reply, figures = await sent_reply(library_shop, ids["ivan"])
    assert reply.channel_kind == "telegram" and "Хорошего д" in reply.body
    meta = json.loads(reply.meta)
    assert meta["parse_mode"] == "HTML" and "<b>«Мои заказы»</b>" in meta["formatted"]
    assert "**" not in reply.body  # the plain body has no Markdown marks
    for key in ("order-status", "closing"):
        assert (figures[(key, "ru")].sent, figures[(key, "ru")].edited) == (1, 1), key


async def test_suggestions_for_the_open_conversation_and_alt_1(make_app, library_shop):
    ids = library_shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["emma"])
        await engine_ready(pilot, screen, ids["emma"])
        strip = screen.reply_box.suggestions
        assert strip.display and strip.hits[0].key == "double-charge"
        assert "alt+1" in str(strip.render())
        assert app.focused is screen.timeline
        await pilot.press("alt+1")  # from the timeline, as `r` would: Emma is Bob's, so asked first
        await dialog(pilot, "ConfirmDialog")
        await pilot.press("y")
        await settle(pilot)
        assert app.focused is screen.composer
        assert screen.composer.text.startswith(strip.hits[0].record.body.split("{")[0][:20])
    store = await store_of(library_shop)
    figures = await store.kb_figures()
    await store.close()
    assert figures[("double-charge", "en")].shown >= 1 and figures[("double-charge", "en")].used == 1


async def test_a_script_opens_in_the_side_pane_and_inserts_its_steps(make_app, library_shop):
    ids = library_shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["oliver"])
        await engine_ready(pilot, screen)
        await pilot.press("r", "/", *"orderscript")
        picker = screen.query_one(AnswerPicker)
        assert picker.hits[0].record.kind == "script"
        await pilot.press("enter")
        await settle(pilot)
        pane = screen.query_one(ScriptPane)
        assert screen.composer.text == "", "a script is not pasted whole; the /query is gone"
        assert pane.reached == 1 and app.focused is pane.query_one("OptionList")
        await pilot.press("enter")  # step 1 into the reply
        await settle(pilot)
        assert screen.composer.text == "Greet the customer and ask for the order number."
        assert pane.reached == 2 and pane.done == {1}
        await pilot.press("tab")  # back to the pane from the composer
        assert screen.focused is pane.query_one("OptionList")
        await pilot.press("escape")
        await settle(pilot)
        assert not screen.query(ScriptPane) and app.focused is screen.composer


async def test_save_a_sent_reply_as_an_answer_and_the_picker_finds_it(make_app, library_shop):
    ids = library_shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["oliver"])
        await engine_ready(pilot, screen)
        await pilot.press("r", *"Примерочная работает до 21:00 каждый день", "enter")
        await settle(pilot)
        await pilot.press("ctrl+s")  # two keys: ctrl+s, then Enter
        await dialog(pilot, "SaveAnswerDialog")
        assert isinstance(app.screen, SaveAnswerDialog)
        await pilot.press("enter")
        await settle(pilot, 0.5)
        # The store's kb.* event reaches the follower, which rebuilds the engine.
        for _ in range(100):
            if any("Примерочная" in r.title for r in screen.reply_box.engine.records):
                break
            await pilot.pause(0.05)
        await pilot.press("r", "ctrl+space", *"примерочная")
        picker = screen.query_one(AnswerPicker)
        assert picker.hits and picker.hits[0].record.title.startswith("Примерочная работает до 21:00")
    store = await store_of(library_shop)
    saved = [r for r in await store.kb_articles() if r.title.startswith("Примерочная")]
    await store.close()
    assert len(saved) == 1 and saved[0].body == "Примерочная работает до 21:00 каждый день"


async def test_library_screen_from_a_key(make_app, library_shop):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("K")
        await settle(pilot)
        from omniconsole.tui.screens.library import LibraryScreen

        assert isinstance(app.screen, LibraryScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, LibraryScreen)


def test_snapshot_suggestions_and_the_picker_in_the_window(snap_compare, make_app, library_shop):
    """The reply box with the suggestion strip for Ivan's order question and the picker open
    under the composer after `/` (the rest of the window as in the other snapshots)."""
    ids = library_shop[1]

    async def run_before(pilot) -> None:
        app = pilot.app
        screen = await open_conversation(pilot, app, ids["ivan"])
        await engine_ready(pilot, screen, ids["ivan"])
        await pilot.press("r", *"Иван, /", *"зак")
        await pilot.pause(0.3)

    assert snap_compare(make_app(), terminal_size=(160, 48), run_before=run_before)
