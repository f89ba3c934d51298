"""The SMS channel over an HTTP gateway: replies go to a gateway on 127.0.0.1 (an aiohttp server
that records requests and answers as told), customers' SMS and delivery reports come to the
real core's listener."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.models import InboxView
from omniconsole.store import Store, history
from tests.connectors.test_sms import inbound, reply, state_of
from tests.rig import free_port, running_core

TOKEN = "gateway-api-key"
HOOK_TOKEN = "hook-secret-42"
IVAN = "+79991234567"


class Gateway:
    """An SMS gateway's send API: records each request, answers with the queued statuses."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, Any]] = []
        self.port = free_port()

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": await request.text(),
            }
        )
        status, body = self.answers.pop(0) if self.answers else (200, {"result": {"id": f"gw-{len(self.requests)}"}})
        return web.json_response(body, status=status) if not isinstance(body, str) else web.Response(status=status, text=body)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            yield self
        finally:
            await runner.cleanup()


@contextlib.asynccontextmanager
async def running(tmp_path: Path, **options: Any) -> AsyncIterator[tuple[Store, Gateway, httpx.AsyncClient, str]]:
    gateway = Gateway()
    port = free_port()
    channel = {
        "transport": "http",
        "sender": "Shop",
        "token": TOKEN,
        "webhook_token": HOOK_TOKEN,
        "send_url": f"http://127.0.0.1:{gateway.port}/sms/send",
        "send_body": '{"to": "{to}", "from": "{from}", "text": "{text}", "ref": "{id}"}',
        "response_id": "result.id",
        **options,
    }
    channel["send_url"] = channel["send_url"].replace("{gateway}", f"127.0.0.1:{gateway.port}")
    settings = Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        default_region="RU",
        channels=[ChannelSettings("sms", "sms", channel)],
        listener=ListenerSettings(port=port),
    )
    store = await Store.open(settings.database)
    try:
        async with gateway.running(), running_core(settings, store), httpx.AsyncClient(timeout=10) as client:
            yield store, gateway, client, f"http://127.0.0.1:{port}/hooks/sms"
    finally:
        await store.close()


def bearer(token: str = HOOK_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_customer_sms_comes_by_webhook_to_their_whatsapp_customer_and_the_reply_goes_by_the_send_template(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as (store, gateway, client, hooks):
        ivan = await store.db.write(history.add_customer, "Иван", [("whatsapp", IVAN, "79991234567")])
        answer = await client.post(
            f"{hooks}/inbound",
            json={"from": "8 999 123-45-67", "text": "Где мой заказ?", "id": "m1", "at": "1764497100"},
            headers=bearer(),
        )
        assert answer.status_code == 200, answer.text
        again = await client.post(
            f"{hooks}/inbound", json={"from": "8 999 123-45-67", "text": "Где мой заказ?", "id": "m1"}, headers=bearer()
        )
        assert again.status_code == 200
        [message] = await inbound(store)
        assert message.body == "Где мой заказ?" and message.customer_id == ivan and message.created_at == 1764497100

        sent = await reply(store, 'Сегодня, "до 18:00"\nспасибо')
        await state_of(store, sent, "sent")
        [request] = gateway.requests
        assert request["method"] == "POST" and request["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert json.loads(request["body"]) == {
            "to": IVAN,
            "from": "Shop",
            "text": 'Сегодня, "до 18:00"\nспасибо',
            "ref": str(sent),
        }
        report = await client.post(f"{hooks}/status", json={"id": "gw-1", "status": "DELIVERED"}, headers=bearer())
        assert report.status_code == 200
        await state_of(store, sent, "delivered")
        failed = await reply(store, "second")
        await state_of(store, failed, "sent")
        await client.post(
            f"{hooks}/status?token={HOOK_TOKEN}",
            data={"message_id": "gw-2", "status": "undelivered", "error": "absent subscriber"},
        )
        done = await state_of(store, failed, "failed")
        assert "undelivered: absent subscriber" in done.error


async def test_webhooks_without_the_token_are_refused_and_store_nothing(tmp_path: Path) -> None:
    async with running(tmp_path) as (store, gateway, client, hooks):
        payload = {"from": IVAN, "text": "hi"}
        assert (await client.post(f"{hooks}/inbound", json=payload)).status_code == 401
        assert (await client.post(f"{hooks}/inbound", json=payload, headers=bearer("wrong"))).status_code == 403
        assert (await client.post(f"{hooks}/inbound?token=wrong", json=payload)).status_code == 403
        assert (await client.post(f"{hooks}/status", json={"id": "x", "status": "delivered"})).status_code == 401
        bad = await client.post(f"{hooks}/inbound", json={"text": "no sender"}, headers=bearer())
        assert bad.status_code == 422 and "from" in bad.json()["error"]
        late = await client.post(f"{hooks}/inbound", json={"from": IVAN, "text": "hi", "at": "yesterday"}, headers=bearer())
        assert late.status_code == 422 and "ISO 8601" in late.json()["error"]
        assert await store.inbox_page(InboxView.ALL) == []


async def test_a_get_request_with_the_text_in_the_url(tmp_path: Path) -> None:
    async with running(
        tmp_path,
        send_method="GET",
        send_body="",
        response_id="id",
        send_url="http://{gateway}/send?to={to_digits}&msg={text}&sender={from}",
    ) as (store, gateway, client, hooks):
        await client.post(f"{hooks}/inbound", json={"from": IVAN, "text": "hi"}, headers=bearer())
        gateway.answers = [(200, {"id": 987})]
        sent = await reply(store, "Привет & до встречи #1?")
        await state_of(store, sent, "sent")
        [request] = gateway.requests
        assert request["method"] == "GET" and request["query"] == {
            "to": "79991234567",
            "msg": "Привет & до встречи #1?",
            "sender": "Shop",
        }
        report = await client.post(f"{hooks}/status", json={"id": 987, "status": "delivered"}, headers=bearer())
        assert report.status_code == 200
        await state_of(store, sent, "delivered")


async def test_the_gateways_temporary_failures_are_retried_and_a_refusal_fails_in_its_words(tmp_path: Path) -> None:
    async with running(tmp_path) as (store, gateway, client, hooks):
        await client.post(f"{hooks}/inbound", data={"sender": IVAN, "message": "hi"}, headers=bearer())
        gateway.answers = [(503, "busy"), (429, "slow down"), (200, {"result": {"id": "gw-ok"}})]
        sent = await reply(store, "hello & bye")
        await state_of(store, sent, "sent")
        assert len(gateway.requests) == 3
        gateway.answers = [(400, {"error": "number is blacklisted"})]
        refused = await state_of(store, await reply(store, "again"), "failed")
        assert "refused the message (400)" in refused.error and "blacklisted" in refused.error and TOKEN not in refused.error


async def test_stop_by_webhook_refuses_later_sends_and_shows_on_the_card(tmp_path: Path) -> None:
    async with running(tmp_path) as (store, gateway, client, hooks):
        answer = await client.post(f"{hooks}/inbound", json={"from": IVAN, "text": "STOP"}, headers=bearer())
        assert answer.status_code == 200
        [row] = await store.inbox_page(InboxView.ALL)
        assert "texted STOP" in (await store.customer_profile(row.customer_id)).do_not_contact
        refused = await state_of(store, await reply(store, "sale!"), "failed")
        assert "asked for no more SMS" in refused.error and gateway.requests == []
