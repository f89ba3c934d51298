"""The VK connector against a VK API server on 127.0.0.1 (tests/peers/vk_api.py).

The connector really talks HTTP (httpx) to the fake server: methods, the Bots Long Poll,
uploads and file downloads; nothing of ours is mocked. The sink stands in for the core: it
commits a batch and its cursor atomically, and can fail a commit on request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ChannelContext, InboundMessage, OutboundMessage, PermanentError, TransientError
from connectors.vk import TOO_LARGE, VkConnector, random_id, split_text
from omniconsole.config import ChannelSettings, Settings
from omniconsole.core.hub import Hub, HubTiming
from omniconsole.models import IdentityKind, InboxView
from omniconsole.store import Store
from tests.peers.vk_api import GROUP, FakeVkApi
from tests.waiting import eventually as wait_until

# The fake answers at once: a tighter bound and poll than the default.
# Generous: only a failing test waits it out, and a loaded CI machine can be slow.
eventually = functools.partial(wait_until, timeout=15.0, poll=0.01)

# Binary content with every byte value, CR LF pairs included, to catch mangled transfers.
BINARY = bytes(range(256)) * 8 + b"\r\n--boundary\r\n\r\n"
COMMUNITY = f"community «{GROUP['name']}» (club{GROUP['id']})"
CHAT = 2_000_000_001  # a group chat's peer id


class CommitFailed(Exception):
    """What a core's failed transaction looks like to the connector: not a ConnectorError."""


class RecordingSink:
    """An InboundSink that commits each batch and its cursor together, like the core."""

    def __init__(self, cursor: str | None = None) -> None:
        self._cursor = cursor
        self.messages: list[InboundMessage] = []
        self.deliveries: list[tuple[int, str | None]] = []
        self.connected_details: list[str] = []
        self.fail_commits = 0

    @property
    def cursor(self) -> str | None:
        return self._cursor

    async def deliver(self, messages: Sequence[InboundMessage], cursor: str | None) -> None:
        await asyncio.sleep(0)  # a commit takes time; a cancel can land before it is durable
        if self.fail_commits:
            self.fail_commits -= 1
            raise CommitFailed("disk I/O error")
        self.messages.extend(messages)  # both in one step: the transaction
        self._cursor = cursor
        self.deliveries.append((len(messages), cursor))

    async def delivery_updates(self, updates: Sequence[Any]) -> None:
        pass

    def connected(self, detail: str = "") -> None:
        self.connected_details.append(detail)

    def bodies(self) -> list[str]:
        return [message.body for message in self.messages]


@pytest.fixture
def api() -> FakeVkApi:
    with FakeVkApi() as server:
        server.add_user(1001, "Иван", "Петров", "ivanp")
        server.add_user(1002, "Olga", "Smirnova")
        yield server


def make_connector(api: FakeVkApi, tmp_path: Path, **options: Any) -> VkConnector:
    settings = {"token": api.token, "group_id": GROUP["id"], "api_url": api.api_url, "poll_wait": 1, **options}
    return VkConnector(ChannelContext(channel_id=1, name="vk", settings=settings, data_dir=tmp_path))


@contextlib.asynccontextmanager
async def running(connector: VkConnector, sink: RecordingSink) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(connector.run(sink))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await connector.close()


async def started(api: FakeVkApi, tmp_path: Path) -> RecordingSink:
    """A sink whose first run has committed the channel's starting position."""
    sink = RecordingSink()
    async with running(make_connector(api, tmp_path), sink) as task:
        await eventually(lambda: task.done() or sink.connected_details != [])
    return sink


async def receive(api: FakeVkApi, sink: RecordingSink, tmp_path: Path, until: Callable[[], bool], **options: Any) -> None:
    """Run a connector from the sink's cursor until `until()` holds."""
    async with running(make_connector(api, tmp_path, **options), sink) as task:
        await eventually(lambda: task.done() or until())
        if task.done():
            task.result()


async def receive_one(
    api: FakeVkApi, tmp_path: Path, text: str = "", options: dict[str, Any] | None = None, **fields: Any
) -> InboundMessage:
    """Push one message from Ivan (with message `fields`) and receive it."""
    sink = await started(api, tmp_path)
    api.push_message(1001, text, **fields)
    await receive(api, sink, tmp_path, lambda: len(sink.messages) == 1, **(options or {}))
    return sink.messages[0]


def outbound(body: str = "", **fields: Any) -> OutboundMessage:
    defaults: dict[str, Any] = {"id": 1, "conversation_id": 1, "identity_kind": IdentityKind.VK, "address": "1001"}
    return OutboundMessage(body=body, **{**defaults, **fields})


