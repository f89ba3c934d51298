"""One hostile battery for every route of the core's listener (issue 14, "inputs that must never
jam a channel"): a real core runs every channel that is pushed to (WhatsApp against the fake
Graph API, the web chat, the open API, phone calls); the routes are read from its listener, not
listed here, so a channel that adds a route is tried too. Each probe goes to each route with
the channel's own credentials (so it reaches the parsing behind the signature or token) and
without them.

A client's bad input must get a 4xx: never 500 (our crash), never 503 (which tells the sender
to retry what will never be accepted). Afterwards the core still takes good requests on every
channel, and the log holds no traceback.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.core.hub import Hub
from omniconsole.models import InboxView
from omniconsole.store import Store
from tests.peers.graph_api import APP_SECRET, PHONE_NUMBER_ID, TOKEN, VERIFY_TOKEN, FakeGraphApi, Meta
from tests.rig import free_port, running_core

API_TOKEN = "crm-token-5f1c2e"
PBX_TOKEN = "pbx-token-77aa01"
CHAT_SECRET = "a-test-secret-of-32-characters!!"
SHOP = "https://shop.example"
Headers = Mapping[str, str | bytes]


@dataclass(frozen=True)
class Probe:
    """One hostile request: a body, headers, a query, and optionally a method of its own."""

    name: str
    body: bytes = b"{}"
    headers: Headers = field(default_factory=dict)
    query: str = ""
    method: str | None = None


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# Fields of every channel at once: each route finds the ones it reads.
_SURROGATES = (
    b'{"idempotency_key": "k-\\ud83d", "customer": {"name": "\\ud83d", "email": "s@shop.example"},'
    b' "text": "\\ud83d", "id": "m-1", "event": "ringing", "call_id": "c-\\ud83d", "from": "+79991234567",'
    b' "note": "\\udc00", "message_id": 1, "state": "delivered", "reason": "\\ud83d"}'
)
_SURROGATE_KEYS = b'{"\\ud83d": "\\udfff", "text": {"\\udc00": 1}, "customer": {"\\ud800": "x"}}'

BATTERY: list[Probe] = [
    # Bodies.
    Probe("empty body", b""),
    Probe("not JSON", b"{not json"),
    Probe("truncated JSON", b'{"text": "hel'),
    Probe("not UTF-8", b'{"text": "\xff\xfe"}'),
    Probe("UTF-8 BOM", b"\xef\xbb\xbf{}"),
    Probe("UTF-16", '{"text": "x"}'.encode("utf-16")),
    Probe("a JSON array", b"[]"),
    Probe("a JSON string", b'"x"'),
    Probe("JSON null", b"null"),
    Probe("a JSON number", b"12"),
    Probe("arrays 1,000 deep", _deep(1000)),
    Probe("objects 1,000 deep", b'{"a":' * 1000 + b"1" + b"}" * 1000),
    Probe("arrays 100,000 deep", _deep(100_000)),
    Probe("fields 1,000 deep", b'{"text": ' + _deep(1000) + b', "customer": ' + b'{"a":' * 990 + b"1" + b"}" * 990 + b"}"),
    Probe("NaN", b'{"duration": NaN, "text": NaN, "message_id": NaN, "event": "ended", "call_id": "n1", "from": "+79991234567"}'),
    Probe(
        "Infinity",
        b'{"duration": Infinity, "at": -Infinity, "sent_at": Infinity, "event": "ended", "call_id": "i1", '
        b'"from": "+79991234567"}',
    ),
    Probe(
        "numbers past double range",
        b'{"duration": 1e999, "at": 1e308, "message_id": 1e400, "event": "ended", "call_id": "h1", "from": "+79991234567"}',
    ),
    Probe("an integer of 5,000 digits", b'{"duration": ' + b"9" * 5000 + b"}"),
    Probe(
        "integers past 64 bits",
        b'{"message_id": 18446744073709551617, "duration": 18446744073709551617, '
        b'"extension": 99999999999999999999999, "at": -18446744073709551617}',
    ),
    Probe("lone surrogates", _SURROGATES),
    Probe("lone surrogates in keys", _SURROGATE_KEYS),
    Probe(
        "wrong types",
        b'{"text": 5, "id": [], "customer": "x", "event": {}, "call_id": true, "message_id": "x", '
        b'"state": 1, "extension": [{}], "attachments": "x", "context": [], "idempotency_key": {}}',
    ),
    Probe("nulls", b'{"text": null, "id": null, "customer": null, "event": null, "entry": null, "object": null}'),
    Probe(
        "control characters",
        b'{"text": "\\u0000\\u001b]52;c;x\\u0007", "id": "m-\\u0000", "event": "ringing", '
        b'"call_id": "c\\u0000", "from": "\\u202e+7999"}',
    ),
    Probe(
        "Meta's envelope, wrong inside",
        b'{"object": "whatsapp_business_account", "entry": [{"changes": "x"}, 5, '
        b'{"changes": [{"value": {"messages": [{"from": 5, "id": [], "timestamp": '
        b'"NaN", "type": "text", "text": "x"}], "statuses": [{"id": 1}]}}]}]}',
    ),
    Probe(
        "attachments of the wrong shape",
        b'{"idempotency_key": "att-1", "customer": {"email": "a@shop.example"}, '
        b'"text": "x", "attachments": [{"filename": 5, "content_base64": "!!"}, 3]}',
    ),
    # Headers.
    Probe("a non-ASCII signature", headers={"X-Hub-Signature-256": ("sha256=" + "é" * 64).encode()}),
    Probe(
        "header bytes that are not UTF-8",
        headers={
            "X-Hub-Signature-256": b"sha256=\xff\xfe",
            "Authorization": b"Bearer \xff\xfe",
            "Origin": b"https://\xff.example",
            "Idempotency-Key": b"\xff",
        },
    ),
    Probe("a non-ASCII token", headers={"Authorization": "Bearer токен".encode()}),
    Probe("an oversized header", headers={"X-Padding": "x" * 9000}),
    Probe("an oversized token", headers={"Authorization": "Bearer " + "x" * 8000}),
    Probe("too many headers", headers={f"X-H-{n}": "1" for n in range(200)}),
    Probe("another auth scheme", headers={"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"}),
    Probe("a bare Bearer", headers={"Authorization": "Bearer"}),
    Probe("a broken Origin", headers={"Origin": "http://["}),
    Probe("Origin null", headers={"Origin": "null"}),
    Probe("text/plain", headers={"Content-Type": "text/plain"}),
    Probe("a form", b"a=1&b=2", headers={"Content-Type": "application/x-www-form-urlencoded"}),
    Probe("multipart", b"--x\r\n\r\n--x--", headers={"Content-Type": "multipart/form-data; boundary=x"}),
    Probe(
        "a foreign charset", '{"text": "привет"}'.encode("koi8-r"), headers={"Content-Type": "application/json; charset=koi8-r"}
    ),
    Probe("a bad signature scheme", headers={"X-Hub-Signature-256": "md5=" + "0" * 64}),
    Probe("an oversized idempotency key", headers={"Idempotency-Key": "k" * 5000}),
    # Queries.
    Probe("after=NaN", query="after=NaN"),
    Probe("after=1e999", query="after=1e999"),
    Probe("after of 5,000 digits", query="after=" + "9" * 5000),
    Probe("after=-1", query="after=-1"),
    Probe("after past the end", query="after=99999999999999999999999999"),
    Probe("query bytes that are not UTF-8", query="after=%FF&typing=%00&online=%FE&hub.verify_token=%FF&hub.challenge=%FF%00"),
    Probe(
        "a handshake with the right token and a hostile challenge",
        query=f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=%1B%5D52%3Bc%3Bx%07" + "x" * 500,
    ),
    Probe("an oversized query", query="a=" + "x" * 9000),
    # Methods nobody serves on any route.
    Probe("PUT", method="PUT"),
    Probe("DELETE", method="DELETE"),
    Probe("PATCH", method="PATCH"),
    Probe("a made-up method", method="BREW"),
]

# Paths no channel serves, however they are spelled.
STRAY_PATHS = [
    "/",
    "/hooks",
    "/hooks/%FF",
    "/hooks/%E2%80%AEevil",
    "/hooks/api/messages/../status",
    "/%2e%2e/etc/passwd",
    "/hooks/" + "x" * 3000,
]


def core_settings(tmp_path: Path, port: int, graph: FakeGraphApi) -> Settings:
    return Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        channels=[
            ChannelSettings(
                "whatsapp",
                "WhatsApp",
                {
                    "token": TOKEN,
                    "app_secret": APP_SECRET,
                    "verify_token": VERIFY_TOKEN,
                    "phone_number_id": PHONE_NUMBER_ID,
                    "graph_url": graph.url,
                    "api_version": "v21.0",
                },
            ),
            ChannelSettings(
                "webchat",
                "Chat",
                {
                    "secret": CHAT_SECRET,
                    "allowed_origins": [SHOP],
                    "poll_seconds": 0.05,
                    "messages_per_minute": 10_000,
                    "sessions_per_minute": 10_000,
                },
            ),
            ChannelSettings("api", "CRM", {"token": API_TOKEN}),
            ChannelSettings("telephony", "Phone", {"token": PBX_TOKEN}),
        ],
        listener=ListenerSettings(port=port, rate_per_minute=10_000_000),
    )


def credentials_for(hub: Hub, session_token: str) -> Callable[[str, bytes], dict[str, str]]:
    """The headers a route's rightful sender adds: by the kind of the channel that owns it."""
    kinds = {channel.name: channel.kind for channel in hub.settings.channels}

    def credentials(owner: str, body: bytes) -> dict[str, str]:
        kind = kinds[owner]
        if kind == "whatsapp":
            return {"X-Hub-Signature-256": "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()}
        if kind == "webchat":
            return {"Origin": SHOP, "Authorization": f"Bearer {session_token}"}
        return {"Authorization": f"Bearer {API_TOKEN if kind == 'api' else PBX_TOKEN}"}

    return credentials


async def stored_bodies(store: Store) -> list[str]:
    """The body of every message in the store, conversation by conversation."""
    found = []
    for row in await store.inbox_page(InboxView.ALL):
        found += [entry.body for entry in await store.timeline(row.conversation_id)]
    return found


async def eventually_async(read: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await read()
        if check(value) or asyncio.get_running_loop().time() > deadline:
            assert check(value), value
            return value
        await asyncio.sleep(0.02)


async def send(client: httpx.AsyncClient, method: str, path: str, probe: Probe, headers: Headers) -> int:
    url = path + ("?" + probe.query if probe.query else "")
    answer = await client.request(method, url, content=probe.body, headers={"Content-Type": "application/json", **headers})
    return answer.status_code


async def test_every_listener_route_answers_the_hostile_battery_with_4xx_and_keeps_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()
    store = await Store.open(tmp_path / "core.db")
    with FakeGraphApi() as graph:
        async with running_core(core_settings(tmp_path, port, graph), store, until_up="all") as hub:
            assert hub.listener is not None
            routes = hub.listener.routes
            assert {r.owner for r in routes} == {"WhatsApp", "Chat", "CRM", "Phone"}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                chat = next(r.path for r in routes if r.path.endswith("/session")).removesuffix("/session")
                session = (await client.post(chat + "/session", headers={"Origin": SHOP})).json()
                credentials = credentials_for(hub, session["token"])
                bad: list[str] = []
                answered: dict[int, int] = {}
                for route in routes:
                    for probe in BATTERY:
                        for signed in (True, False):
                            headers = {**(credentials(route.owner, probe.body) if signed else {}), **probe.headers}
                            status = await send(client, probe.method or route.method, route.path, probe, headers)
                            answered[status] = answered.get(status, 0) + 1
                            if not 200 <= status < 500:
                                bad.append(
                                    f"{probe.method or route.method} {route.path} {probe.name!r}"
                                    f" ({'signed' if signed else 'unsigned'}): {status}"
                                )
                for path in STRAY_PATHS:
                    for probe in BATTERY[:3]:
                        status = await send(client, "POST", path, probe, probe.headers)
                        if status not in (400, 404):
                            bad.append(f"POST {path} {probe.name!r}: {status}")
                assert bad == [], "\n".join(bad)
                assert sum(answered.values()) >= 2 * len(BATTERY) * len(routes)

                # The core still takes good requests on every channel.
                api = next(r.path for r in routes if r.owner == "CRM" and r.path.endswith("/messages"))
                taken = await client.post(
                    api,
                    json={"idempotency_key": "after-1", "customer": {"email": "ivan@shop.example"}, "text": "still here"},
                    headers={"Authorization": f"Bearer {API_TOKEN}"},
                )
                assert taken.status_code == 202, taken.text
                phone = next(r.path for r in routes if r.owner == "Phone")
                call = await client.post(
                    phone,
                    json={"event": "ringing", "call_id": "after-1", "from": "+79991234568"},
                    headers={"Authorization": f"Bearer {PBX_TOKEN}"},
                )
                assert call.status_code == 202, call.text
                said = await client.post(
                    chat + "/messages",
                    json={"id": "after-1", "text": "still here"},
                    headers={"Origin": SHOP, "Authorization": f"Bearer {session['token']}"},
                )
                assert said.status_code == 200, said.text
                wa = next(r.path for r in routes if r.owner == "WhatsApp" and r.method == "POST")
                meta = Meta(f"http://127.0.0.1:{port}{wa}")
                body = json.dumps(meta.payload([meta.message("79991234569", body="still here")])).encode()
                hook = await client.post(
                    wa, content=body, headers={**credentials("WhatsApp", body), "Content-Type": "application/json"}
                )
                assert hook.status_code == 200, hook.text
            await eventually_async(lambda: stored_bodies(store), lambda found: found.count("still here") == 3)
    await store.close()
    assert "Traceback" not in caplog.text


async def test_lone_surrogates_are_repaired_and_stored_on_the_api_calls_and_web_chat(tmp_path: Path) -> None:
    """Half an emoji ("\\ud83d") once made the open API and the web chat answer 503 "retry"
    forever: the text could not be stored. It is kept, with U+FFFD in the broken place; an
    identifier holding one is refused in words (two keys must never become one)."""
    port = free_port()
    store = await Store.open(tmp_path / "core.db")
    with FakeGraphApi() as graph:
        async with running_core(core_settings(tmp_path, port, graph), store, until_up="all") as hub:
            assert hub.listener is not None
            routes = hub.listener.routes
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                api = next(r.path for r in routes if r.owner == "CRM" and r.path.endswith("/messages"))
                raw = (
                    b'{"idempotency_key": "emoji-1", "customer": {"name": "Ol\\ud83dga", "email": "olga@shop.example"},'
                    b' "text": "broken \\ud83d emoji, whole \\ud83d\\ude00"}'
                )
                taken = await client.post(
                    api, content=raw, headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
                )
                assert taken.status_code == 202, taken.text
                key = await client.post(
                    api,
                    content=raw.replace(b"emoji-1", b"emoji-\\ud83d"),
                    headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"},
                )
                assert key.status_code == 422 and "not text" in key.json()["error"]

                phone = next(r.path for r in routes if r.owner == "Phone")
                call = await client.post(
                    phone,
                    content=b'{"event": "missed", "call_id": "sur-1", "from": "+79991234570",'
                    b' "name": "\\udc00Anna", "note": "x\\ud83d"}',
                    headers={"Authorization": f"Bearer {PBX_TOKEN}", "Content-Type": "application/json"},
                )
                assert call.status_code == 202, call.text
                nan = await client.post(
                    phone,
                    content=b'{"event": "ended", "call_id": "sur-2", "from": "+79991234570", "duration": NaN}',
                    headers={"Authorization": f"Bearer {PBX_TOKEN}", "Content-Type": "application/json"},
                )
                assert nan.status_code == 400 and "NaN is not a JSON number" in nan.text

                chat = next(r.path for r in routes if r.path.endswith("/session")).removesuffix("/session")
                session = (await client.post(chat + "/session", headers={"Origin": SHOP})).json()
                said = await client.post(
                    chat + "/messages",
                    content=b'{"id": "s1", "text": "hi \\ud83d"}',
                    headers={"Origin": SHOP, "Authorization": f"Bearer {session['token']}"},
                )
                assert said.status_code == 200, said.text
                seen = (
                    await client.get(
                        chat + "/poll",
                        params={"after": "0"},
                        headers={"Origin": SHOP, "Authorization": f"Bearer {session['token']}"},
                    )
                ).json()
                assert [m["text"] for m in seen["messages"]] == ["hi \ufffd"]

            stored = await stored_bodies(store)
            assert "broken \ufffd emoji, whole 😀" in stored
            assert "hi \ufffd" in stored
            names = {
                (await store.customer_profile(row.customer_id)).display_name for row in await store.inbox_page(InboxView.ALL)
            }
            assert "Ol\ufffdga" in names
            calls = [
                json.loads(e.meta)["call"]
                for row in await store.inbox_page(InboxView.ALL)
                for e in await store.timeline(row.conversation_id)
                if "call" in e.flags
            ]
            assert [c["note"] for c in calls] == ["x\ufffd"]
    await store.close()


def test_the_whatsapp_signature_check_takes_any_header_text(tmp_path: Path) -> None:
    """A header of undecodable bytes reaches the check as lone surrogates when the listener is
    bypassed; non-hex, non-ASCII and short values are simply not a match."""
    from connectors.base import ChannelContext
    from connectors.whatsapp import WhatsAppConnector

    connector = WhatsAppConnector(ChannelContext(1, "wa", {"app_secret": APP_SECRET}, tmp_path))
    body = b'{"object": "whatsapp_business_account"}'
    good = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert connector._signed(body, good) and connector._signed(body, good.upper().replace("SHA256", "sha256"))
    for header in ("sha256=\udcff\udcfe", "sha256=" + "é" * 64, "sha256=" + "\udcff" * 64, "sha256=", "=", "", good[:-1]):
        assert connector._signed(body, header) is False
