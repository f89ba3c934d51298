"""The Telegram connector against a Bot API server on 127.0.0.1 (tests/peers/telegram_api.py).

python-telegram-bot really talks HTTP to the fake server through `base_url`/`base_file_url`;
nothing of ours is mocked. The sink stands in for the core: it commits a batch and its cursor
atomically, and can fail a commit on request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from connectors.base import (
    ChannelContext,
    InboundMessage,
    OutboundMessage,
    PermanentError,
    TransientError,
)
from connectors.telegram import TOO_LARGE, TelegramConnector, split_text, utf16_len
from connectors.text import html_to_text
from omniconsole.models import IdentityKind
from tests.peers.telegram_api import BAD_GATEWAY_HTML, FakeBotApi, group_chat, parse_html, user
from tests.waiting import eventually as wait_until

# PTB warns about its own `RetryAfter.retry_after` type change when it builds the exception.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

IVAN = user(1001, "Ivan", "Petrov", "ivanp")
OLGA = user(1002, "Ольга", None, None)
# Binary content with every byte value, CR LF pairs included, to catch mangled uploads.
BINARY = bytes(range(256)) * 8 + b"\r\n--boundary\r\n\r\n"


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
        self.hang_after_commit = False  # hold the connector right after a commit, to crash it there

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
        if self.hang_after_commit:
            await asyncio.Event().wait()

    async def delivery_updates(self, updates: Sequence[Any]) -> None:
        pass

    def connected(self, detail: str = "") -> None:
        self.connected_details.append(detail)

    def by_id(self) -> dict[str, InboundMessage]:
        return {message.external_id: message for message in self.messages}


@pytest.fixture
def api() -> FakeBotApi:
    with FakeBotApi() as server:
        yield server


def make_connector(api: FakeBotApi, tmp_path: Path, **options: Any) -> TelegramConnector:
    settings = {
        "token": api.token,
        "base_url": api.base_url,
        "base_file_url": api.base_file_url,
        "poll_timeout": 1,
        **options,
    }
    return TelegramConnector(ChannelContext(channel_id=1, name="telegram", settings=settings, data_dir=tmp_path))


# Telegram's fake server answers at once: a tighter bound and poll than the default.
# Generous: only a failing test waits it out, and a loaded CI machine can be slow.
eventually = functools.partial(wait_until, timeout=15.0, poll=0.01)


@contextlib.asynccontextmanager
async def running(connector: TelegramConnector, sink: RecordingSink) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(connector.run(sink))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await connector.close()


async def receive(api: FakeBotApi, tmp_path: Path, last_update_id: int, **options: Any) -> RecordingSink:
    """Run a connector until the sink's cursor covers `last_update_id`."""
    sink = RecordingSink()
    async with running(make_connector(api, tmp_path, **options), sink) as task:
        await eventually(lambda: task.done() or sink.cursor == str(last_update_id + 1))
        if task.done():
            task.result()
    return sink


async def receive_one(api: FakeBotApi, tmp_path: Path, **content: Any) -> InboundMessage:
    message = api.message(IVAN, **content)
    update_id = api.push_update("message", message)
    sink = await receive(api, tmp_path, update_id)
    assert len(sink.messages) == 1
    return sink.messages[0]


def outbound(body: str = "", **fields: Any) -> OutboundMessage:
    defaults: dict[str, Any] = {"id": 1, "conversation_id": 1, "identity_kind": IdentityKind.TELEGRAM, "address": str(IVAN["id"])}
    return OutboundMessage(body=body, **{**defaults, **fields})


# -- inbound -------------------------------------------------------------------------------


async def test_text_message_names_the_customer_and_the_chat(api: FakeBotApi, tmp_path: Path) -> None:
    message = api.message(IVAN, text="Hello [b]there[/b] \x1b]0;x\x07")
    update_id = api.push_update("message", message)
    sink = await receive(api, tmp_path, update_id)

    [received] = sink.messages
    assert received.external_id == f"{IVAN['id']}:{message['message_id']}"
    assert received.identity_kind is IdentityKind.TELEGRAM
    assert received.address == "1001"
    assert received.sender_name == "Ivan Petrov (@ivanp)"
    assert received.body == "Hello [b]there[/b] \x1b]0;x\x07"  # as sent; the core sanitises
    assert received.sent_at.tzinfo is not None and received.sent_at.utcoffset().total_seconds() == 0
    assert received.sent_at.timestamp() == message["date"]
    assert received.meta == {"chat_id": 1001, "message_id": message["message_id"], "kind": "text", "username": "ivanp"}
    assert received.edited_at is None and received.flags == frozenset()
    assert sink.connected_details == ["bot @omni_test_bot"]


