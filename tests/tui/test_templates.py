"""WhatsApp's 24-hour rule in the window, driven by keys through Pilot: outside the window the
composer says so and offers the configured templates; the stored outbound row carries the
template and the text the customer will read."""

from __future__ import annotations

import json
from pathlib import Path

from omniconsole.config import ChannelSettings, Settings
from omniconsole.core.ingest import Ingestor
from omniconsole.models import IdentityKind, InboxView
from omniconsole.store import Operator, Store
from omniconsole.tui.app import OmniApp
from omniconsole.tui.screens.templates import TemplateDialog
from tests.tui.conftest import NOW, message
from tests.tui.test_actions import dialog, open_conversation, settle

TEMPLATES = [
    {"name": "order_update", "language": "ru", "params": ["order number", "date"], "text": "Заказ {1} будет доставлен {2}"},
    {"name": "hello_again", "language": "en_US", "text": "Hello again! Reply to continue."},
]


async def build(path: Path, minutes_ago: float) -> int:
    """A WhatsApp customer who last wrote `minutes_ago`; returns the conversation id."""
    store = await Store.open(path)
    try:
        channel = await store.ensure_channel("whatsapp", "WhatsApp")
        await store.add_operator("alice", "Alice")
        ingestor = Ingestor(store, path.parent / "data")
        await ingestor.ingest(
            channel,
            "whatsapp",
            [
                message(
                    "wamid.1",
                    "Где мой заказ?",
                    minutes_ago,
                    kind=IdentityKind.WHATSAPP,
                    address="79991234567",
                    sender_name="Иван",
                )
            ],
            None,
        )
        [row] = await store.inbox_page(InboxView.ALL)
        return row.conversation_id
    finally:
        await store.close()


def make_app(path: Path) -> OmniApp:
    settings = Settings(
        database=path, data_dir=path.parent / "data", channels=[ChannelSettings("whatsapp", "WhatsApp", {"templates": TEMPLATES})]
    )
    return OmniApp(settings, Operator("alice", "Alice", "agent"), clock=lambda: NOW, run_core=False)


async def outbound_rows(path: Path, conversation: int) -> list[tuple[str, str, dict]]:
    store = await Store.open(path)
    try:
        rows = await store.db.run(
            lambda c: c.execute(
                "SELECT body, state, meta FROM messages WHERE conversation_id = ? AND direction = 'out' ORDER BY id",
                (conversation,),
            ).fetchall()
        )
    finally:
        await store.close()
    return [(body, state, json.loads(meta) if meta else {}) for body, state, meta in rows]


async def test_outside_the_window_the_composer_offers_templates_and_queues_one(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    conversation = await build(path, minutes_ago=26 * 60)
    app = make_app(path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, conversation)
        info = str(screen.query_one("#composer-info").render())
        assert "outside the 24-hour window: template only" in info
        await pilot.press("r", *"Завтра привезём", "enter")
        await dialog(pilot, "TemplateDialog")
        shown = app.screen
        assert isinstance(shown, TemplateDialog)
        assert "last wrote 26 hours ago" in str(shown.query_one("Label").render())
        await pilot.press("enter")  # order_update
        await settle(pilot, 0.1)
        await pilot.press(*"4711", "enter")  # the date is still empty: asked for, not sent
        await settle(pilot, 0.1)
        assert isinstance(app.screen, TemplateDialog)
        await pilot.press(*"в пятницу")
        await settle(pilot, 0.1)
        assert "Заказ 4711 будет доставлен в пятницу" in str(app.screen.query_one("#template-preview").render())
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, TemplateDialog)
        assert screen.composer.text == "Завтра привезём"  # kept, not sent as free text
    rows = await outbound_rows(path, conversation)
    assert rows == [
        (
            "Заказ 4711 будет доставлен в пятницу",
            "queued",
            {"template": {"name": "order_update", "language": "ru", "params": ["4711", "в пятницу"]}},
        )
    ]


async def test_inside_the_window_text_goes_and_a_template_is_still_at_hand(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    conversation = await build(path, minutes_ago=60)
    app = make_app(path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, conversation)
        assert "template only" not in str(screen.query_one("#composer-info").render())
        await pilot.press("r", *"Уже едет", "enter")
        await settle(pilot)
        await pilot.press("r", "ctrl+g")
        await dialog(pilot, "TemplateDialog")
        await pilot.press("down", "enter")  # hello_again has no parameters: queued at once
        await settle(pilot)
    rows = await outbound_rows(path, conversation)
    assert rows == [
        ("Уже едет", "queued", {}),
        ("Hello again! Reply to continue.", "queued", {"template": {"name": "hello_again", "language": "en_US", "params": []}}),
    ]


async def test_escape_backs_out_and_nothing_is_queued(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    conversation = await build(path, minutes_ago=3 * 24 * 60)
    app = make_app(path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, conversation)
        await pilot.press("r", *"hi", "enter")
        await dialog(pilot, "TemplateDialog")
        await pilot.press("enter", "escape")  # back from the parameters to the list
        await settle(pilot, 0.1)
        assert isinstance(app.screen, TemplateDialog)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, TemplateDialog)
    assert await outbound_rows(path, conversation) == []
