"""The view bar above the inbox: Mine, Unassigned, All, Snoozed, Resolved, At risk, Spam with their
counts and the keys that switch to them (read from the live bindings); then the inbox's order and,
while one is set, its filter, each with the key that changes it."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from omniconsole.models import InboxOrder, InboxView
from omniconsole.store import InboxFilter
from omniconsole.tui.keys import key_displays
from omniconsole.tui.text import one_line
from omniconsole.tui.widgets.pane_colours import PaneStyles

#: (default key, view, label); the key is the binding `view.<value>`'s default.
VIEW_KEYS = [
    ("1", InboxView.MINE, "Mine"),
    ("2", InboxView.UNASSIGNED, "Unassigned"),
    ("3", InboxView.ALL, "All"),
    ("4", InboxView.SNOOZED, "Snoozed"),
    ("5", InboxView.RESOLVED, "Resolved"),
    ("6", InboxView.AT_RISK, "At risk"),
    ("7", InboxView.SPAM, "Spam"),
]
#: A view's name in a narrow window, where the others keep their first four letters.
SHORT = {InboxView.AT_RISK: "Risk"}

#: How the order is named in the view bar.
ORDER_NAMES = {InboxOrder.PRIORITY: "priority", InboxOrder.ACTIVITY: "newest", InboxOrder.WAITING: "waiting longest"}
PRIORITY_NAMES = {0: "normal", 1: "high", 2: "urgent"}


def filter_words(only: InboxFilter) -> str:
    """The filter as the view bar says it: `channel telegram, label vip, priority high, @bob`."""
    parts = []
    if only.channel is not None:
        parts.append(f"channel {only.channel}")
    if only.label is not None:
        parts.append(f"label {only.label}")
    if only.priority is not None:
        parts.append(f"priority {PRIORITY_NAMES.get(only.priority, only.priority)}")
    if only.assignee is not None:
        parts.append(f"@{only.assignee}")
    return ", ".join(parts)


class ViewTabs(PaneStyles, Static):
    """One line: each view with its count, the current one in `view-tabs--current`."""

    PANE = "view-tabs"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)

    def show(
        self,
        counts: dict[InboxView, int],
        current: InboxView,
        order: InboxOrder = InboxOrder.PRIORITY,
        only: InboxFilter | None = None,
    ) -> None:
        keys = key_displays(self.screen)
        tail = Text(end="")
        key = keys.get("inbox.order", "")
        tail.append(f" {key} sort: {ORDER_NAMES.get(order, order)} ")
        key = keys.get("inbox.filter", "")
        if only:
            # Label names and logins are typed by people: literal text, one line.
            tail.append(" ")
            tail.append(f" {key} filter: ", style=self.pane_style("current"))
            tail.append(one_line(filter_words(only), 60), style=self.pane_style("current"))
            tail.append(" ", style=self.pane_style("current"))
        elif key:
            tail.append(f"  {key} filter")
        text = self._views(counts, current, keys, short=False)
        if text.cell_len + tail.cell_len > self.size.width:
            # A narrow window keeps the order and the filter in sight: the views' names shorten.
            text = self._views(counts, current, keys, short=True)
        text.append_text(tail)
        text.no_wrap, text.overflow = True, "ellipsis"
        self.update(text, layout=False)

    def _views(self, counts: dict[InboxView, int], current: InboxView, keys: dict[str, str], *, short: bool) -> Text:
        text = Text(end="")
        for _, view, label in VIEW_KEYS:
            style = self.pane_style("current") if view == current else ""
            key = keys.get(f"view.{view.value}", "")
            if short:
                text.append(f"{key} {SHORT.get(view, label[:4])} {counts.get(view, 0)}", style=style)
                text.append(" ")
            else:
                text.append(f" {key} {label} {counts.get(view, 0)} ", style=style)
                text.append(" ")
        return text
