"""The open API channel: any system we have no connector for (a CRM, a shop backend, a web
form) posts customers' messages to us and takes our replies at its callback URL.

Inbound: `POST <prefix>/messages` with `Authorization: Bearer <token>` and a JSON body
(docs/openapi.yaml has the schema):

    {"idempotency_key": "order-4711-1", "customer": {"name": "Ivan", "email": "ivan@example.com",
     "phone": "+79991234567", "external_id": "4711"}, "text": "Where is my order?",
     "attachments": [{"filename": "receipt.pdf", "mime_type": "application/pdf", "content_base64": "..."}]}

It is answered 202 with our ids only after the message is stored (`sink.deliver` returned);
the idempotency key is the message's external id, so a retried POST is stored once and
answered with the first one's ids (`"duplicate": true`). Bad requests get a 4xx with the
reason and store nothing.

Who the customer is: the primary identity is chosen by the channel's `identity_kind`:
`auto` (default: the e-mail if given, else the phone, else the external id), `email`, `phone`
or `external`. The other identities given go with it (so the same person writing by e-mail or
WhatsApp is the same customer). An external id is kept as `<integration>:<id>`, where
`integration` defaults to the channel's name, so two CRMs' id 4711 are two people.

Outbound: a reply is POSTed as JSON to `callback_url`, signed with `callback_secret`
(`X-Omniconsole-Signature: sha256=<hex HMAC-SHA256 of the raw body>`) and carrying
`Idempotency-Key: <our message id>` so the receiver can drop a retry. A 2xx answer means sent
(or the state its JSON names: `{"state": "delivered"}`, `{"state": "failed", "reason": "..."}`);
408, 425, 429, 5xx and network faults are retried by the core's outbox with backoff; any other
4xx fails the message with the callback's reason. Later delivery states may be posted to
`<prefix>/status`.

Conversations the company starts: `POST <prefix>/outbound` queues a message to a customer who
did not write first (on any configured channel that can reach them), `GET <prefix>/outbound`
reads its delivery state; the core does the checking (omniconsole/core/outbound.py) through the
sink's `start_conversation` and `outbound_state`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import mimetypes
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors import signing
from connectors.base import (
    N_,
    ChannelContext,
    Connector,
    DeliveryUpdate,
    InboundAttachment,
    InboundMessage,
    InboundSink,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
    WebRequest,
    WebResponse,
    WebRoute,
    Words,
)
from connectors.bearer import Invalid, moment_field, read_json_object, refuse_without_token, take_one, text_field
from connectors.log_digest import LogDigest
from omniconsole.models import DeliveryState, IdentityKind, sanitize_text

TEXT_LIMIT = 65_536
KEY_LIMIT = 200
MAX_ATTACHMENTS = 20
IDENTITY_KINDS = ("auto", "email", "phone", "external")
#: Our external ids on this channel: the integration's idempotency key for what it sent us,
#: our message id for what we sent it; the prefixes keep the two from ever colliding.
INBOUND_PREFIX = "key:"
OUTBOUND_PREFIX = "out:"
SIGNATURE_HEADER = "X-Omniconsole-Signature"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\s().\-]{5,30}$")
_STATES = {
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.READ,
    "failed": DeliveryState.FAILED,
}
# Answers that mean "not now" rather than "never".
_RETRY_STATUSES = {408, 425, 429}


def sign(secret: str, body: bytes) -> str:
    """The `X-Omniconsole-Signature` value for a callback body: `sha256=<hex HMAC-SHA256>` (the
    body-only header kept during the transition to connectors/signing.py's scheme)."""
    return signing.legacy_signature(secret, body)


def outbound_external_id(message_id: int) -> str:
    """The external id our outbound message `message_id` is kept under on this channel."""
    return f"{OUTBOUND_PREFIX}{message_id}"


class ApiConnector(Connector):
    """One integration on the open API: messages in by POST, replies out to its callback.

    Settings: `token` (from `token_env`/`token_file`: the integration's bearer token),
    `callback_url` and `callback_secret` (`callback_secret_env`) for replies, `identity_kind`
    (auto, email, phone, external), `integration` (the prefix of external ids; default the
    channel's name), `callback_timeout` (seconds, default 15), and the listener `path`.
    """

    kind = "api"
    identity_kind = IdentityKind.EMAIL

    def __init__(self, context: ChannelContext):
        super().__init__(context)
        settings = context.settings
        self.token = str(settings.get("token") or "")
        self.callback_url = str(settings.get("callback_url") or "")
        self.callback_secret = str(settings.get("callback_secret") or "")
        self.integration = str(settings.get("integration") or context.name).strip()
        self.primary = str(settings.get("identity_kind") or "auto").lower()
        self._problem = ""
        try:
            self.callback_timeout = float(settings.get("callback_timeout", 15))
        except (TypeError, ValueError):
            self.callback_timeout = 15.0
            self._problem = Words(N_("callback_timeout must be a number of seconds"))
        if self.primary not in IDENTITY_KINDS:
            self._problem = Words(
                N_("identity_kind must be one of {kinds} (got {kind!r})"), kinds=", ".join(IDENTITY_KINDS), kind=self.primary
            )
        if not self.token:
            self._problem = Words(
                N_("missing token (token_env or token_file: the secret the integration sends as a bearer token)")
            )
        self._send_problem = ""
        if not self.callback_url:
            self._send_problem = Words(
                N_("this API channel has no callback_url, so replies cannot be delivered; set one in the config")
            )
        elif urlsplit(self.callback_url).scheme not in ("http", "https") or not urlsplit(self.callback_url).hostname:
            self._send_problem = Words(N_("callback_url {url!r} is not an http(s) URL"), url=self.callback_url)
        elif not self.callback_secret:
            self._send_problem = Words(
                N_("missing callback_secret (callback_secret_env: the secret that signs replies to the callback)")
            )
        self._sink: InboundSink | None = None
        self.faults = LogDigest(self.log)  # failures to store, once a minute per kind
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def web_routes(self) -> Sequence[WebRoute]:
        """`POST /messages` takes a customer's message; `POST /status` a later delivery state;
        `POST /outbound` starts a conversation (a message the company sends first) and
        `GET /outbound` reads its delivery state."""
        return (
            WebRoute("POST", "/messages", self._messages),
            WebRoute("POST", "/status", self._status),
            WebRoute("POST", "/outbound", self._outbound),
            WebRoute("GET", "/outbound", self._outbound_state),
        )

    async def check(self) -> str:
        """Say what is configured (the callback is not called: a probe would be a message)."""
        if self._problem:
            raise PermanentError(self._problem)
        if self._send_problem:
            return Words(
                N_("open API {name!r}: receiving; replies cannot go out: {problem}"),
                name=self.integration,
                problem=self._send_problem,
            )
        return Words(N_("open API {name!r}: replies go to {origin}"), name=self.integration, origin=_origin(self.callback_url))

    async def run(self, sink: InboundSink) -> None:
        """Take messages for `sink` until cancelled (the listener brings them)."""
        detail = await self.check()
        self._sink = sink
        sink.connected(detail)
        try:
            await asyncio.Event().wait()
        finally:
            self._sink = None

    async def close(self) -> None:
        """Close the callback's HTTP connections (and write the counts of failures logged)."""
        self.faults.flush()
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # -- receiving -------------------------------------------------------------------------

    async def _messages(self, request: WebRequest) -> WebResponse:
        """One customer message: checked, stored, then (only then) answered 202 with our ids."""
        header_key = request.header("Idempotency-Key").strip()
        taken = await take_one(request, self.token, self._sink, self.faults, "a message", lambda p: self._inbound(p, header_key))
        if isinstance(taken, WebResponse):
            return taken
        message, receipts = taken
        answer: dict[str, Any] = {"status": "accepted", "idempotency_key": message.external_id[len(INBOUND_PREFIX) :]}
        for receipt in receipts:
            if receipt.external_id == message.external_id:
                answer.update(
                    message_id=receipt.message_id,
                    conversation_id=receipt.conversation_id,
                    customer_id=receipt.customer_id,
                    duplicate=receipt.duplicate,
                )
        return WebResponse.json(202, answer)

    def _inbound(self, payload: dict[str, Any], header_key: str) -> InboundMessage:
        """The request as an InboundMessage; Invalid with the reason when it cannot be one."""
        key = text_field(payload, "idempotency_key", "", limit=KEY_LIMIT, identifier=True)
        if len(header_key) > KEY_LIMIT:
            raise Invalid(f"the Idempotency-Key header is longer than {KEY_LIMIT} characters")
        text_field({"Idempotency-Key": header_key}, "Idempotency-Key", "the header ", limit=KEY_LIMIT, identifier=True)
        if key and header_key and key != header_key:
            raise Invalid("idempotency_key and the Idempotency-Key header differ; send one of them")
        key = key or header_key
        if not key:
            raise Invalid("idempotency_key is required (or an Idempotency-Key header): it makes a retried request store once")
        customer = payload.get("customer")
        if not isinstance(customer, dict):
            raise Invalid("customer is required: an object with at least one of email, phone, external_id")
        name = text_field(customer, "name", "customer.", limit=200)
        email = text_field(customer, "email", "customer.", limit=254)
        phone = text_field(customer, "phone", "customer.", limit=40)
        external = text_field(customer, "external_id", "customer.", limit=KEY_LIMIT, identifier=True)
        if email and not _EMAIL.match(email):
            raise Invalid(f"customer.email {email!r} is not an e-mail address")
        if phone and (not _PHONE.match(phone) or sum(ch.isdigit() for ch in phone) < 5):
            raise Invalid(f"customer.phone {phone!r} is not a phone number")
        identities: list[tuple[IdentityKind, str]] = []
        if email:
            identities.append((IdentityKind.EMAIL, email))
        if phone:
            identities.append((IdentityKind.PHONE, phone))
        if external:
            identities.append((IdentityKind.EXTERNAL, f"{self.integration}:{external}"))
        if not identities:
            raise Invalid("customer needs at least one of email, phone, external_id")
        # The company CRM's own id (identity kind `crm`, issue #22): goes with the others, so
        # the card's CRM lookup and the webhooks carry it.
        crm_id = text_field(customer, "crm_id", "customer.", limit=KEY_LIMIT, identifier=True)
        if crm_id:
            identities.append((IdentityKind.CRM, crm_id))
        if self.primary != "auto":
            wanted = IdentityKind(self.primary)
            first = [i for i in identities if i[0] is wanted]
            if not first:
                field_name = "external_id" if wanted is IdentityKind.EXTERNAL else str(wanted)
                raise Invalid(
                    f"this channel names customers by {self.primary} (identity_kind); customer.{field_name} is required"
                )
            identities = first + [i for i in identities if i[0] is not wanted]
        text = payload.get("text", "")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise Invalid("text must be a string")
        if len(text) > TEXT_LIMIT:
            raise Invalid(f"text is longer than {TEXT_LIMIT} characters")
        subject = text_field(payload, "subject", "", limit=300)
        attachments = _attachments(payload.get("attachments"))
        if not text.strip() and not attachments:
            raise Invalid("the message has neither text nor attachments")
        context = payload.get("context")
        if context is not None and (not isinstance(context, dict) or len(json.dumps(context)) > 4096):
            raise Invalid("context must be a JSON object of at most 4 KB (it comes back with our replies)")
        kind, address = identities[0]
        meta: dict[str, Any] = {
            "idempotency_key": key,
            "customer": {
                k: v
                for k, v in (("name", name), ("email", email), ("phone", phone), ("external_id", external), ("crm_id", crm_id))
                if v
            },
        }
        if context:
            meta["context"] = context
        return InboundMessage(
            external_id=INBOUND_PREFIX + key,
            identity_kind=kind,
            address=address,
            body=text,
            sent_at=moment_field(payload, "sent_at"),
            sender_name=name,
            subject=subject,
            attachments=attachments,
            extra_identities=tuple(identities[1:]),
            meta=meta,
        )

    async def _status(self, request: WebRequest) -> WebResponse:
        """A later delivery state of one of our replies: {"message_id": 17, "state": "delivered"}."""
        refused = refuse_without_token(request, self.token)
        if refused is not None:
            return refused
        sink = self._sink
        if sink is None:
            return WebResponse(503, b"the channel is not running; send again later\n", headers={"Retry-After": "5"})
        payload, bad = read_json_object(request)
        if bad is not None:
            return bad
        message_id = payload.get("message_id")
        state = payload.get("state")
        if isinstance(message_id, bool) or not isinstance(message_id, int) or message_id <= 0:
            return WebResponse.json(422, {"error": "message_id must be our message id (a positive whole number)"})
        if state not in _STATES or state == "sent":
            return WebResponse.json(422, {"error": "state must be one of delivered, read, failed"})
        reason = payload.get("reason") if isinstance(payload.get("reason"), str) else ""
        error = (
            f"the integration reports: {_clean(reason)}"
            if state == "failed" and reason
            else ("the integration reports it failed" if state == "failed" else "")
        )
        await sink.delivery_updates([DeliveryUpdate(outbound_external_id(message_id), _STATES[state], error)])
        return WebResponse.json(202, {"status": "recorded"})

    # -- conversations the company starts (issue #22) -------------------------------------

    async def _outbound(self, request: WebRequest) -> WebResponse:
        """`{"to": "email:ann@example.com", "text": "...", "subject": "...", "idempotency_key": "k"}`
        (or `"template": NAME, "params": [...]`, `"answer": ID`, `"channel": NAME`): queued by
        the core, answered 202 with our ids and the state; 422 with the reason in words when it
        cannot go (a Telegram bot cannot write first, a customer marked "do not contact"...)."""
        refused = refuse_without_token(request, self.token)
        if refused is not None:
            return refused
        start = getattr(self._sink, "start_conversation", None)
        if start is None:
            return WebResponse(503, b"the channel is not running; send again later\n", headers={"Retry-After": "5"})
        payload, bad = read_json_object(request)
        if bad is not None:
            return bad
        try:
            fields = {
                "to": text_field(payload, "to", "", limit=300),
                "channel": text_field(payload, "channel", "", limit=100) or None,
                "subject": text_field(payload, "subject", "", limit=300),
                "idempotency_key": (
                    text_field(payload, "idempotency_key", "", limit=KEY_LIMIT, identifier=True)
                    or request.header("Idempotency-Key").strip()[:KEY_LIMIT]
                    or None
                ),
            }
            for name in ("text", "template", "answer"):
                value = payload.get(name)
                if value is not None and not isinstance(value, str):
                    raise Invalid(f"{name} must be a string")
                if isinstance(value, str) and len(value) > TEXT_LIMIT:
                    raise Invalid(f"{name} is longer than {TEXT_LIMIT} characters")
                fields[name] = value
            params = payload.get("params", [])
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                raise Invalid("params must be a list of strings (the template's parameters, in order)")
            fields["params"] = tuple(params)
        except Invalid as exc:
            return WebResponse.json(422, {"error": str(exc)})
        if not fields["to"]:
            return WebResponse.json(422, {"error": "to is required: KIND:ADDRESS, such as email:ann@example.com"})
        answer = await start(**fields)
        return WebResponse.json(202 if "message_id" in answer else 422, answer)

    async def _outbound_state(self, request: WebRequest) -> WebResponse:
        """`GET /outbound?message_id=N` or `?idempotency_key=K`: the message's delivery state."""
        refused = refuse_without_token(request, self.token)
        if refused is not None:
            return refused
        state = getattr(self._sink, "outbound_state", None)
        if state is None:
            return WebResponse(503, b"the channel is not running; send again later\n", headers={"Retry-After": "5"})
        number = request.query.get("message_id", "")
        key = request.query.get("idempotency_key", "")[:KEY_LIMIT]
        if (not number.isdigit()) == (not key):
            return WebResponse.json(422, {"error": "give message_id (our id) or idempotency_key"})
        answer = await state(message_id=int(number) if number.isdigit() else None, idempotency_key=key or None)
        return WebResponse.json(404 if answer is None else 200, answer or {"error": "no such outbound message"})

    # -- sending ---------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # No redirects: a signed body must reach the URL configured, not wherever it points.
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.callback_timeout, connect=10.0), follow_redirects=False)
        return self._client

    async def send(self, message: OutboundMessage) -> SendResult:
        """POST the reply to the callback, signed; its answer is the delivery state."""
        if self._send_problem:
            raise PermanentError(self._send_problem)
        meta = dict(message.meta or {})
        files = []
        for path in message.attachments:
            try:
                data = await asyncio.to_thread(path.read_bytes)
            except OSError as exc:
                raise PermanentError(f"cannot read the attachment {path.name}: {exc.strerror or exc}") from exc
            files.append(
                {
                    "filename": path.name,
                    "mime_type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                    "size": len(data),
                    "content_base64": base64.b64encode(data).decode("ascii"),
                }
            )
        customer = dict(meta.get("customer") or {})
        customer["identity"] = {"kind": str(message.identity_kind), "address": message.address}
        document: dict[str, Any] = {
            "event": "message",
            "message_id": message.id,
            "conversation_id": message.conversation_id,
            "customer": customer,
            "in_reply_to": meta.get("idempotency_key"),
            "text": message.body,
            "author": message.author,
            "attachments": files,
            "attempt": message.attempt,
            "sent_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        if meta.get("context"):
            document["context"] = meta["context"]
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.callback_secret, body),
            **signing.signed_headers(self.callback_secret, body),
            "Idempotency-Key": str(message.id),
            "User-Agent": "omniconsole",
        }
        where = _origin(self.callback_url)
        try:
            response = await self._http().post(self.callback_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransientError(f"the callback at {where} is unreachable: {_network(exc)}") from exc
        status = response.status_code
        reason = _reason(response)
        if 200 <= status < 300:
            answer = _json_object(response)
            state = answer.get("state", "sent")
            if state not in _STATES:
                state = "sent"
            if state == "failed":
                raise PermanentError(f"the integration did not deliver the message: {reason or 'no reason given'}")
            return SendResult(external_id=outbound_external_id(message.id), state=_STATES[state])
        if status in _RETRY_STATUSES or status >= 500:
            retry_after = response.headers.get("Retry-After", "")
            raise TransientError(
                f"the callback at {where} answered {status}" + (f": {reason}" if reason else ""),
                retry_after=min(float(retry_after), 3600.0) if retry_after.isascii() and retry_after.isdigit() else None,
            )
        if 300 <= status < 400:
            raise PermanentError(f"the callback at {where} answered a redirect ({status}); set callback_url to the final address")
        raise PermanentError(f"the callback at {where} refused the message ({status})" + (f": {reason}" if reason else ""))


def _attachments(raw: Any) -> tuple[InboundAttachment, ...]:
    if raw in (None, []):
        return ()
    if not isinstance(raw, list):
        raise Invalid("attachments must be a list of {filename, mime_type, content_base64}")
    if len(raw) > MAX_ATTACHMENTS:
        raise Invalid(f"at most {MAX_ATTACHMENTS} attachments per message")
    files = []
    for number, item in enumerate(raw, start=1):
        where = f"attachments[{number - 1}]."
        if not isinstance(item, dict):
            raise Invalid(f"attachment #{number} must be an object {{filename, mime_type, content_base64}}")
        filename = text_field(item, "filename", where, limit=255, required=True)
        mime = text_field(item, "mime_type", where, limit=120) or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if "/" not in mime:
            raise Invalid(f"{where}mime_type {mime!r} is not a MIME type such as application/pdf")
        content = item.get("content_base64")
        if not isinstance(content, str):
            raise Invalid(f"{where}content_base64 is required (the file's bytes in base64)")
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(f"{where}content_base64 is not valid base64") from None
        files.append(InboundAttachment(filename, mime, data, len(data)))
    return tuple(files)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _reason(response: httpx.Response) -> str:
    """The callback's own words for its answer: a JSON reason/error/message, else its text."""
    answer = _json_object(response)
    for key in ("reason", "error", "message"):
        if isinstance(answer.get(key), str) and answer[key].strip():
            return _clean(answer[key])
    if answer:
        return ""
    return _clean(response.text)


def _clean(text: str) -> str:
    line = " ".join(sanitize_text(text).split())
    return line if len(line) <= 300 else line[:299] + "…"


def _origin(url: str) -> str:
    """Scheme, host and port of a URL: where it goes, without a path that may hold a secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" if parts.netloc else url[:60]


def _network(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    return str(exc) or type(exc).__name__
