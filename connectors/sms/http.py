"""The SMS channel over an HTTP gateway (providers without SMPP).

Sending: one request per message, built from templates in the channel's settings:
`send_url` (placeholders URL-encoded), `send_method` (POST), `send_body` (placeholders escaped
for JSON when `send_content_type` is JSON, URL-encoded for a form), with
`Authorization: Bearer <token>` when a `token` is configured (`token_env`/`token_file`).
Placeholders: `{to}` (+E.164), `{to_digits}`, `{from}` (the sender id), `{text}`, `{id}` (our
message id: a gateway that takes a client reference can drop a retry). The gateway's id for the
message is read from its JSON answer at `response_id` (a dotted path, default `id`); 2xx is
sent, 408/425/429/5xx and network faults are retried, any other answer fails with its text.

Receiving, on the core's listener under the channel's prefix, guarded by `webhook_token`
(`Authorization: Bearer <token>`, or `?token=` for gateways that cannot set headers):
`POST /inbound` with JSON or a form: `from` (or `sender`, `msisdn`, `phone`), `text` (or
`message`, `body`), optional `id` (the gateway's message id, makes a retry a duplicate) and
`at`; `POST /status` with `id` (or `message_id`) and `status` (delivered, failed, undelivered,
expired, rejected, sent, accepted...) and an optional `error`. Each is answered 200 only after
it is stored.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from connectors.base import (
    N_,
    DeliveryUpdate,
    OutboundMessage,
    PermanentError,
    TransientError,
    WebRequest,
    WebResponse,
    WebRoute,
    Words,
)
from connectors.bearer import Invalid, moment_field, refuse_without_token
from omniconsole.models import DeliveryState

if TYPE_CHECKING:
    from connectors.sms import SmsConnector

_RETRY = {408, 425, 429}
_FROM = ("from", "sender", "msisdn", "phone", "source")
_TEXT = ("text", "message", "body", "sms")
_ID = ("id", "message_id", "sms_id")
_STATUS = {
    "delivered": DeliveryState.DELIVERED,
    "delivrd": DeliveryState.DELIVERED,
    "sent": DeliveryState.SENT,
    "accepted": DeliveryState.SENT,
    "enroute": DeliveryState.SENT,
    "queued": DeliveryState.SENT,
    "failed": DeliveryState.FAILED,
    "undelivered": DeliveryState.FAILED,
    "undeliv": DeliveryState.FAILED,
    "expired": DeliveryState.FAILED,
    "rejected": DeliveryState.FAILED,
    "rejectd": DeliveryState.FAILED,
}
TEXT_LIMIT = 10_000


class HttpGateway:
    """Sending through, and webhooks from, one HTTP SMS gateway account."""

    def __init__(self, settings: Mapping[str, Any], channel: SmsConnector):
        self.channel = channel
        self.send_url = str(settings.get("send_url") or "")
        parts = urlsplit(self.send_url.replace("{", "").replace("}", ""))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an HTTP SMS channel needs send_url, an http(s) URL such as https://gateway.example/sms/send")
        self.method = str(settings.get("send_method") or "POST").upper()
        self.body = str(settings.get("send_body") or "")
        self.content_type = str(settings.get("send_content_type") or "application/json")
        self.token = str(settings.get("token") or "")
        self.response_id = str(settings.get("response_id") or "id")
        self.webhook_token = str(settings.get("webhook_token") or "")
        self.timeout = float(settings.get("send_timeout", 15))
        self._client: httpx.AsyncClient | None = None

    def describe(self) -> str:
        host = urlsplit(self.send_url.replace("{", "").replace("}", "")).hostname
        hooks = Words(
            N_("receiving webhooks") if self.webhook_token else N_("no webhook_token: inbound SMS and reports are refused")
        )
        return Words(N_("HTTP SMS gateway {host}; {hooks}"), host=host, hooks=hooks)

    def routes(self) -> Sequence[WebRoute]:
        return (WebRoute("POST", "/inbound", self._inbound), WebRoute("POST", "/status", self._status))

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # -- sending -----------------------------------------------------------------------------

    def _fill(self, template: str, values: Mapping[str, str], escape) -> str:
        for name, value in values.items():
            template = template.replace("{" + name + "}", escape(value))
        return template

    async def send(self, message: OutboundMessage, number: str) -> str:
        """One request to the gateway; its id for the message."""
        values = {
            "to": number,
            "to_digits": number.lstrip("+"),
            "from": self.channel.sender,
            "text": message.body,
            "id": str(message.id),
        }
        url = self._fill(self.send_url, values, lambda v: quote(v, safe=""))
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        content = None
        if self.body:
            if "json" in self.content_type:
                content = self._fill(self.body, values, lambda v: json.dumps(v, ensure_ascii=False)[1:-1])
            else:
                content = self._fill(self.body, values, lambda v: quote(v, safe=""))
            headers["Content-Type"] = self.content_type
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        try:
            response = await self._client.request(
                self.method, url, content=content.encode() if content else None, headers=headers
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"the SMS gateway is unreachable: {exc or type(exc).__name__}") from exc
        said = response.text.strip()[:200]
        if self.token:
            said = said.replace(self.token, "<token>")
        if response.status_code in _RETRY or response.status_code >= 500:
            retry = response.headers.get("Retry-After")
            raise TransientError(
                f"the SMS gateway answered {response.status_code}: {said}",
                retry_after=float(retry) if retry and retry.isdigit() else None,
            )
        if response.status_code >= 300:
            raise PermanentError(f"the SMS gateway refused the message ({response.status_code}): {said}")
        try:
            value: Any = response.json()
            for step in self.response_id.split("."):
                value = value[int(step)] if isinstance(value, list) and step.isdigit() else value[step]
        except (ValueError, KeyError, IndexError, TypeError):
            return f"out:{message.id}"  # the gateway gives no id: reports must name ours
        return str(value)

    # -- webhooks ----------------------------------------------------------------------------

    def _refused(self, request: WebRequest) -> WebResponse | None:
        """None for the right webhook token (a bearer header, or `?token=` for gateways that
        cannot set headers), else the 401/403 to answer."""
        given = request.query.get("token", "")
        if given and not request.header("Authorization"):
            if self.webhook_token and hmac.compare_digest(given.encode(), self.webhook_token.encode()):
                return None
            return WebResponse.text(403, "refused: the token is not this channel's webhook token\n")
        return refuse_without_token(request, self.webhook_token)

    def _fields(self, request: WebRequest) -> dict[str, str] | WebResponse:
        content_type = request.header("Content-Type").split(";")[0].strip().lower()
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            return WebResponse.text(400, "the body is not UTF-8 text\n")
        if "json" in content_type:
            try:
                data = json.loads(text)
            except ValueError as exc:
                return WebResponse.text(400, f"the body is not valid JSON: {exc}\n")
            if not isinstance(data, dict):
                return WebResponse.text(400, "the body must be a JSON object\n")
            return {
                str(k).lower(): str(v) for k, v in data.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)
            }
        return {k.lower(): v for k, v in parse_qsl(text, keep_blank_values=True)}

    async def _inbound(self, request: WebRequest) -> WebResponse:
        refused = self._refused(request)
        if refused is not None:
            return refused
        if self.channel.sink is None:
            return WebResponse(503, b"the channel is not running; send again later\n", headers={"Retry-After": "5"})
        fields = self._fields(request)
        if isinstance(fields, WebResponse):
            return fields
        source = next((fields[k].strip() for k in _FROM if fields.get(k, "").strip()), "")
        text = next((fields[k] for k in _TEXT if k in fields), None)
        if not source or text is None:
            return WebResponse.json(422, {"error": "an inbound SMS needs `from` (the customer's number) and `text`"})
        if len(text) > TEXT_LIMIT:
            return WebResponse.json(422, {"error": f"text is longer than {TEXT_LIMIT} characters"})
        gateway_id = next((fields[k].strip() for k in _ID if fields.get(k, "").strip()), "")
        try:
            at = fields.get("at", "").strip()
            sent_at = moment_field({"at": float(at) if at.replace(".", "", 1).isdigit() else at}, "at") if at else None
        except Invalid as exc:
            return WebResponse.json(422, {"error": str(exc)})
        try:
            await self.channel.take_text(
                source, text, fields.get("at", ""), sent_at=sent_at, external_id=f"gw:{gateway_id}" if gateway_id else None
            )
        except Exception:
            self.channel.log.exception("an inbound SMS was not stored; the gateway is told to send it again")
            return WebResponse(503, b"not stored; send again later\n", headers={"Retry-After": "5"})
        return WebResponse.text(200, "ok\n")

    async def _status(self, request: WebRequest) -> WebResponse:
        refused = self._refused(request)
        if refused is not None:
            return refused
        sink = self.channel.sink
        if sink is None:
            return WebResponse(503, b"the channel is not running; send again later\n", headers={"Retry-After": "5"})
        fields = self._fields(request)
        if isinstance(fields, WebResponse):
            return fields
        message_id = next((fields[k].strip() for k in _ID if fields.get(k, "").strip()), "")
        state = _STATUS.get(fields.get("status", "").strip().lower())
        if not message_id or state is None:
            return WebResponse.json(422, {"error": "a delivery report needs `id` and a `status` such as delivered or failed"})
        error = ""
        if state is DeliveryState.FAILED:
            error = f"the SMS gateway reported {fields.get('status')}" + (
                f": {fields['error'][:200]}" if fields.get("error") else ""
            )
        try:
            await sink.delivery_updates([DeliveryUpdate(message_id, state, error)])
        except Exception:
            self.channel.log.exception("a delivery report was not stored")
            return WebResponse(503, b"not stored; send again later\n", headers={"Retry-After": "5"})
        return WebResponse.text(200, "ok\n")
