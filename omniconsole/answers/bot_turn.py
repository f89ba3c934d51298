"""The bot's step of the conversation pipeline: for each new customer message on a channel with
`bot = "answer"` or `"suggest"`, answer from the library, offer articles, or hand the
conversation to a person, and say so to the customer. The core runs it first after ingest
(`Hub(..., pipeline=[BotStep(...)])`); history brought in by imports never reaches it.

Per channel, in its `[[channels]]` table:

    bot = "answer"              # off | suggest | answer
    bot_when = "outside_hours"  # always | outside_hours (the channel's `hours`, `timezone`)
    bot_name = "Shop bot"       # how the bot signs
    bot_min_confidence = 0.30   # thresholds (answers/bot.py, Thresholds)
    bot_min_score = 6.0
    bot_assume_after_hours = 24 # an answered conversation nobody resolves is bot-resolved
                                # (assumed) after this long; withdrawn if the customer is back
                                # within 7 days (METRICS.md "Bot")

The handoff state (`bot` -> `human` -> `done`) is kept by the store (store/bot.py); the rules
this step applies, in order, for a conversation in state `bot` that no operator has taken:
a press of "Yes" resolves it as bot-resolved (confirmed), "No" or "Talk to a person" hands it
off; an unreadable file or voice message hands off; then the decision of `BotBrain` (a person
asked for, sensitive words, another language, low confidence: hand off; greetings and thanks:
silence); a repeated or rephrased question, an answer already given, or a third answer without
a confirmation: hand off. At most one automatic message answers each customer message, and
every message goes through the outbox like an operator's reply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from connectors.base import Button, button_for_number
from connectors.webchat.hours import OfficeHours
from omniconsole.answers.bot import BotBrain, Decision, Thresholds, content_words
from omniconsole.answers.engine import Engine, stem, words
from omniconsole.answers.language import detect
from omniconsole.answers.placeholders import fill, first_name
from omniconsole.answers.render import render
from omniconsole.i18n import N_, english, joined, phrase
from omniconsole.store import bot as bot_db
from omniconsole.store.bot import BotConversation, BotStore

log = logging.getLogger(__name__)

MODES = ("off", "suggest", "answer")
WHEN = ("always", "outside_hours")
MAX_UNCONFIRMED = 2  # answers in a row without the customer confirming one (issue #17)
ENGINE_MAX_AGE = 30.0  # seconds before the library is read again (articles edited meanwhile)

YES, NO, PERSON, ARTICLE = "bot:yes", "bot:no", "bot:person", "bot:a:"

TEXTS = {
    "en": {
        "helped": "Did this help?",
        "yes": "Yes, thanks",
        "no": "No",
        "person": "Talk to a person",
        "choose": "Perhaps one of these answers helps:",
        "glad": "Glad it helped! Write any time.",
        "handoff": "I am passing your question to a person; an operator will answer here shortly.",
        "handoff_closed": "I am passing your question to a person. We are closed now: an operator will answer here after we open, {when}.",
        "handoff_closed_unknown": "I am passing your question to a person; an operator will answer here when we open.",
        "position": "You are number {position} in the queue; expected wait about {wait} min.",
    },
    "ru": {
        "helped": "Это помогло?",
        "yes": "Да, спасибо",
        "no": "Нет",
        "person": "Оператор",
        "choose": "Возможно, поможет один из этих ответов:",
        "glad": "Рад, что помог! Пишите, если что.",
        "handoff": "Передаю ваш вопрос оператору, он ответит здесь в ближайшее время.",
        "handoff_closed": "Передаю ваш вопрос оператору. Сейчас мы не работаем: оператор ответит здесь, когда мы откроемся, {when}.",
        "handoff_closed_unknown": "Передаю ваш вопрос оператору, он ответит здесь, когда мы откроемся.",
        "position": "Вы {position}-й в очереди, ожидание около {wait} мин.",
    },
}
_DAY_NAMES = {"en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), "ru": ("пн", "вт", "ср", "чт", "пт", "сб", "вс")}


#: Routing's part of a handoff, run inside its transaction: `(conn, conversation id, now)` ->
#: `(position in the queue, expected wait in minutes)`, or None when assigned or not told.
HandoffQueue = Callable[[object, int, float], "tuple[int, int] | None"]


@dataclass(frozen=True)
class BotChannel:
    """A channel's bot settings, checked."""

    mode: str = "off"
    when: str = "always"
    name: str = "Bot"
    thresholds: Thresholds = field(default_factory=Thresholds)
    hours: OfficeHours = field(default_factory=lambda: OfficeHours.parse(""))
    assume_after: float = 24 * 3600.0  # seconds

    @classmethod
    def from_options(cls, options: dict) -> BotChannel:
        """Read `bot`, `bot_when`, `bot_name`, `bot_min_confidence`, `bot_min_score`,
        `bot_assume_after_hours`, `hours` and `timezone`; ValueError with a reason in words when one is wrong."""
        mode = str(options.get("bot", "off"))
        if mode not in MODES:
            raise ValueError(f"bot must be one of {', '.join(MODES)} (got {mode!r})")
        when = str(options.get("bot_when", "always"))
        if when not in WHEN:
            raise ValueError(f"bot_when must be one of {', '.join(WHEN)} (got {when!r})")
        default = Thresholds()
        try:
            thresholds = Thresholds(
                min_confidence=float(options.get("bot_min_confidence", default.min_confidence)),
                min_score=float(options.get("bot_min_score", default.min_score)),
            )
        except (TypeError, ValueError):
            raise ValueError("bot_min_confidence and bot_min_score must be numbers") from None
        name = str(options.get("bot_name", "Bot")).strip() or "Bot"
        try:
            assume_after = float(options.get("bot_assume_after_hours", 24)) * 3600.0
        except (TypeError, ValueError):
            raise ValueError("bot_assume_after_hours must be a number of hours") from None
        if assume_after <= 0:
            raise ValueError("bot_assume_after_hours must be more than 0")
        return cls(
            mode,
            when,
            name[:40],
            thresholds,
            OfficeHours.parse(str(options.get("hours", "")), str(options.get("timezone", "UTC"))),
            assume_after,
        )


