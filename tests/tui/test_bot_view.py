"""The "Bot" view in the window: bot conversations live, hostile names drawn as text, and an
operator taking one over with one key (the bot stops at once, the conversation is theirs)."""

from __future__ import annotations

from omniconsole.store.bot import BotStore
from omniconsole.tui.screens.bot import BotScreen
from tests.tui.test_actions import settle, store_of


async def test_the_bot_view_lists_bot_conversations_and_t_takes_one_over(make_app, shop):
    ids = shop[1]
    store = await store_of(shop)
    try:
        rows = BotStore(store)
        emma = ids["oliver"]
        conversation = await store.conversation(emma)
        state = await rows.begin(emma, conversation.customer_id)
        await rows.save(emma, topic="cards", language="en", answered=["double-charge"])
        assert state.state == "bot"
    finally:
        await store.close()

    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot, 0.5)
        assert isinstance(app.screen, BotScreen)
        table = app.screen.query_one("DataTable")
        assert table.row_count == 1
        cells = [str(c) for c in table.get_row_at(0)]
        assert cells[0] == str(emma) and cells[2] == "cards" and cells[4] == "double-charge"
        await pilot.press("t")
        await settle(pilot, 0.5)
        taken = await BotStore(app.store).load(emma)
        assert taken.state == "human" and taken.handoff_reason == "taken over by alice"
        assert (await app.store.conversation(emma)).assignee == "alice"
        assert app.screen.query_one("DataTable").row_count == 0
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, BotScreen)