async def send(api: FakeVkApi, tmp_path: Path, *messages: OutboundMessage) -> list[Any]:
    connector = make_connector(api, tmp_path)
    try:
        return [await connector.send(message) for message in messages]
    finally:
        await connector.close()


# -- inbound -------------------------------------------------------------------------------


async def test_text_message_names_the_customer(api: FakeVkApi, tmp_path: Path) -> None:
    sink = await started(api, tmp_path)
    assert sink.connected_details == [COMMUNITY]
    assert sink.deliveries and sink.deliveries[0][0] == 0  # the starting position, committed at once
    sent = api.push_message(1001, "Здравствуйте [b]x[/b] \x1b]0;t\x07")
    await receive(api, sink, tmp_path, lambda: len(sink.messages) == 1)

    [received] = sink.messages
    assert received.external_id == str(sent["id"])
    assert received.identity_kind is IdentityKind.VK and received.address == "1001"
    assert received.sender_name == "Иван Петров"
    assert received.body == "Здравствуйте [b]x[/b] \x1b]0;t\x07"  # as sent; the core sanitises
    assert received.sent_at.timestamp() == sent["date"] and received.sent_at.utcoffset().total_seconds() == 0
    assert received.meta == {"peer_id": 1001, "message_id": sent["id"], "screen_name": "ivanp"}
    assert received.edited_at is None and received.reply_to_external_id is None
    assert json.loads(sink.cursor)["last_id"] == sent["id"]


async def test_names_come_from_one_users_get_per_batch_and_are_cached(api: FakeVkApi, tmp_path: Path) -> None:
    sink = await started(api, tmp_path)
    for user, text in ((1001, "a"), (1002, "b"), (1001, "c")):
        api.push_message(user, text)
    connector = make_connector(api, tmp_path)
    async with running(connector, sink):
        await eventually(lambda: len(sink.messages) == 3)
        [first_call] = api.calls_of("users.get")
        assert sorted(first_call.params["user_ids"].split(",")) == ["1001", "1002"]
        api.add_user(1003, "Пётр", "")
        api.push_message(1002, "again")
        api.push_message(1003, "new customer")
        await eventually(lambda: len(sink.messages) == 5)
    assert [m.sender_name for m in sink.messages] == ["Иван Петров", "Olga Smirnova", "Иван Петров", "Olga Smirnova", "Пётр"]
    assert [call.params["user_ids"] for call in api.calls_of("users.get")][1:] == ["1003"]


async def test_a_failed_users_get_still_delivers_the_message(api: FakeVkApi, tmp_path: Path) -> None:
    sink = await started(api, tmp_path)
    api.fail_next("users.get", 10)
    api.push_message(1002, "no name yet")
    await receive(api, sink, tmp_path, lambda: len(sink.messages) == 1)
    assert sink.messages[0].sender_name == "" and sink.messages[0].body == "no name yet"


async def test_photo_document_voice_and_sticker_are_downloaded(api: FakeVkApi, tmp_path: Path) -> None:
    attachments = [
        api.photo(BINARY, owner_id=1001, photo_id=456239017),
        api.doc(BINARY[::-1], "счёт", "pdf", owner_id=1001, doc_id=66001),
        api.audio_message(b"OggS voice", owner_id=1001, audio_id=77001, duration=67, transcript="где мой заказ"),
        api.sticker(b"\x89PNG sticker", sticker_id=163),
    ]
    received = await receive_one(api, tmp_path, text="see attached", attachments=attachments)

    photo, doc, voice, sticker = received.attachments
    assert (photo.filename, photo.mime_type, photo.data, photo.note) == ("photo1001_456239017.jpg", "image/jpeg", BINARY, "")
    assert (doc.filename, doc.mime_type, doc.data, doc.size) == ("счёт.pdf", "application/pdf", BINARY[::-1], len(BINARY))
    assert (voice.filename, voice.mime_type, voice.data) == ("voice1001_77001.ogg", "audio/ogg", b"OggS voice")
    assert (sticker.filename, sticker.mime_type, sticker.data) == ("sticker_163.png", "image/png", b"\x89PNG sticker")
    assert received.body == "see attached\n[voice message, 1:07] где мой заказ\n[sticker]"
    assert received.meta["kinds"] == ["photo", "doc", "audio_message", "sticker"]


