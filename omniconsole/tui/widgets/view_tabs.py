"""The view bar above the inbox: Mine, Unassigned, All, Snoozed, Resolved, At risk with their counts and
the keys that switch to them (read from the live bindings)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from omniconsole.models import InboxView
from omniconsole.tui.keys import key_displays
from omniconsole.tui.widgets.pane_colours import PaneStyles

#: (default key, view, label); the key is the binding `view.<value>`'s default.
VIEW_KEYS = [
    ("1", InboxView.MINE, "Mine"),
    ("2", InboxView.UNASSIGNED, "Unassigned"),
    ("3", InboxView.ALL, "All"),
    ("4", InboxView.SNOOZED, "Snoozed"),
    ("5", InboxView.RESOLVED, "Resolved"),
    ("6", InboxView.AT_RISK, "At risk"),
]


class ViewTabs(PaneStyles, Static):
    """One line: each view with its count, the current one in `view-tabs--current`."""

    PANE = "view-tabs"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)

    def show(self, counts: dict[InboxView, int], current: InboxView) -> None:
        text = Text(end="")
        keys = key_displays(self.screen)
        for _, view, label in VIEW_KEYS:
            style = self.pane_style("current") if view == current else ""
            key = keys.get(f"view.{view.value}", "")
            text.append(f" {key} {label} {counts.get(view, 0)} ", style=style)
            text.append(" ")
        self.update(text, layout=False)
