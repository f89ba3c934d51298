"""The open API channel against real peers on 127.0.0.1.

The integration's requests are real HTTP to our real listener (omniconsole/core/listener.py);
its callback is a real HTTP server started here, which records what we post and answers what
each test tells it to. The first tests use a recording sink in place of the core; the rest run
the real Hub on a real Store, end to end.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web

from connectors.api import ApiConnector, sign
from connectors.base import (
    ChannelContext,
    DeliveryReceipt,
    DeliveryUpdate,
    InboundMessage,
    OutboundMessage,
    PermanentError,
    TransientError,
)
from connectors.telephony import TelephonyConnector
from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.core.listener import Listener
from omniconsole.models import IdentityKind, InboxView
from omniconsole.store import Store, history
from tests.conftest import repo_root
from tests.rig import free_port, running_core
from tests.waiting import eventually as wait_until

# Generous: only a failing test waits it out, and a loaded CI machine can be slow.
eventually = functools.partial(wait_until, timeout=15.0, poll=0.01)
TOKEN = "crm-token-5f1c2e"
SECRET = "callback-secret-99a0"
BINARY = bytes(range(256)) * 4 + b"\r\n--boundary\r\n"


# -- the integration's callback: a real HTTP server ----------------------------------------


@dataclass
class Posted:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class CallbackServer:
    """The integration's callback URL: records every POST, answers from a queue (then 200)."""

    posted: list[Posted] = field(default_factory=list)
    answers: list[tuple[int, Any]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.posted.append(Posted({k.lower(): v for k, v in request.headers.items()}, await request.read()))
        status, answer = self.answers.pop(0) if self.answers else (200, {"state": "sent"})
        if isinstance(answer, str):
            return web.Response(status=status, text=answer)
        return web.json_response(answer, status=status)


@pytest.fixture
async def callback() -> AsyncIterator[CallbackServer]:
    server = CallbackServer()
    app = web.Application()
    app.router.add_post("/omniconsole/replies", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}/omniconsole/replies"
    try:
        yield server
    finally:
        await runner.cleanup()


def settings_for(callback_url: str = "", **options: Any) -> dict[str, Any]:
    return {"token": TOKEN, "callback_url": callback_url, "callback_secret": SECRET, **options}


# -- the connector on a real listener, with a recording sink ------------------------------


class RecordingSink:
    """Stands in for the core: commits each batch at once, stores an external id once."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.updates: list[DeliveryUpdate] = []
        self.connected_details: list[str] = []
        self.fail_commits = 0

    @property
    def cursor(self) -> str | None:
        return None

    async def deliver(self, messages: Sequence[InboundMessage], cursor: str | None) -> list[DeliveryReceipt]:
        if self.fail_commits:
            self.fail_commits -= 1
            raise OSError("disk I/O error")
        receipts = []
        for message in messages:
            known = [n for n, m in enumerate(self.messages) if m.external_id == message.external_id]
            if not known:
                self.messages.append(message)
            number = known[0] if known else len(self.messages) - 1
            receipts.append(DeliveryReceipt(message.external_id, 100 + number, 7, 3, bool(known)))
        return receipts

    async def delivery_updates(self, updates: Sequence[DeliveryUpdate]) -> None:
        self.updates.extend(updates)

    def connected(self, detail: str = "") -> None:
        self.connected_details.append(detail)


@dataclass
class Rig:
    connector: ApiConnector
    sink: RecordingSink
    url: str
    client: httpx.AsyncClient

    async def post(
        self, payload: Any = None, *, token: str | None = TOKEN, raw: bytes | None = None, path: str = "/messages", **headers: str
    ) -> httpx.Response:
        sent = dict(headers)
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        body = raw if raw is not None else json.dumps(payload).encode()
        sent.setdefault("Content-Type", "application/json")
        return await self.client.post(self.url + path, content=body, headers=sent)


@contextlib.asynccontextmanager
async def wired(
    tmp_path: Path, *, start: bool = True, listener: ListenerSettings | None = None, **options: Any
) -> AsyncIterator[Rig]:
    connector = ApiConnector(ChannelContext(1, "crm", settings_for(**options), tmp_path))
    server = Listener(listener or ListenerSettings(port=0))
    server.mount("/hooks/crm", connector.web_routes(), owner="crm")
    await server.start()
    sink = RecordingSink()
    task = asyncio.create_task(connector.run(sink)) if start else None
    client = httpx.AsyncClient(timeout=10)
    try:
        if task is not None:
            await eventually(lambda: task.done() or bool(sink.connected_details))
        yield Rig(connector, sink, f"{server.url}/hooks/crm", client)
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        await server.stop()
        await connector.close()


def message(key: str = "order-4711-1", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "idempotency_key": key,
        "customer": {"name": "Иван Петров", "email": "Ivan@Example.com", "phone": "+7 999 123-45-67", "external_id": "4711"},
        "text": "Where is my order?",
    }
    body.update(fields)
    return body


async def test_a_message_is_answered_202_with_our_ids_only_after_it_is_stored(tmp_path: Path) -> None:
    async with wired(tmp_path) as rig:
        attachment = {
            "filename": "receipt.pdf",
            "mime_type": "application/pdf",
            "content_base64": base64.b64encode(BINARY).decode(),
        }
        answer = await rig.post(message(attachments=[attachment], context={"ticket": 88}))
        assert answer.status_code == 202, answer.text
        assert answer.json() == {
            "status": "accepted",
            "idempotency_key": "order-4711-1",
            "message_id": 100,
            "conversation_id": 7,
            "customer_id": 3,
            "duplicate": False,
        }
        [stored] = rig.sink.messages
        assert stored.external_id == "key:order-4711-1"
        assert (stored.identity_kind, stored.address) == (IdentityKind.EMAIL, "Ivan@Example.com")  # the core normalises
        assert stored.extra_identities == ((IdentityKind.PHONE, "+7 999 123-45-67"), (IdentityKind.EXTERNAL, "crm:4711"))
        assert stored.sender_name == "Иван Петров" and stored.body == "Where is my order?"
        assert stored.attachments[0].data == BINARY and stored.attachments[0].filename == "receipt.pdf"
        assert stored.meta["context"] == {"ticket": 88} and stored.meta["idempotency_key"] == "order-4711-1"
        # The retry of a POST whose answer was lost: stored once, the same ids again.
        again = await rig.post(message(attachments=[attachment]))
        assert again.status_code == 202 and again.json()["duplicate"] is True and again.json()["message_id"] == 100
        assert len(rig.sink.messages) == 1
        # The key may come as a header instead.
        header = await rig.post({k: v for k, v in message().items() if k != "idempotency_key"}, **{"Idempotency-Key": "h-1"})
        assert header.status_code == 202 and header.json()["idempotency_key"] == "h-1"


async def test_a_message_that_could_not_be_stored_gets_503_and_its_retry_is_stored_once(tmp_path: Path) -> None:
    async with wired(tmp_path) as rig:
        rig.sink.fail_commits = 1
        failed = await rig.post(message())
        assert failed.status_code == 503 and "send again" in failed.text and rig.sink.messages == []
        assert (await rig.post(message())).status_code == 202
        assert (await rig.post(message())).json()["duplicate"] is True
    assert len(rig.sink.messages) == 1


@pytest.mark.parametrize(
    ("identity_kind", "customer", "primary"),
    [
        ("auto", {"phone": "+44 7700 900123", "external_id": "c-9"}, (IdentityKind.PHONE, "+44 7700 900123")),
        ("auto", {"external_id": 9001}, (IdentityKind.EXTERNAL, "crm:9001")),
        ("phone", {"email": "a@b.example", "phone": "+44 7700 900123"}, (IdentityKind.PHONE, "+44 7700 900123")),
        ("external", {"email": "a@b.example", "external_id": "c-9"}, (IdentityKind.EXTERNAL, "crm:c-9")),
    ],
)
async def test_the_primary_identity_follows_identity_kind(
    tmp_path: Path, identity_kind: str, customer: dict, primary: tuple
) -> None:
    async with wired(tmp_path, identity_kind=identity_kind) as rig:
        answer = await rig.post(message(customer=customer))
        assert answer.status_code == 202, answer.text
    [stored] = rig.sink.messages
    assert (stored.identity_kind, stored.address) == primary
    assert primary not in stored.extra_identities and len(stored.extra_identities) == len(customer) - 1


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Basic " + base64.b64encode(f"crm:{TOKEN}".encode()).decode(), 401),
        (TOKEN, 401),
        ("Bearer wrong-token", 403),
        (f"Bearer {TOKEN}x", 403),
        (f"Bearer {TOKEN[:-1]}", 403),
    ],
)
async def test_requests_without_the_token_are_refused_and_store_nothing(
    tmp_path: Path, authorization: str | None, status: int
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with wired(tmp_path) as rig:
        answer = await rig.post(message(), token=None, **headers)
        status_answer = await rig.post({"message_id": 1, "state": "delivered"}, token=None, path="/status", **headers)
    assert answer.status_code == status and "refused" in answer.text
    assert status_answer.status_code == status
    if status == 401:
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert rig.sink.messages == [] and rig.sink.updates == []


@pytest.mark.parametrize(
    ("payload", "raw", "headers", "status", "words"),
    [
        (None, b"{not json", {}, 400, "not valid JSON"),
        (None, b"\xff\xfe", {}, 400, "not UTF-8"),
        ([1, 2], None, {}, 400, "JSON object"),
        (message(), None, {"Content-Type": "text/plain"}, 415, "must be JSON"),
        ({**message(), "idempotency_key": ""}, None, {}, 422, "idempotency_key is required"),
        (message(), None, {"Idempotency-Key": "other"}, 422, "differ"),
        (message(key="k" * 201), None, {}, 422, "longer than 200"),
        (message(key="order\x1b[2J-1"), None, {}, 422, "may not contain control"),
        (message(key="order-1\u202e"), None, {}, 422, "direction characters"),
        ({**message(), "customer": None}, None, {}, 422, "customer is required"),
        (message(customer={"name": "Nobody"}), None, {}, 422, "at least one of email, phone, external_id"),
        (message(customer={"email": "not-an-address"}), None, {}, 422, "is not an e-mail address"),
        (message(customer={"phone": "call me maybe"}), None, {}, 422, "is not a phone number"),
        (message(customer={"email": ["a@b.c"]}), None, {}, 422, "customer.email must be text"),
        (message(text=None, attachments=[]), None, {}, 422, "neither text nor attachments"),
        (message(text=42), None, {}, 422, "text must be a string"),
        (message(text="x" * 65_537), None, {}, 422, "longer than 65536"),
        (message(attachments=[{"filename": "a.txt", "content_base64": "%%%"}]), None, {}, 422, "not valid base64"),
        (message(attachments=[{"content_base64": "aGk="}]), None, {}, 422, "filename is required"),
        (message(attachments="file.txt"), None, {}, 422, "attachments must be a list"),
        (message(attachments=[{"filename": "a", "content_base64": "aGk="}] * 21), None, {}, 422, "at most 20"),
        (message(context={"x": "y" * 5000}), None, {}, 422, "at most 4 KB"),
        (message(sent_at="yesterday"), None, {}, 422, "ISO 8601"),
    ],
)
async def test_bad_requests_get_a_reason_and_store_nothing(
    tmp_path: Path, payload: Any, raw: bytes | None, headers: dict, status: int, words: str
) -> None:
    async with wired(tmp_path) as rig:
        answer = await rig.post(payload, raw=raw, **headers)
    assert answer.status_code == status, answer.text
    assert words in answer.text
    assert rig.sink.messages == []


async def test_a_channel_that_names_customers_by_phone_refuses_one_without(tmp_path: Path) -> None:
    async with wired(tmp_path, identity_kind="phone") as rig:
        answer = await rig.post(message(customer={"email": "a@b.example"}))
    assert answer.status_code == 422 and "customer.phone is required" in answer.json()["error"]
    assert rig.sink.messages == []


async def test_before_the_channel_runs_requests_get_503_and_the_listener_guards_size_and_rate(tmp_path: Path) -> None:
    async with wired(tmp_path, start=False, listener=ListenerSettings(port=0, max_body_kb=1, rate_per_minute=3)) as rig:
        waiting = await rig.post(message())
        assert waiting.status_code == 503 and waiting.headers["Retry-After"]
        assert (await rig.post(message(), token="bad")).status_code == 403  # refused still comes first
        assert (await rig.post(message(text="x" * 2000))).status_code == 413
        limited = await rig.post(message())
        assert limited.status_code == 429 and "slow down" in limited.text
    assert rig.sink.messages == []


async def test_status_reports_become_delivery_updates(tmp_path: Path) -> None:
    async with wired(tmp_path) as rig:
        assert (await rig.post({"message_id": 17, "state": "delivered"}, path="/status")).status_code == 202
        failed = await rig.post({"message_id": 18, "state": "failed", "reason": "mailbox \x1b[31mfull"}, path="/status")
        assert failed.status_code == 202
        assert (await rig.post({"message_id": "17", "state": "delivered"}, path="/status")).status_code == 422
        assert (await rig.post({"message_id": 17, "state": "lost"}, path="/status")).status_code == 422
    assert [(u.external_id, u.state) for u in rig.sink.updates] == [("out:17", "delivered"), ("out:18", "failed")]
    assert rig.sink.updates[1].error == "the integration reports: mailbox full"  # the escape sequence is gone


# -- sending to the callback ---------------------------------------------------------------


def outbound(**fields: Any) -> OutboundMessage:
    defaults: dict[str, Any] = {
        "id": 41,
        "conversation_id": 5,
        "identity_kind": IdentityKind.EMAIL,
        "address": "ivan@example.com",
        "body": "Your order ships today",
        "author": "alice",
        "meta": {
            "idempotency_key": "order-4711-1",
            "customer": {"name": "Ivan", "external_id": "4711"},
            "context": {"ticket": 88},
        },
    }
    return OutboundMessage(**{**defaults, **fields})


async def test_a_reply_is_posted_signed_with_its_idempotency_key(callback: CallbackServer, tmp_path: Path) -> None:
    photo = tmp_path / "label.png"
    photo.write_bytes(BINARY)
    connector = ApiConnector(ChannelContext(1, "crm", settings_for(callback.url), tmp_path))
    try:
        result = await connector.send(outbound(attachments=(photo,)))
    finally:
        await connector.close()
    assert (result.external_id, result.state) == ("out:41", "sent")
    [posted] = callback.posted
    expected = "sha256=" + hmac.new(SECRET.encode(), posted.body, hashlib.sha256).hexdigest()
    assert posted.headers["x-omniconsole-signature"] == expected == sign(SECRET, posted.body)
    assert posted.headers["idempotency-key"] == "41" and posted.headers["content-type"] == "application/json"
    document = posted.json
    assert document["event"] == "message" and document["message_id"] == 41 and document["conversation_id"] == 5
    assert document["text"] == "Your order ships today" and document["author"] == "alice"
    assert document["in_reply_to"] == "order-4711-1" and document["context"] == {"ticket": 88}
    assert document["customer"] == {
        "name": "Ivan",
        "external_id": "4711",
        "identity": {"kind": "email", "address": "ivan@example.com"},
    }
    [file] = document["attachments"]
    assert file["filename"] == "label.png" and file["mime_type"] == "image/png"
    assert base64.b64decode(file["content_base64"]) == BINARY


@pytest.mark.parametrize(
    ("status", "answer", "outcome", "words"),
    [
        (200, {"state": "delivered"}, "delivered", ""),
        (204, "", "sent", ""),
        (
            200,
            {"state": "failed", "reason": "customer unsubscribed"},
            PermanentError,
            "did not deliver the message: customer unsubscribed",
        ),
        (422, {"reason": "unknown customer 4711"}, PermanentError, "refused the message (422): unknown customer 4711"),
        (404, "no such route", PermanentError, "refused the message (404): no such route"),
        (410, {"error": "\x1b]0;x\x07gone"}, PermanentError, "refused the message (410): gone"),
        (302, "", PermanentError, "redirect"),
        (429, {"reason": "slow down"}, TransientError, "answered 429: slow down"),
        (503, "maintenance", TransientError, "answered 503: maintenance"),
        (500, {}, TransientError, "answered 500"),
    ],
)
async def test_the_callback_answer_is_the_delivery_state(
    callback: CallbackServer, tmp_path: Path, status: int, answer: Any, outcome: Any, words: str
) -> None:
    callback.answers.append((status, answer))
    connector = ApiConnector(ChannelContext(1, "crm", settings_for(callback.url), tmp_path))
    try:
        if isinstance(outcome, str):
            assert (await connector.send(outbound())).state == outcome
        else:
            with pytest.raises(outcome) as raised:
                await connector.send(outbound())
            assert type(raised.value) is outcome and words in raised.value.reason
            assert SECRET not in raised.value.reason
    finally:
        await connector.close()


async def test_an_unreachable_callback_is_transient_and_a_missing_one_permanent(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    connector = ApiConnector(ChannelContext(1, "crm", settings_for(gone), tmp_path))
    try:
        with pytest.raises(TransientError, match="is unreachable"):
            await connector.send(outbound())
    finally:
        await connector.close()
    for options, words in (
        (settings_for(""), "no callback_url"),
        (settings_for("ftp://x/y"), "not an http"),
        ({"token": TOKEN, "callback_url": gone}, "missing callback_secret"),
    ):
        with pytest.raises(PermanentError, match=words):
            await ApiConnector(ChannelContext(1, "crm", options, tmp_path)).send(outbound())
    with pytest.raises(PermanentError, match="missing token"):
        await ApiConnector(ChannelContext(1, "crm", {"callback_url": gone}, tmp_path)).run(RecordingSink())
    with pytest.raises(PermanentError, match="identity_kind must be one of"):
        await ApiConnector(ChannelContext(1, "crm", settings_for(gone, identity_kind="fax"), tmp_path)).check()


# -- the core: a real Hub on a real Store --------------------------------------------------


def core_settings(tmp_path: Path, port: int, callback_url: str) -> Settings:
    return Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        default_region="RU",
        channels=[ChannelSettings("api", "CRM", settings_for(callback_url))],
        listener=ListenerSettings(port=port),
    )


async def test_the_core_stores_a_message_once_and_sends_the_reply_to_the_callback(
    callback: CallbackServer, tmp_path: Path
) -> None:
    port = free_port()
    store = await Store.open(tmp_path / "core.db")
    # Ivan wrote on WhatsApp before: the CRM's message from his number is the same person.
    ivan = await store.db.write(history.add_customer, "Ivan (WhatsApp)", [("whatsapp", "+79991234567", "79991234567")])
    client = httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {TOKEN}"})
    url = f"http://127.0.0.1:{port}/hooks/crm/messages"
    try:
        async with running_core(core_settings(tmp_path, port, callback.url), store, until_up="all"):
            payload = message(
                customer={"name": "Ivan", "phone": "8 (999) 123-45-67", "external_id": "4711"},
                text="Где заказ? \x1b]52;c;ZWNobw==\x07",
                attachments=[{"filename": "../../etc/passwd", "content_base64": base64.b64encode(BINARY).decode()}],
            )
            first = await client.post(url, json=payload)
            assert first.status_code == 202, first.text
            ids = first.json()
            again = await client.post(url, json=payload)
            assert again.json() == {**ids, "duplicate": True}
            assert ids["customer_id"] == ivan and ids["duplicate"] is False
            # A burst of the same request at once (a client that retries in parallel): one message.
            burst = await asyncio.gather(
                *(
                    client.post(url, json={**payload, "idempotency_key": "burst", "text": "once", "attachments": []})
                    for _ in range(12)
                )
            )
            assert {b.status_code for b in burst} == {202}
            assert len({b.json()["message_id"] for b in burst}) == 1 and sum(not b.json()["duplicate"] for b in burst) == 1
            entry, once = [e for e in await store.timeline(ids["conversation_id"]) if e.direction == "in"]
            assert entry.id == ids["message_id"] and entry.body == "Где заказ? "  # sanitised at ingest
            assert once.body == "once"
            assert entry.channel_kind == "api"
            stored = entry.attachments[0]
            assert stored.filename == "_.._etc_passwd"
            assert (tmp_path / "data" / "attachments" / stored.path).read_bytes() == BINARY
            profile = await store.customer_profile(ivan)
            assert {(i.kind, i.address) for i in profile.identities} == {
                ("whatsapp", "+79991234567"),
                ("phone", "+79991234567"),
                ("external", "CRM:4711"),
            }

            # The reply: 503 twice (the outbox retries with backoff), then delivered.
            callback.answers += [(503, "busy"), (503, "busy"), (200, {"state": "delivered"})]
            reply = await store.queue_reply(ids["conversation_id"], "Завтра", "alice")

            async def state() -> str:
                return next(e for e in await store.timeline(ids["conversation_id"]) if e.id == reply).state

            for _ in range(250):
                if await state() == "delivered":
                    break
                await asyncio.sleep(0.02)
            assert await state() == "delivered"
            assert len(callback.posted) == 3
            assert {p.headers["idempotency-key"] for p in callback.posted} == {str(reply)}
            assert [p.json["attempt"] for p in callback.posted] == [1, 2, 3]
            assert all(p.headers["x-omniconsole-signature"] == sign(SECRET, p.body) for p in callback.posted)
            assert callback.posted[-1].json["customer"]["identity"] == {"kind": "phone", "address": "+79991234567"}
            assert callback.posted[-1].json["in_reply_to"] == "burst"  # the latest message on this channel

            # A later word from the integration: read.
            status = await client.post(f"http://127.0.0.1:{port}/hooks/crm/status", json={"message_id": reply, "state": "read"})
            assert status.status_code == 202
            for _ in range(250):
                if await state() == "read":
                    break
                await asyncio.sleep(0.02)
            assert await state() == "read"

            # A refusal fails the reply with the callback's own words.
            callback.answers.append((422, {"reason": "ticket is closed"}))
            refused = await store.queue_reply(ids["conversation_id"], "One more thing", "alice")
            for _ in range(250):
                rows = {e.id: e for e in await store.timeline(ids["conversation_id"])}
                if rows[refused].state == "failed":
                    break
                await asyncio.sleep(0.02)
            assert rows[refused].state == "failed" and "ticket is closed" in rows[refused].error
            [row] = await store.inbox_page(InboxView.ALL)
            assert row.customer_id == ivan
    finally:
        await client.aclose()
        await store.close()


# -- the OpenAPI description ---------------------------------------------------------------


def test_the_openapi_description_lists_exactly_the_served_routes(tmp_path: Path) -> None:
    document = yaml.safe_load((repo_root() / "docs" / "openapi.yaml").read_text(encoding="utf-8"))
    assert str(document["openapi"]).startswith("3.")
    described = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    }
    served = set()
    for cls, prefix in ((ApiConnector, "/hooks/{api_channel}"), (TelephonyConnector, "/hooks/{telephony_channel}")):
        connector = cls(ChannelContext(1, "x", {"token": "t"}, tmp_path))
        served |= {(prefix + route.path, route.method) for route in connector.web_routes()}
    assert described == served
    schemes = document["components"]["securitySchemes"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["security"], f"{method} {path} must say how it is authenticated"
            assert all(next(iter(s)) in schemes for s in operation["security"])
            assert {"401", "403", "422", "429"} <= set(map(str, operation["responses"])), f"{method} {path}"
            for response in operation["responses"].values():
                assert "description" in response or "$ref" in response
    # Every $ref points at something that exists.
    text = json.dumps(document)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        node = document
        for key in ref.removeprefix("#/").split("/"):
            node = node[key]
