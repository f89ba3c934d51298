"""One source of key display: the help, the command palette, the status bar's hints and the view
bar all ask here which key does what, from the live bindings (the `[keymap]` of the config
applied), never from a hand-written list."""

from __future__ import annotations

from textual.binding import Binding
from textual.dom import DOMNode


def live_bindings(node: DOMNode) -> list[Binding]:
    """`node`'s own bindings as they are in force: with the app's keymap applied (as Textual's
    Screen._binding_chain applies it; Textual keeps the keymap in `App._keymap`)."""
    bindings = node._bindings.copy()  # noqa: SLF001 - the map Textual itself dispatches from
    keymap = node.app._keymap  # noqa: SLF001
    if keymap:
        bindings.apply_keymap(keymap)
    return [binding for _, binding in bindings]


def key_displays(node: DOMNode) -> dict[str, str]:
    """Binding id -> how its key(s) on `node` are shown (`r`, `^r`, `/`; several joined by a
    space). Ids with nothing bound are absent."""
    keys: dict[str, list[str]] = {}
    for binding in live_bindings(node):
        if binding.id:
            keys.setdefault(binding.id, []).append(node.app.get_key_display(binding))
    return {binding_id: " ".join(dict.fromkeys(shown)) for binding_id, shown in keys.items()}


def help_rows(screen) -> list[tuple[str, str]]:
    """(keys, what they do) for every binding active on `screen` (the focused pane's, the
    screen's and the app's) with a description."""
    seen: dict[str, list[str]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if binding.description:
            seen.setdefault(binding.description, []).append(screen.app.get_key_display(binding))
    return [(" ".join(dict.fromkeys(keys)), description) for description, keys in seen.items()]
