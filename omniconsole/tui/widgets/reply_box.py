"""The reply box under the timeline: the route a reply goes by (and the other identities to
pick with ctrl+t), WhatsApp's 24-hour window, the composer, and the reply flow itself.

It writes what the operator sends (a queued reply, a note, a note on a call, a template) to the
store and reports back with messages named for what happened: `ReplyQueued`, `NoteAdded`,
`ComposingCancelled`, `ScriptRequested`. The screen reopens the conversation and moves focus; the
box never calls into the screen.

Answers from the library (issue #16) live here too: `/` at the start of a word or ctrl+space
opens the picker (omniconsole/tui/widgets/answer_picker.py) over the composer; the suggestion
strip shows the engine's top 3 for the customer's latest messages (alt+1..3 take one); each
insertion, suggestion shown and reply sent is recorded for assist acceptance; a reply holding an
answer is rendered for its channel (omniconsole/answers/render.py) when queued. The engine is
built in a thread and rebuilt when the screen says the library changed (`load_engine`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import tempfile
import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static, TextArea

from omniconsole.answers.engine import Engine
from omniconsole.answers.language import detect_by_script
from omniconsole.answers.placeholders import Filled, fill, first_name
from omniconsole.answers.usage import was_edited
from omniconsole.core.reply_window import FREE, ReplyWindow, reply_window
from omniconsole.errors import OmniError, error_text
from omniconsole.i18n import N_, _
from omniconsole.store import ActionError, Conversation, CustomerProfile, Operator, ReplyOption, Store
from omniconsole.store.answers import ArticleRecord
from omniconsole.tui.messages import StoreUnavailable
from omniconsole.tui.text import badge, day_month, one_line, safe
from omniconsole.tui.widgets.answer_picker import AnswerPicker, insert_answer, slash_query
from omniconsole.tui.widgets.answer_suggestions import SuggestionStrip
from omniconsole.tui.widgets.composer import Composer
from omniconsole.tui.widgets.pane_colours import PaneStyles
from omniconsole.tui.workers import WorkerFailures

#: How long a conversation must stay on screen before suggestions are computed for it (s):
#: moving through the inbox at key speed computes none.
SUGGEST_DELAY = 0.2


def window_words(window: ReplyWindow, now: float) -> str:
    """Why free text cannot go (WhatsApp's 24-hour window), in words; "" when it can."""
    if window.free_text:
        return ""
    last = window.last_inbound_at
    if last is None:
        when = _("has never written on WhatsApp")
    else:
        hours = (now - last) / 3600
        when = (
            _("last wrote {n} hours ago").format(n=f"{hours:.0f}")
            if hours < 48
            else _("last wrote {n} days ago ({day})").format(n=f"{hours / 24:.0f}", day=day_month(last))
        )
    return _("outside WhatsApp's 24-hour window: the customer {when}, so only an approved template can be sent").format(when=when)


class ReplyBox(PaneStyles, WorkerFailures, Vertical):
    """The route line and the composer of the open conversation."""

    DEFAULT_CSS = "ReplyBox { height: auto; }"

    PANE = "reply-box"

    # alt+1..3 (SUGGESTION_BINDINGS) are the screen's: a suggestion is taken from the timeline too.
    BINDINGS = [Binding("ctrl+space", "open_picker", N_("Answers"), id="answers.picker")]

    class ReplyQueued(Message):
        """A reply (or a template, `template` names it) is queued in `conversation_id`."""

        def __init__(self, conversation_id: int, template: str = "") -> None:
            super().__init__()
            self.conversation_id = conversation_id
            self.template = template

    class NoteAdded(Message):
        """A private note (or a note on a call) was saved in `conversation_id`."""

        def __init__(self, conversation_id: int) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    class ComposingCancelled(Message):
        """The operator left the composer with Escape."""

    class ScriptRequested(Message):
        """An operator script was picked: the screen shows it in a side pane."""

        def __init__(self, record: ArticleRecord) -> None:
            super().__init__()
            self.record = record

    def __init__(self, store: Store, operator: Operator, *, clock=time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.operator = operator
        self.clock = clock
        self.conversation: Conversation | None = None
        self.routes: list[ReplyOption] = []
        self.route_index = 0
        self.window = FREE
        # Why free text cannot go by the chosen route (WhatsApp's 24-hour window), or "".
        self.window_note = ""
        # The call (timeline entry id) the note being written is about, or None.
        self.call_note_target: int | None = None
        self.submitting = False
        self._typing_sent = 0.0
        # Answers: the engine (empty until built off the UI thread), the placeholder values of
        # the open conversation, the customer's latest messages, and the insertions in the
        # reply being written: (id from kb_record_insertion, the text inserted).
        self.engine = Engine([])
        self.values: dict[str, object] = {}
        self.customer_texts: list[str] = []
        self.customer_language: str | None = None  # detected from their latest messages; None: cannot tell
        self.insertions: list[tuple[int, str]] = []
        self._replace = 0  # characters of the typed `/query` an insertion replaces
        self._suggested_for: tuple | None = None
        self._suggest_timer = None
        self._slash_dismissed: tuple[int, int] | None = None
        # The last reply sent from this box (conversation id, Markdown written), for "save as answer".
        self.last_sent: tuple[int, str] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="composer-info", markup=False)
        strip = SuggestionStrip(self.engine, id="suggestions")
        strip.display = False  # until there is something to suggest
        yield strip
        yield Composer(id="composer")
        yield AnswerPicker(self.engine, id="answer-picker")

    @property
    def composer(self) -> Composer:
        return self.query_one(Composer)

    @property
    def picker(self) -> AnswerPicker:
        return self.query_one(AnswerPicker)

    @property
    def suggestions(self) -> SuggestionStrip:
        return self.query_one(SuggestionStrip)

    @property
    def route(self) -> ReplyOption | None:
        return self.routes[self.route_index] if self.routes else None

    def writing_in(self) -> int | None:
        """The conversation a reply is being written (or sent) in, None when the operator is
        not writing: a ringing call must not switch away from it."""
        if self.conversation is None or not (self.composer.text.strip() or self.submitting):
            return None
        return self.conversation.id

    # --- data down ------------------------------------------------------------------------

    def show(self, conversation: Conversation, routes: list[ReplyOption]) -> None:
        """The open conversation and its routes: a new conversation starts on its default route,
        the same one keeps the operator's pick."""
        changed = self.conversation is None or self.conversation.id != conversation.id
        self.conversation = conversation
        self.routes = routes
        if changed:
            self.route_index = next((i for i, r in enumerate(self.routes) if r.default), 0)
            self.insertions = []
            self.customer_language = None
            if self.picker.is_open:  # closing a closed one still redraws its parts
                self.picker.close()
        else:
            self.route_index = min(self.route_index, max(0, len(self.routes) - 1))
        self.draw()

    def start_reply(self) -> None:
        self.composer.mode = "reply"
        self.call_note_target = None
        self.draw()
        self.composer.focus()

    def start_note(self, call_entry: int | None = None) -> None:
        """A private note; about the call `call_entry` (a timeline entry id) when given."""
        self.call_note_target = call_entry
        self.composer.mode = "note"
        self.draw()
        self.composer.focus()

    async def check_window(self) -> None:
        """Find whether the chosen route is a WhatsApp one past its 24-hour window (then only a
        template may go) and say so in the info line."""
        window = FREE
        if self.route is not None and self.route.kind == "whatsapp":
            try:
                window = await reply_window(self.store, self.route, self.clock())
            except OmniError as exc:
                self.post_message(StoreUnavailable(exc))
                return
        note = window_words(window, self.clock())
        self.window = window
        if note != self.window_note:
            self.window_note = note
            self.draw()

    def draw(self) -> None:
        text = Text(end="")
        mode = self.composer.mode
        dim = self.pane_style("dim")
        if mode == "note" and self.call_note_target is not None:
            text.append(" " + _("note on the call") + " ", style=self.pane_style("note-tag"))
            text.append("  " + _("kept on the call's entry · Enter saves · Esc cancels"), style=dim)
        elif mode == "note":
            text.append(" " + _("private note") + " ", style=self.pane_style("note-tag"))
            text.append("  " + _("seen by operators only · Enter saves · Esc cancels"), style=dim)
        elif self.routes:
            route = self.routes[self.route_index]
            text.append(" " + _("reply via") + " ", style=dim)
            text.append_text(badge(route.kind))
            text.append(" ")
            text.append_text(safe(one_line(route.address, 40)))
            text.append("  (")
            text.append_text(safe(one_line(route.channel_name, 30)))
            text.append(")")
            if self.window_note:
                text.append("  " + _("outside the 24-hour window: template only"), style=self.pane_style("window"))
                text.append("  · " + _("Enter or ctrl+g picks one"), style=dim)
            else:
                if len(self.routes) > 1:
                    text.append("  " + _("ctrl+t other channel"), style=dim)
                text.append("  · " + _("Enter sends · ctrl+e $EDITOR"), style=dim)
        elif self.conversation is not None:
            text.append(
                " " + _("no channel to answer on: the customer never wrote on one we can send by"),
                style=self.pane_style("warning"),
            )
        self.query_one("#composer-info", Static).update(text, layout=False)

    # --- answers ---------------------------------------------------------------------------

    def show_customer(self, profile: CustomerProfile | None, customer_texts: list[str]) -> None:
        """The open conversation's customer: the placeholder values an answer is filled with,
        and their latest messages (oldest first), for which suggestions are computed once the
        conversation stays on screen for `SUGGEST_DELAY`."""
        conversation = self.conversation
        name = profile.display_name if profile else ""
        values: dict[str, object] = {
            "customer.name": name,
            "customer.first_name": first_name(name),
            "operator.name": self.operator.display_name or self.operator.login,
            "conversation.id": conversation.id if conversation else "",
        }
        for key, value in ((profile.attributes if profile else None) or {}).items():
            values[f"customer.attr.{key}"] = value
        self.values = values
        self.customer_texts = customer_texts[-3:]
        if self._suggest_timer is not None:
            self._suggest_timer.stop()
        self._suggest_timer = self.set_timer(SUGGEST_DELAY, self.suggest)

    @work(exclusive=True, group="answers-engine", exit_on_error=False)
    async def load_engine(self) -> None:
        """Build the library's engine off the UI thread; called at start and again whenever a
        `kb.*` event says the library changed."""
        try:
            records, figures = await self.store.kb_articles(), await self.store.kb_figures()
        except OmniError as exc:
            self.post_message(StoreUnavailable(exc))
            return

        engine = await asyncio.to_thread(Engine, records, figures)
        self.engine = self.picker.engine = self.suggestions.engine = engine
        self._suggested_for = None
        self.suggest()

    @work(exclusive=True, group="answers-suggest", exit_on_error=False)
    async def suggest(self) -> None:
        """The engine's top 3 for the customer's latest messages, computed in a thread."""
        conversation, texts, engine = self.conversation, list(self.customer_texts), self.engine
        route = self.route
        key = (conversation.id if conversation else None, tuple(texts), route.kind if route else None, id(engine))
        if key == self._suggested_for:
            return
        self._suggested_for = key

        def work() -> tuple[str | None, list]:
            # The language by alphabet, not py3langid's model: the model is ~90 MB resident,
            # most of the window's memory budget. "" keeps the engine from loading it.
            language = detect_by_script(texts)
            return language, engine.suggest(
                texts, language=language or "", channel=route.kind if route else None
            ) if texts else []

        language, hits = await asyncio.to_thread(work)
        if self.conversation is conversation:
            self.customer_language = language
            if hits or self.suggestions.hits:  # nothing to nothing: no redraw
                self.suggestions.show(hits)

    def open_picker(self, query: str = "", replace: int = 0) -> None:
        """Open the picker with `query`; the insertion replaces `replace` characters before the
        composer's cursor (the typed `/query`)."""
        if self.conversation is None:
            return
        self._replace = replace
        route = self.route
        self.picker.open(query, language=self.customer_language, channel=route.kind if route else None, values=self.values)

    def action_open_picker(self) -> None:
        self._slash_dismissed = None
        self.open_picker()

    def action_suggestion(self, index: int) -> None:
        self.suggestions.choose(index)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area is not self.composer or self.picker.is_open:
            return
        row, column = self.composer.cursor_location
        before = self.composer.document.get_line(row)[:column]
        query = slash_query(before)
        if query is None:
            self._slash_dismissed = None
            return
        where = (row, column - len(query) - 1)
        if where != self._slash_dismissed:
            self.open_picker(query, replace=len(query) + 1)

    async def on_answer_picker_chosen(self, event: AnswerPicker.Chosen) -> None:
        event.stop()
        await self._take(event.record, event.filled)

    async def _take(self, record: ArticleRecord, filled: Filled) -> None:
        composer = self.composer
        # _replace < 0 marks a suggestion taken with alt+N (it replaces nothing).
        suggested = self._replace < 0
        replace, self._replace = max(0, self._replace), 0
        self._slash_dismissed = None
        if record.kind == "script":
            # A script is followed step by step in the side pane, not pasted whole.
            if replace:
                row, column = composer.cursor_location
                composer.replace("", (row, max(0, column - replace)), (row, column))
            self.post_message(self.ScriptRequested(record))
            composer.focus()
            return
        insert_answer(composer, filled, replace=replace)
        composer.focus()
        conversation = self.conversation
        try:
            insertion = await self.store.kb_record_insertion(
                record.key, record.language, self.operator.login, conversation.id if conversation else None, suggested=suggested
            )
        except OmniError as exc:
            self.post_message(StoreUnavailable(exc))
            return
        self.insertions.append((insertion, filled.text))

    def insert_text(self, text: str) -> None:
        """Insert `text` at the composer's cursor (a script's step) as an answer of the reply."""
        filled = fill(text, self.values)
        insert_answer(self.composer, filled)
        self.insertions.append((0, filled.text))
        self.composer.focus()

    def on_answer_picker_closed(self, event: AnswerPicker.Closed) -> None:
        event.stop()
        if self._replace > 0:
            row, column = self.composer.cursor_location
            self._slash_dismissed = (row, column - self._replace)
        self._replace = 0
        self.composer.focus()

    async def on_suggestion_strip_shown(self, event: SuggestionStrip.Shown) -> None:
        event.stop()
        conversation = self.conversation
        try:
            await self.store.kb_record_shown(
                [(hit.key, hit.record.language) for hit in event.hits],
                self.operator.login,
                conversation.id if conversation else None,
            )
        except OmniError as exc:
            self.post_message(StoreUnavailable(exc))

    def on_suggestion_strip_chosen(self, event: SuggestionStrip.Chosen) -> None:
        event.stop()
        if self.conversation is None:
            return
        self._replace = -1  # a suggestion: replaces nothing, recorded as suggested
        self.picker.take(event.hit.record, values=self.values)
        if not self.picker.is_open:
            self.composer.focus()

    # --- the composer's requests ----------------------------------------------------------

    async def on_composer_submitted(self, message: Composer.Submitted) -> None:
        message.stop()
        await self.submit(message.text)

    async def submit(self, body: str) -> None:
        conversation = self.conversation
        if conversation is None or not body.strip() or self.submitting:
            return
        # Cleared before the database round trip: a second Enter (or key repeat) finds an
        # empty composer instead of sending the same reply twice. Restored if the write fails.
        self.submitting = True
        composer = self.composer
        composer.clear()
        mode = composer.mode
        message_id: int | None = None
        try:
            if mode == "note" and self.call_note_target is not None:
                await self.store.note_on_call(self.call_note_target, body, self.operator.login)
            elif mode == "note":
                await self.store.add_note(conversation.id, body, self.operator.login)
            else:
                if not self.routes:
                    raise ActionError(N_("there is no channel to answer this customer on"))
                route = self.routes[self.route_index]
                await self.check_window()
                if self.window_note:
                    composer.text = body  # kept: the operator may want it once the customer writes
                    self.offer_templates()
                    return
                # A reply holding answers from the library is Markdown: each channel gets its
                # own rendering. Typed replies go as written (a "2*3*4" stays as it is).
                text, meta = body, None
                if self.insertions:
                    # Imported here: markdown-it costs ~60 ms at start, and most windows send
                    # their first answer long after.
                    from omniconsole.answers.render import render

                    rendered = render(body, route.kind)
                    text, meta = rendered.text, (rendered.meta or None)
                message_id = await self.store.queue_reply(
                    conversation.id,
                    text,
                    self.operator.login,
                    identity_id=route.identity_id,
                    channel_id=route.channel_id,
                    meta=meta,
                )
                self.last_sent = (conversation.id, body)
        except OmniError as exc:
            composer.text = body
            self.app.notify(error_text(exc), severity="error", markup=False)
            return
        finally:
            self.submitting = False
        insertions, self.insertions = [(i, t) for i, t in self.insertions if i], []
        if mode != "note" and insertions:
            # After the reply is queued, apart from it: a failure here must not offer to send it again.
            try:
                await self.store.kb_record_sent(
                    [i for i, _ in insertions], message_id, was_edited([t for _, t in insertions], body)
                )
            except OmniError as exc:
                self.post_message(StoreUnavailable(exc))
        composer.mode = "reply"
        self.call_note_target = None
        try:
            await self.store.set_presence(self.operator.login, conversation.id, typing=False)
        except OmniError as exc:
            self.post_message(StoreUnavailable(exc))
        self.post_message(self.NoteAdded(conversation.id) if mode == "note" else self.ReplyQueued(conversation.id))

    def on_composer_cancelled(self, message: Composer.Cancelled) -> None:
        message.stop()
        self.composer.mode = "reply"
        self.call_note_target = None
        self.draw()
        self.post_message(self.ComposingCancelled())

    async def on_composer_route_change_requested(self, message: Composer.RouteChangeRequested) -> None:
        message.stop()
        if self.routes and self.composer.mode == "reply":
            self.route_index = (self.route_index + 1) % len(self.routes)
            self.draw()
            await self.check_window()

    async def on_composer_typed(self, message: Composer.Typed) -> None:
        message.stop()
        if self.conversation and time.monotonic() - self._typing_sent > 2:
            self._typing_sent = time.monotonic()
            try:
                await self.store.set_presence(self.operator.login, self.conversation.id, typing=True)
            except OmniError as exc:
                self.post_message(StoreUnavailable(exc))

    def on_composer_templates_requested(self, message: Composer.TemplatesRequested) -> None:
        message.stop()
        self.offer_templates()

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def offer_templates(self) -> None:
        """Offer the route's approved templates (WhatsApp) and queue the one filled in."""
        conversation = self.conversation
        if conversation is None:
            self.app.notify(_("Open a conversation first"), severity="warning")
            return
        if not self.routes:
            return
        from omniconsole.tui.screens.templates import TemplateDialog, channel_templates

        route = self.routes[self.route_index]
        if route.kind != "whatsapp":
            self.app.notify(_("Templates are for WhatsApp; this reply goes by another channel"), severity="warning")
            return
        choice = await self.app.push_screen_wait(TemplateDialog(channel_templates(self.app.settings, route), self.window_note))
        if choice is None:
            self.composer.focus()
            return
        try:
            await self.store.queue_reply(
                conversation.id,
                choice.rendered,
                self.operator.login,
                identity_id=route.identity_id,
                channel_id=route.channel_id,
                meta=choice.meta,
            )
        except OmniError as exc:
            self.app.notify(error_text(exc), severity="error", markup=False)
            return
        self.post_message(self.ReplyQueued(conversation.id, template=choice.name))

    async def on_composer_editor_requested(self, message: Composer.EditorRequested) -> None:
        message.stop()
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        composer = self.composer
        with tempfile.NamedTemporaryFile("w+", suffix=".txt", delete=False, encoding="utf-8") as f:
            f.write(composer.text)
            path = f.name
        try:
            # Awaited, not run blocking: a core in this window keeps its lease and sends while
            # the operator writes. Where the terminal cannot be handed over (a headless run),
            # the editor runs beside the window.
            suspended = contextlib.nullcontext() if self.app.is_headless else self.app.suspend()
            with suspended:
                process = await asyncio.create_subprocess_exec(*shlex.split(editor), path)
                await process.wait()
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:
            self.app.notify(
                _("could not run the editor {editor}: {error}").format(editor=repr(editor), error=error_text(exc)),
                severity="error",
                markup=False,
            )
            return
        finally:
            Path(path).unlink(missing_ok=True)
        composer.text = text.rstrip("\n")
        composer.focus()
