"""Snapshots of the window (committed SVGs under __snapshots__; `--snapshot-update` renews them
after a deliberate change). Fixed clock, UTC, no cursor blink, data from tests/tui/conftest.py."""

from __future__ import annotations

from tests.tui.conftest import NOW


async def _until(pilot, predicate, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("the window did not settle")


def _journey_read(app) -> bool:
    from omniconsole.tui.widgets.customer_pane import CustomerPane

    pane = app.main.query_one(CustomerPane)
    return pane.journey is not None and pane.journey.journey is not None


async def _pause(pilot) -> None:
    """Until the first conversation is drawn (it loads in a worker), its customer's journey too."""
    await _until(pilot, lambda: pilot.app.main is not None and pilot.app.main.opened is not None)
    await _until(pilot, lambda: _journey_read(pilot.app))
    await pilot.pause(0.2)


def _open(conversation_id: int):
    async def run_before(pilot) -> None:
        await _pause(pilot)
        inbox = pilot.app.main.inbox
        for _ in range(20):
            if inbox.selected and inbox.selected.conversation_id == conversation_id:
                break
            await pilot.press("j")
        await pilot.press("enter")
        await _until(pilot, lambda: pilot.app.main.opened == conversation_id)
        await pilot.pause(0.2)

    return run_before


def test_main_screen_80x24(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=_pause)


def test_main_screen_160x48(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(160, 48), run_before=_pause)


def test_main_screen_200x60_cross_channel_conversation(snap_compare, make_app, shop):
    assert snap_compare(make_app(), terminal_size=(200, 60), run_before=_open(shop[1]["ivan"]))


def test_failed_outbound_message(snap_compare, make_app, shop):
    assert snap_compare(make_app(), terminal_size=(160, 48), run_before=_open(shop[1]["emma"]))


def test_hostile_customer_text(snap_compare, make_app, shop):
    assert snap_compare(make_app(), terminal_size=(160, 48), run_before=_open(shop[1]["mallory"]))


def test_help(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await _pause(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.3)

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=run_before)


def test_search_results(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await _pause(pilot)
        await pilot.press("slash", *"заказ")
        await _until(pilot, lambda: len(pilot.app.screen.results.messages) == 2)
        await pilot.pause(0.3)

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=run_before)


assert NOW  # the clock every snapshot is drawn at


def test_customer_card_with_suggestion_and_merge(snap_compare, make_app, shop):
    """Ivan's card: a stranger (with a hostile name) who wrote his e-mail is suggested, and an
    earlier merge can be undone."""
    import asyncio

    from connectors.base import InboundMessage
    from omniconsole.core.ingest import Ingestor
    from omniconsole.models import IdentityKind
    from omniconsole.store import Store, customers
    from tests.tui.conftest import at

    async def prepare() -> None:
        store = await Store.open(shop[0].database)
        try:
            channel = await store.ensure_channel("telegram", "Telegram")
            ingestor = Ingestor(store, shop[0].data_dir)
            for external_id, address, name, body in (
                ("s1", "6006", "[b]Vanya[/b] \x1b[31m", "my mail is ivan@example.com"),
                ("s2", "7007", "Ваня П.", "я тот же Иван"),
            ):
                await ingestor.ingest(
                    channel,
                    "telegram",
                    [InboundMessage(external_id, IdentityKind.TELEGRAM, address, body, at(3), sender_name=name)],
                    None,
                )
            other = await store.db.run(
                lambda c: c.execute("SELECT customer_id FROM identities WHERE address = '7007'").fetchone()[0]
            )
            await store.db.write(
                customers.merge_customers, shop[1]["ivan_customer"], other, "alice", "same phone on the order", now=NOW - 3600
            )
        finally:
            await store.close()

    asyncio.run(prepare())
    assert snap_compare(make_app(), terminal_size=(160, 48), run_before=_open(shop[1]["ivan"]))
