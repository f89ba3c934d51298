"""The bot and routing together (issues #17 and #18) through the real ingest path: the core's
pipeline (bot -> routing) run by `ChannelSink.deliver` on a real store with the demo library.

Routing leaves the conversations the bot holds alone, takes them at the handoff (waiting from
the handoff), and the customer gets one automatic message at the handoff: the bot's "a person
will answer" with the queue position merged in. An answered conversation nobody resolves is
resolved as bot-resolved (assumed) by the core's scheduler; a confirmed bot resolution gets no
satisfaction survey."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from omniconsole.analytics.surveys import refusal
from omniconsole.answers.bot_turn import BotStep
from omniconsole.answers.bot_turn import core_extensions as bot_extensions
from omniconsole.answers.library import DEMO_LIBRARY, import_folder
from omniconsole.config import ChannelSettings, Settings, SurveySettings
from omniconsole.core.hub import ChannelSink, Hub
from omniconsole.core.scheduler import Scheduler
from omniconsole.models import ConversationStatus
from omniconsole.routing.service import core_extensions, handoff_queue, set_operator
from omniconsole.routing.settings import parse_routing
from omniconsole.store import Store
from omniconsole.store import routing as routing_db
from omniconsole.store import schedule as timers
from omniconsole.store.bot import ASSUME, BotStore
from tests.conftest import inbound

T0 = 1_790_000_000.0


class Desk:
    """A core that is not running, with the bot on Telegram and routing on: its sinks take
    messages as connectors would hand them, and the clock is the test's."""

    def __init__(self, store: Store, settings: Settings, hub: Hub, step: BotStep, channels: dict[str, int]):
        self.store, self.settings, self.hub, self.step, self.channels = store, settings, hub, step, channels
        self.rows = BotStore(store)
        self.now = T0
        self.seq = 0

    async def say(self, text: str, address: str = "1001", channel: str = "telegram") -> int:
        self.seq += 1
        name = {"telegram": "Telegram", "email": "Mail"}[channel]
        sink = ChannelSink(self.hub, self.channels[channel], channel, name, None)
        kind = "email" if channel == "email" else "telegram"
        if channel == "email":
            address = f"{address}@example.com"
        receipts = await sink.deliver([inbound(f"m{self.seq}", text, address=address, at=self.now, kind=kind)], None)
        return receipts[0].conversation_id

    async def out(self, conversation_id: int) -> list:
        return [e for e in await self.store.timeline(conversation_id) if e.direction == "out"]

    async def facts(self, conversation_id: int):
        return await self.store.db.run(routing_db.conversation_facts, conversation_id)


async def make_desk(tmp_path: Path, store: Store, *, operators: dict[str, str]) -> Desk:
    await import_folder(store, DEMO_LIBRARY, "test")
    routing = parse_routing({"position_channels": ["telegram"], "return_minutes": 0}, [], [])
    settings = Settings(
        database=store.path,
        data_dir=tmp_path / "data",
        channels=[
            ChannelSettings("telegram", "Telegram", {"bot": "answer", "bot_name": "Bot"}),
            ChannelSettings("email", "Mail", {}),
        ],
        routing=routing,
    )
    channels = {
        "telegram": await store.ensure_channel("telegram", "Telegram"),
        "email": await store.ensure_channel("email", "Mail"),
    }
    for login, status in operators.items():
        await store.add_operator(login, login.capitalize(), actor="root")
        await set_operator(store, settings, login, actor="root", status=status, capacity=2)
    step = BotStep(store, handoff_queue=handoff_queue(settings))
    desk = None
    hub = Hub(settings, store, pipeline=[step], extensions=[*bot_extensions(), *core_extensions(settings)])
    desk = Desk(store, settings, hub, step, channels)
    step.clock = lambda: desk.now
    return desk


