"""Every action of the window, driven by keys through Pilot, asserting what the store holds."""

from __future__ import annotations

import asyncio
import time

import pytest

from omniconsole.models import InboxView
from omniconsole.store import Store
from omniconsole.tui.screens.main import MainScreen
from omniconsole.tui.screens.search import SearchScreen
from tests.tui.conftest import NOW


async def settle(pilot, seconds: float = 0.25) -> None:
    await pilot.pause(seconds)


async def dialog(pilot, kind: str = "") -> None:
    """Wait until a modal dialog (of class `kind`, if given) is on screen: under load it may
    take longer than a fixed pause, and keys sent before it would go to the screen below."""
    from textual.screen import ModalScreen

    for _ in range(100):
        screen = pilot.app.screen
        if isinstance(screen, ModalScreen) and (not kind or type(screen).__name__ == kind):
            await pilot.pause(0.05)
            return
        await pilot.pause(0.05)
    raise AssertionError(f"no {kind or 'dialog'} appeared")


async def open_conversation(pilot, app, conversation_id: int) -> MainScreen:
    """Move the inbox cursor to a conversation and open it with Enter."""
    screen: MainScreen = app.main
    await settle(pilot)
    for _ in range(20):
        if screen.inbox.selected and screen.inbox.selected.conversation_id == conversation_id:
            break
        await pilot.press("j")
    assert screen.inbox.selected.conversation_id == conversation_id
    await pilot.press("enter")
    await settle(pilot)
    assert screen.conversation.id == conversation_id
    return screen


@pytest.fixture
def make_app(make_window):
    """Every action test runs with the core in-process and with a core over its socket."""
    return make_window


async def store_of(shop) -> Store:
    return await Store.open(shop[0].database)


async def test_reply_queues_an_outbound_message_by_the_latest_channel(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["ivan"])
        assert "reply via" in str(screen.query_one("#composer-info").render())
        await pilot.press("r")
        assert app.focused is screen.composer
        await pilot.press(*"Уже ищем", "enter")
        await settle(pilot)
        assert screen.composer.text == ""
    store = await store_of(shop)
    entries = await store.timeline(ids["ivan"])
    reply = [e for e in entries if e.direction == "out"][-1]
    assert reply.body == "Уже ищем" and reply.state == "queued" and reply.author == "alice"
    assert reply.channel_kind == "email"  # the customer's latest inbound came by e-mail
    await store.close()


async def test_ctrl_t_picks_another_identity_of_the_customer(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["ivan"])
        await pilot.press("r", "ctrl+t")
        assert screen.routes[screen.route_index].kind == "telegram"
        await pilot.press(*"by telegram", "enter")
        await settle(pilot)
    store = await store_of(shop)
    reply = [e for e in await store.timeline(ids["ivan"]) if e.direction == "out"][-1]
    assert reply.channel_kind == "telegram" and reply.body == "by telegram"
    await store.close()


