"""The operator's single window: inbox | timeline + composer | customer, and a status bar.

Everything the window shows comes from the store; everything the operator does is a write to
the store. Other operators' changes arrive by following the events log every 150 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from omniconsole.config import Settings
from omniconsole.errors import OmniError
from omniconsole.models import ConversationStatus, InboxView
from omniconsole.store import ActionError, Conversation, Operator, ReplyOption, Store
from omniconsole.tui.customer_actions import CustomerActions
from omniconsole.tui.text import HEALTH, PRIORITY, badge, one_line, safe
from omniconsole.tui.widgets.composer import Composer
from omniconsole.tui.widgets.customer_pane import CustomerPane
from omniconsole.tui.widgets.inbox_list import InboxList
from omniconsole.tui.widgets.timeline import Timeline

log = logging.getLogger(__name__)

VIEW_KEYS = [
    ("1", InboxView.MINE, "Mine"),
    ("2", InboxView.UNASSIGNED, "Unassigned"),
    ("3", InboxView.ALL, "All"),
    ("4", InboxView.SNOOZED, "Snoozed"),
    ("5", InboxView.RESOLVED, "Resolved"),
]


def _action_commands():
    # Imported when the palette first opens: the command machinery is not needed to start.
    from omniconsole.tui.commands import ActionCommands

    return ActionCommands


class MainScreen(CustomerActions, Screen):
    """Inbox, conversation and customer side by side."""

    # Textual repaints the whole screen when focus moves (a repaint reactive). The panes
    # restyle and repaint themselves on focus and blur, so that full repaint only cost every
    # Enter and Esc ~30 ms of the 50 ms keystroke budget.
    focused: Reactive[Widget | None] = Reactive(None, repaint=False)

    BINDINGS = [
        *[Binding(key, f"show_view('{view.value}')", label, id=f"view.{view.value}") for key, view, label in VIEW_KEYS],
        Binding("r", "reply", "Reply", id="conversation.reply"),
        Binding("n", "note", "Note", id="conversation.note"),
        Binding("e", "resolve", "Resolve", id="conversation.resolve"),
        Binding("E", "resolve_next", "Resolve and next", id="conversation.resolve_next"),
        Binding("u", "reopen", "Reopen", id="conversation.reopen"),
        Binding("z", "snooze", "Snooze", id="conversation.snooze"),
        Binding("a", "assign_me", "Assign to me", id="conversation.assign_me"),
        Binding("A", "assign", "Assign to…", id="conversation.assign"),
        Binding("U", "unassign", "Unassign", id="conversation.unassign"),
        Binding("l", "labels", "Labels", id="conversation.labels"),
        Binding("p", "priority", "Priority", id="conversation.priority"),
        Binding("R", "retry", "Retry failed message", id="message.retry"),
        Binding("s", "save_attachments", "Save attachments", id="message.save"),
        Binding("o", "open_attachment", "Open attachment", id="message.open"),
        Binding("w", "next_waiting", "Next waiting", id="inbox.next_waiting"),
        Binding("h", "history", "Customer's conversations", id="customer.history"),
        Binding("c", "edit_customer", "Edit customer", id="customer.edit"),
        Binding("m", "same_person", "Merge / same person", id="customer.merge"),
        Binding("slash", "search", "Search", id="app.search"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("colon", "app.command_palette", "Commands", id="app.commands"),
        Binding("tab", "focus_next_pane", "Next pane", show=False, id="app.next_pane"),
        Binding("shift+tab", "focus_previous_pane", "Previous pane", show=False, id="app.previous_pane"),
        Binding("escape", "back", "Back to inbox", show=False, id="app.back"),
        Binding("q", "app.quit", "Quit", id="app.quit"),
    ]

    def __init__(self, store: Store, operator: Operator, clock) -> None:
        super().__init__()
        self.store = store
        self.operator = operator
        self.clock = clock
        self.conversation: Conversation | None = None
        self.routes: list[ReplyOption] = []
        self.route_index = 0
        self._typing_sent = 0.0
        self._last_event = 0
        self._channels_text = Text("")
        self._core_text = Text("")
        self.inbox_ready = asyncio.Event()
        self._preview_timer = None
        self._following = False
        self._trouble_shown = False
        self._submitting = False
        self.opened: int | None = None  # the conversation whose timeline finished loading
        # Why free text cannot go by the chosen route (WhatsApp's 24-hour window), or "".
        self.window_note = ""
        # The call (timeline entry id) the note being written is about, or None.
        self.call_note_target: int | None = None

    # --- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("", id="views", markup=False)
        with Horizontal(id="main"):
            yield InboxList(self.store, self.operator.login, clock=self.clock, id="inbox")
            with Vertical(id="conversation"):
                yield Static("", id="conversation-header", markup=False)
                yield Timeline(clock=self.clock, id="timeline")
                yield Static("", id="presence", markup=False)
                yield Static("", id="composer-info", markup=False)
                yield Composer(id="composer")
            yield CustomerPane(clock=self.clock, id="customer")
        yield Static("", id="status", markup=False)

    @property
    def inbox(self) -> InboxList:
        return self.query_one(InboxList)

    @property
    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    @property
    def composer(self) -> Composer:
        return self.query_one(Composer)

    async def on_mount(self) -> None:
        self._last_event = await self.store.last_event_id()
        self.inbox.focus()
        await self.inbox.load(InboxView.ALL)
        self.inbox_ready.set()
        # What exists now (Textual, the stylesheet, caches) lives as long as the window: keep
        # it out of the garbage collector's scans, whose pauses showed up as slow keystrokes.
        gc.freeze()
        await self.refresh_status()
        self._show_composer_info()
        self.set_interval(0.15, self.follow_events)
        self.set_interval(1.0, self._safely(self.refresh_presence))
        self.set_interval(5.0, self._safely(self.refresh_status))
        self.set_interval(30.0, self._tick)

    def on_resize(self) -> None:
        width = self.size.width
        self.set_class(width < 110, "narrow")
        self.set_class(width < 70, "tiny")

    def _safely(self, job):
        async def run() -> None:
            try:
                await job()
            except OmniError as exc:
                self._store_trouble(exc)

        return run

    def _tick(self) -> None:
        self.inbox.refresh()  # waiting times move on

    # --- following other windows ----------------------------------------------------------

    async def follow_events(self) -> None:
        """Every 150 ms: what did others (and the core) change? A tick that finds the previous
        one still working skips, so no change is ever dropped by a cancelled reload."""
        if self._following:
            return
        self._following = True
        try:
            events = await self.store.events_since(self._last_event, limit=5000)
            if not events:
                return
            customers = {e.customer_id for e in events if e.customer_id}
            # Reads change only the reader's unread marks, and this window marks its own rows
            # itself (InboxList.mark_read): no reload for them.
            if any(e.kind != "conversation.read" for e in events):
                keep = self.inbox.selected.conversation_id if self.inbox.selected else None
                await self.inbox.load(keep=keep)
            current = self.conversation
            if current and (
                any(e.conversation_id == current.id and e.kind != "conversation.read" for e in events)
                or current.customer_id in customers
            ):
                await self.open_conversation(current.id, keep_position=True, mark_read=False, announce=False)
            if any(e.kind == "channel.health" for e in events):
                await self.refresh_status()
            self._last_event = events[-1].id
            ring = next((e for e in reversed(events) if e.kind == "call.ringing" and self._rings_here(e)), None)
            if ring is not None:
                await self._screen_pop(ring)
        except OmniError as exc:
            self._store_trouble(exc)
        finally:
            self._following = False

    # A ring older than this is history by the time the window sees it (it was busy or
    # suspended for $EDITOR): popping it would throw the operator out of their work for nothing.
    SCREEN_POP_MAX_AGE = 60.0

    def _rings_here(self, event) -> bool:
        """Whether a `call.ringing` event rings this operator's extension, and is recent."""
        if not self.operator.extension or event.conversation_id is None:
            return False
        try:
            extensions = json.loads(event.payload or "{}").get("extensions") or []
        except (ValueError, AttributeError):
            return False
        return self.operator.extension in extensions and event.at > time.time() - self.SCREEN_POP_MAX_AGE

    async def _screen_pop(self, event) -> None:
        """A call rings this operator's phone: show the caller's conversation and card. Not
        while they are writing a reply: switching under it would send their words to the caller."""
        try:
            payload = json.loads(event.payload or "{}")
        except ValueError:
            payload = {}
        caller = one_line(str(payload.get("name") or payload.get("number") or "an unknown number"), 60)
        number = one_line(str(payload.get("number") or ""), 30)
        words = f"Incoming call from {caller}" + (f" ({number})" if number and number != caller else "")
        # Busy: writing in another conversation, or sending what was written (the composer is
        # already empty then, and the send ends by reopening its own conversation).
        busy = (bool(self.composer.text.strip()) or self._submitting) and self.conversation is not None \
            and self.conversation.id != event.conversation_id
        if busy:
            self.app.notify(f"{words}: conversation #{event.conversation_id} (not opened: you are writing a reply)",
                            title="📞 Ringing", markup=False, timeout=15)
            return
        await self.inbox.load(keep=event.conversation_id)
        await self.open_conversation(event.conversation_id, mark_read=False)
        self.app.notify(words, title="📞 Ringing", markup=False, timeout=10)

    def _store_trouble(self, exc: OmniError) -> None:
        """The database did not answer (locked by a long import, disk full): say so once, keep
        the window, try again on the next tick."""
        log.warning("window: %s", exc)
        if not self._trouble_shown:
            self._trouble_shown = True
            self.app.notify(f"The database is not answering: {exc}", severity="error", markup=False, timeout=8)
            self.set_timer(30, lambda: setattr(self, "_trouble_shown", False))

    async def refresh_status(self) -> None:
        channels = await self.store.channels()
        text = Text(end="")
        for channel in channels:
            symbol, style = HEALTH.get(channel.health, HEALTH["unknown"])
            text.append(f" {symbol} ", style=style)
            text.append_text(safe(one_line(channel.name, 20)))
            if channel.health in ("degraded", "down") and channel.health_detail:
                text.append(": ")
                text.append_text(safe(one_line(channel.health_detail, 40), style))
        self._channels_text = text
        holder = await self.store.lease_holder()
        core = getattr(self.app, "core_state", None)
        if core:
            self._core_text = Text(core, style="grey62")
        elif holder is None or holder.expires_at < time.time():
            self._core_text = Text("no core is running: nothing is received or sent", style="bold red")
        else:
            self._core_text = Text(f"core: pid {holder.pid} on {holder.host}", style="grey62")
        self._draw_status()

    def _draw_status(self) -> None:
        text = Text(end="")
        text.append(f" {self.operator.login} ", style="bold black on #6FA8DC")
        text.append(f" {self.operator.role} ", style="grey62")
        text.append_text(self._channels_text)
        text.append("  ")
        text.append_text(self._core_text)
        text.append("   ? help  / search  r reply  n note  e resolve  : commands", style="grey50")
        self.query_one("#status", Static).update(text, layout=False)

    def on_inbox_list_counts_changed(self, message: InboxList.CountsChanged) -> None:
        text = Text(end="")
        for key, view, label in VIEW_KEYS:
            style = "bold reverse" if view == self.inbox.view else ""
            text.append(f" {self.app.get_key_display(Binding(key, ''))} {label} {message.counts.get(view, 0)} ", style=style)
            text.append(" ")
        self.query_one("#views", Static).update(text, layout=False)

    # --- the open conversation ------------------------------------------------------------

    PREVIEW_DELAY = 0.06

    def on_inbox_list_conversation_selected(self, message: InboxList.ConversationSelected) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
            self._preview_timer = None
        if message.open or self.conversation is None:
            self.show_selected(message.conversation_id, message.open)
        else:
            # Holding j down should move the highlight at key speed: the conversation under
            # it loads once the cursor rests, not for every row passed over.
            self._preview_timer = self.set_timer(
                self.PREVIEW_DELAY, lambda cid=message.conversation_id: self.show_selected(cid, False)
            )

    @work(exclusive=True, group="open", exit_on_error=False)
    async def show_selected(self, conversation_id: int, open: bool) -> None:
        """Moving through the inbox previews each conversation (a newer move cancels a stale
        load); Enter opens it: marked read, presence announced, timeline focused."""
        if open and self.opened == conversation_id:
            # Already on screen (previewed, and kept fresh by the events follower): opening it
            # only marks it read, tells the others, and moves into the timeline.
            self.timeline.focus()
            self.inbox.mark_read(conversation_id)
            await self.store.set_presence(self.operator.login, conversation_id)
            await self.store.mark_read(self.operator.login, conversation_id)
            return
        if open:
            self.timeline.focus()
        await self.open_conversation(conversation_id, mark_read=open, announce=open)

    async def open_conversation(
        self,
        conversation_id: int,
        *,
        focus_message: int | None = None,
        keep_position: bool = False,
        mark_read: bool = True,
        announce: bool = True,
    ) -> None:
        view = await self.store.conversation_view(conversation_id, self.operator.login)
        if view is None:
            return
        conversation, entries, profile, routes, others = view
        changed = self.conversation is None or self.conversation.id != conversation_id
        self.conversation = conversation
        # Everything is drawn in one batch: one repaint per key, not one per pane.
        with self.app.batch_update():
            self.timeline.show(entries, focus_message=focus_message, keep_position=keep_position and not changed)
            self.query_one(CustomerPane).show(profile, conversation_id)
            self._draw_header(profile.display_name if profile else "")
            self.routes = routes
            if changed:
                self.route_index = next((i for i, r in enumerate(self.routes) if r.default), 0)
            else:
                self.route_index = min(self.route_index, max(0, len(self.routes) - 1))
            self._show_composer_info()
            self._draw_presence(others)
        await self._check_window()
        self.opened = conversation_id  # drawn; what follows only tells the others
        if announce:
            await self.store.set_presence(self.operator.login, conversation_id)
        if mark_read:
            self.inbox.mark_read(conversation_id)
            await self.store.mark_read(self.operator.login, conversation_id)

    def _draw_header(self, customer_name: str) -> None:
        c = self.conversation
        if c is None:
            return
        # Two fixed lines whatever the width: a long subject is cut, never wrapped.
        text = Text(end="", no_wrap=True, overflow="ellipsis")
        text.append(f"#{c.id} ", style="grey62")
        text.append_text(safe(one_line(customer_name, 40), "bold"))
        text.append("  ")
        text.append_text(safe(one_line(c.subject, 60), "italic"))
        text.append(f"\n{c.status}", style={"open": "green", "pending": "yellow", "snoozed": "blue"}.get(c.status, "grey50"))
        if c.snoozed_until:
            text.append(f" until {datetime.fromtimestamp(c.snoozed_until):%d %b %H:%M}", style="blue")
        text.append("  assignee ", style="grey62")
        text.append(c.assignee or "nobody", style="magenta" if c.assignee else "grey50")
        if c.priority:
            text.append(f"  {PRIORITY.get(c.priority, '')}", style="bold red")
        if c.labels:
            text.append("  ")
            text.append_text(safe(", ".join(c.labels), "magenta"))
        for kind in c.channel_kinds:
            text.append(" ")
            text.append_text(badge(kind))
        self.query_one("#conversation-header", Static).update(text, layout=False)

    async def refresh_presence(self) -> None:
        if self.conversation is not None:
            self._draw_presence(await self.store.presence(self.conversation.id, self.operator.login))

    def _draw_presence(self, others) -> None:
        text = Text(end="")
        for other in others:
            if other.typing:
                text.append(f" ✎ {other.operator} is typing ", style="bold yellow")
            else:
                text.append(f" 👁 {other.operator} is viewing ", style="cyan")
        self.query_one("#presence", Static).update(text, layout=False)

    def _show_composer_info(self) -> None:
        text = Text(end="")
        if self.composer.mode == "note" and self.call_note_target is not None:
            text.append(" note on the call ", style="bold black on #E0B050")
            text.append("  kept on the call's entry · Enter saves · Esc cancels", style="grey62")
        elif self.composer.mode == "note":
            text.append(" private note ", style="bold black on #E0B050")
            text.append("  seen by operators only · Enter saves · Esc cancels", style="grey62")
        elif self.routes:
            route = self.routes[self.route_index]
            text.append(" reply via ", style="grey62")
            text.append_text(badge(route.kind))
            text.append(" ")
            text.append_text(safe(one_line(route.address, 40)))
            text.append("  (")
            text.append_text(safe(one_line(route.channel_name, 30)))
            text.append(")")
            if self.window_note:
                text.append("  outside the 24-hour window: template only", style="bold yellow")
                text.append("  · Enter or ctrl+g picks one", style="grey62")
            else:
                if len(self.routes) > 1:
                    text.append("  ctrl+t other channel", style="grey62")
                text.append("  · Enter sends · ctrl+e $EDITOR", style="grey62")
        elif self.conversation is not None:
            text.append(" no channel to answer on: the customer never wrote on one we can send by", style="yellow")
        self.query_one("#composer-info", Static).update(text, layout=False)

    # --- composing ------------------------------------------------------------------------

    def _need_conversation(self) -> Conversation | None:
        if self.conversation is None:
            self.app.notify("Open a conversation first", severity="warning")
        return self.conversation

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_reply(self) -> None:
        conversation = self._need_conversation()
        if conversation is None:
            return
        if conversation.assignee and conversation.assignee != self.operator.login:
            from omniconsole.tui.screens.dialogs import ConfirmDialog

            question = Text(f"This conversation is assigned to {conversation.assignee}. Reply anyway?")
            if not await self.app.push_screen_wait(ConfirmDialog(question)):
                return
        self.composer.mode = "reply"
        self.call_note_target = None
        self._show_composer_info()
        self.composer.focus()

    def action_note(self) -> None:
        if self._need_conversation() is None:
            return
        # With a call selected in the timeline, the note is about that call and stays on it.
        selected = self.timeline.selected if self.app.focused is self.timeline else None
        self.call_note_target = selected.id if selected is not None and "call" in selected.flags else None
        self.composer.mode = "note"
        self._show_composer_info()
        self.composer.focus()

    async def on_composer_submitted(self, message: Composer.Submitted) -> None:
        await self.submit(message.text)

    async def submit(self, body: str) -> None:
        conversation = self.conversation
        if conversation is None or not body.strip() or self._submitting:
            return
        # Cleared before the database round trip: a second Enter (or key repeat) finds an
        # empty composer instead of sending the same reply twice. Restored if the write fails.
        self._submitting = True
        self.composer.clear()
        try:
            if self.composer.mode == "note" and self.call_note_target is not None:
                await self.store.note_on_call(self.call_note_target, body, self.operator.login)
            elif self.composer.mode == "note":
                await self.store.add_note(conversation.id, body, self.operator.login)
            else:
                if not self.routes:
                    raise ActionError("there is no channel to answer this customer on")
                route = self.routes[self.route_index]
                await self._check_window()
                if self.window_note:
                    self.composer.text = body  # kept: the operator may want it once the customer writes
                    self.action_templates()
                    return
                await self.store.queue_reply(
                    conversation.id, body, self.operator.login, identity_id=route.identity_id, channel_id=route.channel_id
                )
        except OmniError as exc:
            self.composer.text = body
            self.app.notify(str(exc), severity="error", markup=False)
            return
        finally:
            self._submitting = False
        self.composer.mode = "reply"
        self.call_note_target = None
        try:
            await self.store.set_presence(self.operator.login, conversation.id, typing=False)
            await self.open_conversation(conversation.id)
        except OmniError as exc:
            self._store_trouble(exc)
        self.timeline.focus()

    def on_composer_cancelled(self) -> None:
        self.composer.mode = "reply"
        self.call_note_target = None
        self._show_composer_info()
        self.timeline.focus() if self.conversation else self.inbox.focus()

    async def on_composer_next_route(self) -> None:
        if self.routes and self.composer.mode == "reply":
            self.route_index = (self.route_index + 1) % len(self.routes)
            self._show_composer_info()
            await self._check_window()

    async def _check_window(self) -> None:
        """Find whether the chosen route is a WhatsApp one past its 24-hour window (then only a
        template may go) and say so in the composer's info line."""
        route = self.routes[self.route_index] if self.routes else None
        note = ""
        if route is not None and route.kind == "whatsapp":
            from omniconsole.tui.screens.templates import window_note

            try:
                note = await window_note(self.store, route, self.clock())
            except OmniError as exc:
                self._store_trouble(exc)
        if note != self.window_note:
            self.window_note = note
            self._show_composer_info()

    def on_composer_templates(self) -> None:
        self.action_templates()

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_templates(self) -> None:
        """Offer the route's approved templates (WhatsApp) and queue the one filled in."""
        conversation = self._need_conversation()
        if conversation is None or not self.routes:
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
            await self.open_conversation(conversation.id)
        except OmniError as exc:
            self.app.notify(str(exc), severity="error", markup=False)
            return
        self.app.notify(f"Template {choice.name} queued", timeout=2, markup=False)
        self.timeline.focus()

    async def on_composer_typing(self) -> None:
        if self.conversation and time.monotonic() - self._typing_sent > 2:
            self._typing_sent = time.monotonic()
            await self.store.set_presence(self.operator.login, self.conversation.id, typing=True)

    async def on_composer_external_editor(self) -> None:
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        with tempfile.NamedTemporaryFile("w+", suffix=".txt", delete=False, encoding="utf-8") as f:
            f.write(self.composer.text)
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
        self.composer.text = text.rstrip("\n")
        self.composer.focus()

    # --- actions on the conversation ------------------------------------------------------

    async def _do(self, coro, done: str | None = None) -> bool:
        try:
            await coro
        except OmniError as exc:
            self.app.notify(str(exc), severity="error", markup=False)
            return False
        if done:
            self.app.notify(done, timeout=2)
        try:
            if self.conversation:
                await self.open_conversation(self.conversation.id, keep_position=True, mark_read=False)
            await self.inbox.load(keep=self.conversation.id if self.conversation else None)
        except OmniError as exc:
            self._store_trouble(exc)
        return True

    async def action_resolve(self) -> None:
        if (c := self._need_conversation()) is not None:
            await self._do(self.store.set_status(c.id, ConversationStatus.RESOLVED, self.operator.login), "Resolved")

    async def action_resolve_next(self) -> None:
        if (c := self._need_conversation()) is None:
            return
        if await self._do(self.store.set_status(c.id, ConversationStatus.RESOLVED, self.operator.login), "Resolved"):
            await self.action_next_waiting()

    async def action_reopen(self) -> None:
        if (c := self._need_conversation()) is not None:
            await self._do(self.store.set_status(c.id, ConversationStatus.OPEN, self.operator.login), "Reopened")

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_snooze(self) -> None:
        if (c := self._need_conversation()) is None:
            return
        from omniconsole.tui.screens.dialogs import ChoiceDialog, InputDialog

        now = datetime.fromtimestamp(self.clock())
        tomorrow = (now + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
        choice = await self.app.push_screen_wait(ChoiceDialog("Snooze until", [
            ("hour", "1 hour"), ("tomorrow", f"tomorrow morning ({tomorrow:%a %d %b %H:%M})"), ("date", "a date…"),
        ]))
        if choice is None:
            return
        if choice == "hour":
            until = self.clock() + 3600
        elif choice == "tomorrow":
            until = tomorrow.timestamp()
        else:
            typed = await self.app.push_screen_wait(
                InputDialog("Snooze until", placeholder="YYYY-MM-DD HH:MM", hint="local time; Enter snoozes, Esc cancels")
            )
            if not typed:
                return
            try:
                until = datetime.strptime(typed.strip(), "%Y-%m-%d %H:%M" if " " in typed.strip() else "%Y-%m-%d").timestamp()
            except ValueError:
                self.app.notify("Write the date as YYYY-MM-DD HH:MM", severity="error")
                return
            if until <= self.clock():
                self.app.notify("That time has passed", severity="error")
                return
        await self._do(self.store.set_status(c.id, ConversationStatus.SNOOZED, self.operator.login, snoozed_until=until), "Snoozed")

    async def action_assign_me(self) -> None:
        if (c := self._need_conversation()) is not None:
            await self._do(self.store.assign(c.id, self.operator.login, self.operator.login), "Assigned to you")

    async def action_unassign(self) -> None:
        if (c := self._need_conversation()) is not None:
            await self._do(self.store.assign(c.id, None, self.operator.login), "Unassigned")

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_assign(self) -> None:
        if (c := self._need_conversation()) is None:
            return
        from omniconsole.tui.screens.dialogs import ChoiceDialog

        operators = await self.store.operators()
        options = [(op.login, Text(f"{op.login}  {op.display_name}")) for op in operators]
        options.append(("", Text("nobody (unassign)", style="italic")))
        choice = await self.app.push_screen_wait(ChoiceDialog("Assign to", options))
        if choice is None:
            return
        await self._do(self.store.assign(c.id, choice or None, self.operator.login), f"Assigned to {choice or 'nobody'}")

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_labels(self) -> None:
        if (c := self._need_conversation()) is None:
            return
        from omniconsole.tui.screens.dialogs import InputDialog

        typed = await self.app.push_screen_wait(InputDialog("Labels (comma separated)", value=", ".join(c.labels)))
        if typed is not None:
            await self._do(self.store.set_labels(c.id, [x.strip() for x in typed.split(",")], self.operator.login))

    async def action_priority(self) -> None:
        if (c := self._need_conversation()) is not None:
            await self._do(self.store.set_priority(c.id, (c.priority + 1) % 3, self.operator.login))

    async def action_retry(self) -> None:
        if self._need_conversation() is None:
            return
        entry = self.timeline.selected
        candidates = [entry] if entry and entry.state == "failed" else [
            e for e in reversed(self.timeline.entries) if e.state == "failed"
        ][:1]
        if not candidates:
            self.app.notify("No failed message here", severity="warning")
            return
        await self._do(self.store.retry_failed(candidates[0].id, self.operator.login), "Queued again")

    def action_save_attachments(self) -> None:
        entry = self.timeline.selected
        if entry is None or not entry.attachments:
            self.app.notify("The selected message has no attachments", severity="warning")
            return
        target = Path(os.environ.get("OMNICONSOLE_DOWNLOADS", Path.home() / "omniconsole-downloads"))
        saved, missing = [], []
        root = self.app.settings.attachments_dir
        for attachment in entry.attachments:
            if not attachment.path:
                missing.append(attachment.filename)
                continue
            try:
                target.mkdir(parents=True, exist_ok=True)
                destination = target / attachment.filename
                destination.write_bytes((root / attachment.path).read_bytes())
                saved.append(str(destination))
            except OSError as exc:
                missing.append(f"{attachment.filename} ({exc.strerror})")
        if saved:
            self.app.notify("Saved " + ", ".join(saved), markup=False)
        if missing:
            self.app.notify("Not saved: " + ", ".join(missing), severity="warning", markup=False)

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_open_attachment(self) -> None:
        """Text files open in a viewer here; other files open with the desktop's viewer where
        there is one (a local session), else they are saved and the path is shown."""
        entry = self.timeline.selected
        files = [a for a in (entry.attachments if entry else ()) if a.path]
        if not files:
            self.app.notify("The selected message has no downloaded attachment", severity="warning")
            return
        attachment = files[0]
        if len(files) > 1:
            from omniconsole.tui.screens.dialogs import ChoiceDialog

            choice = await self.app.push_screen_wait(
                ChoiceDialog("Open which file?", [(str(a.id), safe(a.filename)) for a in files])
            )
            if choice is None:
                return
            attachment = next(a for a in files if str(a.id) == choice)
        path = self.app.settings.attachments_dir / attachment.path
        if attachment.mime_type.startswith("text/") or attachment.filename.lower().endswith((".txt", ".log", ".csv", ".json")):
            from omniconsole.tui.screens.viewer import FileViewer

            try:
                data = path.read_bytes()[:2_000_000]
            except OSError as exc:
                self.app.notify(f"cannot read {attachment.filename}: {exc.strerror}", severity="error", markup=False)
                return
            self.app.push_screen(FileViewer(attachment.filename, data.decode("utf-8", errors="replace")))
            return
        opener = shutil.which("xdg-open")
        if opener and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            subprocess.Popen([opener, str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            self.app.notify(f"Opening {attachment.filename}", markup=False)
        else:
            self.action_save_attachments()

    async def action_next_waiting(self) -> None:
        current = self.conversation.id if self.conversation else None
        found = await self.store.next_waiting(self.operator.login, current)
        if found is None:
            self.app.notify("Nobody is waiting. Well done.")
            return
        if self.inbox.view not in (InboxView.ALL, InboxView.MINE, InboxView.UNASSIGNED):
            await self.inbox.load(InboxView.ALL)
        await self.inbox.load(keep=found)
        await self.open_conversation(found)

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_history(self) -> None:
        if (c := self._need_conversation()) is None:
            return
        from omniconsole.tui.screens.dialogs import ChoiceDialog

        profile = await self.store.customer_profile(c.customer_id)
        if profile is None:
            return
        options = []
        for conv in profile.conversations:
            label = Text(f"#{conv.id} {conv.status:<9}", style="bold" if conv.id == c.id else "")
            label.append_text(safe(one_line(conv.subject, 60)))
            options.append((str(conv.id), label))
        choice = await self.app.push_screen_wait(ChoiceDialog("The customer's conversations", options))
        if choice:
            await self.open_conversation(int(choice))
            self.timeline.focus()

    async def action_show_view(self, view: str) -> None:
        await self.inbox.load(InboxView(view))
        self.inbox.focus()

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_search(self) -> None:
        from omniconsole.tui.screens.search import SearchScreen

        choice = await self.app.push_screen_wait(SearchScreen(self.store))
        if choice is None:
            return
        conversation_id = choice.conversation_id
        if conversation_id is None:
            profile = await self.store.customer_profile(choice.customer_id)
            if not profile or not profile.conversations:
                self.app.notify("This customer has no conversations yet")
                return
            conversation_id = profile.conversations[0].id
        await self.open_conversation(conversation_id, focus_message=choice.message_id)
        self.timeline.focus()

    def action_help(self) -> None:
        from omniconsole.tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))

    def _panes(self):
        panes = [self.inbox, self.timeline, self.composer]
        customer = self.query_one(CustomerPane)
        if customer.display and customer.styles.display != "none":
            panes.append(customer)
        return panes

    def action_focus_next_pane(self) -> None:
        panes = self._panes()
        index = panes.index(self.focused) if self.focused in panes else -1
        panes[(index + 1) % len(panes)].focus()

    def action_focus_previous_pane(self) -> None:
        panes = self._panes()
        index = panes.index(self.focused) if self.focused in panes else 0
        panes[(index - 1) % len(panes)].focus()

    def action_back(self) -> None:
        self.inbox.focus()


class OmniApp(App):
    """The window of one operator."""

    # Absolute, so subclasses elsewhere (benchmarks, tests) find it too.
    CSS_PATH = Path(__file__).with_name("omniconsole.tcss")
    TITLE = "omniconsole"
    COMMANDS = App.COMMANDS | {_action_commands}
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        settings: Settings,
        operator: Operator,
        *,
        clock=time.time,
        run_core: bool = True,
        store: Store | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.operator = operator
        self.clock = clock
        self.run_core = run_core
        self.store = store
        self._own_store = store is None
        self.core_state: str | None = None
        self.main: MainScreen | None = None

    async def on_mount(self) -> None:
        if self.settings.keymap:
            self.set_keymap(self.settings.keymap)
        if self.store is None:
            self.store = await Store.open(self.settings.database)
        if self.run_core and self.settings.channels:
            self.start_core()
        self.main = MainScreen(self.store, self.operator, self.clock)
        await self.push_screen(self.main)

    @work(exclusive=True, group="core", exit_on_error=False)
    async def start_core(self) -> None:
        """Run the core in this window while no other core holds the lease; wait otherwise
        and take over if the other one dies."""
        from omniconsole.core.hub import Hub

        from omniconsole.core.hub import LeaseLost

        store = await Store.open(self.settings.database)
        try:
            while True:
                hub = Hub(self.settings, store)
                waiter = asyncio.create_task(hub.holding_lease.wait())
                waiter.add_done_callback(lambda _: setattr(self, "core_state", "core: in this window"))
                try:
                    await hub.run()
                except LeaseLost:
                    pass  # another core took over while this window stalled: wait again
                waiter.cancel()
                self.core_state = None
        finally:
            await store.close()

    async def on_unmount(self) -> None:
        if self.store is not None and self.main is not None:
            try:
                await self.store.set_presence(self.operator.login, None)
            except OmniError:
                pass
        self.workers.cancel_group(self, "core")
        if self._own_store and self.store is not None:
            await self.store.close()
