"""What ingest hands the store: inbound records, their files, and what a batch did.

Plain data shared by `history` (the ingest loop), `calls` (call events), `identities` and
`conversations`; it imports nothing of the store, so every store module may use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Flags that mean "no person is waiting for an answer" (auto-replies, bounces).
NOT_WAITING = frozenset({"auto_reply", "bounce"})


@dataclass(slots=True)
class AttachmentRecord:
    """A file of a message, already written under the data directory (or not, with `note`).

    `size` in bytes, `sha256` hex, `path` relative to `<data_dir>/attachments` (None when the
    channel gave no bytes; `note` says why)."""

    filename: str
    mime_type: str
    size: int | None
    sha256: str | None
    path: str | None
    note: str = ""


@dataclass(slots=True)
class InboundRecord:
    """One inbound message, sanitised and with its identity normalised, ready to store.

    Times are epoch seconds. `edited_at` marks an edit of a message stored before under the same
    `(channel, external_id)`; `edit_seq` orders edits made within one `edited_at` second (the
    channel's own sequence, e.g. Telegram's update id; None when it has none)."""

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
    edit_seq: int | None = None


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
    # Conversations of blocked senders the batch wrote to (store/spam.py): no pipeline for them.
    spam: set[int] = field(default_factory=set)
