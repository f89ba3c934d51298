"""WhatsApp's 24-hour customer-service window, decided below the window (core/reply_window.py),
against a real store: the route's last inbound message is what counts."""

from __future__ import annotations

from omniconsole.core.ingest import Ingestor
from omniconsole.core.reply_window import WINDOW_SECONDS, reply_window, whatsapp_window
from omniconsole.models import IdentityKind, InboxView
from tests.conftest import inbound

NOW = 1_800_000_000.0


def test_free_text_goes_within_24_hours_of_the_customers_last_message() -> None:
    assert whatsapp_window(NOW - 60, NOW).free_text
    assert whatsapp_window(NOW - WINDOW_SECONDS + 1, NOW).free_text


def test_at_24_hours_and_after_only_a_template_goes() -> None:
    assert not whatsapp_window(NOW - WINDOW_SECONDS, NOW).free_text
    late = whatsapp_window(NOW - 3 * 24 * 3600, NOW)
    assert not late.free_text and late.last_inbound_at == NOW - 3 * 24 * 3600


def test_a_customer_who_never_wrote_on_whatsapp_is_outside_the_window() -> None:
    never = whatsapp_window(None, NOW)
    assert not never.free_text and never.last_inbound_at is None


async def test_reply_window_of_routes_reads_the_last_inbound_message(store, tmp_path) -> None:
    ingestor = Ingestor(store, tmp_path / "data")
    whatsapp = await store.ensure_channel("whatsapp", "WhatsApp")
    telegram = await store.ensure_channel("telegram", "Telegram")
    await ingestor.ingest(
        whatsapp,
        "whatsapp",
        [inbound("wamid.1", "Где мой заказ?", kind=IdentityKind.WHATSAPP, address="79991234567", at=NOW - 26 * 3600)],
        None,
    )
    await ingestor.ingest(telegram, "telegram", [inbound("t1", "hi", address="555", at=NOW - 30 * 24 * 3600)], "1")
    routes = {}
    for conversation in await store.inbox_page(InboxView.ALL):
        view = await store.conversation_view(conversation.conversation_id, "alice")
        routes.update({r.kind: r for r in view[3]})
    outside = await reply_window(store, routes["whatsapp"], NOW)
    assert not outside.free_text and outside.last_inbound_at == NOW - 26 * 3600
    assert (await reply_window(store, routes["whatsapp"], NOW - 3 * 3600)).free_text
    # Other channels have no such window, however long ago the customer wrote.
    assert (await reply_window(store, routes["telegram"], NOW)).free_text
    assert (await reply_window(store, None, NOW)).free_text
