"""The list every dialog and picker shows: an `OptionList` that moves with `j`/`k` as well as
the arrows (the inbox's keys), so an operator's fingers need not leave the letters."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import OptionList

from omniconsole.i18n import N_


class DialogList(OptionList):
    """An option list with `j`/`k` beside Down/Up (ids `list.down`, `list.up` for the keymap)."""

    BINDINGS = [
        Binding("j", "cursor_down", N_("Down"), show=False, id="list.down"),
        Binding("k", "cursor_up", N_("Up"), show=False, id="list.up"),
    ]
