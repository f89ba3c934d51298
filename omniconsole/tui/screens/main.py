"""The operator's single window: inbox | timeline + reply box | customer, a view bar above and a
status bar below.

The screen composes the panes, routes their messages and applies what the operator asked
for; each pane draws itself (and reads what it shows), the follower reports what others changed,
dialogs return values or intents. Everything the window shows comes from the store; everything
the operator does is a write to the store.

Past 600 lines for a reason: it is the one place the panes' messages meet, and each operator
action is a short handler here (a store call, a dialog, a redraw); splitting them over mixins
would spread one screen's routing over several files without making any piece simpler.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget

from omniconsole.errors import OmniError, error_text
from omniconsole.i18n import N_, Np_, _, pgettext
from omniconsole.models import ConversationStatus, InboxView
from omniconsole.store import Conversation, Operator, Store
from omniconsole.tui.follower import Follower
from omniconsole.tui.inbox_actions import INBOX_BINDINGS, InboxActions
from omniconsole.tui.messages import StoreUnavailable
from omniconsole.tui.routing_actions import RoutingActions
from omniconsole.tui.screens.macros import MacroActions
from omniconsole.tui.screens.main_answers import ANSWERS_BINDINGS, AnswersActions
from omniconsole.tui.text import clock_time, one_line, safe, status_name
from omniconsole.tui.widgets.bot_report import BotReportBlock
from omniconsole.tui.widgets.composer import Composer
from omniconsole.tui.widgets.conversation_header import ConversationHeader, PresenceLine
from omniconsole.tui.widgets.customer_pane import CustomerPane
from omniconsole.tui.widgets.inbox_list import InboxList
from omniconsole.tui.widgets.pane_colours import PaneColours
from omniconsole.tui.widgets.reply_box import ReplyBox
from omniconsole.tui.widgets.status_bar import StatusBar
from omniconsole.tui.widgets.timeline import Timeline
from omniconsole.tui.widgets.view_tabs import VIEW_KEYS, ViewTabs, view_name
from omniconsole.tui.workers import WorkerFailures

log = logging.getLogger(__name__)


def _action_commands():
    # Imported when the palette first opens: the command machinery is not needed to start.
    from omniconsole.tui.commands import ActionCommands

    return ActionCommands


def _language_commands():
    from omniconsole.tui.language_switch import LanguageCommands

    return LanguageCommands


#: The views that list open work (where someone can be waiting).
_WAITING_VIEWS = (InboxView.ALL, InboxView.MINE, InboxView.UNASSIGNED)


class MainScreen(InboxActions, RoutingActions, AnswersActions, MacroActions, WorkerFailures, Screen):
    """Inbox, conversation and customer side by side."""

    # Textual repaints the whole screen when focus moves (a repaint reactive). The panes
    # restyle and repaint themselves on focus and blur, so that full repaint only cost every
    # Enter and Esc ~30 ms of the 50 ms keystroke budget.
    focused: Reactive[Widget | None] = Reactive(None, repaint=False)

    COMMANDS = {_action_commands, _language_commands}

    BINDINGS = [
        *[Binding(key, f"show_view('{view.value}')", label, id=f"view.{view.value}") for key, view, label in VIEW_KEYS],
        Binding("r", "reply", N_("Reply"), id="conversation.reply"),
        Binding("n", "note", N_("Note"), id="conversation.note"),
        Binding("e", "resolve", N_("Resolve"), id="conversation.resolve"),
        Binding("E", "resolve_next", N_("Resolve and next"), id="conversation.resolve_next"),
        Binding("ctrl+z", "undo_resolve", N_("Undo resolve (after E)"), id="conversation.undo_resolve"),
        Binding("u", "reopen", N_("Reopen"), id="conversation.reopen"),
        Binding("z", "snooze", N_("Snooze"), id="conversation.snooze"),
        Binding("a", "assign_me", N_("Assign to me"), id="conversation.assign_me"),
        Binding("A", "assign", N_("Assign to…"), id="conversation.assign"),
        Binding("U", "unassign", N_("Unassign"), id="conversation.unassign"),
        Binding("Q", "queues", N_("Queues and team"), id="routing.queues"),
        Binding("S", "toggle_away", N_("Away / back online"), id="routing.away"),
        Binding("l", "labels", N_("Labels"), id="conversation.labels"),
        Binding("M", "macros", N_("Run a macro"), id="conversation.macros"),
        Binding("p", "priority", N_("Priority"), id="conversation.priority"),
        Binding("t", "rename", N_("Rename subject"), id="conversation.rename"),
        Binding("R", "retry", N_("Retry failed message"), id="message.retry"),
        Binding("s", "save_attachments", N_("Save attachments"), id="message.save"),
        Binding("o", "open_attachment", N_("Open attachment"), id="message.open"),
        Binding("w", "next_waiting", N_("Next waiting"), id="inbox.next_waiting"),
        Binding("h", "history", N_("Customer's conversations"), id="customer.history"),
        Binding("c", "edit_customer", N_("Edit customer"), id="customer.edit"),
        Binding("m", "same_person", N_("Merge / same person"), id="customer.merge"),
        Binding("N", "start_conversation", N_("Start a conversation"), id="conversation.start"),
        *ANSWERS_BINDINGS,
        *INBOX_BINDINGS,
        Binding("slash", "search", N_("Search"), id="app.search"),
        Binding("ctrl+r", "reports", N_("Reports"), id="app.reports"),
        Binding("W", "wallboard", N_("Wallboard"), id="app.wallboard"),
        Binding("J", "journeys", N_("Customer journeys and channel advice"), id="app.journeys"),
        Binding("b", "bot_view", N_("Bot conversations"), id="app.bot_view"),
        Binding("question_mark", "help", N_("Help"), id="app.help"),
        Binding("colon", "app.command_palette", N_("Commands"), id="app.commands"),
        Binding("tab", "focus_next_pane", N_("Next pane"), show=False, id="app.next_pane"),
        Binding("shift+tab", "focus_previous_pane", N_("Previous pane"), show=False, id="app.previous_pane"),
        Binding("escape", "back", N_("Back to inbox"), show=False, id="app.back"),
        Binding("q", "app.quit", N_("Quit"), id="app.quit"),
    ]

    PREVIEW_DELAY = 0.06
    #: How long E's resolve of a waiting customer can be undone (ctrl+z), in seconds.
    UNDO_SECONDS = 8.0

    def __init__(self, store: Store, operator: Operator, clock) -> None:
        super().__init__()
        self.store = store
        self.operator = operator
        self.clock = clock
        self.conversation: Conversation | None = None
        self.inbox_ready = asyncio.Event()
        self._preview_timer = None
        self._trouble_shown = False
        self.opened: int | None = None  # the conversation whose timeline finished loading
        self.presence = None  # routing's WindowPresence, from on_mount
        self._undo_resolve: tuple[int, float] | None = None  # (conversation, monotonic deadline)

    # --- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield ViewTabs(id="views")
        with Horizontal(id="main"):
            yield InboxList(self.store, self.operator.login, clock=self.clock, id="inbox")
            with Vertical(id="conversation"):
                yield ConversationHeader(id="conversation-header")
                yield BotReportBlock(id="bot-report")
                yield Timeline(clock=self.clock, id="timeline")
                yield PresenceLine(self.store, self.operator.login, id="presence")
                yield ReplyBox(self.store, self.operator, clock=self.clock, id="reply-box")
            yield CustomerPane(clock=self.clock, id="customer")
        yield StatusBar(self.store, self.operator, id="status")
        yield Follower(self.store, self.operator.extension)
        yield PaneColours()

    @property
    def inbox(self) -> InboxList:
        return self.query_one(InboxList)

    @property
    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    @property
    def reply_box(self) -> ReplyBox:
        return self.query_one(ReplyBox)

    @property
    def composer(self) -> Composer:
        return self.reply_box.composer

    @property
    def follower(self) -> Follower:
        return self.query_one(Follower)

    @property
    def routes(self):
        return self.reply_box.routes

    @property
    def route_index(self) -> int:
        return self.reply_box.route_index

    async def on_mount(self) -> None:
        self.presence = self.make_presence()
        await self.follower.start_from_now()
        self.inbox.focus()
        try:
            await self.load_inbox_order()
            await self.inbox.load(InboxView.ALL)
        finally:
            # What exists now (Textual, the stylesheet, caches) lives as long as the window: keep
            # it out of the garbage collector's scans, whose pauses showed up as slow keystrokes.
            # (`omniconsole window` starts with the collector off; it runs from here on.)
            gc.freeze()
            gc.enable()
        self.inbox_ready.set()
        status = self.query_one(StatusBar)
        await status.reload()
        self.reply_box.draw()
        # The answers engine is built once the inbox is up, not while it first draws.
        self.set_timer(1.0, self.reply_box.load_engine)
        self.follower.follow()
        self.query_one(PresenceLine).follow()
        status.follow()
        self.set_interval(30.0, self._tick)
        await self.start_presence(status)

    def on_resize(self) -> None:
        width = self.size.width
        self.set_class(width < 110, "narrow")
        self.set_class(width < 70, "tiny")

    def _tick(self) -> None:
        self.inbox.refresh()  # waiting times move on

    # --- what others changed --------------------------------------------------------------

    async def on_follower_store_changed(self, message: Follower.StoreChanged) -> None:
        """Reload what the events touch: the inbox, the open conversation, the status bar."""
        try:
            events = message.events
            # Reads change only the reader's unread marks, and this window marks its own rows
            # itself (InboxList.mark_read): no reload for them.
            if any(e.kind != "conversation.read" for e in events):
                keep = self.inbox.selected.conversation_id if self.inbox.selected else None
                await self.inbox.load(keep=keep)
            current = self.conversation
            if current and (
                any(e.conversation_id == current.id and e.kind != "conversation.read" for e in events)
                or current.customer_id in message.customers
            ):
                await self.open_conversation(current.id, keep_position=True, mark_read=False, announce=False)
            if any(e.kind == "channel.health" for e in events):
                await self.query_one(StatusBar).reload()
                await self._channel_alerts().announce(self, self.store, events)
            if any(e.kind == "sla.escalated" for e in events):
                from omniconsole.tui.sla_alerts import sla_notices  # routing's words: not at start

                for text, severity in sla_notices(events, self.operator.login):
                    self.app.notify(text, title="SLA", severity=severity, timeout=10)
            if any(e.kind.startswith("kb.") for e in events):
                self.reply_box.load_engine()  # the answers library changed
            await self.routing_changed(events)
        except OmniError as exc:
            message.ok = False
            self._store_trouble(exc)
        finally:
            message.handled.set()

    async def on_follower_call_ringing(self, message: Follower.CallRinging) -> None:
        """A call rings this operator's phone: show the caller's conversation and card. Not
        while they are writing a reply: switching under it would send their words to the caller."""
        from omniconsole.core.screen_pop import screen_pop

        pop = screen_pop([message.event], self.operator.extension, time.time(), writing_in=self.reply_box.writing_in())
        if pop is None:
            return
        caller = one_line(pop.caller, 60)
        number = one_line(pop.number, 30)
        words = _("Incoming call from {caller}").format(caller=caller) + (f" ({number})" if number and number != caller else "")
        if not pop.switch:
            self.app.notify(
                _("{words}: conversation #{id} (not opened: you are writing a reply)").format(
                    words=words, id=pop.conversation_id
                ),
                title=_("📞 Ringing"),
                markup=False,
                timeout=15,
            )
            return
        try:
            await self.inbox.load(keep=pop.conversation_id)
            await self.open_conversation(pop.conversation_id, mark_read=False)
        except OmniError as exc:
            self._store_trouble(exc)
        self.app.notify(words, title=_("📞 Ringing"), markup=False, timeout=10)

    def on_store_unavailable(self, message: StoreUnavailable) -> None:
        self._store_trouble(message.error)

    def _store_trouble(self, exc: OmniError) -> None:
        """The database did not answer (locked by a long import, disk full): say so once, keep
        the window, try again on the next tick."""
        log.warning("window: %s", exc)
        if not self._trouble_shown:
            self._trouble_shown = True
            self.app.notify(
                _("The database is not answering: {error}").format(error=error_text(exc)),
                severity="error",
                markup=False,
                timeout=8,
            )
            self.set_timer(30, lambda: setattr(self, "_trouble_shown", False))

    def on_inbox_list_counts_changed(self, message: InboxList.CountsChanged) -> None:
        self.query_one(ViewTabs).show(message.counts, self.inbox.view, self.inbox.order, self.inbox.only)

    # --- the open conversation ------------------------------------------------------------

    def on_inbox_list_conversation_selected(self, message: InboxList.ConversationSelected) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
            self._preview_timer = None
        if message.open:
            self.show_selected(message.conversation_id, message.open)
        elif self.conversation is None:
            # The first conversation under the cursor: previewed right after the inbox is drawn,
            # not in the same frame (the window is interactive a panel's load sooner at start).
            self.call_after_refresh(self.show_selected, message.conversation_id, False)
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
        reactions = await self.store.reactions(conversation_id)
        bot_report = await self.store.bot_report(conversation_id)
        changed = self.conversation is None or self.conversation.id != conversation_id
        self.conversation = conversation
        reply_box = self.reply_box
        presence = self.query_one(PresenceLine)
        # Everything is drawn in one batch: one repaint per key, not one per pane.
        with self.app.batch_update():
            self.timeline.show(
                entries, focus_message=focus_message, keep_position=keep_position and not changed, reactions=reactions
            )
            self.query_one(CustomerPane).show(profile, conversation_id)
            self.query_one(ConversationHeader).show(conversation, profile.display_name if profile else "")
            self.query_one(BotReportBlock).show(bot_report)
            reply_box.show(conversation, routes)
            reply_box.show_customer(profile, [e.body for e in entries if e.direction == "in" and e.body])
            presence.conversation_id = conversation_id
            presence.show(others)
        await reply_box.check_window()
        self._crm_card().request(self, self.query_one(CustomerPane), profile)
        self._journey_card().request(self, self.query_one(CustomerPane), profile, conversation_id)
        self.opened = conversation_id  # drawn; what follows only tells the others
        if announce:
            await self.store.set_presence(self.operator.login, conversation_id)
        if mark_read:
            self.inbox.mark_read(conversation_id)
            await self.store.mark_read(self.operator.login, conversation_id)

    def _journey_card(self):
        """The window's journey reads and channel advice (tui/journey_card.py), made on first use."""
        card = getattr(self, "_journeys", None)
        if card is None:
            from omniconsole.tui.journey_card import JourneyCard

            card = self._journeys = JourneyCard(self.store, getattr(self.app, "settings", None), self.clock)
        return card

    def _channel_alerts(self):
        """This window's memory of channels it saw go down (tui/channel_alerts.py)."""
        alerts = getattr(self, "_alerts", None)
        if alerts is None:
            from omniconsole.tui.channel_alerts import ChannelAlerts

            alerts = self._alerts = ChannelAlerts()
        return alerts

    def _crm_card(self):
        """The window's CRM lookups (`[crm]`), made on first use."""
        card = getattr(self, "_crm", None)
        if card is None:
            from omniconsole.tui.crm_card import CrmCard

            card = self._crm = CrmCard(getattr(self.app, "settings", None))
        return card

    # --- composing ------------------------------------------------------------------------

    def _need_conversation(self) -> Conversation | None:
        if self.conversation is None:
            self.app.notify(_("Open a conversation first"), severity="warning")
        return self.conversation

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_reply(self) -> None:
        if await self._may_reply():
            self.reply_box.start_reply()

    async def _may_reply(self) -> bool:
        """Whether the operator may start a reply here: in someone else's conversation, asked first."""
        conversation = self._need_conversation()
        if conversation is None:
            return False
        if conversation.assignee and conversation.assignee != self.operator.login:
            from omniconsole.tui.screens.dialogs import ConfirmDialog

            question = Text(
                _("This conversation is assigned to {assignee}. Reply anyway?").format(assignee=conversation.assignee)
            )
            if not await self.app.push_screen_wait(ConfirmDialog(question)):
                return False
        return True

    def action_note(self) -> None:
        if self._need_conversation() is None:
            return
        # With a call selected in the timeline, the note is about that call and stays on it.
        selected = self.timeline.selected if self.app.focused is self.timeline else None
        self.reply_box.start_note(selected.id if selected is not None and "call" in selected.flags else None)

    async def _reopen_after_writing(self, conversation_id: int) -> None:
        try:
            await self.open_conversation(conversation_id)
        except OmniError as exc:
            self._store_trouble(exc)

    async def on_reply_box_reply_queued(self, message: ReplyBox.ReplyQueued) -> None:
        await self._reopen_after_writing(message.conversation_id)
        if message.template:
            self.app.notify(_("Template {name} queued").format(name=message.template), timeout=2, markup=False)
        self.timeline.focus()

    async def on_reply_box_note_added(self, message: ReplyBox.NoteAdded) -> None:
        await self._reopen_after_writing(message.conversation_id)
        self.timeline.focus()

    def on_timeline_whole_message_requested(self, message: Timeline.WholeMessageRequested) -> None:
        from omniconsole.tui.screens.viewer import FileViewer

        entry = message.entry
        title = f"#{entry.id} " + one_line(entry.subject or entry.author or entry.direction, 60)
        self.app.push_screen(FileViewer(title, entry.body))

    def on_reply_box_composing_cancelled(self) -> None:
        self.timeline.focus() if self.conversation else self.inbox.focus()

    # --- actions on the conversation ------------------------------------------------------

    async def _do(self, coro, done: str | None = None, *, refused: type[OmniError] | None = None) -> bool:
        """Run a store action and redraw; an OmniError is said in words (False). A `refused`
        error is raised to the caller instead, which offers a way on."""
        try:
            await coro
        except OmniError as exc:
            if refused is not None and isinstance(exc, refused):
                raise
            self.app.notify(error_text(exc), severity="error", markup=False)
            return False
        if done:
            self.app.notify(pgettext("done", done), timeout=2)
        try:
            if self.conversation:
                await self.open_conversation(self.conversation.id, keep_position=True, mark_read=False)
            await self.inbox.load(keep=self.conversation.id if self.conversation else None)
        except OmniError as exc:
            self._store_trouble(exc)
        return True

    async def action_resolve(self) -> None:
        if (c := self._need_conversation()) is not None:
            await self._do(self.store.set_status(c.id, ConversationStatus.RESOLVED, self.operator.login), Np_("done", "Resolved"))

    async def action_resolve_next(self) -> None:
        """Resolve and open the next waiting conversation. Resolving one whose customer still
        waits for a reply (easily a slip of E for e) can be undone for UNDO_SECONDS."""
        if (c := self._need_conversation()) is None:
            return
        waiting = c.waiting_since is not None
        if await self._do(
            self.store.set_status(c.id, ConversationStatus.RESOLVED, self.operator.login),
            None if waiting else Np_("done", "Resolved"),
        ):
            if waiting:
                from omniconsole.tui.keys import key_displays

                self._undo_resolve = (c.id, time.monotonic() + self.UNDO_SECONDS)
                key = key_displays(self).get("conversation.undo_resolve", "")
                self.app.notify(
                    _("Resolved #{id} while the customer waits for a reply").format(id=c.id)
                    + (_(": {key} undoes it ({seconds} s)").format(key=key, seconds=f"{self.UNDO_SECONDS:.0f}") if key else ""),
                    timeout=self.UNDO_SECONDS,
                    markup=False,
                )
            await self.action_next_waiting()

    async def action_undo_resolve(self) -> None:
        """Reopen the conversation E just resolved, within UNDO_SECONDS, and go back to it."""
        undo, self._undo_resolve = self._undo_resolve, None
        if undo is None or time.monotonic() > undo[1]:
            self.app.notify(_("Nothing to undo"), timeout=2)
            return
        conversation_id = undo[0]
        if await self._do(
            self.store.set_status(conversation_id, ConversationStatus.OPEN, self.operator.login), Np_("done", "Reopened")
        ):
            await self.inbox.load(keep=conversation_id)
            await self.open_conversation(conversation_id)

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_reopen(self) -> None:
        """Reopen; when the customer's work already goes on in another open conversation,
        one key (y or Enter) goes there instead."""
        from omniconsole.store.actions import OpenElsewhere

        if (c := self._need_conversation()) is None:
            return
        try:
            await self._do(
                self.store.set_status(c.id, ConversationStatus.OPEN, self.operator.login),
                Np_("done", "Reopened"),
                refused=OpenElsewhere,
            )
        except OpenElsewhere as exc:
            from omniconsole.tui.screens.dialogs import ConfirmDialog

            question = Text(_("This customer already has an open conversation, #{id}. Go there?").format(id=exc.conversation_id))
            if await self.app.push_screen_wait(ConfirmDialog(question)):
                await self.inbox.load(InboxView.ALL if self.inbox.view not in _WAITING_VIEWS else None, keep=exc.conversation_id)
                await self.open_conversation(exc.conversation_id)
                self.timeline.focus()

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_snooze(self) -> None:
        if (c := self._need_conversation()) is None:
            return
        from omniconsole.tui.screens.dialogs import SnoozeDialog

        until = await self.app.push_screen_wait(SnoozeDialog(self.clock()))
        if until is not None:
            await self._do(
                self.store.set_status(c.id, ConversationStatus.SNOOZED, self.operator.login, snoozed_until=until),
                Np_("done", "Snoozed"),
            )

    async def action_assign_me(self) -> None:
        if (c := self._need_conversation()) is not None:
            await self._do(self.store.assign(c.id, self.operator.login, self.operator.login), Np_("done", "Assigned to you"))

    async def action_unassign(self) -> None:
        if (c := self._need_conversation()) is not None:
            await self._do(self.store.assign(c.id, None, self.operator.login), Np_("done", "Unassigned"))

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_assign(self) -> None:
        if (c := self._need_conversation()) is None:
            return
        from omniconsole.routing.service import team_lines
        from omniconsole.tui.screens.dialogs import ChoiceDialog
        from omniconsole.tui.screens.queues import operator_line

        team = {line[0]: line for line in await team_lines(self.store, self.app.settings)}
        operators = await self.store.operators()
        options = [(op.login, operator_line(*team.get(op.login, (op.login, "", "", "")))) for op in operators]
        options.append(("", Text(_("nobody (unassign)"), style="italic")))
        choice = await self.app.push_screen_wait(ChoiceDialog(_("Assign to"), options))
        if choice is None:
            return
        await self._do(
            self.store.assign(c.id, choice or None, self.operator.login),
            _("Assigned to {login}").format(login=choice) if choice else _("Assigned to nobody"),
        )

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_labels(self) -> None:
        if (c := self._need_conversation()) is None:
            return
        from omniconsole.tui.screens.dialogs import InputDialog

        typed = await self.app.push_screen_wait(InputDialog(_("Labels (comma separated)"), value=", ".join(c.labels)))
        if typed is not None:
            await self._do(self.store.set_labels(c.id, [x.strip() for x in typed.split(",")], self.operator.login))

    async def action_priority(self) -> None:
        if (c := self._need_conversation()) is not None:
            await self._do(self.store.set_priority(c.id, (c.priority + 1) % 3, self.operator.login))

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_rename(self) -> None:
        """Give the conversation the subject it is about now."""
        if (c := self._need_conversation()) is None:
            return
        from omniconsole.tui.screens.dialogs import InputDialog

        typed = await self.app.push_screen_wait(
            InputDialog(
                _("Subject of this conversation"), value=c.subject, hint=_("Enter renames it for everyone, Escape cancels")
            )
        )
        if typed is not None and typed.strip():
            await self._do(self.store.set_subject(c.id, typed, self.operator.login), Np_("done", "Renamed"))

    async def action_retry(self) -> None:
        if self._need_conversation() is None:
            return
        entry = self.timeline.selected
        candidates = (
            [entry]
            if entry and entry.state == "failed"
            else [e for e in reversed(self.timeline.entries) if e.state == "failed"][:1]
        )
        if not candidates:
            self.app.notify(_("No failed message here"), severity="warning")
            return
        await self._do(self.store.retry_failed(candidates[0].id, self.operator.login), Np_("done", "Queued again"))

    def action_save_attachments(self) -> None:
        from omniconsole.tui.attachments import save_attachments

        save_attachments(self.app, self.timeline.selected, self.app.settings.attachments_dir)

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_open_attachment(self) -> None:
        from omniconsole.tui.attachments import open_attachment

        await open_attachment(self.app, self.timeline.selected, self.app.settings.attachments_dir)

    async def action_next_waiting(self) -> None:
        """Open the longest wait in the current view; when nobody waits there (or the view
        holds no waiting customers: Snoozed, Resolved), switch to All and say so. The row is
        always scrolled into sight, so the next j moves on from it."""
        current = self.conversation.id if self.conversation else None
        view = self.inbox.view
        found = (
            await self.store.next_waiting(self.operator.login, current, view, self.inbox.only or None)
            if view in _WAITING_VIEWS
            else None
        )
        if found is None and view is not InboxView.ALL:
            found = await self.store.next_waiting(self.operator.login, current, InboxView.ALL, self.inbox.only or None)
            if found is not None:
                # One load switches and selects: the switch must not preview another row.
                await self.inbox.load(InboxView.ALL, keep=found)
                self.app.notify(
                    _("Nobody waits in {view}: switched to All").format(view=view_name(view)), timeout=4, markup=False
                )
        if found is None:
            self.app.notify(_("Nobody is waiting. Well done."))
            return
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
        now = self.clock()
        for conv in profile.conversations:
            # When it was opened and last moved: which one holds that old order is a matter of dates.
            label = Text(f"#{conv.id} {status_name(conv.status):<9}", style="bold" if conv.id == c.id else "")
            label.append(f"{clock_time(conv.opened_at, now):>12} – {clock_time(conv.last_activity_at, now):<12} ", style="grey62")
            label.append_text(safe(one_line(conv.subject, 60)))
            options.append((str(conv.id), label))
        choice = await self.app.push_screen_wait(ChoiceDialog(_("The customer's conversations"), options))
        if choice:
            await self.open_conversation(int(choice))
            self.timeline.focus()

    # --- the customer ---------------------------------------------------------------------

    async def _profile(self):
        conversation = self._need_conversation()
        if conversation is None:
            return None
        try:
            return await self.store.customer_profile(conversation.customer_id)
        except OmniError as exc:
            self._store_trouble(exc)
            return None

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_edit_customer(self) -> None:
        """Edit the customer's name, note, attributes, labels, or add an identity."""
        from omniconsole.tui.customer_edits import ask_customer_edit

        profile = await self._profile()
        if profile is None:
            return
        intent = await ask_customer_edit(self.app, profile, self.app.settings.default_region)
        if intent is not None:
            await self._do(intent.run(self.store, self.operator.login), intent.done)

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_start_conversation(self) -> None:
        """Write to a customer first (omniconsole/tui/start_conversation.py), then open it."""
        from omniconsole.tui.start_conversation import start_from_window

        conversation_id = await start_from_window(self)
        if conversation_id is not None:
            await self.open_conversation(conversation_id)

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_same_person(self) -> None:
        """Settle "possibly the same person": merge, dismiss, undo a merge, or merge anyone."""
        from omniconsole.tui.customer_edits import ask_same_person

        profile = await self._profile()
        if profile is None:
            return
        intent = await ask_same_person(self.app, self.store, profile)
        if intent is not None:
            await self._do(intent.run(self.store, self.operator.login), intent.done)

    # --- moving around --------------------------------------------------------------------

    async def action_show_view(self, view: str) -> None:
        await self.inbox.load(InboxView(view))
        self.inbox.focus()

    def action_bot_view(self) -> None:
        """The "Bot" view: conversations the bot is answering, take-over by one key."""
        from omniconsole.tui.screens.bot import BotScreen

        self.app.push_screen(BotScreen(self.store, self.operator.login))

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_search(self) -> None:
        from omniconsole.tui.screens.search import SearchScreen

        settings = getattr(self.app, "settings", None)
        region = settings.default_region if settings is not None else "RU"
        choice = await self.app.push_screen_wait(SearchScreen(self.store, region=region))
        if choice is None:
            return
        conversation_id = choice.conversation_id
        if conversation_id is None:
            profile = await self.store.customer_profile(choice.customer_id)
            if not profile or not profile.conversations:
                self.app.notify(_("This customer has no conversations yet"))
                return
            conversation_id = profile.conversations[0].id
        await self.open_conversation(conversation_id, focus_message=choice.message_id)
        self.timeline.focus()

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_reports(self) -> None:
        from omniconsole.tui.screens.reports import ReportsScreen

        conversation_id = await self.app.push_screen_wait(ReportsScreen(self.store, self.clock, operator=self.operator))
        if conversation_id is not None:
            await self.open_conversation(conversation_id)
            self.timeline.focus()

    def action_wallboard(self) -> None:
        from omniconsole.tui.screens.wallboard import WallboardScreen

        self.app.push_screen(WallboardScreen(self.store, self.clock))

    def action_journeys(self) -> None:
        from omniconsole.tui.screens.journeys import JourneysScreen

        self.app.push_screen(JourneysScreen(self.store, self.clock, getattr(self.app, "settings", None)))

    def action_help(self) -> None:
        from omniconsole.tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))

    def _panes(self):
        # The composer is in the Tab cycle only while it holds a draft (or has focus): `r`
        # and `n` enter it, so Tab from a freshly opened conversation never turns the next
        # letter key into reply text.
        panes = [self.inbox, self.timeline]
        if self.focused is self.composer or self.composer.text.strip():
            panes.append(self.composer)
        panes.extend(self.script_panes())
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
