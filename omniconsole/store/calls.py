"""Phone calls in the unified history: one timeline entry per call, updated as its events arrive.

A telephony channel delivers each call event (ringing, answered, ended, missed) as an inbound
record flagged `call` whose meta carries the event (`{"call": {...}}`) and whose external id
names the call. The first event creates the entry (a `direction = 'event'` message: a call is
something that happened, and a reply must not default to the phone channel, which cannot carry
text); later ones merge into it. Merging is order-independent, so a PBX that retries or sends
`ended` before `answered` ends in the same state:

* `answered` is sticky: once any event says the call was taken (or a talk time above zero),
  it was answered.
* `ended` and `missed` are final; an inbound call that ended without being answered is missed,
  an outbound one is "no answer".
* duration, recording URL and note take the latest value given; `extensions` collects every
  extension the call rang, `answered_by` is where it was taken.

What a call does to its conversation:

* an inbound call that rings (new entry) appends `call.ringing` for the screen pop, with the
  extensions that ring, the caller's number and name;
* a missed inbound call makes the customer wait for a call-back (the conversation is active and
  waiting, in Unassigned when nobody owns it yet);
* an answered call is an answer: nobody waits any more, and an unassigned conversation goes to
  the operator whose extension took the call.

Every function runs inside the caller's write transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from omniconsole.i18n import N_
from omniconsole.models import preview_line
from omniconsole.store import actions, search, spam
from omniconsole.store.actions import ActionError
from omniconsole.store.conversations import conversation_for
from omniconsole.store.events import add_event, mark_stale
from omniconsole.store.identities import customer_for
from omniconsole.store.records import InboundRecord, IngestResult

#: The call event kinds a telephony channel may deliver, in the order a call goes through them.
CALL_EVENTS = ("ringing", "answered", "ended", "missed")


def call_outcome(call: dict[str, Any]) -> str:
    """The call's state in words: ringing, talking, answered, missed, no answer."""
    if call.get("final"):
        if call.get("answered"):
            return "answered"
        return "missed" if call.get("direction") == "in" else "no answer"
    return "talking" if call.get("answered") else "ringing"


def call_summary(call: dict[str, Any]) -> str:
    """One line for the inbox preview and the search index: "Missed call from +7999…"."""
    outcome = call_outcome(call)
    inbound = call.get("direction") == "in"
    number = call.get("from") if inbound else call.get("to")
    if outcome == "missed":
        head = "Missed call"
    else:
        head = "Incoming call" if inbound else "Outgoing call"
    text = f"{head} {'from' if inbound else 'to'} {number}" if number else head
    if outcome not in ("missed",):
        text += f", {outcome}"
    duration = call.get("duration")
    if outcome == "answered" and isinstance(duration, int) and duration > 0:
        text += f", {duration // 60}:{duration % 60:02d}"
    return text


