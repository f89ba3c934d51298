"""The inline answer picker of the reply box: `/` at the start of a word (or ctrl+space
anywhere) opens it under the composer; typing searches the library (fuzzy, Russian and English
word forms); Enter takes the highlighted answer, asks the operator for each `{ask:}` value, and
posts `AnswerPicker.Chosen` with the text filled in. Escape closes it (`Closed`).

The host (the reply box) owns the composer and the store:

    query = slash_query(line_before_cursor)          # "/дост" -> "дост": open the picker with it
    picker.open(query, language="ru", channel="telegram")
    on AnswerPicker.Chosen: insert_answer(composer, event.filled, replace=len(query) + 1)
                            store.kb_record_insertion(event.record.key, event.record.language, ...)

Several answers stack: each Chosen is one insertion at the cursor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from omniconsole.answers.engine import Engine, Hit
from omniconsole.answers.placeholders import Filled, ask_labels, fill
from omniconsole.i18n import N_, _
from omniconsole.models import sanitize_text
from omniconsole.store.answers import ArticleRecord
from omniconsole.tui.widgets.dialog_list import DialogList

if TYPE_CHECKING:
    from textual.widgets import TextArea

_KIND_MARK = {"answer": N_("answer"), "article": N_("article"), "script": N_("script")}


def slash_query(before_cursor: str) -> str | None:
    """The picker's query when the word at the cursor starts with `/` at the start of a word
    ("see /дост" -> "дост", "/" -> ""); None otherwise (a URL's or a date's slash is not)."""
    start = max(before_cursor.rfind(" "), before_cursor.rfind("\n"), before_cursor.rfind("\t")) + 1
    word = before_cursor[start:]
    if word.startswith("/") and "/" not in word[1:]:
        return word[1:]
    return None


def insert_answer(area: TextArea, filled: Filled, *, replace: int = 0) -> None:
    """Insert a filled answer at the composer's cursor, first removing the `replace`
    characters before it (the typed `/query`), and put the cursor where `{cursor}` stood (else
    after the answer)."""
    row, column = area.cursor_location
    start = (row, max(0, column - replace))
    area.replace(filled.text, start, (row, column))
    offset = filled.cursor if filled.cursor is not None else len(filled.text)
    before = filled.text[:offset]
    lines = before.split("\n")
    if len(lines) == 1:
        area.cursor_location = (start[0], start[1] + len(lines[0]))
    else:
        area.cursor_location = (start[0] + len(lines) - 1, len(lines[-1]))


def hit_label(hit: Hit, width: int = 100) -> Text:
    """One row of the picker, at most `width` cells: shortcode, title, kind and language, a
    glimpse of the body; article text is drawn as text, never as markup."""
    record = hit.record
    label = Text(no_wrap=True, overflow="ellipsis", end="")
    if record.shortcode:
        label.append(f"/{sanitize_text(record.shortcode)[:24]} ", style="bold cyan")
    label.append(sanitize_text(record.title)[:120], style="bold")
    others = sorted(language for language in hit.variants if language and language != record.language)
    meta = f"  {_(_KIND_MARK[record.kind]) if record.kind in _KIND_MARK else record.kind}"
    if record.language:
        meta += f" · {record.language}" + (f" (+{', '.join(others)})" if others else "")
    if record.internal:
        meta += " · " + _("internal")
    label.append(meta, style="grey62")
    body = " ".join(sanitize_text(record.body).split())
    if body:
        label.append("  " + body[: max(0, width)], style="italic grey50")
    label.truncate(max(10, width), overflow="ellipsis")  # one row per answer
    return label


class AnswerPicker(Vertical):
    """Search the library and pick an answer; see the module's docstring for the messages."""

    DEFAULT_CSS = """
    AnswerPicker { height: auto; max-height: 18; border: round $accent; padding: 0 1; display: none; }
    AnswerPicker.-open { display: block; }
    AnswerPicker #picker-query { border: none; height: 1; padding: 0; }
    AnswerPicker OptionList { height: auto; max-height: 12; border: none; padding: 0; }
    AnswerPicker #picker-ask { height: 1; color: $text-muted; }
    AnswerPicker #picker-ask-input { border: none; height: 1; padding: 0; display: none; }
    """

    BINDINGS = [
        Binding("escape", "close", N_("Close"), id="picker.close"),
        Binding("down", "cursor_down", N_("Next"), show=False, id="picker.down"),
        Binding("up", "cursor_up", N_("Previous"), show=False, id="picker.up"),
        Binding("ctrl+l", "other_language", N_("Other language"), id="picker.language"),
    ]

    class Chosen(Message):
        """An answer was picked and filled: `record` (the variant), `filled` (text and cursor
        offset), `answers` (what the operator typed for each `{ask:}` label)."""

        def __init__(self, picker: AnswerPicker, record: ArticleRecord, filled: Filled, answers: dict[str, str]) -> None:
            super().__init__()
            self.picker = picker
            self.record = record
            self.filled = filled
            self.answers = answers

    class Closed(Message):
        """The picker closed without a choice."""

    def __init__(self, engine: Engine, *, limit: int = 8, id: str | None = None) -> None:
        super().__init__(id=id)
        self.engine = engine
        self.limit = limit
        self.language: str | None = None
        self.channel: str | None = None
        self.values: Mapping[str, object] = {}
        self.hits: list[Hit] = []
        self._asking: list[str] = []
        self._answers: dict[str, str] = {}
        self._chosen: ArticleRecord | None = None

    def compose(self) -> ComposeResult:
        query = Input(placeholder=_("search answers: words, /shortcode"), id="picker-query")
        query.cursor_blink = False
        yield query
        yield DialogList(id="picker-hits", markup=False)
        yield Label("", id="picker-ask", markup=False)
        ask = Input(id="picker-ask-input")
        ask.cursor_blink = False
        yield ask

    # --- opening and searching ---------------------------------------------------------------

    def open(
        self,
        query: str = "",
        *,
        language: str | None = None,
        channel: str | None = None,
        values: Mapping[str, object] | None = None,
    ) -> None:
        """Show the picker with `query` typed, ranking for the conversation's language and
        channel; `values` fill the placeholders (customer.name, operator.name, ...)."""
        self.language, self.channel = language, channel
        self.values = values or {}
        self._reset_ask()
        self.add_class("-open")
        field = self.query_one("#picker-query", Input)
        field.value = query
        field.cursor_position = len(query)
        self.search(query)
        field.focus()

    def take(self, record: ArticleRecord, *, values: Mapping[str, object] | None = None) -> None:
        """Insert `record` as if picked here (a suggestion taken with alt+N): its `{ask:}`
        values are asked in the picker, then `Chosen` is posted as for a pick."""
        self.values = values or {}
        self._reset_ask()
        if ask_labels(record.body):
            self.add_class("-open")
        self._choose(record)

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def search(self, query: str) -> None:
        """Rank the library for `query` (the engine answers in well under a millisecond for a
        thousand articles, so this runs inline rather than in a worker)."""
        if query.strip():
            self.hits = self.engine.search(query, language=self.language, channel=self.channel, limit=self.limit)
        else:
            self.hits = [
                Hit(key, self.engine.variant(key, self.language), 0.0, variants)
                for key, variants in sorted(self.engine.by_key.items())[: self.limit]
            ]
        options = self.query_one("#picker-hits", OptionList)
        options.clear_options()
        width = max(20, (self.size.width or 80) - 4)
        options.add_options([Option(hit_label(hit, width), id=hit.key) for hit in self.hits])
        if self.hits:
            options.highlighted = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "picker-query":
            event.stop()
            self.search(event.value)

    def action_cursor_down(self) -> None:
        self.query_one("#picker-hits", OptionList).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one("#picker-hits", OptionList).action_cursor_up()

    def action_other_language(self) -> None:
        """The highlighted answer in its other language (the variant is one key away)."""
        options = self.query_one("#picker-hits", OptionList)
        if options.highlighted is None or not self.hits:
            return
        hit = self.hits[options.highlighted]
        languages = sorted(hit.variants)
        if len(languages) < 2:
            return
        following = languages[(languages.index(hit.record.language) + 1) % len(languages)]
        self.hits[options.highlighted] = Hit(hit.key, hit.variants[following], hit.score, hit.variants)
        width = max(20, (self.size.width or 80) - 4)
        options.replace_option_prompt_at_index(options.highlighted, hit_label(self.hits[options.highlighted], width))

    # --- choosing ------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "picker-query":
            options = self.query_one("#picker-hits", OptionList)
            if options.highlighted is not None and self.hits:
                self._choose(self.hits[options.highlighted].record)
        elif event.input.id == "picker-ask-input" and self._asking:
            self._answers[self._asking.pop(0)] = event.value
            event.input.value = ""
            self._next_question()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose(self.hits[event.option_index].record)

    def _choose(self, record: ArticleRecord) -> None:
        self._chosen = record
        self._answers = {}
        self._asking = ask_labels(record.body)
        self._next_question()

    def _next_question(self) -> None:
        record = self._chosen
        if record is None:
            return
        ask = self.query_one("#picker-ask-input", Input)
        if self._asking:
            label = self._asking[0]
            prompt = Text(_("Fill in for") + " ", style="grey62", end="")
            prompt.append(sanitize_text(record.title), style="bold")
            prompt.append(": ", style="grey62")
            prompt.append(sanitize_text(label), style="bold yellow")
            self.query_one("#picker-ask", Label).update(prompt)
            self.query_one("#picker-hits", OptionList).display = False
            ask.display = True
            ask.placeholder = sanitize_text(label)
            ask.focus()
            return
        filled = fill(record.body, self.values, self._answers)
        answers = dict(self._answers)
        self.close()
        self.post_message(self.Chosen(self, record, filled, answers))

    def _reset_ask(self) -> None:
        self._asking, self._answers, self._chosen = [], {}, None
        self.query_one("#picker-ask", Label).update("")
        self.query_one("#picker-ask-input", Input).display = False
        self.query_one("#picker-hits", OptionList).display = True

    def close(self) -> None:
        """Hide the picker (no message)."""
        self.remove_class("-open")
        self._reset_ask()

    def action_close(self) -> None:
        self.close()
        self.post_message(self.Closed())

    def _on_key(self, event: events.Key) -> None:
        # Tab would leave the picker for the next widget while it is open: keep focus here.
        if event.key == "tab" and self.is_open:
            event.stop()
            event.prevent_default()
