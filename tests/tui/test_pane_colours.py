"""The panes' colours are styled once per stylesheet state, not at every restyle of the screen."""

from __future__ import annotations

from rich.style import Style
from textual.app import App, ComposeResult
from textual.widgets import Static

from omniconsole.tui.app import OmniApp
from omniconsole.tui.widgets.pane_colours import PaneColours


class ColoursApp(App):
    CSS_PATH = OmniApp.CSS_PATH

    def compose(self) -> ComposeResult:
        yield Static("x", id="focusable")
        yield PaneColours()


async def test_colours_are_styled_once_and_again_after_a_theme_change():
    app = ColoursApp()
    async with app.run_test() as pilot:
        colours = app.query_one(PaneColours)
        customer = colours.style("timeline--customer")
        assert customer.bold and customer.color is not None
        styled = dict(colours._component_styles)  # noqa: SLF001 - what Textual computed
        assert len(styled) == len(PaneColours.COMPONENT_CLASSES)
        # The screen restyled (as at a focus change, a resize, the screen shown again): the
        # colours are the ones computed before, not 87 virtual nodes styled again.
        app.update_styles(app.screen)
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert all(colours._component_styles[name] is styles for name, styles in styled.items())  # noqa: SLF001
        # A theme switched: styled again, and still right.
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        await pilot.pause()
        await pilot.pause()
        assert any(colours._component_styles[name] is not styles for name, styles in styled.items())  # noqa: SLF001
        assert colours.style("timeline--customer") == customer
        assert isinstance(colours.style("inbox-list--unread"), Style)