async def test_note_is_private_and_composer_owns_typing(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("n", *"resolve quickly", "enter")  # 'e' and 'r' typed, not actions
        await settle(pilot)
        assert screen.conversation.status == "open"
    store = await store_of(shop)
    notes = [e for e in await store.timeline(ids["oliver"]) if e.direction == "note"]
    assert [n.body for n in notes] == ["resolve quickly"]
    await store.close()


async def test_resolve_reopen_and_resolve_next(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("e")
        await settle(pilot)
        assert (await app.store.conversation(ids["oliver"])).status == "resolved"
        await pilot.press("u")
        await settle(pilot)
        assert (await app.store.conversation(ids["oliver"])).status == "open"
        await pilot.press("E")
        await settle(pilot, 0.4)
        assert (await app.store.conversation(ids["oliver"])).status == "resolved"
        # The next waiting conversation (the longest wait) is open now.
        assert screen.conversation.id == ids["ivan"]


async def test_snooze_for_an_hour_and_to_a_date(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("z")
        await dialog(pilot, "SnoozeDialog")
        await pilot.press("enter")  # first option: 1 hour
        await settle(pilot)
        conversation = await app.store.conversation(ids["oliver"])
        assert conversation.status == "snoozed" and abs(conversation.snoozed_until - (NOW + 3600)) < 1
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("z")
        await dialog(pilot, "SnoozeDialog")
        await pilot.press("down", "down", "enter")  # a date…: typed in the same dialog
        await settle(pilot, 0.1)
        await pilot.press(*"2031-05-01 10:30", "enter")
        await settle(pilot)
        conversation = await app.store.conversation(ids["oliver"])
        assert conversation.status == "snoozed"
        assert time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.snoozed_until)) == "2031-05-01 10:30"


async def test_assign_to_me_to_someone_and_unassign(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("a")
        await settle(pilot)
        assert (await app.store.conversation(ids["oliver"])).assignee == "alice"
        await pilot.press("A")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press("down", "enter")  # alice, bob, nobody
        await settle(pilot)
        assert (await app.store.conversation(ids["oliver"])).assignee == "bob"
        await pilot.press("U")
        await settle(pilot)
        assert (await app.store.conversation(ids["oliver"])).assignee is None
        counts = await app.store.inbox_counts("alice")
        assert counts[InboxView.UNASSIGNED] >= 1


async def test_replying_in_someone_elses_conversation_asks_first(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["emma"])  # assigned to bob
        await pilot.press("r")
        await dialog(pilot, "ConfirmDialog")
        assert "assigned to bob" in str(app.screen.query_one("Label").render())
        await pilot.press("n")
        await settle(pilot)
        assert app.focused is not screen.composer
        await pilot.press("r")
        await dialog(pilot, "ConfirmDialog")
        await pilot.press("y")
        await settle(pilot)
        assert app.focused is screen.composer


async def test_labels_and_priority(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("l")
        await dialog(pilot, "InputDialog")
        await pilot.press(*"vip, fitting", "enter")
        await settle(pilot)
        await pilot.press("p", "p")
        await settle(pilot)
        conversation = await app.store.conversation(ids["oliver"])
        assert conversation.labels == ("fitting", "vip") and conversation.priority == 2


async def test_retry_a_failed_message(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["emma"])
        assert any(e.state == "failed" for e in screen.timeline.entries)
        await pilot.press("R")
        await settle(pilot)
        [entry] = [e for e in await app.store.timeline(ids["emma"]) if e.id == ids["failed"]]
        assert entry.state == "queued" and entry.error == ""


async def test_views_switch_and_count(make_app, shop):
    app = make_app("bob", "agent")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.main
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        assert screen.inbox.view is InboxView.MINE and screen.inbox.count == 1  # Emma is bob's
        await pilot.press("2")
        await settle(pilot)
        assert screen.inbox.view is InboxView.UNASSIGNED and screen.inbox.count == 3
        await pilot.press("5")
        await settle(pilot)
        assert screen.inbox.count == 0
        assert "Resolved 0" in str(screen.query_one("#views").render())


async def test_search_opens_the_conversation_at_the_message(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        await dialog(pilot, "SearchScreen")
        assert isinstance(app.screen, SearchScreen)
        await pilot.press(*"charged")
        await settle(pilot, 0.5)
        assert len(app.screen.results.messages) == 1
        await pilot.press("down", "enter")
        await settle(pilot)
        screen = app.main
        assert screen.conversation.id == ids["emma"]
        assert screen.timeline.selected.body == "My card was charged twice"


async def test_search_finds_a_customer_by_phone_or_email(make_app, shop):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"ivan@example")
        await settle(pilot, 0.5)
        assert [c.display_name for c in app.screen.results.customers] == ["Иван Петров"]


async def test_next_waiting_jumps_to_the_longest_wait(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        assert app.main.conversation.id == ids["ivan"]


async def test_help_is_built_from_live_bindings_and_keymap(shop):
    settings, _ = shop
    from dataclasses import replace

    from omniconsole.store import Operator
    from omniconsole.tui.app import OmniApp

    app = OmniApp(
        replace(settings, keymap={"conversation.resolve": "x"}),
        Operator("alice", "Alice", "admin"),
        clock=lambda: NOW,
        run_core=False,
    )
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        rows = dict((description, keys) for keys, description in app.screen.rows)
        assert rows["Resolve"] == "x"  # remapped in the config
        assert rows["Snooze"] == "z" and rows["Reply"] == "r" and "Search" in rows


async def test_command_palette_runs_an_action(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("colon")
        await settle(pilot)
        await pilot.press(*"Assign to me")
        await settle(pilot, 0.6)
        await pilot.press("enter")
        await settle(pilot, 0.4)
        assert (await app.store.conversation(ids["oliver"])).assignee == "alice"


async def test_save_attachments(make_app, shop, tmp_path, monkeypatch):
    ids = shop[1]
    monkeypatch.setenv("OMNICONSOLE_DOWNLOADS", str(tmp_path / "downloads"))
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["ivan"])
        await pilot.press("enter")  # focus the timeline
        while screen.timeline.selected and not screen.timeline.selected.attachments:
            await pilot.press("k")
        await pilot.press("s")
        await settle(pilot)
    assert (tmp_path / "downloads" / "чек.pdf").read_bytes() == b"%PDF-1.4 fake"


async def test_two_windows_see_each_others_changes_quickly(make_app, shop):
    ids = shop[1]
    alice, bob = make_app("alice"), make_app("bob", "agent")
    async with alice.run_test(size=(160, 48)) as a, bob.run_test(size=(160, 48)) as b:
        await open_conversation(a, alice, ids["oliver"])
        await open_conversation(b, bob, ids["oliver"])
        await a.press("a", "r", *"On my way", "enter")
        started = time.monotonic()
        while time.monotonic() - started < 3:
            await b.pause(0.05)
            conversation = bob.main.conversation
            bodies = [e.body for e in bob.main.timeline.entries]
            if conversation.assignee == "alice" and "On my way" in bodies:
                break
        else:
            raise AssertionError("bob's window never showed alice's reply and assignment")
        # Presence: bob sees alice in this conversation.
        await b.pause(1.2)
        assert "alice" in str(bob.main.query_one("#presence").render())


async def test_hostile_customer_text_renders_literally(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(200, 60)) as pilot:
        screen = await open_conversation(pilot, app, ids["mallory"])
        await settle(pilot)
        assert app.is_running  # [@click=app.quit] did nothing
        lines = "\n".join(strip.text for strip in screen.timeline._lines)
        assert "[@click=app.quit]click me[/]" in lines and "[$accent]x" in lines and "[bold" in lines
        assert "\x1b" not in lines
        header = str(screen.query_one("#conversation-header").render())
        assert "[@click=app.quit]Mallory[/]" in header
        await asyncio.sleep(0)


async def test_open_a_text_attachment_in_the_viewer(make_app, shop, tmp_path):
    ids = shop[1]
    settings = shop[0]
    # A text file arrives on the Telegram channel.
    from connectors.base import InboundAttachment
    from omniconsole.core.ingest import Ingestor
    from tests.tui.conftest import message

    store = await Store.open(settings.database)
    await Ingestor(store, settings.data_dir).ingest(
        1,
        "telegram",
        [
            message(
                "t9",
                "log attached",
                1,
                address="4004",
                attachments=(InboundAttachment("app.log", "text/plain", b"line one\n[@click=app.quit]\x1b[31mred"),),
            )
        ],
        None,
    )
    await store.close()
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("G", "o")
        await settle(pilot)
        from omniconsole.tui.screens.viewer import FileViewer

        assert isinstance(app.screen, FileViewer)
        assert app.screen.text == "line one\n[@click=app.quit]red"
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen


async def test_hostile_text_in_search_results_is_literal(make_app, shop):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"click")
        await settle(pilot, 0.6)
        from textual.widgets import OptionList

        options = app.screen.query_one(OptionList)
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any("[@click=app.quit]" in p for p in prompts)
        assert app.is_running


async def test_a_second_enter_does_not_send_the_reply_twice(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("r", *"only once", "enter", "enter", "enter")
        await settle(pilot)
        replies = [e for e in await app.store.timeline(ids["oliver"]) if e.direction == "out"]
        assert [r.body for r in replies] == ["only once"]


async def test_ctrl_e_composes_in_the_editor(make_app, shop, tmp_path, monkeypatch):
    """$EDITOR is a real program: it gets the draft in a file and what it leaves there is the
    reply (multi-line, Cyrillic)."""
    ids = shop[1]
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nprintf '\\nСтрока два из редактора\\n' >> \"$1\"\n", encoding="utf-8")
    editor.chmod(0o755)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", str(editor))
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("r", *"Draft")
        await pilot.press("ctrl+e")
        for _ in range(100):
            if "редактора" in screen.composer.text:
                break
            await pilot.pause(0.05)
        assert screen.composer.text == "Draft\nСтрока два из редактора"
        assert app.focused is screen.composer
        await pilot.press("enter")
        await settle(pilot)
        timeline = await app.store.timeline(ids["oliver"])
        assert [e.body for e in timeline if e.direction == "out"] == ["Draft\nСтрока два из редактора"]


async def test_ctrl_e_with_a_missing_editor_says_so(make_app, shop, tmp_path, monkeypatch):
    ids = shop[1]
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", str(tmp_path / "no-such-editor"))
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("r", *"kept")
        await pilot.press("ctrl+e")
        await settle(pilot, 0.5)
        assert screen.composer.text == "kept"
        assert any("could not run the editor" in str(n.message) for n in app._notifications)
