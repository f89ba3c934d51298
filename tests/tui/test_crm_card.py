"""The card's integration pieces (issue #22): "do not contact" set by the operator and shown,
the CRM's record fetched from a CRM on 127.0.0.1 without blocking the window, "CRM
unavailable" for a dead one, and a failing webhook endpoint in the status bar."""

from __future__ import annotations

import dataclasses
import json
import time

from omniconsole.config import parse_settings
from omniconsole.store import Operator
from omniconsole.tui.app import OmniApp
from omniconsole.tui.widgets.customer_pane import CustomerPane
from omniconsole.tui.widgets.status_bar import StatusBar
from tests.peers.crm import crm_peer
from tests.tui.conftest import NOW
from tests.tui.test_actions import dialog, open_conversation, settle


def card(app) -> str:
    return app.main.query_one(CustomerPane).card_text


async def until(pilot, condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.05)


def app_with(shop, tmp_path, crm: dict | None = None) -> OmniApp:
    settings, _ = shop
    if crm is not None:
        settings = dataclasses.replace(settings, crm=parse_settings({"crm": crm}, tmp_path / "omniconsole.toml").crm)
    return OmniApp(settings, Operator("alice", "Alice", "admin"), clock=lambda: NOW, run_core=False)


async def test_the_operator_marks_do_not_contact_on_the_card_and_clears_it(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["ivan"])
        assert "do not contact" not in card(app)
        await pilot.press("c")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press(*["down"] * 5, "enter")
        await dialog(pilot, "InputDialog")
        await pilot.press(*"asked on the phone", "enter")
        await settle(pilot)
        profile = await app.store.customer_profile(ids["ivan_customer"])
        assert profile.do_not_contact == "alice: asked on the phone"
        await until(pilot, lambda: "⛔ do not contact: alice: asked on the phone" in card(app))
        await pilot.press("c")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press(*["down"] * 5, "enter")
        await dialog(pilot, "ConfirmDialog")
        await pilot.press("y")
        await settle(pilot)
        assert (await app.store.customer_profile(ids["ivan_customer"])).do_not_contact is None


async def test_the_crm_record_fills_the_card_and_a_slow_crm_never_blocks_the_window(shop, tmp_path):
    ids = shop[1]
    record = {"id": "C-17", "manager": "Oleg", "deals": [{"title": "Sofa [bold]"}, {"title": "Lamp"}]}
    async with crm_peer() as crm:
        crm.lookups["ivan%40example.com"] = (200, json.dumps(record).encode(), 1.0)  # a slow CRM
        crm.lookups["ivan@example.com"] = (200, json.dumps(record).encode(), 1.0)
        app = app_with(
            shop,
            tmp_path,
            {
                "url_email": f"{crm.url}/lookup/email/{{value}}",
                "fields": {"Manager": "manager", "Deals": "deals[*].title"},
                "record_url": "https://crm.example.com/c/{id}",
                "timeout": 3,
            },
        )
        async with app.run_test(size=(160, 48)) as pilot:
            await open_conversation(pilot, app, ids["ivan"])
            assert "looking up…" in card(app)
            # The window answers while the CRM thinks: the inbox moves.
            app.main.inbox.focus()
            before = app.main.inbox.selected.conversation_id
            await pilot.press("k")  # Ivan's is the oldest: the last row
            await pilot.pause(0.1)
            assert app.main.inbox.selected.conversation_id != before
            assert "Manager: Oleg" not in card(app)
            await pilot.press("j")
            await until(pilot, lambda: "Manager: Oleg" in card(app))
            text = card(app)
            assert "Deals: Sofa [bold], Lamp" in text and "https://crm.example.com/c/C-17" in text


async def test_a_dead_crm_says_crm_unavailable(shop, tmp_path):
    ids = shop[1]
    async with crm_peer() as crm:
        base = crm.url
    app = app_with(shop, tmp_path, {"url_email": f"{base}/lookup/email/{{value}}", "timeout": 1})
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["ivan"])
        await until(pilot, lambda: "CRM unavailable" in card(app))