async def test_name_without_username(api: FakeBotApi, tmp_path: Path) -> None:
    message = api.message(OLGA, text="Добрый день")
    sink = await receive(api, tmp_path, api.push_update("message", message))
    assert sink.messages[0].sender_name == "Ольга"
    assert "username" not in sink.messages[0].meta


async def test_photo_keeps_the_largest_size_and_the_caption(api: FakeBotApi, tmp_path: Path) -> None:
    small = {**api.add_file(b"thumb", "photos/file_1.jpg"), "width": 90, "height": 90}
    large = {**api.add_file(BINARY, "photos/file_2.jpg"), "width": 1280, "height": 960}
    received = await receive_one(api, tmp_path, photo=[small, large], caption="my order")

    assert received.body == "my order"
    assert received.meta["kind"] == "photo"
    [attachment] = received.attachments
    assert attachment.data == BINARY
    assert attachment.size == len(BINARY)
    assert attachment.mime_type == "image/jpeg"
    assert attachment.filename == f"photo_{large['file_unique_id']}.jpg"
    assert attachment.note == ""


@pytest.mark.parametrize(
    ("kind", "fields", "filename", "mime_type"),
    [
        ("document", {"file_name": "invoice.pdf", "mime_type": "application/pdf"}, "invoice.pdf", "application/pdf"),
        ("voice", {"duration": 3, "mime_type": "audio/ogg"}, "voice_{unique}.ogg", "audio/ogg"),
        ("audio", {"duration": 200, "file_name": "song.mp3", "mime_type": "audio/mpeg"}, "song.mp3", "audio/mpeg"),
        ("video", {"duration": 5, "width": 640, "height": 480, "mime_type": "video/mp4"}, "video_{unique}.mp4", "video/mp4"),
        ("video_note", {"duration": 5, "length": 240}, "video_note_{unique}.mp4", "video/mp4"),
        (
            "animation",
            {"duration": 2, "width": 320, "height": 240, "file_name": "cat.mp4", "mime_type": "video/mp4"},
            "cat.mp4",
            "video/mp4",
        ),
    ],
)
async def test_media_files_are_downloaded(
    api: FakeBotApi, tmp_path: Path, kind: str, fields: dict[str, Any], filename: str, mime_type: str
) -> None:
    file = api.add_file(BINARY, f"{kind}s/file_7.bin")
    content: dict[str, Any] = {kind: {**file, **fields}, "caption": f"a {kind}"}
    if kind == "animation":  # Telegram sends a GIF as both animation and document
        content["document"] = {**file, "file_name": "cat.mp4", "mime_type": "video/mp4"}
    if kind == "video_note":
        del content["caption"]  # video notes have none
    received = await receive_one(api, tmp_path, **content)

    assert received.meta["kind"] == kind
    assert received.body == ("" if kind == "video_note" else f"a {kind}")
    [attachment] = received.attachments
    assert attachment.filename == filename.format(unique=file["file_unique_id"])
    assert attachment.mime_type == mime_type
    assert attachment.data == BINARY


async def test_sticker_has_its_emoji_and_its_file(api: FakeBotApi, tmp_path: Path) -> None:
    file = api.add_file(b"RIFF....WEBPVP8 ", "stickers/file_3.webp")
    sticker = {**file, "type": "regular", "width": 512, "height": 512, "is_animated": False, "is_video": False, "emoji": "😀"}
    received = await receive_one(api, tmp_path, sticker=sticker)

    assert received.body == "Sticker 😀"
    assert received.meta["kind"] == "sticker"
    [attachment] = received.attachments
    assert attachment.filename.endswith(".webp") and attachment.mime_type == "image/webp"
    assert attachment.data == b"RIFF....WEBPVP8 "


async def test_location_venue_and_contact_read_as_text(api: FakeBotApi, tmp_path: Path) -> None:
    location = api.push_message(IVAN, location={"latitude": 55.751244, "longitude": 37.618423})
    venue = api.push_message(
        IVAN,
        location={"latitude": 59.9386, "longitude": 30.3141},
        venue={"location": {"latitude": 59.9386, "longitude": 30.3141}, "title": "Hermitage", "address": "Palace Square, 2"},
    )
    contact = api.message(
        IVAN, contact={"phone_number": "+7 999 123-45-67", "first_name": "Ivan", "last_name": "Petrov", "user_id": 1001}
    )
    last = api.push_update("message", contact)
    received = (await receive(api, tmp_path, last)).by_id()

    assert received[f"1001:{location['message_id']}"].body == "Location: 55.751244, 37.618423"
    assert received[f"1001:{location['message_id']}"].meta["latitude"] == 55.751244
    assert received[f"1001:{venue['message_id']}"].body == "Venue: Hermitage, Palace Square, 2 (59.9386, 30.3141)"
    assert received[f"1001:{venue['message_id']}"].meta["kind"] == "venue"
    shared = received[f"1001:{contact['message_id']}"]
    assert shared.body == "Contact: Ivan Petrov, +7 999 123-45-67"
    assert shared.extra_identities == ((IdentityKind.PHONE, "+7 999 123-45-67"),)