async def test_wall_share_reply_and_forwards_read_as_text(api: FakeVkApi, tmp_path: Path) -> None:
    sink = await started(api, tmp_path)
    api.allow_messages(1001)
    ours = await send(api, tmp_path, outbound("Ваш заказ готов"))
    api.add_user(1004, "Anna", "K")
    replied = api.messages[int(ours[0].external_id)]
    nested = {"from_id": 1004, "date": 1, "text": "inner", "attachments": [], "fwd_messages": []}
    forwarded = {
        "from_id": 1002,
        "date": 1,
        "text": "line one\nline two",
        "attachments": [api.photo(b"forwarded photo", owner_id=1002, photo_id=9)],
        "fwd_messages": [nested],
    }
    reply_message = {k: replied[k] for k in ("id", "date", "from_id", "peer_id", "text")}
    api.push_message(1001, "Спасибо!", reply_message=reply_message, fwd_messages=[forwarded])
    api.push_message(1001, "", attachments=[api.wall(-GROUP["id"], 42, "Sale!\nAll week")])
    await receive(api, sink, tmp_path, lambda: len(sink.messages) == 2)

    reply, wall = sink.messages
    assert reply.reply_to_external_id == ours[0].external_id
    assert reply.body == (
        f"> {GROUP['name']}:\n> Ваш заказ готов\nСпасибо!\n"
        "Forwarded from Olga Smirnova:\n> line one\n> line two\n> Forwarded from Anna K:\n> > inner"
    )
    assert [a.data for a in reply.attachments] == [b"forwarded photo"]  # a forwarded receipt is kept
    assert wall.body == f"Shared post https://vk.com/wall-{GROUP['id']}_42\n> Sale!\n> All week"
    assert wall.attachments == ()
    # One users.get for the sender and every quoted or forwarded author.
    assert sorted(api.calls_of("users.get")[0].params["user_ids"].split(",")) == ["1001", "1002", "1004"]


async def test_files_over_the_cap_are_recorded_not_downloaded(api: FakeVkApi, tmp_path: Path) -> None:
    big = bytes(5000)
    declared = api.doc(big, "big", "zip", owner_id=1001, doc_id=1)
    photo = api.photo(big, owner_id=1001, photo_id=2)  # photos declare no size: cut while streaming
    received = await receive_one(
        api, tmp_path, attachments=[declared, photo, api.doc(b"ok", "small", "txt", 1001, 3)], options={"max_file_mb": 0.004}
    )
    big_doc, big_photo, small = received.attachments
    assert (big_doc.data, big_doc.size, big_doc.note) == (None, 5000, TOO_LARGE)
    assert (big_photo.data, big_photo.note) == (None, TOO_LARGE)
    assert small.data == b"ok"
    assert "doc1.zip" not in api.downloads  # its declared size was enough to say no


async def test_a_gone_file_is_a_note_and_a_failing_file_server_is_retried(api: FakeVkApi, tmp_path: Path) -> None:
    sink = await started(api, tmp_path)
    gone = api.doc(b"x", "gone", "txt", owner_id=1001, doc_id=5)
    gone["doc"]["url"] = api.origin + "/files/nothing-here"
    flaky = api.photo(BINARY, owner_id=1001, photo_id=6)
    api.fail_file("photo6_w.jpg", 502)
    api.push_message(1001, "files", attachments=[gone, flaky])

    connector = make_connector(api, tmp_path)
    with pytest.raises(TransientError, match="downloading photo1001_6.jpg from VK failed: HTTP 502"):
        await connector.run(sink)
    await connector.close()
    assert sink.messages == []  # nothing confirmed: the events come again
    await receive(api, sink, tmp_path, lambda: len(sink.messages) == 1)
    note, photo = sink.messages[0].attachments
    assert (note.data, note.note) == (None, "not downloaded: VK answered HTTP 404")
    assert photo.data == BINARY

    # A file server that keeps failing does not hold the channel back for ever.
    api.fail_file("photo7_w.jpg", 500, times=10)
    api.push_message(1001, "again", attachments=[api.photo(BINARY, owner_id=1001, photo_id=7)])
    connector = make_connector(api, tmp_path)
    for _ in range(2):
        with pytest.raises(TransientError):
            await connector.run(sink)
    async with running(connector, sink):
        await eventually(lambda: len(sink.messages) == 2)
    assert sink.messages[1].attachments[0].note == "not downloaded: VK's file server failed 3 times (HTTP 500)"


