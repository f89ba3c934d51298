"""The demo shop: configured demo channels and a few weeks of history built from the same
simulated world the live demo channels play."""

from __future__ import annotations

import dataclasses
import heapq
import random
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from connectors.demo import DEMO_ORIGINS, SIMULATED_KINDS, DemoCustomer, DemoEvent, DemoWorld, inbound_for, recontact_chance
from omniconsole.config import ChannelSettings, Settings
from omniconsole.core.identity import normalize_address
from omniconsole.core.ingest import Ingestor
from omniconsole.models import ConversationStatus, DeliveryState, OperatorRole
from omniconsole.store import Store, actions, history, journeys, outbox, queries
from omniconsole.store import identities as identities_store

DEMO_OPERATORS = ("anna", "boris")

_REPLIES = {
    "ru": [
        "Здравствуйте! Уже проверяем, ответим в течение часа.",
        "Спасибо, что написали. Всё поправили.",
        "Передали в службу доставки, курьер свяжется с вами.",
        "Возврат оформлен, деньги придут за 3–5 дней.",
    ],
    "en": [
        "Hello! We're checking right now and will answer within the hour.",
        "Thanks for writing, it's fixed now.",
        "We've passed it to the courier service; they will call you.",
        "Your refund is on its way, 3-5 days.",
    ],
}


#: Two approved templates for the demo's WhatsApp channel (ctrl+g in the composer), as a
#: real WhatsApp channel's `templates` would name them.
DEMO_TEMPLATES = [
    {
        "name": "order_update",
        "language": "ru",
        "params": ["номер заказа", "статус"],
        "text": "Здравствуйте! Заказ {1}: {2}. Ответьте на это сообщение, если остались вопросы.",
    },
    {
        "name": "follow_up",
        "language": "en_US",
        "params": ["customer's name"],
        "text": "Hello {1}, we are following up on your request. Reply to this message to continue the conversation.",
    },
]


def demo_settings(directory: Path, *, rate: float = 0.5, seed: int = 7) -> Settings:
    """Settings for the demo: a database under `directory` and one demo channel per
    simulated channel kind."""
    names = {"telegram": "Telegram", "email": "E-mail", "phone": "Phone", "vk": "VK", "whatsapp": "WhatsApp"}
    # rate 0 here means a quiet shop (no new customer messages), not the connector's "as fast
    # as possible".
    extra = {"limit": 0} if rate <= 0 else {}
    # The bot answers on the demo Telegram and offers answers on the demo WhatsApp (issue #17),
    # so a newcomer sees it answer, offer and hand off.
    bots = {"telegram": {"bot": "answer", "bot_name": "Shop bot"}, "whatsapp": {"bot": "suggest", "bot_name": "Shop bot"}}
    channels = [
        ChannelSettings(
            kind="demo",
            name=f"{names[k.value]} (demo)",
            options={
                "simulate": k.value,
                "seed": seed,
                "rate": rate,
                **extra,
                **bots.get(k.value, {}),
                **({"templates": DEMO_TEMPLATES} if k.value == "whatsapp" else {}),
                **({"calls": True} if k.value == "phone" else {}),
            },
        )
        for k in SIMULATED_KINDS
    ]
    return Settings(database=directory / "omniconsole.db", data_dir=directory, channels=channels)


#: The config the demo writes beside its database, so every command can be pointed at it.
DEMO_CONFIG_NAME = "omniconsole.toml"


def demo_config_text(settings: Settings) -> str:
    """A config file (TOML) naming the demo's database, data folder and channels, with paths
    relative to the folder it is written in (the demo's folder): `omniconsole --config
    data/demo/omniconsole.toml stats` (or `doctor`, `export` ...) then sees what the demo runs."""
    import json
    import os

    lines = [
        "# Written by `omniconsole demo`: point any command at the demo with",
        "#   omniconsole --config THIS_FILE COMMAND   or   export OMNICONSOLE_CONFIG=THIS_FILE",
        "[store]",
        f"database = {json.dumps(settings.database.name)}",
        f"data_dir = {json.dumps(os.path.relpath(settings.data_dir, settings.database.parent))}",
        "",
        "[identity]",
        f"default_region = {json.dumps(settings.default_region)}",
    ]
    for channel in settings.channels:
        lines += ["", "[[channels]]", f"kind = {json.dumps(channel.kind)}", f"name = {json.dumps(channel.name)}"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in channel.options.items()]
    # An SLA policy and the demo's rules and macros, so a newcomer sees countdowns, the At risk
    # view (6) and macros (M) on the live messages (the backfilled history gets no clocks).
    lines += [
        "",
        "[[sla]]",
        'name = "Demo: answer within 15 minutes"',
        "first_response_minutes = 15",
        "next_response_minutes = 30",
        "resolution_minutes = 480",
        "",
        "[automation]",
        f"rules = {json.dumps(DEMO_RULES_NAME)}",
    ]
    return "\n".join(lines) + "\n"


