"""Shared machinery of the Line-API views (inbox, timeline, customer card)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.strip import Strip


class CachedScrollBar(ScrollBar):
    """A scrollbar that draws itself only when what it shows changed.

    Moving focus between the panes re-applies the stylesheet to every widget under them, which
    refreshes their scrollbars; Textual then renders each again through Rich (~5 ms apiece
    here), although nothing on them changed. That was most of an Enter's or an Esc's
    keystroke-to-repaint time. The drawn lines are kept with everything they depend on."""

    _drawn: tuple[tuple, list[Strip]] | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        styles = self.styles
        key = (
            crop,
            self.size,
            self.window_virtual_size,
            self.window_size,
            self.position,
            self.thickness,
            self.mouse_over,
            self.grabbed is not None,
            styles.scrollbar_color,
            styles.scrollbar_color_hover,
            styles.scrollbar_color_active,
            styles.scrollbar_background,
            styles.scrollbar_background_hover,
            styles.scrollbar_background_active,
        )
        if self._drawn is not None and self._drawn[0] == key:
            return self._drawn[1]
        lines = super().render_lines(crop)
        self._drawn = (key, lines)
        return lines


class CachedScrollbars:
    """Mixin for the Line-API views: their vertical scrollbar is a `CachedScrollBar` (they never
    scroll sideways: `overflow-x: hidden` in the stylesheet)."""

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        if self._vertical_scrollbar is None:
            # As Textual's Widget.vertical_scrollbar, with the caching class.
            self._vertical_scrollbar = CachedScrollBar(vertical=True, name="vertical", thickness=self.scrollbar_size_vertical)
            self._vertical_scrollbar.display = False
            self.app._start_widget(self, self._vertical_scrollbar)  # noqa: SLF001
        return self._vertical_scrollbar


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
