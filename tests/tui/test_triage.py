"""Triage keys in the window (issue #15): `x` blocks into Spam (`7`) and unblocks there, `O`
cycles the order (remembered for the operator's next window), `F` filters and clears, all shown
in the view bar; a conversation the bot answers is not in Unassigned (issue #17)."""

from __future__ import annotations

from omniconsole.models import InboxOrder, InboxView
from omniconsole.store import InboxFilter
from omniconsole.store.bot import BotStore
from tests.tui.test_actions import dialog, open_conversation, settle, store_of


def _bar(screen) -> str:
    return str(screen.query_one("#views").render())


async def _wait(pilot, condition, what: str) -> None:
    for _ in range(100):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_x_blocks_the_customer_into_spam_and_x_y_there_unblocks(make_window, shop):
    ids = shop[1]
    app = make_window()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["oliver"])
        before = screen.inbox.count
        await pilot.press("x")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press("enter")  # the first choice: the whole customer
        await _wait(pilot, lambda: screen.inbox.count == before - 1, "the conversation left All")
        assert "Spam 1" in _bar(screen)
        assert ids["oliver"] not in [r.conversation_id for r in screen.inbox.pages.get(0, [])]
        # Its timeline says so.
        assert any("blocked" in e.body for e in screen.timeline.entries if e.direction == "event")

        await pilot.press("7")
        await _wait(pilot, lambda: screen.inbox.view is InboxView.SPAM and screen.inbox.count == 1, "the Spam view")
        assert screen.inbox.selected.conversation_id == ids["oliver"]
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("x")
        await dialog(pilot, "ConfirmDialog")
        await pilot.press("y")
        await _wait(pilot, lambda: screen.inbox.count == 0, "Spam emptied")
        assert "Spam 0" in _bar(screen)
    store = await store_of(shop)
    try:
        assert (await store.conversation(ids["oliver"])).status == "open"
        kinds = [e.kind for e in await store.events_since(0)]
        assert "customer.blocked" in kinds and "customer.unblocked" in kinds
    finally:
        await store.close()


async def test_o_cycles_the_order_shown_in_the_bar_and_remembered(make_window, shop):
    ids = shop[1]
    app = make_window()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.main
        await settle(pilot)
        assert "sort: priority" in _bar(screen)
        await app.store.set_priority(ids["mallory"], 2, "alice")
        await pilot.press("O")  # waiting longest
        await _wait(pilot, lambda: "sort: waiting longest" in _bar(screen), "the waiting order")
        waits = [r.waiting_since for r in screen.inbox.pages[0] if r.waiting_since is not None]
        assert waits == sorted(waits) and screen.inbox.pages[0][0].waiting_since == min(waits)
        await pilot.press("O")  # newest
        await _wait(pilot, lambda: "sort: newest" in _bar(screen), "the activity order")
        times = [r.last_activity_at for r in screen.inbox.pages[0]]
        assert times == sorted(times, reverse=True)
        await pilot.press("O")  # priority: the urgent one first
        await _wait(pilot, lambda: "sort: priority" in _bar(screen), "the priority order")
        await _wait(pilot, lambda: screen.inbox.pages[0][0].conversation_id == ids["mallory"], "urgent first")
        await pilot.press("O")
        await _wait(pilot, lambda: "sort: waiting longest" in _bar(screen), "the waiting order again")
    # The operator's next window opens in the order they left.
    store = await store_of(shop)
    try:
        assert await store.inbox_order("alice") is InboxOrder.WAITING
    finally:
        await store.close()
    app = make_window()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.main.inbox.order is InboxOrder.WAITING and "sort: waiting longest" in _bar(app.main)


async def test_f_filters_by_channel_and_label_shown_in_the_bar_and_f_enter_clears(make_window, shop):
    ids = shop[1]
    app = make_window()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.main
        await settle(pilot)
        everything = screen.inbox.count
        await app.store.set_labels(ids["emma"], ["[b]vip"], "alice")
        await pilot.press("F")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press("j", "enter")  # Label…
        await dialog(pilot, "ChoiceDialog")
        await pilot.pause(0.2)
        await pilot.press("j", "enter")  # the one label
        await _wait(pilot, lambda: screen.inbox.only == InboxFilter(label="[b]vip"), "the label filter")
        await _wait(pilot, lambda: screen.inbox.count == 1, "one conversation")
        assert screen.inbox.pages[0][0].conversation_id == ids["emma"]
        assert "filter: label [b]vip" in _bar(screen)
        # Counts of the other views follow the filter too.
        assert "Mine 0" in _bar(screen) and "All 1" in _bar(screen)

        await pilot.press("F")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press("enter")  # Clear the filter
        await _wait(pilot, lambda: not screen.inbox.only and screen.inbox.count == everything, "cleared")
        assert "filter:" not in _bar(screen)

        await pilot.press("F")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press("enter")  # Channel…
        await dialog(pilot, "ChoiceDialog")
        await pilot.pause(0.2)
        choices = [str(o.prompt) for o in app.screen.query_one("DialogList").options]
        await pilot.press(*["j"] * choices.index("email"), "enter")
        await _wait(pilot, lambda: screen.inbox.only == InboxFilter(channel="email"), "the channel filter")
        await _wait(pilot, lambda: screen.inbox.count == 1, "the one mail conversation")
        assert screen.inbox.pages[0][0].conversation_id == ids["ivan"]
        assert "filter: channel email" in _bar(screen)


async def test_a_conversation_the_bot_answers_is_not_in_unassigned(make_app, shop):
    ids = shop[1]
    store = await store_of(shop)
    try:
        conversation = await store.conversation(ids["oliver"])
        await BotStore(store).begin(ids["oliver"], conversation.customer_id)
    finally:
        await store.close()
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.main
        await settle(pilot)
        in_all = [r for r in screen.inbox.pages[0] if r.conversation_id == ids["oliver"]]
        assert in_all and in_all[0].bot
        await pilot.press("2")
        await _wait(pilot, lambda: screen.inbox.view is InboxView.UNASSIGNED, "Unassigned")
        await settle(pilot)
        assert ids["oliver"] not in [r.conversation_id for r in screen.inbox.pages.get(0, [])]