#: The demo's rules file, written beside its config (README "Automation rules and macros").
DEMO_RULES_NAME = "rules.toml"

DEMO_RULES = """# Written by `omniconsole demo` (README "Automation rules and macros"; a fuller example is
# data/rules.example.toml in the repository).
budget = 20

[[rules]]
name = "refunds are high priority"
on = "message.received"
match = "any"
conditions = [
  { field = "message.body", matches = "(?i)refund|money back|возврат|верните деньги" },
]
actions = [ { add_labels = ["refund"] }, { priority = "high" } ]

[[macros]]
name = "Close politely"
key = "f6"
actions = [ { reply = "closing" }, { resolve = true } ]

[[macros]]
name = "We are checking, back in an hour"
actions = [ { reply = "checking" }, { snooze = "1h" } ]
"""


def _toml_value(value) -> str:
    """A TOML value for the demo's own options: text, numbers, lists and inline tables."""
    import json

    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {_toml_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)  # a JSON string or number is a TOML one


async def build_demo_history(
    store: Store, settings: Settings, *, conversations: int = 2000, days: int = 21, admin: str = ""
) -> int:
    """Fill an empty database with `days` of history ending now; returns the number of messages.

    Everything goes through the same store functions as live traffic and operator actions
    (no SQL here), in one transaction (a few seconds instead of minutes of single commits)."""
    channel_ids = {}
    for channel in settings.channels:
        channel_ids[channel.channel_kind] = await store.ensure_channel(channel.channel_kind, channel.name)
    seed = int(settings.channels[0].options.get("seed", 7)) if settings.channels else 7
    ingestor = Ingestor(store, settings.data_dir, settings.default_region)
    # Three people for each issue: most customers write once in a while, so a return within 7
    # days means something (the first 50 are the live demo's own customers).
    world = DemoWorld(seed, customers=max(50, 3 * conversations))
    return await store.db.write(_build, ingestor, channel_ids, world, conversations, days, admin)


def _build(
    conn: sqlite3.Connection,
    ingestor: Ingestor,
    channel_ids: dict[str, int],
    world: DemoWorld,
    target: int,
    days: int,
    admin: str,
) -> int:
    rng = random.Random(world.seed)
    operators = [*DEMO_OPERATORS, *([admin] if admin else [])]
    for login in operators:
        actions.add_operator(conn, login, login.capitalize(), OperatorRole.ADMIN if login == admin else OperatorRole.AGENT)
    now = time.time()
    # The shop knows most customers from its CRM: every identity of a person is one customer
    # from the start, so channel switches land in one conversation. One in eight with several
    # channels is known by the first only, as in life: their other channel makes a second
    # customer, and the window suggests ("the same full name") that the two are one person.
    for customer in world.customers:
        identities = [
            (kind.value, normalize_address(kind, address, ingestor.default_region), address)
            for kind, address in customer.identities
        ]
        if len(identities) > 1 and customer.number % 8 == 3:
            identities = identities[:1]
        identities_store.add_customer(conn, customer.name, identities, now=now - days * 86400)
    # Issues one after another, evenly over the period; an issue resolved on a channel that
    # serves its topic badly brings the customer back a few days later (connectors/demo.py
    # RECONTACT_CHANCE), often on another channel and repeating their first words.
    step = days * 86400 / target
    moment = now - days * 86400
    issues = world.issues(rng)
    returns: list[tuple[float, int, DemoCustomer, str, str, list[str], int]] = []
    state = _Backfill(conn, ingestor, channel_ids, rng, operators, now)
    begun = 0
    while begun < target:
        if returns and returns[0][0] <= moment:
            at, _, customer, topic, subject, lines, ident = heapq.heappop(returns)
        else:
            moment += step * (0.5 + rng.random())
            if moment >= now - 600:
                break
            at, (customer, topic, subject, lines) = moment, next(issues)
            ident = rng.randrange(len(customer.identities))
        begun += 1
        resolved_on = state.issue(customer, topic, subject, lines, ident, at)
        if resolved_on is not None and rng.random() < recontact_chance(topic, resolved_on[0]):
            kinds = len(customer.identities)
            again = (
                (resolved_on[1] + 1 + rng.randrange(kinds - 1)) % kinds if kinds > 1 and rng.random() < 0.7 else resolved_on[1]
            )
            words = {"ru": "Пишу ещё раз: ", "en": "Writing again: "}.get(customer.language, "")
            heapq.heappush(
                returns,
                (
                    resolved_on[2] + rng.uniform(0.2, 5) * 86400,
                    state.seq,
                    customer,
                    topic,
                    subject,
                    [words + lines[0], *lines[1:]],
                    again,
                ),
            )
    return state.messages


