"""Shared machinery of the Line-API views (inbox, timeline, customer card)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip


def set_virtual_size(view: ScrollView, size: Size) -> None:
    """Change a view's scrollable size without a layout pass of the whole screen.

    `virtual_size` is a layout reactive: every change re-lays out the screen (measured at
    ~50 ms a time here, most of a keystroke's budget). These views reserve their scrollbar
    gutter (`scrollbar-gutter: stable`), so their own size never depends on their content:
    updating the scrollbars and repainting the view is enough."""
    if size == view.virtual_size:
        return
    view.set_reactive(ScrollView.virtual_size, size)
    view._scroll_update(size)  # scrollbars and scroll bounds
    view.refresh()


def wrap_to_strips(text: Text, console: Console, width: int) -> list[Strip]:
    """`text` wrapped to `width` cells, one Strip a line, each exactly `width` wide."""
    return [Strip(list(line.render(console))).crop_extend(0, width, None) for line in text.wrap(console, width)]
