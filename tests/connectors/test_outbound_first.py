"""Conversations the company starts (issue #22), through the real core against the peers on
127.0.0.1: WhatsApp (a template outside 24 hours), e-mail (SMTP, with a subject) and Telegram
(a bot cannot write first); the customer's answer threads into the same conversation; the
idempotency key, "do not contact", and `omniconsole send` / `send-status`."""

from __future__ import annotations

import asyncio
import functools
import json
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from connectors.mail_parse import parse_mail
from omniconsole.cli import main
from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.core.contact import may_contact_first
from omniconsole.core.ingest import Ingestor
from omniconsole.core.outbound import OutboundRequest, SendRefused, start_conversation
from omniconsole.models import ConversationStatus, InboxView
from omniconsole.store import Store
from tests.conftest import inbound
from tests.connectors.test_whatsapp import settings_for as whatsapp_options
from tests.peers.graph_api import FakeGraphApi, Meta
from tests.peers.smtp import running_smtp
from tests.peers.telegram_api import FakeBotApi, user
from tests.rig import free_port, running_core
from tests.waiting import eventually as wait_until

eventually = functools.partial(wait_until, timeout=15.0, poll=0.01)
IVAN = "79991234567"
TEMPLATES = [{"name": "order_shipped", "language": "ru", "params": ["order"], "text": "Заказ {1} отправлен"}]


async def state_of(store: Store, message_id: int, wanted: str) -> None:
    for _ in range(500):
        started = await store.started_message(message_id=message_id)
        if started.state == wanted:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {message_id} never became {wanted}; it is {started.state} {started.error}")


@pytest.fixture
def graph() -> FakeGraphApi:
    with FakeGraphApi() as server:
        yield server


async def test_whatsapp_outside_24_hours_takes_a_template_and_the_answer_lands_in_the_same_conversation(
    graph: FakeGraphApi, tmp_path: Path
) -> None:
    port = free_port()
    settings = Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        channels=[ChannelSettings("whatsapp", "WhatsApp", whatsapp_options(graph, templates=TEMPLATES))],
        listener=ListenerSettings(port=port),
    )
    store = await Store.open(settings.database)
    meta = Meta(f"http://127.0.0.1:{port}/hooks/whatsapp")
    try:
        async with running_core(settings, store):
            with pytest.raises(SendRefused, match="24 hours.*order_shipped"):
                await start_conversation(store, settings, OutboundRequest(f"whatsapp:+{IVAN}", text="Hello"))
            with pytest.raises(SendRefused, match="takes 1 parameters"):
                await start_conversation(store, settings, OutboundRequest(f"whatsapp:+{IVAN}", template="order_shipped"))
            started = await start_conversation(
                store,
                settings,
                OutboundRequest(f"whatsapp:+{IVAN}", template="order_shipped", params=("4711",), author="shop"),
            )
            assert started.new_customer and not started.duplicate
            await state_of(store, started.message_id, "sent")
            [call] = graph.calls_of("messages")
            assert call.params["type"] == "template" and call.params["to"] == IVAN
            assert call.params["template"]["name"] == "order_shipped"
            conversation = await store.conversation(started.conversation_id)
            assert conversation.status == "pending"  # waiting on the customer, not on us
            # Ivan answers on WhatsApp: the same conversation, now open and waiting for us.
            assert (await meta.post(meta.payload([meta.message(IVAN, body="Спасибо! А когда доставка?")]))).status_code == 200
            [row] = await store.inbox_page(InboxView.ALL)
            assert row.conversation_id == started.conversation_id and row.customer_id == started.customer_id
            timeline = await store.timeline(started.conversation_id)
            assert {(e.direction, e.body) for e in timeline if e.direction in ("in", "out")} == {
                ("out", "Заказ 4711 отправлен"),
                ("in", "Спасибо! А когда доставка?"),
            }
            conversation = await store.conversation(started.conversation_id)
            assert conversation.status == "open" and conversation.first_response_at is None
            # Inside the 24 hours now: free text goes.
            again = await start_conversation(store, settings, OutboundRequest(f"whatsapp:+{IVAN}", text="Завтра"))
            assert again.conversation_id == started.conversation_id
            await state_of(store, again.message_id, "sent")
    finally:
        await meta.close()
        await store.close()


