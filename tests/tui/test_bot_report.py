"""What the bot did, as a block at the top of the operator's timeline (issue #17), with Textual's
Pilot, in-process and as a team window through the core's socket (`make_window`): the
customer's question, the answer sent with its confidence, the reason for the handoff; hostile
text drawn as data; no block where the bot took no part."""

from __future__ import annotations

from omniconsole.store import Store
from omniconsole.store import bot as bot_db
from omniconsole.tui.widgets.bot_report import BotReportBlock
from tests.tui.conftest import NOW
from tests.tui.test_actions import open_conversation, settle

HOSTILE_QUESTION = "[bold]где[/] мой заказ? [@click=app.quit]x \x1b]52;c;ZXZpbA==\x07"


async def _bot_handed_off(shop) -> int:
    settings, ids = shop
    conversation_id = ids["oliver"]
    store = await Store.open(settings.database)
    try:

        def write(conn) -> None:
            customer_id = conn.execute("SELECT customer_id FROM conversations WHERE id = ?", (conversation_id,)).fetchone()[0]
            bot_db.begin(conn, conversation_id, customer_id, NOW - 120)
            bot_db.queue_message(
                conn,
                conversation_id,
                "Fittings are booked on the site, any day 10-20.\n\n— Bot\n\nDid this help?",
                "Bot",
                kind="answered",
                payload={"article": "fitting-booking", "confidence": 0.81, "question": "Can I book a fitting?"},
                now=NOW - 110,
            )
            bot_db.handoff(
                conn,
                conversation_id,
                "the customer asked for a person",
                "person",
                "Bot handed this conversation to a person.",
                "Bot",
                NOW - 60,
                details={"question": HOSTILE_QUESTION, "confidence": 0.12, "language": "en", "topic": "fitting"},
            )

        await store.db.write(write)
    finally:
        await store.close()
    return conversation_id


async def test_the_block_says_what_the_bot_did_at_the_top_of_the_timeline(make_window, shop):
    conversation_id = await _bot_handed_off(shop)
    app = make_window()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, conversation_id)
        await settle(pilot)
        block = screen.query_one(BotReportBlock)
        assert block.display
        drawn = str(block.render())
        assert "The bot handed off: the customer asked for a person (confidence 0.12)" in drawn
        assert "Answered fitting-booking (confidence 0.81): Fittings are booked on the site" in drawn
        assert "[bold]где[/] мой заказ? [@click=app.quit]x" in drawn  # drawn as data, not markup
        assert "\x1b" not in drawn and "\x07" not in drawn
        assert "language en · topic fitting" in drawn
        assert block.region.y < screen.timeline.region.y  # above the timeline
        assert app.is_running  # the [@click=app.quit] in the question did nothing

        # Another conversation, where the bot took no part: no block.
        await screen.open_conversation(shop[1]["emma"])
        await settle(pilot)
        assert not screen.query_one(BotReportBlock).display