async def test_routing_leaves_what_the_bot_holds_and_takes_it_at_the_handoff(tmp_path: Path, store: Store) -> None:
    desk = await make_desk(tmp_path, store, operators={"anna": "online"})
    conversation_id = await desk.say("сколько стоит доставка и сколько дней она идёт?")
    facts = await desk.facts(conversation_id)
    assert facts.with_bot and facts.assignee is None and facts.queue is None  # anna has room, yet
    assert await store.db.run(routing_db.queue_figures) == {}
    from omniconsole.analytics.wallboard import wallboard

    assert (await wallboard(store, desk.now)).with_bot == 1  # the wallboard's "with the bot"
    # Capacity freed elsewhere makes routing serve its queues: still not the bot's conversation.
    await store.db.write(desk.hub.extensions[1].step, conversation_id, desk.now)
    assert (await store.conversation(conversation_id)).assignee is None

    desk.now += 120
    await desk.say("оператор")
    assert (await store.conversation(conversation_id)).assignee == "anna"
    assert (await wallboard(store, desk.now)).with_bot == 0
    out = await desk.out(conversation_id)
    assert len(out) == 2  # the answer, then one message at the handoff
    assert "оператор" in out[-1].body.lower() and "очереди" not in out[-1].body  # assigned: no position


async def test_one_message_at_handoff_says_the_queue_position_waiting_from_the_handoff(tmp_path: Path, store: Store) -> None:
    desk = await make_desk(tmp_path, store, operators={"anna": "offline"})
    first = await desk.say("I want a human", address="1001")
    out = await desk.out(first)
    assert len(out) == 1
    assert "person" in out[0].body and "You are number 1 in the queue" in out[0].body and "min." in out[0].body

    second = await desk.say("забыл пароль, не могу войти в личный кабинет", address="2002")
    assert (await desk.facts(second)).queue is None  # the bot answered: not in the queue
    desk.now += 600
    await desk.say("это не помогло, позовите человека", address="2002")
    facts = await desk.facts(second)
    assert not facts.with_bot and facts.queue == "default" and facts.queued_at == desk.now  # waits from the handoff
    out = await desk.out(second)
    assert len(out) == 2 and "Вы 2-й в очереди" in out[-1].body
    assert "Передаю" in out[-1].body  # the handoff and the position are one message
    figures = await store.db.run(routing_db.queue_figures)
    assert figures["default"][0] == 2

    # Someone comes online: the queue is served in its order.
    await set_operator(store, desk.settings, "anna", actor="root", status="online")
    assert (await store.conversation(first)).assignee == "anna"
    assert (await store.conversation(second)).assignee == "anna"


async def test_writing_where_the_bot_is_off_hands_off_quietly_so_routing_takes_it(tmp_path: Path, store: Store) -> None:
    desk = await make_desk(tmp_path, store, operators={"anna": "offline"})
    conversation_id = await desk.say("сколько стоит доставка и сколько дней она идёт?")
    assert (await desk.facts(conversation_id)).with_bot
    # The same customer writes by e-mail (no bot there): the conversation must not stay with
    # a bot that will never answer it.
    await store.add_identity((await store.conversation(conversation_id)).customer_id, "email", "1001@example.com", "root")
    again = await desk.say("и ещё вопрос про оплату", channel="email")
    assert again == conversation_id
    state = await desk.rows.load(conversation_id)
    assert state.state == "human" and "bot is off" in state.handoff_reason
    facts = await desk.facts(conversation_id)
    assert facts.queue == "default" and not facts.with_bot


async def test_an_answered_conversation_nobody_resolves_is_resolved_as_assumed(tmp_path: Path, store: Store) -> None:
    desk = await make_desk(tmp_path, store, operators={})
    conversation_id = await desk.say("сколько стоит доставка и сколько дней она идёт?")
    rows = [r for r in await store.db.run(timers.scheduled) if r.kind == ASSUME]
    assert [r.conversation_id for r in rows] == [conversation_id]
    assert rows[0].due_at == T0 + 24 * 3600  # bot_assume_after_hours' default

    handlers = {k: h for e in desk.hub.extensions for k, h in e.handlers.items()}
    scheduler = Scheduler(store, handlers, clock=lambda: desk.now)
    await scheduler.fire_due(T0 + 3600)
    assert (await store.conversation(conversation_id)).status == ConversationStatus.OPEN  # not yet
    await scheduler.fire_due(T0 + 24 * 3600 + 1)
    assert (await store.conversation(conversation_id)).status == ConversationStatus.RESOLVED
    state = await desk.rows.load(conversation_id)
    assert state.state == "done" and state.outcome == "assumed"

    # The customer comes back within 7 days: the assumed resolution is withdrawn.
    desk.now = T0 + 3 * 86400
    await desk.say("доставка так и не пришла")
    assert (await desk.rows.load(conversation_id)).outcome == "withdrawn"