async def test_an_edit_keeps_the_external_id_and_says_when(api: FakeVkApi, tmp_path: Path) -> None:
    sink = await started(api, tmp_path)
    original = api.push_message(1001, "2 пиццы", attachments=[api.photo(b"p", 1001, 8)])
    edited = api.push_edit(original, "3 пиццы")
    await receive(api, sink, tmp_path, lambda: len(sink.messages) == 2)
    first, second = sink.messages
    assert first.external_id == second.external_id == str(original["id"])
    assert (first.body, second.body) == ("2 пиццы", "3 пиццы")
    assert first.edited_at is None and second.edited_at is not None
    assert second.edited_at.timestamp() == edited["update_time"]
    assert len(first.attachments) == 1 and second.attachments == ()  # an edit changes the text only


async def test_odd_events_and_malformed_answers_are_skipped(api: FakeVkApi, tmp_path: Path) -> None:
    sink = await started(api, tmp_path)
    start = json.loads(str(sink.cursor))["ts"]
    api.allow_messages(1001)  # message_allow
    await send(api, tmp_path, outbound("our reply"))  # message_reply: our own message
    api.push_event("wall_post_new", {"id": 1, "owner_id": -GROUP["id"], "text": "news"})  # not taken
    api.push_event("message_new", "not an object")
    api.push_event("message_new", {"message": {"id": "x", "text": "no ids"}})
    api.push_event("message_new", {"message": {"id": 99, "from_id": 1001, "peer_id": CHAT, "text": "in a chat", "date": 1}})
    connector = make_connector(api, tmp_path)
    async with running(connector, sink):
        await eventually(lambda: json.loads(str(sink.cursor))["ts"] != start)
        assert sink.messages == []
        api.next_poll_raw(b"<html>not json")
        api.next_poll_raw(b'{"ts": "1"')
        later = api.push_message(1001, "still here")
        await eventually(lambda: len(sink.messages) == 1)
    assert sink.messages[0].external_id == str(later["id"])


async def test_only_unreadable_answers_in_a_row_are_a_fault(api: FakeVkApi, tmp_path: Path) -> None:
    sink = await started(api, tmp_path)
    for _ in range(3):
        api.next_poll_raw(b"garbage")
    connector = make_connector(api, tmp_path)
    try:
        with pytest.raises(TransientError, match="3 unreadable answers in a row"):
            await connector.run(sink)
        api.next_poll_raw(b"", status=502)
        with pytest.raises(TransientError, match="long poll server is unavailable: HTTP 502"):
            await connector.run(sink)
    finally:
        await connector.close()


# -- long poll failures and gaps -----------------------------------------------------------


async def test_failed_2_takes_a_new_key_and_keeps_the_ts(api: FakeVkApi, tmp_path: Path) -> None:
    sink = await started(api, tmp_path)
    async with running(make_connector(api, tmp_path), sink):
        await eventually(lambda: len(api.calls_of("groups.getLongPollServer")) == 2)
        api.expire_key()
        first = api.push_message(1001, "after the key expired")
        await eventually(lambda: len(sink.messages) == 1)
        assert len(api.calls_of("groups.getLongPollServer")) == 3
        second = api.push_message(1002, "and again")
        await eventually(lambda: len(sink.messages) == 2)
    assert [m.external_id for m in sink.messages] == [str(first["id"]), str(second["id"])]
    # The ts was still good: no history had to be read.
    assert len(api.calls_of("messages.getHistory")) == 0


async def test_failed_3_takes_a_new_key_and_recovers_what_was_lost(api: FakeVkApi, tmp_path: Path) -> None:
    sink = await started(api, tmp_path)
    async with running(make_connector(api, tmp_path), sink):
        await eventually(lambda: len(api.calls_of("groups.getLongPollServer")) == 2)
        lost = api.push_message(1001, "lost with the key", silently=True)
        api.lose_key()
        await eventually(lambda: len(sink.messages) == 1)
        after = api.push_message(1001, "after")
        await eventually(lambda: len(sink.messages) == 2)
    assert [m.external_id for m in sink.messages] == [str(lost["id"]), str(after["id"])]
    assert sink.messages[0].sender_name == "Иван Петров"


