"""The core socket's frames: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.

Values that JSON has no word for travel tagged, so a `Store` row comes back as the same
dataclass: ``{"$dc": "rows.InboxRow", "f": {...}}`` for a dataclass of the allowed modules,
``{"$enum": "models.InboxView", "v": "all"}``, ``{"$map": [[key, value], ...]}`` for every dict
(keys may be ints, enums or tuples), ``{"$tuple": [...]}``, ``{"$set": [...]}``, ``{"$path": "..."}``.
Only classes of `ALLOWED` are ever built from a frame: a peer cannot make the other side import
or construct anything else. A frame above `MAX_FRAME` bytes is refused (FrameError), as is one
that is not such JSON.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import importlib
import json
import struct
from pathlib import Path

from omniconsole.errors import OmniError

#: The largest frame either side accepts (bytes): a customer's export with long histories fits.
MAX_FRAME = 256 * 1024 * 1024
#: The largest request the core accepts from an operator (bytes): a library sync of thousands
#: of articles fits; a peer cannot make the core hold hundreds of megabytes per connection.
MAX_REQUEST = 16 * 1024 * 1024
_HEADER = struct.Struct(">I")

#: Module aliases whose dataclasses and enums may travel.
ALLOWED = {
    "rows": "omniconsole.store.rows",
    "records": "omniconsole.store.records",
    "answers": "omniconsole.store.answers",
    "lease": "omniconsole.store.lease",
    "reactions": "omniconsole.store.reactions",
    "routing": "omniconsole.store.routing",
    "bot": "omniconsole.store.bot",
    "models": "omniconsole.models",
    # reports and the wallboard: facts, spreads, histories and the wallboard's numbers
    "facts": "omniconsole.store.facts",
    "analytics": "omniconsole.store.analytics",
}
_ALIAS = {module: alias for alias, module in ALLOWED.items()}


class FrameError(OmniError):
    """A frame that is too long or not the protocol's JSON."""


def _name(cls: type) -> str:
    alias = _ALIAS.get(cls.__module__)
    if alias is None:
        raise FrameError(f"{cls.__module__}.{cls.__qualname__} cannot travel over the core socket")
    return f"{alias}.{cls.__qualname__}"


def _class(name: str) -> type:
    alias, _, qualname = str(name).partition(".")
    module = ALLOWED.get(alias)
    if module is None or not qualname.isidentifier():
        raise FrameError(f"unknown type {name!r} in a frame")
    cls = getattr(importlib.import_module(module), qualname, None)
    if not isinstance(cls, type) or not (dataclasses.is_dataclass(cls) or issubclass(cls, enum.Enum)):
        raise FrameError(f"unknown type {name!r} in a frame")
    return cls


def encode(value):
    """A value as plain JSON data (tags for what JSON lacks)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, enum.Enum):
        return {"$enum": _name(type(value)), "v": value.value}
    if isinstance(value, str):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "$dc": _name(type(value)),
            "f": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init},
        }
    if isinstance(value, dict):
        return {"$map": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"$set": [encode(v) for v in value]}
    if isinstance(value, Path):
        return {"$path": str(value)}
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    raise FrameError(f"a {type(value).__name__} cannot travel over the core socket")


def decode(data):
    """The inverse of `encode`; FrameError for anything it would not have produced."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$dc" in data:
        cls = _class(data["$dc"])
        if not dataclasses.is_dataclass(cls):
            raise FrameError(f"{data['$dc']} is not a row type")
        try:
            return cls(**{k: decode(v) for k, v in dict(data.get("f") or {}).items()})
        except TypeError as exc:
            raise FrameError(f"a {data['$dc']} with the wrong fields: {exc}") from None
    if "$enum" in data:
        cls = _class(data["$enum"])
        try:
            return cls(data.get("v"))
        except ValueError as exc:
            raise FrameError(str(exc)) from None
    if "$map" in data:
        return {_hashable(decode(k)): decode(v) for k, v in data["$map"]}
    if "$tuple" in data:
        return tuple(decode(v) for v in data["$tuple"])
    if "$set" in data:
        return {_hashable(decode(v)) for v in data["$set"]}
    if "$path" in data:
        return Path(data["$path"])
    if "$bytes" in data:
        return bytes.fromhex(data["$bytes"])
    # Plain objects only carry the protocol's envelopes (`encode` writes every dict as $map).
    return {k: decode(v) for k, v in data.items()}


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def pack(message: dict) -> bytes:
    """One frame: header and JSON body."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise FrameError(f"a frame of {len(body)} bytes is above the limit of {MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader, limit: int = MAX_FRAME) -> dict | None:
    """The next frame's object (at most `limit` bytes), or None at a clean end of the stream."""
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError("the connection ended inside a frame header") from None
    (length,) = _HEADER.unpack(header)
    if length > limit:
        raise FrameError(f"a frame of {length} bytes is above the limit of {limit}")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise FrameError("the connection ended inside a frame") from None
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FrameError(f"a frame that is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise FrameError("a frame that is not a JSON object")
    return message