async def test_e_mail_needs_a_subject_goes_by_smtp_and_the_reply_threads_back(tmp_path: Path) -> None:
    with running_smtp() as smtp:
        options = {
            "address": "support@shop.example",
            "imap_host": "127.0.0.1",
            "imap_port": free_port(),
            "imap_security": "plain",
            "imap_user": "u",
            "imap_password": "p",
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "smtp_security": "plain",
            "smtp_user": smtp.user,
            "smtp_password": smtp.password,
        }
        settings = Settings(
            database=tmp_path / "core.db",
            data_dir=tmp_path / "data",
            channels=[ChannelSettings("email", "mail", options)],
            listener=ListenerSettings(port=free_port(), enabled=True),
        )
        store = await Store.open(settings.database)
        try:
            async with running_core(settings, store, until_up=None):
                with pytest.raises(SendRefused, match="needs a subject"):
                    await start_conversation(store, settings, OutboundRequest("email:Ann@Example.com", text="It shipped"))
                started = await start_conversation(
                    store,
                    settings,
                    OutboundRequest(
                        "email:Ann@Example.com", text="Your order 1042 has shipped.", subject="Order 1042", author="shop"
                    ),
                )
                await state_of(store, started.message_id, "sent")
                [mail] = smtp.received
                sent = mail.message
                assert sent["Subject"] == "Order 1042" and mail.recipients == ["ann@example.com"]
                # Ann answers the mail: her client quotes our Message-ID.
                reply = EmailMessage()
                reply["From"] = "Ann <ann@example.com>"
                reply["To"] = "support@shop.example"
                reply["Subject"] = "Re: Order 1042"
                reply["Message-ID"] = make_msgid(domain="example.com")
                reply["In-Reply-To"] = sent["Message-ID"]
                reply.set_content("Thank you! Where is it now?")
                channel_id = await store.ensure_channel("email", "mail")
                await Ingestor(store, settings.data_dir, "RU").ingest(channel_id, "email", [parse_mail(reply.as_bytes())], None)
                [row] = await store.inbox_page(InboxView.ALL)
                assert row.conversation_id == started.conversation_id
                assert (await store.conversation(row.conversation_id)).subject == "Order 1042"
        finally:
            await store.close()


async def test_a_telegram_bot_cannot_write_first_but_can_to_someone_who_wrote(tmp_path: Path) -> None:
    with FakeBotApi() as api:
        options = {"token": api.token, "base_url": api.base_url, "base_file_url": api.base_file_url, "poll_timeout": 1}
        settings = Settings(
            database=tmp_path / "core.db",
            data_dir=tmp_path / "data",
            channels=[ChannelSettings("telegram", "bot", options)],
            listener=ListenerSettings(port=free_port(), enabled=True),
        )
        store = await Store.open(settings.database)
        try:
            async with running_core(settings, store, until_up=None):
                with pytest.raises(SendRefused, match="can only write to someone who has started a chat"):
                    await start_conversation(store, settings, OutboundRequest("telegram:555", text="Hi"))
                assert api.calls_of("sendMessage") == []
                olga = user(555, "Olga")
                api.push_message(olga, text="hello")
                await eventually(lambda: bool(api.calls_of("getUpdates")))
                for _ in range(500):
                    if await store.inbox_page(InboxView.ALL):
                        break
                    await asyncio.sleep(0.02)
                [row] = await store.inbox_page(InboxView.ALL)
                await store.set_status(row.conversation_id, ConversationStatus.RESOLVED, "alice")
                started = await start_conversation(store, settings, OutboundRequest("telegram:555", text="Your order shipped"))
                assert started.customer_id == row.customer_id and started.conversation_id != row.conversation_id
                await state_of(store, started.message_id, "sent")
                assert api.calls_of("sendMessage")[-1].params["text"] == "Your order shipped"
        finally:
            await store.close()


