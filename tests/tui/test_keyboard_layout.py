"""A Russian keyboard layout (ЙЦУКЕН) sends Cyrillic letters: the same key positions do the same
things (`о`/`л` move like `j`/`k`, `у` resolves like `e`, `.` searches like `/`), while text typed
into the composer stays Cyrillic (issue #24)."""

from __future__ import annotations

from omniconsole.tui.keys import LAYOUT_RU
from omniconsole.tui.screens.search import SearchScreen
from tests.tui.test_actions import dialog, open_conversation, settle, store_of


def test_every_single_key_binding_has_its_russian_position() -> None:
    from textual.binding import Binding
    from textual.dom import DOMNode

    from omniconsole.tui.keys import known_binding_ids

    known_binding_ids()  # imports every module of the window, dialogs included
    latin = set(LAYOUT_RU.values())
    keys: set[str] = set()
    pending: list[type] = [DOMNode]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not cls.__module__.startswith("omniconsole."):
            continue
        for binding in cls.__dict__.get("BINDINGS", ()):
            if isinstance(binding, Binding):
                keys.update(k for k in binding.key.split(",") if len(k) == 1 and k.isalpha())
    assert keys and keys <= latin


async def test_cyrillic_keys_move_act_and_type(make_window, shop) -> None:
    ids = shop[1]
    app = make_window()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.main
        await settle(pilot)
        start = screen.inbox.cursor
        await pilot.press("о")  # j
        await settle(pilot, 0.1)
        assert screen.inbox.cursor == start + 1
        await pilot.press("л")  # k
        await settle(pilot, 0.1)
        assert screen.inbox.cursor == start
        screen = await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("т", *"готово к отправке", "enter")  # n: a note, its text Cyrillic
        await settle(pilot)
        await pilot.press("у")  # e: resolve
        await settle(pilot)
        assert (await app.store.conversation(ids["oliver"])).status == "resolved"
        await pilot.press(".")  # /: search
        await dialog(pilot, SearchScreen.__name__)
    store = await store_of(shop)
    notes = [e.body for e in await store.timeline(ids["oliver"]) if e.direction == "note"]
    assert notes == ["готово к отправке"]
    await store.close()
