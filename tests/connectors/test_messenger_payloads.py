"""Telegram, WhatsApp and VK payloads in the channels' documented shapes, through a real core.

Each test feeds a payload (tests/fixtures/payloads/, handed over with issue #14) to the real
connector over HTTP on 127.0.0.1 (tests/peers/*), with the real Hub storing it in a real Store,
and checks what an operator sees: the words, the customer, whether anyone waits. Also here:
reactions (kept on the message they are on, opening nothing) and inputs that must never jam a
channel (a lone UTF-16 surrogate, an update the client library cannot parse, a poisoned message
beside good ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.core.hub import Hub
from omniconsole.models import ConversationStatus, InboxView
from omniconsole.store import Store, customers
from tests.peers.graph_api import APP_SECRET, PHONE_NUMBER_ID, TOKEN, VERIFY_TOKEN, FakeGraphApi, Meta
from tests.peers.telegram_api import FakeBotApi, private_chat
from tests.peers.vk_api import FakeVkApi
from tests.rig import FAST, free_port, running_core

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "payloads"


def fixture(name: str, file: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name / file).read_text(encoding="utf-8"))


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    """The first truthy result of `check()`, or a failed test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"the core did not get there in time (last: {result!r})")
        await asyncio.sleep(0.02)


async def bodies(store: Store) -> dict[int, list[str]]:
    """Inbound bodies by conversation, for every conversation."""
    found: dict[int, list[str]] = {}
    for row in await store.inbox_page(InboxView.ALL, limit=1000) + await store.inbox_page(InboxView.RESOLVED, limit=1000):
        found[row.conversation_id] = [e.body for e in await store.timeline(row.conversation_id) if e.direction == "in"]
    return found


def core(tmp_path: Path, kind: str, options: dict[str, Any]) -> Settings:
    return Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        channels=[ChannelSettings(kind, kind.capitalize(), options)],
        listener=ListenerSettings(port=free_port()),
    )