class _Backfill:
    """Writes one demo issue at a time into the history (store functions only)."""

    def __init__(
        self, conn, ingestor: Ingestor, channel_ids: dict[str, int], rng: random.Random, operators: list[str], now: float
    ):
        self.conn, self.ingestor, self.channel_ids, self.rng = conn, ingestor, channel_ids, rng
        self.operators, self.now = operators, now
        self.seq = self.messages = 0

    def issue(self, customer: DemoCustomer, topic: str, subject: str, lines: list[str], ident: int, at: float):
        """The customer's lines (each answered by an operator) and the resolution; returns
        (channel kind, identity index, epoch seconds) of the resolution, or None when the issue
        is still open."""
        conn, rng = self.conn, self.rng
        conversation_id = None
        kind_used = None
        operator = rng.choice(self.operators)
        for number, text in enumerate(lines):
            if number and len(customer.identities) > 1 and rng.random() < 0.15:
                ident = (ident + 1 + rng.randrange(len(customer.identities) - 1)) % len(customer.identities)
                if rng.random() < 0.5:
                    text = lines[0]  # on the new channel the customer starts over
            kind, address = customer.identities[ident]
            channel_id = self.channel_ids.get(kind.value)
            if channel_id is None or at >= self.now - 60:
                break
            event = DemoEvent(self.seq, customer, kind, address, text, subject, topic, number == len(lines) - 1)
            message = inbound_for(event, _utc(at))
            origins = DEMO_ORIGINS.get(kind.value)
            if number == 0 and origins and rng.random() < 0.3:
                message = dataclasses.replace(message, origin=rng.choice(origins))
            record = self.ingestor.prepare(message)
            record.external_id = f"history-{self.seq}"
            self.seq += 1
            result = history.ingest_batch(conn, channel_id, kind.value, [record], None)
            self.messages += 1
            conversation_id = next(iter(result.conversations))
            kind_used = (kind.value, ident)
            journeys.set_topics(conn, [(conversation_id, topic)])  # a no-op once it has one
            # The older a conversation, the more certainly someone already answered it.
            if rng.random() > (0.95 if (self.now - at) > 86400 else 0.5):
                return None
            reply_at = at + rng.uniform(60, (20 if kind.value == "phone" else 180) * 60)
            if reply_at >= self.now:
                return None
            if queries.conversation(conn, conversation_id).assignee is None:
                actions.assign(conn, conversation_id, operator, operator, now=reply_at)
            reply = rng.choice(_REPLIES[customer.language])
            message_id = actions.queue_reply(conn, conversation_id, reply, operator, now=reply_at)
            outbox.mark_sent(conn, message_id, f"history-out-{message_id}", DeliveryState.DELIVERED, None)
            self.messages += 1
            at = reply_at + rng.uniform(60, 3 * 3600)
        if conversation_id is None or kind_used is None or at >= self.now - 0.3 * 86400:
            return None
        actions.set_status(conn, conversation_id, ConversationStatus.RESOLVED, operator, now=at)
        return kind_used[0], kind_used[1], at


def _utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)