async def test_the_idempotency_key_queues_once_and_do_not_contact_refuses_but_replies_go(tmp_path: Path) -> None:
    settings = Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        channels=[ChannelSettings("email", "mail", {"address": "s@shop.example"})],
    )
    store = await Store.open(settings.database)
    try:
        request = OutboundRequest("email:ann@example.com", text="Shipped", subject="Order 7", idempotency_key="order-7")
        first = await start_conversation(store, settings, request)
        second = await start_conversation(store, settings, request)
        assert second.duplicate and second.message_id == first.message_id
        assert len([e for e in await store.timeline(first.conversation_id) if e.direction == "out"]) == 1
        assert (await may_contact_first(store, first.customer_id)).allowed
        assert await store.set_do_not_contact(first.customer_id, "asked by phone", "alice")
        decision = await may_contact_first(store, first.customer_id)
        assert not decision.allowed and "asked by phone" in decision.reason
        with pytest.raises(SendRefused, match="do not contact"):
            await start_conversation(store, settings, OutboundRequest("email:ann@example.com", text="Sale!", subject="Sale"))
        # Her own message is still answered.
        channel_id = await store.ensure_channel("email", "mail")
        await Ingestor(store, settings.data_dir, "RU").ingest(
            channel_id, "email", [inbound("m1", "where is it?", kind="email", address="ann@example.com")], None
        )
        reply = await store.queue_reply(first.conversation_id, "On its way", "alice")
        assert reply > first.message_id
        profile = await store.customer_profile(first.customer_id)
        assert profile.do_not_contact.startswith("asked by phone")
        exported = await store.export_customer(first.customer_id, "alice")
        assert exported["customer"]["do_not_contact"] == "asked by phone"
        assert await store.set_do_not_contact(first.customer_id, None, "alice")
        assert (await may_contact_first(store, first.customer_id)).allowed
    finally:
        await store.close()


