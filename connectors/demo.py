"""The demo channel: a seeded simulation of a small shop's customers.

`DemoWorld(seed)` is the shop: about 50 customers, each with 1-3 identities among Telegram,
e-mail, phone, VK and WhatsApp, writing support dialogues in Russian and English (orders,
delivery, refunds, account access, bank cards, appointments) and switching channel in the
middle of a conversation. Its traffic is one deterministic stream of events; each configured
demo channel (`simulate = "telegram"`, ...) replays the same stream at the same pace and emits
the events of its own kind, so together they behave like one shop on several channels.

The cursor is the index of the last event a channel has handled, so a restart resumes exactly
where the committed history ends.

Options: `simulate` (the identity kind this channel plays), `seed`, `rate` (events per second
across all demo channels; 0 = as fast as possible), `limit` (stop after this many events),
`batch` (events per delivery), `send_delay` (seconds), `failure_rate` (share of first send
attempts that fail transiently), `answer_rate` (share of replies the customer answers; every
reply is reported delivered, and read before an answer),
`sent_log_file` (append one line per send: for tests). With `calls = true` (what `omniconsole
demo` configures) the phone channel (`simulate = "phone"`) carries calls, as a PBX reports them
(connectors/telephony.py): each of its events rings `extension` (default "101", the demo
operator's: a screen pop), then is answered and ended with a duration, or missed; without it
the phone channel carries text.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.base import (
    ChannelContext,
    Connector,
    DeliveryUpdate,
    InboundMessage,
    InboundSink,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
)
from omniconsole.models import DeliveryState, IdentityKind

#: The extension the demo phone channel rings (the demo registers its operator there).
DEMO_EXTENSION = "101"

SIMULATED_KINDS = (IdentityKind.TELEGRAM, IdentityKind.EMAIL, IdentityKind.PHONE, IdentityKind.VK, IdentityKind.WHATSAPP)

_RU_FIRST = [
    "Иван",
    "Мария",
    "Алексей",
    "Ольга",
    "Дмитрий",
    "Екатерина",
    "Сергей",
    "Анна",
    "Павел",
    "Наталья",
    "Михаил",
    "Татьяна",
    "Андрей",
    "Юлия",
    "Никита",
    "Светлана",
    "Артём",
    "Ксения",
    "Егор",
    "Вера",
]
_RU_FEMALE = {"Мария", "Ольга", "Екатерина", "Анна", "Наталья", "Татьяна", "Юлия", "Светлана", "Ксения", "Вера"}
_RU_LAST = [
    "Петров",
    "Смирнов",
    "Кузнецов",
    "Иванов",
    "Соколов",
    "Попов",
    "Лебедев",
    "Козлов",
    "Новиков",
    "Морозов",
    "Волков",
    "Павлов",
    "Зайцев",
    "Семёнов",
    "Голубев",
    "Виноградов",
]
_EN_FIRST = ["John", "Emma", "Oliver", "Sophia", "James", "Mia", "Lucas", "Amelia", "Henry", "Grace", "Leo", "Chloe"]
_EN_LAST = ["Smith", "Brown", "Taylor", "Wilson", "Clark", "Walker", "Hall", "Young", "King", "Wright"]
_TRANSLIT = str.maketrans(
    {
        "а": "a",
        "б": "b",
        "в": "v",
        "г": "g",
        "д": "d",
        "е": "e",
        "ё": "e",
        "ж": "zh",
        "з": "z",
        "и": "i",
        "й": "y",
        "к": "k",
        "л": "l",
        "м": "m",
        "н": "n",
        "о": "o",
        "п": "p",
        "р": "r",
        "с": "s",
        "т": "t",
        "у": "u",
        "ф": "f",
        "х": "h",
        "ц": "ts",
        "ч": "ch",
        "ш": "sh",
        "щ": "sch",
        "ъ": "",
        "ы": "y",
        "ь": "",
        "э": "e",
        "ю": "yu",
        "я": "ya",
    }
)

# Dialogues: (topic, subject, customer lines). {n} is an order number, {d} a day, {c} four card digits.
_DIALOGUES = {
    "ru": [
        (
            "orders",
            "Где мой заказ",
            [
                "Здравствуйте! Где мой заказ №{n}? Оплатил неделю назад.",
                "Трек-номер не работает, на сайте пишет «не найден».",
                "Можно ли поменять адрес доставки на Ленинградский проспект, 12?",
                "Спасибо, жду.",
            ],
        ),
        (
            "delivery",
            "Доставка задерживается",
            [
                "Курьер не приехал, хотя обещали доставку сегодня до 18:00.",
                "Заказ {n}. Могу получить завтра {d}-го после обеда?",
                "Хорошо, тогда пусть позвонит за час.",
            ],
        ),
        (
            "refunds",
            "Возврат средств",
            [
                "Хочу вернуть товар из заказа {n}, не подошёл размер.",
                "Деньги вернутся на ту же карту?",
                "Сколько дней ждать возврат?",
                "Отправил посылку обратно, вот номер отправления.",
            ],
        ),
        (
            "account",
            "Не могу войти в аккаунт",
            [
                "Не могу войти в личный кабинет, пишет «неверный пароль».",
                "Письмо для восстановления пароля не приходит.",
                "Проверил спам — там тоже нет.",
                "Получилось, спасибо!",
            ],
        ),
        (
            "cards",
            "Списали деньги дважды",
            [
                "С моей карты *{c} списали деньги дважды за один заказ!",
                "Прикладываю выписку из банка.",
                "Когда вернут лишнее списание?",
            ],
        ),
        (
            "appointments",
            "Запись на примерку",
            ["Можно записаться на примерку в субботу {d}-го?", "Лучше в 14:00, если есть время.", "Отлично, до встречи!"],
        ),
    ],
    "en": [
        (
            "orders",
            "Where is my order",
            [
                "Hi, where is my order #{n}? I paid a week ago.",
                "The tracking number says 'not found'.",
                "Could you change the delivery address to 221B Baker Street?",
                "Thanks, I'll wait.",
            ],
        ),
        (
            "delivery",
            "Late delivery",
            [
                "The courier never came although delivery was promised today by 6 pm.",
                "Order {n}. Can I get it tomorrow, the {d}th, in the afternoon?",
                "Fine, please ask them to call an hour before.",
            ],
        ),
        (
            "refunds",
            "Refund request",
            [
                "I'd like to return the jacket from order {n}, wrong size.",
                "Will the money go back to the same card?",
                "How long does a refund take?",
            ],
        ),
        (
            "account",
            "Cannot log in",
            [
                "I can't log into my account, it says the password is wrong.",
                "The password reset e-mail never arrives.",
                "Checked spam, nothing there.",
                "It worked, thank you!",
            ],
        ),
        (
            "cards",
            "Charged twice",
            [
                "My card ending {c} was charged twice for one order!",
                "I attached the bank statement.",
                "When will the extra charge be refunded?",
            ],
        ),
        (
            "appointments",
            "Fitting appointment",
            ["Can I book a fitting on Saturday the {d}th?", "2 pm would be best if it's free.", "Great, see you then!"],
        ),
    ],
}
_THANKS = {
    "ru": ["Спасибо!", "Понял, спасибо за ответ.", "Хорошо, буду ждать."],
    "en": ["Thank you!", "Got it, thanks.", "OK, I'll wait."],
}


#: The pattern the demo's history puts in (omniconsole/core/demo.py): the chance that an issue
#: of a topic resolved on a channel brings the customer back within a few days, by topic and
#: channel kind ("*": every other channel). Refunds and card charges are settled best by phone,
#: delivery in the messengers; orders, account and appointments fare alike everywhere. The
#: journeys outcome table must find exactly this (tests/unit/test_journeys.py).
RECONTACT_CHANCE: dict[str, dict[str, float]] = {
    "refunds": {"phone": 0.03, "email": 0.3, "*": 0.65},
    "cards": {"phone": 0.03, "email": 0.3, "*": 0.65},
    "delivery": {"telegram": 0.03, "whatsapp": 0.03, "*": 0.6},
    "orders": {"*": 0.2},
    "account": {"*": 0.2},
    "appointments": {"*": 0.2},
}
#: Where some customers come from (a Telegram deep-link payload, a page of the shop).
DEMO_ORIGINS = {"telegram": ("spring_sale", "order_status", "refund_form"), "web": ("https://shop.example/help/refunds",)}


def recontact_chance(topic: str, channel_kind: str) -> float:
    """`RECONTACT_CHANCE` for an issue of `topic` resolved on `channel_kind`."""
    table = RECONTACT_CHANCE.get(topic, {"*": 0.2})
    return table.get(channel_kind, table["*"])


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    """A simulated person: name, language and 1-3 identities."""

    number: int
    name: str
    language: str
    identities: tuple[tuple[IdentityKind, str], ...]


@dataclass(frozen=True, slots=True)
class DemoEvent:
    """One message of the simulated traffic, in stream order."""

    seq: int
    customer: DemoCustomer
    kind: IdentityKind
    address: str
    text: str
    subject: str
    topic: str
    last_line: bool


class DemoWorld:
    """A deterministic shop: the same seed always gives the same customers and traffic."""

    def __init__(self, seed: int = 7, customers: int = 50):
        self.seed = seed
        rng = random.Random(seed)
        self.customers = [self._customer(rng, n) for n in range(customers)]

    @staticmethod
    def _customer(rng: random.Random, n: int) -> DemoCustomer:
        language = "ru" if rng.random() < 0.65 else "en"
        if language == "ru":
            first, last = rng.choice(_RU_FIRST), rng.choice(_RU_LAST)
            if first in _RU_FEMALE:
                last += "а"
        else:
            first, last = rng.choice(_EN_FIRST), rng.choice(_EN_LAST)
        kinds = rng.sample(SIMULATED_KINDS, rng.choice((1, 1, 2, 2, 2, 3)))
        phone = f"+79{rng.randrange(10**8, 10**9)}"
        latin = f"{first}.{last}".lower().translate(_TRANSLIT)
        identities = []
        for kind in kinds:
            address = {
                IdentityKind.TELEGRAM: str(rng.randrange(10**8, 7 * 10**9)),
                IdentityKind.EMAIL: f"{latin}{n}@{rng.choice(['mail.example', 'inbox.example', 'post.example'])}",
                IdentityKind.PHONE: phone,
                IdentityKind.VK: str(rng.randrange(10**6, 9 * 10**8)),
                IdentityKind.WHATSAPP: phone[1:],  # wa_id: digits without the plus
            }[kind]
            identities.append((kind, address))
        return DemoCustomer(n, f"{first} {last}", language, tuple(identities))

    def events(self, start: int = 0) -> Iterator[DemoEvent]:
        """The traffic from event `start` on (earlier events are replayed, not yielded, so
        dialogue state is the same whatever the starting point)."""
        rng = random.Random(self.seed * 7919 + 1)
        progress: dict[int, tuple[int, int, int]] = {}  # customer -> (dialogue, line, identity index)
        seq = 0
        while True:
            customer = rng.choice(self.customers)
            dialogues = _DIALOGUES[customer.language]
            state = progress.get(customer.number)
            if state is None:
                state = (rng.randrange(len(dialogues)), 0, rng.randrange(len(customer.identities)))
            dialogue, line, ident = state
            # Three in ten messages come by another of the customer's channels.
            if len(customer.identities) > 1 and rng.random() < 0.3:
                ident = (ident + 1 + rng.randrange(len(customer.identities) - 1)) % len(customer.identities)
            topic, subject, lines = dialogues[dialogue]
            text = lines[line].format(n=rng.randrange(10000, 99999), d=rng.randrange(4, 21), c=rng.randrange(1000, 9999))
            kind, address = customer.identities[ident]
            last = line + 1 >= len(lines)
            progress[customer.number] = (rng.randrange(len(dialogues)), 0, ident) if last else (dialogue, line + 1, ident)
            if seq >= start:
                yield DemoEvent(seq, customer, kind, address, text, subject, topic, last)
            seq += 1

    def issues(self, rng: random.Random) -> Iterator[tuple[DemoCustomer, str, str, list[str]]]:
        """Issues for a history, one after another: (customer, topic, subject, the customer's
        lines with numbers filled in); every customer's dialogue runs whole, as one issue."""
        while True:
            customer = rng.choice(self.customers)
            topic, subject, lines = rng.choice(_DIALOGUES[customer.language])
            n, d, c = rng.randrange(10000, 99999), rng.randrange(4, 21), rng.randrange(1000, 9999)
            yield customer, topic, subject, [line.format(n=n, d=d, c=c) for line in lines]

    def thanks(self, customer_language: str, number: int) -> str:
        options = _THANKS.get(customer_language, _THANKS["en"])
        return options[number % len(options)]

    def customer_by_address(self, kind: str, address: str) -> DemoCustomer | None:
        for customer in self.customers:
            for k, a in customer.identities:
                if k == kind and (a == address or a == address.lstrip("+") or "+" + a == address):
                    return customer
        return None


