"""The view bar above the inbox: Mine, Unassigned, All, Snoozed, Resolved, At risk, Spam with their
counts and the keys that switch to them (read from the live bindings); then the inbox's order and,
while one is set, its filter, each with the key that changes it."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from omniconsole.i18n import N_, Np_, _, pgettext
from omniconsole.models import InboxOrder, InboxView
from omniconsole.store import InboxFilter
from omniconsole.tui.keys import key_displays
from omniconsole.tui.text import one_line
from omniconsole.tui.widgets.pane_colours import PaneStyles

#: (default key, view, label); the key is the binding `view.<value>`'s default.
VIEW_KEYS = [
    ("1", InboxView.MINE, N_("Mine")),
    ("2", InboxView.UNASSIGNED, N_("Unassigned")),
    ("3", InboxView.ALL, N_("All")),
    ("4", InboxView.SNOOZED, N_("Snoozed")),
    ("5", InboxView.RESOLVED, N_("Resolved")),
    ("6", InboxView.AT_RISK, N_("At risk")),
    ("7", InboxView.SPAM, N_("Spam")),
]
#: A view's name in a narrow window (in English its first four letters, but "Risk").
SHORT = {
    InboxView.MINE: Np_("short view", "Mine"),
    InboxView.UNASSIGNED: Np_("short view", "Unas"),
    InboxView.ALL: Np_("short view", "All"),
    InboxView.SNOOZED: Np_("short view", "Snoo"),
    InboxView.RESOLVED: Np_("short view", "Reso"),
    InboxView.AT_RISK: Np_("short view", "Risk"),
    InboxView.SPAM: Np_("short view", "Spam"),
}

#: How the order is named in the view bar.
ORDER_NAMES = {InboxOrder.PRIORITY: N_("priority"), InboxOrder.ACTIVITY: N_("newest"), InboxOrder.WAITING: N_("waiting longest")}
PRIORITY_NAMES = {0: N_("normal"), 1: N_("high"), 2: N_("urgent")}


def view_name(view: InboxView) -> str:
    """A view's name in the operator's language: Mine, Unassigned, All..."""
    return next((_(label) for _key, shown, label in VIEW_KEYS if shown == view), view.value)


def filter_words(only: InboxFilter) -> str:
    """The filter as the view bar says it: `channel telegram, label vip, priority high, @bob`."""
    parts = []
    if only.channel is not None:
        parts.append(_("channel {name}").format(name=only.channel))
    if only.label is not None:
        parts.append(_("label {name}").format(name=only.label))
    if only.priority is not None:
        parts.append(
            _("priority {name}").format(
                name=_(PRIORITY_NAMES[only.priority]) if only.priority in PRIORITY_NAMES else only.priority
            )
        )
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
        tail.append(
            " " + _("{key} sort: {order}").format(key=key, order=_(ORDER_NAMES[order]) if order in ORDER_NAMES else order) + " "
        )
        key = keys.get("inbox.filter", "")
        if only:
            # Label names and logins are typed by people: literal text, one line.
            tail.append(" ")
            tail.append(" " + _("{key} filter:").format(key=key) + " ", style=self.pane_style("current"))
            tail.append(one_line(filter_words(only), 60), style=self.pane_style("current"))
            tail.append(" ", style=self.pane_style("current"))
        elif key:
            tail.append("  " + _("{key} filter").format(key=key))
        text = self._views(counts, current, keys, short=False)
        if text.cell_len + tail.cell_len > self.size.width:
            # A narrow window keeps the order and the filter in sight: the views' names shorten.
            text = self._views(counts, current, keys, short=True)
        text.append_text(tail)
        text.no_wrap, text.overflow = True, "ellipsis"
        self.update(text, layout=False)

    def _views(self, counts: dict[InboxView, int], current: InboxView, keys: dict[str, str], *, short: bool) -> Text:
        text = Text(end="")
        for _key, view, label in VIEW_KEYS:
            label = _(label)
            style = self.pane_style("current") if view == current else ""
            key = keys.get(f"view.{view.value}", "")
            if short:
                name = pgettext("short view", SHORT[view]) if view in SHORT else label[:4]
                text.append(f"{key} {name} {counts.get(view, 0)}", style=style)
                text.append(" ")
            else:
                text.append(f" {key} {label} {counts.get(view, 0)} ", style=style)
                text.append(" ")
        return text
