"""The inbox: a virtual list (Line API) of conversations, two lines a row.

Only the rows on screen are drawn, from a small cache of pages; a missing page is fetched by
a worker (keyset after the previous page when it is at hand, else by offset), so a view of
100,000 conversations opens as fast as one of 100.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import replace

from rich.segment import Segment
from rich.text import Text
from textual import events, work
from textual.binding import Binding
from textual.dom import NoScreen
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from omniconsole.i18n import N_, _, current_language
from omniconsole.models import InboxOrder, InboxView
from omniconsole.store import InboxCursor, InboxFilter, InboxRow, Store
from omniconsole.tui.text import PRIORITY, ago, badge, countdown, one_line, sla_urgency
from omniconsole.tui.widgets.lines import CachedScrollbars, set_virtual_size
from omniconsole.tui.widgets.pane_colours import PaneStyles
from omniconsole.tui.workers import WorkerFailures

PAGE = 100
ROW_HEIGHT = 2
MAX_PAGES = 40  # ~4,000 rows held; the rest is fetched again when scrolled back to


class InboxList(PaneStyles, WorkerFailures, CachedScrollbars, ScrollView, can_focus=True):
    """Conversations of one inbox view in the operator's order (`order`), limited to `only` (At
    risk: nearest SLA due moment first, whatever the order); a row with a running SLA clock shows
    its countdown coloured by urgency."""

    BINDINGS = [
        Binding("j,down", "cursor_down", N_("Down"), show=False, id="inbox.down"),
        Binding("k,up", "cursor_up", N_("Up"), show=False, id="inbox.up"),
        Binding("g,home", "first", N_("First"), show=False, id="inbox.first"),
        Binding("G,end", "last", N_("Last"), show=False, id="inbox.last"),
        Binding("pagedown,ctrl+d", "page_down_rows", N_("Page down"), show=False, id="inbox.page_down"),
        Binding("pageup,ctrl+u", "page_up_rows", N_("Page up"), show=False, id="inbox.page_up"),
        Binding("enter", "open", N_("Open"), id="inbox.open"),
    ]

    DEFAULT_CSS = """
    InboxList { background: $surface; }
    """

    PANE = "inbox-list"

    class ConversationSelected(Message):
        """The operator moved to (or opened, with `open=True`) a conversation."""

        def __init__(self, conversation_id: int, open: bool = False) -> None:
            super().__init__()
            self.conversation_id = conversation_id
            self.open = open

    def __init__(self, store: Store, operator: str, *, clock=time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.operator = operator
        self.clock = clock
        self.view = InboxView.ALL
        self.order = InboxOrder.PRIORITY
        self.only = InboxFilter()
        self.count = 0
        self.cursor = 0
        self.pages: OrderedDict[int, list[InboxRow]] = OrderedDict()
        self._pending: set[int] = set()
        self._generation = 0
        self._selected_id: int | None = None
        self._strips: dict[tuple, Strip] = {}

    # --- data -----------------------------------------------------------------------------

    def row(self, index: int) -> InboxRow | None:
        page = self.pages.get(index // PAGE)
        if page is None or index % PAGE >= len(page):
            return None
        return page[index % PAGE]

    @property
    def selected(self) -> InboxRow | None:
        return self.row(self.cursor)

    async def load(
        self,
        view: InboxView | None = None,
        keep: int | None = None,
        *,
        order: InboxOrder | None = None,
        only: InboxFilter | None = None,
    ) -> None:
        """(Re)load the view: its count and the pages around the cursor. `keep` is a
        conversation to keep selected wherever it moved; `order` and `only` sort and limit
        the list from now on (a change starts again at the top, as a switch of view does)."""
        switched = view is not None and view != self.view
        switched = switched or (order is not None and order != self.order) or (only is not None and only != self.only)
        if switched:
            self.view = view if view is not None else self.view
            self.order = order if order is not None else self.order
            self.only = only if only is not None else self.only
            self.cursor = 0
        self._generation += 1
        generation = self._generation
        counts = await self.store.inbox_counts(self.operator, self.only or None)
        if generation != self._generation:
            return
        self.count = counts[self.view]
        kept = False
        if keep is not None:
            index = await self.store.conversation_index(self.view, self.operator, keep, self.order, self.only or None)
            if index is not None:
                self.cursor, kept = index, True
        self.cursor = max(0, min(self.cursor, self.count - 1))
        if kept:
            # The kept row is in sight (and its page fetched below), wherever it moved.
            self._scroll_to_cursor()
        wanted = {p for p in self._visible_pages()} | {self.cursor // PAGE}
        fresh: dict[int, list[InboxRow]] = {}
        for page in sorted(wanted):
            fresh[page] = await self.store.inbox_page(
                self.view, self.operator, limit=PAGE, offset=page * PAGE, order=self.order, only=self.only or None
            )
        if generation != self._generation:
            return
        self.pages = OrderedDict(sorted(fresh.items()))
        self._pending.clear()
        set_virtual_size(self, Size(self.size.width, self.count * ROW_HEIGHT))
        self.refresh()
        self.post_message(self.CountsChanged(counts))
        # A reload (someone's change) never swaps the open conversation under the operator;
        # only the first load and a switch of view select one.
        if switched or self._selected_id is None:
            self._announce()

    class CountsChanged(Message):
        def __init__(self, counts: dict[InboxView, int]) -> None:
            super().__init__()
            self.counts = counts

    def _visible_pages(self) -> set[int]:
        top = int(self.scroll_y) // ROW_HEIGHT
        bottom = top + max(1, self.size.height // ROW_HEIGHT) + 1
        return {top // PAGE, min(bottom, max(0, self.count - 1)) // PAGE}

    # A page the store did not give stays "…" until the next reload; the window stays open.
    @work(group="inbox-fetch", exit_on_error=False)
    async def _fetch(self, page: int, generation: int) -> None:
        previous = self.pages.get(page - 1)
        if previous and len(previous) == PAGE:
            last = previous[-1]
            rows = await self.store.inbox_page(
                self.view,
                self.operator,
                after=InboxCursor.after_row(last, self.order),
                limit=PAGE,
                order=self.order,
                only=self.only or None,
            )
        else:
            rows = await self.store.inbox_page(
                self.view, self.operator, limit=PAGE, offset=page * PAGE, order=self.order, only=self.only or None
            )
        self._pending.discard(page)
        if generation != self._generation:
            return
        self.pages[page] = rows
        while len(self.pages) > MAX_PAGES:
            self.pages.popitem(last=False)
        self.refresh()
        if page == self.cursor // PAGE:
            self._announce()

    # --- drawing --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index, line = divmod(int(self.scroll_y) + y, ROW_HEIGHT)
        if index >= self.count:
            return Strip.blank(width)
        row = self.row(index)
        if row is None:
            page = index // PAGE
            if page not in self._pending:
                self._pending.add(page)
                self._fetch(page, self._generation)
            return Strip([Segment(" …".ljust(width), self.pane_style("loading"))]) if line == 0 else Strip.blank(width)
        highlight = ("focus" if self.has_focus else "cursor") if index == self.cursor else ""
        # Drawn rows are kept (keyed by everything that changes their look; the minute for the
        # waiting time): a repaint after a focus change or a cursor move rebuilds nothing.
        key = (row, line, width, highlight, int(self.clock() // 60), current_language())
        strip = self._strips.get(key)
        if strip is None:
            text = self._row_text(row, line, width)
            if highlight:
                text.stylize(self.pane_style("cursor-focus" if highlight == "focus" else "cursor"))
            strip = Strip(list(text.render(self.app.console))).crop_extend(0, width, None)
            if len(self._strips) > 2000:
                self._strips.clear()
            self._strips[key] = strip
        return strip

    def _row_text(self, row: InboxRow, line: int, width: int) -> Text:
        if line == 0:
            text = Text(no_wrap=True, overflow="ellipsis", end="")
            style = self.pane_style
            text.append("● " if row.unread else "  ", style=style("unread"))
            right = Text(end="")
            for kind in row.channel_kinds[-3:]:
                right.append_text(badge(kind))
                right.append(" ")
            if row.priority:
                right.append(f"{_(PRIORITY.get(row.priority, '!'))} ", style=style("priority"))
            if row.sla_due_at is not None:
                now = self.clock()
                right.append(
                    f"⏱{countdown(row.sla_due_at, now)}", style=style(f"sla-{sla_urgency(row.sla_due_at, row.sla_stage, now)}")
                )
                right.append(" ")
            if row.bot:
                # The bot answers: nobody waits for a person until the handoff (issue #17).
                right.append(f"🤖 {ago(row.last_activity_at, self.clock())} ", style=style("dim"))
            elif row.waiting_since is not None and row.status in ("open", "pending"):
                right.append(f"⏳{ago(row.waiting_since, self.clock())} ", style=style("waiting"))
            else:
                right.append(f"{ago(row.last_activity_at, self.clock())} ", style=style("dim"))
            right.append(f"@{row.assignee}" if row.assignee else "—", style=style("assignee" if row.assignee else "nobody"))
            room = max(4, width - right.cell_len - 3)
            text.append(one_line(row.customer_name, room).ljust(room), style=style("unread-name") if row.unread else "")
            text.append(" ")
            text.append_text(right)
            return text
        return Text("  " + one_line(row.preview, max(0, width - 3)), style=self.pane_style("dim"), no_wrap=True, end="")

    # --- moving ---------------------------------------------------------------------------

    def _move(self, index: int) -> None:
        if self.count == 0:
            return
        previous = self.cursor
        self.cursor = max(0, min(index, self.count - 1))
        y = self.cursor * ROW_HEIGHT
        if not self._scroll_to_cursor():
            # Only the two rows whose highlight changed are drawn again (a keystroke's budget
            # is 50 ms; a whole-pane repaint costs ~20 ms of it).
            self.refresh_lines(previous * ROW_HEIGHT, ROW_HEIGHT)
            self.refresh_lines(y, ROW_HEIGHT)
        self._announce()

    def _scroll_to_cursor(self) -> bool:
        """Scroll so the cursor's row is in sight; False when it already was."""
        top, height = int(self.scroll_y), self.size.height
        y = self.cursor * ROW_HEIGHT
        if y < top:
            target = y
        elif y + ROW_HEIGHT > top + height:
            target = y + ROW_HEIGHT - height
        else:
            return False
        # The scrollable height may not know the new count yet: let it hold the row.
        if self.virtual_size.height < y + ROW_HEIGHT:
            set_virtual_size(self, Size(self.size.width, self.count * ROW_HEIGHT))
        self.scroll_to(y=target, animate=False)
        self.refresh()
        return True

    def mark_read(self, conversation_id: int) -> None:
        """Drop the unread mark of a row the operator just opened, without a reload."""
        for page, rows in self.pages.items():
            for offset, row in enumerate(rows):
                if row.conversation_id == conversation_id and row.unread:
                    rows[offset] = replace(row, unread=False)
                    self.refresh_lines((page * PAGE + offset) * ROW_HEIGHT, ROW_HEIGHT)

    def _announce(self) -> None:
        row = self.selected
        if row is not None and row.conversation_id != self._selected_id:
            self._selected_id = row.conversation_id
            self.post_message(self.ConversationSelected(row.conversation_id))

    def action_cursor_down(self) -> None:
        self._move(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self._move(self.cursor - 1)

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(self.count - 1)

    def action_page_down_rows(self) -> None:
        self._move(self.cursor + max(1, self.size.height // ROW_HEIGHT - 1))

    def action_page_up_rows(self) -> None:
        self._move(self.cursor - max(1, self.size.height // ROW_HEIGHT - 1))

    def action_open(self) -> None:
        row = self.selected
        if row is not None:
            self.post_message(self.ConversationSelected(row.conversation_id, open=True))

    def on_click(self, event: events.Click) -> None:
        index = (int(self.scroll_y) + event.y) // ROW_HEIGHT
        if 0 <= index < self.count:
            self._move(index)
            if event.chain >= 2:
                self.action_open()

    # Focus changes only the cursor row's highlight: repaint that row, not the whole list
    # (Textual's own handlers repaint everything, a few ms of every Enter and Esc).
    def focus(self, scroll_visible: bool = True) -> InboxList:
        # As Widget.focus, without its repaint of the whole widget.
        def take_focus() -> None:
            try:
                self.screen.set_focus(self, scroll_visible=scroll_visible)
            except NoScreen:
                pass

        self.app.call_later(take_focus)
        return self

    def _on_focus(self, event: events.Focus) -> None:
        event.prevent_default()  # Widget._on_focus would repaint everything
        self.has_focus = True
        self._refresh_cursor_row()
        if self.parent is not None:
            self.parent.post_message(events.DescendantFocus(self))

    def _on_blur(self, event: events.Blur) -> None:
        event.prevent_default()
        self.has_focus = False
        self._refresh_cursor_row()
        if self.parent is not None:
            self.parent.post_message(events.DescendantBlur(self))

    def _refresh_cursor_row(self) -> None:
        top = self.cursor * ROW_HEIGHT - int(self.scroll_y)
        self.refresh(Region(0, top, self.size.width, ROW_HEIGHT))

    def on_resize(self) -> None:
        set_virtual_size(self, Size(self.size.width, self.count * ROW_HEIGHT))