async def test_a_failing_webhook_endpoint_shows_in_the_status_bar(make_app, shop):
    app = make_app()
    async with app.run_test(size=(200, 48)) as pilot:
        await settle(pilot)
        await app.store.start_webhook("crm")
        await app.store.webhook_failed("crm", "event 9: http://127.0.0.1:9 answered HTTP 503", time.time() + 5)
        bar = app.main.query_one(StatusBar)
        await bar.reload()
        await settle(pilot)
        assert "⚠ webhook crm: 0 waiting, event 9: http://127.0.0.1:9 answered" in bar._webhooks_text.plain


def app_with_mail(shop) -> OmniApp:
    from omniconsole.config import ChannelSettings

    settings, _ = shop
    settings = dataclasses.replace(
        settings, channels=[*settings.channels, ChannelSettings("email", "Support mail", {"address": "s@shop.example"})]
    )
    return OmniApp(settings, Operator("alice", "Alice", "admin"), clock=lambda: NOW, run_core=False)


async def test_the_operator_starts_a_conversation_with_someone_new_and_with_the_customer_on_screen(shop):
    ids = shop[1]
    app = app_with_mail(shop)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["ivan"])
        # Ivan, on screen: his e-mail (of his two identities), a subject, the text.
        await pilot.press("N")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press("enter")  # this customer
        await dialog(pilot, "ChoiceDialog")
        await pilot.press("down", "enter")  # his e-mail
        await dialog(pilot, "InputDialog")
        await pilot.press(*"Order 4711", "enter")
        await dialog(pilot, "TextDialog")
        await pilot.press(*"It has shipped", "ctrl+s")
        await settle(pilot, 0.5)
        timeline = await app.store.timeline(ids["ivan"])
        sent = [e for e in timeline if e.direction == "out" and e.body == "It has shipped"]
        assert len(sent) == 1 and sent[0].state == "queued"
        # Someone new by e-mail: a new customer, a conversation waiting on them, opened.
        await pilot.press("N")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press("down", "down", "enter")  # someone new
        await dialog(pilot, "InputDialog")
        await pilot.press(*"Nina@Example.com", "enter")
        await dialog(pilot, "InputDialog")
        await pilot.press(*"Welcome", "enter")
        await dialog(pilot, "TextDialog")
        await pilot.press(*"Hello Nina", "ctrl+s")
        await settle(pilot, 0.5)
        opened = app.main.conversation
        assert opened.status == "pending" and opened.subject == "Welcome"
        profile = await app.store.customer_profile(opened.customer_id)
        assert [(i.kind, i.address) for i in profile.identities] == [("email", "nina@example.com")]
        # Marked "do not contact": refused in words, nothing queued.
        await app.store.set_do_not_contact(opened.customer_id, "asked", "alice")
        await pilot.press("N")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press("enter")
        await dialog(pilot, "InputDialog")
        await pilot.press(*"Again", "enter")
        await dialog(pilot, "TextDialog")
        await pilot.press(*"Sale!", "ctrl+s")
        await settle(pilot, 0.5)
        assert len([e for e in await app.store.timeline(opened.id) if e.direction == "out"]) == 1


async def test_a_channel_going_down_and_back_up_is_announced_in_the_window(make_app, shop):
    from omniconsole.models import Health

    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        channel_id = next(c.id for c in await app.store.channels() if c.name == "Telegram")

        def toasts() -> list[str]:
            return [str(n.message) for n in app._notifications]

        await app.store.set_channel_health(channel_id, Health.DOWN, "the token was revoked [bold]")
        await until(pilot, lambda: any("Channel Telegram is down: the token was revoked [bold]" in t for t in toasts()))
        await app.store.set_channel_health(channel_id, Health.UP, "polling")
        await until(pilot, lambda: any("Channel Telegram is back up" in t for t in toasts()))
