"""Phone calls: a PBX or cloud telephony posts call events to `<prefix>/events`.

    POST /hooks/phone/events
    Authorization: Bearer <token>
    {"event": "ringing", "call_id": "1700000000.42", "direction": "in", "from": "+79991234567",
     "to": "+74951234567", "extension": "101", "at": "2026-11-23T16:05:00Z"}

Events: `ringing`, `answered`, `ended` (with `duration`, the talk time in seconds, and
`recording_url` when there is one), `missed`. docs/openapi.yaml has the full shape. Each
event is answered 202 only after it is stored; an event sent twice changes nothing.

The customer is the caller (`from`) of an inbound call and the callee (`to`) of an outbound
one, as a phone identity, normalised by the core to E.164: the same person as that number on
WhatsApp. The call itself is one timeline entry that each event updates
(omniconsole/store/calls.py has the rules): a ringing inbound call pops the caller's card in
the window of the operator whose extension rings, a missed one waits for a call-back.

Phones carry no text: `send` refuses, and replies never default to this channel.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from connectors.base import (
    N_,
    ChannelContext,
    Connector,
    InboundMessage,
    InboundSink,
    OutboundMessage,
    PermanentError,
    SendResult,
    WebRequest,
    WebResponse,
    WebRoute,
    Words,
)
from connectors.bearer import Invalid, moment_field, take_one, text_field
from connectors.log_digest import LogDigest
from omniconsole.models import IdentityKind, sanitize_text

#: What a call event may be, in the order a call goes through them.
CALL_EVENTS = ("ringing", "answered", "ended", "missed")
CALL_PREFIX = "call:"
_WITHHELD = {"anonymous", "unknown", "private", "restricted", "unavailable", "withheld"}


class TelephonyConnector(Connector):
    """One PBX or cloud telephony account sending call events over HTTP.

    Settings: `token` (from `token_env`/`token_file`: what the PBX sends as a bearer token)
    and the listener `path` (default /hooks/<channel name>)."""

    kind = "telephony"
    identity_kind = IdentityKind.PHONE

    def __init__(self, context: ChannelContext):
        super().__init__(context)
        self.token = str(context.settings.get("token") or "")
        self._sink: InboundSink | None = None
        self.faults = LogDigest(self.log)  # failures to store, once a minute per kind

    def web_routes(self) -> Sequence[WebRoute]:
        """`POST /events`: one call event."""
        return (WebRoute("POST", "/events", self._events),)

    async def check(self) -> str:
        """The token must be configured; there is nothing to call (the PBX calls us)."""
        if not self.token:
            raise PermanentError(N_("missing token (token_env or token_file: the secret the PBX sends as a bearer token)"))
        return Words(N_("telephony: receiving call events"))

    async def run(self, sink: InboundSink) -> None:
        """Take call events for `sink` until cancelled (the listener brings them)."""
        detail = await self.check()
        self._sink = sink
        sink.connected(detail)
        try:
            await asyncio.Event().wait()
        finally:
            self._sink = None

    async def close(self) -> None:
        """Write the counts of failures logged."""
        self.faults.flush()

    async def send(self, message: OutboundMessage) -> SendResult:
        """A phone line cannot carry a text message."""
        raise PermanentError("a phone line cannot carry text; answer by another of the customer's channels")

    async def _events(self, request: WebRequest) -> WebResponse:
        """One call event: checked, stored, then (only then) answered 202."""
        taken = await take_one(request, self.token, self._sink, self.faults, "a call event", call_event)
        if isinstance(taken, WebResponse):
            return taken
        message, receipts = taken
        answer: dict[str, Any] = {"status": "accepted", "call_id": message.meta["call"]["id"]}
        for receipt in receipts:
            answer.update(
                message_id=receipt.message_id,
                conversation_id=receipt.conversation_id,
                customer_id=receipt.customer_id,
                duplicate=receipt.duplicate,
            )
        return WebResponse.json(202, answer)


_PHONE_CHARACTERS = re.compile(r"[0-9+()\-. *#]{1,40}")


def call_event(payload: dict[str, Any]) -> InboundMessage:
    """A call event as the InboundMessage the core stores; Invalid with the reason otherwise."""
    event = payload.get("event")
    if event not in CALL_EVENTS:
        raise Invalid(f"event must be one of {', '.join(CALL_EVENTS)} (got {str(event)[:40]!r})")
    call_id = text_field(payload, "call_id", "", limit=200, required=True, identifier=True)
    direction = payload.get("direction", "in")
    if direction not in ("in", "out"):
        raise Invalid("direction must be in (the customer calls) or out (an operator calls the customer)")
    caller = text_field(payload, "from", "", limit=40)
    callee = text_field(payload, "to", "", limit=40)
    number = caller if direction == "in" else callee
    side = "from" if direction == "in" else "to"
    if not number:
        raise Invalid(
            f"{side} is required: the customer's number ({side} of an {'inbound' if direction == 'in' else 'outbound'} call)"
        )
    if number.lower() in _WITHHELD or sum(ch.isdigit() for ch in number) < 3:
        raise Invalid(f"{side} {number!r} is not a phone number (a withheld number names no customer)")
    for side_name, value in (("from", caller), ("to", callee)):
        if value and not _PHONE_CHARACTERS.fullmatch(value):
            raise Invalid(f"{side_name} must be a phone number (digits, spaces, + ( ) - . * #), not {value[:40]!r}")
    extensions = _extensions(payload.get("extension"))
    duration = payload.get("duration")
    if duration is not None:
        if (
            isinstance(duration, bool)
            or not isinstance(duration, (int, float))
            or not math.isfinite(duration)
            or not 0 <= duration <= 7 * 86400
        ):
            raise Invalid("duration must be the talk time in whole seconds")
        duration = int(round(duration))
    recording = text_field(payload, "recording_url", "", limit=2000)
    if recording:
        parts = urlsplit(recording)
        if parts.scheme not in ("http", "https") or not parts.netloc or any(ch.isspace() or ord(ch) < 32 for ch in recording):
            raise Invalid("recording_url must be an http(s) URL")
    # What the PBX sends is text from outside: no control or escape sequence gets stored.
    note = sanitize_text(text_field(payload, "note", "", limit=4000))
    name = sanitize_text(text_field(payload, "name", "", limit=200))
    recording = sanitize_text(recording)
    at = moment_field(payload, "at")
    call = {
        "event": event,
        "id": call_id,
        "direction": direction,
        "from": caller,
        "to": callee,
        "extensions": extensions,
        "duration": duration,
        "recording_url": recording,
        "note": note,
        "at": at.timestamp(),
    }
    return InboundMessage(
        external_id=CALL_PREFIX + call_id,
        identity_kind=IdentityKind.PHONE,
        address=number,
        body="",
        sent_at=at,
        sender_name=name,
        flags=frozenset({"call"}),
        meta={"call": call},
    )


def _extensions(raw: Any) -> list[str]:
    """`extension` as a list: one extension, or several for a ring group."""
    if raw is None or raw == "":
        return []
    values = raw if isinstance(raw, list) else [raw]
    if len(values) > 50:
        raise Invalid("at most 50 extensions per event")
    found = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip() or len(str(value)) > 32:
            raise Invalid('extension must be an extension number such as "101", or a list of them')
        found.append(str(value).strip())
    return found
