"""Defensive readers of channel payloads, shared by the Telegram, WhatsApp and VK connectors.

A channel's JSON is input from outside: a field may be missing, of another type, a boolean
where a number belongs, a date no clock can hold, or text no database can store (a lone UTF-16
surrogate such as `"\\ud83d"`, which JSON allows and UTF-8 does not). Every reader here takes
`Any` and answers a value of one type or None; nothing raises.

The second half keeps one bad message from holding up the others (issue #14, "Inputs that
must never jam a channel"): `repaired` replaces what cannot be stored, `unreadable` keeps a
message nobody can read as its raw bytes and a reason, and `deliver_isolated` hands a batch to
the core so that a message the core refuses as data is kept as unreadable while the rest of the
batch and the cursor commit.
"""

from __future__ import annotations

import dataclasses
import json
import math
import mimetypes
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.base import InboundAttachment, InboundMessage, InboundSink

#: The flag of a message kept as raw bytes because it could not be read or stored.
UNREADABLE = "unreadable"
#: The flag of a reaction (an emoji put on a message, or taken off): `reply_to_external_id` names
#: the message it is on, `meta["emoji"]` the emoji ("" when removed). The store records it on that
#: message; it opens no conversation and makes nobody wait.
REACTION = "reaction"

_SURROGATE = re.compile("[\ud800-\udfff]")
# Raw bytes kept for an unreadable message: enough to read it by hand, never a flood.
_RAW_LIMIT = 256 * 1024


# -- readers -------------------------------------------------------------------------------


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty dict."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """`value` when it is a JSON array, else an empty list."""
    return value if isinstance(value, list) else []


def as_int(value: Any) -> int | None:
    """A whole number from an int, an integral float or a string of digits; None otherwise.

    Booleans are not numbers here (JSON `true` is not the id 1)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit() and len(text) <= 40:
            return int(text)
    return None


