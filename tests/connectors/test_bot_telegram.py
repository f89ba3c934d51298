"""The bot end to end: a real core (Hub, Store, outbox) with the Telegram connector talking HTTP
to the Bot API peer on 127.0.0.1 (tests/peers/telegram_api.py), the demo library imported.

A question is answered with "Did this help?" buttons (an inline keyboard) and "Да" resolves it;
"оператор" hands off with the words to the customer and a note for the operator, after which
the bot is silent and the operator's reply is delivered; the bot's messages go through the
outbox with its delivery states (a 5xx is retried, a refusal fails with its reason in words).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from omniconsole.answers.bot_turn import conversation_pipeline
from omniconsole.answers.library import DEMO_LIBRARY, import_folder
from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.core.hub import Hub
from omniconsole.store import Store
from omniconsole.store.bot import BotStore
from tests.peers.telegram_api import FakeBotApi, user
from tests.rig import FAST, free_port

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ANNA = user(3001, "Анна", "Смирнова", "anna_s")
PETR = user(3002, "Пётр", None, None)


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"the core did not get there in time (last: {result!r})")
        await asyncio.sleep(0.02)


@pytest.fixture
def bot_api() -> FakeBotApi:
    with FakeBotApi() as server:
        yield server


@contextlib.asynccontextmanager
async def bot_core(bot_api: FakeBotApi, tmp_path: Path, **options: Any) -> AsyncIterator[tuple[Hub, Store]]:
    settings = Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        listener=ListenerSettings(port=free_port()),
        channels=[
            ChannelSettings(
                "telegram",
                "Telegram",
                {
                    "token": bot_api.token,
                    "base_url": bot_api.base_url,
                    "base_file_url": bot_api.base_file_url,
                    "poll_timeout": 1,
                    "bot": "answer",
                    "bot_name": "Бот магазина",
                    **options,
                },
            )
        ],
    )
    store = await Store.open(settings.database)
    await import_folder(store, DEMO_LIBRARY, "test")
    hub = Hub(settings, store, timing=FAST, pipeline=conversation_pipeline(settings, store))
    task = asyncio.create_task(hub.run())
    try:
        await until(lambda: _up(store, task))
        yield hub, store
    finally:
        task.cancel()
        # Bounded: a core that does not stop is a failure to see, not a hung run.
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 20)
        await asyncio.wait_for(store.close(), 20)


async def _up(store: Store, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()
    return any(channel.health == "up" for channel in await store.channels())


def texts_to(bot_api: FakeBotApi, person: dict[str, Any]) -> list[dict[str, Any]]:
    return bot_api.sent_messages(person["id"])


async def conversation_of(store: Store) -> int:
    async def find() -> int | None:
        for view in ("all", "resolved"):
            rows = await store.inbox_page(view, limit=10)
            if rows:
                return rows[0].conversation_id
        return None

    return await until(find)


async def test_a_question_is_answered_with_buttons_and_yes_resolves_it(bot_api: FakeBotApi, tmp_path: Path) -> None:
    async with bot_core(bot_api, tmp_path) as (_, store):
        bot_api.push_message(ANNA, text="Сколько стоит доставка по Москве и сколько дней идёт?")
        answer = (await until(lambda: _async(texts_to(bot_api, ANNA))))[0]
        assert "Москва: 1–2 дня" in answer["text"] or "Москв" in answer["text"]
        assert "— Бот магазина" in answer["text"] and "Это помогло?" in answer["text"]
        keyboard = answer["reply_markup"]["inline_keyboard"]
        assert [[b["callback_data"] for b in row] for row in keyboard] == [["bot:yes"], ["bot:no"]]
        conversation_id = await conversation_of(store)

        # The bot's answer went through the outbox: a row, sent, signed by the bot.
        async def sent():
            out = [e for e in await store.timeline(conversation_id) if e.direction == "out"]
            return out if out and all(e.state == "sent" for e in out) else None

        assert (await until(sent))[0].author == "Бот магазина"
        # An answer is not a human reply: the first-response clock keeps waiting for a person.
        assert (await store.conversation(conversation_id)).first_response_at is None

        query_id = bot_api.push_callback(ANNA, answer, "bot:yes")
        await until(lambda: _async(query_id in bot_api.answered_callbacks))
        state = await until(lambda: _done(store, conversation_id))
        assert state.outcome == "confirmed"
        assert (await store.conversation(conversation_id)).status == "resolved"
        pressed = [e for e in await store.timeline(conversation_id) if e.direction == "in"][-1]
        assert pressed.body == "Да, спасибо" and "button" in pressed.flags
        glad = await until(lambda: _async([m for m in texts_to(bot_api, ANNA) if "Рад, что помог" in m.get("text", "")]))
        assert len(glad) == 1


async def test_operator_is_handed_off_with_words_then_the_bot_is_silent(bot_api: FakeBotApi, tmp_path: Path) -> None:
    async with bot_core(bot_api, tmp_path, hours="Mon-Sun 00:00-24:00", timezone="Europe/Moscow") as (_, store):
        bot_api.push_message(PETR, text="оператор")
        notice = (await until(lambda: _async(texts_to(bot_api, PETR))))[0]
        assert "Передаю ваш вопрос оператору" in notice["text"] and "в ближайшее время" in notice["text"]
        assert "reply_markup" not in notice
        conversation_id = await conversation_of(store)
        state = await BotStore(store).load(conversation_id)
        assert state.state == "human" and state.handoff_reason == "the customer asked for a person"
        notes = [e.body for e in await store.timeline(conversation_id) if e.direction == "note"]
        assert notes and "handed this conversation to a person: the customer asked for a person" in notes[0]
        assert "«оператор»" in notes[0]

        # Silent after handoff: a question the bot could answer gets no bot message.
        bot_api.push_message(PETR, text="сколько стоит доставка?")
        await until(lambda: _inbound_count(store, conversation_id, 2))
        await asyncio.sleep(0.3)
        assert len(texts_to(bot_api, PETR)) == 1

        # The operator's reply is delivered to the customer.
        await store.queue_reply(conversation_id, "Здравствуйте, Пётр! Доставка по Москве бесплатна от 3000 ₽.", "alice")
        delivered = await until(lambda: _async([m for m in texts_to(bot_api, PETR) if "Пётр!" in m.get("text", "")]))
        assert delivered and len(texts_to(bot_api, PETR)) == 2


async def test_out_of_hours_handoff_says_when_a_person_answers(bot_api: FakeBotApi, tmp_path: Path) -> None:
    # Hours that are never now: the next opening is named.
    now = time.gmtime()
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(now.tm_wday + 3) % 7]
    async with bot_core(bot_api, tmp_path, hours=f"{day} 09:00-10:00", timezone="UTC") as (_, store):
        bot_api.push_message(PETR, text="I want to talk to a human")
        notice = (await until(lambda: _async(texts_to(bot_api, PETR))))[0]
        assert "We are closed now" in notice["text"] and "09:00" in notice["text"]


async def test_bot_messages_are_retried_and_fail_in_words(bot_api: FakeBotApi, tmp_path: Path) -> None:
    bot_api.fail_next("sendMessage", 502, "Bad Gateway")
    async with bot_core(bot_api, tmp_path) as (_, store):
        bot_api.push_message(ANNA, text="how much does delivery cost and how long does delivery take?")
        await until(lambda: _async(texts_to(bot_api, ANNA)))
        conversation_id = await conversation_of(store)
        out = [e for e in await store.timeline(conversation_id) if e.direction == "out"][0]
        assert out.attempts >= 2  # the 502 was retried, like any reply

        bot_api.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
        bot_api.push_message(ANNA, text="оператор")

        async def failed():
            rows = [e for e in await store.timeline(conversation_id) if e.direction == "out" and e.state == "failed"]
            return rows

        failure = (await until(failed))[0]
        assert failure.error == "the customer blocked the bot"


async def _done(store: Store, conversation_id: int):
    state = await BotStore(store).load(conversation_id)
    return state if state is not None and state.state == "done" else None


async def _inbound_count(store: Store, conversation_id: int, n: int) -> bool:
    return len([e for e in await store.timeline(conversation_id) if e.direction == "in"]) >= n


async def _async(value: Any) -> Any:
    return value