def next_opening(hours: OfficeHours, now: datetime) -> datetime | None:
    """When operators answer next: `now` when open, else the start of the next span within a
    week (None when the hours name none). The one "when are we open" look-up of the bot: point
    it at the business calendar when that exists."""
    if hours.open_at(now):
        return now
    local = now.astimezone(hours.zone)
    best: datetime | None = None
    for day_offset in range(0, 8):
        day = (local + timedelta(days=day_offset)).date()
        for weekday, start, _ in hours.spans:
            if weekday != day.weekday():
                continue
            moment = datetime(day.year, day.month, day.day, start // 60, start % 60, tzinfo=hours.zone)
            if moment > local and (best is None or moment < best):
                best = moment
        if best is not None:
            return best
    return best


def when_words(moment: datetime, language: str, now: datetime) -> str:
    """ "today at 09:00", "Mon 09:00" in the customer's language."""
    local_now = now.astimezone(moment.tzinfo)
    if moment.date() == local_now.date():
        return f"{'сегодня в' if language == 'ru' else 'today at'} {moment:%H:%M}"
    if moment.date() == (local_now + timedelta(days=1)).date():
        return f"{'завтра в' if language == 'ru' else 'tomorrow at'} {moment:%H:%M}"
    return f"{_DAY_NAMES[language][moment.weekday()]} {moment:%H:%M}"


def same_question(a: str, b: str) -> bool:
    """Whether two customer messages ask the same thing (a repeat or a rephrasing): half or
    more of their content-word stems shared."""
    sa = {stem(w) for w in words(content_words(a))}
    sb = {stem(w) for w in words(content_words(b))}
    if not sa or not sb:
        return False
    return len(sa & sb) / len(sa | sb) >= 0.5


class BotStep:
    """The pipeline step (see the module docstring). `clock` returns epoch seconds (tests
    move it)."""

    name = "bot"

    def __init__(self, store, *, clock=time.time, handoff_queue: HandoffQueue | None = None, offer=None):
        self.store = store
        self.handoff_queue = handoff_queue
        # `[journeys] bot_offer`: a handoff also offers the channel that serves the topic best
        # (analytics/journey_service.py ChannelOffer); None: never.
        self.offer = offer
        self.rows = BotStore(store)
        self.clock = clock
        self._brains: dict[Thresholds, BotBrain] = {}
        self._engine: Engine | None = None
        self._engine_at = 0.0
        self._bad_config: set[str] = set()

    @staticmethod
    def wanted(channels) -> bool:
        """Whether any configured channel turns the bot on (else the core needs no step)."""
        return any(str(c.options.get("bot", "off")) != "off" for c in channels)

    async def brain(self, thresholds: Thresholds) -> BotBrain:
        """The decision engine over the store's library, read again after ENGINE_MAX_AGE."""
        now = time.monotonic()
        if self._engine is None or now - self._engine_at > ENGINE_MAX_AGE:
            self._engine = Engine(await self.store.kb_articles())
            self._engine_at = now
            self._brains.clear()
        if thresholds not in self._brains:
            self._brains[thresholds] = BotBrain(self._engine, thresholds)
        return self._brains[thresholds]

    def config(self, channel) -> BotChannel:
        """The channel's bot settings; a wrong one is logged once and the bot stays off there."""
        try:
            return BotChannel.from_options(channel.options)
        except ValueError as exc:
            if channel.name not in self._bad_config:
                self._bad_config.add(channel.name)
                log.error("channel %s: %s; the bot stays off on it", channel.name, exc)
            return BotChannel()

    async def on_customer_messages(self, channel, messages: Sequence) -> None:
        """Handle a batch's new customer messages, oldest first (the core's entry point)."""
        cfg = self.config(channel)
        for item in messages:
            now = self.clock()
            # A customer who comes back revisits their recent bot resolutions, whatever the channel.
            await self.rows.withdraw_returning(item.customer_id, item.conversation_id, now)
            if cfg.mode == "off":
                why = phrase(N_("the customer wrote on {channel}, where the bot is off"), channel=channel.name)
                await self._release(item, cfg, why, now)
                continue
            if cfg.when == "outside_hours" and cfg.hours.open_at(datetime.fromtimestamp(now, UTC)):
                if not await self._answers_the_bot(item):
                    await self._release(item, cfg, phrase(N_("we are open now: people answer")), now)
                    continue
            try:
                await self.turn(cfg, channel.channel_kind, item, now)
            except Exception:
                log.exception("bot: conversation %d, message %d", item.conversation_id, item.message_id)

    async def turn(self, cfg: BotChannel, channel_kind: str, item, now: float) -> str:
        """One customer message in one conversation; returns what the bot did in a word
        (silent, answered, offered, confirmed, handoff) for tests and logs."""
        conversation_id = item.conversation_id
        row = await self.rows.begin(conversation_id, item.customer_id, now)
        if row.state != "bot":
            return "silent"  # handed off (until resolved) or done
        assignee, _, first_response_at, customer_name = await self.rows.conversation_facts(conversation_id)
        if assignee or first_response_at is not None:
            await self.rows.save(conversation_id, state="human", handoff_reason="an operator took the conversation")
            return "silent"
        message = item.message
        text = message.body or ""
        language = detect(text) if text.strip() else None
        # Text that tells wins, then the conversation's language so far, then the language the
        # customer's channel says they speak (the web chat's widget: meta "language").
        said = message.meta.get("language") if message.meta else None
        language = language or row.language or (said if said in TEXTS else None) or "ru"
        pressed = str(message.meta.get("button")) if "button" in message.flags and message.meta.get("button") else None
        if pressed is None and row.offered:
            chosen = button_for_number(text, [Button(i, t) for i, t in row.offered])
            pressed = chosen.id if chosen else None
        if pressed == YES and row.awaiting == "feedback":
            await self.rows.queue_message(
                conversation_id, self._signed(TEXTS[language]["glad"], cfg), cfg.name, kind="resolved_notice"
            )
            await self.rows.confirm(conversation_id, cfg.name)
            return "confirmed"
        if pressed == NO:
            return await self._handoff(
                cfg, row, language, phrase(N_("the customer said the answer did not help")), "not_helped", text, now
            )
        if pressed == PERSON:
            return await self._handoff(cfg, row, language, phrase(N_("the customer asked for a person")), "person", text, now)
        brain = await self.brain(cfg.thresholds)
        if pressed and pressed.startswith(ARTICLE):
            key = pressed[len(ARTICLE) :]
            record = brain.engine.variant(key, language) if key in brain.engine.by_key else None
            # The id comes back from the customer's side: only a sendable article is sent.
            if record is not None and not record.internal and record.kind != "script" and key not in row.answered:
                hit = record
                return await self._answer(cfg, row, channel_kind, language, hit, key, text, customer_name, now)
            return await self._handoff(
                cfg, row, language, phrase(N_("the customer chose an answer the bot cannot send")), "low_confidence", text, now
            )
        if (
            "unreadable" in message.flags
            or (message.attachments and not text.strip())
            or (message.meta.get("kind") in ("voice", "audio", "video_note") and not text.strip())
        ):
            return await self._handoff(
                cfg,
                row,
                language,
                phrase(N_("the customer sent something the bot cannot read (a file, a voice or video message)")),
                "unreadable",
                text,
                now,
            )
        decision = brain.decide(text, channel=channel_kind)
        if decision.language:
            language = decision.language
        if decision.action == "silent":
            return "silent"
        if decision.action == "handoff" and not (
            cfg.mode == "suggest" and decision.category == "low_confidence" and decision.candidates
        ):
            return await self._handoff(cfg, row, language, decision.reason_phrase, decision.category, text, now, decision)
        best = decision.hit or decision.candidates[0]
        if row.last_question and same_question(text, row.last_question):
            return await self._handoff(
                cfg,
                row,
                language,
                phrase(N_("the customer repeated or rephrased the question")),
                "repeated",
                text,
                now,
                decision,
            )
        if best.key in row.answered:
            return await self._handoff(
                cfg,
                row,
                language,
                phrase(N_("the bot would send {key} a second time"), key=best.key),
                "repeated",
                text,
                now,
                decision,
            )
        if row.unconfirmed >= MAX_UNCONFIRMED:
            return await self._handoff(
                cfg,
                row,
                language,
                phrase(N_("{n} answers without the customer confirming one"), n=MAX_UNCONFIRMED),
                "unconfirmed",
                text,
                now,
                decision,
            )
        if cfg.mode == "suggest":
            return await self._offer(cfg, row, language, decision, text, now)
        return await self._answer(
            cfg, row, channel_kind, language, decision.hit, decision.hit.key, text, customer_name, now, decision
        )

    async def _answers_the_bot(self, item) -> bool:
        """Whether the message presses one of the buttons (or numbers) the bot offered in a
        conversation it holds: the bot finishes what it asked even after opening time."""
        row = await self.rows.load(item.conversation_id)
        if row is None or row.state != "bot" or not row.offered:
            return False
        if "button" in item.message.flags and item.message.meta.get("button"):
            return True
        return button_for_number(item.message.body or "", [Button(i, t) for i, t in row.offered]) is not None

    async def _release(self, item, cfg: BotChannel, why: dict, now: float) -> None:
        """The customer wrote where (or when) the bot does not answer in a conversation the bot
        holds: hand it to a person without a word from the bot, so routing queues it and its
        own position notice is the one automatic message (else nobody would ever get it)."""
        row = await self.rows.load(item.conversation_id)
        if row is None or row.state != "bot":
            return
        reason = english(why)
        summary = joined(
            [phrase(N_("{bot} stepped aside: {reason}."), bot=cfg.name, reason=why), _answers_sent(row.answered)], "\n"
        )
        details = {"question": (item.message.body or "")[:2000], "confidence": None, "language": row.language, "topic": row.topic}
        await self.store.db.write(
            bot_db.handoff, item.conversation_id, reason, "bot_off", summary, cfg.name, now, details=details
        )

    # --- what the bot sends -------------------------------------------------------------

    @staticmethod
    def _signed(text: str, cfg: BotChannel) -> str:
        return f"{text}\n\n— {cfg.name}"

    async def _answer(
        self,
        cfg,
        row: BotConversation,
        channel_kind,
        language,
        hit,
        key,
        question,
        customer_name,
        now,
        decision: Decision | None = None,
    ) -> str:
        record = getattr(hit, "record", hit)
        values = {
            "customer.name": customer_name,
            "customer.first_name": first_name(customer_name),
            "conversation.id": row.conversation_id,
        }
        body = render(fill(record.body, values).text, channel_kind).text.strip()
        words_ = TEXTS[language if language in TEXTS else "ru"]
        buttons = [(YES, words_["yes"]), (NO, words_["no"])]
        text = f"{body}\n\n— {cfg.name}\n\n{words_['helped']}"
        payload = {
            "article": key,
            "language": record.language,
            "confidence": round(decision.confidence, 3) if decision else None,
            "topic": record.tags[0] if record.tags else "",
            "question": question[:2000],
        }
        await self.rows.queue_message(
            row.conversation_id,
            text,
            cfg.name,
            meta={"buttons": [list(b) for b in buttons]},
            kind="answered",
            payload=payload,
            now=now,
        )
        await self.rows.save(
            row.conversation_id,
            unconfirmed=row.unconfirmed + 1,
            answered=[*row.answered, key],
            last_question=question,
            awaiting="feedback",
            offered=buttons,
            outcome="assumed",
            resolved_at=now,
            language=language,
            topic=record.tags[0] if record.tags else row.topic,
            now=now,
        )
        await self.store.db.write(bot_db.expect_assumption, row.conversation_id, now + cfg.assume_after, cfg.name, now)
        return "answered"

    async def _offer(self, cfg, row: BotConversation, language, decision: Decision, question, now) -> str:
        words_ = TEXTS[language if language in TEXTS else "ru"]
        buttons = []
        for hit in decision.candidates[:3]:
            if hit.record.internal or hit.record.kind == "script" or hit.key in row.answered:
                continue
            title = hit.variants.get(language, hit.record).title
            buttons.append((f"{ARTICLE}{hit.key}"[:64], title if len(title) <= 20 else title[:19] + "…"))
        if not buttons:
            return await self._handoff(
                cfg, row, language, decision.reason or "nothing to offer", "low_confidence", question, now, decision
            )
        buttons.append((PERSON, words_["person"]))
        await self.rows.queue_message(
            row.conversation_id,
            self._signed(words_["choose"], cfg),
            cfg.name,
            meta={"buttons": [list(b) for b in buttons]},
            kind="offered",
            payload={"articles": [b[0][len(ARTICLE) :] for b in buttons[:-1]], "question": question[:2000]},
            now=now,
        )
        await self.rows.save(
            row.conversation_id,
            awaiting="choice",
            offered=buttons,
            last_question=question,
            language=language,
            topic=decision.topic or row.topic,
            now=now,
        )
        return "offered"

    async def _handoff(
        self, cfg, row: BotConversation, language, why: dict, category, question, now, decision: Decision | None = None
    ) -> str:
        reason = english(why)  # the state, the event and the figures keep the English
        words_ = TEXTS[language if language in TEXTS else "ru"]
        moment = datetime.fromtimestamp(now, UTC)
        opening = next_opening(cfg.hours, moment)
        if opening is None:
            notice = words_["handoff_closed_unknown"]
        elif opening <= moment:
            notice = words_["handoff"]
        else:
            notice = words_["handoff_closed"].format(when=when_words(opening, language if language in TEXTS else "ru", moment))
        offer = ""
        if self.offer is not None:
            try:
                offer = await self.offer.words(row.conversation_id, row.customer_id, language)
            except Exception:  # an offer is a courtesy: the handoff goes on without it
                log.exception("bot: no channel offer for conversation %d", row.conversation_id)
        topic = (decision.topic if decision else "") or row.topic or "not detected"
        confidence = round(decision.confidence, 3) if decision is not None and decision.confidence is not None else None
        # The operator's note: a phrase, drawn in the reader's language (the body keeps English).
        unknown = phrase(N_("not detected"))
        lines = [
            phrase(N_("{bot} handed this conversation to a person: {reason}."), bot=cfg.name, reason=why),
            phrase(
                N_("Language: {language}; topic: {topic}; confidence {confidence}.")
                if confidence is not None
                else N_("Language: {language}; topic: {topic}."),
                language=language or unknown,
                topic=unknown if topic == "not detected" else topic,
                **({"confidence": f"{confidence:.2f}"} if confidence is not None else {}),
            ),
            _answers_sent(row.answered),
        ]
        if question.strip():
            lines.append(phrase(N_("The customer's last words: «{words}»"), words=" ".join(question.split())[:300]))
        summary = joined(lines, "\n")
        details = {"question": question[:2000], "confidence": confidence, "language": language or "", "topic": topic}
        position_words = words_["position"]
        conversation_id = row.conversation_id

        def write(conn) -> None:
            # One transaction: the handoff, the conversation entering the queue (waiting from
            # now), and the one automatic message that says both (issue #17: at most one).
            bot_db.handoff(conn, conversation_id, reason, category, summary, cfg.name, now, details=details)
            place = self.handoff_queue(conn, conversation_id, now) if self.handoff_queue is not None else None
            body = notice if place is None else f"{notice} {position_words.format(position=place[0], wait=place[1])}"
            body = f"{body}\n{offer}" if offer else body
            if bot_db.can_answer(conn, conversation_id):
                bot_db.queue_message(
                    conn,
                    conversation_id,
                    self._signed(body, cfg),
                    cfg.name,
                    kind="handoff_notice",
                    payload={"reason": reason, "position": list(place) if place else None},
                    now=now,
                )

        await self.store.db.write(write)
        return "handoff"


def _answers_sent(answered) -> dict:
    """ "Answers sent: a, b." (or "none") as a phrase of the operator's note."""
    return phrase(N_("Answers sent: {answers}."), answers=", ".join(answered) if answered else phrase(N_("none")))


def core_extensions() -> list:
    """The bot's part of the core's scheduler: resolving answered conversations as assumed
    (`bot.assume` rows, store/bot.py `assume`)."""
    from omniconsole.core.scheduler import CoreExtension

    def fire(conn, row, now: float) -> bool:
        if row.conversation_id is None:
            return False
        return bot_db.assume(conn, row.conversation_id, str(row.payload.get("author") or "bot"), now)

    return [CoreExtension("bot", handlers={bot_db.ASSUME: fire})]


def conversation_pipeline(settings, store, handoff_queue: HandoffQueue | None = None) -> list:
    """The pipeline steps the core runs after ingest for these settings: the bot when any
    channel turns it on. `handoff_queue`: routing's part of a handoff (see `HandoffQueue`;
    omniconsole/capabilities.py passes routing's)."""
    if not BotStep.wanted(settings.channels):
        return []
    from omniconsole.analytics.journey_service import channel_offer

    return [BotStep(store, handoff_queue=handoff_queue, offer=channel_offer(settings, store))]