async def test_only_the_customers_own_phone_becomes_their_identity(api: FakeBotApi, tmp_path: Path) -> None:
    # No user_id: a number typed into the address book, shared by the customer.
    plain = api.push_message(IVAN, contact={"phone_number": "89991112233", "first_name": "Home"})
    # Another Telegram user's card is a different person, not a second identity of Ivan.
    other = api.message(IVAN, contact={"phone_number": "+79990001122", "first_name": "Olga", "user_id": 1002})
    received = (await receive(api, tmp_path, api.push_update("message", other))).by_id()

    assert received[f"1001:{plain['message_id']}"].extra_identities == ((IdentityKind.PHONE, "89991112233"),)
    assert received[f"1001:{other['message_id']}"].extra_identities == ()
    assert received[f"1001:{other['message_id']}"].meta["contact_phone"] == "+79990001122"


async def test_edit_keeps_the_external_id_and_says_when(api: FakeBotApi, tmp_path: Path) -> None:
    original = api.push_message(IVAN, text="I want 2 pizzas")
    edited = api.push_edit(original, text="I want 3 pizzas")
    sink = await receive(api, tmp_path, api.pending_update_ids()[-1])

    first, second = sink.messages
    assert first.external_id == second.external_id == f"1001:{original['message_id']}"
    assert (first.body, second.body) == ("I want 2 pizzas", "I want 3 pizzas")
    assert first.edited_at is None
    assert second.edited_at is not None and second.edited_at.timestamp() == edited["edit_date"]
    assert second.sent_at == first.sent_at


async def test_reply_links_to_the_earlier_message(api: FakeBotApi, tmp_path: Path) -> None:
    earlier = api.push_message(IVAN, text="order 1234")
    reply = api.message(IVAN, text="where is it?", reply_to_message=earlier)
    sink = await receive(api, tmp_path, api.push_update("message", reply))
    assert sink.messages[1].reply_to_external_id == f"1001:{earlier['message_id']}"
    assert sink.messages[0].reply_to_external_id is None


async def test_start_payload_is_where_the_customer_came_from(api: FakeBotApi, tmp_path: Path) -> None:
    deep_link = api.push_message(
        IVAN, text="/start promo_spring-2025", entities=[{"type": "bot_command", "offset": 0, "length": 6}]
    )
    bare = api.push_message(OLGA, text="/start")
    typed = api.message(IVAN, text="/start hello, I need help")
    received = (await receive(api, tmp_path, api.push_update("message", typed))).by_id()

    linked = received[f"1001:{deep_link['message_id']}"]
    assert (linked.flags, linked.origin, linked.body) == (frozenset({"start"}), "promo_spring-2025", "")
    plain = received[f"1002:{bare['message_id']}"]
    assert (plain.flags, plain.origin, plain.body) == (frozenset({"start"}), None, "")
    # Not a deep link payload (spaces, punctuation): the customer typed it, it is their message.
    words = received[f"1001:{typed['message_id']}"]
    assert (words.flags, words.origin, words.body) == (frozenset(), None, "/start hello, I need help")


async def test_group_and_channel_posts_are_skipped_but_confirmed(api: FakeBotApi, tmp_path: Path) -> None:
    api.push_message(IVAN, chat=group_chat(-100500, "Shop fans"), text="hi all")
    api.push_update("channel_post", api.message(None, chat=group_chat(-100600, "Shop news", "channel"), text="Sale!"))
    last_ignored = api.push_update("message", api.message(IVAN, chat=group_chat(-100700, "Old group", "group"), text="hey"))
    sink = RecordingSink()
    async with running(make_connector(api, tmp_path), sink):
        await eventually(lambda: sink.cursor is not None)
        assert sink.messages == []
        assert sink.deliveries == [(0, str(last_ignored + 1))]  # the offset moved on all the same
        await eventually(lambda: api.pending_update_ids() == [])  # and Telegram dropped them
        private = api.push_message(IVAN, text="just me")
        await eventually(lambda: len(sink.messages) == 1)
    assert sink.messages[0].external_id == f"1001:{private['message_id']}"
    # Channel posts are not even asked for while groups are off (button presses are).
    assert api.calls_of("getUpdates")[0].params["allowed_updates"] == (
        '["message", "edited_message", "message_reaction", "callback_query"]'
    )


