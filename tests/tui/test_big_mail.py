"""A mail of megabytes in the open conversation: the timeline draws a capped body (the whole
text stays in the store and opens with `v`), so keys in that conversation stay quick."""

from __future__ import annotations

from omniconsole.core.ingest import Ingestor
from omniconsole.models import IdentityKind
from omniconsole.store import Store
from omniconsole.tui.screens.viewer import FileViewer
from omniconsole.tui.widgets.timeline import DISPLAY_LIMIT, entry_text
from tests.tui.conftest import message
from tests.tui.test_actions import open_conversation, settle

LINE = "Строка длинного письма с логами заказа 4711, [b]не разметка[/b] \x1b[31m и так далее.\n"


async def big_mail(shop, megabytes: int = 3) -> tuple[int, str]:
    settings, _ = shop
    body = LINE * (megabytes * 1024 * 1024 // len(LINE.encode()))
    store = await Store.open(settings.database)
    try:
        channel = await store.ensure_channel("email", "Support mail")
        await Ingestor(store, settings.data_dir).ingest(
            channel,
            "email",
            [
                message(
                    "<big@example.com>",
                    body,
                    1,
                    kind=IdentityKind.EMAIL,
                    address="logs@example.com",
                    subject="Логи",
                    sender_name="Big Logs",
                    thread_key="<big@example.com>",
                )
            ],
            None,
        )
        conversation = await store.db.run(
            lambda c: c.execute("SELECT conversation_id FROM messages WHERE external_id = '<big@example.com>'").fetchone()[0]
        )
        [entry] = [e for e in await store.timeline(conversation) if e.direction == "in"]
        return conversation, entry.body
    finally:
        await store.close()


async def test_a_big_body_is_capped_in_the_timeline_and_whole_in_the_viewer(make_app, shop):
    conversation, stored = await big_mail(shop)
    assert len(stored) > 1_000_000  # the store keeps it whole
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, conversation)
        timeline = screen.timeline
        drawn = "\n".join(strip.text for strip in timeline._lines)
        assert "more characters not shown (v shows the whole message)" in " ".join(drawn.split())
        assert len(drawn) < 3 * DISPLAY_LIMIT  # not megabytes of lines
        assert "[b]не разметка[/b]" in " ".join(drawn.split()) and "\x1b" not in drawn
        await pilot.press("enter")  # into the timeline
        await pilot.press("G", "v")
        await settle(pilot, 0.5)
        assert isinstance(app.screen, FileViewer)
        assert len(app.screen.text) == len(stored.replace("\x1b", ""))
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen


def test_entry_text_caps_the_body_and_says_how_much_is_left(shop):
    from tests.tui.test_screen_pop import call_entry

    entry = call_entry({}, flags=())
    long = type(entry)(**{**{f: getattr(entry, f) for f in entry.__slots__}, "direction": "in", "body": "x" * 50_000})
    text = entry_text(long).plain
    assert text.count("x") == DISPLAY_LIMIT
    assert f"{50_000 - DISPLAY_LIMIT:,} more characters not shown" in text
    short = type(entry)(**{**{f: getattr(entry, f) for f in entry.__slots__}, "direction": "in", "body": "x" * 100})
    assert "not shown" not in entry_text(short).plain