def test_send_and_send_status_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "omniconsole.toml"
    config.write_text(
        '[store]\ndata_dir = "data"\n[[channels]]\nkind = "email"\nname = "mail"\naddress = "s@shop.example"\n'
        '[[channels]]\nkind = "telegram"\nname = "bot"\ntoken = "1:x"\n',
        encoding="utf-8",
    )
    base = ["--config", str(config)]
    assert (
        main(
            [
                "send",
                *base,
                "--to",
                "email:ann@example.com",
                "--text",
                "Shipped",
                "--subject",
                "Order 9",
                "--idempotency-key",
                "k9",
                "--json",
            ]
        )
        == 0
    )
    first = json.loads(capsys.readouterr().out)
    assert first["state"] == "queued" and first["duplicate"] is False
    assert (
        main(
            [
                "send",
                *base,
                "--to",
                "email:ann@example.com",
                "--text",
                "Shipped",
                "--subject",
                "Order 9",
                "--idempotency-key",
                "k9",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["message_id"] == first["message_id"]
    assert main(["send-status", *base, "--idempotency-key", "k9"]) == 0
    assert capsys.readouterr().out.startswith(f"message {first['message_id']} in conversation")
    assert main(["send", *base, "--to", "telegram:42", "--text", "Hi"]) == 2
    assert "Telegram bot can only write to someone who has started a chat" in capsys.readouterr().err
    assert main(["send", *base, "--to", "fax:123", "--text", "Hi"]) == 2
    assert "KIND:ADDRESS" in capsys.readouterr().err
    assert main(["send-status", *base, "999"]) == 2


async def test_the_open_api_starts_a_conversation_and_reports_its_delivery_state(tmp_path: Path) -> None:
    import httpx

    port = free_port()
    with running_smtp() as smtp:
        mail = {
            "address": "support@shop.example",
            "imap_host": "127.0.0.1",
            "imap_port": free_port(),
            "imap_security": "plain",
            "imap_user": "u",
            "imap_password": "p",
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "smtp_security": "plain",
            "smtp_user": smtp.user,
            "smtp_password": smtp.password,
        }
        settings = Settings(
            database=tmp_path / "core.db",
            data_dir=tmp_path / "data",
            channels=[
                ChannelSettings("api", "CRM", {"token": "tok", "callback_url": "http://127.0.0.1:9/", "callback_secret": "s"}),
                ChannelSettings("email", "mail", mail),
            ],
            listener=ListenerSettings(port=port),
        )
        store = await Store.open(settings.database)
        client = httpx.AsyncClient(timeout=10, headers={"Authorization": "Bearer tok"})
        base = f"http://127.0.0.1:{port}/hooks/crm"
        try:
            async with running_core(settings, store, until_up="any"):
                for _ in range(250):
                    if any(c.name == "CRM" and c.health == "up" for c in await store.channels()):
                        break
                    await asyncio.sleep(0.02)
                order = {
                    "to": "email:ivan@example.com",
                    "subject": "Order 4711",
                    "text": "Your order has shipped.",
                    "idempotency_key": "order-4711-shipped",
                }
                first = await client.post(f"{base}/outbound", json=order)
                assert first.status_code == 202, first.text
                ids = first.json()
                assert ids["state"] == "queued" and ids["duplicate"] is False
                again = await client.post(f"{base}/outbound", json=order)
                assert again.json()["message_id"] == ids["message_id"] and again.json()["duplicate"] is True
                for _ in range(500):
                    state = (await client.get(f"{base}/outbound", params={"idempotency_key": "order-4711-shipped"})).json()
                    if state["state"] == "sent":
                        break
                    await asyncio.sleep(0.02)
                assert state["state"] == "sent" and smtp.received[0].message["Subject"] == "Order 4711"
                assert (await client.get(f"{base}/outbound", params={"message_id": "99999"})).status_code == 404
                refused = await client.post(f"{base}/outbound", json={"to": "email:ivan@example.com", "text": "hi"})
                assert refused.status_code == 422 and "needs a subject" in refused.json()["error"]
                await store.set_do_not_contact(ids["customer_id"], "asked by mail", "alice")
                barred = await client.post(f"{base}/outbound", json={**order, "idempotency_key": "sale", "text": "Sale!"})
                assert barred.status_code == 422 and "do not contact" in barred.json()["error"]
                assert (
                    await client.post(f"{base}/outbound", json=order, headers={"Authorization": "Bearer no"})
                ).status_code == 403
                # The CRM's own id travels with a message as an identity of kind `crm`.
                posted = await client.post(
                    f"{base}/messages",
                    json={
                        "idempotency_key": "m1",
                        "customer": {"email": "ivan@example.com", "crm_id": "C-17"},
                        "text": "Thanks!",
                    },
                )
                assert posted.status_code == 202, posted.text
                assert posted.json()["conversation_id"] == ids["conversation_id"]
                profile = await store.customer_profile(ids["customer_id"])
                assert ("crm", "C-17") in {(i.kind, i.address) for i in profile.identities}
        finally:
            await client.aclose()
            await store.close()


def test_a_csv_import_carries_the_crm_id_and_do_not_contact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = tmp_path / "crm.csv"
    rows.write_text(
        "Name,Email,CRM ID,Do not contact\nAnna,anna@example.com,C-1,yes\nBoris,boris@example.com,C-2,no\n,,C-3,\n",
        encoding="utf-8",
    )
    db = tmp_path / "core.db"
    assert main(["import", "contacts", str(rows), "--db", str(db), "--json"]) == 0, capsys.readouterr()
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["new"] == 3

    async def check() -> None:
        store = await Store.open(db)
        try:
            found = {}
            for hit in (await store.search("example.com")).customers:
                found[hit.display_name] = await store.customer_profile(hit.customer_id)
            anna, boris = found["Anna"], found["Boris"]
            assert ("crm", "C-1") in {(i.kind, i.address) for i in anna.identities}
            assert anna.do_not_contact == "import: Do not contact = yes" and boris.do_not_contact is None
            assert not (await may_contact_first(store, anna.id)).allowed
        finally:
            await store.close()

    asyncio.run(check())
    # A second run changes nothing (the flag is set once).
    assert main(["import", "contacts", str(rows), "--db", str(db), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (summary["new"], summary["updated"]) == (0, 0)