async def test_groups_enabled_takes_group_messages_and_channel_posts(api: FakeBotApi, tmp_path: Path) -> None:
    in_group = api.push_message(IVAN, chat=group_chat(-100500, "Shop fans"), text="hi all")
    post = api.message(None, chat=group_chat(-100600, "Shop news", "channel"), text="Sale!")
    received = (await receive(api, tmp_path, api.push_update("channel_post", post), groups=True)).by_id()

    group_message = received[f"-100500:{in_group['message_id']}"]
    assert group_message.address == "1001"  # the customer is the person, the chat is where to answer
    assert group_message.meta["chat_id"] == -100500 and group_message.meta["chat_type"] == "supergroup"
    channel_post = received[f"-100600:{post['message_id']}"]
    assert channel_post.sender_name == "Shop news" and channel_post.body == "Sale!"
    allowed = api.calls_of("getUpdates")[0].params["allowed_updates"]
    assert "channel_post" in allowed


async def test_files_over_the_cap_are_recorded_not_downloaded(api: FakeBotApi, tmp_path: Path) -> None:
    big = bytes(3000)
    declared = api.push_message(IVAN, document={**api.add_file(big, "documents/big.zip"), "file_name": "big.zip"})
    # No file_size in the message: the connector learns it from getFile.
    undeclared = api.push_message(
        IVAN, document={**api.add_file(big, "documents/big2.zip", declared_size=False), "file_name": "big2.zip"}
    )
    small = api.message(IVAN, document={**api.add_file(b"ok", "documents/small.txt"), "file_name": "small.txt"})
    received = (await receive(api, tmp_path, api.push_update("message", small), max_file_mb=0.002)).by_id()

    for message in (declared, undeclared):
        [attachment] = received[f"1001:{message['message_id']}"].attachments
        assert (attachment.data, attachment.size, attachment.note) == (None, 3000, TOO_LARGE)
    assert received[f"1001:{small['message_id']}"].attachments[0].data == b"ok"
    assert len(api.calls_of("getFile")) == 2  # the declared one was never asked for


async def test_telegrams_own_20_mb_limit_reads_as_too_large(api: FakeBotApi, tmp_path: Path) -> None:
    huge = api.add_file(bytes(20 * 1024 * 1024 + 1), "videos/huge.mp4", declared_size=False)
    received = await receive_one(api, tmp_path, video={**huge, "duration": 60, "width": 1920, "height": 1080})
    assert received.attachments[0].note == TOO_LARGE and received.attachments[0].data is None


async def test_a_failed_download_confirms_nothing(api: FakeBotApi, tmp_path: Path) -> None:
    message = api.push_message(IVAN, photo=[{**api.add_file(BINARY, "photos/f.jpg"), "width": 1, "height": 1}])
    api.fail_next("getFile", 502, body=BAD_GATEWAY_HTML, content_type="text/html")
    sink = RecordingSink()
    connector = make_connector(api, tmp_path)
    with pytest.raises(TransientError, match="Bad Gateway"):
        await connector.run(sink)
    await connector.close()
    assert sink.cursor is None and api.pending_update_ids() != []

    async with running(make_connector(api, tmp_path), sink):
        await eventually(lambda: len(sink.messages) == 1)
    assert sink.messages[0].external_id == f"1001:{message['message_id']}"
    assert sink.messages[0].attachments[0].data == BINARY


# -- outbound ------------------------------------------------------------------------------


async def test_long_text_is_split_in_order_at_line_breaks(api: FakeBotApi, tmp_path: Path) -> None:
    lines = [f"line {number:05d} " + "x" * 80 for number in range(150)]  # ~13,800 characters
    body = "\n".join(lines)
    connector = make_connector(api, tmp_path)
    try:
        result = await connector.send(outbound(body))
    finally:
        await connector.close()

    sent = [call.params["text"] for call in api.calls_of("sendMessage")]
    assert len(sent) == 4
    assert all(utf16_len(text) <= 4096 for text in sent)
    assert "\n".join(sent) == body  # nothing lost, nothing reordered, cut only at line breaks
    assert all("parse_mode" not in call.params for call in api.calls_of("sendMessage"))
    assert result.external_id == "1001:1"


