"""The answers pieces of the reply box, each in a small host app the way the reply box will use
them: the `/` picker (placeholders, `{ask:}`, stacking), suggestions with alt+1, a script in the
side pane, the library screen with its figures and editing, saving a reply as an answer, and a
snapshot of the picker with hostile article text."""

from __future__ import annotations

import json

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, TextArea

from omniconsole.answers.engine import Engine
from omniconsole.answers.library import DEMO_LIBRARY, import_folder, read_folder
from omniconsole.store import Store
from omniconsole.store.answers import ArticleRecord
from omniconsole.tui.screens.library import LibraryScreen, SaveAnswerDialog
from omniconsole.tui.widgets.answer_picker import AnswerPicker, insert_answer, slash_query
from omniconsole.tui.widgets.answer_suggestions import SUGGESTION_BINDINGS, SuggestionStrip
from omniconsole.tui.widgets.script_pane import ScriptPane
from tests.conftest import HOSTILE_TEXTS
from tests.tui.conftest import NOW

VALUES = {"customer.name": "Иван Петров", "customer.first_name": "Иван", "operator.name": "Анна", "conversation.id": 17}


class ReplyHost(App):
    """A stand-in for the reply box: a composer, the picker and the suggestions strip, wired as
    the module docstrings say."""

    BINDINGS = [Binding("ctrl+space", "picker", "Answers"), *SUGGESTION_BINDINGS]

    def __init__(self, engine: Engine, language: str | None = "ru", limit: int = 8):
        super().__init__()
        self.engine = engine
        self.limit = limit
        self.language = language
        self.chosen: list = []
        self.shown: list = []
        self.typed_query = 0

    def compose(self) -> ComposeResult:
        composer = TextArea(id="composer", soft_wrap=True)
        composer.cursor_blink = False
        yield composer
        yield AnswerPicker(self.engine, limit=self.limit, id="picker")
        yield SuggestionStrip(self.engine, id="strip")

    def on_mount(self) -> None:
        self.query_one("#composer").focus()

    @property
    def composer(self) -> TextArea:
        return self.query_one("#composer", TextArea)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        row, column = self.composer.cursor_location
        before = self.composer.document.get_line(row)[:column]
        picker = self.query_one(AnswerPicker)
        if not picker.is_open and before.endswith("/") and (query := slash_query(before)) is not None:
            self.typed_query = len(query) + 1
            picker.open(query, language=self.language, channel="telegram", values=VALUES)

    def action_picker(self) -> None:
        self.typed_query = 0
        self.query_one(AnswerPicker).open("", language=self.language, channel="telegram", values=VALUES)

    def action_suggestion(self, index: int) -> None:
        self.query_one(SuggestionStrip).choose(index)

    def on_answer_picker_chosen(self, event: AnswerPicker.Chosen) -> None:
        self.chosen.append(event.record.key)
        insert_answer(self.composer, event.filled, replace=self.typed_query)
        self.composer.focus()

    def on_answer_picker_closed(self) -> None:
        self.composer.focus()

    def on_suggestion_strip_shown(self, event: SuggestionStrip.Shown) -> None:
        self.shown.append([h.key for h in event.hits])

    def on_suggestion_strip_chosen(self, event: SuggestionStrip.Chosen) -> None:
        self.typed_query = 0
        self.query_one(AnswerPicker).take(event.hit.record, values=VALUES)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(read_folder(DEMO_LIBRARY).records)


def test_slash_query():
    assert slash_query("/") == "" and slash_query("Добрый день /дост") == "дост"
    assert slash_query("see https://x.example/a") is None and slash_query("12/05") is None and slash_query("x") is None