async def test_failed_1_recovers_the_gap_from_the_history_once(api: FakeVkApi, tmp_path: Path) -> None:
    sink = await started(api, tmp_path)
    before = api.push_message(1001, "before")
    await receive(api, sink, tmp_path, lambda: len(sink.messages) == 1)
    # While the core is away, customers write and we answer; then VK drops its event history.
    gap = [api.push_message(1001, "gap 1"), api.push_message(1002, "gap 2")]
    await send(api, tmp_path, outbound("our answer in the gap", id=50))
    gap.append(api.push_message(1001, "gap 3"))
    api.forget_events()
    api.fail_next("messages.getHistory", 10)  # the first try fails transiently: nothing moves
    connector = make_connector(api, tmp_path)
    with pytest.raises(TransientError, match="internal error"):
        await connector.run(sink)
    await connector.close()
    assert len(sink.messages) == 1
    during: list[dict[str, Any]] = []
    # A message that arrives while the history is read is in the history and in the events.
    api.before_next("messages.getConversations", lambda: during.append(api.push_message(1002, "during recovery")))
    after_gap: list[dict[str, Any]] = []
    async with running(make_connector(api, tmp_path), sink):
        await eventually(lambda: len(sink.messages) == 5)
        after_gap.append(api.push_message(1001, "after"))
        await eventually(lambda: len(sink.messages) == 6)
        await asyncio.sleep(0.2)  # anything delivered twice would arrive now
    expected = [before, *gap, *during, *after_gap]
    assert [m.external_id for m in sink.messages] == [str(m["id"]) for m in expected]
    assert sink.bodies() == ["before", "gap 1", "gap 2", "gap 3", "during recovery", "after"]
    assert sink.messages[2].sender_name == "Olga Smirnova"


async def test_an_unrecoverable_gap_is_said_plainly(api: FakeVkApi, tmp_path: Path) -> None:
    sink = await started(api, tmp_path)
    api.push_message(1001, "lost")
    api.forget_events()
    api.fail_next("messages.getConversations", 15, "Access denied: no access to call this method")
    async with running(make_connector(api, tmp_path), sink):
        await eventually(lambda: any("lost" in detail for detail in sink.connected_details))
        after = api.push_message(1001, "after")
        await eventually(lambda: len(sink.messages) == 1)
    assert sink.messages[0].external_id == str(after["id"])
    detail = sink.connected_details[-1]
    assert detail.startswith(COMMUNITY)
    assert "VK lost its event history for a while" in detail
    assert "VK refused to show the message history: VK denied access" in detail
    assert "Check the community's messages in VK" in detail


# -- nothing lost, nothing doubled ---------------------------------------------------------


async def test_a_failed_commit_is_delivered_again(api: FakeVkApi, tmp_path: Path) -> None:
    sink = await started(api, tmp_path)
    committed = sink.cursor
    message = api.push_message(1001, "once")
    sink.fail_commits = 1
    connector = make_connector(api, tmp_path)
    with pytest.raises(CommitFailed):
        await connector.run(sink)
    await connector.close()
    assert sink.messages == [] and sink.cursor == committed
    await receive(api, sink, tmp_path, lambda: len(sink.messages) == 1)
    await asyncio.sleep(0.1)
    assert [m.external_id for m in sink.messages] == [str(message["id"])]


async def test_restarts_in_the_middle_of_a_stream_store_every_message_once(api: FakeVkApi, tmp_path: Path) -> None:
    total = 80
    for n in range(5):
        api.add_user(3000 + n, f"Customer {n}")
    sink = await started(api, tmp_path)
    expected: list[str] = []

    async def customers_write() -> None:
        for number in range(total):
            expected.append(str(api.push_message(3000 + number % 5, f"message {number}")["id"]))
            await asyncio.sleep(0.01)  # customers write over about a second, across many restarts

    rng = random.Random(7)
    writer = asyncio.create_task(customers_write())
    runs = 0
    give_up = time.monotonic() + 40
    while not writer.done() or len(sink.messages) < total:
        runs += 1
        if runs % 3 == 0:
            sink.fail_commits = 1  # the core's transaction fails: the position must not move
        # A new connector each time, as after a crash: it knows only the committed cursor.
        connector = make_connector(api, tmp_path)
        task = asyncio.create_task(connector.run(sink))
        if runs % 4 == 0:
            # On a slow machine every random stop may come before the first delivery; let
            # every fourth run commit something so the stream always makes progress.
            sink.fail_commits = 0
            delivered = len(sink.deliveries)
            await eventually(
                lambda: task.done() or len(sink.deliveries) > delivered or writer.done() and len(sink.messages) == total,  # noqa: B023
                timeout=20,
            )
        await asyncio.wait([task], timeout=rng.uniform(0.0, 0.15))
        if task.done():
            assert isinstance(task.exception(), CommitFailed), task.exception()
        else:
            task.cancel()  # stop at whatever await it is in
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await connector.close()
        assert time.monotonic() < give_up, f"the stream never completed: {len(sink.messages)} of {total} after {runs} runs"
    await writer

    counts = Counter(message.external_id for message in sink.messages)
    assert sorted(counts) == sorted(expected)
    assert max(counts.values()) == 1, [key for key, count in counts.items() if count > 1]
    assert sink.bodies() == [f"message {n}" for n in range(total)]  # in order
    assert runs > 5


