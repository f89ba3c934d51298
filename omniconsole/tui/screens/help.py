"""`?`: the key bindings in force, read from the live bindings (remapped keys included)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from omniconsole.i18n import N_, _
from omniconsole.tui.keys import help_rows


def bindings_table(screen) -> Table:
    """The help table: keys and what they do."""
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column(_("key"), style="bold cyan", no_wrap=True)
    table.add_column(_("does"))
    for keys, description in help_rows(screen):
        table.add_row(Text(keys), Text(description))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", N_("Close"), id="help.close")]

    def __init__(self, for_screen) -> None:
        super().__init__()
        self.for_screen = for_screen
        self.rows = help_rows(for_screen)

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide", id="help"):
            yield Static(
                Text(_("Keys (from the live bindings; remap them in [keymap] of the config)"), style="bold"), markup=False
            )
            yield Static(bindings_table(self.for_screen), markup=False)
            yield Static(
                Text(_("Typing goes to the composer while it has focus; Tab moves between panes."), style="grey62"), markup=False
            )

    def action_close(self) -> None:
        self.dismiss(None)
