"""The SMS channel over SMPP 3.4, against an SMSC on 127.0.0.1 (tests/peers/smsc.py) and a real
core (tests/rig.py) on a real store: what the customer sent is in the history, what the
operator wrote reached the SMSC as the spec says, receipts became delivery states."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sms import SmsConnector
from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.models import InboxView
from omniconsole.store import Store
from tests.peers.smsc import Smsc, running_smsc
from tests.rig import free_port, running_core
from tests.waiting import eventually

IVAN = "79991234567"
IVAN_E164 = "+79991234567"


def sms_settings(tmp_path: Path, smsc: Smsc, **options: Any) -> Settings:
    channel = {
        "host": "127.0.0.1",
        "port": smsc.port,
        "system_id": smsc.system_id,
        "password": smsc.password,
        "sender": "Shop",
        "enquire_link": 30,
        "response_timeout": 2,
        "throttle_pause": 0.05,
        **options,
    }
    # SMPP has no webhooks; the rig waits for a listener, so give the core one.
    return Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        default_region="RU",
        channels=[ChannelSettings("sms", "sms", channel)],
        listener=ListenerSettings(port=free_port(), enabled=True),
    )


@contextlib.asynccontextmanager
async def core_with(tmp_path: Path, smsc: Smsc, store: Store | None = None, **options: Any) -> AsyncIterator[Store]:
    own = store is None
    store = store or await Store.open(tmp_path / "core.db")
    try:
        async with running_core(sms_settings(tmp_path, smsc, **options), store, **options.pop("_hub", {})):
            yield store
    finally:
        if own:
            await store.close()


async def wait_stored(store: Store, count: int = 1) -> list:
    rows: list = []

    async def enough() -> bool:
        nonlocal rows
        rows = await store.inbox_page(InboxView.ALL)
        return len(rows) >= 1 and sum(1 for e in await store.timeline(rows[0].conversation_id) if e.direction == "in") >= count

    for _ in range(500):
        if await enough():
            return rows
        await asyncio.sleep(0.02)
    raise AssertionError("the message was not stored")


async def inbound(store: Store) -> list:
    [row] = await store.inbox_page(InboxView.ALL)
    return [e for e in await store.timeline(row.conversation_id) if e.direction == "in"]


async def reply(store: Store, body: str) -> int:
    [row] = await store.inbox_page(InboxView.ALL)
    return await store.queue_reply(row.conversation_id, body, "alice")


async def state_of(store: Store, message_id: int, *states: str, timeout: float = 10) -> Any:
    found = None
    for _ in range(int(timeout / 0.02)):
        [row] = await store.inbox_page(InboxView.ALL)
        found = next(e for e in await store.timeline(row.conversation_id) if e.id == message_id)
        if found.state in states:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(
        f"message {message_id} is {found.state if found else None} ({found.error if found else ''}), not {states}"
    )


# -- bind, inbound, submit, receipts ------------------------------------------------------------


async def test_a_customer_sms_is_stored_as_their_phone_and_the_reply_goes_back_as_gsm_and_is_delivered(tmp_path: Path) -> None:
    async with running_smsc() as smsc, core_with(tmp_path, smsc) as store:
        await asyncio.wait_for(smsc.bound.wait(), 5)
        [status] = await smsc.deliver(IVAN, "Where is my order?")
        assert status == 0  # answered only once stored: the message is there now
        [message] = await inbound(store)
        assert message.body == "Where is my order?" and message.channel_kind == "sms"
        [row] = await store.inbox_page(InboxView.ALL)
        profile = await store.customer_profile(row.customer_id)
        assert [(i.kind, i.address) for i in profile.identities] == [("phone", IVAN_E164)]

        sent = await reply(store, "It ships today {tracking}")
        done = await state_of(store, sent, "delivered")
        [part] = smsc.submitted
        assert part.text == "It ships today {tracking}" and part.data_coding == 0 and not part.udh
        assert (part.destination, part.dest_ton, part.dest_npi) == (IVAN, 1, 1)
        assert (part.source, part.source_ton, part.source_npi) == ("Shop", 5, 0)  # alphanumeric sender id
        assert part.registered_delivery == 1 and done.state == "delivered"


@pytest.mark.parametrize(
    "id_format, receipt_format, tlvs",
    [
        ("hex", "decimal", False),
        ("decimal", "hex", False),
        ("hex", "hex", True),
        ("decimal", "decimal", False),
    ],
)
async def test_receipts_name_the_message_in_hex_or_decimal_and_both_match(
    tmp_path: Path, id_format: str, receipt_format: str, tlvs: bool
) -> None:
    async with (
        running_smsc(id_format=id_format, receipt_id_format=receipt_format, receipt_tlvs=tlvs) as smsc,
        core_with(tmp_path, smsc) as store,
    ):
        await smsc.deliver(IVAN, "hi")
        await state_of(store, await reply(store, "hello"), "delivered")


async def test_an_undelivered_receipt_fails_the_message_with_the_reason_in_words(tmp_path: Path) -> None:
    async with running_smsc(auto_receipt="UNDELIV") as smsc, core_with(tmp_path, smsc) as store:
        await smsc.deliver(IVAN, "hi")
        failed = await state_of(store, await reply(store, "hello"), "failed")
        assert "could not be delivered to the phone" in failed.error and "UNDELIV" in failed.error


async def test_receipts_after_a_restart_still_find_messages_by_the_learnt_id_form(tmp_path: Path) -> None:
    async with running_smsc(receipt_id_format="decimal") as smsc:
        store = await Store.open(tmp_path / "core.db")
        try:
            async with core_with(tmp_path, smsc, store):
                await smsc.deliver(IVAN, "hi")
                await state_of(store, await reply(store, "first"), "delivered")
                smsc.auto_receipt = None
                second = await reply(store, "second")
                await state_of(store, second, "sent")
            # A new core has not seen "second" submitted: the receipt still finds it.
            async with core_with(tmp_path, smsc, store):
                await asyncio.wait_for(smsc.bound.wait(), 5)
                await smsc.receipt(smsc.submitted[-1])
                await state_of(store, second, "delivered")
        finally:
            await store.close()


# -- long texts and alphabets ------------------------------------------------------------------


async def test_cyrillic_goes_as_ucs2_in_parts_of_67_and_a_long_gsm_text_in_parts_of_153(tmp_path: Path) -> None:
    cyrillic = "Здравствуйте! Ваш заказ № 4711 передан в доставку, курьер позвонит за час до приезда. " * 2
    latin = ("Your order 4711 is on its way; the courier calls an hour before. " * 3)[:200] + "€"
    async with running_smsc() as smsc, core_with(tmp_path, smsc) as store:
        await smsc.deliver(IVAN, "hi")
        await state_of(store, await reply(store, cyrillic), "delivered")
        ucs2 = list(smsc.submitted)
        assert {p.data_coding for p in ucs2} == {8} and len(ucs2) == -(-len(cyrillic) // 67) == 3
        assert all(len(p.text) <= 67 for p in ucs2) and {p.concatenation[0] for p in ucs2} == {ucs2[0].concatenation[0]}
        assert sorted(p.concatenation[2] for p in ucs2) == [1, 2, 3] and {p.esm_class & 0x40 for p in ucs2} == {0x40}
        await state_of(store, await reply(store, "Привет"), "delivered")
        assert smsc.submitted[-1].data_coding == 8 and not smsc.submitted[-1].udh
        await state_of(store, await reply(store, latin), "delivered")
        gsm = smsc.submitted[-2:]
        assert {p.data_coding for p in gsm} == {0} and sorted(p.concatenation[1:] for p in gsm) == [(2, 1), (2, 2)]
        # 153 septets a part: the euro sign takes two (an escape and its code).
        assert smsc.texts() == [cyrillic, "Привет", latin]


async def test_an_inbound_message_in_parts_out_of_order_is_one_message_and_each_part_is_answered(tmp_path: Path) -> None:
    text = "Добрый день! Заказ 4711 пришёл неполный: нет зарядки и чехла. Что делать? " * 2
    async with running_smsc() as smsc, core_with(tmp_path, smsc) as store:
        await asyncio.wait_for(smsc.bound.wait(), 5)
        statuses = await smsc.deliver(IVAN, text, parts=3, order=[2, 3, 1])
        assert statuses == [0, 0, 0]
        [message] = await inbound(store)
        assert message.body == text
        # A part delivered again (its answer was lost) adds nothing.
        assert await smsc.deliver(IVAN, text, parts=3, order=[2]) == [0]
        await asyncio.sleep(0.2)
        assert len(await inbound(store)) == 1


# -- the link ----------------------------------------------------------------------------------


async def test_a_dropped_connection_is_reopened_and_the_link_kept_alive_with_enquire_link(tmp_path: Path) -> None:
    async with running_smsc() as smsc, core_with(tmp_path, smsc, enquire_link=0.1) as store:
        await smsc.deliver(IVAN, "hi")
        await eventually(lambda: smsc.enquire_links >= 2, 5)
        await smsc.drop()
        await eventually(lambda: smsc.binds >= 2, 10)
        await state_of(store, await reply(store, "after the drop"), "delivered")
        assert [c.health for c in await store.channels()] == ["up"]


async def test_an_unknown_command_gets_generic_nack(tmp_path: Path) -> None:
    async with running_smsc() as smsc, core_with(tmp_path, smsc):
        await asyncio.wait_for(smsc.bound.wait(), 5)
        assert await smsc.send_raw(0x00000103) == 0x03  # data_sm: not something we take
        assert await smsc.send_raw(0x00000015) == 0  # enquire_link from the SMSC is answered


async def test_wrong_credentials_take_the_channel_down_in_words(tmp_path: Path) -> None:
    async with running_smsc() as smsc:
        store = await Store.open(tmp_path / "core.db")
        try:
            async with running_core(sms_settings(tmp_path, smsc, password="wrong"), store, until_up=None):
                for _ in range(250):
                    [channel] = await store.channels()
                    if channel.health == "down":
                        break
                    await asyncio.sleep(0.02)
                assert channel.health == "down" and "SMPP password is wrong" in channel.health_detail
        finally:
            await store.close()


# -- flow control and errors -------------------------------------------------------------------


async def test_throttling_is_waited_out_and_the_same_part_sent_again(tmp_path: Path) -> None:
    async with running_smsc(throttle_next=3) as smsc, core_with(tmp_path, smsc) as store:
        await smsc.deliver(IVAN, "hi")
        await state_of(store, await reply(store, "hello"), "delivered")
        assert smsc.throttled == 3 and smsc.texts() == ["hello"]


async def test_a_generic_nack_to_a_submit_is_a_system_error_and_the_outbox_tries_again(tmp_path: Path) -> None:
    async with running_smsc(nack_next=1) as smsc, core_with(tmp_path, smsc) as store:
        await smsc.deliver(IVAN, "hi")
        sent = await state_of(store, await reply(store, "hello"), "delivered")
        assert smsc.nack_next == 0 and smsc.texts() == ["hello"] and sent.attempts == 2


async def test_doctor_binds_and_unbinds_and_names_a_wrong_login(tmp_path: Path) -> None:
    from connectors.base import ChannelContext, PermanentError

    async with running_smsc() as smsc:
        options = {"host": "127.0.0.1", "port": smsc.port, "system_id": smsc.system_id, "password": smsc.password}
        assert await SmsConnector(ChannelContext(1, "sms", options, tmp_path)).check() == (
            f"SMPP omni@127.0.0.1:{smsc.port} (SMSC TestSMSC)"
        )
        with pytest.raises(PermanentError, match="SMPP system id .login. is wrong"):
            await SmsConnector(ChannelContext(1, "sms", {**options, "system_id": "nobody"}, tmp_path)).check()


async def test_no_more_submit_sm_in_flight_than_the_window(tmp_path: Path) -> None:
    async with running_smsc(resp_delay=0.15) as smsc, core_with(tmp_path, smsc, window=2) as store:
        await smsc.deliver(IVAN, "hi")
        body = "x" * 153 * 5
        await state_of(store, await reply(store, body), "delivered")
        assert smsc.max_in_flight == 2 and smsc.texts() == [body]


async def test_an_invalid_number_fails_at_once_in_words(tmp_path: Path) -> None:
    async with running_smsc(invalid_numbers={IVAN}) as smsc, core_with(tmp_path, smsc) as store:
        await smsc.deliver(IVAN, "hi")
        failed = await state_of(store, await reply(store, "hello"), "failed")
        assert "phone number is not valid" in failed.error and "0x0000000B" in failed.error
        assert "attempts" not in failed.error  # permanent: not retried


# -- the customer's wishes and the channel's limits ----------------------------------------------


async def test_stop_marks_the_customer_and_later_sends_are_refused_until_start(tmp_path: Path) -> None:
    async with running_smsc() as smsc, core_with(tmp_path, smsc) as store:
        await smsc.deliver(IVAN, "Hello")
        await smsc.deliver(IVAN, "стоп!")
        [row] = await store.inbox_page(InboxView.ALL)
        profile = await store.customer_profile(row.customer_id)
        assert profile.do_not_contact.startswith("texted СТОП on ") and profile.do_not_contact.endswith("(sms)")
        refused = await state_of(store, await reply(store, "a discount for you"), "failed")
        assert "asked for no more SMS from this channel" in refused.error
        assert smsc.submitted == []
        await smsc.deliver(IVAN, "START")
        await eventually(lambda: True)
        profile = await store.customer_profile(row.customer_id)
        assert profile.do_not_contact is None
        await state_of(store, await reply(store, "welcome back"), "delivered")


async def test_the_opt_out_outlives_a_restart(tmp_path: Path) -> None:
    async with running_smsc() as smsc:
        store = await Store.open(tmp_path / "core.db")
        try:
            async with core_with(tmp_path, smsc, store):
                await smsc.deliver(IVAN, "STOP")
            async with core_with(tmp_path, smsc, store):
                refused = await state_of(store, await reply(store, "hello"), "failed")
                assert "asked for no more SMS" in refused.error and smsc.submitted == []
        finally:
            await store.close()


async def test_the_daily_limit_refuses_in_words(tmp_path: Path) -> None:
    async with running_smsc() as smsc, core_with(tmp_path, smsc, daily_limit=2) as store:
        await smsc.deliver(IVAN, "hi")
        await state_of(store, await reply(store, "one"), "delivered")
        await state_of(store, await reply(store, "two"), "delivered")
        refused = await state_of(store, await reply(store, "three"), "failed")
        assert "daily limit of 2 SMS on this channel is reached" in refused.error
        assert smsc.texts() == ["one", "two"]


# -- at least once, and once ---------------------------------------------------------------------


class StoresThenHangs(SmsConnector):
    """Stands in for a core killed after the message is stored and before the answer is sent."""

    async def _save(self, messages=()):
        receipts = await super()._save(messages)
        if messages:
            await asyncio.Event().wait()
        return receipts


async def test_a_core_killed_between_storing_and_answering_stores_the_redelivery_once(tmp_path: Path) -> None:
    async with running_smsc() as smsc:
        store = await Store.open(tmp_path / "core.db")
        try:

            def hanging(channel, context):
                return StoresThenHangs(context)

            async with running_core(sms_settings(tmp_path, smsc), store, connector_factory=hanging):
                await asyncio.wait_for(smsc.bound.wait(), 5)
                await smsc.deliver(IVAN, "Is the shop open on Sunday?", wait=False)
                await wait_stored(store)
            # The core is gone and the SMSC never had its answer: it delivers the SMS again.
            await asyncio.sleep(1.1)  # a new second: an id made of the arrival time alone would differ
            async with core_with(tmp_path, smsc, store):
                assert await smsc.deliver(IVAN, "Is the shop open on Sunday?") == [0]
                assert [m.body for m in await inbound(store)] == ["Is the shop open on Sunday?"]
        finally:
            await store.close()


async def test_the_smsc_timestamp_tells_a_redelivery_from_the_same_words_sent_again(tmp_path: Path) -> None:
    async with running_smsc() as smsc, core_with(tmp_path, smsc, redelivery_window=1) as store:
        await smsc.deliver(IVAN, "ok", smsc_time="261130101500000+")
        await smsc.deliver(IVAN, "ok", smsc_time="261130101500000+")  # delivered again
        await smsc.deliver(IVAN, "ok", smsc_time="261130101700000+")  # written again two minutes later
        assert [m.body for m in await inbound(store)] == ["ok", "ok"]
        await smsc.deliver(IVAN, "yes")
        await smsc.deliver(IVAN, "yes")  # no timestamp: within the window, the same message
        assert len(await inbound(store)) == 3
        await asyncio.sleep(1.2)
        await smsc.deliver(IVAN, "yes")  # after the window: a new message
        assert len(await inbound(store)) == 4


# -- settings and layering ---------------------------------------------------------------------


def test_the_readme_and_template_examples_make_working_channels(tmp_path: Path) -> None:
    import re
    import tomllib

    from connectors.base import ChannelContext

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### SMS (SMPP 3.4 or an HTTP gateway)") :]
    section = section[: section.index("\n### ", 5)]
    blocks = re.findall(r"```toml\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    for block in blocks:
        [channel] = tomllib.loads(block)["channels"]
        options = {
            k.removesuffix("_env"): "secret" if k.endswith("_env") else v for k, v in channel.items() if k not in ("kind", "name")
        }
        connector = SmsConnector(ChannelContext(1, channel["name"], options, tmp_path))
        assert connector.transport == channel["transport"]
    with pytest.raises(ValueError, match="at most 11 characters"):
        SmsConnector(ChannelContext(1, "sms", {"host": "h", "system_id": "s", "sender": "A very long shop"}, tmp_path))


def test_the_sms_channel_imports_neither_store_nor_core_nor_the_window() -> None:
    import subprocess
    import sys

    code = (
        "import importlib, sys; [importlib.import_module(m) for m in ('connectors.sms', 'connectors.sms.http')]; "
        "bad = [m for m in sys.modules if m.startswith(('omniconsole.store', 'omniconsole.core', 'omniconsole.tui', 'textual', 'sqlite3'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_without_a_sender_id_the_source_is_left_to_the_account_default(tmp_path: Path) -> None:
    async with running_smsc() as smsc, core_with(tmp_path, smsc, sender="") as store:
        await smsc.deliver(IVAN, "hi")
        await state_of(store, await reply(store, "hello"), "delivered")
        assert (smsc.submitted[0].source, smsc.submitted[0].source_ton) == ("", 0)


async def test_a_numeric_sender_goes_as_an_international_number(tmp_path: Path) -> None:
    async with running_smsc() as smsc, core_with(tmp_path, smsc, sender="+74951234567") as store:
        await smsc.deliver(IVAN, "hi")
        await state_of(store, await reply(store, "hello"), "delivered")
        part = smsc.submitted[0]
        assert (part.source, part.source_ton, part.source_npi) == ("74951234567", 1, 1)


async def test_a_long_message_whose_last_part_never_comes_is_stored_with_the_gap_said(tmp_path: Path) -> None:
    text = "First half of a long message, " * 6 + "and the second half that got lost somewhere."
    async with running_smsc() as smsc, core_with(tmp_path, smsc, parts_timeout=1) as store:
        await asyncio.wait_for(smsc.bound.wait(), 5)
        assert await smsc.deliver(IVAN, text, parts=2, order=[1]) == [0]
        rows = await wait_stored(store)
        [message] = await inbound(store)
        assert message.body.endswith("[part 2 of 2 did not arrive]") and message.body.startswith("First half")
        assert rows