async def test_slash_opens_the_picker_and_enter_inserts_with_placeholders(engine):
    app = ReplyHost(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press(*"Добрый день ", "/")
        picker = app.query_one(AnswerPicker)
        assert picker.is_open
        await pilot.press(*"привет")
        assert picker.hits[0].key == "greeting"
        await pilot.press("enter")
        assert not picker.is_open and app.chosen == ["greeting"]
        text = app.composer.text
        assert text.startswith("Добрый день Здравствуйте, Иван! Меня зовут Анна, я помогу вам. ") and "/" not in text
        # The cursor lands where {cursor} stood: typing goes on there.
        await pilot.press(*"ok")
        assert app.composer.text.endswith("помогу вам. ok")


async def test_ask_prompts_and_stacked_answers(engine):
    app = ReplyHost(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+space", *"где мой заказ", "enter")
        picker = app.query_one(AnswerPicker)
        assert picker.is_open and picker.query_one("#picker-ask-input").display  # asked for the order number
        assert "номер заказа" in str(picker.query_one("#picker-ask").render())
        await pilot.press(*"4711", "enter")
        assert not picker.is_open
        assert app.composer.text.startswith("Заказ №4711 передан в доставку.")
        await pilot.press("enter", "ctrl+space", *"/bye", "enter")  # a second answer in the same reply
        assert app.chosen == ["order-status", "closing"]
        assert "Заказ №4711" in app.composer.text and app.composer.text.endswith("Хорошего дня!")


async def test_escape_closes_and_ctrl_l_shows_the_other_language(engine):
    app = ReplyHost(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+space", *"late")
        picker = app.query_one(AnswerPicker)
        assert picker.hits[0].record.language == "ru"
        await pilot.press("ctrl+l", "enter")
        assert app.composer.text.startswith("We are sorry the delivery is late.")
        await pilot.press("ctrl+space", "escape")
        assert not picker.is_open and app.focused is app.composer


async def test_suggestions_with_alt_1(engine):
    app = ReplyHost(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        strip = app.query_one(SuggestionStrip)
        hits = strip.suggest(["Здравствуйте!", "Курьер не приехал, хотя обещали доставку сегодня"])
        await pilot.pause()
        assert hits[0].key == "delivery-late" and app.shown == [[h.key for h in hits]]
        assert "alt+1 Курьер не приехал" in str(strip.render())
        await pilot.press("alt+1")
        await pilot.pause()
        assert app.chosen == ["delivery-late"] and app.composer.text.startswith("Приносим извинения за задержку")
        strip.suggest(["Здравствуйте!", "Курьер не приехал, хотя обещали доставку сегодня"])
        await pilot.pause()
        assert len(app.shown) == 1  # the same suggestions are not counted as shown twice
        # A suggestion with {ask:} asks in the picker before it goes in.
        strip.suggest(["Где мой заказ? Оплатил неделю назад"])
        await pilot.pause()
        assert strip.hits[0].key == "order-status"
        await pilot.press("alt+1")
        await pilot.pause()
        assert app.query_one(AnswerPicker).is_open
        await pilot.press(*"4711", "enter")
        assert app.chosen == ["delivery-late", "order-status"] and "Заказ №4711 передан в доставку" in app.composer.text


class ScriptHost(App):
    def __init__(self, record: ArticleRecord):
        super().__init__()
        self.record = record
        self.inserted: list[int] = []

    def compose(self) -> ComposeResult:
        yield ScriptPane(self.record)

    def on_mount(self) -> None:
        self.query_one("ScriptPane OptionList").focus()

    def on_script_pane_insert_step(self, event: ScriptPane.InsertStep) -> None:
        self.inserted.append(event.step.number)


async def test_script_in_the_side_pane(engine):
    script = engine.by_key["order-problem"]["ru"]
    app = ScriptHost(script)
    async with app.run_test(size=(60, 20)) as pilot:
        pane = app.query_one(ScriptPane)
        assert pane.reached == 1 and [s.number for s in pane.steps] == [1, 2, 3, 4, 5, 6]
        await pilot.press("enter")  # step 1 -> 2
        assert app.inserted == [1] and pane.reached == 2
        await pilot.press("enter")  # step 2 branches: if да -> 3, if нет -> 5; waits on the first
        assert pane.reached == 3 and pane.done == {1, 2}
        await pilot.press("j", "j", "enter")  # the operator goes to step 5 (нет)
        assert app.inserted == [1, 2, 5] and pane.reached == 6
        label = str(pane.query_one("ScriptPane OptionList").get_option_at_index(5).prompt)
        assert label.startswith("▶ 6.")


class LibraryHost(App):
    def __init__(self, screen):
        super().__init__()
        self._screen = screen

    def on_mount(self) -> None:
        self.push_screen(self._screen)


async def _library(tmp_path) -> Store:
    store = await Store.open(tmp_path / "o.db")
    await import_folder(store, DEMO_LIBRARY, "alice")
    insertion = await store.kb_record_insertion("greeting", "ru", "anna", 1)
    await store.kb_record_sent([insertion], 10, edited=True)
    return store


async def test_library_screen_shows_figures_and_an_admin_edits_in_the_editor(tmp_path):
    store = await _library(tmp_path)
    edits = []

    async def editor(text: str) -> str:
        edits.append(text)
        return text.replace("title: Card payment fails", "title: Card payment failed")

    try:
        screen = LibraryScreen(store, "alice", "admin", editor=editor, now=lambda: NOW)
        app = LibraryHost(screen)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            table = screen.query_one(DataTable)
            assert table.row_count == 44
            await pilot.press("u")  # unused first: the one used article goes last
            assert screen.ordered()[-1].key == "greeting" and table.get_row_at(43)[3].plain == "1"
            assert table.get_row_at(43)[4].plain == "100%"
            await pilot.press("u")
            assert screen.selected().key == "card-payment-failed"
            await pilot.press("e")
            await pilot.pause(0.3)
            assert edits and edits[0].startswith("---\nid: card-payment-failed\n")
        record = next(r for r in await store.kb_articles() if r.key == "card-payment-failed" and r.language == "en")
        assert record.title == "Card payment failed"
        events = [e for e in await store.events_since(0) if e.kind == "kb.article_updated" and e.actor == "alice"]
        assert json.loads(events[-1].payload)["article"] == "card-payment-failed"
    finally:
        await store.close()


async def test_an_agent_proposes_and_a_broken_edit_loses_nothing(tmp_path):
    store = await _library(tmp_path)
    outputs = iter(
        [
            "---\ntitle: [broken\n---\nbody\n",
            "---\nid: card-payment-failed\ntitle: Better title\nlanguage: en\nkind: answer\n---\nNew text\n",
        ]
    )

    async def editor(text: str) -> str:
        return next(outputs)

    try:
        screen = LibraryScreen(store, "bob", "agent", editor=editor, now=lambda: NOW)
        app = LibraryHost(screen)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("e")
            await pilot.pause(0.2)
            notes = [str(n.message) for n in app._notifications]
            assert any(n.startswith("not saved: the front matter is not valid YAML") and "kept in" in n for n in notes)
            kept = next(n for n in notes if "kept in" in n).rsplit("kept in ", 1)[1]
            assert open(kept, encoding="utf-8").read().startswith("---\ntitle: [broken")
            await pilot.press("e")
            await pilot.pause(0.3)
            await pilot.press("d")  # an agent cannot delete
            await pilot.pause(0.1)
        published = {(r.key, r.title) for r in await store.kb_articles()}
        assert ("card-payment-failed", "Card payment fails") in published
        proposals = [r for r in await store.kb_articles(include_proposed=True) if r.status == "proposed"]
        assert [(p.key, p.title) for p in proposals] == [("proposal/bob/card-payment-failed", "Better title")]
        assert len(await store.kb_articles()) == 44
    finally:
        await store.close()


async def test_save_a_reply_as_an_answer_in_two_keys(tmp_path):
    store = await Store.open(tmp_path / "o.db")
    try:

        class Host(App):
            BINDINGS = [Binding("ctrl+s", "save", "Save as answer")]
            result = None

            def action_save(self) -> None:
                def done(key):
                    Host.result = key

                self.push_screen(
                    SaveAnswerDialog(store, "alice", "admin", "Заказ передан курьеру, ждите звонка.", language="ru"), done
                )

        async with Host().run_test(size=(100, 30)) as pilot:
            await pilot.press("ctrl+s", "enter")
            await pilot.pause(0.2)
        assert Host.result == "заказ-передан-курьеру-ждите-звонка"
        saved = await store.kb_articles()
        assert [(r.key, r.title, r.body, r.language, r.kind) for r in saved] == [
            (Host.result, "Заказ передан курьеру, ждите звонка.", "Заказ передан курьеру, ждите звонка.", "ru", "answer")
        ]
    finally:
        await store.close()


# --- snapshot: hostile article text in the picker ------------------------------------------------

HOSTILE_LIBRARY = [
    ArticleRecord(
        key=f"hostile-{n}", title=f"Возврат {text[:60]}", body=f"возврат {text}", language="ru", kind="answer", shortcode=f"h{n}"
    )
    for n, text in enumerate(HOSTILE_TEXTS)
]


def test_picker_with_hostile_article_text(snap_compare):
    app = ReplyHost(Engine(HOSTILE_LIBRARY), limit=len(HOSTILE_LIBRARY))

    async def run_before(pilot) -> None:
        await pilot.press("ctrl+space", *"возврат")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


async def test_a_new_article_from_the_window_never_overwrites_another(tmp_path):
    store = await _library(tmp_path)
    outputs = iter(
        [
            "---\nid: greeting\nlanguage: ru\ntitle: Привет всем\n---\nПривет\n",  # an id already taken
            "---\nid: hello-all\nlanguage: ru\ntitle: Привет всем\nkind: answer\n---\nПривет\n",
        ]
    )

    async def editor(text: str) -> str:
        assert text.startswith("---\nid: new-answer\n")
        return next(outputs)

    try:
        screen = LibraryScreen(store, "alice", "admin", editor=editor, now=lambda: NOW)
        async with LibraryHost(screen).run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("n")
            await pilot.pause(0.2)
            assert any("is taken by another article" in str(n.message) for n in pilot.app._notifications)
            await pilot.press("n")
            await pilot.pause(0.3)
            assert screen.query_one(DataTable).row_count == 45
        titles = {(r.key, r.language): (r.title, r.source) for r in await store.kb_articles()}
        assert titles[("greeting", "ru")][0] == "Приветствие" and titles[("hello-all", "ru")] == ("Привет всем", "window")
    finally:
        await store.close()