async def test_an_answer_goes_in_telegrams_html_formatting_split_where_no_tag_is_cut(api: FakeBotApi, tmp_path: Path) -> None:
    from omniconsole.answers.render import render

    paragraph = "**Заказ 1042** уже в пути, [трек](https://track.example/1042?a=1&b=2) и <не тег> & " + "подробности " * 40
    rendered = render("\n\n".join([paragraph] * 12), "telegram")  # ~7,000 characters shown
    connector = make_connector(api, tmp_path)
    try:
        await connector.send(outbound(rendered.text, meta=rendered.meta))
        await connector.send(outbound("short **plain**", id=2))
    finally:
        await connector.close()

    calls = api.calls_of("sendMessage")
    formatted = [call.params for call in calls if call.params.get("parse_mode") == "HTML"]
    assert len(formatted) == 2, "the long answer is two HTML messages"
    for params in formatted:
        shown = parse_html(params["text"])  # the peer's parser: each part is well-formed on its own
        assert utf16_len(shown) <= 4096
        assert params["text"].count("<b>") == params["text"].count("</b>")
    assert '<a href="https://track.example/1042?a=1&amp;b=2">трек</a>' in formatted[0]["text"]
    assert "&lt;не тег&gt; &amp;" in formatted[0]["text"]
    shown_whole = " ".join(parse_html(params["text"]) for params in formatted).split()
    assert shown_whole == html_to_text(rendered.meta["formatted"]).split()  # nothing lost or doubled
    # A reply without the rendered formatting goes as it was written, no parse_mode.
    assert calls[-1].params["text"] == "short **plain**" and "parse_mode" not in calls[-1].params


async def test_formatting_telegram_refuses_falls_back_to_plain_text(api: FakeBotApi, tmp_path: Path) -> None:
    connector = make_connector(api, tmp_path)
    try:
        # Telegram refuses an unsupported tag: the whole answer goes as its plain body instead.
        await connector.send(
            outbound("Order 1042 (https://track.example)", meta={"parse_mode": "HTML", "formatted": "<h1>Order</h1> 1042"})
        )
        # The second part refused after the first went: that part goes without its tags.
        long = "<b>" + "word " * 1000 + "</b>"
        api.fail_next(
            "sendMessage", 400, 'Bad Request: can\'t parse entities: Unsupported start tag "b" at byte offset 0', after=1
        )
        await connector.send(outbound(html_to_text(long), id=2, meta={"parse_mode": "HTML", "formatted": long}))
    finally:
        await connector.close()
    sent = [call.params for call in api.calls_of("sendMessage")]
    assert sent[0]["parse_mode"] == "HTML" and "parse_mode" not in sent[1]
    assert sent[1]["text"] == "Order 1042 (https://track.example)"
    assert [p.get("parse_mode") for p in sent[2:]] == ["HTML", "HTML", None]
    assert sent[4]["text"] == html_to_text(sent[3]["text"]) and "<b>" not in sent[4]["text"]


def test_split_never_breaks_a_symbol() -> None:
    family = "👨\u200d👩\u200d👧"  # one symbol, five code points, eight UTF-16 units
    parts = split_text(family * 1000)
    assert "".join(parts) == family * 1000
    assert all(utf16_len(part) <= 4096 for part in parts)
    assert all(part.startswith("👨") and part.endswith("👧") for part in parts)
    accented = "e\u0301" * 5000
    assert all(not part.startswith("\u0301") for part in split_text(accented))
    assert split_text("short") == ["short"]
    assert split_text("   ") == []


async def test_reply_quotes_the_customers_message_on_the_first_part_only(api: FakeBotApi, tmp_path: Path) -> None:
    asked = api.push_message(IVAN, text="how much?")
    connector = make_connector(api, tmp_path)
    try:
        await connector.send(outbound("word " * 1000, reply_to_external_id=f"1001:{asked['message_id']}", meta={"chat_id": 1001}))
    finally:
        await connector.close()
    first, second = api.calls_of("sendMessage")
    assert f'"message_id": {asked["message_id"]}' in first.params["reply_parameters"]
    assert "reply_parameters" not in second.params


async def test_a_reply_to_a_deleted_message_still_goes_out(api: FakeBotApi, tmp_path: Path) -> None:
    connector = make_connector(api, tmp_path)
    try:
        result = await connector.send(outbound("still here", reply_to_external_id="1001:9999"))
    finally:
        await connector.close()
    assert result.external_id == "1001:1"


