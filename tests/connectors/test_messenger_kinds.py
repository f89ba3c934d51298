"""Every documented message kind of Telegram, WhatsApp and VK is shown in words or skipped on
purpose (issue #14, "Payloads in the channels' own documented shapes").

One case per kind, its payload taken from the channel's documentation (Bot API `Message`,
Cloud API webhook `messages[]`, VK `message`/attachment objects), fed over HTTP by the fake
peers on 127.0.0.1 to the real connector. The readers of payloads themselves
(connectors/payload.py) and the isolated delivery that keeps one bad message from holding up
the rest are tested at the end, against a sink that stands in for a core refusing a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ChannelContext, InboundMessage
from connectors.payload import (
    UNREADABLE,
    as_float,
    as_int,
    deliver_isolated,
    epoch_time,
    repair_text,
    repaired,
)
from connectors.telegram import TelegramConnector
from omniconsole.models import IdentityKind
from tests.connectors.test_vk import api as vk_api  # noqa: F401 - the VK fake, as a fixture
from tests.connectors.test_vk import receive_one as vk_receive_one
from tests.connectors.test_whatsapp import (
    graph,  # noqa: F401 - the Graph API fake, as a fixture
    wired,
)
from tests.connectors.test_whatsapp import receive as wa_receive
from tests.peers.graph_api import FakeGraphApi
from tests.peers.telegram_api import FakeBotApi, user
from tests.peers.vk_api import FakeVkApi
from tests.waiting import eventually as wait_until

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
eventually = functools.partial(wait_until, timeout=15.0, poll=0.01)
RITA = user(4040, "Rita", "K")


class Sink:
    """Commits each batch and its cursor at once, like the core."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.cursor: str | None = None

    async def deliver(self, messages: Sequence[InboundMessage], cursor: str | None) -> None:
        self.messages.extend(messages)
        if cursor is not None:
            self.cursor = cursor

    async def delivery_updates(self, updates: Sequence[Any]) -> None:
        pass

    def connected(self, detail: str = "") -> None:
        pass


# -- Telegram (https://core.telegram.org/bots/api#message) ----------------------------------

TELEGRAM_KINDS = [
    ({"dice": {"emoji": "🎲", "value": 4}}, "Dice 🎲 4"),
    (
        {
            "poll": {
                "id": "1",
                "question": "Which colour?",
                "options": [
                    {"persistent_id": "b", "text": "Blue", "voter_count": 0},
                    {"persistent_id": "r", "text": "Red", "voter_count": 0},
                ],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "members_only": False,
            }
        },
        "Poll: Which colour? (Blue, Red)",
    ),
    ({"web_app_data": {"data": "size=42", "button_text": "Pick size"}}, "Web app (Pick size) sent: size=42"),
    (
        {"users_shared": {"request_id": 1, "users": [{"user_id": 55, "first_name": "Anna"}, {"user_id": 56, "username": "bob"}]}},
        "Shared users: Anna, @bob",
    ),
    ({"chat_shared": {"request_id": 2, "chat_id": -100123, "title": "Shop fans"}}, "Shared a chat: Shop fans"),
    (
        {
            "successful_payment": {
                "currency": "EUR",
                "total_amount": 1999,
                "invoice_payload": "order-7",
                "telegram_payment_charge_id": "t1",
                "provider_payment_charge_id": "p1",
            }
        },
        "Payment received: 1999 EUR (in the currency's smallest units), invoice order-7",
    ),
    (
        {"game": {"title": "Kettle run", "description": "Run!", "photo": []}},
        "(game: omniconsole cannot show this kind of message)",
    ),
    ({"text": "/start@omni_test_bot"}, ""),  # a start: an origin, not words
    ({"text": "hi <b>there</b>", "entities": [{"type": "bold", "offset": 0, "length": 2}]}, "hi <b>there</b>"),
    (
        {
            "text": "see",
            "forward_origin": {
                "type": "chat",
                "date": 1,
                "sender_chat": {"id": -1002, "type": "supergroup", "title": "Fans"},
                "author_signature": "Ann",
            },
        },
        "Forwarded from chat Fans (Ann):\n> see",
    ),
]
# Service messages: nothing the customer wrote; confirmed, never stored.
TELEGRAM_SKIPPED = [
    {"new_chat_members": [{"id": 9, "is_bot": False, "first_name": "X"}]},
    {"pinned_message": {"message_id": 1, "date": 0, "chat": {"id": 4040, "type": "private", "first_name": "Rita"}}},
    {"message_auto_delete_timer_changed": {"message_auto_delete_time": 86400}},
    {"write_access_allowed": {}},
]


