"""Domain types shared by every layer: the store, the core, the connectors and the window.

Nothing here touches SQLite, asyncio or Textual, so any layer may import it.
"""

from __future__ import annotations

import re
from enum import StrEnum


class IdentityKind(StrEnum):
    """How a customer can be reached; `(kind, address)` names one identity."""

    TELEGRAM = "telegram"
    EMAIL = "email"
    PHONE = "phone"
    VK = "vk"
    WHATSAPP = "whatsapp"
    WEB = "web"
    # A customer's id in another system, `<integration>:<their id>` (the open API's CRM id).
    EXTERNAL = "external"
    # The customer's id in the `[crm]` the company uses (issue #22): carried by the CSV import,
    # the API channel and webhooks; the card's CRM lookup goes by it first. Never messaged.
    CRM = "crm"


class Direction(StrEnum):
    """What a timeline entry is: from the customer, to the customer, an operator's note, or
    something that happened (assigned, resolved, a call...)."""

    IN = "in"
    OUT = "out"
    NOTE = "note"
    EVENT = "event"


class ConversationStatus(StrEnum):
    """Where a piece of work with a customer stands."""

    OPEN = "open"
    PENDING = "pending"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"
    #: The customer (or the identity that wrote) is blocked: kept, never waiting, routed or
    #: answered by the bot, listed only in the Spam view (store/spam.py); unblocking restores it.
    SPAM = "spam"


class DeliveryState(StrEnum):
    """The life of an outbound message: a row first, then the core sends it."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class Health(StrEnum):
    """A channel's health as the operator sees it in the status bar."""

    UNKNOWN = "unknown"
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


class InboxView(StrEnum):
    """The inbox lists: active work is open or pending conversations."""

    MINE = "mine"
    UNASSIGNED = "unassigned"
    ALL = "all"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"
    AT_RISK = "at_risk"  # conversations whose SLA clock runs, nearest due first
    SPAM = "spam"


class InboxOrder(StrEnum):
    """How an inbox view is sorted (remembered per operator, store/preferences.py).

    `priority` (the default): urgent, then high, then the rest, newest activity first within
    each; `activity`: newest activity first; `waiting`: the customer who has waited longest
    first, then those who wait for nobody, newest activity first."""

    PRIORITY = "priority"
    ACTIVITY = "activity"
    WAITING = "waiting"


class OperatorRole(StrEnum):
    """What an operator may do (omniconsole/store/access.py holds the table per action)."""

    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"


# C0 controls except TAB and LF, DEL, and C1 controls. ESC (0x1b) is in C0, so ANSI CSI and
# OSC sequences lose their introducer and become inert text; BEL/ST terminators go too.
# Bidi embedding, override and isolate controls go too: terminals do not apply them, and where
# something does they reorder text to spoof it ("cod.exe" shown as "exe.doc"). The plain
# direction marks (U+200E, U+200F) are harmless and stay.
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# A whole escape sequence is removed rather than leaving its printable tail behind, so an
# OSC 52 clipboard write or a title change does not litter the timeline with its payload.
_ESCAPE_SEQUENCES = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC ... BEL | ST
    r"|\x1b[P^_X][^\x1b]*(?:\x1b\\)?"  # DCS, PM, APC, SOS ... ST
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|\x9d[^\x07\x9c]*(?:\x07|\x9c)?"  # 8-bit OSC
    r"|\x1b[ -/]*[0-~]"  # two-character escapes (ESC c, ESC 7, charset selection)
)


def sanitize_text(text: str | None) -> str:
    """Make untrusted text safe to keep and to draw: drop terminal escape sequences, every
    control character except tab and newline, and bidi overrides; CR LF and lone CR become LF."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x1b" in text or "\x9b" in text or "\x9d" in text:
        text = _ESCAPE_SEQUENCES.sub("", text)
    return _CONTROL_CHARS.sub("", text)


def preview_line(text: str, width: int = 120) -> str:
    """One line of a message body for lists: whitespace folded, cut at `width`."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