async def test_the_chat_id_from_meta_wins_over_the_address(api: FakeBotApi, tmp_path: Path) -> None:
    connector = make_connector(api, tmp_path)
    try:
        result = await connector.send(outbound("hello group", meta={"chat_id": -100500, "message_id": 3}))
    finally:
        await connector.close()
    assert api.calls_of("sendMessage")[0].params["chat_id"] == "-100500"
    assert result.external_id == "-100500:1"


async def test_photo_and_document_are_uploaded_with_the_caption(api: FakeBotApi, tmp_path: Path) -> None:
    photo, document = tmp_path / "receipt.png", tmp_path / "contract.pdf"
    photo.write_bytes(BINARY)
    document.write_bytes(BINARY[::-1])
    connector = make_connector(api, tmp_path)
    try:
        result = await connector.send(outbound("Here you are", attachments=(photo, document)))
        long_result = await connector.send(outbound("y" * 2000, id=2, attachments=(document,)))
    finally:
        await connector.close()

    [sent_photo] = api.calls_of("sendPhoto")
    assert sent_photo.files["photo"] == ("receipt.png", BINARY)
    assert sent_photo.params["caption"] == "Here you are" and sent_photo.params["chat_id"] == "1001"
    first_document, second_document = api.calls_of("sendDocument")
    assert first_document.files["document"] == ("contract.pdf", BINARY[::-1])
    assert "caption" not in first_document.params
    # Too long for a caption (1,024): the text goes first, then the file without one.
    assert api.calls_of("sendMessage")[0].params["text"] == "y" * 2000
    assert "caption" not in second_document.params
    assert result.external_id == "1001:1" and long_result.external_id == "1001:3"


async def test_a_missing_attachment_is_a_permanent_error(api: FakeBotApi, tmp_path: Path) -> None:
    connector = make_connector(api, tmp_path)
    try:
        with pytest.raises(PermanentError, match="gone.pdf"):
            await connector.send(outbound("see file", attachments=(tmp_path / "gone.pdf",)))
        with pytest.raises(PermanentError, match="nothing to send"):
            await connector.send(outbound("  "))
    finally:
        await connector.close()


@pytest.mark.parametrize(
    ("failure", "error", "reason", "retry_after"),
    [
        (
            {"status": 403, "description": "Forbidden: bot was blocked by the user"},
            PermanentError,
            "the customer blocked the bot",
            None,
        ),
        (
            {"status": 403, "description": "Forbidden: user is deactivated"},
            PermanentError,
            "the customer's Telegram account was deleted",
            None,
        ),
        (
            {"status": 400, "description": "Bad Request: chat not found"},
            PermanentError,
            "Telegram refused the message: Chat not found",
            None,
        ),
        (
            {"status": 429, "description": "Too Many Requests: retry after 7", "retry_after": 7},
            TransientError,
            "retry in 7 s",
            7.0,
        ),
        (
            {"status": 502, "body": BAD_GATEWAY_HTML, "content_type": "text/html"},
            TransientError,
            "is unavailable while sending: Bad Gateway (502)",
            None,
        ),
        ({"status": 502, "body": b""}, TransientError, "is unavailable while sending: Bad Gateway (502)", None),
        ({"status": 500, "description": "Internal Server Error"}, TransientError, "Internal Server Error", None),
    ],
)
async def test_send_errors_are_classified_in_words(
    api: FakeBotApi, tmp_path: Path, failure: dict[str, Any], error: type[Exception], reason: str, retry_after: float | None
) -> None:
    api.fail_next("sendMessage", **failure)
    connector = make_connector(api, tmp_path)
    try:
        with pytest.raises(error) as raised:
            await connector.send(outbound("hello"))
    finally:
        await connector.close()
    assert reason in raised.value.reason
    assert "<html>" not in raised.value.reason
    assert type(raised.value) is error
    if retry_after is not None:
        assert raised.value.retry_after == retry_after


async def test_a_dropped_connection_is_transient(api: FakeBotApi, tmp_path: Path) -> None:
    api.drop_next("sendMessage")
    connector = make_connector(api, tmp_path)
    try:
        with pytest.raises(TransientError, match="Bot API at .* is unavailable"):
            await connector.send(outbound("hello"))
    finally:
        await connector.close()


async def test_a_retry_continues_after_the_parts_already_sent(api: FakeBotApi, tmp_path: Path) -> None:
    body = "\n".join(["a" * 4000, "b" * 4000, "c" * 4000])
    api.fail_next("sendMessage", 502, body=b"", after=1)  # part "a" goes out, part "b" fails
    connector = make_connector(api, tmp_path)
    try:
        with pytest.raises(TransientError):
            await connector.send(outbound(body))
        result = await connector.send(outbound(body, attempt=2))
    finally:
        await connector.close()
    texts = [call.params["text"][0] for call in api.calls_of("sendMessage")]
    assert texts == ["a", "b", "b", "c"]  # the failed "b" never reached the chat; "a" is not repeated
    assert result.external_id == "1001:1"