async def _telegram(tmp_path: Path, contents: list[dict[str, Any]]) -> tuple[Sink, FakeBotApi, int]:
    with FakeBotApi() as bot_api:
        last = 0
        for content in contents:
            last = bot_api.push_update("message", bot_api.message(RITA, **content))
        settings = {
            "token": bot_api.token,
            "base_url": bot_api.base_url,
            "base_file_url": bot_api.base_file_url,
            "poll_timeout": 1,
        }
        connector = TelegramConnector(ChannelContext(channel_id=1, name="telegram", settings=settings, data_dir=tmp_path))
        sink = Sink()
        task = asyncio.create_task(connector.run(sink))
        try:
            await eventually(lambda: task.done() or sink.cursor == str(last + 1))
            if task.done():
                task.result()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await connector.close()
    return sink, bot_api, last


@pytest.mark.parametrize(("content", "shown"), TELEGRAM_KINDS, ids=[next(iter(c)) for c, _ in TELEGRAM_KINDS])
async def test_each_telegram_kind_is_shown_in_words(tmp_path: Path, content: dict[str, Any], shown: str) -> None:
    sink, _, _ = await _telegram(tmp_path, [content])
    [message] = sink.messages
    assert message.body == shown


async def test_telegram_service_messages_are_skipped_but_confirmed(tmp_path: Path) -> None:
    sink, _, last = await _telegram(tmp_path, TELEGRAM_SKIPPED + [{"text": "after them"}])
    assert [m.body for m in sink.messages] == ["after them"] and sink.cursor == str(last + 1)


# -- WhatsApp (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples)