# -- outbound ------------------------------------------------------------------------------


async def test_text_goes_to_the_peer_with_a_random_id_from_our_id(api: FakeVkApi, tmp_path: Path) -> None:
    api.push_message(1001, "hi")
    [result] = await send(api, tmp_path, outbound("Добрый день!", id=77, meta={"peer_id": 1001}))
    [call] = api.calls_of("messages.send")
    assert call.params["peer_id"] == "1001" and call.params["message"] == "Добрый день!"
    assert call.params["random_id"] == str(random_id(77, 0))
    [posted] = api.sent(1001)
    assert result.external_id == str(posted["id"]) and posted["text"] == "Добрый день!"


async def test_a_reply_quotes_the_customers_message(api: FakeVkApi, tmp_path: Path) -> None:
    asked = api.push_message(1001, "how much?")
    await send(api, tmp_path, outbound("500 ₽", reply_to_external_id=str(asked["id"])))
    assert api.sent(1001)[0]["reply_message"]["id"] == asked["id"]


async def test_long_text_is_split_in_order(api: FakeVkApi, tmp_path: Path) -> None:
    api.push_message(1001, "hi")
    body = "\n".join(f"строка {n:05d} " + "ж" * 80 for n in range(120))  # ~11,000 characters
    [result] = await send(api, tmp_path, outbound(body, id=3))
    texts = [message["text"] for message in api.sent(1001)]
    assert len(texts) == 3 and all(len(text) <= 4096 for text in texts)
    assert "\n".join(texts) == body
    random_ids = [call.params["random_id"] for call in api.calls_of("messages.send")]
    assert len(set(random_ids)) == 3
    assert result.external_id == str(api.sent(1001)[0]["id"])


async def test_files_are_uploaded_as_document_and_photo(api: FakeVkApi, tmp_path: Path) -> None:
    api.push_message(1001, "send me the invoice")
    document, photo = tmp_path / "invoice.pdf", tmp_path / "receipt.png"
    document.write_bytes(BINARY)
    photo.write_bytes(BINARY[::-1])
    [result] = await send(api, tmp_path, outbound("Here you are", id=9, attachments=(document, photo)))

    [posted] = api.sent(1001)
    assert posted["text"] == "Here you are" and result.external_id == str(posted["id"])
    doc, picture = posted["attachments"]
    assert doc["type"] == "doc" and doc["doc"]["title"] == "invoice.pdf"
    assert picture["type"] == "photo"
    assert api.calls_of("docs.getMessagesUploadServer")[0].params["peer_id"] == "1001"
    assert api.calls_of("docs.getMessagesUploadServer")[0].params["type"] == "doc"
    assert api.saved_file(doc) == ("invoice.pdf", BINARY)
    assert api.saved_file(picture) == ("receipt.png", BINARY[::-1])
    attachment = api.calls_of("messages.send")[0].params["attachment"]
    assert attachment.startswith(f"doc-{GROUP['id']}_") and f",photo-{GROUP['id']}_" in attachment


async def test_a_missing_file_or_nothing_to_send_is_permanent(api: FakeVkApi, tmp_path: Path) -> None:
    connector = make_connector(api, tmp_path)
    try:
        with pytest.raises(PermanentError, match="gone.pdf"):
            await connector.send(outbound("see file", attachments=(tmp_path / "gone.pdf",)))
        with pytest.raises(PermanentError, match="nothing to send"):
            await connector.send(outbound("   "))
        with pytest.raises(PermanentError, match="not a VK user id"):
            await connector.send(outbound("x", address="someone"))
    finally:
        await connector.close()


async def test_a_retry_never_posts_twice(api: FakeVkApi, tmp_path: Path) -> None:
    api.push_message(1001, "hi")
    body = "\n".join(["a" * 4000, "b" * 4000, "c" * 4000])
    api.fail_next("messages.send", 10, after=1)  # part "a" goes out, part "b" fails
    connector = make_connector(api, tmp_path)
    try:
        with pytest.raises(TransientError, match="internal error"):
            await connector.send(outbound(body, id=11))
        # The retry sends every part again; VK drops "a" by its random_id.
        first = await connector.send(outbound(body, id=11, attempt=2))
        # A crash after VK posted everything but before we recorded it: the outbox sends
        # the same message once more, and VK drops every part.
        again = await make_connector(api, tmp_path).send(outbound(body, id=11, attempt=3))
    finally:
        await connector.close()
    assert [m["text"][0] for m in api.sent(1001)] == ["a", "b", "c"]
    assert first.external_id == again.external_id == str(api.sent(1001)[0]["id"])