async def test_a_handed_off_conversation_is_not_resolved_as_assumed(tmp_path: Path, store: Store) -> None:
    desk = await make_desk(tmp_path, store, operators={})
    conversation_id = await desk.say("сколько стоит доставка и сколько дней она идёт?")
    await desk.say("оператор")
    handlers = {k: h for e in desk.hub.extensions for k, h in e.handlers.items()}
    await Scheduler(store, handlers).fire_due(T0 + 30 * 86400)
    assert (await store.conversation(conversation_id)).status == ConversationStatus.OPEN
    assert (await desk.rows.load(conversation_id)).state == "human"


async def test_a_confirmed_bot_resolution_gets_no_survey(tmp_path: Path, store: Store) -> None:
    desk = await make_desk(tmp_path, store, operators={})
    surveys = SurveySettings(nps=True)
    confirmed = await desk.say("сколько стоит доставка и сколько дней она идёт?", address="1001")
    await desk.say("1", address="1001")  # "1 — yes"
    assert (await desk.rows.load(confirmed)).outcome == "confirmed"
    target = await store.survey_target(confirmed)
    assert refusal(target, "csat", surveys, desk.now) == "the customer confirmed the bot's answer helped"
    assert refusal(target, "nps", surveys, desk.now) == "the customer confirmed the bot's answer helped"

    # A person's resolution of a handed-off conversation still gets its survey.
    other = await desk.say("оператор", address="2002")
    await store.set_status(other, ConversationStatus.RESOLVED, "root")
    assert refusal(await store.survey_target(other), "csat", surveys, desk.now) is None


async def test_what_the_bot_did_is_reported_for_the_operator(tmp_path: Path, store: Store) -> None:
    desk = await make_desk(tmp_path, store, operators={})
    conversation_id = await desk.say("сколько стоит доставка и сколько дней она идёт?")
    report = await store.bot_report(conversation_id)
    assert report.state == "bot" and report.handed_off_at is None
    assert [a[0] for a in report.answers] == ["delivery-terms"] and 0 < report.answers[0][1] <= 1
    assert report.answers[0][2].startswith("Доставка")
    desk.now += 60
    await desk.say("это не то, позовите человека")
    report = await store.bot_report(conversation_id)
    assert report.state == "human" and report.handed_off_at == desk.now
    assert report.question == "это не то, позовите человека"
    assert report.handoff_reason == "the customer asked for a person" and report.handoff_category == "person"
    assert report.language == "ru" and report.topic
    assert await store.bot_report(await desk.say("hello", address="9009")) is None  # a greeting: nothing done


async def test_at_opening_time_the_bot_finishes_its_question_and_steps_aside_otherwise(tmp_path: Path, store: Store) -> None:
    from datetime import datetime

    from tests.unit.test_bot_states import make_rig

    rig = await make_rig(
        tmp_path, store, {"bot": "answer", "bot_when": "outside_hours", "hours": "Mon-Sun 09:00-18:00", "timezone": "UTC"}
    )
    night = datetime(2026, 12, 1, 2, 0, tzinfo=UTC).timestamp()
    morning = datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp()
    rig.now = night
    confirmed = await rig.say("сколько стоит доставка и сколько дней она идёт?", address="1001")
    other = await rig.say("забыл пароль, не могу войти в личный кабинет", address="2002")
    assert (await rig.state(confirmed)).awaiting == "feedback" and (await rig.state(other)).answered
    rig.now = morning
    await rig.say("1", address="1001")  # "1 — yes" to the bot's own question, after opening
    assert (await rig.state(confirmed)).outcome == "confirmed"
    await rig.say("а как поменять адрес доставки?", address="2002")  # a new question: people answer now
    state = await rig.state(other)
    assert state.state == "human" and state.handoff_reason == "we are open now: people answer"
    assert len(await rig.out(other)) == 1  # the night's answer only: the bot said nothing more