WHATSAPP_KINDS = [
    ("interactive", {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes, deliver"}}, "Yes, deliver"),
    (
        "interactive",
        {"type": "list_reply", "list_reply": {"id": "s2", "title": "Size M", "description": "fits 170-180"}},
        "Size M\nfits 170-180",
    ),
    (
        "interactive",
        {"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": '{"flow_token": "t"}'}},
        "Form sent (no answers given)",
    ),
    ("button", {"text": "Track", "payload": "track-7"}, "Track"),
    (
        "order",
        {
            "catalog_id": "cat1",
            "product_items": [{"product_retailer_id": "kettle-17", "quantity": "2", "item_price": 19.9, "currency": "EUR"}],
            "text": "gift wrap",
        },
        "Order from catalog cat1:\n- kettle-17 × 2 at 19.9 EUR\ngift wrap",
    ),
    (
        "location",
        {"latitude": 52.52, "longitude": 13.405, "name": "Pickup", "address": "Main st 1"},
        "Location: Pickup, Main st 1 (52.52, 13.405)",
    ),
    ("unsupported", {}, "(unsupported message: omniconsole cannot show this kind of message)"),
]


@pytest.mark.parametrize(
    ("kind", "content", "shown"), WHATSAPP_KINDS, ids=[f"{k}-{c.get('type', '')}" for k, c, _ in WHATSAPP_KINDS]
)
async def test_each_whatsapp_kind_is_shown_in_words(
    graph: FakeGraphApi, tmp_path: Path, kind: str, content: dict[str, Any], shown: str
) -> None:  # noqa: F811
    async with wired(graph, tmp_path) as rig:
        [message] = await wa_receive(rig, rig.meta.message("79991234567", kind, **content))
    assert message.body == shown


async def test_whatsapp_welcome_requests_and_system_notices_open_nothing(graph: FakeGraphApi, tmp_path: Path) -> None:  # noqa: F811
    async with wired(graph, tmp_path) as rig:
        items = [
            rig.meta.message("79991234567", "request_welcome"),
            {
                **rig.meta.message("79991234567", "system"),
                "system": {
                    "body": "User A changed from 79991234567 to 79990000000",
                    "wa_id": "79990000000",
                    "type": "user_changed_number",
                },
            },
        ]
        answer = await rig.post(rig.meta.payload(items))
        assert answer.status_code == 200
        assert rig.sink.messages == []


# -- VK (https://dev.vk.com/en/reference/objects/attachments-message) -----------------------

VK_KINDS = [
    ({"type": "wall_reply", "wall_reply": {"id": 1, "text": "nice kettle"}}, "[comment] nice kettle"),
    ({"type": "link", "link": {"url": "https://shop.example/k", "title": "Kettle"}}, "[link] Kettle https://shop.example/k"),
    ({"type": "audio", "audio": {"artist": "Band", "title": "Song"}}, "[audio] Band – Song"),
    ({"type": "video", "video": {"title": "Unboxing"}}, "[video] Unboxing"),
    ({"type": "market", "market": {"title": "Blue kettle"}}, "[product] Blue kettle"),
    ({"type": "market_album", "market_album": {"title": "Kettles"}}, "[product collection] Kettles"),
    ({"type": "poll", "poll": {"question": "Colour?"}}, "[poll] Colour?"),
    ({"type": "gift", "gift": {"id": 1}}, "[gift]"),
    ({"type": "story", "story": {"id": 1}}, "[story]"),
    ({"type": "graffiti", "graffiti": {"id": 1}}, "[graffiti]"),
]


@pytest.mark.parametrize(("attachment", "shown"), VK_KINDS, ids=[a["type"] for a, _ in VK_KINDS])
async def test_each_vk_attachment_kind_is_shown_in_words(
    vk_api: FakeVkApi, tmp_path: Path, attachment: dict[str, Any], shown: str
) -> None:  # noqa: F811
    message = await vk_receive_one(vk_api, tmp_path, "", attachments=[attachment])
    assert message.body == shown


async def test_a_vk_place_in_the_old_string_shape(vk_api: FakeVkApi, tmp_path: Path) -> None:  # noqa: F811
    """Older API versions give `geo.coordinates` as "lat long" and no place."""
    placed = await vk_receive_one(vk_api, tmp_path, "here", geo={"type": "point", "coordinates": "59.9 30.3"})
    assert placed.body == "here\nLocation: 59.9, 30.3"


async def test_vk_ids_sent_as_strings_are_the_same_person(vk_api: FakeVkApi, tmp_path: Path) -> None:  # noqa: F811
    """An identity of an unexpected shape is never a silent drop: ids as numeric strings."""
    message = await vk_receive_one(vk_api, tmp_path, "hi", from_id="1001", peer_id="1001")
    assert (message.body, message.address, message.sender_name) == ("hi", "1001", "Иван Петров")


# -- the payload readers and the isolated delivery ------------------------------------------


def test_readers_take_only_what_they_say() -> None:
    assert as_int(True) is None and as_int("12") == 12 and as_int("-3") == -3 and as_int(4.0) == 4 and as_int(4.5) is None
    assert as_int("1" * 41) is None and as_int(None) is None and as_int("12a") is None
    assert as_float(False) is None and as_float("nan") is None and as_float("1e400") is None and as_float("2.5") == 2.5
    assert epoch_time(10**20) is None and epoch_time(0) is None and epoch_time("1700000000").year == 2023


def test_repair_replaces_lone_surrogates_everywhere_and_keeps_the_rest() -> None:
    assert repair_text("ok 😀 \ud83d \udc00") == "ok 😀 \ufffd \ufffd"
    message = InboundMessage(
        "1",
        IdentityKind.TELEGRAM,
        "1",
        "a\ud83db",
        datetime.now(UTC),
        sender_name="N\udc00",
        meta={"k\ud83d": ["v\ud83d", {"x": float("nan")}]},
    )
    fixed = repaired(message)
    assert (fixed.body, fixed.sender_name) == ("a\ufffdb", "N\ufffd")
    assert fixed.meta == {"k\ufffd": ["v\ufffd", {"x": None}]} and "repaired" in fixed.flags
    clean = InboundMessage("2", IdentityKind.TELEGRAM, "1", "fine", datetime.now(UTC))
    assert repaired(clean) is clean


class RefusingSink(Sink):
    """A core that refuses, as data, any batch holding a message whose body says "poison"
    (as SQLite refuses text it cannot encode), and can fail a commit as a disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.disk_full = False

    async def deliver(self, messages: Sequence[InboundMessage], cursor: str | None) -> None:
        if self.disk_full:
            raise OSError("database or disk is full")
        if any("poison" in m.body for m in messages):
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        await super().deliver(messages, cursor)


async def test_a_message_the_core_refuses_is_kept_unreadable_and_the_rest_and_cursor_commit() -> None:
    sink = RefusingSink()
    batch = [
        InboundMessage(str(n), IdentityKind.VK, str(n), "poison" if n == 3 else f"fine {n}", datetime.now(UTC)) for n in range(6)
    ]
    await deliver_isolated(sink, batch, "cursor-6", raw_of=lambda m: {"id": m.external_id, "raw": True})
    assert [m.body for m in sink.messages if UNREADABLE not in m.flags] == [f"fine {n}" for n in (0, 1, 2, 4, 5)]
    [kept] = [m for m in sink.messages if UNREADABLE in m.flags]
    assert kept.external_id == "3" and kept.body.startswith("(unreadable message: it could not be stored: Python int too large")
    assert kept.attachments[0].data == b'{"id": "3", "raw": true}'
    assert sink.cursor == "cursor-6"
    # A fault that passes is not the message's fault: nothing is committed, it propagates.
    sink = RefusingSink()
    sink.disk_full = True
    with pytest.raises(OSError):
        await deliver_isolated(sink, batch[:2], "cursor-2")
    assert sink.messages == [] and sink.cursor is None
