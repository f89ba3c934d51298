"""A conversation's timeline: every message across channels in time order, with a badge per
channel, notes in their own colour, system events dimmed, and the delivery state of what we sent.

A Line-API view: entries are wrapped to the width once (and again on resize), and only the
lines on screen are drawn. A cursor moves between entries, for retrying a failed message,
saving attachments or unfolding quoted e-mail history.
"""

from __future__ import annotations

import json
import time

from rich.console import Console
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from omniconsole.tui.widgets.lines import CachedScrollbars, set_virtual_size, wrap_to_strips

from omniconsole.store import TimelineEntry
from omniconsole.tui.text import STATE, badge, clock_time, safe


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def fold_at(entry: TimelineEntry) -> int | None:
    """Where an e-mail's quoted history or signature begins (the connector says), if anywhere."""
    if not entry.meta:
        return None
    try:
        value = json.loads(entry.meta).get("fold_at")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and 0 < value < len(entry.body) else None


_CALL_OUTCOMES = {
    "ringing": ("ringing…", "bold yellow"),
    "talking": ("on the line", "bold green"),
    "answered": ("answered", "green"),
    "missed": ("missed: call back", "bold red"),
    "no answer": ("no answer", "yellow"),
}


def call_text(entry: TimelineEntry, when: str) -> Text:
    """A phone call: direction, number, outcome, duration, extension, recording, note. What
    the PBX sent (number, URL, note) is drawn as literal text."""
    try:
        call = json.loads(entry.meta or "{}").get("call") or {}
    except (ValueError, AttributeError):
        call = {}
    inbound = call.get("direction") == "in"
    outcome = str(call.get("outcome") or "")
    label, style = _CALL_OUTCOMES.get(outcome, (outcome or "call", "grey62"))
    text = Text(end="")
    text.append("📞 ")
    text.append("Incoming call" if inbound else "Outgoing call", style="bold")
    number = call.get("from") if inbound else call.get("to")
    if number:
        text.append(" from " if inbound else " to ")
        text.append_text(safe(str(number), "bold cyan"))
    text.append(f"  {when}", style="grey50")
    text.append("\n")
    text.append(label, style=style)
    duration = call.get("duration")
    if isinstance(duration, int) and duration > 0 and call.get("answered"):
        text.append(f"  ⏱ {duration // 60}:{duration % 60:02d}", style="")
    extensions = call.get("answered_by") or call.get("extensions") or []
    if extensions:
        text.append("  ext ", style="grey62")
        text.append_text(safe(", ".join(str(x) for x in extensions), "grey62"))
    if call.get("recording_url"):
        text.append("\n▶ recording ", style="")
        text.append_text(safe(str(call["recording_url"]), "underline"))
    if call.get("note"):
        text.append("\n")
        text.append_text(safe(str(call["note"]), "#E8D8A8"))
    for note in call.get("operator_notes") or ():
        if isinstance(note, dict):
            text.append("\n✎ ", style="#E8D8A8")
            text.append_text(safe(str(note.get("by") or ""), "bold #E8D8A8"))
            text.append(": ", style="#E8D8A8")
            text.append_text(safe(str(note.get("text") or ""), "#E8D8A8"))
    return text


def entry_text(entry: TimelineEntry, *, unfolded: bool = False, now: float | None = None) -> Text:
    """One timeline entry as literal Text (no customer text is ever parsed as markup)."""
    when = clock_time(entry.created_at, now)
    if "call" in entry.flags:
        return call_text(entry, when)
    text = Text(end="")
    if entry.direction == "event":
        text.append("· ", style="grey50")
        text.append_text(safe(entry.author or "system", "grey50"))
        text.append(" ")
        text.append_text(safe(entry.body, "grey50 italic"))
        text.append(f"  {when}", style="grey42")
        return text
    if entry.direction == "note":
        text.append(" NOTE ", style="bold black on #E0B050")
        text.append(" ")
        text.append_text(safe(entry.author, "bold #E0B050"))
        text.append(f"  {when}\n", style="grey50")
        text.append_text(safe(entry.body, "#E8D8A8"))
        return text
    text.append_text(badge(entry.channel_kind))
    text.append(" ")
    if entry.direction == "out":
        text.append("→ ", style="bold green")
        text.append_text(safe(entry.author or "operator", "bold green"))
    else:
        text.append_text(safe(entry.author or "customer", "bold cyan"))
    text.append(f"  {when}", style="grey50")
    if entry.edited_at:
        text.append("  (edited)", style="italic grey62")
    if "auto_reply" in entry.flags:
        text.append("  auto-reply", style="italic yellow")
    if "bounce" in entry.flags:
        text.append("  bounce", style="italic red")
    if entry.direction == "out" and entry.state in STATE:
        label, style = STATE[entry.state]
        text.append(f"  {label}", style=style)
    if entry.subject:
        text.append("\n")
        text.append_text(safe(entry.subject, "bold"))
    body = entry.body
    cut = None if unfolded else fold_at(entry)
    text.append("\n")
    if cut is not None:
        text.append_text(safe(body[:cut].rstrip(), ""))
        text.append("\n… quoted text hidden (f shows the full original)", style="italic grey50")
    else:
        text.append_text(safe(body or "(empty message)", "" if body else "italic grey50"))
    for attachment in entry.attachments:
        text.append("\n📎 ", style="")
        text.append_text(safe(attachment.filename, "underline"))
        text.append(f" ({_size(attachment.size)})", style="grey62")
        if attachment.note:
            text.append(" ")
            text.append_text(safe(attachment.note, "italic yellow"))
    if entry.direction == "out" and entry.error:
        text.append("\n")
        if entry.state == "failed":
            text.append("✗ ", style="bold red")
            text.append_text(safe(entry.error, "red"))
            text.append("  (R retries)", style="grey62")
        else:
            text.append_text(safe(entry.error, "yellow italic"))
    return text


