"""Writing what customers send into the unified history.

`ingest_batch` is the hot path: one transaction per batch, a handful of statements per
message, caches for the identities and conversations the batch has already touched. The core
hands it records that are already sanitised and normalised; this module decides which customer
and which conversation each message belongs to.
"""

from __future__ import annotations

import re
import sqlite3
import time

from omniconsole.models import Direction, preview_line
from omniconsole.store import analytics, calls, edits, journeys, reactions, search, spam
from omniconsole.store.attachments import add_attachments
from omniconsole.store.conversations import conversation_for
from omniconsole.store.events import add_event, mark_stale
from omniconsole.store.identities import add_customer, attach_identity, customer_for, suggest_for_identity
from omniconsole.store.records import NOT_WAITING, AttachmentRecord, InboundRecord, IngestResult
from omniconsole.store.search import fts_text, refresh_customer_index

# Names other modules and tests import from here (moved one floor down, see records.py,
# identities.py and search.py).
__all__ = [
    "AttachmentRecord",
    "InboundRecord",
    "IngestResult",
    "add_customer",
    "fts_text",
    "ingest_batch",
    "load_cursor",
    "refresh_customer_index",
    "save_cursor",
]


#: Cheap test on the hot path before a survey lookup: a body that starts with a number.
_MAY_BE_SCORE = re.compile(r"\s*\d{1,2}(?!\d)")


def ingest_batch(
    conn: sqlite3.Connection,
    channel_id: int,
    channel_kind: str,
    records: list[InboundRecord],
    cursor: str | None,
    *,
    actor: str = "",
) -> IngestResult:
    """Store `records` and the channel's `cursor` (run inside one write transaction).

    A record whose `(channel, external_id)` is stored already is a duplicate, unless it is a
    newer edit (`edits.apply_edit`: new text or files replace the stored ones, the old version is
    kept). Call events (flag `call`) go to `calls.ingest_call`. Returns what was done; raises
    sqlite3 errors only (the caller's transaction then rolls back, cursor included)."""
    result = IngestResult()
    identities: dict[tuple[str, str], tuple[int, int]] = {}
    open_conversations: dict[int, int] = {}
    touches: dict[int, _Touch] = {}
    spam_conversations: dict[int, int] = {}
    anyone_blocked = spam.any_blocks(conn)
    execute = conn.execute
    now = time.time()
    for record in records:
        if "call" in record.flags:
            # A phone call is one timeline entry that later events update (omniconsole/store/calls.py).
            calls.ingest_call(conn, channel_id, channel_kind, record, result, now, actor=actor)
            continue
        if "reaction" in record.flags:
            # An emoji on a message: kept on that message; opens, reopens and wakes nothing.
            reactions.record_reaction(conn, channel_id, record, now, actor=actor)
            continue
        existing = execute(
            "SELECT id, body, subject, customer_id, conversation_id, edited_at, edit_seq FROM messages"
            " WHERE channel_id = ? AND external_id = ?",
            (channel_id, record.external_id),
        ).fetchone()
        if existing is not None:
            result.receipts.append((record.external_id, existing[0], existing[4], existing[3], True))
            if edits.apply_edit(conn, existing, record, now):
                result.edited += 1
                result.conversations.add(existing[4])
            else:
                result.duplicates += 1
            continue

        answer = None
        if "button" in record.flags or _MAY_BE_SCORE.match(record.body):
            answer = analytics.take_survey_answer(conn, channel_id, record, now)
        if answer is not None:
            # A survey's answer: kept with the survey's conversation; it opens, reopens and wakes
            # nothing and is no customer message (store/analytics.py).
            message_id, conversation_id, customer_id = answer
            result.stored.append(message_id)
            result.receipts.append((record.external_id, message_id, conversation_id, customer_id, False))
            result.conversations.add(conversation_id)
            continue
        key = (record.identity_kind, record.address)
        found = identities.get(key)
        if found is None:
            found = customer_for(conn, record, now)
            identities[key] = found
        customer_id, identity_id = found
        display = "unverified: typed into a chat" if "unverified_identities" in record.flags else ""
        for kind, address in record.extra_identities:
            attach_identity(conn, customer_id, kind, address, display, now, actor)
        for kind, address in record.mentions:
            suggest_for_identity(conn, customer_id, kind, address, "wrote", now, actor)
        if record.origin:
            execute("UPDATE customers SET origin = ? WHERE id = ? AND origin IS NULL", (record.origin, customer_id))

        block_id = spam.block_for(conn, customer_id, identity_id) if anyone_blocked else None
        if block_id is not None:
            # A blocked sender: stored, in Spam, and kept out of the pipeline (store/spam.py).
            conversation_id = spam.spam_conversation(conn, block_id, customer_id, record, spam_conversations, now)
            result.spam.add(conversation_id)
        else:
            conversation_id = conversation_for(conn, record, customer_id, open_conversations, now)
        if record.origin:
            journeys.record_origin(conn, conversation_id, record.origin)
        is_start = "start" in record.flags
        direction = Direction.EVENT if is_start else Direction.IN
        body = record.body
        if is_start:
            body = f"started the chat from link: {record.origin}" if record.origin else "started the chat"
        message_id = execute(
            "INSERT INTO messages (conversation_id, customer_id, channel_id, identity_id, direction, author, body,"
            " subject, external_id, thread_key, reply_to_keys, reply_to_external_id, created_at, edited_at, edit_seq,"
            " state, flags, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, ?)",
            (
                conversation_id,
                customer_id,
                channel_id,
                identity_id,
                direction,
                record.sender_name,
                body,
                record.subject,
                record.external_id,
                record.thread_key,
                " ".join(record.reply_to_keys) or None,
                record.reply_to_external_id,
                record.sent_at,
                record.edited_at,
                record.edit_seq,
                " ".join(sorted(record.flags)),
                record.meta,
            ),
        ).lastrowid  # the hot path: RETURNING id costs twice as much here (measured)
        search.index_message(conn, message_id, fts_text(record.subject, body), customer_id)
        if record.attachments:
            add_attachments(conn, message_id, record.attachments)
        waiting = not is_start and not (record.flags & NOT_WAITING)
        preview = preview_line(body or (record.attachments[0].filename if record.attachments else ""))
        touched = touches.get(conversation_id)
        if touched is None:
            touches[conversation_id] = touched = _Touch()
        touched.add(record.sent_at, message_id, preview, waiting, channel_kind, channel_id)
        add_event(
            conn,
            "message.received",
            actor=actor,
            conversation_id=conversation_id,
            customer_id=customer_id,
            message_id=message_id,
            at=now,
        )
        result.stored.append(message_id)
        result.receipts.append((record.external_id, message_id, conversation_id, customer_id, False))
        result.conversations.add(conversation_id)
    # One update per conversation per batch, not one per message.
    for conversation_id, touched in touches.items():
        touched.apply(conn, conversation_id)
    if cursor is not None:
        save_cursor(conn, channel_id, cursor, now)
    return result


