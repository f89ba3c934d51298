"""The footer of the window's full screens (reports, wallboard, journeys, library, the bot
view): Textual's own `Footer`, with each key's description (marked `N_()` on its `Binding`)
translated into the operator's language when the footer is composed, so a language switch
shows on the next screen opened."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer as TextualFooter
from textual.widgets._footer import FooterKey

from omniconsole.i18n import N_, _

#: The description Textual gives the command palette's key (`App.__init__`, not a class's
#: BINDINGS, so `tui/textual_words.py` does not list it), shown at the footer's right.
PALETTE = N_("palette")


class Footer(TextualFooter):
    """`textual.widgets.Footer` speaking the current language (see the module docstring)."""

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if isinstance(widget, FooterKey) and widget.description:
                widget.description = _(widget.description)
            yield widget
