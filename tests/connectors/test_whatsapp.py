"""The WhatsApp connector against Meta's side on 127.0.0.1 (tests/peers/graph_api.py).

Webhooks are really posted, signed like Meta signs them, to our real listener
(omniconsole/core/listener.py); the connector really calls the fake Graph API over HTTP for
media and sending. The sink stands in for the core (commits atomically, can fail a commit);
the last tests run the real Hub on a real Store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import (
    ChannelContext,
    InboundMessage,
    OutboundMessage,
    PermanentError,
    TransientError,
)
from connectors.whatsapp import TOO_LARGE, WhatsAppConnector, split_text
from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.core.listener import Listener
from omniconsole.models import DeliveryState, IdentityKind, InboxView
from omniconsole.store import Store, history
from tests.conftest import HOSTILE_TEXTS
from tests.connectors import sinks
from tests.peers.graph_api import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    TOKEN,
    VERIFY_TOKEN,
    FakeGraphApi,
    Meta,
    graph_error_object,
)
from tests.rig import free_port, running_core
from tests.waiting import eventually as wait_until

# Generous: only a failing test waits it out, and a loaded CI machine can be slow.
eventually = functools.partial(wait_until, timeout=15.0, poll=0.01)
IVAN = "79991234567"
OLGA = "447700900123"
# Every byte value, CR LF pairs and a multipart boundary look-alike, to catch mangled files.
BINARY = bytes(range(256)) * 8 + b"\r\n--boundary\r\n\r\n"


class RecordingSink(sinks.RecordingSink):
    def by_id(self) -> dict[str, InboundMessage]:
        return {m.external_id: m for m in self.messages}


@pytest.fixture
def graph() -> FakeGraphApi:
    with FakeGraphApi() as server:
        yield server


def settings_for(graph: FakeGraphApi, **options: Any) -> dict[str, Any]:
    return {
        "token": TOKEN,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "phone_number_id": PHONE_NUMBER_ID,
        "graph_url": graph.url,
        "api_version": "v21.0",
        **options,
    }


def make_connector(graph: FakeGraphApi, tmp_path: Path, **options: Any) -> WhatsAppConnector:
    return WhatsAppConnector(
        ChannelContext(channel_id=1, name="whatsapp", settings=settings_for(graph, **options), data_dir=tmp_path)
    )


@dataclass
class Wired:
    """A connector mounted on a real listener, with Meta pointed at it."""

    connector: WhatsAppConnector
    sink: RecordingSink
    meta: Meta
    task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.connector.run(self.sink))
        await eventually(lambda: self.task.done() or bool(self.sink.connected_details))
        if self.task.done():
            self.task.result()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
            self.task = None

    async def post(self, *args: Any, **kwargs: Any) -> httpx.Response:
        return await self.meta.post(*args, **kwargs)


@contextlib.asynccontextmanager
async def wired(graph: FakeGraphApi, tmp_path: Path, *, start: bool = True, **options: Any) -> AsyncIterator[Wired]:
    connector = make_connector(graph, tmp_path, **options)
    listener = Listener(ListenerSettings(port=0))
    listener.mount("/hooks/whatsapp", connector.web_routes(), owner="whatsapp")
    await listener.start()
    rig = Wired(connector, RecordingSink(), Meta(f"{listener.url}/hooks/whatsapp"))
    try:
        if start:
            await rig.start()
        yield rig
    finally:
        await rig.stop()
        await rig.meta.close()
        await listener.stop()
        await connector.close()


async def receive(rig: Wired, *items: dict[str, Any], names: dict[str, str] | None = None) -> list[InboundMessage]:
    """Post one webhook with `items` and return what the sink holds for them."""
    answer = await rig.post(rig.meta.payload(list(items), names=names))
    assert answer.status_code == 200, answer.text
    found = rig.sink.by_id()
    return [found[item["id"]] for item in items]


def outbound(body: str = "", **fields: Any) -> OutboundMessage:
    defaults: dict[str, Any] = {"id": 1, "conversation_id": 1, "identity_kind": IdentityKind.WHATSAPP, "address": "+" + IVAN}
    return OutboundMessage(body=body, **{**defaults, **fields})


# -- the handshake and the signature -------------------------------------------------------


async def test_verification_echoes_the_challenge_only_for_the_verify_token(graph: FakeGraphApi, tmp_path: Path) -> None:
    async with wired(graph, tmp_path, start=False) as rig:  # works before the channel runs
        good = await rig.meta.verify(VERIFY_TOKEN, challenge="1158201444")
        wrong = await rig.meta.verify("guess", challenge="1158201444")
        not_subscribe = await rig.meta.verify(VERIFY_TOKEN, mode="unsubscribe")
    assert (good.status_code, good.text) == (200, "1158201444")
    assert wrong.status_code == 403 and "1158201444" not in wrong.text
    assert not_subscribe.status_code == 403


@pytest.mark.parametrize(
    ("signature", "status"),
    [
        (None, 401),
        ("sha256=" + "0" * 64, 403),
        ("sha1=abcdef", 403),
        ("garbage", 403),
        ("other-secret", 403),
        ("tampered", 403),
    ],
)
async def test_unsigned_or_wrongly_signed_webhooks_are_refused_and_store_nothing(
    graph: FakeGraphApi, tmp_path: Path, signature: str | None, status: int
) -> None:
    async with wired(graph, tmp_path) as rig:
        payload = rig.meta.payload(
            [rig.meta.message(IVAN, body="transfer all my money")], statuses=[Meta.status("wamid.x", "read")]
        )
        body = json.dumps(payload).encode()
        raw = None
        if signature == "other-secret":
            signature = Meta(rig.meta.url, app_secret="not-our-secret").sign(body)
        elif signature == "tampered":
            signature = rig.meta.sign(body)  # signed, then changed on the way
            raw = body.replace(b"transfer", b"TRANSFER")
        answer = await rig.post(payload, signature=signature, raw=raw)
        assert answer.status_code == status
        assert "refused" in answer.text
        assert rig.sink.messages == [] and rig.sink.updates == []
        # Graph was never asked anything for a refused webhook.
        assert graph.calls_of("media_info") == []


async def test_a_webhook_before_the_channel_runs_gets_503_so_meta_retries(graph: FakeGraphApi, tmp_path: Path) -> None:
    async with wired(graph, tmp_path, start=False) as rig:
        payload = rig.meta.payload([rig.meta.message(IVAN, body="are you there?")])
        assert (await rig.post(payload)).status_code == 503
        assert (await rig.post(payload, signature=None)).status_code == 401  # refused still comes first
        await rig.start()
        assert (await rig.post(payload)).status_code == 200
    assert [m.body for m in rig.sink.messages] == ["are you there?"]


# -- inbound -------------------------------------------------------------------------------


async def test_text_names_the_customer_by_profile_and_wa_id(graph: FakeGraphApi, tmp_path: Path) -> None:
    async with wired(graph, tmp_path) as rig:
        item = rig.meta.message(IVAN, body="Hello [b]there[/b] \x1b]0;x\x07", at=1_700_000_000)
        [received] = await receive(rig, item, names={IVAN: "Иван"})
    assert received.external_id == item["id"] and received.external_id.startswith("wamid.")
    assert received.identity_kind is IdentityKind.WHATSAPP and received.address == IVAN
    assert received.sender_name == "Иван"
    assert received.body == "Hello [b]there[/b] \x1b]0;x\x07"  # as sent; the core sanitises
    assert received.sent_at.timestamp() == 1_700_000_000 and received.sent_at.utcoffset().total_seconds() == 0
    assert received.meta == {"wa_id": IVAN, "kind": "text"}
    assert received.attachments == () and received.extra_identities == ()
    assert rig.sink.connected_details == ["WhatsApp +1 555-010-0199 (Omni Shop); receiving webhooks"]


async def test_a_reply_links_to_the_quoted_message(graph: FakeGraphApi, tmp_path: Path) -> None:
    async with wired(graph, tmp_path) as rig:
        first = rig.meta.message(IVAN, body="order 4711")
        second = rig.meta.message(IVAN, body="where is it?", context=first["id"])
        one, two = await receive(rig, first, second)
    assert one.reply_to_external_id is None
    assert two.reply_to_external_id == first["id"]


@pytest.mark.parametrize(
    ("kind", "fields", "mime", "filename", "body"),
    [
        ("image", {"caption": "my receipt"}, "image/jpeg", "image_{id}.jpg", "my receipt"),
        ("document", {"caption": "contract", "filename": "договор.pdf"}, "application/pdf", "договор.pdf", "contract"),
        ("audio", {"voice": True}, "audio/ogg; codecs=opus", "audio_{id}.ogg", ""),
        ("video", {"caption": "unboxing"}, "video/mp4", "video_{id}.mp4", "unboxing"),
        ("sticker", {"animated": False}, "image/webp", "sticker_{id}.webp", "Sticker"),
    ],
)
async def test_media_is_downloaded_through_the_graph_api(
    graph: FakeGraphApi, tmp_path: Path, kind: str, fields: dict[str, Any], mime: str, filename: str, body: str
) -> None:
    media_id = graph.add_media(BINARY, mime.split(";")[0])
    async with wired(graph, tmp_path) as rig:
        item = rig.meta.message(IVAN, kind, id=media_id, mime_type=mime, sha256="ignored-here", **fields)
        [received] = await receive(rig, item)
    [attachment] = received.attachments
    assert attachment.data == BINARY and attachment.size == len(BINARY) and attachment.note == ""
    assert attachment.filename == filename.format(id=media_id)
    assert attachment.mime_type == mime.split(";")[0]
    assert received.body == body
    assert received.meta["kind"] == kind and received.meta["media_id"] == media_id
    assert received.meta.get("voice", False) is (kind == "audio")
    [info] = graph.calls_of("media_info")
    assert info.params["phone_number_id"] == PHONE_NUMBER_ID
    assert len(graph.calls_of("media_download")) == 1  # the URL, fetched with the token


async def test_files_over_the_cap_or_gone_are_notes_not_failures(graph: FakeGraphApi, tmp_path: Path) -> None:
    big = graph.add_media(b"x" * 3000, "video/mp4")
    lying = graph.add_media(b"y" * 3000, "image/jpeg", declared_size=10)  # says small, is not
    async with wired(graph, tmp_path, max_file_mb=2000 / 1024 / 1024) as rig:
        items = [
            rig.meta.message(IVAN, "video", id=big, mime_type="video/mp4"),
            rig.meta.message(IVAN, "image", id=lying, mime_type="image/jpeg"),
            rig.meta.message(IVAN, "document", id="404404404", mime_type="application/pdf", filename="old.pdf"),
        ]
        too_big, streamed, gone = await receive(rig, *items)
    assert too_big.attachments[0].data is None and too_big.attachments[0].note == TOO_LARGE
    assert streamed.attachments[0].data is None and streamed.attachments[0].note == TOO_LARGE
    assert len(graph.calls_of("media_download")) == 1  # the declared-too-large one was never fetched
    assert gone.attachments[0].data is None
    assert gone.attachments[0].note.startswith("not downloaded: WhatsApp refused looking up old.pdf")
    assert "does not exist" in gone.attachments[0].note


async def test_a_media_server_fault_is_not_acknowledged_and_the_redelivery_is_stored_once(
    graph: FakeGraphApi, tmp_path: Path
) -> None:
    media_id = graph.add_media(BINARY, "image/png")
    graph.fail_next("media_download", 502, body=b"<html>Bad Gateway</html>")
    async with wired(graph, tmp_path) as rig:
        payload = rig.meta.payload(
            [rig.meta.message(IVAN, body="first"), rig.meta.message(IVAN, "image", id=media_id, mime_type="image/png")]
        )
        assert (await rig.post(payload)).status_code == 503
        assert rig.sink.messages == []  # the text did not go in alone either: all or nothing
        assert (await rig.post(payload)).status_code == 200
        assert (await rig.post(payload)).status_code == 200  # Meta sometimes delivers twice
    assert [m.body for m in rig.sink.messages] == ["first", ""]
    assert rig.sink.messages[1].attachments[0].data == BINARY


async def test_location_contacts_and_replies_read_as_text(graph: FakeGraphApi, tmp_path: Path) -> None:
    async with wired(graph, tmp_path) as rig:
        items = [
            rig.meta.message(IVAN, "location", latitude=55.751244, longitude=37.618423),
            rig.meta.message(IVAN, "location", latitude=59.9386, longitude=30.3141, name="Hermitage", address="Palace Square, 2"),
            rig.meta.message(
                IVAN,
                "contacts",
                contacts=[
                    {
                        "name": {"formatted_name": "Ivan Petrov", "first_name": "Ivan"},
                        "phones": [{"phone": "+7 999 123-45-67", "wa_id": IVAN, "type": "CELL"}],
                    },
                ],
            ),
            rig.meta.message(
                IVAN,
                "contacts",
                contacts=[
                    {"name": {"formatted_name": "Olga"}, "phones": [{"phone": "+44 7700 900123", "wa_id": OLGA}]},
                ],
            ),
            rig.meta.message(IVAN, "interactive", type="button_reply", button_reply={"id": "yes-1", "title": "Yes, deliver"}),
            rig.meta.message(
                IVAN,
                "interactive",
                type="list_reply",
                list_reply={"id": "slot-2", "title": "Tomorrow", "description": "10:00-14:00"},
            ),
            rig.meta.message(IVAN, "button", payload="STOP_PROMOS", text="Stop promotions"),
            rig.meta.message(IVAN, "reaction", message_id="wamid.ours", emoji="👍"),
            rig.meta.message(IVAN, "unsupported", errors=[{"code": 131051, "title": "Message type unknown"}]),
        ]
        here, venue, own, other, button, listed, quick, reaction, unknown = await receive(rig, *items)
    assert here.body == "Location: 55.751244, 37.618423" and here.meta["latitude"] == 55.751244
    assert venue.body == "Location: Hermitage, Palace Square, 2 (59.9386, 30.3141)"
    assert own.body == "Contact: Ivan Petrov, +7 999 123-45-67"
    assert own.extra_identities == ((IdentityKind.PHONE, "+7 999 123-45-67"),)
    # Someone else's card is another person, not a second identity of Ivan.
    assert other.body == "Contact: Olga, +44 7700 900123" and other.extra_identities == ()
    assert other.meta["contact_phones"] == ["+44 7700 900123"]
    assert (button.body, button.meta["reply_kind"], button.meta["reply_id"]) == ("Yes, deliver", "button_reply", "yes-1")
    assert (listed.body, listed.meta["reply_id"]) == ("Tomorrow\n10:00-14:00", "slot-2")
    assert (quick.body, quick.meta["button_payload"]) == ("Stop promotions", "STOP_PROMOS")
    assert (reaction.body, reaction.meta["reacted_to"]) == ("Reacted 👍", "wamid.ours")
    assert unknown.body == "(unsupported message: omniconsole cannot show this kind of message)"


async def test_statuses_become_delivery_updates_with_reasons_in_words(graph: FakeGraphApi, tmp_path: Path) -> None:
    async with wired(graph, tmp_path) as rig:
        statuses = [
            Meta.status("wamid.A", "sent"),
            Meta.status("wamid.A", "delivered"),
            Meta.status("wamid.A", "read"),
            Meta.status(
                "wamid.B",
                "failed",
                errors=[
                    graph_error_object(
                        131047,
                        "Re-engagement message",
                        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
                    )
                ],
            ),
            Meta.status(
                "wamid.C",
                "failed",
                errors=[graph_error_object(131049, "This message was not delivered to maintain healthy ecosystem engagement.")],
            ),
            Meta.status("wamid.D", "deleted"),  # not a state we keep: skipped
        ]
        answer = await rig.post(rig.meta.payload(statuses=statuses))
    assert answer.status_code == 200
    states = [(u.external_id, u.state) for u in rig.sink.updates]
    assert states == [
        ("wamid.A", "sent"),
        ("wamid.A", "delivered"),
        ("wamid.A", "read"),
        ("wamid.B", "failed"),
        ("wamid.C", "failed"),
    ]
    b, c = rig.sink.updates[3].error, rig.sink.updates[4].error
    assert b.startswith("more than 24 hours have passed since the customer last wrote") and "(code 131047)" in b
    assert c == "This message was not delivered to maintain healthy ecosystem engagement. (code 131049)"


async def test_odd_webhooks_are_skipped_and_nothing_breaks(graph: FakeGraphApi, tmp_path: Path) -> None:
    async with wired(graph, tmp_path) as rig:
        not_json = await rig.post(None, raw=b"{not json")
        other_object = await rig.post({"object": "page", "entry": [{"id": "1", "changes": []}]})
        other_field = await rig.post(
            {
                "object": "whatsapp_business_account",
                "entry": [{"changes": [{"field": "account_update", "value": {"event": "x"}}]}],
            }
        )
        other_number = await rig.post(
            rig.meta.payload([rig.meta.message(OLGA, body="to the other number")], phone_number_id="999")
        )
        broken = await rig.post(
            {
                "object": "whatsapp_business_account",
                "entry": [{"changes": [{"field": "messages", "value": {"messages": [{"type": "text"}, "x", None]}}]}, 7],
            }
        )
        after = await receive(rig, rig.meta.message(IVAN, body="still here"))
    assert not_json.status_code == 400
    assert [a.status_code for a in (other_object, other_field, other_number, broken)] == [200] * 4
    assert [m.body for m in rig.sink.messages] == ["still here"] == [after[0].body]


async def test_a_failed_commit_answers_503_and_the_redelivery_is_stored(graph: FakeGraphApi, tmp_path: Path) -> None:
    async with wired(graph, tmp_path) as rig:
        payload = rig.meta.payload([rig.meta.message(IVAN, body="one")])
        rig.sink.fail_commits = 1
        assert (await rig.post(payload)).status_code == 503
        assert (await rig.post(payload)).status_code == 200
    assert [m.body for m in rig.sink.messages] == ["one"]


# -- sending -------------------------------------------------------------------------------


async def test_text_goes_to_the_wa_id_and_returns_the_wamid(graph: FakeGraphApi, tmp_path: Path) -> None:
    connector = make_connector(graph, tmp_path)
    try:
        result = await connector.send(outbound("Ваш заказ в пути", meta={"wa_id": IVAN}, reply_to_external_id="wamid.q"))
        plain = await connector.send(outbound("by address", id=2, address="+447700900123"))
    finally:
        await connector.close()
    first, second = graph.calls_of("messages")
    assert first.params == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": IVAN,
        "type": "text",
        "text": {"preview_url": False, "body": "Ваш заказ в пути"},
        "context": {"message_id": "wamid.q"},
    }
    assert second.params["to"] == OLGA
    assert result.external_id.startswith("wamid.") and result.external_id != plain.external_id
    assert result.state == DeliveryState.SENT


async def test_long_text_is_split_and_the_first_wamid_names_the_message(graph: FakeGraphApi, tmp_path: Path) -> None:
    body = "\n".join(["a" * 3000, "b" * 3000, "c" * 100])
    graph.fail_next("messages", 503, code=131000, message="Something went wrong")
    connector = make_connector(graph, tmp_path)
    try:
        with pytest.raises(TransientError, match="Something went wrong"):
            await connector.send(outbound(body))
        result = await connector.send(outbound(body, attempt=2))
    finally:
        await connector.close()
    texts = [c.params["text"]["body"] for c in graph.calls_of("messages")]
    assert [t[0] for t in texts] == ["a", "a", "b"]  # the failed first part again, then on
    assert all(len(t) <= 4096 for t in texts)
    assert result.external_id.startswith("wamid.")
    assert split_text("x" * 5000) == ["x" * 4096, "x" * 904]


async def test_files_are_uploaded_then_sent_by_media_id(graph: FakeGraphApi, tmp_path: Path) -> None:
    photo, contract, voice = tmp_path / "receipt.png", tmp_path / "contract.pdf", tmp_path / "note.ogg"
    photo.write_bytes(BINARY)
    contract.write_bytes(BINARY[::-1])
    voice.write_bytes(b"OggS" + BINARY)
    connector = make_connector(graph, tmp_path)
    try:
        await connector.send(outbound("Here you are", attachments=(photo, contract)))
        await connector.send(outbound("listen", id=2, attachments=(voice,)))
    finally:
        await connector.close()
    uploads = graph.calls_of("media_upload")
    assert [u.files["file"][:2] for u in uploads] == [
        ("receipt.png", "image/png"),
        ("contract.pdf", "application/pdf"),
        ("note.ogg", "audio/ogg"),
    ]
    assert uploads[0].files["file"][2] == BINARY and uploads[1].files["file"][2] == BINARY[::-1]
    assert all(u.params["messaging_product"] == "whatsapp" for u in uploads)
    image, document, text, audio = graph.calls_of("messages")
    assert image.params["type"] == "image" and image.params["image"]["caption"] == "Here you are"
    assert graph.uploaded(image.params["image"]["id"])["data"] == BINARY
    assert document.params["document"] == {"id": document.params["document"]["id"], "filename": "contract.pdf"}
    # Audio takes no caption: the text goes first, on its own.
    assert text.params["text"]["body"] == "listen" and audio.params["type"] == "audio" and "caption" not in audio.params["audio"]


async def test_a_template_goes_with_its_parameters(graph: FakeGraphApi, tmp_path: Path) -> None:
    connector = make_connector(graph, tmp_path)
    template = {"name": "order_update", "language": "ru", "params": ["4711", "пятница"]}
    try:
        result = await connector.send(outbound("Заказ 4711 будет доставлен пятница", meta={"wa_id": IVAN, "template": template}))
    finally:
        await connector.close()
    [call] = graph.calls_of("messages")
    assert call.params["type"] == "template"
    assert call.params["template"] == {
        "name": "order_update",
        "language": {"code": "ru"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "4711"}, {"type": "text", "text": "пятница"}]}],
    }
    assert result.external_id.startswith("wamid.")


@pytest.mark.parametrize(
    ("status", "code", "error", "words"),
    [
        (400, 131047, PermanentError, "more than 24 hours have passed"),
        (400, 131026, PermanentError, "could not deliver to this number"),
        (400, 130429, TransientError, "asks to slow down"),
        (400, 131056, TransientError, "asks to slow down"),
        (400, 4, TransientError, "asks to slow down"),
        (400, 80007, TransientError, "asks to slow down"),
        (500, 131000, TransientError, "WhatsApp failed while sending"),
        (400, 100, PermanentError, "WhatsApp refused the message: (#100) Invalid parameter"),
        (401, 190, PermanentError, "rejected the access token"),
    ],
)
async def test_graph_errors_are_classified_in_words(
    graph: FakeGraphApi, tmp_path: Path, status: int, code: int, error: type[Exception], words: str
) -> None:
    graph.fail_next("messages", status, code=code, message="Invalid parameter" if code == 100 else "")
    connector = make_connector(graph, tmp_path)
    try:
        with pytest.raises(error) as raised:
            await connector.send(outbound("hello"))
    finally:
        await connector.close()
    assert type(raised.value) is error
    assert words in raised.value.reason
    assert TOKEN not in raised.value.reason


async def test_a_rejected_token_while_sending_takes_the_channel_down(graph: FakeGraphApi, tmp_path: Path) -> None:
    async with wired(graph, tmp_path) as rig:
        graph.fail_next("messages", 401, code=190, message="Error validating access token: Session has expired")
        with pytest.raises(PermanentError):
            await rig.connector.send(outbound("hello"))
        await eventually(rig.task.done)
        with pytest.raises(PermanentError, match="rejected the access token"):
            rig.task.result()
        # Down: webhooks are kept at Meta until the channel runs again.
        assert (await rig.post(rig.meta.payload([rig.meta.message(IVAN, body="hi")]))).status_code == 503


async def test_an_unreachable_graph_api_is_transient(tmp_path: Path) -> None:
    with FakeGraphApi() as gone:
        settings = settings_for(gone)
    connector = WhatsAppConnector(ChannelContext(1, "whatsapp", settings, tmp_path))
    try:
        with pytest.raises(TransientError, match="Graph API at .* is unavailable while sending"):
            await connector.send(outbound("hello"))
        with pytest.raises(TransientError):
            await connector.run(RecordingSink())
    finally:
        await connector.close()


async def test_check_names_the_number_and_missing_settings_say_where(graph: FakeGraphApi, tmp_path: Path) -> None:
    connector = make_connector(graph, tmp_path)
    try:
        assert await connector.check() == "WhatsApp +1 555-010-0199 (Omni Shop)"
    finally:
        await connector.close()
    bare = WhatsAppConnector(ChannelContext(1, "whatsapp", {"graph_url": graph.url}, tmp_path))
    with pytest.raises(PermanentError, match="token_env.*app_secret_env.*verify_token_env.*phone_number_id"):
        await bare.run(RecordingSink())
    wrong = make_connector(graph, tmp_path, token="EAAG-wrong")
    try:
        with pytest.raises(PermanentError, match="rejected the access token"):
            await wrong.run(RecordingSink())
    finally:
        await wrong.close()


# -- the core: a real Hub on a real Store ---------------------------------------------------


def core_settings(graph: FakeGraphApi, tmp_path: Path, port: int, **options: Any) -> Settings:
    return Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        channels=[ChannelSettings("whatsapp", "WhatsApp", settings_for(graph, **options))],
        listener=ListenerSettings(port=port),
    )


async def test_the_core_stores_a_webhook_sends_the_reply_and_follows_its_statuses(graph: FakeGraphApi, tmp_path: Path) -> None:
    port = free_port()
    store = await Store.open(tmp_path / "core.db")
    # Ivan is known by his phone (he called once): WhatsApp from that number is the same person.
    ivan = await store.db.write(history.add_customer, "Ivan (phone)", [("phone", "+" + IVAN, "+7 999 123-45-67")])
    meta = Meta(f"http://127.0.0.1:{port}/hooks/whatsapp")
    photo = graph.add_media(BINARY, "image/jpeg")
    try:
        async with running_core(core_settings(graph, tmp_path, port), store):
            incoming = [
                meta.message(IVAN, body=HOSTILE_TEXTS[4] + "Где заказ?"),
                meta.message(IVAN, "image", id=photo, mime_type="image/jpeg"),
            ]
            assert (await meta.post(meta.payload(incoming, names={IVAN: "Иван"}))).status_code == 200
            [row] = await store.inbox_page(InboxView.ALL)
            assert row.customer_id == ivan
            entries = await store.timeline(row.conversation_id)
            assert [e.body for e in entries if e.direction == "in"] == ["Где заказ?", ""]  # sanitised at ingest
            stored = [e for e in entries if e.attachments][0].attachments[0]
            assert (tmp_path / "data" / "attachments" / stored.path).read_bytes() == BINARY

            reply = await store.queue_reply(row.conversation_id, "Завтра", "alice")

            async def state() -> str:
                return next(e for e in await store.timeline(row.conversation_id) if e.id == reply).state

            async def reaches(wanted: str) -> None:
                for _ in range(250):
                    if await state() == wanted:
                        return
                    await asyncio.sleep(0.02)
                raise AssertionError(f"the reply never became {wanted}; it is {await state()}")

            await reaches("sent")
            [call] = graph.calls_of("messages")
            assert call.params["to"] == IVAN and call.params["text"]["body"] == "Завтра"
            wamid = next(e for e in await store.timeline(row.conversation_id) if e.id == reply).external_id
            assert wamid.startswith("wamid.")
            for word in ("delivered", "read"):
                assert (await meta.post(meta.payload(statuses=[Meta.status(wamid, word)]))).status_code == 200
                await reaches(word)
            # A late "delivered" never steps back from "read".
            assert (await meta.post(meta.payload(statuses=[Meta.status(wamid, "delivered")]))).status_code == 200
            assert await state() == "read"
            failed = [graph_error_object(131026, "Message undeliverable")]
            assert (await meta.post(meta.payload(statuses=[Meta.status(wamid, "failed", errors=failed)]))).status_code == 200
            await reaches("failed")
            error = next(e for e in await store.timeline(row.conversation_id) if e.id == reply).error
            assert error.startswith("WhatsApp could not deliver to this number") and "131026" in error
            channels = await store.channels()
            assert channels[0].health == "up" and "Omni Shop" in channels[0].health_detail
    finally:
        await meta.close()
        await store.close()


async def test_a_template_queued_by_an_operator_goes_out_as_a_template(graph: FakeGraphApi, tmp_path: Path) -> None:
    port = free_port()
    store = await Store.open(tmp_path / "core.db")
    meta = Meta(f"http://127.0.0.1:{port}/hooks/whatsapp")
    try:
        async with running_core(core_settings(graph, tmp_path, port), store):
            assert (await meta.post(meta.payload([meta.message(IVAN, body="hi", at=1_600_000_000)]))).status_code == 200
            [row] = await store.inbox_page(InboxView.ALL)
            template = {"name": "order_update", "language": "ru", "params": ["4711", "завтра"]}
            await store.queue_reply(
                row.conversation_id, "Заказ 4711 будет доставлен завтра", "alice", meta={"template": template}
            )
            await eventually(lambda: bool(graph.calls_of("messages")))
    finally:
        await meta.close()
        await store.close()
    [call] = graph.calls_of("messages")
    assert call.params["type"] == "template" and call.params["to"] == IVAN
    assert call.params["template"]["name"] == "order_update"
    assert [p["text"] for p in call.params["template"]["components"][0]["parameters"]] == ["4711", "завтра"]


async def test_restarts_in_the_middle_of_a_stream_store_every_message_once(graph: FakeGraphApi, tmp_path: Path) -> None:
    """Meta keeps delivering while the core stops and starts again: a webhook is retried until
    it is answered 200 (503 while the channel is down, refused while nothing listens), and
    sometimes delivered twice. Every message is stored exactly once."""
    port = free_port()
    settings = core_settings(graph, tmp_path, port)
    meta = Meta(f"http://127.0.0.1:{port}/hooks/whatsapp")
    customers = [f"7999000{n:04d}" for n in range(5)]
    total = 150
    payloads = [meta.payload([meta.message(customers[n % 5], body=f"message {n}")]) for n in range(total)]
    answers: Counter[int] = Counter()
    rng = random.Random(7)

    async def meta_delivers() -> None:
        for payload in payloads:
            while True:
                try:
                    status = (await meta.post(payload)).status_code
                except httpx.TransportError:
                    status = 0  # nothing listening: Meta tries again later
                answers[status] += 1
                if status == 200:
                    if rng.random() < 0.2:
                        with contextlib.suppress(httpx.TransportError):
                            await meta.post(payload)  # a duplicate delivery, as Meta warns
                    break
                await asyncio.sleep(0.01)

    store = await Store.open(tmp_path / "core.db")
    try:
        sender = asyncio.create_task(meta_delivers())
        restarts = 0
        while not sender.done():
            async with running_core(settings, store, until_up=None):
                await asyncio.wait([sender], timeout=rng.uniform(0.02, 0.12))
            restarts += 1
        await sender
        rows = await store.db.run(
            lambda c: c.execute("SELECT count(*), count(DISTINCT external_id) FROM messages WHERE direction = 'in'").fetchone()
        )
        bodies = await store.db.run(
            lambda c: [r[0] for r in c.execute("SELECT body FROM messages WHERE direction = 'in' ORDER BY id")]
        )
    finally:
        await meta.close()
        await store.close()
    assert tuple(rows) == (total, total)
    assert bodies == [f"message {n}" for n in range(total)]
    print(f"{restarts} restarts, answers {dict(answers)}")
    assert restarts >= 4 and answers[200] == total
    assert answers[0] + answers[503] > 0, answers  # some deliveries did land while it was down


def test_a_timestamp_no_clock_can_hold_keeps_the_message():
    """One absurd date must not turn a whole webhook into a 503 that Meta retries for days."""
    from datetime import UTC, datetime, timedelta

    from connectors.whatsapp_inbound import timestamp as _timestamp

    for value in ("1e30", 10**20, "-1e30"):
        assert abs(_timestamp(value) - datetime.now(UTC)) < timedelta(seconds=5)
