"""JSON request bodies from outside (the open API, call events, the web chat), read so that no
body can crash a handler or jam a channel.

`json.loads` alone takes what RFC 8259 does not call JSON and makes values that fail later, far
from the request, where they are retried forever:

* `NaN`, `Infinity`, `-Infinity` are not JSON numbers (RFC 8259 section 6); `1e999` becomes
  infinity and an integer of thousands of digits cannot be stored: refused, with the reason.
  Integers are limited to 64 bits, what SQLite and most peers hold (I-JSON, RFC 7493 2.2).
* A lone UTF-16 surrogate (`"\\ud83d"`, half an emoji; RFC 8259 section 8.2) cannot be encoded
  as UTF-8, so it can be neither stored nor logged: it is replaced by U+FFFD, and the rest of
  the text is kept.
* Nesting deeper than `MAX_DEPTH` is refused (deep values fail when they are written out again
  at a deeper point of the stack).

    value = read_json(request.body)      # JsonRefused(reason) when it cannot be taken
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: Levels of arrays and objects taken; every payload a channel documents is far shallower.
MAX_DEPTH = 64
_INT_LIMIT = 2**63
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonRefused(ValueError):
    """The body cannot be taken as JSON; the message says why in words."""


def read_json(body: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of `body` (UTF-8 bytes or text), with lone surrogates replaced by U+FFFD.

    Raises JsonRefused when the body is not UTF-8, not JSON, holds a number JSON has no place
    for (NaN, Infinity, beyond 64-bit integers or double range), or is nested deeper than
    `max_depth`."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonRefused("the body is not UTF-8 text") from None
    try:
        value = json.loads(body, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except JsonRefused:
        raise
    except RecursionError:
        raise JsonRefused(f"the JSON is nested too deeply (at most {max_depth} levels are read)") from None
    except ValueError as exc:
        raise JsonRefused(f"the body is not valid JSON: {exc}") from None
    return _repaired(value, max_depth, 0)


def repair_text(text: str) -> str:
    """`text` with every lone UTF-16 surrogate replaced by U+FFFD (so it can be encoded)."""
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


def _repaired(value: Any, max_depth: int, depth: int) -> Any:
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, (list, dict)):
        if depth >= max_depth:
            raise JsonRefused(f"the JSON is nested too deeply (at most {max_depth} levels are read)")
        if isinstance(value, list):
            return [_repaired(item, max_depth, depth + 1) for item in value]
        return {repair_text(key): _repaired(item, max_depth, depth + 1) for key, item in value.items()}
    return value


def _no_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON number (RFC 8259 has no NaN or Infinity)")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise JsonRefused(f"the number {text[:40]} is too large")
    return number


def _bounded_int(text: str) -> int:
    if len(text) > 20:
        raise JsonRefused(f"the number {text[:40]}… is too large (integers are at most 64 bits)")
    number = int(text)
    if not -_INT_LIMIT <= number < _INT_LIMIT:
        raise JsonRefused(f"the number {text} is too large (integers are at most 64 bits)")
    return number
