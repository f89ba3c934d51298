"""The demo shop: configured demo channels and a few weeks of history built from the same
simulated world the live demo channels play."""

from __future__ import annotations

import random
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from connectors.demo import SIMULATED_KINDS, DemoWorld, inbound_for
from omniconsole.config import ChannelSettings, Settings
from omniconsole.core.identity import normalize_address
from omniconsole.core.ingest import Ingestor
from omniconsole.models import ConversationStatus, DeliveryState, OperatorRole
from omniconsole.store import Store, actions, history, outbox, queries
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
    return "\n".join(lines) + "\n"


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
    return await store.db.write(_build, ingestor, channel_ids, DemoWorld(seed), conversations, days, admin)


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
    # About 3.5 messages a conversation: spread the events evenly over the period.
    total_events = int(target * 3.6)
    step = days * 86400 / total_events
    moment = now - days * 86400
    messages = finished = 0
    for event in world.events(0):
        if finished >= target or moment >= now - 600:
            break
        moment += step * (0.5 + rng.random())
        channel_id = channel_ids.get(event.kind.value)
        if channel_id is None:
            continue
        record = ingestor.prepare(inbound_for(event, _utc(moment)))
        record.external_id = f"history-{event.seq}"
        result = history.ingest_batch(conn, channel_id, event.kind.value, [record], None)
        messages += 1
        conversation_id = next(iter(result.conversations))
        # The older a conversation, the more certainly someone already answered it.
        age_days = (now - moment) / 86400
        if rng.random() < (0.95 if age_days > 1 else 0.5):
            operator = rng.choice(operators)
            reply_at = moment + rng.uniform(60, 3 * 3600)
            if reply_at < now:
                if queries.conversation(conn, conversation_id).assignee is None:
                    actions.assign(conn, conversation_id, operator, operator, now=reply_at)
                text = rng.choice(_REPLIES[event.customer.language])
                message_id = actions.queue_reply(conn, conversation_id, text, operator, now=reply_at)
                outbox.mark_sent(conn, message_id, f"history-out-{message_id}", DeliveryState.DELIVERED, None)
                messages += 1
                if event.last_line and age_days > 0.3:
                    actions.set_status(conn, conversation_id, ConversationStatus.RESOLVED, operator, now=reply_at + 60)
                    finished += 1
    return messages


def _utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)
