"""What the store's queries return: plain, immutable records for the window and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One conversation as the inbox lists it."""

    conversation_id: int
    customer_id: int
    customer_name: str
    status: str
    assignee: str | None
    priority: int
    subject: str
    preview: str
    channel_kinds: tuple[str, ...]
    last_activity_at: float
    waiting_since: float | None
    last_message_id: int | None
    message_count: int
    unread: bool = False
    # The nearest due moment of its running SLA targets (epoch seconds; None: no clock counts
    # down) and its urgency: 0 on time, 1 warned, 2 breached (omniconsole/routing/sla/).
    sla_due_at: float | None = None
    sla_stage: int = 0
    #: The bot is answering (bot_conversations state `bot`): nobody waits for a person yet.
    bot: bool = False


@dataclass(frozen=True, slots=True)
class InboxCursor:
    """Keyset position in an inbox list: the last row of the previous page. `lead` is that
    row's first sort key where the order has one: its priority (order `priority`) or its
    `waiting_since` (order `waiting`; None: it waits for nobody)."""

    last_activity_at: float
    conversation_id: int
    lead: float | None = None

    @classmethod
    def after_row(cls, row: InboxRow, order: str) -> InboxCursor:
        """The position just after `row` in an inbox sorted by `order` (models.InboxOrder)."""
        lead = row.priority if order == "priority" else row.waiting_since if order == "waiting" else None
        return cls(row.last_activity_at, row.conversation_id, lead)


@dataclass(frozen=True, slots=True)
class InboxFilter:
    """What an inbox view is limited to (every part optional, all must hold): a channel kind
    the conversation used, a label, a priority (0 normal, 1 high, 2 urgent), an assignee."""

    channel: str | None = None
    label: str | None = None
    priority: int | None = None
    assignee: str | None = None

    def __bool__(self) -> bool:
        return any(x is not None for x in (self.channel, self.label, self.priority, self.assignee))


@dataclass(frozen=True, slots=True)
class Block:
    """A blocked sender (store/spam.py): the customer, and the identity the block is limited to
    (None: every identity of theirs); who blocked and when (epoch seconds)."""

    id: int
    customer_id: int
    identity_id: int | None
    blocked_by: str
    blocked_at: float


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file of a timeline entry: `size` in bytes, `path` relative to `<data_dir>/attachments` (None: not downloaded, `note` says why)."""

    id: int
    message_id: int
    filename: str
    mime_type: str
    size: int | None
    path: str | None
    note: str


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One message, note or event of a conversation, with the channel it came by."""

    id: int
    conversation_id: int
    customer_id: int
    direction: str
    author: str
    body: str
    subject: str
    channel_id: int | None
    channel_kind: str | None
    channel_name: str | None
    created_at: float
    edited_at: float | None
    state: str | None
    error: str
    attempts: int
    external_id: str | None
    reply_to_external_id: str | None
    flags: tuple[str, ...]
    meta: str | None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation: `status` open/pending/snoozed/resolved, times in epoch seconds, `channel_kinds` in order of first use."""

    id: int
    customer_id: int
    status: str
    assignee: str | None
    team: str | None
    priority: int
    subject: str
    opened_at: float
    last_activity_at: float
    last_inbound_at: float | None
    first_response_at: float | None
    resolved_at: float | None
    snoozed_until: float | None
    waiting_since: float | None
    message_count: int
    channel_kinds: tuple[str, ...]
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Identity:
    """One identity of a customer: `(kind, address)` normalised, `display` as the channel showed it."""

    id: int
    kind: str
    address: str
    display: str


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    """Everything the customer pane shows about one person."""

    id: int
    display_name: str
    name_source: str
    note: str
    attributes: dict
    origin: str | None
    created_at: float
    identities: tuple[Identity, ...]
    conversations: tuple[Conversation, ...]
    labels: tuple[str, ...]
    # Channel kinds in the order the customer first used them (web, telegram, email).
    journey: tuple[str, ...]
    first_seen_at: float | None
    # "Possibly the same person as ..." and the merges into this customer, newest first.
    suggestions: tuple[MergeSuggestion, ...] = ()
    merges: tuple[MergeRecord, ...] = ()
    # "Do not contact": why, in words, and since when (epoch seconds); None: may be written to first.
    do_not_contact: str | None = None
    do_not_contact_at: float | None = None


@dataclass(frozen=True, slots=True)
class MergeSuggestion:
    """Evidence that `customer_id` and `other_id` are one person, waiting for an operator."""

    id: int
    customer_id: int
    other_id: int
    other_name: str
    reason: str
    created_at: float


@dataclass(frozen=True, slots=True)
class MergeRecord:
    """One merge of `merged_id` into `survivor_id`: who, when, why, and whether it was undone."""

    id: int
    survivor_id: int
    merged_id: int
    merged_name: str
    actor: str
    reason: str
    at: float
    undone_by: str | None
    undone_at: float | None


@dataclass(frozen=True, slots=True)
class MessageHit:
    """A message that matched a search, newest first."""

    message_id: int
    conversation_id: int
    customer_id: int
    customer_name: str
    direction: str
    channel_kind: str | None
    created_at: float
    body: str


@dataclass(frozen=True, slots=True)
class CustomerHit:
    """A customer found by search: name and their identity addresses (space separated)."""

    customer_id: int
    display_name: str
    identities: str


@dataclass(frozen=True, slots=True)
class SearchResults:
    """What a search found: messages latest stored first (one page), and customers; `more`
    when messages beyond this page match."""

    messages: tuple[MessageHit, ...] = ()
    customers: tuple[CustomerHit, ...] = ()
    more: bool = False


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the append-only change log."""

    id: int
    at: float
    kind: str
    actor: str
    conversation_id: int | None
    customer_id: int | None
    message_id: int | None
    payload: str | None  # JSON text, or None


@dataclass(frozen=True, slots=True)
class Channel:
    """A configured channel account and its health (up, down, unknown) with the detail in words."""

    id: int
    kind: str
    name: str
    health: str
    health_detail: str
    health_at: float | None


@dataclass(frozen=True, slots=True)
class Operator:
    """An operator: Unix login, display name, role (admin, supervisor, agent)."""

    login: str
    display_name: str
    role: str
    teams: tuple[str, ...] = field(default_factory=tuple)
    capacity: int = 0
    # The operator's phone extension: a call ringing there pops the caller's card.
    extension: str | None = None
    # The language of their window and CLI ('en', 'ru'; None: not chosen), omniconsole/i18n.py.
    language: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An outbound message the core has claimed for sending, with where it goes."""

    message_id: int
    conversation_id: int
    channel_id: int
    identity_kind: str
    address: str
    body: str
    subject: str
    author: str
    attempts: int
    thread_key: str | None
    reply_to_keys: tuple[str, ...]
    reply_to_external_id: str | None
    meta: str | None
    attachment_paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReplyOption:
    """One way to answer a customer: an identity of theirs and the channel to use for it."""

    identity_id: int
    kind: str
    address: str
    channel_id: int
    channel_name: str
    default: bool


@dataclass(frozen=True, slots=True)
class Presence:
    """Another operator viewing (or typing in) a conversation."""

    operator: str
    typing: bool
    updated_at: float
