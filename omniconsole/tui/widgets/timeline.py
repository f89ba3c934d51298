"""A conversation's timeline: every message across channels in time order, with a badge per
channel, notes in their own colour, system events dimmed, and the delivery state of what we sent.

A Line-API view: entries are wrapped to the width once (and again on resize), and only the
lines on screen are drawn. A cursor moves between entries, for retrying a failed message,
saving attachments or unfolding quoted e-mail history.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping

from rich.console import Console
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from omniconsole.i18n import N_, _, current_language, is_phrase, render
from omniconsole.store import TimelineEntry
from omniconsole.tui.text import STATE, badge, clock_time, number, safe
from omniconsole.tui.widgets.lines import CachedScrollbars, set_virtual_size, wrap_to_strips
from omniconsole.tui.widgets.pane_colours import PaneStyles


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


#: Characters of a message body drawn in the timeline: a 20 MB mail would take seconds to wrap
#: at every redraw. The whole body stays in the store and opens with `v`.
DISPLAY_LIMIT = 16_000

_CALL_OUTCOMES = {
    "ringing": N_("ringing…"),
    "talking": N_("on the line"),
    "answered": N_("answered"),
    "missed": N_("missed: call back"),
    "no answer": N_("no answer"),
}

#: A style resolver: a component name (`customer`, `state-failed`...) to a style. The window's
#: is the Timeline's `timeline--<name>` component classes; without one, text has no colours.
StyleOf = Callable[[str], "Style | str"]


def no_style(name: str) -> str:
    return ""


def call_text(entry: TimelineEntry, when: str, style: StyleOf = no_style) -> Text:
    """A phone call: direction, number, outcome, duration, extension, recording, note. What
    the PBX sent (number, URL, note) is drawn as literal text."""
    try:
        call = json.loads(entry.meta or "{}").get("call") or {}
    except (ValueError, AttributeError):
        call = {}
    inbound = call.get("direction") == "in"
    outcome = str(call.get("outcome") or "")
    label = _(_CALL_OUTCOMES[outcome]) if outcome in _CALL_OUTCOMES else outcome or _("call")
    text = Text(end="")
    text.append("📞 ")
    text.append(_("Incoming call") if inbound else _("Outgoing call"), style=style("call-title"))
    number = call.get("from") if inbound else call.get("to")
    if number:
        text.append(" from " if inbound else " to ")
        text.append_text(safe(str(number), style("customer")))
    text.append(f"  {when}", style=style("time"))
    text.append("\n")
    text.append(label, style=style("call-" + outcome.replace(" ", "-") if outcome in _CALL_OUTCOMES else "dim"))
    duration = call.get("duration")
    if isinstance(duration, int) and duration > 0 and call.get("answered"):
        text.append(f"  ⏱ {duration // 60}:{duration % 60:02d}", style="")
    extensions = call.get("answered_by") or call.get("extensions") or []
    if extensions:
        text.append("  " + _("ext") + " ", style=style("dim"))
        text.append_text(safe(", ".join(str(x) for x in extensions), style("dim")))
    if call.get("recording_url"):
        text.append("\n▶ recording ", style="")
        text.append_text(safe(str(call["recording_url"]), style("link")))
    if call.get("note"):
        text.append("\n")
        text.append_text(safe(str(call["note"]), style("note-body")))
    for note in call.get("operator_notes") or ():
        if isinstance(note, dict):
            text.append("\n✎ ", style=style("note-body"))
            text.append_text(safe(str(note.get("by") or ""), style("call-note-author")))
            text.append(": ", style=style("note-body"))
            text.append_text(safe(str(note.get("text") or ""), style("note-body")))
    return text


def reactions_text(reactions: tuple[tuple[str, str], ...], style: StyleOf = no_style) -> Text:
    """The reactions on a message, "👍 by Иван  ❤ by Emma": (emoji, who) pairs, both drawn as
    literal text (they come from the customer's channel)."""
    text = Text(end="")
    for index, (emoji, who) in enumerate(reactions):
        if index:
            text.append("  ")
        text.append_text(safe(emoji, ""))
        text.append(" " + _("by") + " ", style=style("dim"))
        text.append_text(safe(who or _("the customer"), style("customer")))
    return text


def event_words(entry: TimelineEntry) -> str:
    """A timeline line ("assigned to bob") or the bot's handoff note in the operator's language:
    the phrase the store kept in `meta` (store/actions.py `event_line`), else the English `body`
    (older rows, imports, notes operators write)."""
    if entry.meta:
        try:
            line = json.loads(entry.meta).get("line")
        except (ValueError, AttributeError):
            line = None
        if is_phrase(line):
            return render(line)
    return entry.body


def entry_text(
    entry: TimelineEntry,
    *,
    unfolded: bool = False,
    now: float | None = None,
    style: StyleOf = no_style,
    reactions: tuple[tuple[str, str], ...] = (),
) -> Text:
    """One timeline entry as literal Text (no customer text is ever parsed as markup), coloured
    by `style`; `reactions` (emoji, who) are drawn under the message they are on (issue #14)."""
    when = clock_time(entry.created_at, now)
    if "call" in entry.flags:
        return call_text(entry, when, style)
    text = Text(end="")
    if entry.direction == "event":
        text.append("· ", style=style("event"))
        text.append_text(safe(entry.author or _("system"), style("event")))
        text.append(" ")
        text.append_text(safe(event_words(entry), style("event-body")))
        text.append(f"  {when}", style=style("event-time"))
        return text
    if entry.direction == "note":
        text.append(" " + _("NOTE") + " ", style=style("note-tag"))
        text.append(" ")
        text.append_text(safe(entry.author, style("note-author")))
        text.append(f"  {when}\n", style=style("time"))
        text.append_text(safe(event_words(entry), style("note-body")))
        return text
    text.append_text(badge(entry.channel_kind))
    text.append(" ")
    if entry.direction == "out":
        text.append("→ ", style=style("operator"))
        text.append_text(safe(entry.author or _("operator"), style("operator")))
    else:
        text.append_text(safe(entry.author or _("customer"), style("customer")))
    text.append(f"  {when}", style=style("time"))
    if entry.edited_at:
        text.append("  " + _("(edited)"), style=style("edited"))
    if "auto_reply" in entry.flags:
        text.append("  " + _("auto-reply"), style=style("auto-reply"))
    if "bounce" in entry.flags:
        text.append("  " + _("bounce"), style=style("bounce"))
    if entry.direction == "out" and entry.state in STATE:
        text.append(f"  {_(STATE[entry.state])}", style=style(f"state-{entry.state}"))
    if entry.subject:
        text.append("\n")
        text.append_text(safe(entry.subject, style("subject")))
    body = entry.body
    cut = None if unfolded else fold_at(entry)
    shown = body[:cut] if cut is not None else body
    capped = len(shown) > DISPLAY_LIMIT
    if capped:
        shown = shown[:DISPLAY_LIMIT]
    text.append("\n")
    if cut is not None:
        text.append_text(safe(shown.rstrip(), ""))
        if not capped:
            text.append("\n" + _("… quoted text hidden (f shows the full original)"), style=style("fold"))
    else:
        text.append_text(safe(shown or _("(empty message)"), "" if shown else style("empty")))
    if capped:
        text.append(
            "\n" + _("… {n} more characters not shown (v shows the whole message)").format(n=number(len(body) - DISPLAY_LIMIT)),
            style=style("fold"),
        )
    for attachment in entry.attachments:
        text.append("\n📎 ", style="")
        text.append_text(safe(attachment.filename, style("link")))
        text.append(f" ({_size(attachment.size)})", style=style("dim"))
        if attachment.note:
            text.append(" ")
            text.append_text(safe(attachment.note, style("file-note")))
    if reactions:
        text.append("\n")
        text.append_text(reactions_text(reactions, style))
    if entry.direction == "out" and entry.error:
        text.append("\n")
        if entry.state == "failed":
            text.append("✗ ", style=style("failed"))
            text.append_text(safe(entry.error, style("error")))
            text.append("  (R retries)", style=style("dim"))
        else:
            text.append_text(safe(entry.error, style("warning")))
    return text


class Timeline(PaneStyles, CachedScrollbars, ScrollView, can_focus=True):
    """The messages of the open conversation; the cursor selects one entry."""

    BINDINGS = [
        Binding("j,down", "cursor_down", N_("Next message"), show=False, id="timeline.down"),
        Binding("k,up", "cursor_up", N_("Previous message"), show=False, id="timeline.up"),
        Binding("g,home", "first", N_("First message"), show=False, id="timeline.first"),
        Binding("G,end", "last", N_("Last message"), show=False, id="timeline.last"),
        Binding("f", "toggle_fold", N_("Full original"), id="timeline.fold"),
        Binding("v", "view_whole", N_("Whole message"), id="timeline.view"),
    ]

    class WholeMessageRequested(Message):
        """`v`: the operator wants to read the selected entry's whole body (not capped)."""

        def __init__(self, entry: TimelineEntry) -> None:
            super().__init__()
            self.entry = entry

    DEFAULT_CSS = """
    Timeline { background: $surface; }
    """

    PANE = "timeline"

    def __init__(self, *, clock=time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.entries: list[TimelineEntry] = []
        # The customers' reactions by message id: (emoji, who), oldest first.
        self.reactions: dict[int, tuple[tuple[str, str], ...]] = {}
        self.cursor = -1
        self.unfolded: set[int] = set()
        self._lines: list[Strip] = []
        self._starts: list[int] = []  # first line of each entry
        self._width = 0
        # The shown entries wrapped once per look (entry, fold, width, day): moving the cursor
        # or a reload of the same conversation draws only the selected entry again. Only what
        # is on show is kept (a growing cache of strips is more for the garbage collector to
        # scan, and its pauses show up as slow keys).
        self._wrapped: dict[tuple, list[Strip]] = {}

    @property
    def selected(self) -> TimelineEntry | None:
        return self.entries[self.cursor] if 0 <= self.cursor < len(self.entries) else None

    def show(
        self,
        entries: list[TimelineEntry],
        *,
        focus_message: int | None = None,
        keep_position: bool = False,
        reactions: Mapping[int, Iterable] | None = None,
    ) -> None:
        """Show a conversation's entries; the cursor goes to `focus_message`, stays on the same
        entry when `keep_position`, else to the newest. `reactions` are `Store.reactions()`:
        message id -> reactions (with `emoji` and `sender_name`)."""
        previous = self.selected.id if (keep_position and self.selected) else None
        at_bottom = self.scroll_y >= self.max_scroll_y - 1
        self.entries = entries
        self.reactions = {
            message_id: tuple((r.emoji, r.sender_name) for r in found) for message_id, found in (reactions or {}).items()
        }
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
        day = time.localtime(now)[:3]  # clock_time says a time of today without its date
        kept: dict[tuple, list[Strip]] = {}
        for index, entry in enumerate(self.entries):
            starts.append(len(lines))
            unfolded = entry.id in self.unfolded
            reactions = self.reactions.get(entry.id, ())
            if index == self.cursor:
                # The selected entry is drawn afresh with its highlight over its own styles
                # (bodies are capped, so this stays a few milliseconds at most).
                text = entry_text(entry, unfolded=unfolded, now=now, style=self.pane_style, reactions=reactions)
                text.stylize(self.pane_style("cursor"))
                lines += wrap_to_strips(text, console, width)
            else:
                key = (entry, unfolded, width, day, reactions, current_language())
                wrapped = self._wrapped.get(key)
                if wrapped is None:
                    text = entry_text(entry, unfolded=unfolded, now=now, style=self.pane_style, reactions=reactions)
                    wrapped = wrap_to_strips(text, console, width)
                lines += wrapped
                kept[key] = wrapped
            lines.append(Strip.blank(width))
        self._wrapped = kept
        self._lines, self._starts = lines, starts
        set_virtual_size(self, Size(width, len(lines)))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        if 0 <= index < len(self._lines):
            return self._lines[index]
        return Strip.blank(self.size.width)

    def on_resize(self) -> None:
        # A pane below that appears or grows (the reply box's suggestion strip) shortens the
        # timeline: the newest line stays in sight when it was in sight before.
        height_before = getattr(self, "_height", self.size.height)
        was_at_end = self._lines and self.scroll_y + height_before >= len(self._lines)
        self._height = self.size.height
        if self.entries and self.size.width - 1 != self._width:
            self._layout()
        if was_at_end and self.size.height < height_before:
            self.scroll_to(y=max(0, len(self._lines) - self.size.height), animate=False)

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

    def action_view_whole(self) -> None:
        entry = self.selected
        if entry is not None:
            self.post_message(self.WholeMessageRequested(entry))

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