async def test_send_does_not_wait_for_the_long_poll(api: FakeBotApi, tmp_path: Path) -> None:
    connector = make_connector(api, tmp_path, poll_timeout=10)
    sink = RecordingSink()
    task = asyncio.create_task(connector.run(sink))
    try:
        await eventually(lambda: sink.connected_details != [])
        started = time.monotonic()
        await connector.send(outbound("while polling"))
        assert time.monotonic() - started < 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await connector.close()


# -- operations ----------------------------------------------------------------------------


async def test_check_names_the_bot(api: FakeBotApi, tmp_path: Path) -> None:
    connector = make_connector(api, tmp_path)
    try:
        assert await connector.check() == "bot @omni_test_bot"
    finally:
        await connector.close()


async def test_a_bad_token_is_permanent(api: FakeBotApi, tmp_path: Path) -> None:
    connector = make_connector(api, tmp_path, token="123:wrong")
    try:
        with pytest.raises(PermanentError, match="rejected the bot token") as raised:
            await connector.check()
        assert "123:wrong" not in raised.value.reason
        with pytest.raises(PermanentError, match="rejected the bot token"):
            await connector.run(RecordingSink())
    finally:
        await connector.close()


async def test_a_missing_token_says_where_to_put_it(tmp_path: Path) -> None:
    connector = TelegramConnector(ChannelContext(channel_id=1, name="telegram", settings={}, data_dir=tmp_path))
    with pytest.raises(PermanentError, match="token_env"):
        await connector.check()


async def test_an_unreachable_api_is_transient(tmp_path: Path) -> None:
    with FakeBotApi() as gone:
        port = gone.port
    settings = {"token": "1:x", "base_url": f"http://127.0.0.1:{port}/bot", "poll_timeout": 1}
    connector = TelegramConnector(ChannelContext(channel_id=1, name="telegram", settings=settings, data_dir=tmp_path))
    try:
        with pytest.raises(TransientError, match="Bot API at .* is unavailable"):
            await connector.check()
    finally:
        await connector.close()


async def test_a_rate_limited_poll_is_transient_with_the_wait(api: FakeBotApi, tmp_path: Path) -> None:
    api.fail_next("getUpdates", 429, "Too Many Requests: retry after 3", retry_after=3)
    connector = make_connector(api, tmp_path)
    try:
        with pytest.raises(TransientError) as raised:
            await connector.run(RecordingSink())
    finally:
        await connector.close()
    assert raised.value.retry_after == 3


async def test_a_webhook_is_a_permanent_reason(api: FakeBotApi, tmp_path: Path) -> None:
    api.fail_next(
        "getUpdates",
        409,
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
    )
    connector = make_connector(api, tmp_path)
    try:
        with pytest.raises(PermanentError, match="webhook"):
            await connector.run(RecordingSink())
    finally:
        await connector.close()


# -- nothing lost, nothing doubled ---------------------------------------------------------


async def test_restarts_in_the_middle_of_a_stream_store_every_update_once(api: FakeBotApi, tmp_path: Path) -> None:
    total = 80
    customers = [user(2000 + n, f"Customer {n}") for n in range(6)]
    expected: list[str] = []

    async def customers_write() -> None:
        for number in range(total):
            message = api.push_message(customers[number % len(customers)], text=f"message {number}")
            expected.append(f"{message['chat']['id']}:{message['message_id']}")
            if number % 7 == 0:
                await asyncio.sleep(0.005)

    rng = random.Random(4)
    sink = RecordingSink()
    writer = asyncio.create_task(customers_write())
    runs = 0
    give_up = time.monotonic() + 60
    while not writer.done() or len(sink.messages) < total:
        runs += 1
        if runs % 3 == 0:
            sink.fail_commits = 1  # the core's transaction fails: the offset must not move
        # A new connector each time, as after a crash: it knows only the committed cursor.
        connector = make_connector(api, tmp_path, poll_timeout=1)
        task = asyncio.create_task(connector.run(sink))
        if runs % 8 == 0:
            # A failure injected since the last such run is still pending when no random
            # stop reached a commit (a loaded machine): this run must be able to commit.
            sink.fail_commits = 0
        if runs % 4 == 0:
            # On a slow machine every random stop may come before the first delivery; let
            # every fourth run commit something (or fail the injected commit) so the stream
            # always makes progress.
            delivered = len(sink.deliveries)
            await eventually(
                lambda: task.done() or len(sink.deliveries) > delivered or writer.done() and len(sink.messages) == total,  # noqa: B023
                timeout=20,
            )
        await asyncio.wait([task], timeout=rng.uniform(0.0, 0.08))
        if task.done():
            assert isinstance(task.exception(), CommitFailed)
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
    assert [m.body for m in sink.messages] == [f"message {n}" for n in range(total)]  # in order
    assert runs > 5
    # The last committed cursor confirms everything once the next poll passes it.
    async with running(make_connector(api, tmp_path), sink):
        await eventually(lambda: api.pending_update_ids() == [])
    assert len(sink.messages) == total


