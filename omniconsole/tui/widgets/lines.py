"""Shared machinery of the Line-API views (inbox, timeline, customer card)."""

from __future__ import annotations

from textual.geometry import Size
from textual.scroll_view import ScrollView


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