@pytest.mark.parametrize(
    ("setup", "error", "reason", "retry_after"),
    [
        (lambda api: None, PermanentError, "the customer has not allowed messages from the community", None),
        (lambda api: api.blacklisted.add(1001), PermanentError, "the customer has blocked the community", None),
        (lambda api: api.fail_next("messages.send", 6), TransientError, "too many requests per second while sending", 1.0),
        (lambda api: api.fail_next("messages.send", 902), PermanentError, "privacy settings do not allow", None),
        (
            lambda api: api.fail_next("messages.send", 950, "Some new refusal"),
            PermanentError,
            "VK refused sending: error 950: Some new refusal",
            None,
        ),
        (
            lambda api: api.fail_next_http("messages.send", 502, b"<html>Bad Gateway</html>"),
            TransientError,
            "unavailable while sending: HTTP 502",
            None,
        ),
    ],
)
async def test_send_errors_are_said_in_words(
    api: FakeVkApi,
    tmp_path: Path,
    setup: Callable[[FakeVkApi], None],
    error: type[Exception],
    reason: str,
    retry_after: float | None,
) -> None:
    setup(api)
    connector = make_connector(api, tmp_path)
    try:
        with pytest.raises(error) as raised:
            await connector.send(outbound("hello"))
    finally:
        await connector.close()
    assert type(raised.value) is error
    assert reason in raised.value.reason
    assert "<html>" not in raised.value.reason
    if retry_after is not None:
        assert raised.value.retry_after == retry_after


async def test_a_revoked_token_takes_the_channel_down_with_the_reason(api: FakeVkApi, tmp_path: Path) -> None:
    api.push_message(1001, "hi")
    sink = RecordingSink()
    connector = make_connector(api, tmp_path, poll_wait=30)
    task = asyncio.create_task(connector.run(sink))
    try:
        await eventually(lambda: sink.connected_details != [])
        api.revoke_token()
        with pytest.raises(PermanentError, match="VK rejected the community access token") as raised:
            await connector.send(outbound("reply"))
        assert api.token not in raised.value.reason
        # The receive loop, waiting in a 30 s long poll, goes down at once with the same reason.
        await eventually(lambda: task.done(), timeout=3)
        with pytest.raises(PermanentError) as down:
            task.result()
        assert down.value.reason == raised.value.reason
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await connector.close()


# -- operations and settings ---------------------------------------------------------------


async def test_check_names_the_community_and_learns_its_number(api: FakeVkApi, tmp_path: Path) -> None:
    connector = make_connector(api, tmp_path, group_id=None)
    try:
        assert await connector.check() == COMMUNITY
        assert connector.group_id == GROUP["id"]
    finally:
        await connector.close()


async def test_a_bad_token_is_permanent_everywhere(api: FakeVkApi, tmp_path: Path) -> None:
    connector = make_connector(api, tmp_path, token="vk1.a.wrong")
    try:
        with pytest.raises(PermanentError, match="rejected the community access token") as raised:
            await connector.check()
        assert "vk1.a.wrong" not in raised.value.reason
        with pytest.raises(PermanentError, match="rejected the community access token"):
            await connector.run(RecordingSink())
    finally:
        await connector.close()


async def test_an_unreachable_api_is_transient(tmp_path: Path) -> None:
    with FakeVkApi() as gone:
        url = gone.api_url
    settings = {"token": "t", "group_id": 1, "api_url": url}
    connector = VkConnector(ChannelContext(channel_id=1, name="vk", settings=settings, data_dir=tmp_path))
    try:
        with pytest.raises(TransientError, match=r"the VK API at http://127\.0\.0\.1:\d+/method is unavailable"):
            await connector.check()
    finally:
        await connector.close()


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({}, "no VK community token: set token_env"),
        ({"token": "t", "group_id": "shop"}, "group_id must be the community's number"),
        ({"token": "t", "poll_wait": "long"}, "poll_wait and max_file_mb must be numbers"),
        ({"token": "t", "api_url": "api.vk.com"}, r"api_url must be an http\(s\) URL"),
    ],
)
def test_bad_settings_are_refused_at_construction(tmp_path: Path, settings: dict[str, Any], reason: str) -> None:
    with pytest.raises(PermanentError, match=reason):
        VkConnector(ChannelContext(channel_id=1, name="vk", settings=settings, data_dir=tmp_path))


def test_random_ids_are_stable_distinct_and_int32() -> None:
    assert random_id(5, 0) == random_id(5, 0)
    ids = {random_id(message, part) for message in range(200) for part in range(3)}
    assert len(ids) == 600
    assert all(0 < value < 2**31 for value in ids)


