"""Reactions: an emoji a customer puts on a message (or takes off), kept on that message.

A reaction is not something a customer wrote: it opens no conversation, reopens none and makes
nobody wait (issue #14, "Delivery states and reactions"). A connector hands it in as an inbound
record flagged `reaction` (`connectors/payload.py`) whose `reply_to_external_id` is the channel's
id of the message reacted to and whose `meta` JSON holds `emoji` ("" when taken off); the channel
shapes are WhatsApp's `reaction` message (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples#reaction-messages)
and Telegram's `message_reaction` update (https://core.telegram.org/bots/api#messagereactionupdated).

One row per (channel, message reacted to, person): the person's current reaction; a later one
replaces it, an older one arriving late changes nothing. A reaction to a message we do not know
(sent before omniconsole, or deleted) is kept all the same, with `message_id` NULL: a record to
read, never a waiting conversation. Times are epoch seconds. The table is created by the
migration "reactions" in schema.py, whose triggers keep a reaction with the identity that made
it: a merge or unmerge moves it, erasing the person (their identities) erases it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from omniconsole.store.events import add_event


@dataclass(frozen=True, slots=True)
class Reaction:
    """One person's current reaction on one message (`emoji` "" when they took it off)."""

    channel_id: int
    target_external_id: str
    message_id: int | None
    customer_id: int | None
    sender_name: str
    emoji: str
    reacted_at: float


def record_reaction(conn: sqlite3.Connection, channel_id: int, record: Any, now: float, *, actor: str = "") -> int | None:
    """Keep `record` (an `InboundRecord` flagged `reaction`) on the message it reacts to,
    inside the caller's transaction; returns our message id, or None when the message is not
    ours to know. Appends a `message.reacted` event when the reaction changed anything."""
    target = record.reply_to_external_id or ""
    try:
        meta = json.loads(record.meta) if record.meta else {}
    except ValueError:
        meta = {}
    emoji = str(meta.get("emoji") or "") if isinstance(meta, dict) else ""
    found = (
        conn.execute(
            "SELECT id, conversation_id, customer_id FROM messages WHERE channel_id = ? AND external_id = ?",
            (channel_id, target),
        ).fetchone()
        if target
        else None
    )
    message_id, conversation_id, customer_id = found if found is not None else (None, None, None)
    if customer_id is None:
        owner = conn.execute(
            "SELECT customer_id FROM identities WHERE kind = ? AND address = ?", (record.identity_kind, record.address)
        ).fetchone()
        customer_id = owner[0] if owner else None
    changed = conn.execute(
        "INSERT INTO reactions (channel_id, target_external_id, message_id, identity_kind, address, customer_id,"
        " sender_name, emoji, external_id, reacted_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (channel_id, target_external_id, identity_kind, address) DO UPDATE SET"
        " emoji = excluded.emoji, external_id = excluded.external_id, reacted_at = excluded.reacted_at,"
        " recorded_at = excluded.recorded_at, sender_name = excluded.sender_name,"
        " message_id = coalesce(reactions.message_id, excluded.message_id),"
        " customer_id = coalesce(reactions.customer_id, excluded.customer_id)"
        " WHERE excluded.reacted_at >= reactions.reacted_at AND excluded.emoji != reactions.emoji",
        (
            channel_id,
            target,
            message_id,
            record.identity_kind,
            record.address,
            customer_id,
            record.sender_name,
            emoji,
            record.external_id,
            record.sent_at,
            now,
        ),
    ).rowcount
    if changed:
        add_event(
            conn,
            "message.reacted",
            actor=actor,
            conversation_id=conversation_id,
            customer_id=customer_id,
            message_id=message_id,
            payload={"emoji": emoji, "target": target, "known": message_id is not None},
            at=now,
        )
    return message_id


def reactions_in_conversation(conn: sqlite3.Connection, conversation_id: int) -> dict[int, list[Reaction]]:
    """The current reactions on a conversation's messages, by our message id (oldest first);
    reactions taken off are left out."""
    rows = conn.execute(
        "SELECT r.channel_id, r.target_external_id, r.message_id, r.customer_id, r.sender_name, r.emoji, r.reacted_at"
        " FROM reactions r JOIN messages m ON m.id = r.message_id"
        " WHERE m.conversation_id = ? AND r.emoji != '' ORDER BY r.reacted_at, r.id",
        (conversation_id,),
    ).fetchall()
    found: dict[int, list[Reaction]] = {}
    for row in rows:
        found.setdefault(row[2], []).append(Reaction(*row))
    return found


def unmatched_reactions(conn: sqlite3.Connection, customer_id: int) -> list[Reaction]:
    """A customer's reactions to messages we do not know (newest first)."""
    rows = conn.execute(
        "SELECT channel_id, target_external_id, message_id, customer_id, sender_name, emoji, reacted_at"
        " FROM reactions WHERE customer_id = ? AND message_id IS NULL AND emoji != '' ORDER BY reacted_at DESC, id DESC",
        (customer_id,),
    ).fetchall()
    return [Reaction(*row) for row in rows]
