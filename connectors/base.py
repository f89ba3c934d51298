"""The contract between the core and a channel connector.

A connector talks one channel's protocol and nothing else: it knows no SQLite and no Textual.
The core constructs it with a `ChannelContext`, runs `run(sink)` as a supervised task and
calls `send(message)` from the outbox.

Errors follow one taxonomy (borrowed from python-telegram-bot's network loop):
`TransientError` means "try again later" (the core backs off and shows the channel as
degraded, or retries the outbound message), `PermanentError` means "this will not work until a
person changes something" (bad token, blocked by the customer): the reason is shown in words.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from omniconsole.models import DeliveryState, IdentityKind


def N_(message: str) -> str:
    """Marks an operator's or admin's English words for the catalog (`make i18n` extracts
    connectors/ too); connectors import nothing of omniconsole, so the words are translated
    where they are shown (`omniconsole doctor`, omniconsole/cli/language.py `words_text`)."""
    return message


class Words(str):
    """A line for a person, as English text (what `str` is) that also keeps its template and
    values, so the reader's language can be put in later (issue #24): `Words(N_("bot @{name}"),
    name="shop_bot")` equals "bot @shop_bot". `template` (str) is the N_-marked English with
    `{name}` fields, `params` (dict) their values. Raises KeyError when a field has no value."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, /, **params: Any) -> Words:
        self = super().__new__(cls, template.format(**params) if params else template)
        self.template = template
        self.params = params
        return self


class ConnectorError(Exception):
    """A channel failed; `reason` is a sentence an operator can read. Given as a template and
    values (`PermanentError(N_("bad token for {name}"), name=...)`), `reason` is the English line
    and `words` keeps both, for the reader's language (see `Words`)."""

    def __init__(self, reason: str, /, **params: Any):
        words = reason if isinstance(reason, Words) and not params else Words(reason, **params)
        super().__init__(str(words))
        self.reason = str(words)
        self.words = words


class TransientError(ConnectorError):
    """A failure that may pass by itself (network, 5xx, rate limit): retry after a while.

    `retry_after` (seconds) is the peer's own hint, such as Telegram's 429 `retry_after`."""

    def __init__(self, reason: str, /, retry_after: float | None = None, **params: Any):
        super().__init__(reason, **params)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """A failure that repeats until a person acts (bad credentials, the customer blocked us)."""


@dataclass(frozen=True, slots=True)
class InboundAttachment:
    """A file that came with an inbound message.

    `data` holds the bytes when the connector downloaded them; when it did not (too large,
    unavailable), `data` is None and `note` says why in words."""

    filename: str
    mime_type: str = "application/octet-stream"
    data: bytes | None = None
    size: int | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message from a customer, as the channel delivered it.

    `external_id` is unique within the channel: the core stores `(channel, external_id)` once.
    `address` is the sender as the channel names them (the core normalises it); `edited_at`
    marks a new version of a message already delivered under the same `external_id`."""

    external_id: str
    identity_kind: IdentityKind
    address: str
    body: str
    sent_at: datetime
    sender_name: str = ""
    subject: str = ""
    # E-mail threading: our key (Message-ID) and the keys this message answers.
    thread_key: str | None = None
    reply_to_keys: tuple[str, ...] = ()
    # The channel's id of the message this one replies to (Telegram reply_to_message).
    reply_to_external_id: str | None = None
    attachments: tuple[InboundAttachment, ...] = ()
    # More identities of the same person the message revealed (a Telegram shared contact).
    extra_identities: tuple[tuple[IdentityKind, str], ...] = ()
    edited_at: datetime | None = None
    # Where the customer came from (a /start payload, a web page), kept for journey analytics.
    origin: str | None = None
    # Flags such as "auto_reply" that change how the core treats the message. "reaction": an
    # emoji (meta "emoji", "" when taken off) on the message `reply_to_external_id` names, kept
    # on that message and never a customer message; "unreadable": kept as raw bytes with a
    # reason (connectors/payload.py).
    flags: frozenset[str] = frozenset()
    # Connector-specific data needed to answer (a chat id, a peer id); stored as JSON.
    meta: Mapping[str, Any] = field(default_factory=dict)
    # The order of edits made within one `edited_at` second: a number from the channel that
    # only grows (Telegram's update_id); None when the channel has none.
    edit_seq: int | None = None


@dataclass(frozen=True)
class Button:
    """A button offered under an outbound message (the bot's answers, "Did this help?", a
    survey). A press comes back as an `InboundMessage` whose `flags` hold "button", whose
    `meta["button"]` is the `id` and whose body is the `title`. A channel without buttons shows
    them as a numbered list in the text; the customer's number maps back the same way."""

    id: str  # opaque payload returned when pressed, <= 64 bytes (Telegram callback_data's limit)
    title: str  # <= 20 characters (WhatsApp reply buttons' limit)

    def __post_init__(self) -> None:
        if not self.id or len(self.id.encode("utf-8")) > 64:
            raise ValueError(f"a button id must be 1 to 64 bytes, not {len(self.id.encode('utf-8'))}: {self.id[:80]!r}")
        if not self.title.strip() or len(self.title) > 20:
            raise ValueError(f"a button title must be 1 to 20 characters: {self.title[:40]!r}")


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to a customer, taken from the outbox.

    `id` is our message id: connectors that can make a send idempotent derive their key from
    it (VK `random_id`, the e-mail Message-ID), so a retry after a crash cannot post twice."""

    id: int
    conversation_id: int
    identity_kind: IdentityKind
    address: str
    body: str
    subject: str = ""
    author: str = ""
    thread_key: str | None = None
    reply_to_keys: tuple[str, ...] = ()
    reply_to_external_id: str | None = None
    attachments: tuple[Path, ...] = ()
    # The `meta` of the customer's latest inbound message on this channel (chat id etc.).
    meta: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 1
    # Buttons to show under the message (see `Button`); a connector that cannot draw them
    # sends `numbered_buttons(body, buttons)` instead.
    buttons: tuple[Button, ...] = ()


def numbered_buttons(body: str, buttons: Sequence[Button]) -> str:
    """The text of a message whose buttons the channel cannot draw: the body, then one
    numbered line per button ("1 — Yes"). `button_for_number` maps the customer's reply back."""
    if not buttons:
        return body
    lines = [f"{number} — {button.title}" for number, button in enumerate(buttons, start=1)]
    return (body.rstrip() + "\n\n" if body.strip() else "") + "\n".join(lines)


def button_for_number(text: str, buttons: Sequence[Button]) -> Button | None:
    """The button a customer picked by answering a numbered list with its number ("2", " 2. "),
    or None when the text is not one of the numbers."""
    stripped = text.strip().rstrip(".)").strip()
    if stripped.isdigit() and 1 <= int(stripped) <= len(buttons):
        return buttons[int(stripped) - 1]
    return None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the channel said about a sent message: its id there and how far it got."""

    external_id: str
    state: DeliveryState = DeliveryState.SENT
    thread_key: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    """A later word from the channel about a message we sent (delivered, read, failed)."""

    external_id: str
    state: DeliveryState
    error: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """Where the core keeps one delivered message: our ids for it, for a connector that
    answers its sender with them (the open API). `duplicate` is True when the message was
    stored before (a retried request) and these are the ids from then."""

    external_id: str
    message_id: int
    conversation_id: int
    customer_id: int
    duplicate: bool = False


class InboundSink(Protocol):
    """Where a connector hands what it received; implemented by the core."""

    @property
    def cursor(self) -> str | None:
        """The last cursor committed for this channel, or None on a first run."""

    async def deliver(self, messages: Sequence[InboundMessage], cursor: str | None) -> Sequence[DeliveryReceipt] | None:
        """Store `messages` and `cursor` in one transaction; returns once both are durable.

        A connector advances its position on the channel (acknowledges) only after this
        returns, so a crash at any point replays rather than loses. The core returns a receipt
        per message (most connectors ignore them); a sink may return None."""

    async def delivery_updates(self, updates: Sequence[DeliveryUpdate]) -> None:
        """Record delivery state changes of messages we sent."""

    def connected(self, detail: str = "") -> None:
        """Say the channel is up (connected, authenticated, receiving)."""

    # A core's sink may also offer `async set_customer_attribute(customer_id, key, value)`
    # (value None removes it): a channel that learns something about the person (an SMS
    # opt-out) shows it on the customer's card. Look it up with getattr: not every sink has it.


@dataclass(frozen=True, slots=True)
class WebRequest:
    """One HTTP request the core's listener received for a connector's route.

    Kept free of the web server's own types so a connector can be tested by calling its
    handler directly. `headers` has lower-case names; `query` keeps the first value of each
    parameter; `path` is the full request path; `remote` is the client's address (after the
    listener's trusted proxies)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    remote: str = ""

    def header(self, name: str, default: str = "") -> str:
        """A request header by name, whatever its case."""
        return self.headers.get(name.lower(), default)


@dataclass(frozen=True, slots=True)
class WebResponse:
    """What a connector's route answers."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, text: str) -> WebResponse:
        """A plain-text answer (a reason in words, a challenge echoed back)."""
        return cls(status, text.encode("utf-8"))

    @classmethod
    def json(cls, status: int, value: Any) -> WebResponse:
        """A JSON answer."""
        return cls(status, json.dumps(value, ensure_ascii=False).encode("utf-8"), "application/json")


#: A route's handler: takes the request, returns the answer. An exception becomes a 500.
WebHandler = Callable[[WebRequest], Awaitable[WebResponse]]


@dataclass(frozen=True, slots=True)
class WebRoute:
    """An HTTP endpoint a connector serves through the core's listener (a webhook).

    `path` is relative to the channel's prefix (`/hooks/<channel>`): "" is the prefix itself,
    "/status" a path under it."""

    method: str
    path: str
    handler: WebHandler


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What a connector is given: its channel's name and settings (secrets resolved), where
    to keep files, and a logger."""

    channel_id: int
    name: str
    settings: Mapping[str, Any]
    data_dir: Path
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("connectors"))


class Connector(abc.ABC):
    """One configured channel account (a bot, a mailbox, a community)."""

    #: The `kind` in the config (`telegram`, `email`, ...).
    kind: ClassVar[str]
    #: The identity kind of this channel's customers.
    identity_kind: ClassVar[IdentityKind]
    #: Whether `send` draws `OutboundMessage.buttons` (and reports presses as "button"
    #: messages); when False the core sends them as a numbered list in the text instead.
    draws_buttons: ClassVar[bool] = False
    #: Empty when the channel can write to anyone by their address; else why it can only write
    #: to someone who wrote to it first, in words (a Telegram bot cannot start a chat). The
    #: core refuses a company-started message to such a customer with this reason.
    needs_customer_first: ClassVar[str] = ""

    def __init__(self, context: ChannelContext):
        self.context = context
        self.log = context.logger

    @abc.abstractmethod
    async def run(self, sink: InboundSink) -> None:
        """Receive until cancelled, handing batches and their cursor to `sink.deliver`.

        Raises `TransientError` for faults the core should retry with backoff and
        `PermanentError` for ones that need a person."""

    @abc.abstractmethod
    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one message; raises `TransientError` or `PermanentError` on failure."""

    async def check(self) -> str:
        """Test the channel's credentials and reachability for `omniconsole doctor`.

        Returns a short description ("bot @shop_bot"), best a `Words` so `doctor` can say it
        in the admin's language, or raises a `ConnectorError`."""
        return Words(N_("no check available for this channel"))

    def web_routes(self) -> Sequence[WebRoute]:
        """HTTP routes this channel serves through the core's listener (webhooks); none by
        default. The core mounts them under the channel's prefix while it holds the lease."""
        return ()

    async def operator_typing(self, addresses: set[str]) -> None:
        """Which of this channel's customers (identity addresses) an operator is typing to
        now; the core calls it about every second, only for connectors that override it
        (the web chat shows "operator is typing"). Does nothing by default."""

    async def close(self) -> None:
        """Release network resources; called once when the core stops the channel."""


def raise_if_cancelled() -> None:
    """Raise CancelledError when the current task has been asked to stop.

    Call it at the top of every loop that runs until cancelled. A library awaited inside the
    loop may lose a cancellation (on Python 3.11 `asyncio.wait_for`, which aioimaplib uses,
    returns the result when a cancellation arrives in the turn its awaitable completes); the
    request stays counted on the task (`Task.cancelling()`, Python docs "asyncio.Task"), so the
    next round ends the loop instead of running it forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
