"""The customer pane: who this is across every channel, and what else they asked us."""

from __future__ import annotations

import time

from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from omniconsole.tui.widgets.lines import CachedScrollbars, set_virtual_size, wrap_to_strips

from omniconsole.store import CustomerProfile
from omniconsole.tui.text import badge, clock_time, one_line, safe

STATUS_STYLE = {"open": "green", "pending": "yellow", "snoozed": "blue", "resolved": "grey50"}


def profile_text(profile: CustomerProfile, current_conversation: int | None = None, now: float | None = None) -> Text:
    """The customer's card as literal Text."""
    now = now if now is not None else time.time()
    text = Text(end="")
    text.append_text(safe(profile.display_name or "(no name)", "bold"))
    if profile.name_source == "operator":
        text.append("  ✎", style="grey50")
    text.append("\n")
    if profile.first_seen_at:
        text.append(f"first seen {clock_time(profile.first_seen_at, now)}\n", style="grey62")
    if profile.origin:
        text.append("came from ", style="grey62")
        text.append_text(safe(profile.origin, "italic"))
        text.append("\n")
    text.append("\nIdentities\n", style="bold underline")
    for identity in profile.identities:
        text.append_text(badge(identity.kind))
        text.append(" ")
        text.append_text(safe(identity.address))
        if identity.display and identity.display != identity.address:
            text.append(" (")
            text.append_text(safe(identity.display, "grey62"))
            text.append(")")
        text.append("\n")
    if profile.suggestions:
        # Evidence, never a merge: the operator decides (m).
        text.append("\nPossibly the same person  m: merge or dismiss\n", style="bold underline yellow")
        for suggestion in profile.suggestions:
            text.append("? ", style="bold yellow")
            text.append_text(safe(suggestion.other_name or "(no name)", "bold"))
            text.append(f" #{suggestion.other_id}\n", style="grey62")
            text.append("  ")
            text.append_text(safe(suggestion.reason, "grey62"))
            text.append("\n")
    if profile.journey:
        text.append("\nJourney\n", style="bold underline")
        for n, kind in enumerate(profile.journey):
            if n:
                text.append(" → ", style="grey62")
            text.append_text(badge(kind))
        text.append("\n")
    if profile.labels:
        text.append("\nLabels ", style="bold underline")
        text.append("\n")
        text.append_text(safe(", ".join(profile.labels), "magenta"))
        text.append("\n")
    if profile.attributes:
        text.append("\nAttributes\n", style="bold underline")
        for key, value in profile.attributes.items():
            text.append_text(safe(str(key), "grey62"))
            text.append(": ")
            text.append_text(safe(str(value)))
            text.append("\n")
    if profile.note:
        text.append("\nNote\n", style="bold underline")
        text.append_text(safe(profile.note, "italic"))
        text.append("\n")
    merges = [m for m in profile.merges if m.undone_at is None]
    if merges:
        text.append("\nMerged in  m: undo\n", style="bold underline")
        for merge in merges:
            text.append_text(safe(merge.merged_name or "(no name)"))
            text.append(f" #{merge.merged_id}, by ", style="grey62")
            text.append_text(safe(merge.actor, "grey62"))
            text.append(f" {clock_time(merge.at, now)}", style="grey62")
            if merge.reason:
                text.append(": ", style="grey62")
                text.append_text(safe(merge.reason, "grey62"))
            text.append("\n")
    text.append(f"\nConversations ({len(profile.conversations)})  h: open one\n", style="bold underline")
    for conversation in profile.conversations[:30]:
        marker = "▶ " if conversation.id == current_conversation else "  "
        text.append(marker, style="bold")
        text.append(f"#{conversation.id} ", style="grey62")
        text.append(f"{conversation.status:<8} ", style=STATUS_STYLE.get(conversation.status, ""))
        text.append(one_line(conversation.subject, 40))
        text.append("\n")
    if len(profile.conversations) > 30:
        text.append(f"  … {len(profile.conversations) - 30} more\n", style="grey50")
    return text


class CustomerPane(CachedScrollbars, ScrollView, can_focus=True):
    """Scrollable customer card (Line API: a new card is wrapped once and drawn without a
    layout pass of the whole screen)."""

    BINDINGS = [
        Binding("j,down", "scroll_down", "Scroll down", show=False, id="customer.down"),
        Binding("k,up", "scroll_up", "Scroll up", show=False, id="customer.up"),
    ]

    DEFAULT_CSS = """
    CustomerPane { background: $surface; }
    """

    def __init__(self, *, clock=time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.profile: CustomerProfile | None = None
        self._text = Text("")
        self._lines: list[Strip] = []
        self._width = 0

    def show(self, profile: CustomerProfile | None, current_conversation: int | None = None) -> None:
        self.profile = profile
        self._text = profile_text(profile, current_conversation, self.clock()) if profile else Text("")
        self._layout()

    def _layout(self) -> None:
        width = max(10, self.size.width - 1)
        self._width = width
        self._lines = wrap_to_strips(self._text, self.app.console, width)
        set_virtual_size(self, Size(width, len(self._lines)))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        return self._lines[index] if 0 <= index < len(self._lines) else Strip.blank(self.size.width)

    def on_resize(self) -> None:
        if self.size.width - 1 != self._width:
            self._layout()

    @property
    def card_text(self) -> str:
        """The card as plain text (for tests and copying)."""
        return self._text.plain
