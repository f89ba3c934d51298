"""The window as a new user met it (issue 15): a header that never loses its status line, a
focused pane you can see, a status bar that keeps its key hints, dialog lists on j/k, dialog
text that wraps, a palette listing the window's actions, search that finds dictated phone
numbers and pages on, the customer's id on the card, dates in `h`, evidence in the merge
dialog, unknown keymap ids named."""

from __future__ import annotations

from dataclasses import replace

from connectors.base import InboundMessage
from omniconsole.core.ingest import Ingestor
from omniconsole.models import ConversationStatus, IdentityKind, InboxView
from omniconsole.store import Operator
from omniconsole.tui.app import OmniApp
from omniconsole.tui.commands import ActionCommands
from omniconsole.tui.keys import known_binding_ids, unknown_keymap_ids
from omniconsole.tui.screens.search import summary_line
from omniconsole.tui.widgets.dialog_list import DialogList
from tests.tui.conftest import NOW, at
from tests.tui.test_actions import dialog, open_conversation, settle, store_of
from tests.tui.test_customer_actions import _stranger_naming_ivans_email, pane_text

LONG_SUBJECT = "Возврат денег за заказ 4711, который так и не доставили курьером в срок"


async def _write(shop, fn) -> None:
    store = await store_of(shop)
    try:
        await store.db.write(fn)
    finally:
        await store.close()


async def test_a_long_subject_is_cut_and_the_status_line_stays(make_app, shop):
    ids = shop[1]
    await _write(
        shop,
        lambda c: c.execute("UPDATE conversations SET subject = ?, priority = 2 WHERE id = ?", (LONG_SUBJECT * 2, ids["ivan"])),
    )
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["ivan"])
        await app.store.set_labels(ids["ivan"], ["vip", "refund"], "alice")
        await screen.open_conversation(ids["ivan"])
        await settle(pilot)
        header = screen.query_one("#conversation-header")
        lines = [strip.text for strip in header.render_lines(header.region.reset_offset)]
        assert len(lines) == 2
        assert lines[0].strip().startswith(f"#{ids['ivan']} Иван Петров") and lines[0].rstrip().endswith("…")
        assert lines[1].strip().startswith("open  assignee nobody") and "refund, vip" in lines[1] or "vip, refund" in lines[1]