def inbound_for(event: DemoEvent, sent_at: datetime, kind: IdentityKind | None = None) -> InboundMessage:
    """The message a channel of `event.kind` would deliver for this event."""
    return InboundMessage(
        external_id=f"demo-{event.seq}",
        identity_kind=kind or event.kind,
        address=event.address,
        body=event.text,
        sent_at=sent_at,
        sender_name=event.customer.name,
        subject=event.subject if event.kind is IdentityKind.EMAIL else "",
        meta={"topic": event.topic},
    )


class DemoConnector(Connector):
    """A simulated channel: plays one identity kind of the `DemoWorld` traffic."""

    kind = "demo"
    identity_kind = IdentityKind.TELEGRAM  # per instance: see `simulate`

    def __init__(self, context: ChannelContext):
        super().__init__(context)
        options = context.settings
        try:
            self.simulate = IdentityKind(options.get("simulate", "telegram"))
        except ValueError:
            raise PermanentError(f"simulate must be one of {', '.join(k.value for k in SIMULATED_KINDS)}") from None
        self.identity_kind = self.simulate
        self.world = DemoWorld(int(options.get("seed", 7)))
        self.rate = float(options.get("rate", 0.5))
        self.limit = options.get("limit")
        self.batch = max(1, int(options.get("batch", 1 if self.rate else 250)))
        self.send_delay = float(options.get("send_delay", 0.3))
        self.failure_rate = float(options.get("failure_rate", 0.05))
        self.answer_rate = float(options.get("answer_rate", 0.5))
        log_file = options.get("sent_log_file")
        self.sent_log = Path(log_file) if log_file else None
        self.calls = self.simulate is IdentityKind.PHONE and bool(options.get("calls", False))
        self.extension = str(options.get("extension", DEMO_EXTENSION))
        self._sink: InboundSink | None = None
        self._answers: set[asyncio.Task] = set()

    async def run(self, sink: InboundSink) -> None:
        self._sink = sink
        start = int(sink.cursor) + 1 if sink.cursor else 0
        sink.connected(f"simulating {self.simulate.value}")
        batch: list[InboundMessage] = []
        pause = 1.0 / self.rate if self.rate > 0 else 0.0
        for event in self.world.events(start):
            if self.limit is not None and event.seq >= int(self.limit):
                break
            if event.kind is self.simulate:
                if self.calls:
                    batch.append(self._call(event, "ringing"))
                    self._start(self._call_goes_on(event))
                else:
                    batch.append(inbound_for(event, datetime.now(UTC)))
            if len(batch) >= self.batch or pause:
                await sink.deliver(batch, str(event.seq))
                batch = []
            if pause:
                await asyncio.sleep(pause)
        if batch:
            await sink.deliver(batch, str(event.seq))
        await asyncio.Event().wait()  # the stream is over; stay connected until cancelled

    async def send(self, message: OutboundMessage) -> SendResult:
        await asyncio.sleep(self.send_delay)
        # A deterministic share of first attempts fails, as a flaky network would.
        if message.attempt == 1 and random.Random(message.id).random() < self.failure_rate:
            raise TransientError("simulated network hiccup")
        if self.sent_log is not None:
            with self.sent_log.open("a", encoding="utf-8") as f:
                f.write(f"{message.id}\n")
        customer = self.world.customer_by_address(self.simulate, message.address)
        answers = customer is not None and random.Random(-message.id).random() < self.answer_rate
        if self._sink is not None:
            # Every reply is reported delivered (and read, when the customer answers), as a
            # real channel reports an operator's reply: nothing stays "sent" for ever.
            self._start(self._report(message.id, read=answers))
            if answers:
                self._start(self._answer(customer, message))
        return SendResult(external_id=f"demo-out-{message.id}")

    def _call(self, event: DemoEvent, what: str, duration: int | None = None) -> InboundMessage:
        """One call event of `event`'s customer, as the PBX would post it."""
        from connectors.telephony import call_event

        payload = {
            "event": what,
            "call_id": f"demo-{event.seq}",
            "direction": "in",
            "from": event.address,
            "extension": self.extension,
            "name": event.customer.name,
            "at": datetime.now(UTC).isoformat(),
        }
        if duration is not None:
            payload["duration"] = duration
            payload["note"] = event.text  # what the operator wrote down during the call
        return call_event(payload)

    async def _call_goes_on(self, event: DemoEvent) -> None:
        """A few seconds of ringing, then answered and (a little later) ended with a talk
        time of a minute or a few, or missed (about one call in three)."""
        rng = random.Random(event.seq * 13)
        await asyncio.sleep(3 + rng.random() * 5)
        assert self._sink is not None
        if rng.random() < 0.3:
            await self._sink.deliver([self._call(event, "missed")], None)
            return
        await self._sink.deliver([self._call(event, "answered")], None)
        await asyncio.sleep(4 + rng.random() * 8)
        await self._sink.deliver([self._call(event, "ended", duration=rng.randint(40, 420))], None)

    def _start(self, work) -> None:
        task = asyncio.create_task(work)
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def _report(self, message_id: int, *, read: bool) -> None:
        """The simulated channel's receipts: delivered within a second or two, then read."""
        assert self._sink is not None
        external_id = f"demo-out-{message_id}"
        await asyncio.sleep(self.send_delay + random.Random(message_id * 7).random() * 1.5)
        await self._sink.delivery_updates([DeliveryUpdate(external_id, DeliveryState.DELIVERED)])
        if read:
            await asyncio.sleep(1.0)
            await self._sink.delivery_updates([DeliveryUpdate(external_id, DeliveryState.READ)])

    async def _answer(self, customer: DemoCustomer, message: OutboundMessage) -> None:
        """The simulated customer answers a reply a few seconds later."""
        await asyncio.sleep(2 + random.Random(message.id).random() * 6)
        assert self._sink is not None
        reply = InboundMessage(
            external_id=f"demo-answer-{message.id}",
            identity_kind=self.simulate,
            address=message.address,
            body=self.world.thanks(customer.language, message.id),
            sent_at=datetime.now(UTC),
            sender_name=customer.name,
        )
        await self._sink.deliver([reply], None)  # outside the event stream: no cursor

    async def close(self) -> None:
        for task in list(self._answers):
            task.cancel()


def history_start(days: int) -> datetime:
    """When the demo's built history begins."""
    return datetime.now(UTC) - timedelta(days=days)
