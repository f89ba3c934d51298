"""Reactions in the timeline (issue #14): a customer's reaction is drawn with the message it is
on ("👍 by NAME"), arrives live while the conversation is open, and a hostile name is text."""

from __future__ import annotations

from connectors.payload import REACTION
from omniconsole.core.ingest import Ingestor
from omniconsole.store import Store
from tests.tui.conftest import message
from tests.tui.test_actions import open_conversation, settle

HOSTILE_NAME = "[@click=app.quit]Ива[b]н[/] \x1b]0;pwned\x07\x1b[31m"


def timeline_text(screen) -> str:
    return "\n".join("".join(segment.text for segment in strip) for strip in screen.timeline._lines)


async def react(shop, emoji: str, minutes_ago: float) -> None:
    settings = shop[0]
    store = await Store.open(settings.database)
    try:
        channel = await store.ensure_channel("telegram", "Telegram")
        reaction = message(
            f"r-{emoji}-{minutes_ago}",
            f"Reacted {emoji}",
            minutes_ago,
            sender_name=HOSTILE_NAME,
            reply_to_external_id="t1",
            flags=frozenset({REACTION}),
            meta={"emoji": emoji},
        )
        await Ingestor(store, settings.data_dir).ingest(channel, "telegram", [reaction], f"r{minutes_ago}")
    finally:
        await store.close()


async def test_a_reaction_is_drawn_with_the_message_it_is_on(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["ivan"])
        assert " by " not in timeline_text(screen)
        await react(shop, "👍", 1)  # arrives while the conversation is open
        for _ in range(100):
            if "👍 by" in timeline_text(screen):
                break
            await pilot.pause(0.05)
        text = timeline_text(screen)
        lines = text.splitlines()
        at = next(i for i, line in enumerate(lines) if "👍 by" in line)
        # Under the message reacted to (Ivan's Telegram question), not as a message of its own.
        assert any("Где мой заказ №4711" in line for line in lines[max(0, at - 3) : at])
        assert "[@click=app.quit]Ива[b]н[/]" in text  # the name as written, never markup
        assert "\x1b" not in text and "\x07" not in text
        assert not any(e.body.startswith("Reacted") for e in screen.timeline.entries)
        # A changed reaction replaces the person's earlier one.
        await react(shop, "❤", 0.5)
        for _ in range(100):
            if "❤ by" in timeline_text(screen):
                break
            await pilot.pause(0.05)
        await settle(pilot)
        text = timeline_text(screen)
        assert "❤ by" in text and "👍 by" not in text
