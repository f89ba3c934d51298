"""A read-only viewer for a text attachment or a whole message body (the text is untrusted:
sanitised, never markup). A long text is not wrapped (wrapping megabytes takes seconds):
scroll sideways instead."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, TextArea

from omniconsole.i18n import N_, _
from omniconsole.models import sanitize_text

#: Texts longer than this (characters) are shown without soft wrapping.
WRAP_LIMIT = 200_000


class FileViewer(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", N_("Close"), id="viewer.close")]

    def __init__(self, filename: str, text: str) -> None:
        super().__init__()
        self.filename = sanitize_text(filename)
        self.text = sanitize_text(text)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(Text(self.filename, style="bold"), markup=False)
            yield TextArea(self.text, read_only=True, soft_wrap=len(self.text) <= WRAP_LIMIT, id="viewer-text")
            yield Label(Text(_("Esc closes"), style="grey62"), markup=False)

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_close(self) -> None:
        self.dismiss(None)