def as_float(value: Any) -> float | None:
    """A finite number from a number or a numeric string; None for booleans, NaN, infinity."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def as_text(value: Any) -> str:
    """`value` when it is a string, else ""."""
    return value if isinstance(value, str) else ""


def epoch_time(value: Any) -> datetime | None:
    """A UTC datetime from epoch seconds (number or numeric string); None when absent, zero or
    a date no clock can hold."""
    seconds = as_float(value)
    if not seconds:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def coordinate(value: Any) -> str:
    """A latitude or longitude for people: six decimals at most, "?" when unreadable."""
    number = as_float(value)
    return f"{number:.6f}".rstrip("0").rstrip(".") if number is not None else "?"


def place(latitude: Any, longitude: Any) -> str:
    """ "59.93428, 30.335099" for a pair of coordinates."""
    return f"{coordinate(latitude)}, {coordinate(longitude)}"


def file_suffix(mime_type: str) -> str:
    """The usual file name suffix of a MIME type ("" when unknown); common chat types first."""
    common = {"audio/ogg": ".ogg", "image/jpeg": ".jpg", "image/webp": ".webp", "video/mp4": ".mp4", "audio/mpeg": ".mp3"}
    return common.get(mime_type) or mimetypes.guess_extension(mime_type) or ""


def describe(exc: BaseException) -> str:
    """An exception in words for a log line or a status: its message, else its type."""
    return str(exc) or type(exc).__name__


# -- text that cannot be stored ------------------------------------------------------------


def repair_text(text: str) -> str:
    """`text` with lone UTF-16 surrogates (which UTF-8 cannot encode) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def _repair_value(value: Any) -> Any:
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, Mapping):
        return {repair_text(str(key)): _repair_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_repair_value(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _needs_repair(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, Mapping):
        return any(_needs_repair(str(key)) or _needs_repair(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(_needs_repair(item) for item in value)
    return isinstance(value, float) and not math.isfinite(value)


def repaired(message: InboundMessage) -> InboundMessage:
    """`message` with every text field (body, names, ids, file names, meta) storable: lone
    surrogates become U+FFFD. The same object when nothing needed repair."""
    changes: dict[str, Any] = {}
    for name in ("external_id", "address", "body", "sender_name", "subject", "thread_key", "reply_to_external_id", "origin"):
        value = getattr(message, name)
        if isinstance(value, str) and _SURROGATE.search(value):
            changes[name] = repair_text(value)
    if any(_SURROGATE.search(key) for key in message.reply_to_keys):
        changes["reply_to_keys"] = tuple(repair_text(key) for key in message.reply_to_keys)
    if any(_SURROGATE.search(a.filename + a.mime_type + a.note) for a in message.attachments):
        changes["attachments"] = tuple(
            dataclasses.replace(a, filename=repair_text(a.filename), mime_type=repair_text(a.mime_type), note=repair_text(a.note))
            for a in message.attachments
        )
    if any(_SURROGATE.search(str(address)) for _, address in message.extra_identities):
        changes["extra_identities"] = tuple((kind, repair_text(str(address))) for kind, address in message.extra_identities)
    if message.meta and _needs_repair(message.meta):
        changes["meta"] = _repair_value(message.meta)
    if changes:
        changes["flags"] = message.flags | {"repaired"}
        return dataclasses.replace(message, **changes)
    return message


def raw_bytes(raw: Any) -> bytes:
    """What a channel sent, as bytes to keep: JSON for a parsed value (surrogates escaped, so
    nothing is lost), the bytes themselves otherwise; cut at 256 KB."""
    if isinstance(raw, bytes):
        data = raw
    else:
        try:
            data = json.dumps(raw, ensure_ascii=True, default=str).encode("ascii")
        except (TypeError, ValueError, RecursionError):
            data = repr(raw).encode("utf-8", "backslashreplace")
    return data[:_RAW_LIMIT]


def unreadable(template: InboundMessage, raw: Any, reason: str) -> InboundMessage:
    """A stand-in for a message that cannot be read or stored: its id, sender and time (from
    `template`, repaired), the body "(unreadable message: reason)" and the raw payload as a
    `.json` attachment, so an operator sees that someone wrote and nothing is lost."""
    safe = repaired(dataclasses.replace(template, attachments=(), meta={}, extra_identities=(), reply_to_keys=()))
    data = raw_bytes(raw)
    note = "" if len(data) < _RAW_LIMIT else "cut at 256 KB"
    return dataclasses.replace(
        safe,
        body=f"(unreadable message: {repair_text(reason)})",
        attachments=(InboundAttachment("unreadable-message.json", "application/json", data, len(data), note),),
        flags=frozenset({UNREADABLE}),
        edited_at=None,
        meta={"unreadable": repair_text(reason)},
    )


def _fields(message: InboundMessage) -> dict[str, Any]:
    """A message's fields as a JSON-able value (files by name and size, not their bytes)."""
    fields = {f.name: getattr(message, f.name) for f in dataclasses.fields(message) if f.name != "attachments"}
    fields["attachments"] = [{"filename": a.filename, "size": a.size} for a in message.attachments]
    return fields


def is_data_error(exc: BaseException) -> bool:
    """Whether a failure to store a message is about the message itself (it will fail again
    whenever it is tried: text no encoder takes, a number no column holds) rather than a fault
    that passes (a locked or full disk, a network)."""
    return isinstance(exc, (ValueError, TypeError, OverflowError, RecursionError))


async def deliver_isolated(
    sink: InboundSink,
    messages: Sequence[InboundMessage],
    cursor: str | None,
    raw_of: Callable[[InboundMessage], Any] | None = None,
    log: Any = None,
) -> None:
    """`sink.deliver(messages, cursor)`; when the core refuses the batch because of what one
    message holds (`is_data_error`), each message is delivered alone, the refused ones as
    `unreadable` (with `raw_of(message)` as their raw bytes), and then the cursor.

    Any other failure propagates unchanged: nothing is committed and the channel retries."""
    batch = [repaired(message) for message in messages]
    try:
        await sink.deliver(batch, cursor)
        return
    except Exception as exc:
        if not is_data_error(exc) or not batch:
            raise
        if log is not None:
            log.warning("a batch of %d messages was refused as data (%s); storing them one by one", len(batch), describe(exc))
    for message in batch:
        try:
            await sink.deliver([message], None)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            raw = raw_of(message) if raw_of is not None else _fields(message)
            if log is not None:
                log.warning(
                    "message %s cannot be stored (%s); kept as unreadable", repair_text(message.external_id), describe(exc)
                )
            await sink.deliver([unreadable(message, raw, f"it could not be stored: {describe(exc)}")], None)
    if cursor is not None:
        await sink.deliver([], cursor)