class Timeline(CachedScrollbars, ScrollView, can_focus=True):
    """The messages of the open conversation; the cursor selects one entry."""

    BINDINGS = [
        Binding("j,down", "cursor_down", "Next message", show=False, id="timeline.down"),
        Binding("k,up", "cursor_up", "Previous message", show=False, id="timeline.up"),
        Binding("g,home", "first", "First message", show=False, id="timeline.first"),
        Binding("G,end", "last", "Last message", show=False, id="timeline.last"),
        Binding("f", "toggle_fold", "Full original", id="timeline.fold"),
    ]

    DEFAULT_CSS = """
    Timeline { background: $surface; }
    """

    def __init__(self, *, clock=time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.entries: list[TimelineEntry] = []
        self.cursor = -1
        self.unfolded: set[int] = set()
        self._lines: list[Strip] = []
        self._starts: list[int] = []  # first line of each entry
        self._width = 0

    @property
    def selected(self) -> TimelineEntry | None:
        return self.entries[self.cursor] if 0 <= self.cursor < len(self.entries) else None

    def show(self, entries: list[TimelineEntry], *, focus_message: int | None = None, keep_position: bool = False) -> None:
        """Show a conversation's entries; the cursor goes to `focus_message`, stays on the same
        entry when `keep_position`, else to the newest."""
        previous = self.selected.id if (keep_position and self.selected) else None
        at_bottom = self.scroll_y >= self.max_scroll_y - 1
        self.entries = entries
        target = focus_message if focus_message is not None else previous
        ids = [e.id for e in entries]
        self.cursor = ids.index(target) if target in ids else len(entries) - 1
        self._layout()
        if focus_message is not None or not keep_position or at_bottom:
            self._scroll_to_cursor(bottom=focus_message is None)

    def _layout(self) -> None:
        width = max(10, self.size.width - 1)
        self._width = width
        console: Console = self.app.console
        lines: list[Strip] = []
        starts: list[int] = []
        now = self.clock()
        for index, entry in enumerate(self.entries):
            starts.append(len(lines))
            text = entry_text(entry, unfolded=entry.id in self.unfolded, now=now)
            if index == self.cursor:
                text.stylize("on grey19")
            lines += wrap_to_strips(text, console, width)
            lines.append(Strip.blank(width))
        self._lines, self._starts = lines, starts
        set_virtual_size(self, Size(width, len(lines)))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        if 0 <= index < len(self._lines):
            return self._lines[index]
        return Strip.blank(self.size.width)

    def on_resize(self) -> None:
        if self.entries and self.size.width - 1 != self._width:
            self._layout()

    def _scroll_to_cursor(self, bottom: bool = False) -> None:
        if not self._starts or self.cursor < 0:
            return
        start = self._starts[self.cursor]
        end = self._starts[self.cursor + 1] if self.cursor + 1 < len(self._starts) else len(self._lines)
        height = self.size.height
        if bottom:
            self.scroll_to(y=max(0, len(self._lines) - height), animate=False)
        elif start < self.scroll_y:
            self.scroll_to(y=start, animate=False)
        elif end > self.scroll_y + height:
            self.scroll_to(y=max(start, end - height), animate=False)

    def _move(self, index: int) -> None:
        if not self.entries:
            return
        self.cursor = max(0, min(index, len(self.entries) - 1))
        self._layout()
        self._scroll_to_cursor()

    def action_cursor_down(self) -> None:
        self._move(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self._move(self.cursor - 1)

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(len(self.entries) - 1)

    def action_toggle_fold(self) -> None:
        entry = self.selected
        if entry is not None:
            self.unfolded ^= {entry.id}
            self._layout()

    def on_click(self, event: events.Click) -> None:
        line = int(self.scroll_y) + event.y
        for index in range(len(self._starts) - 1, -1, -1):
            if self._starts[index] <= line:
                self._move(index)
                break
