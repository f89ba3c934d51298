"""The reply box under the timeline: the route a reply goes by (and the other identities to
pick with ctrl+t), WhatsApp's 24-hour window, the composer, and the reply flow itself.

It writes what the operator sends (a queued reply, a note, a note on a call, a template) to the
store and reports back with messages named for what happened: `ReplyQueued`, `NoteAdded`,
`ComposingCancelled`. The screen reopens the conversation and moves focus; the box never calls
into the screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import tempfile
import time
from datetime import datetime
from pathlib import Path

from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

from omniconsole.tui.widgets.pane_colours import PaneStyles
from omniconsole.core.reply_window import FREE, ReplyWindow, reply_window
from omniconsole.errors import OmniError
from omniconsole.store import ActionError, Conversation, Operator, ReplyOption, Store
from omniconsole.tui.messages import StoreUnavailable
from omniconsole.tui.text import badge, one_line, safe
from omniconsole.tui.widgets.composer import Composer
from omniconsole.tui.workers import WorkerFailures


def window_words(window: ReplyWindow, now: float) -> str:
    """Why free text cannot go (WhatsApp's 24-hour window), in words; "" when it can."""
    if window.free_text:
        return ""
    last = window.last_inbound_at
    if last is None:
        when = "has never written on WhatsApp"
    else:
        hours = (now - last) / 3600
        when = f"last wrote {hours:.0f} hours ago" if hours < 48 else f"last wrote {hours / 24:.0f} days ago ({datetime.fromtimestamp(last):%d %b})"
    return f"outside WhatsApp's 24-hour window: the customer {when}, so only an approved template can be sent"


class ReplyBox(PaneStyles, WorkerFailures, Vertical):
    """The route line and the composer of the open conversation."""

    DEFAULT_CSS = "ReplyBox { height: auto; }"

    PANE = "reply-box"

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

    def compose(self) -> ComposeResult:
        yield Static("", id="composer-info", markup=False)
        yield Composer(id="composer")

    @property
    def composer(self) -> Composer:
        return self.query_one(Composer)

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
            text.append(" note on the call ", style=self.pane_style("note-tag"))
            text.append("  kept on the call's entry · Enter saves · Esc cancels", style=dim)
        elif mode == "note":
            text.append(" private note ", style=self.pane_style("note-tag"))
            text.append("  seen by operators only · Enter saves · Esc cancels", style=dim)
        elif self.routes:
            route = self.routes[self.route_index]
            text.append(" reply via ", style=dim)
            text.append_text(badge(route.kind))
            text.append(" ")
            text.append_text(safe(one_line(route.address, 40)))
            text.append("  (")
            text.append_text(safe(one_line(route.channel_name, 30)))
            text.append(")")
            if self.window_note:
                text.append("  outside the 24-hour window: template only", style=self.pane_style("window"))
                text.append("  · Enter or ctrl+g picks one", style=dim)
            else:
                if len(self.routes) > 1:
                    text.append("  ctrl+t other channel", style=dim)
                text.append("  · Enter sends · ctrl+e $EDITOR", style=dim)
        elif self.conversation is not None:
            text.append(" no channel to answer on: the customer never wrote on one we can send by",
                        style=self.pane_style("warning"))
        self.query_one("#composer-info", Static).update(text, layout=False)

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
        try:
            if mode == "note" and self.call_note_target is not None:
                await self.store.note_on_call(self.call_note_target, body, self.operator.login)
            elif mode == "note":
                await self.store.add_note(conversation.id, body, self.operator.login)
            else:
                if not self.routes:
                    raise ActionError("there is no channel to answer this customer on")
                route = self.routes[self.route_index]
                await self.check_window()
                if self.window_note:
                    composer.text = body  # kept: the operator may want it once the customer writes
                    self.offer_templates()
                    return
                await self.store.queue_reply(
                    conversation.id, body, self.operator.login, identity_id=route.identity_id, channel_id=route.channel_id
                )
        except OmniError as exc:
            composer.text = body
            self.app.notify(str(exc), severity="error", markup=False)
            return
        finally:
            self.submitting = False
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
            self.app.notify("Open a conversation first", severity="warning")
            return
        if not self.routes:
            return
        from omniconsole.tui.screens.templates import TemplateDialog, channel_templates

        route = self.routes[self.route_index]
        if route.kind != "whatsapp":
            self.app.notify("Templates are for WhatsApp; this reply goes by another channel", severity="warning")
            return
        choice = await self.app.push_screen_wait(TemplateDialog(channel_templates(self.app.settings, route), self.window_note))
        if choice is None:
            self.composer.focus()
            return
        try:
            await self.store.queue_reply(
                conversation.id, choice.rendered, self.operator.login,
                identity_id=route.identity_id, channel_id=route.channel_id, meta=choice.meta,
            )
        except OmniError as exc:
            self.app.notify(str(exc), severity="error", markup=False)
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
            self.app.notify(f"could not run the editor {editor!r}: {exc}", severity="error", markup=False)
            return
        finally:
            Path(path).unlink(missing_ok=True)
        composer.text = text.rstrip("\n")
        composer.focus()
