"""What the token-guarded HTTP channels (the open API, telephony call events) share: the
bearer-token check and reading a JSON body, each refusal a 4xx with a reason in words."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.base import ConnectorError, DeliveryReceipt, InboundMessage, InboundSink, WebRequest, WebResponse
from connectors.json_body import JsonRefused, read_json
from connectors.log_digest import LogDigest
from omniconsole.models import sanitize_text


def refuse_without_token(request: WebRequest, token: str) -> WebResponse | None:
    """None when `Authorization: Bearer <token>` is right, else the 401/403 to answer.

    Compared in constant time; the answer never says how close a wrong token was."""
    header = request.header("Authorization").strip()
    scheme, _, given = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not given.strip():
        return WebResponse(
            401,
            b"refused: send the channel's token as `Authorization: Bearer <token>`\n",
            headers={"WWW-Authenticate": 'Bearer realm="omniconsole"'},
        )
    if not token or not hmac.compare_digest(given.strip().encode(), token.encode()):
        return WebResponse.text(403, "refused: the token is not this channel's token\n")
    return None


def read_json_object(request: WebRequest) -> tuple[dict[str, Any] | None, WebResponse | None]:
    """The body as a JSON object (read by `connectors.json_body`: lone surrogates repaired), or
    the 400/415 to answer."""
    content_type = request.header("Content-Type").split(";")[0].strip().lower()
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        return None, WebResponse.text(415, f"the body must be JSON (Content-Type: application/json), not {content_type[:60]}\n")
    try:
        value = read_json(request.body)
    except JsonRefused as exc:
        return None, WebResponse.text(400, f"{exc}\n")
    if not isinstance(value, dict):
        return None, WebResponse.text(400, "the body must be a JSON object ({...})\n")
    return value, None


class Invalid(ValueError):
    """A request that is well-formed JSON but says something we cannot take (answered 422)."""


async def take_one(
    request: WebRequest,
    token: str,
    sink: InboundSink | None,
    faults: LogDigest,
    what: str,
    convert: Callable[[dict[str, Any]], InboundMessage],
) -> tuple[InboundMessage, Sequence[DeliveryReceipt]] | WebResponse:
    """The way in for a POST that carries one inbound `what` ("a message", "a call event"):
    the token, a running channel (503 until then: the sender retries), a JSON object,
    `convert` (raising Invalid: 422), stored. Returns the message and the core's receipts, or
    the answer to give instead. Nothing is acknowledged before it is stored.

    Refusals are the listener's to log; a failure to store goes to `faults` (once a minute
    per kind, a traceback only for an unexpected one) and is answered 503 with Retry-After."""
    refused = refuse_without_token(request, token)
    if refused is not None:
        return refused
    if sink is None:
        return WebResponse(503, b"the channel is not running; send again later\n", headers={"Retry-After": "5"})
    payload, bad = read_json_object(request)
    if bad is not None:
        return bad
    try:
        message = convert(payload)
    except Invalid as exc:
        return WebResponse.json(422, {"error": str(exc)})
    try:
        receipts = await sink.deliver([message], cursor=None)
    except asyncio.CancelledError:
        raise
    except ConnectorError as exc:
        # A fault that passes (a full disk): not acknowledged, so the sender retries.
        retry = getattr(exc, "retry_after", None) or 5
        faults.note(
            f"not stored: {type(exc).__name__}",
            logging.WARNING,
            "%s was not stored, the sender is told to send it again in %d s: %s",
            what,
            retry,
            exc.reason,
        )
        return WebResponse(503, b"not stored; send again later\n", headers={"Retry-After": str(round(retry))})
    except Exception:
        # Not stored (the database is busy or broken): not acknowledged, so the sender retries.
        faults.note("not stored", logging.ERROR, "%s was not stored; the sender is told to send it again", what, exc_info=True)
        return WebResponse(503, b"not stored; send again later\n", headers={"Retry-After": "5"})
    return message, receipts or ()


def text_field(
    data: dict[str, Any], key: str, where: str, *, limit: int, required: bool = False, identifier: bool = False
) -> str:
    """A string field (a number is taken as its decimal text); Invalid in words otherwise. An
    `identifier` (an idempotency key, a call id) may hold no control characters: the core
    would strip them, and two different keys must never become one."""
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise Invalid(f"{where}{key} is required")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Invalid(f"{where}{key} must be text")
    text = str(value).strip()
    if len(text) > limit:
        raise Invalid(f"{where}{key} is longer than {limit} characters")
    if required and not text:
        raise Invalid(f"{where}{key} is required")
    if identifier and (any(ord(ch) < 32 or 0x7F <= ord(ch) <= 0x9F for ch in text) or sanitize_text(text) != text):
        # The core strips these (bidi marks too): two different keys must never become one.
        raise Invalid(f"{where}{key} may not contain control or direction characters")
    if identifier and "\ufffd" in text:
        # Where a lone surrogate was repaired: "\ud83d" and "\ud83e" would be one key.
        raise Invalid(f"{where}{key} holds a character that is not text (a lone UTF-16 surrogate or U+FFFD)")
    return text


def moment_field(data: dict[str, Any], key: str) -> datetime:
    """An ISO 8601 time or seconds since the epoch; now when absent. Invalid in words."""
    value = data.get(key)
    if value is None or value == "":
        return datetime.now(UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise Invalid(f"{key} is not a time we can read") from None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(f"{key} must be an ISO 8601 time such as 2026-11-23T16:05:00Z or seconds since 1970") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise Invalid(f"{key} must be an ISO 8601 time or seconds since 1970")
