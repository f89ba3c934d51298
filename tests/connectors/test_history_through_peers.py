"""The history's rules for edits and delivery states, through real channels: the Telegram Bot
API peer (python-telegram-bot polling it) and the WhatsApp Graph API peer (signed webhooks), each
feeding a real core (tests/rig.py) on a real store."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.models import InboxView
from omniconsole.store import Store
from tests.peers.graph_api import APP_SECRET, PHONE_NUMBER_ID, TOKEN, VERIFY_TOKEN, FakeGraphApi, Meta, graph_error_object
from tests.peers.telegram_api import FakeBotApi, private_chat, user
from tests.rig import free_port, running_core

# PTB warns about its own `RetryAfter.retry_after` type change when it builds the exception.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

PAYLOADS = Path(__file__).parent / "payloads"
IVAN_WA = "79991234567"


async def until(check, timeout: float = 15.0, what: str = "the condition"):
    """Poll the async `check` until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened")
        await asyncio.sleep(0.02)


async def inbound_entries(store: Store) -> list[Any]:
    rows = await store.inbox_page(InboxView.ALL)
    if not rows:
        return []
    return [e for e in await store.timeline(rows[0].conversation_id) if e.direction == "in"]


# -- Telegram -------------------------------------------------------------------------------


@pytest.fixture
def bot_api() -> FakeBotApi:
    with FakeBotApi() as server:
        yield server


def telegram_settings(api: FakeBotApi, tmp_path: Path) -> Settings:
    options = {"token": api.token, "base_url": api.base_url, "base_file_url": api.base_file_url, "poll_timeout": 1}
    return Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        channels=[ChannelSettings("telegram", "Telegram", options)],
        listener=ListenerSettings(port=free_port(), enabled=True),
    )


async def test_twenty_edits_in_one_second_all_count_and_the_last_one_wins(bot_api: FakeBotApi, tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "core.db")
    customer = user(5550401, "Vera", "Probe")
    try:
        async with running_core(telegram_settings(bot_api, tmp_path), store):
            original = bot_api.push_message(customer, text="edit 0")
            entries = await until(lambda: inbound_entries(store), what="the message")
            message_id = entries[0].id
            # Twenty edits within one second: Telegram stamps them all with the same edit_date.
            second = int(time.time()) + 1
            for n in range(1, 21):
                bot_api.push_update("edited_message", {**original, "text": f"edit {n}", "edit_date": second})

            async def last_edit_stored():
                [entry] = await inbound_entries(store)
                return entry.body == "edit 20" and entry

            entry = await until(last_edit_stored, what="the twentieth edit")
            await until(lambda: _confirmed(bot_api), what="the offset to move past the edits")
        assert entry.edited_at == second
        versions = await store.message_versions(message_id)
        assert [v["body"] for v in versions] == [f"edit {n}" for n in range(20)]
    finally:
        await store.close()


async def _confirmed(api: FakeBotApi) -> bool:
    return api.pending_update_ids() == []


async def test_an_edit_that_replaces_the_photo_stores_the_new_photo(bot_api: FakeBotApi, tmp_path: Path) -> None:
    # Payload 05 of the real-world cases: the same caption, the photo swapped 40 s later.
    case = json.loads((PAYLOADS / "05-telegram-edited-media-replaced" / "updates.json").read_text(encoding="utf-8"))
    customer = case["customer"]
    data = {"FIRST": b"\xff\xd8 first photo of the damage", "SECOND": b"\xff\xd8 second photo, the right box"}
    files = {key: bot_api.add_file(data[key], path) for key, path in case["files"].items()}

    def message(fields: dict[str, Any], date: int) -> dict[str, Any]:
        photo = [{**files[fields["photo"]], "width": 1280, "height": 960}]
        built = {
            "message_id": fields["message_id"],
            "date": date,
            "chat": private_chat(customer),
            "from": customer,
            "caption": fields["caption"],
            "photo": photo,
        }
        if "edit_date_offset" in fields:
            built["edit_date"] = date + fields["edit_date_offset"]
        return built

    store = await Store.open(tmp_path / "core.db")
    try:
        async with running_core(telegram_settings(bot_api, tmp_path), store):
            date = int(time.time()) - 60
            bot_api.push_update("message", message(case["message"], date))
            bot_api.push_update("edited_message", message(case["edited_message"], date))

            async def new_photo_stored():
                entries = await inbound_entries(store)
                return (
                    entries
                    and entries[0].attachments
                    and entries[0].attachments[0].filename.endswith(files["SECOND"]["file_unique_id"] + ".jpg")
                    and entries[0]
                )

            entry = await until(new_photo_stored, what="the replacing photo")
        assert entry.body == "Photo of the damage, box 2 of 2"
        [attachment] = entry.attachments
        assert (tmp_path / "data" / "attachments" / attachment.path).read_bytes() == data["SECOND"]
        [version] = await store.message_versions(entry.id)
        assert version["files"] == [f"photo_{files['FIRST']['file_unique_id']}.jpg"]
        assert entry.edited_at == date + case["edited_message"]["edit_date_offset"]
    finally:
        await store.close()


# -- WhatsApp -------------------------------------------------------------------------------


@pytest.fixture
def graph() -> FakeGraphApi:
    with FakeGraphApi() as server:
        yield server


def whatsapp_settings(graph: FakeGraphApi, tmp_path: Path, port: int) -> Settings:
    options = {
        "token": TOKEN,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "phone_number_id": PHONE_NUMBER_ID,
        "graph_url": graph.url,
        "api_version": "v21.0",
    }
    return Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        channels=[ChannelSettings("whatsapp", "WhatsApp", options)],
        listener=ListenerSettings(port=port),
    )


async def test_a_late_sent_after_a_failure_keeps_the_failure_and_its_reason(graph: FakeGraphApi, tmp_path: Path) -> None:
    port = free_port()
    store = await Store.open(tmp_path / "core.db")
    meta = Meta(f"http://127.0.0.1:{port}/hooks/whatsapp")
    try:
        async with running_core(whatsapp_settings(graph, tmp_path, port), store):
            assert (await meta.post(meta.payload([meta.message(IVAN_WA, body="Где заказ?")]))).status_code == 200
            [row] = await until(lambda: store.inbox_page(InboxView.ALL), what="the message")
            reply = await store.queue_reply(row.conversation_id, "Завтра", "alice")

            async def entry():
                return next(e for e in await store.timeline(row.conversation_id) if e.id == reply)

            async def sent():
                found = await entry()
                return found.state == "sent" and found

            wamid = (await until(sent, what="the send")).external_id
            failed = [graph_error_object(131026, "Message undeliverable")]
            assert (await meta.post(meta.payload(statuses=[Meta.status(wamid, "failed", errors=failed)]))).status_code == 200

            async def failed_state():
                found = await entry()
                return found.state == "failed" and found

            reason = (await until(failed_state, what="the failure")).error
            assert "131026" in reason
            # Meta's late word about the same message, separately and in one webhook.
            assert (await meta.post(meta.payload(statuses=[Meta.status(wamid, "sent")]))).status_code == 200
            late = [Meta.status(wamid, "delivered"), Meta.status(wamid, "read"), Meta.status(wamid, "sent")]
            assert (await meta.post(meta.payload(statuses=late))).status_code == 200
            await asyncio.sleep(0.2)
            final = await entry()
            assert (final.state, final.error) == ("failed", reason)
    finally:
        await meta.close()
        await store.close()
