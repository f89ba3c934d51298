"""One source of key display: the help, the command palette, the status bar's hints and the view
bar all ask here which key does what, from the live bindings (the `[keymap]` of the config
applied), never from a hand-written list."""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.dom import DOMNode
from textual.keys import _character_to_key
from textual.widgets import Input, TextArea

from omniconsole.i18n import _


def live_bindings(node: DOMNode) -> list[Binding]:
    """`node`'s own bindings as they are in force: with the app's keymap applied (as Textual's
    Screen._binding_chain applies it; Textual keeps the keymap in `App._keymap`)."""
    bindings = node._bindings.copy()  # noqa: SLF001 - the map Textual itself dispatches from
    keymap = node.app._keymap  # noqa: SLF001
    if keymap:
        bindings.apply_keymap(keymap)
    return [binding for _key, binding in bindings]


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
            seen.setdefault(_(binding.description), []).append(screen.app.get_key_display(binding))
    return [(" ".join(dict.fromkeys(keys)), description) for description, keys in seen.items()]


def known_binding_ids() -> set[str]:
    """Every binding id a `[keymap]` entry can name: those of the window's screens, panes and
    dialogs and of the Textual widgets they use. Imports every module of `omniconsole.tui`
    (dialogs load lazily otherwise), so call it only when the config has a keymap."""
    import importlib
    import pkgutil

    import omniconsole.tui as package

    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
    ids: set[str] = set()
    pending: list[type] = [DOMNode]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        for binding in cls.__dict__.get("BINDINGS", ()):
            if isinstance(binding, Binding) and binding.id:
                ids.add(binding.id)
    return ids


def unknown_keymap_ids(keymap: dict[str, str], known: set[str]) -> list[str]:
    """One line per `[keymap]` id that no binding carries, naming the nearest real id (Textual
    ignores such an entry silently), e.g. `[keymap] "inbox.resolve" is not a binding id; did you
    mean "conversation.resolve"?`."""
    import difflib

    lines = []
    # Compare the part after the dot too: "inbox.resolve" is nearest "conversation.resolve".
    tails = {name.rsplit(".", 1)[-1]: name for name in sorted(known, reverse=True)}
    for binding_id in keymap:
        if binding_id in known:
            continue
        tail_of_id = binding_id.rsplit(".", 1)[-1]
        nearest = [tails[tail_of_id]] if tail_of_id in tails else []
        nearest = nearest or difflib.get_close_matches(binding_id, sorted(known), n=1, cutoff=0.5)
        if not nearest:
            tail = difflib.get_close_matches(tail_of_id, list(tails), n=1, cutoff=0.6)
            nearest = [tails[tail[0]]] if tail else []
        hint = f'; did you mean "{nearest[0]}"?' if nearest else "; `?` in the window lists the keys"
        lines.append(f'[keymap] "{binding_id}" is not a binding id and is ignored{hint}')
    return lines


#: The Russian ЙЦУКЕН layout by key position: the character a key sends there -> the one it sends
#: on the US layout the bindings are written for (`о` is where `j` is). Letters both ways, and the
#: `/` key, which sends `.` (and `,` shifted) there.
_US = "qwertyuiop[]asdfghjkl;'zxcvbnm,.`QWERTYUIOP{}ASDFGHJKL:\"ZXCVBNM<>~/?"
_RU = "йцукенгшщзхъфывапролджэячсмитьбюёЙЦУКЕНГШЩЗХЪФЫВАПРОЛДЖЭЯЧСМИТЬБЮЁ.,"
LAYOUT_RU = dict(zip(_RU, _US, strict=True))


def latin_key(event: events.Key, focused: DOMNode | None) -> events.Key | None:
    """The key an operator meant when a Russian keyboard layout sent `event`: `о` -> `j`, `Р` ->
    `H`, `.` -> `/` (so no switching layouts to move or act). None when nothing changes: the key is
    not a Cyrillic letter of the layout, or the focus is in a text field, where Cyrillic is text."""
    character = event.character
    if not character or character not in LAYOUT_RU or isinstance(focused, (Input, TextArea)):
        return None
    latin = LAYOUT_RU[character]
    return events.Key(_character_to_key(latin), latin)