class _Touch:
    """What a batch's messages change in one conversation, folded into one UPDATE."""

    __slots__ = ("first_at", "last_at", "last_id", "preview", "waiting_at", "count", "kinds", "channel_id")

    def __init__(self) -> None:
        self.first_at = float("inf")
        self.last_at = float("-inf")
        self.last_id = self.preview = self.waiting_at = self.channel_id = None
        self.count = 0
        self.kinds: list[str] = []

    def add(self, at: float, message_id: int, preview: str, waiting: bool, kind: str, channel_id: int) -> None:
        self.count += 1
        self.channel_id = channel_id
        # The message that arrived last is the one to show and to mark unread, whatever the
        # sender's clock says (a delayed mail arrives after our reply); order by the later time.
        self.last_at = max(self.last_at, at)
        self.first_at = min(self.first_at, at)
        self.last_id, self.preview = message_id, preview
        if waiting and (self.waiting_at is None or at < self.waiting_at):
            self.waiting_at = at
        if kind not in self.kinds:
            self.kinds.append(kind)

    def apply(self, conn: sqlite3.Connection, conversation_id: int) -> None:
        waiting = self.waiting_at is not None
        known, last_at, last_inbound_at = conn.execute(
            "SELECT channel_kinds, last_activity_at, last_inbound_at FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        kinds = known.split()
        new_kinds = [k for k in self.kinds if k not in kinds]
        kinds += new_kinds
        # Inbound messages end no figure, but these can move one (store/facts.py): a first or
        # late message, a new channel, or the customer's word in a conversation not counted as
        # unattended yet (after our reply, or waking a paused one). A customer writing on to an
        # unattended conversation leaves its facts as they are: no rewrite on the hot path.
        if (
            new_kinds
            or last_inbound_at is None
            or self.first_at < last_at
            or (
                waiting
                and conn.execute(
                    "SELECT 1 FROM conversation_facts WHERE conversation_id = ? AND figure = 'unattended'", (conversation_id,)
                ).fetchone()
                is None
            )
        ):
            mark_stale(conn, conversation_id)
        conn.execute(
            "UPDATE conversations SET"
            " preview = :preview, last_message_id = :mid, last_activity_at = max(last_activity_at, :at),"
            " last_inbound_at = CASE WHEN :waiting THEN max(coalesce(last_inbound_at, 0), :at) ELSE last_inbound_at END,"
            " waiting_since = CASE WHEN :waiting THEN coalesce(waiting_since, :waiting_at) ELSE waiting_since END,"
            " message_count = message_count + :count, channel_kinds = :kinds, last_channel_id = :channel,"
            " status = CASE WHEN :waiting AND status IN ('pending', 'snoozed') THEN 'open' ELSE status END,"
            " snoozed_until = CASE WHEN :waiting THEN NULL ELSE snoozed_until END"
            " WHERE id = :id",
            {
                "at": self.last_at,
                "preview": self.preview,
                "mid": self.last_id,
                "waiting": waiting,
                "waiting_at": self.waiting_at,
                "count": self.count,
                "kinds": " ".join(kinds),
                "channel": self.channel_id,
                "id": conversation_id,
            },
        )


def save_cursor(conn: sqlite3.Connection, channel_id: int, cursor: str, now: float | None = None) -> None:
    """Remember where a channel's connector has read up to (inside the caller's transaction)."""
    conn.execute(
        "INSERT INTO connector_state (channel_id, key, value, updated_at) VALUES (?, 'cursor', ?, ?)"
        " ON CONFLICT (channel_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (channel_id, cursor, now or time.time()),
    )


def load_cursor(conn: sqlite3.Connection, channel_id: int) -> str | None:
    """The last cursor committed for a channel, or None."""
    row = conn.execute("SELECT value FROM connector_state WHERE channel_id = ? AND key = 'cursor'", (channel_id,)).fetchone()
    return row[0] if row else None