async def test_the_focused_pane_shows_and_tab_never_lands_in_an_empty_composer(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.main
        await settle(pilot)
        edges = lambda: (  # noqa: E731
            screen.inbox.has_focus,
            screen.timeline.styles.border_left[1],  # noqa: E731
            screen.query_one("#customer").styles.border_left[1],
        )
        inbox_focused = edges()
        # Opened from search: the timeline has focus, Tab goes on to the customer card, never
        # into the composer, so the next letter is a key, not reply text.
        await pilot.press("slash", *"charged")
        await settle(pilot, 0.5)
        await pilot.press("down", "enter")
        await settle(pilot)
        assert screen.conversation.id == ids["emma"] and app.focused is screen.timeline
        timeline_focused = edges()
        await pilot.press("tab")
        assert app.focused is screen.query_one("#customer")
        customer_focused = edges()
        await pilot.press("tab")
        assert app.focused is screen.inbox
        await pilot.press("tab", "g")
        assert app.focused is screen.timeline and screen.composer.text == ""
        # Each pane's edge is bright only while it has focus (the inbox shows it by its cursor).
        assert len({inbox_focused, timeline_focused, customer_focused}) == 3
        assert inbox_focused[0] and not timeline_focused[0] and timeline_focused[1] != inbox_focused[1]
        assert customer_focused[2] != inbox_focused[2] and customer_focused[1] == inbox_focused[1]
        # With a draft, Tab does visit the composer (and leaves it).
        await pilot.press("r")
        await dialog(pilot, "ConfirmDialog")  # Emma's conversation is Bob's
        await pilot.press("y")
        await settle(pilot)
        await pilot.press(*"Hi")
        assert app.focused is screen.composer
        await pilot.press("tab")
        assert app.focused is screen.query_one("#customer")


async def test_the_status_bar_shortens_channel_names_never_the_key_hints(shop):
    settings, _ = shop
    store = await store_of(shop)
    try:
        for name in (
            "Support mailbox for the whole shop",
            "Telegram shop bot number two",
            "VK community of the shop",
            "WhatsApp business line Moscow",
            "Website chat on shop.example",
        ):
            await store.ensure_channel("telegram", name)
    finally:
        await store.close()
    app = OmniApp(settings, Operator("alice", "Alice", "admin"), clock=lambda: NOW, run_core=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.main.inbox_ready.wait()
        await settle(pilot)
        bar = app.main.query_one("#status")
        [line] = [strip.text for strip in bar.render_lines(bar.region.reset_offset)]
        assert line.rstrip().endswith("? help  / search  r reply  n note  e resolve  : commands"), line
        # Seven channels: names cut to their start, the core's alarm to its start, hints whole.
        assert line.count("○") == 7 and "Sup…" in line and "Tel…" in line and "no core is running" in line, line
    async with OmniApp(settings, Operator("alice", "Alice", "admin"), clock=lambda: NOW, run_core=False).run_test(
        size=(300, 48)
    ) as pilot:
        await pilot.app.main.inbox_ready.wait()
        await settle(pilot)
        bar = pilot.app.main.query_one("#status")
        assert "Support mailbox for…" in "".join(s.text for s in bar.render_lines(bar.region.reset_offset))


async def test_dialog_lists_move_with_j_and_k(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["ivan"])
        await pilot.press("A")
        await dialog(pilot, "ChoiceDialog")
        options = app.screen.query_one(DialogList)
        assert options.highlighted == 0
        await pilot.press("j", "j")
        assert options.highlighted == 2
        await pilot.press("k")
        assert options.highlighted == 1
        await pilot.press("enter")
        await settle(pilot)
        assert (await app.store.conversation(ids["ivan"])).assignee == "bob"


async def test_long_dialog_text_wraps_instead_of_being_cut(make_app, shop):
    from omniconsole.tui.screens.templates import TemplateDialog

    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.push_screen(TemplateDialog([]))
        await dialog(pilot, "TemplateDialog")
        label = app.screen.query("Label").first()
        text = " ".join(s.text.strip() for s in label.render_lines(label.region.reset_offset))
        assert "add them as `templates` to its [[channels]] table (see the README). Escape closes." in " ".join(text.split())


async def test_the_palette_opened_empty_lists_the_windows_actions_with_keys(make_app):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await app.main.inbox_ready.wait()
        hits = [hit async for hit in ActionCommands(app.main).discover()]
        shown = {str(hit.display): hit.help for hit in hits}
        assert shown["Reply"] == "key: r" and shown["Search"] == "key: /" and shown["Next waiting"] == "key: w"
        await pilot.press("colon")
        await settle(pilot, 0.5)
        from textual.command import CommandList

        listed = app.screen.query_one(CommandList)
        prompts = [str(listed.get_option_at_index(n).prompt) for n in range(listed.option_count)]
        assert any("Reply" in p for p in prompts[:40]), prompts[:10]


def test_search_summary_counts_in_words():
    assert summary_line(1, 1, False) == "1 customer, 1 message (latest stored first)"
    assert summary_line(2, 100, True) == "2 customers, 100 messages and more (latest stored first)"
    assert summary_line(0, 0, False) == "0 customers, 0 messages"


async def test_search_finds_dictated_phone_numbers_and_pages_on(make_app, shop):
    ids = shop[1]
    store = await store_of(shop)
    try:
        await store.add_identity(ids["ivan_customer"], "phone", "+79166423868", "alice")
        channel = await store.ensure_channel("telegram", "Telegram")
        await Ingestor(store, shop[0].data_dir).ingest(
            channel,
            "telegram",
            [
                InboundMessage(f"p{n}", IdentityKind.TELEGRAM, "4004", f"параметры посылки {n}", at(60 - n * 0.1))
                for n in range(130)
            ],
            "p",
        )
    finally:
        await store.close()
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        await dialog(pilot, "SearchScreen")
        search = app.screen
        for typed in ("8 (916) 642-38-68", "9166423868", "916 642"):
            search.query_one("#search-input").value = typed
            await settle(pilot, 0.6)
            assert [c.display_name for c in search.results.customers] == ["Иван Петров"], typed
            assert str(search.query_one("#search-summary").render()).startswith("1 customer,")
        search.query_one("#search-input").value = "посылки"
        await settle(pilot, 0.8)
        assert len(search.results.messages) == 100 and search.results.more
        assert "100 messages and more" in str(search.query_one("#search-summary").render())
        results = search.query_one("#search-results")
        assert results.get_option_at_index(results.option_count - 1).id == "more"
        results.focus()
        results.highlighted = results.option_count - 1
        await pilot.press("enter")
        await settle(pilot, 0.8)
        assert len(search.results.messages) == 130 and not search.results.more
        assert "130 messages (latest" in str(search.query_one("#search-summary").render())
        assert results.highlighted == 100  # the first of the new page
        ids_shown = [results.get_option_at_index(n).id for n in range(results.option_count)]
        assert "more" not in ids_shown and len(set(ids_shown)) == 130


async def test_the_card_shows_the_customer_id_and_h_shows_dates(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["ivan"])
        assert f"customer {ids['ivan_customer']}\n" in pane_text(screen)
        await pilot.press("h")
        await dialog(pilot, "ChoiceDialog")
        listed = app.screen.query_one(DialogList)
        label = str(listed.get_option_at_index(0).prompt)
        assert "15 Jan" in label or "05:00" in label or "06:00" in label, label


async def test_the_merge_dialog_shows_the_other_customers_identities_and_last_message(make_app, shop):
    ids = shop[1]
    await _stranger_naming_ivans_email(shop)
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["ivan"])
        await pilot.press("m")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press("enter")
        await dialog(pilot, "InputDialog")
        title = app.screen.title_text
        assert "Identities: telegram 5005" in title
        assert "это снова я, пишите на IVAN@example.com" in title
        await pilot.press("escape")


def test_unknown_keymap_ids_are_named_with_the_nearest_real_one():
    known = known_binding_ids()
    assert {"conversation.resolve", "app.search", "list.down", "choice.cancel"} <= known
    assert unknown_keymap_ids({"inbox.resolve": "E", "conversation.reply": "x"}, known) == [
        '[keymap] "inbox.resolve" is not a binding id and is ignored; did you mean "conversation.resolve"?'
    ]
    # The template's own example is a real id.
    from omniconsole.config import template

    assert '"conversation.resolve" = "x"' in template()


async def test_the_window_warns_of_an_unknown_keymap_id(shop):
    settings, _ = shop
    app = OmniApp(
        replace(settings, keymap={"inbox.resolve": "E"}), Operator("alice", "Alice", "admin"), clock=lambda: NOW, run_core=False
    )
    async with app.run_test(size=(160, 48)) as pilot:
        await app.main.inbox_ready.wait()
        await settle(pilot)
        assert any('"inbox.resolve"' in str(n.message) and "conversation.resolve" in str(n.message) for n in app._notifications)


async def test_w_stays_in_the_view_says_when_it_switches_and_shows_the_row(make_app, shop):
    ids = shop[1]
    store = await store_of(shop)
    try:
        channel = await store.ensure_channel("telegram", "Telegram")
        # Forty newer customers push Ivan (waiting longest) far below the first screen.
        await Ingestor(store, shop[0].data_dir).ingest(
            channel,
            "telegram",
            [InboundMessage(f"n{n}", IdentityKind.TELEGRAM, str(9000 + n), f"hello {n}", at(4 - n * 0.05)) for n in range(40)],
            "n",
        )
    finally:
        await store.close()
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.main
        await settle(pilot)
        await pilot.press("2")  # Unassigned
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot, 0.5)
        inbox = screen.inbox
        assert screen.conversation.id == ids["ivan"] and inbox.selected.conversation_id == ids["ivan"]
        row_y = inbox.cursor * 2
        assert inbox.scroll_y <= row_y and row_y + 2 <= inbox.scroll_y + inbox.size.height, (row_y, inbox.scroll_y)
        assert inbox.view.value == "unassigned"
        # The next j moves on from the row in sight.
        await pilot.press("escape", "k")
        await settle(pilot)
        assert inbox.selected.conversation_id != ids["ivan"] and inbox.cursor == row_y // 2 - 1
        # Nobody waits in Mine: w switches to All and says so.
        await pilot.press("1")
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot, 0.5)
        assert inbox.view.value == "all"
        assert any("Nobody waits in Mine: switched to All" in str(n.message) for n in app._notifications)
        assert inbox.selected.conversation_id == screen.conversation.id


