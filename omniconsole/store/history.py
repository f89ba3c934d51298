"""Writing what customers send into the unified history.

`ingest_batch` is the hot path: one transaction per batch, a handful of statements per
message, caches for the identities and conversations the batch has already touched. The core
hands it records that are already sanitised and normalised; this module decides which customer
and which conversation each message belongs to.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field

from omniconsole.models import ConversationStatus, Direction, preview_line
from omniconsole.store import calls, customers, phones, reactions


@dataclass(slots=True)
class AttachmentRecord:
    """A file of a message, already written under the data directory (or not, with `note`)."""

    filename: str
    mime_type: str
    size: int | None
    sha256: str | None
    path: str | None
    note: str = ""


@dataclass(slots=True)
class InboundRecord:
    """One inbound message, sanitised and with its identity normalised, ready to store."""

    external_id: str
    identity_kind: str
    address: str
    body: str
    sent_at: float
    sender_name: str = ""
    identity_display: str = ""
    subject: str = ""
    thread_key: str | None = None
    reply_to_keys: tuple[str, ...] = ()
    reply_to_external_id: str | None = None
    attachments: list[AttachmentRecord] = field(default_factory=list)
    extra_identities: list[tuple[str, str]] = field(default_factory=list)
    edited_at: float | None = None
    origin: str | None = None
    flags: frozenset[str] = frozenset()
    meta: str | None = None
    # Normalised identities written in the body (an e-mail, a phone number): evidence, never
    # identities of the sender by themselves.
    mentions: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class IngestResult:
    """What a batch did: ids of stored messages, how many were already there or edited."""

    stored: list[int] = field(default_factory=list)
    duplicates: int = 0
    edited: int = 0
    conversations: set[int] = field(default_factory=set)
    # (external id, message id, conversation id, customer id, was already stored) per record,
    # so a channel can answer its sender with our ids (the open API does).
    receipts: list[tuple[str, int, int, int, bool]] = field(default_factory=list)


# Flags that mean "no person is waiting for an answer" (auto-replies, bounces).
_NOT_WAITING = frozenset({"auto_reply", "bounce"})


def fts_text(subject: str, body: str) -> str:
    """What the full-text index holds for a message: its subject (e-mail) and body."""
    return f"{subject}\n{body}" if subject else body


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

    A record whose `(channel, external_id)` is stored already is skipped, unless it carries
    `edited_at`, in which case the stored body is replaced."""
    result = IngestResult()
    identities: dict[tuple[str, str], tuple[int, int]] = {}
    open_conversations: dict[int, int] = {}
    touches: dict[int, _Touch] = {}
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
            "SELECT id, body, subject, customer_id, conversation_id, edited_at FROM messages WHERE channel_id = ? AND external_id = ?",
            (channel_id, record.external_id),
        ).fetchone()
        if existing is not None:
            result.receipts.append((record.external_id, existing[0], existing[4], existing[3], True))
            if record.edited_at is not None and record.body != existing[1] and record.edited_at > (existing[5] or 0):
                _apply_edit(conn, existing, record, now)
                result.edited += 1
                result.conversations.add(existing[4])
            else:
                result.duplicates += 1
            continue

        key = (record.identity_kind, record.address)
        found = identities.get(key)
        if found is None:
            found = _customer_for(conn, record, now)
            identities[key] = found
        customer_id, identity_id = found
        display = "unverified: typed into a chat" if "unverified_identities" in record.flags else ""
        for kind, address in record.extra_identities:
            _attach_identity(conn, customer_id, kind, address, display, now, actor)
        for kind, address in record.mentions:
            customers.suggest_for_identity(conn, customer_id, kind, address, "wrote", now, actor)
        if record.origin:
            execute("UPDATE customers SET origin = ? WHERE id = ? AND origin IS NULL", (record.origin, customer_id))

        conversation_id = _conversation_for(conn, record, customer_id, open_conversations, now)
        is_start = "start" in record.flags
        direction = Direction.EVENT if is_start else Direction.IN
        body = record.body
        if is_start:
            body = f"started the chat from link: {record.origin}" if record.origin else "started the chat"
        message_id = execute(
            "INSERT INTO messages (conversation_id, customer_id, channel_id, identity_id, direction, author, body,"
            " subject, external_id, thread_key, reply_to_keys, reply_to_external_id, created_at, edited_at, state,"
            " flags, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, ?)",
            (
                conversation_id, customer_id, channel_id, identity_id, direction, record.sender_name, body,
                record.subject, record.external_id, record.thread_key,
                " ".join(record.reply_to_keys) or None, record.reply_to_external_id,
                record.sent_at, record.edited_at, " ".join(sorted(record.flags)), record.meta,
            ),
        ).lastrowid
        execute(
            "INSERT INTO messages_fts (rowid, body, customer_id) VALUES (?, ?, ?)",
            (message_id, fts_text(record.subject, body), customer_id),
        )
        for att in record.attachments:
            execute(
                "INSERT INTO attachments (message_id, filename, mime_type, size, sha256, path, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (message_id, att.filename, att.mime_type, att.size, att.sha256, att.path, att.note),
            )
        waiting = not is_start and not (record.flags & _NOT_WAITING)
        preview = preview_line(body or (record.attachments[0].filename if record.attachments else ""))
        touched = touches.get(conversation_id)
        if touched is None:
            touches[conversation_id] = touched = _Touch()
        touched.add(record.sent_at, message_id, preview, waiting, channel_kind, channel_id)
        execute(
            "INSERT INTO events (at, kind, actor, conversation_id, customer_id, message_id) VALUES (?, 'message.received', ?, ?, ?, ?)",
            (now, actor, conversation_id, customer_id, message_id),
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

    __slots__ = ("last_at", "last_id", "preview", "waiting_at", "count", "kinds", "channel_id")

    def __init__(self) -> None:
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
        self.last_id, self.preview = message_id, preview
        if waiting and (self.waiting_at is None or at < self.waiting_at):
            self.waiting_at = at
        if kind not in self.kinds:
            self.kinds.append(kind)

    def apply(self, conn: sqlite3.Connection, conversation_id: int) -> None:
        waiting = self.waiting_at is not None
        kinds = conn.execute("SELECT channel_kinds FROM conversations WHERE id = ?", (conversation_id,)).fetchone()[0].split()
        kinds += [k for k in self.kinds if k not in kinds]
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
                "at": self.last_at, "preview": self.preview, "mid": self.last_id, "waiting": waiting,
                "waiting_at": self.waiting_at, "count": self.count, "kinds": " ".join(kinds),
                "channel": self.channel_id, "id": conversation_id,
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


def _customer_for(conn: sqlite3.Connection, record: InboundRecord, now: float) -> tuple[int, int]:
    """(customer id, identity id) for the sender, creating both on first contact and
    following a channel's rename unless an operator named the customer."""
    row = conn.execute(
        "SELECT i.id, i.customer_id, c.display_name, c.name_source FROM identities i"
        " JOIN customers c ON c.id = i.customer_id WHERE i.kind = ? AND i.address = ?",
        (record.identity_kind, record.address),
    ).fetchone()
    if row is not None:
        identity_id, customer_id, name, source = row
        if record.sender_name and source == "channel" and record.sender_name != name:
            conn.execute("UPDATE customers SET display_name = ? WHERE id = ?", (record.sender_name, customer_id))
            refresh_customer_index(conn, customer_id)
        return customer_id, identity_id
    if record.identity_kind in customers.PHONE_KINDS:
        # A number we know by another phone-like channel (they called, now they WhatsApp) is
        # the same identity: the same person, not a guess.
        owner = customers.identity_owner(conn, record.identity_kind, record.address)
        if owner is not None:
            identity_id = conn.execute(
                "INSERT INTO identities (customer_id, kind, address, display, created_at) VALUES (?, ?, ?, ?, ?)",
                (owner, record.identity_kind, record.address, record.identity_display, now),
            ).lastrowid
            refresh_customer_index(conn, owner)
            return owner, identity_id
    name = record.sender_name or record.identity_display or record.address
    customer_id = conn.execute(
        "INSERT INTO customers (display_name, origin, created_at) VALUES (?, ?, ?)", (name, record.origin, now)
    ).lastrowid
    identity_id = conn.execute(
        "INSERT INTO identities (customer_id, kind, address, display, created_at) VALUES (?, ?, ?, ?, ?)",
        (customer_id, record.identity_kind, record.address, record.identity_display, now),
    ).lastrowid
    conn.execute(
        "INSERT INTO customers_fts (rowid, name, identities) VALUES (?, ?, ?)",
        (customer_id, name, record.address),
    )
    conn.execute(
        "INSERT INTO events (at, kind, customer_id, payload) VALUES (?, 'customer.created', ?, ?)",
        (now, customer_id, json.dumps({"kind": record.identity_kind})),
    )
    if record.sender_name:
        customers.suggest_for_new_customer(conn, customer_id, record.sender_name, now)
    phones.suggest_for_shared_number(conn, customer_id, record.identity_kind, record.address, now)
    return customer_id, identity_id


def _attach_identity(conn: sqlite3.Connection, customer_id: int, kind: str, address: str, display: str, now: float, actor: str) -> None:
    """Give a customer one more identity; if it already belongs to someone else, leave it
    there and record the conflict (merging strangers silently is worse than a duplicate)."""
    row = conn.execute("SELECT customer_id FROM identities WHERE kind = ? AND address = ?", (kind, address)).fetchone()
    if row is None and kind in customers.PHONE_KINDS:
        owner = customers.identity_owner(conn, kind, address)
        row = (owner,) if owner is not None else None
    if row is not None:
        if row[0] != customer_id:
            conn.execute(
                "INSERT INTO events (at, kind, actor, customer_id, payload) VALUES (?, 'identity.conflict', ?, ?, ?)",
                (now, actor, customer_id, json.dumps({"kind": kind, "address": address, "other_customer_id": row[0]})),
            )
            customers.suggest_for_identity(conn, customer_id, kind, address, "gave", now, actor)
        return
    conn.execute(
        "INSERT INTO identities (customer_id, kind, address, display, created_at) VALUES (?, ?, ?, ?, ?)",
        (customer_id, kind, address, display, now),
    )
    refresh_customer_index(conn, customer_id)
    conn.execute(
        "INSERT INTO events (at, kind, actor, customer_id, payload) VALUES (?, 'identity.added', ?, ?, ?)",
        (now, actor, customer_id, json.dumps({"kind": kind, "address": address})),
    )
    phones.suggest_for_shared_number(conn, customer_id, kind, address, now, actor)


def add_customer(
    conn: sqlite3.Connection, name: str, identities: list[tuple[str, str, str]], *, actor: str = "", now: float | None = None
) -> int:
    """Create a customer known from elsewhere (a CRM, the demo) with normalised identities
    given as (kind, address, display); an identity that already exists stays where it is."""
    now = now or time.time()
    customer_id = conn.execute("INSERT INTO customers (display_name, created_at) VALUES (?, ?)", (name, now)).lastrowid
    conn.execute("INSERT INTO customers_fts (rowid, name, identities) VALUES (?, ?, '')", (customer_id, name))
    conn.execute(
        "INSERT INTO events (at, kind, actor, customer_id) VALUES (?, 'customer.created', ?, ?)", (now, actor, customer_id)
    )
    for kind, address, display in identities:
        _attach_identity(conn, customer_id, kind, address, display, now, actor)
    refresh_customer_index(conn, customer_id)
    return customer_id


def refresh_customer_index(conn: sqlite3.Connection, customer_id: int) -> None:
    """Rewrite a customer's row in the customer search index from their name and identities."""
    name = conn.execute("SELECT display_name FROM customers WHERE id = ?", (customer_id,)).fetchone()[0]
    addresses = " ".join(r[0] for r in conn.execute("SELECT address FROM identities WHERE customer_id = ?", (customer_id,)))
    conn.execute("DELETE FROM customers_fts WHERE rowid = ?", (customer_id,))
    conn.execute("INSERT INTO customers_fts (rowid, name, identities) VALUES (?, ?, ?)", (customer_id, name, addresses))


def _conversation_for(
    conn: sqlite3.Connection, record: InboundRecord, customer_id: int, cache: dict[int, int], now: float
) -> int:
    """The conversation a message belongs to: the e-mail thread it answers (reopened if it was
    resolved), else the customer's open conversation on any channel, else a new one."""
    if record.reply_to_keys:
        marks = ", ".join("?" * len(record.reply_to_keys))
        row = conn.execute(
            f"SELECT m.conversation_id, c.status, c.customer_id FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            f" WHERE m.thread_key IN ({marks}) ORDER BY m.id DESC LIMIT 1",
            record.reply_to_keys,
        ).fetchone()
        open_one = None
        if row is not None and row[1] == "resolved":
            found = conn.execute(
                "SELECT id FROM conversations WHERE customer_id = ? AND status != 'resolved' ORDER BY id DESC LIMIT 1",
                (row[2],),
            ).fetchone()
            open_one = found[0] if found else None
        if open_one is not None:
            # The customer has opened another conversation since: continue there rather than
            # keep two open at once.
            return open_one
        if row is not None and row[1] == "resolved" and record.flags & _NOT_WAITING:
            # An auto-reply or bounce to our last mail is recorded, but reopens nothing.
            return row[0]
        if row is not None:
            conversation_id = row[0]
            reopened = conn.execute(
                "UPDATE conversations SET status = 'open', resolved_at = NULL, waiting_since = NULL"
                " WHERE id = ? AND status = 'resolved'",
                (conversation_id,),
            ).rowcount
            if reopened:
                conn.execute(
                    "INSERT INTO events (at, kind, conversation_id, customer_id, payload) VALUES (?, 'conversation.reopened', ?, ?, ?)",
                    (now, conversation_id, customer_id, json.dumps({"reason": "reply in an e-mail thread"})),
                )
            return conversation_id
    conversation_id = cache.get(customer_id)
    if conversation_id is not None:
        return conversation_id
    row = conn.execute(
        "SELECT id FROM conversations WHERE customer_id = ? AND status != 'resolved' ORDER BY id DESC LIMIT 1",
        (customer_id,),
    ).fetchone()
    if row is not None:
        conversation_id = row[0]
    else:
        subject = record.subject or preview_line(record.body, 80)
        conversation_id = conn.execute(
            "INSERT INTO conversations (customer_id, status, subject, opened_at, last_activity_at) VALUES (?, ?, ?, ?, ?)",
            (customer_id, ConversationStatus.OPEN, subject, record.sent_at, record.sent_at),
        ).lastrowid
        conn.execute(
            "INSERT INTO events (at, kind, conversation_id, customer_id) VALUES (?, 'conversation.opened', ?, ?)",
            (now, conversation_id, customer_id),
        )
    cache[customer_id] = conversation_id
    return conversation_id


def _apply_edit(conn: sqlite3.Connection, existing: sqlite3.Row, record: InboundRecord, now: float) -> None:
    message_id, old_body, subject, customer_id, conversation_id, _ = existing
    # External-content FTS: the old row is removed by giving back exactly what was indexed.
    conn.execute(
        "INSERT INTO messages_fts (messages_fts, rowid, body, customer_id) VALUES ('delete', ?, ?, ?)",
        (message_id, fts_text(subject, old_body), customer_id),
    )
    conn.execute("UPDATE messages SET body = ?, edited_at = ? WHERE id = ?", (record.body, record.edited_at, message_id))
    conn.execute(
        "INSERT INTO messages_fts (rowid, body, customer_id) VALUES (?, ?, ?)",
        (message_id, fts_text(subject, record.body), customer_id),
    )
    conn.execute(
        "INSERT INTO events (at, kind, conversation_id, customer_id, message_id, payload) VALUES (?, 'message.edited', ?, ?, ?, ?)",
        (now, conversation_id, customer_id, message_id, json.dumps({"previous": old_body})),
    )