def test_split_never_breaks_a_symbol() -> None:
    family = "👨\u200d👩\u200d👧"
    parts = split_text(family * 1000)
    assert "".join(parts) == family * 1000
    assert all(len(part.encode("utf-16-le")) // 2 <= 4096 for part in parts)
    assert all(part.startswith("👨") and part.endswith("👧") for part in parts)
    assert split_text("short") == ["short"] and split_text("  ") == []


# -- the core: a real Hub on a real Store ---------------------------------------------------


async def test_the_core_stores_a_vk_message_and_sends_the_reply(api: FakeVkApi, tmp_path: Path) -> None:
    options = {"token": api.token, "group_id": GROUP["id"], "api_url": api.api_url, "poll_wait": 1}
    settings = Settings(
        database=tmp_path / "core.db", data_dir=tmp_path / "data", channels=[ChannelSettings("vk", "VK", options)]
    )
    timing = HubTiming(
        lease_ttl=1.5,
        lease_poll=0.05,
        outbox_poll=0.02,
        restart_initial=0.05,
        restart_max=0.2,
        down_retry=0.3,
        send_retry_base=0.05,
        send_retry_max=0.2,
        send_max_attempts=4,
        housekeeping=0.5,
    )
    store = await Store.open(tmp_path / "core.db")
    hub = Hub(settings, store, timing=timing)
    task = asyncio.create_task(hub.run())

    async def until(check: Callable[[], Any]) -> Any:
        for _ in range(250):
            if result := await check():
                return result
            await asyncio.sleep(0.02)
        raise AssertionError("the core did not get there in time")

    async def channel_up() -> bool:
        return any(channel.health == "up" for channel in await store.channels())

    try:
        await until(channel_up)
        api.push_message(1001, "Где заказ? \x1b]52;c;AAAA\x07", attachments=[api.photo(BINARY, 1001, 31)])
        [row] = await until(lambda: store.inbox_page(InboxView.ALL))
        [entry] = [e for e in await store.timeline(row.conversation_id) if e.direction == "in"]
        assert entry.body == "Где заказ? " and entry.attachments[0].size == len(BINARY)  # sanitised at ingest
        reply = await store.queue_reply(row.conversation_id, "Завтра", "alice")

        async def sent() -> Any:
            return next((e for e in await store.timeline(row.conversation_id) if e.id == reply and e.state == "sent"), None)

        stored = await until(sent)
        [posted] = api.sent(1001)
        assert posted["text"] == "Завтра" and stored.external_id == str(posted["id"])
        channel = (await store.channels())[0]
        assert channel.health_detail == COMMUNITY
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


def test_a_date_no_clock_can_hold_is_no_date():
    from connectors.vk import _time

    assert _time(10**20) is None and _time("99999999999999999999") is None
    assert _time(1_700_000_000).year == 2023


async def test_a_long_gap_is_delivered_in_chunks_and_a_crash_midway_resumes(api: FakeVkApi, tmp_path: Path) -> None:
    """250 messages lost from the event stream arrive in chunks of 100 (files are held a chunk
    at a time); the cursor keeps the old ts until the last chunk, so a commit that fails midway
    resumes from the last stored message, and nothing is stored twice."""
    from connectors.vk import _RECOVERY_CHUNK

    sink = await started(api, tmp_path)
    api.push_message(1001, "before")
    await receive(api, sink, tmp_path, lambda: len(sink.messages) == 1)
    gap = [api.push_message(1001 + n % 3, f"gap {n}") for n in range(250)]
    api.forget_events()
    deliveries_before = len(sink.deliveries)
    # The second chunk's commit fails once: the run ends, the next one goes on from chunk one.
    original = sink.deliver
    calls = {"n": 0}

    async def flaky(messages, cursor):
        calls["n"] += 1
        if calls["n"] == 2:
            raise CommitFailed("disk I/O error")
        await original(messages, cursor)

    sink.deliver = flaky
    connector = make_connector(api, tmp_path)
    with pytest.raises(CommitFailed):
        await connector.run(sink)
    await connector.close()
    assert len(sink.messages) == 1 + _RECOVERY_CHUNK
    async with running(make_connector(api, tmp_path), sink):
        await eventually(lambda: len(sink.messages) == 251)
        await asyncio.sleep(0.2)
    assert [m.external_id for m in sink.messages[1:]] == [str(m["id"]) for m in gap]
    sizes = [n for n, _ in sink.deliveries[deliveries_before:] if n]
    assert max(sizes) <= _RECOVERY_CHUNK