async def test_u_refused_for_another_open_conversation_goes_there_in_one_key(make_app, shop):
    ids = shop[1]
    store = await store_of(shop)
    try:
        await store.set_status(ids["oliver"], ConversationStatus.RESOLVED, "alice")
        channel = await store.ensure_channel("telegram", "Telegram")
        await Ingestor(store, shop[0].data_dir).ingest(
            channel,
            "telegram",
            [InboundMessage("o2", IdentityKind.TELEGRAM, "4004", "И ещё вопрос про примерку", at(1), sender_name="Oliver Hall")],
            "o2",
        )
        newer = max(
            c.id for c in (await store.customer_profile((await store.conversation(ids["oliver"])).customer_id)).conversations
        )
    finally:
        await store.close()
    assert newer != ids["oliver"]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.main
        await settle(pilot)
        await pilot.press("5")  # Resolved
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.conversation.id == ids["oliver"]
        await pilot.press("u")
        await dialog(pilot, "ConfirmDialog")
        assert f"#{newer}" in app.screen.question.plain
        await pilot.press("enter")
        await settle(pilot, 0.5)
        assert screen.conversation.id == newer and screen.inbox.selected.conversation_id == newer
        assert (await app.store.conversation(ids["oliver"])).status == "resolved"


async def test_e_on_a_waiting_customer_can_be_undone_for_a_few_seconds(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("E")
        await settle(pilot, 0.5)
        assert (await app.store.conversation(ids["oliver"])).status == "resolved"
        assert screen.conversation.id != ids["oliver"]
        assert any("while the customer waits for a reply: ^z undoes it" in str(n.message) for n in app._notifications)
        await pilot.press("ctrl+z")
        await settle(pilot, 0.5)
        assert (await app.store.conversation(ids["oliver"])).status == "open"
        assert screen.conversation.id == ids["oliver"]
        # Only for a few seconds, and only once.
        screen.UNDO_SECONDS = 0.0
        await pilot.press("E")
        await settle(pilot, 0.5)
        await pilot.press("ctrl+z")
        await settle(pilot)
        assert (await app.store.conversation(ids["oliver"])).status == "resolved"
        assert any(str(n.message) == "Nothing to undo" for n in app._notifications)


async def test_t_renames_the_subject_and_the_preview_stays_the_customers_latest_words(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("t")
        await dialog(pilot, "InputDialog")
        app.screen.query_one("Input").value = ""
        await pilot.press(*"Примерка и возврат", "enter")
        await settle(pilot, 0.5)
        assert (await app.store.conversation(ids["oliver"])).subject == "Примерка и возврат"
        assert "Примерка и возврат" in str(screen.query_one("#conversation-header").render())
        assert any(
            e.direction == "event" and "renamed the subject to «Примерка и возврат»" in e.body
            for e in await app.store.timeline(ids["oliver"])
        )
        # Our reply moves the row up, but its preview stays what the customer asked.
        await pilot.press("r", *"Да, конечно", "enter")
        await settle(pilot, 0.5)
        row = next(r for r in await app.store.inbox_page(InboxView.ALL, "alice") if r.conversation_id == ids["oliver"])
        assert row.preview == "Can I book a fitting?" and row.subject == "Примерка и возврат"