@contextlib.asynccontextmanager
async def polling_core(settings: Settings, store: Store) -> AsyncIterator[Hub]:
    """The core on `store` for a channel that polls (no listener to wait for), once it holds
    the lease and the channel is up."""
    hub = Hub(settings, store, timing=FAST)
    task = asyncio.create_task(hub.run())
    try:
        await until(lambda: _channel_up(store, task))
        yield hub
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _channel_up(store: Store, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()
    return any(channel.health == "up" for channel in await store.channels())


# -- Telegram -------------------------------------------------------------------------------


@pytest.fixture
def bot_api() -> FakeBotApi:
    with FakeBotApi() as server:
        yield server


def telegram(bot_api: FakeBotApi, tmp_path: Path, **options: Any) -> Settings:
    return core(
        tmp_path,
        "telegram",
        {
            "token": bot_api.token,
            "base_url": bot_api.base_url,
            "base_file_url": bot_api.base_file_url,
            "poll_timeout": 1,
            **options,
        },
    )


def push_fixture_messages(bot_api: FakeBotApi, case: dict[str, Any]) -> None:
    customer = case["customer"]
    for message in case["messages"]:
        bot_api.push_update("message", {**message, "from": customer, "chat": private_chat(customer), "date": int(time.time())})


async def test_telegram_forwards_are_shown_as_forwarded_with_their_origin(bot_api: FakeBotApi, tmp_path: Path) -> None:
    """Payload 02: forwards from a user, a hidden user and a channel (`forward_origin`) are not
    the customer's own words: each says it is forwarded and from whom."""
    case = fixture("02-telegram-forward-origin", "updates.json")
    push_fixture_messages(bot_api, case)
    async with await Store.open(tmp_path / "core.db") as store, polling_core(telegram(bot_api, tmp_path), store):
        [texts] = (await until(lambda: _with_count(store, 4))).values()
    texts_by_id = dict(zip([m["message_id"] for m in case["messages"]], texts))
    assert texts_by_id[41] == "Look what your courier wrote to me"
    for message in case["messages"][1:]:
        shown = texts_by_id[message["message_id"]]
        origin = case["origins"][str(message["message_id"])]
        assert shown.startswith("Forwarded from ") and origin in shown.splitlines()[0], shown
        assert shown.splitlines()[1] == "> " + message["text"]
    assert "Courier Bystrov" in texts_by_id[42] and "hidden account" in texts_by_id[43]
    assert "channel Omni Shop News (Marketing)" in texts_by_id[44]


async def _with_count(store: Store, count: int) -> dict[int, list[str]] | None:
    found = await bodies(store)
    return found if sum(map(len, found.values())) >= count else None


async def test_telegram_text_links_keep_their_urls(bot_api: FakeBotApi, tmp_path: Path) -> None:
    """Payload 03: `text_link` entities keep their URL after the words ("text (URL)"); a
    `text_mention` keeps the user id; bold, a plain URL and an emoji before the link (UTF-16
    offsets) change nothing else."""
    case = fixture("03-telegram-text-link-url", "updates.json")
    push_fixture_messages(bot_api, case)
    customer = case["customer"]
    # "😀 " is 3 UTF-16 code units: the link's offset counts them as Telegram does.
    other = {
        "message_id": 53,
        "text": "😀 see here and ask Ivan, or https://example.org",
        "entities": [
            {"type": "bold", "offset": 0, "length": 2},
            {"type": "text_link", "offset": 7, "length": 4, "url": "https://example.org/here"},
            {"type": "text_mention", "offset": 20, "length": 4, "user": {"id": 777, "is_bot": False, "first_name": "Ivan"}},
            {"type": "url", "offset": 29, "length": 19},
        ],
    }
    bot_api.push_update("message", {**other, "from": customer, "chat": private_chat(customer), "date": int(time.time())})
    async with await Store.open(tmp_path / "core.db") as store, polling_core(telegram(bot_api, tmp_path), store):
        [texts] = (await until(lambda: _with_count(store, 3))).values()
    assert texts[0] == f"The tracking page says delivered, but nothing came. Track parcel ({case['urls']['51']})"
    assert texts[1] == f"This is the kettle ({case['urls']['52']}) I ordered"
    assert texts[2] == "😀 see here (https://example.org/here) and ask Ivan (Telegram user 777), or https://example.org"


async def test_telegram_reaction_to_our_reply_after_resolving_opens_nothing(bot_api: FakeBotApi, tmp_path: Path) -> None:
    """A 👍 on our reply after the conversation was resolved is recorded on that reply; the
    conversation stays resolved, no other opens, nobody waits. Taking it off is recorded too,
    and a reaction to a message we never knew is kept without opening anything."""
    customer = {"id": 5550901, "is_bot": False, "first_name": "Rita"}
    bot_api.push_message(customer, text="Is my order shipped?")
    async with await Store.open(tmp_path / "core.db") as store, polling_core(telegram(bot_api, tmp_path), store):
        [row] = await until(lambda: store.inbox_page(InboxView.ALL))
        reply = await store.queue_reply(row.conversation_id, "Yes, today", "alice")
        sent = await until(lambda: _sent(store, row.conversation_id, reply))
        await store.set_status(row.conversation_id, ConversationStatus.RESOLVED, "alice")
        chat_id, message_id = sent.external_id.split(":")
        reaction = {
            "chat": private_chat(customer),
            "message_id": int(message_id),
            "user": customer,
            "date": int(time.time()),
            "old_reaction": [],
            "new_reaction": [{"type": "emoji", "emoji": "👍"}],
        }
        bot_api.push_update("message_reaction", reaction)
        stored = await until(lambda: store.reactions(row.conversation_id))
        assert [(r.emoji, r.message_id) for r in stored[reply]] == [("👍", reply)]
        conversation = await store.conversation(row.conversation_id)
        assert conversation.status == "resolved" and conversation.waiting_since is None
        assert await store.inbox_page(InboxView.ALL) == []
        # Unknown target: kept, still nothing opens.
        bot_api.push_update("message_reaction", {**reaction, "message_id": 999, "date": int(time.time()) + 1})
        bot_api.push_update(
            "message_reaction",
            {**reaction, "new_reaction": [], "old_reaction": reaction["new_reaction"], "date": int(time.time()) + 2},
        )
        await until(lambda: _no_reactions(store, row.conversation_id))
        assert await store.inbox_page(InboxView.ALL) == []
        assert len(await store.inbox_page(InboxView.RESOLVED)) == 1
        unmatched = await store.db.run(
            lambda conn: conn.execute(
                "SELECT emoji, message_id FROM reactions WHERE target_external_id = ?", (f"{chat_id}:999",)
            ).fetchall()
        )
        unmatched = [tuple(row) for row in unmatched]
        assert unmatched == [("👍", None)]


async def _sent(store: Store, conversation_id: int, message_id: int) -> Any:
    return next((e for e in await store.timeline(conversation_id) if e.id == message_id and e.state == "sent"), None)


async def _no_reactions(store: Store, conversation_id: int) -> bool:
    return await store.reactions(conversation_id) == {}


async def test_a_poisoned_telegram_update_never_holds_up_the_twenty_after_it(bot_api: FakeBotApi, tmp_path: Path) -> None:
    """A lone UTF-16 surrogate ("\\ud83d") used to stall the channel: the batch and the offset
    never committed. Now it is stored repaired; an update python-telegram-bot cannot parse is
    kept as unreadable with its raw JSON; the 20 messages after them are stored and the offset
    moves past all of them."""
    poisoned = {"id": 5551000, "is_bot": False, "first_name": "Broken\ud83d"}
    bot_api.push_message(poisoned, text="half an emoji \ud83d here")
    unparsable = bot_api.message(poisoned, text="the date is not a number")
    unparsable["date"] = "yesterday"
    bot_api.push_update("message", unparsable)
    last = 0
    for number in range(20):
        sender = {"id": 5551100 + number, "is_bot": False, "first_name": f"Customer {number}"}
        last = bot_api.push_update("message", bot_api.message(sender, text=f"message {number}"))
    async with await Store.open(tmp_path / "core.db") as store, polling_core(telegram(bot_api, tmp_path), store):
        await until(lambda: _with_count(store, 22))
        found = await bodies(store)
        cursor = await store.cursor((await store.channels())[0].id)
    texts = sorted(body for texts in found.values() for body in texts)
    assert [t for t in texts if t.startswith("message ")] == sorted(f"message {n}" for n in range(20))
    assert "half an emoji \ufffd here" in texts
    [unreadable] = [t for t in texts if t.startswith("(unreadable message")]
    assert "Telegram message" in unreadable
    assert cursor == str(last + 1)


# -- WhatsApp -------------------------------------------------------------------------------


@pytest.fixture
def graph() -> FakeGraphApi:
    with FakeGraphApi() as server:
        yield server


def whatsapp(graph: FakeGraphApi, tmp_path: Path, **options: Any) -> Settings:
    return core(
        tmp_path,
        "whatsapp",
        {
            "token": TOKEN,
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            "phone_number_id": PHONE_NUMBER_ID,
            "graph_url": graph.url,
            **options,
        },
    )


def envelope(value: dict[str, Any]) -> dict[str, Any]:
    """A fixture's `value` in Meta's envelope, with our number's metadata."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100199", "phone_number_id": PHONE_NUMBER_ID},
        **value,
    }
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"value": value, "field": "messages"}]}]}


async def post(settings: Settings, payload: dict[str, Any]) -> int:
    meta = Meta(f"http://127.0.0.1:{settings.listener.port}/hooks/whatsapp")
    try:
        return (await meta.post(payload)).status_code
    finally:
        await meta.close()


async def test_a_whatsapp_user_known_only_by_business_scoped_id_is_stored_and_joined_later(
    graph: FakeGraphApi, tmp_path: Path
) -> None:
    """Payload 07: a username user (`from_user_id`, `contacts[].user_id`, no phone) used to be
    answered 200 and dropped. Stored under that id; a reply goes to it (`recipient`); when the
    same person later writes with their phone as well, the phone joins the same customer."""
    case = fixture("07-whatsapp-username-bsuid-no-phone", "webhook.json")
    settings = whatsapp(graph, tmp_path)
    async with await Store.open(tmp_path / "core.db") as store, running_core(settings, store):
        assert await post(settings, envelope(case["value"])) == 200
        [row] = await until(lambda: store.inbox_page(InboxView.ALL))
        [entry] = [e for e in await store.timeline(row.conversation_id) if e.direction == "in"]
        assert entry.body == "Hallo! Where is my order 8842? It was due yesterday."
        profile = await store.customer_profile(row.customer_id)
        assert profile.display_name == "Lina Kraus"
        assert [(i.kind, i.address) for i in profile.identities] == [("external", "whatsapp-user:DE.1502576394655843")]
        reply = await store.queue_reply(row.conversation_id, "It leaves today", "alice")
        await until(lambda: _sent(store, row.conversation_id, reply))
        [call] = graph.calls_of("messages")
        assert call.params["recipient"] == "DE.1502576394655843" and "to" not in call.params
        # Later the same person writes with a phone number too: the phone's customer is
        # suggested as the same person (never a silent merge, never a drop).
        later = json.loads(json.dumps(case["value"]))
        later["contacts"][0]["wa_id"] = "4915112345678"
        later["messages"][0].update(id="wamid.LATER", **{"from": "4915112345678"}, text={"body": "Any news?"})
        assert await post(settings, envelope(later)) == 200
        await until(lambda: _with_count(store, 2))
        by_phone = next(r for r in await store.inbox_page(InboxView.ALL) if r.customer_id != row.customer_id)
        suggested = await store.db.run(customers.suggestions, by_phone.customer_id)
        assert [s.other_id for s in suggested] == [row.customer_id]


async def test_a_phone_and_business_scoped_id_seen_together_make_later_id_only_messages_the_same_customer(
    graph: FakeGraphApi, tmp_path: Path
) -> None:
    """When a webhook carries both the phone (`from`, `wa_id`) and the business-scoped id, the id
    joins the phone's customer: a later message with only the id is the same person."""
    case = fixture("07-whatsapp-username-bsuid-no-phone", "webhook.json")
    both = json.loads(json.dumps(case["value"]))
    both["contacts"][0]["wa_id"] = "4915112345678"
    both["messages"][0].update(id="wamid.FIRST", **{"from": "4915112345678"}, text={"body": "Hi, it's Lina"})
    settings = whatsapp(graph, tmp_path)
    async with await Store.open(tmp_path / "core.db") as store, running_core(settings, store):
        assert await post(settings, envelope(both)) == 200
        await until(lambda: _with_count(store, 1))
        assert await post(settings, envelope(case["value"])) == 200  # the id only
        found = await until(lambda: _with_count(store, 2))
        [row] = await store.inbox_page(InboxView.ALL)
        profile = await store.customer_profile(row.customer_id)
    assert list(found.values()) == [["Hi, it's Lina", "Hallo! Where is my order 8842? It was due yesterday."]]
    assert sorted(i.address for i in profile.identities) == ["+4915112345678", "whatsapp-user:DE.1502576394655843"]


async def test_a_whatsapp_flow_response_shows_the_answers(graph: FakeGraphApi, tmp_path: Path) -> None:
    """Payload 10: an `nfm_reply` gave an empty body; the form's answers are shown, the flow
    token is not."""
    case = fixture("10-whatsapp-flow-nfm-reply", "webhook.json")
    settings = whatsapp(graph, tmp_path)
    async with await Store.open(tmp_path / "core.db") as store, running_core(settings, store):
        assert await post(settings, envelope(case["value"])) == 200
        [texts] = (await until(lambda: _with_count(store, 1))).values()
    assert texts == ["Form answers:\norder number: A-7731\nreason: Wrong size\npickup date: 2026-12-03"]


async def test_whatsapp_group_messages_are_skipped_unless_configured_then_the_group_is_answered(
    graph: FakeGraphApi, tmp_path: Path
) -> None:
    """Payload 12: a group message became a private waiting chat and the reply went privately to
    the member. Skipped by default (answered 200, nothing opens); with `groups = true` the group
    is the customer and the reply goes to the group."""
    case = fixture("12-whatsapp-group-message", "webhook.json")
    group = case["value"]["messages"][0]["group_id"]
    settings = whatsapp(graph, tmp_path)
    async with await Store.open(tmp_path / "core.db") as store:
        async with running_core(settings, store):
            assert await post(settings, envelope(case["value"])) == 200
            await asyncio.sleep(0.2)
            assert await store.inbox_page(InboxView.ALL) == []
        settings = whatsapp(graph, tmp_path, groups=True)
        async with running_core(settings, store):
            assert await post(settings, envelope(case["value"])) == 200
            [row] = await until(lambda: store.inbox_page(InboxView.ALL))
            [entry] = [e for e in await store.timeline(row.conversation_id) if e.direction == "in"]
            assert entry.body == "Lucia: Hi all, does the pickup point close at 19:00 today?"
            profile = await store.customer_profile(row.customer_id)
            assert [(i.kind, i.address) for i in profile.identities] == [("external", f"whatsapp-group:{group}")]
            reply = await store.queue_reply(row.conversation_id, "Until 20:00 today", "alice")
            await until(lambda: _sent(store, row.conversation_id, reply))
    [call] = graph.calls_of("messages")
    assert (call.params["recipient_type"], call.params["to"]) == ("group", group)


async def test_a_whatsapp_reaction_after_resolving_is_kept_on_our_reply_and_opens_nothing(
    graph: FakeGraphApi, tmp_path: Path
) -> None:
    """Issue #14: a 👍 to our reply after the conversation was resolved opened a new waiting
    conversation whose content was "Reacted 👍". Now it is recorded on the reply; nothing opens,
    nobody waits; a redelivered webhook changes nothing; a welcome request opens nothing."""
    settings = whatsapp(graph, tmp_path)
    meta = Meta(f"http://127.0.0.1:{settings.listener.port}/hooks/whatsapp")
    try:
        async with await Store.open(tmp_path / "core.db") as store, running_core(settings, store):
            assert (await meta.post(meta.payload([meta.message("79991234567", body="Where is it?")]))).status_code == 200
            [row] = await until(lambda: store.inbox_page(InboxView.ALL))
            reply = await store.queue_reply(row.conversation_id, "On its way", "alice")
            sent = await until(lambda: _sent(store, row.conversation_id, reply))
            await store.set_status(row.conversation_id, ConversationStatus.RESOLVED, "alice")
            reaction = meta.message("79991234567", "reaction", message_id=sent.external_id, emoji="👍")
            payload = meta.payload([reaction])
            assert (await meta.post(payload)).status_code == 200
            assert (await meta.post(payload)).status_code == 200  # Meta delivers it again
            welcome = meta.message("79991234567", "request_welcome")
            assert (await meta.post(meta.payload([welcome]))).status_code == 200
            stored = await until(lambda: store.reactions(row.conversation_id))
            assert [r.emoji for r in stored[reply]] == ["👍"]
            assert await store.inbox_page(InboxView.ALL) == []
            conversation = await store.conversation(row.conversation_id)
            assert conversation.status == "resolved" and conversation.waiting_since is None
            events = [e.kind for e in await store.events_since(0, limit=10_000)]
            assert events.count("message.reacted") == 1 and events.count("conversation.opened") == 1
    finally:
        await meta.close()


async def test_a_whatsapp_webhook_with_a_poisoned_message_stores_the_good_one_and_answers_200(
    graph: FakeGraphApi, tmp_path: Path
) -> None:
    """A webhook with a good message and a poisoned one (a lone surrogate in the text and in
    the profile name) was answered 503 until Meta gave up, losing both. Now both are stored
    (the poisoned one repaired) and Meta gets 200; JSON nested past any sense gets 400."""
    settings = whatsapp(graph, tmp_path)
    meta = Meta(f"http://127.0.0.1:{settings.listener.port}/hooks/whatsapp")
    try:
        async with await Store.open(tmp_path / "core.db") as store, running_core(settings, store):
            good = meta.message("79991234567", body="a good message")
            bad = meta.message("447700900123", body="broken \ud83d emoji")
            answer = await meta.post(meta.payload([good, bad], names={"447700900123": "Olga\udc00"}))
            assert answer.status_code == 200, answer.text
            found = await until(lambda: _with_count(store, 2))
            assert sorted(body for texts in found.values() for body in texts) == ["a good message", "broken \ufffd emoji"]
            deep = b"[" * 5000 + b"]" * 5000
            assert (await meta.post(None, raw=deep)).status_code == 400
    finally:
        await meta.close()


# -- VK -------------------------------------------------------------------------------------


@pytest.fixture
def vk_api() -> FakeVkApi:
    with FakeVkApi() as server:
        yield server


def vk(vk_api: FakeVkApi, tmp_path: Path) -> Settings:
    return core(
        tmp_path, "vk", {"token": vk_api.token, "group_id": vk_api.group["id"], "api_url": vk_api.api_url, "poll_wait": 1}
    )


async def vk_case(vk_api: FakeVkApi, tmp_path: Path, name: str) -> tuple[Store, list[Any]]:
    """Push one VK fixture's message through a real core; (store, the conversation's inbound entries)."""
    case = fixture(name, "event.json")
    person = case["user"]
    vk_api.add_user(person["id"], person["first_name"], person["last_name"])
    store = await Store.open(tmp_path / "core.db")
    async with polling_core(vk(vk_api, tmp_path), store):
        message = dict(case["message"])
        text = message.pop("text", "")
        vk_api.push_message(person["id"], text, **message)
        entries = await until(lambda: _entries(store))
    return store, entries


async def _entries(store: Store) -> list[Any] | None:
    rows = await store.inbox_page(InboxView.ALL) + await store.inbox_page(InboxView.RESOLVED)
    for row in rows:
        entries = await store.timeline(row.conversation_id)
        if entries:
            return entries
    return None


async def test_a_vk_place_shows_its_name_and_coordinates(vk_api: FakeVkApi, tmp_path: Path) -> None:
    """Payload 18: a message with only `geo` gave an empty body."""
    store, entries = await vk_case(vk_api, tmp_path, "18-vk-geo-location")
    try:
        assert [e.body for e in entries if e.direction == "in"] == ["Location: Nevsky prospekt, 28 (59.93428, 30.335099)"]
    finally:
        await store.close()


async def test_the_vk_start_button_is_an_origin_and_nobody_waits(vk_api: FakeVkApi, tmp_path: Path) -> None:
    """Payload 19: «Начать» (`payload {"command":"start"}`) was a waiting customer message; now
    it is what Telegram's /start is: an event on the timeline, and nobody waits."""
    store, entries = await vk_case(vk_api, tmp_path, "19-vk-start-button")
    try:
        assert [(e.direction, e.body) for e in entries if e.direction in ("in", "event") and e.body == "started the chat"] == [
            ("event", "started the chat")
        ]
        [row] = await store.inbox_page(InboxView.ALL)
        assert (await store.conversation(row.conversation_id)).waiting_since is None
    finally:
        await store.close()


async def test_a_vk_wall_repost_shows_the_reposted_text(vk_api: FakeVkApi, tmp_path: Path) -> None:
    """Payload 20: a wall repost (`copy_history`) showed only a link."""
    store, entries = await vk_case(vk_api, tmp_path, "20-vk-wall-repost-copy-history")
    try:
        [body] = [e.body for e in entries if e.direction == "in"]
    finally:
        await store.close()
    lines = body.splitlines()
    assert lines[0] == "Это ещё действует?"
    assert lines[1] == "Shared post https://vk.com/wall4410301_3301"
    assert lines[2] == "> Reposted from club218000222 (https://vk.com/wall-218000222_98):"
    assert lines[3] == "> > Распродажа чайников: -30% на всё до воскресенья по промокоду KETTLE30"


async def test_a_poisoned_vk_message_never_holds_up_the_twenty_after_it(vk_api: FakeVkApi, tmp_path: Path) -> None:
    """VK's equivalent of the stalled Telegram channel: a lone surrogate in one message, then 20
    messages from other customers: all are stored, the poisoned one repaired."""
    for number in range(21):
        vk_api.add_user(3000 + number, f"Customer {number}")
    async with await Store.open(tmp_path / "core.db") as store, polling_core(vk(vk_api, tmp_path), store):
        vk_api.push_message(
            3000, "broken \ud83d emoji", attachments=[{"type": "wall", "wall": {"id": 1, "owner_id": 5, "text": "\udc00"}}]
        )
        for number in range(1, 21):
            vk_api.push_message(3000 + number, f"message {number}")
        found = await until(lambda: _with_count(store, 21))
    texts = sorted(body for texts in found.values() for body in texts)
    assert [t for t in texts if t.startswith("message ")] == sorted(f"message {n}" for n in range(1, 21))
    assert "broken \ufffd emoji\nShared post https://vk.com/wall5_1\n> \ufffd" in texts
