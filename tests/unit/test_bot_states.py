"""The bot's state machine through the real ingest path (ChannelSink.deliver -> Store ->
Hub.run_pipeline -> BotStep) on a real store with the demo library: every handoff trigger,
silence after handoff, no loop, no answer twice, take-over from the window, the 7-day
withdrawal, suggest mode's offers and numbered replies. Channels are not run: the outbox rows
the bot queues are what is checked (tests/connectors/test_bot_telegram.py sends them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.base import InboundAttachment
from omniconsole.answers.bot_turn import BotStep
from omniconsole.answers.library import DEMO_LIBRARY, import_folder
from omniconsole.config import ChannelSettings, Settings
from omniconsole.core.hub import ChannelSink, Hub
from omniconsole.models import ConversationStatus
from omniconsole.store import Store
from omniconsole.store.bot import BotStore
from tests.conftest import inbound

DAY = 86400.0


class Rig:
    """A core that is not running: its sink takes messages as a connector would hand them."""

    def __init__(self, store: Store, hub: Hub, step: BotStep, channel_id: int):
        self.store, self.hub, self.step, self.channel_id = store, hub, step, channel_id
        self.rows = BotStore(store)
        self.now = 1_790_000_000.0
        self.seq = 0

    async def say(self, text: str, address: str = "1001", **fields) -> int:
        """The customer at `address` writes `text`; returns the conversation id."""
        self.seq += 1
        sink = ChannelSink(self.hub, self.channel_id, "telegram", "Telegram", None)
        receipts = await sink.deliver([inbound(f"m{self.seq}", text, address=address, at=self.now, **fields)], None)
        return receipts[0].conversation_id

    async def out(self, conversation_id: int) -> list:
        return [e for e in await self.store.timeline(conversation_id) if e.direction == "out"]

    async def state(self, conversation_id: int):
        return await self.rows.load(conversation_id)


@pytest.fixture
async def rig(tmp_path: Path, store: Store) -> Rig:
    return await make_rig(tmp_path, store, {"bot": "answer", "bot_name": "Bot"})


async def make_rig(tmp_path: Path, store: Store, options: dict) -> Rig:
    await import_folder(store, DEMO_LIBRARY, "test")
    settings = Settings(
        database=store.path, data_dir=tmp_path / "data", channels=[ChannelSettings("telegram", "Telegram", options)]
    )
    channel_id = await store.ensure_channel("telegram", "Telegram")
    step = BotStep(store)
    hub = Hub(settings, store, pipeline=[step])
    made = Rig(store, hub, step, channel_id)
    step.clock = lambda: made.now
    return made


async def handoff_category(store: Store, conversation_id: int) -> str:
    for event in await store.events_since(0, limit=10_000):
        if event.kind == "bot.handoff" and event.conversation_id == conversation_id:
            return json.loads(event.payload)["category"]
    return ""


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("оператор", "person"),
        ("Позовите человека", "person"),
        ("дайте живого человека", "person"),
        ("соедините с менеджером", "person"),
        ("нужен специалист", "person"),
        ("I want a human", "person"),
        ("agent please", "person"),
        ("can I talk to a person", "person"),
        ("representative", "person"),
        ("0", "person"),
        ("Вы совсем обнаглели?! Безобразие", "sensitive"),
        ("WHERE IS MY MONEY YOU PEOPLE", "sensitive"),
        ("хочу оставить жалобу на курьера", "sensitive"),
        ("I will take you to court", "sensitive"),
        ("вы отказали в возврате денег, я не согласен", "sensitive"),
        ("удалите мои персональные данные", "sensitive"),
        ("cancel order 123456 please", "account"),
        ("¿Dónde está mi pedido? Lo pagué hace una semana", "language"),
        ("what is the capital of France", "low_confidence"),
        ("где мой заказ?", "internal"),  # order-status needs {ask:}: internal, never sent by the bot
    ],
)
async def test_each_trigger_hands_off_at_once_with_words(rig: Rig, text: str, category: str) -> None:
    conversation_id = await rig.say(text)
    state = await rig.state(conversation_id)
    assert state.state == "human", state
    assert await handoff_category(rig.store, conversation_id) == category
    out = await rig.out(conversation_id)
    assert len(out) == 1  # at most one automatic message per customer message
    assert "оператор" in out[0].body.lower() or "person" in out[0].body.lower()
    note = [e.body for e in await rig.store.timeline(conversation_id) if e.direction == "note"][0]
    assert state.handoff_reason in note and "Answers sent: none" in note


@pytest.mark.parametrize(
    "fields",
    [
        {"attachments": (InboundAttachment("voice.ogg", "audio/ogg", b"OggS"),), "meta": {"kind": "voice"}},
        {"attachments": (InboundAttachment("scan.pdf", "application/pdf", b"%PDF-1.4"),)},
        {"flags": frozenset({"unreadable"})},
    ],
)
async def test_what_the_bot_cannot_read_hands_off(rig: Rig, fields: dict) -> None:
    conversation_id = await rig.say("", **fields)
    assert (await rig.state(conversation_id)).state == "human"
    assert await handoff_category(rig.store, conversation_id) == "unreadable"


async def test_a_language_the_channel_says_decides_when_the_text_cannot(rig: Rig) -> None:
    """A file with no words from a web chat visitor whose widget speaks English: the handoff is
    in English (meta "language", connectors/webchat); without it, or with a language the bot
    does not speak, the default (Russian)."""
    pdf = (InboundAttachment("scan.pdf", "application/pdf", b"%PDF-1.4"),)
    told = await rig.say("", address="2001", attachments=pdf, meta={"language": "en"})
    untold = await rig.say("", address="2002", attachments=pdf)
    foreign = await rig.say("", address="2003", attachments=pdf, meta={"language": "de"})
    assert "person" in (await rig.out(told))[0].body
    assert "оператор" in (await rig.out(untold))[0].body
    assert "оператор" in (await rig.out(foreign))[0].body


async def test_greetings_and_thanks_get_silence_not_an_answer(rig: Rig) -> None:
    conversation_id = await rig.say("Здравствуйте!")
    await rig.say("спасибо")
    await rig.say("👍")
    assert await rig.out(conversation_id) == []
    assert (await rig.state(conversation_id)).state == "bot"


async def test_answer_then_yes_resolves_as_confirmed(rig: Rig) -> None:
    conversation_id = await rig.say("сколько стоит доставка и сколько дней она идёт?")
    out = await rig.out(conversation_id)
    assert len(out) == 1 and "Это помогло?" in out[0].body and out[0].author == "Bot"
    state = await rig.state(conversation_id)
    assert state.answered == ["delivery-terms"] and state.outcome == "assumed" and state.language == "ru"
    await rig.say("1")  # the numbered reply where buttons are not drawn: 1 — Да
    state = await rig.state(conversation_id)
    assert state.state == "done" and state.outcome == "confirmed"
    assert (await rig.store.conversation(conversation_id)).status == ConversationStatus.RESOLVED


async def test_no_hands_off(rig: Rig) -> None:
    conversation_id = await rig.say("how much does delivery cost and how long does it take?")
    await rig.say("2")
    assert (await rig.state(conversation_id)).state == "human"
    assert await handoff_category(rig.store, conversation_id) == "not_helped"


async def test_silent_after_handoff_until_resolved(rig: Rig) -> None:
    conversation_id = await rig.say("оператор")
    await rig.say("сколько стоит доставка и сколько дней она идёт?")
    await rig.say("забыл пароль, не могу войти")
    assert len(await rig.out(conversation_id)) == 1  # only the handoff notice
    await rig.store.set_status(conversation_id, ConversationStatus.RESOLVED, "alice")
    rig.now += 60
    again = await rig.say("сколько стоит доставка и сколько дней она идёт?")
    assert len(await rig.out(again)) == (2 if again == conversation_id else 1)
    assert (await rig.state(again)).answered == ["delivery-terms"]


async def test_a_repeated_or_rephrased_question_hands_off(rig: Rig) -> None:
    conversation_id = await rig.say("сколько стоит доставка и сколько дней она идёт?")
    await rig.say("сколько дней идёт доставка и сколько стоит?")
    assert (await rig.state(conversation_id)).state == "human"
    assert await handoff_category(rig.store, conversation_id) == "repeated"


async def test_the_same_answer_is_never_sent_twice(rig: Rig) -> None:
    conversation_id = await rig.say("сколько стоит доставка и сколько дней она идёт?")
    await rig.say("how much is delivery, how long does delivery take")
    state = await rig.state(conversation_id)
    assert state.state == "human" and state.answered == ["delivery-terms"]
    assert len([e for e in await rig.out(conversation_id) if "Это помогло?" in e.body or "Did this help?" in e.body]) == 1


async def test_no_more_than_two_answers_without_a_confirmation(rig: Rig) -> None:
    conversation_id = await rig.say("забыл пароль, не могу войти в личный кабинет")
    await rig.say("сколько стоит доставка и сколько дней она идёт?")
    await rig.say("хочу записаться на примерку в магазине")
    state = await rig.state(conversation_id)
    assert state.answered == ["password-reset", "delivery-terms"]
    assert state.state == "human"
    assert await handoff_category(rig.store, conversation_id) == "unconfirmed"
    # Two answers and one handoff notice: one automatic message per customer message, no loop.
    assert len(await rig.out(conversation_id)) == 3


async def test_an_operator_takes_over_and_the_bot_stops(rig: Rig) -> None:
    await rig.store.add_operator("alice", "Alice", actor="root")
    conversation_id = await rig.say("забыл пароль, не могу войти в личный кабинет")
    assert [c.conversation_id for c, _, _ in await rig.rows.live()] == [conversation_id]
    assert await rig.rows.take_over(conversation_id, "alice")
    assert (await rig.state(conversation_id)).state == "human"
    assert (await rig.store.conversation(conversation_id)).assignee == "alice"
    assert await rig.rows.live() == []
    await rig.say("сколько стоит доставка и сколько дней она идёт?")
    assert len(await rig.out(conversation_id)) == 1
    assert not await rig.rows.take_over(conversation_id, "alice")  # once


async def test_assumed_resolution_is_withdrawn_when_the_customer_returns_within_7_days(rig: Rig) -> None:
    first = await rig.say("сколько стоит доставка и сколько дней она идёт?", address="2001")
    await rig.store.set_status(first, ConversationStatus.RESOLVED, "system")
    rig.now += 3 * DAY
    second = await rig.say("а курьер так и не приехал", address="2001")
    assert second != first
    assert (await rig.state(first)).outcome == "withdrawn"


async def test_confirmed_resolution_stays_and_counts_a_repeat_contact(rig: Rig) -> None:
    first = await rig.say("сколько стоит доставка и сколько дней она идёт?", address="2002")
    await rig.say("1", address="2002")
    rig.now += 2 * DAY
    await rig.say("а курьер так и не приехал", address="2002")
    state = await rig.state(first)
    assert state.outcome == "confirmed" and state.repeat_contact == 1
    figures = await rig.rows.figures()
    assert figures["confirmed"] >= 1 and figures["repeat_contacts"] == 1


async def test_a_return_after_7_days_withdraws_nothing(rig: Rig) -> None:
    first = await rig.say("сколько стоит доставка и сколько дней она идёт?", address="2003")
    await rig.store.set_status(first, ConversationStatus.RESOLVED, "system")
    rig.now += 8 * DAY
    await rig.say("а курьер так и не приехал", address="2003")
    assert (await rig.state(first)).outcome == "assumed"


async def test_suggest_mode_offers_articles_and_a_person(tmp_path: Path, store: Store) -> None:
    rig = await make_rig(tmp_path, store, {"bot": "suggest"})
    conversation_id = await rig.say("доставка")
    out = await rig.out(conversation_id)
    assert len(out) == 1 and "Возможно, поможет" in out[0].body
    state = await rig.state(conversation_id)
    ids = [i for i, _ in state.offered]
    assert ids[-1] == "bot:person" and all(i.startswith("bot:a:") for i in ids[:-1]) and 2 <= len(ids) <= 4
    assert all(len(t) <= 20 for _, t in state.offered)
    # Choosing one by its number sends that article.
    await rig.say("1")
    state = await rig.state(conversation_id)
    assert state.answered == [ids[0][len("bot:a:") :]]


async def test_the_bot_is_off_outside_its_mode_and_hours(tmp_path: Path, store: Store) -> None:
    rig = await make_rig(tmp_path, store, {"bot": "answer", "bot_when": "outside_hours", "hours": "Mon-Sun 00:00-24:00"})
    conversation_id = await rig.say("сколько стоит доставка и сколько дней она идёт?")
    assert await rig.out(conversation_id) == []
    assert await rig.state(conversation_id) is None