async def test_a_committed_poll_is_not_redelivered_after_a_crash(api: FakeBotApi, tmp_path: Path) -> None:
    first = api.push_message(IVAN, text="one")
    sink = RecordingSink()
    sink.hang_after_commit = True
    async with running(make_connector(api, tmp_path), sink):
        await eventually(lambda: len(sink.messages) == 1)
    # Crashed right after the commit: Telegram still holds update "one" unconfirmed.
    assert api.pending_update_ids() != []
    sink.hang_after_commit = False
    second = api.push_message(IVAN, text="two")
    async with running(make_connector(api, tmp_path), sink):
        await eventually(lambda: len(sink.messages) >= 2)
        await asyncio.sleep(0.1)
    assert [m.external_id for m in sink.messages] == [f"1001:{first['message_id']}", f"1001:{second['message_id']}"]


def _stored_inbound(db: Path) -> tuple[int, int]:
    """(inbound messages, distinct external ids) in a core's database, (0, 0) before it exists."""
    if not db.exists():
        return 0, 0
    conn = sqlite3.connect(db, timeout=10)
    try:
        row = conn.execute("SELECT count(*), count(DISTINCT external_id) FROM messages WHERE direction = 'in'").fetchone()
        return row[0], row[1]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # the core is still creating the schema
            return 0, 0
        raise
    finally:
        conn.close()


@pytest.mark.slow
def test_sigkill_of_the_core_in_a_stream_stores_every_update_once(api: FakeBotApi, tmp_path: Path) -> None:
    """The issue's promise end to end: the real `omniconsole serve` process, killed with
    SIGKILL while updates stream in, restarted, and every update is stored exactly once."""
    total = 400
    db = tmp_path / "core.db"
    config = tmp_path / "omniconsole.toml"
    config.write_text(
        f'[store]\ndatabase = "{db}"\ndata_dir = "{tmp_path / "data"}"\n\n'
        f'[[channels]]\nkind = "telegram"\nname = "telegram"\ntoken_env = "OMNI_TEST_TELEGRAM_TOKEN"\n'
        f'base_url = "{api.base_url}"\nbase_file_url = "{api.base_file_url}"\npoll_timeout = 1\n',
        encoding="utf-8",
    )
    env = {key: value for key, value in os.environ.items() if key != "OMNICONSOLE_CONFIG"}
    env["OMNI_TEST_TELEGRAM_TOKEN"] = api.token
    log = tmp_path / "core.log"

    def start_core() -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "omniconsole.cli", "serve", "--config", str(config)]
        return subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)

    customers = [user(3000 + n, f"Customer {n}") for n in range(8)]

    def customers_write() -> None:
        for number in range(total):
            api.push_message(customers[number % len(customers)], text=f"message {number}")
            time.sleep(0.01)

    writer = threading.Thread(target=customers_write)
    writer.start()
    rng = random.Random(11)
    stored_at_kills: list[int] = []
    try:
        while writer.is_alive() and len(stored_at_kills) < 8:
            core = start_core()
            before = _stored_inbound(db)[0]
            deadline = time.monotonic() + 20
            while _stored_inbound(db)[0] == before and writer.is_alive() and time.monotonic() < deadline:
                time.sleep(0.02)  # kill it only once it is ingesting
            time.sleep(rng.uniform(0.0, 0.3))
            core.kill()
            core.wait(10)
            stored_at_kills.append(_stored_inbound(db)[0])
    finally:
        writer.join()
    core = start_core()
    try:
        deadline = time.monotonic() + 60
        while (_stored_inbound(db)[0] < total or api.pending_update_ids()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # anything delivered twice would arrive now
    finally:
        core.terminate()
        core.wait(20)
    assert any(0 < stored < total for stored in stored_at_kills), f"no kill landed mid-stream: {stored_at_kills}"
    assert _stored_inbound(db) == (total, total), (stored_at_kills, log.read_text()[-3000:])
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