def merge_call(old: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    """The call's state after one more event (see the module docstring for the rules)."""
    kind = event.get("event")
    call = dict(old or {})
    for key in ("id", "direction", "from", "to"):
        if event.get(key) and not call.get(key):
            call[key] = event[key]
    call.setdefault("started_at", event.get("at"))
    for key in ("duration", "recording_url", "note"):
        if event.get(key) not in (None, ""):
            call[key] = event[key]
    if event.get("extensions"):
        # Every extension the call rang (a ring group, a transfer), in the order seen.
        known = list(call.get("extensions") or [])
        call["extensions"] = known + [x for x in event["extensions"] if x not in known]
    duration = call.get("duration")
    if kind == "answered" or (kind == "ended" and isinstance(duration, int) and duration > 0):
        if not call.get("answered"):
            call["answered"] = True
            call["answered_at"] = event.get("at")
        # Who took the call: an `answered` event says so whenever it arrives (it may come after
        # `ended`); an `ended` with talk time names them only if nothing better did.
        if event.get("extensions") and (kind == "answered" or not call.get("answered_by")):
            call["answered_by"] = list(event["extensions"])
    if kind in ("ended", "missed") and not call.get("final"):
        call["final"] = True
        call["ended_at"] = event.get("at")
    call.setdefault("answered", False)
    call.setdefault("final", False)
    call["outcome"] = call_outcome(call)
    return call


def ingest_call(
    conn: sqlite3.Connection,
    channel_id: int,
    channel_kind: str,
    record: InboundRecord,
    result: IngestResult,
    now: float,
    *,
    actor: str = "",
) -> None:
    """Store one call event: create the call's entry or merge the event into it."""
    event = _event_of(record)
    existing = conn.execute(
        "SELECT id, body, customer_id, conversation_id, meta FROM messages WHERE channel_id = ? AND external_id = ?",
        (channel_id, record.external_id),
    ).fetchone()
    if existing is None:
        _new_call(conn, channel_id, channel_kind, record, event, result, now, actor)
        return
    message_id, old_body, customer_id, conversation_id, meta = existing
    old = _json(meta).get("call") or {}
    call = merge_call(old, event)
    result.receipts.append((record.external_id, message_id, conversation_id, customer_id, call == old))
    if call == old:
        result.duplicates += 1  # a retried event: nothing new
        return
    body = call_summary(call)
    search.unindex_message(conn, message_id, old_body, customer_id)
    conn.execute(
        "UPDATE messages SET body = ?, meta = ? WHERE id = ?",
        (body, json.dumps({"call": call}, ensure_ascii=False), message_id),
    )
    search.index_message(conn, message_id, body, customer_id)
    _apply_to_conversation(conn, conversation_id, customer_id, message_id, old, call, body, record.sent_at, now)
    add_event(
        conn,
        "call.updated",
        actor=actor,
        conversation_id=conversation_id,
        customer_id=customer_id,
        message_id=message_id,
        payload={"outcome": call["outcome"]},
        at=now,
    )
    result.edited += 1
    result.conversations.add(conversation_id)


def _new_call(
    conn: sqlite3.Connection,
    channel_id: int,
    channel_kind: str,
    record: InboundRecord,
    event: dict[str, Any],
    result: IngestResult,
    now: float,
    actor: str,
) -> None:
    call = merge_call(None, event)
    body = call_summary(call)
    customer_id, identity_id = customer_for(conn, record, now)
    if not record.subject:
        # The subject of a conversation the call opens (a call has no words to take one from).
        inbound = call.get("direction") == "in"
        record.subject = f"Phone call {'from' if inbound else 'to'} {call.get('from') if inbound else call.get('to')}"
    block_id = spam.block_for(conn, customer_id, identity_id) if spam.any_blocks(conn) else None
    if block_id is not None:
        # A blocked caller: the call is kept in Spam, and no window pops it (store/spam.py).
        conversation_id = spam.spam_conversation(conn, block_id, customer_id, record, {}, now)
        result.spam.add(conversation_id)
    else:
        conversation_id = conversation_for(conn, record, customer_id, {}, now)
    message_id = conn.execute(
        "INSERT INTO messages (conversation_id, customer_id, channel_id, identity_id, direction, author, body,"
        " external_id, created_at, state, flags, meta) VALUES (?, ?, ?, ?, 'event', '', ?, ?, ?, 'received', 'call', ?) RETURNING id",
        (
            conversation_id,
            customer_id,
            channel_id,
            identity_id,
            body,
            record.external_id,
            record.sent_at,
            json.dumps({"call": call}, ensure_ascii=False),
        ),
    ).fetchone()[0]
    search.index_message(conn, message_id, body, customer_id)
    kinds = conn.execute("SELECT channel_kinds FROM conversations WHERE id = ?", (conversation_id,)).fetchone()[0].split()
    conn.execute(
        "UPDATE conversations SET last_message_id = ?, message_count = message_count + 1, channel_kinds = ?,"
        " last_channel_id = ? WHERE id = ?",
        (message_id, " ".join(kinds + ([channel_kind] if channel_kind not in kinds else [])), channel_id, conversation_id),
    )
    _apply_to_conversation(conn, conversation_id, customer_id, message_id, {}, call, body, record.sent_at, now)
    add_event(
        conn,
        "message.received",
        actor=actor,
        conversation_id=conversation_id,
        customer_id=customer_id,
        message_id=message_id,
        at=now,
    )
    if call["direction"] == "in" and not call["final"] and not call["answered"] and block_id is None:
        # The screen pop: every window whose operator has one of these extensions opens the
        # conversation. Carried by the events log like everything else (the store is the bus).
        name = conn.execute("SELECT display_name FROM customers WHERE id = ?", (customer_id,)).fetchone()[0]
        payload = {
            "extensions": call.get("extensions") or [],
            "number": call.get("from") or "",
            "name": name,
            "call_id": call.get("id") or "",
        }
        add_event(
            conn,
            "call.ringing",
            actor=actor,
            conversation_id=conversation_id,
            customer_id=customer_id,
            message_id=message_id,
            payload=payload,
            at=now,
        )
    result.stored.append(message_id)
    result.receipts.append((record.external_id, message_id, conversation_id, customer_id, False))
    result.conversations.add(conversation_id)


def _apply_to_conversation(
    conn: sqlite3.Connection,
    conversation_id: int,
    customer_id: int,
    message_id: int,
    old: dict[str, Any],
    call: dict[str, Any],
    body: str,
    at: float,
    now: float,
) -> None:
    """What the call's new state means for its conversation (see the module docstring)."""
    mark_stale(conn, conversation_id)  # a missed call reopens, an answered one answers: figures move
    conn.execute(
        "UPDATE conversations SET preview = ?, last_activity_at = max(last_activity_at, ?) WHERE id = ?",
        (preview_line("📞 " + body), at, conversation_id),
    )
    if call["outcome"] == "missed" and old.get("outcome") != "missed":
        conn.execute(
            "UPDATE conversations SET last_inbound_at = max(coalesce(last_inbound_at, 0), :at),"
            " waiting_since = coalesce(waiting_since, :at), snoozed_until = NULL,"
            " status = CASE WHEN status IN ('pending', 'snoozed', 'resolved') THEN 'open' ELSE status END,"
            " resolved_at = NULL, last_message_id = :mid WHERE id = :id",
            {"at": at, "mid": message_id, "id": conversation_id},
        )
    elif call["answered"]:
        if not old.get("answered"):
            # Talking to the customer answers them: nobody waits for us any more.
            conn.execute(
                "UPDATE conversations SET waiting_since = NULL, first_response_at = coalesce(first_response_at, ?) WHERE id = ?",
                (at, conversation_id),
            )
        # The conversation goes to whoever took the call, once the PBX says who (never to a
        # guess from the extensions it rang: a ring group rings many).
        if call.get("answered_by") and call.get("answered_by") != old.get("answered_by"):
            taker = _operator_with_extension(conn, call["answered_by"])
            assignee = conn.execute("SELECT assignee FROM conversations WHERE id = ?", (conversation_id,)).fetchone()[0]
            if taker is not None and assignee is None:
                actions.assign(conn, conversation_id, taker, "telephony", now)


def _operator_with_extension(conn: sqlite3.Connection, extensions: list[str]) -> str | None:
    for extension in extensions:
        row = conn.execute("SELECT login FROM operators WHERE extension = ?", (extension,)).fetchone()
        if row is not None:
            return row[0]
    return None


def _event_of(record: InboundRecord) -> dict[str, Any]:
    event = _json(record.meta).get("call")
    if not isinstance(event, dict) or event.get("event") not in CALL_EVENTS:
        raise ValueError(f"call record {record.external_id!r} carries no call event in its meta")
    event = dict(event)
    event.setdefault("at", record.sent_at)
    return event


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def note_on_call(conn: sqlite3.Connection, message_id: int, text: str, author: str, now: float | None = None) -> None:
    """An operator's note about a call ("promised a refund"), kept on the call's entry. Later
    events from the PBX merge into the call and keep it."""
    now = now or time.time()
    row = conn.execute("SELECT meta, flags, conversation_id, customer_id FROM messages WHERE id = ?", (message_id,)).fetchone()
    if row is None or row[1] != "call":
        raise ActionError(N_("that timeline entry is not a phone call"))
    meta = _json(row[0])
    call = dict(meta.get("call") or {})
    call["operator_notes"] = [*(call.get("operator_notes") or []), {"by": author, "at": now, "text": text}]
    conn.execute(
        "UPDATE messages SET meta = ? WHERE id = ?", (json.dumps({**meta, "call": call}, ensure_ascii=False), message_id)
    )
    add_event(conn, "call.noted", actor=author, conversation_id=row[2], customer_id=row[3], message_id=message_id, at=now)
