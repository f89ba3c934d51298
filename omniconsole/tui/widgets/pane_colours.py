"""The panes' colours, as component classes in the one stylesheet (`omniconsole.tcss`):
`PaneColours > .timeline--customer { text-style: bold; color: ansi_cyan; }`.

They belong to one hidden member of the screen rather than to each pane: Textual recomputes a
widget's component classes every time its style is applied, and the panes' styles are applied
at every focus change (Enter, Esc, Tab): the timeline's 35 classes cost ~7 ms a time there,
PaneColours' never (it is neither focused nor shown).
"""

from __future__ import annotations

from rich.style import Style
from textual.widget import Widget

#: pane -> the names of its colours; `<pane>--<name>` is a component class.
COLOURS = {
    "status-bar": ("operator", "dim", "alarm", "hints", "up", "degraded", "down", "unknown"),
    "view-tabs": ("current",),
    "conversation-header": (
        "dim",
        "name",
        "subject",
        "open",
        "pending",
        "snoozed",
        "closed",
        "assignee",
        "nobody",
        "priority",
        "labels",
    ),
    "presence-line": ("typing", "viewing"),
    "reply-box": ("note-tag", "dim", "window", "warning"),
    "inbox-list": (
        "unread",
        "unread-name",
        "priority",
        "waiting",
        "dim",
        "assignee",
        "nobody",
        "cursor",
        "cursor-focus",
        "loading",
        "sla-ok",
        "sla-warning",
        "sla-breach",
    ),
    "timeline": (
        "event",
        "event-body",
        "event-time",
        "note-tag",
        "note-author",
        "note-body",
        "call-note-author",
        "time",
        "operator",
        "customer",
        "edited",
        "auto-reply",
        "bounce",
        "subject",
        "fold",
        "empty",
        "link",
        "dim",
        "file-note",
        "failed",
        "error",
        "warning",
        "cursor",
        "call-title",
        "call-ringing",
        "call-talking",
        "call-answered",
        "call-missed",
        "call-no-answer",
        "state-queued",
        "state-sending",
        "state-sent",
        "state-delivered",
        "state-read",
        "state-failed",
    ),
    "customer-pane": (
        "name",
        "faint",
        "dim",
        "italic",
        "heading",
        "suggestion-heading",
        "suggestion",
        "labels",
        "marker",
        "open",
        "pending",
        "snoozed",
        "resolved",
    ),
}


class PaneColours(Widget):
    """Holds every pane's colours; `style("timeline--customer")` is a Rich style."""

    DEFAULT_CSS = "PaneColours { display: none; }"

    COMPONENT_CLASSES = {f"{pane}--{name}" for pane, names in COLOURS.items() for name in names}

    _styled_for: tuple | None = None

    def _get_component_classes(self) -> frozenset[str]:  # type: ignore[override]
        """Textual asks this at every restyle of the screen (mount, the screen shown, a resize)
        and styles each component class as a virtual node against the whole stylesheet: 87
        classes x 4 at start, a third of the window's CSS work. The colours change only with the
        stylesheet (a theme switched, the CSS reloaded): answer them once per stylesheet state
        and nothing otherwise, so Textual keeps the styles it computed."""
        app = self.app
        state = (app._css_update_count, app.theme, id(app.stylesheet))  # noqa: SLF001 - Textual's restyle counter
        if state == self._styled_for:
            return frozenset()
        self._styled_for = state
        return super()._get_component_classes()

    def style(self, name: str) -> Style:
        """The colour `name` (`<pane>--<what>`); KeyError when the stylesheet has no such class."""
        return self.get_component_rich_style(name, partial=True)


class PaneStyles:
    """Mixin for a pane: `pane_style("customer")` is its `<PANE>--customer` colour, read from
    the screen's PaneColours."""

    PANE = ""
    _pane_colours: PaneColours | None = None

    def pane_style(self, name: str) -> Style:
        colours = self._pane_colours
        if colours is None:
            colours = self._pane_colours = self.screen.query_one(PaneColours)
        return colours.style(f"{self.PANE}--{name}")
