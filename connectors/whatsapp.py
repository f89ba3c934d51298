"""The WhatsApp channel: one business phone number on Meta's WhatsApp Cloud API.

Receiving is pushed: Meta posts webhooks to the core's listener (`web_routes`), signed with the
app secret (`X-Hub-Signature-256`). A webhook is answered 200 only after its messages are
stored (`sink.deliver` returned), so a crash before that makes Meta deliver it again; the core
stores `(channel, wamid)` once, so redeliveries are dropped. While the channel is not running
(the core is starting, restarting it, or has stopped), webhooks are answered 503 and Meta keeps
them and retries. Unsigned or wrongly signed requests are refused and change nothing.

Sending is the Graph API: `POST /{version}/{phone-number-id}/messages` with a bearer token;
files are uploaded first (`POST /{version}/{phone-number-id}/media`). Outside the 24-hour
customer-service window WhatsApp only lets approved templates through; the composer offers
the configured `templates` and puts the chosen one in the outbound message's meta.

External ids are WhatsApp message ids (`wamid....`); the identity is the customer's `wa_id`
(their phone number in international form, which the core normalises to E.164), or for a user
who hides their number behind a username, their business-scoped user id (`whatsapp_inbound`).
What a webhook's messages say is read in `connectors/whatsapp_inbound.py`.

(Past 600 lines while the configured templates still live here; they are moving to their own
module.)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from connectors.base import (
    N_,
    ChannelContext,
    Connector,
    ConnectorError,
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
from connectors.payload import (
    REACTION,
    deliver_isolated,
    describe,
    unreadable,
)
from connectors.payload import (
    as_dict as _dict,
)
from connectors.payload import (
    as_float as _float,
)
from connectors.payload import (
    as_int as _int,
)
from connectors.payload import (
    as_list as _list,
)
from connectors.text import split_text as _split_text
from connectors.whatsapp_inbound import (
    NOT_WRITTEN,
    Sender,
    bsuid_address,
    contacts,
    error_words,
    group_address,
    read_content,
    sender_of,
    timestamp,
)
from omniconsole.message_templates import Template, parse_templates  # noqa: F401 (Template: re-exported)
from omniconsole.models import DeliveryState, IdentityKind

#: WhatsApp's limits: text body and media caption, in characters.
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
TOO_LARGE = "not downloaded: too large"
DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"

# Graph error codes that mean "slow down" (throughput, pair rate, app and account limits).
_RATE_CODES = {4, 80007, 130429, 131048, 131056}
# Codes that pass by themselves: "something went wrong", "service unavailable".
_TRANSIENT_CODES = {1, 2, 131000, 131016, 133004}
_PERMANENT_WORDS = {
    131047: "more than 24 hours have passed since the customer last wrote, so WhatsApp accepts only an approved template; pick one in the composer",
    131026: "WhatsApp could not deliver to this number (it may not use WhatsApp, or has an old app or has not accepted the terms)",
    131030: "this number is not in the test number's list of allowed recipients",
    131051: "WhatsApp does not support this kind of message",
    131052: "WhatsApp could not download the customer's file",
    131053: "WhatsApp could not take the uploaded file (wrong type or too large)",
    132000: "the template's parameters do not match the approved template",
    132001: "there is no approved template with this name and language",
    132005: "the template text is too long once the parameters are filled in",
    132015: "the template is paused because of low quality",
    132016: "the template is disabled",
    133010: "the business phone number is not registered with the Cloud API",
    368: "the business account is temporarily blocked for policy violations",
}
_WEBHOOK_STATES = {
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.READ,
    "failed": DeliveryState.FAILED,
}
# What the Cloud API sends as which media type (anything else goes as a document).
_MEDIA_TYPES = {
    "image/jpeg": "image",
    "image/png": "image",
    "video/mp4": "video",
    "video/3gpp": "video",
    "audio/aac": "audio",
    "audio/amr": "audio",
    "audio/mpeg": "audio",
    "audio/mp4": "audio",
    "audio/ogg": "audio",
}
_MEDIA_LIMITS = {"image": 5 * 1024 * 1024, "video": 16 * 1024 * 1024, "audio": 16 * 1024 * 1024}


class WhatsAppConnector(Connector):
    """One WhatsApp business number on the Cloud API: webhooks in, Graph API out.

    Settings: `token` (a system user access token, from `token_env`/`token_file`),
    `app_secret` (signs webhooks), `verify_token` (the webhook handshake), `phone_number_id`,
    `graph_url` (default https://graph.facebook.com), `api_version` (default v21.0),
    `max_file_mb` (default 25), `templates`, `groups` (default false: group messages are
    skipped, as Telegram's are), and the listener `path` the core mounts us at.
    """

    kind = "whatsapp"
    identity_kind = IdentityKind.WHATSAPP
    draws_buttons = True  # interactive reply buttons (up to 3) or a list (up to 10)

    def __init__(self, context: ChannelContext):
        super().__init__(context)
        settings = context.settings
        self.token = str(settings.get("token") or "")
        self.app_secret = str(settings.get("app_secret") or "")
        self.verify_token = str(settings.get("verify_token") or "")
        self.phone_number_id = str(settings.get("phone_number_id") or "")
        self.graph_url = str(settings.get("graph_url") or DEFAULT_GRAPH_URL).rstrip("/")
        self.api_version = str(settings.get("api_version") or DEFAULT_API_VERSION).strip("/")
        self.max_file_bytes = 25 * 1024 * 1024
        self.groups = bool(settings.get("groups", False))
        self._settings_problem = ""
        try:
            self.max_file_bytes = int(float(settings.get("max_file_mb", 25)) * 1024 * 1024)
        except (TypeError, ValueError):
            self._settings_problem = "max_file_mb must be a number"
        try:
            self.templates = parse_templates(settings.get("templates"))
        except ValueError as exc:
            self.templates = []
            self._settings_problem = str(exc)
        missing = [
            hint
            for value, hint in (
                (self.token, "token (token_env: an access token of a system user with whatsapp_business_messaging)"),
                (self.app_secret, "app_secret (app_secret_env: the Meta app's secret, which signs webhooks)"),
                (
                    self.verify_token,
                    "verify_token (verify_token_env: any secret phrase, also typed into Meta's webhook settings)",
                ),
                (self.phone_number_id, "phone_number_id (from WhatsApp > API Setup in the Meta app)"),
            )
            if not value
        ]
        if missing:
            self._settings_problem = "missing " + "; ".join(missing)
        self._client: httpx.AsyncClient | None = None
        self._sink: InboundSink | None = None
        self._stopped = asyncio.Event()
        self._stop_reason = ""
        # wamids already sent for an outbound message whose send failed part-way, so a retry
        # in this process goes on from where it stopped instead of repeating earlier parts.
        self._partial_sends: dict[int, list[str]] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(30.0, connect=10.0),
                headers={"Authorization": f"Bearer {self.token}"},
                follow_redirects=True,
            )
        return self._client

    def _url(self, *parts: str) -> str:
        return "/".join([self.graph_url, self.api_version, *parts])

    async def check(self) -> str:
        """Read the phone number's profile: "WhatsApp +1 555... (Name)" when the token works."""
        if self._settings_problem:
            raise PermanentError(self._settings_problem)
        data = await self._graph(
            "GET",
            self._url(self.phone_number_id),
            "checking the phone number",
            params={"fields": "display_phone_number,verified_name"},
        )
        number = str(data.get("display_phone_number") or self.phone_number_id)
        name = data.get("verified_name")
        return (
            Words(N_("WhatsApp {number} ({name})"), number=number, name=name)
            if name
            else Words(N_("WhatsApp {number}"), number=number)
        )

    async def close(self) -> None:
        """Close the HTTP connections."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def web_routes(self) -> Sequence[WebRoute]:
        """The webhook: GET is Meta's verification handshake, POST carries messages and statuses."""
        return (WebRoute("GET", "", self._verify), WebRoute("POST", "", self._webhook))

    # -- receiving -------------------------------------------------------------------------

    async def run(self, sink: InboundSink) -> None:
        """Check the credentials, then take webhooks for `sink` until cancelled (or until the
        token is rejected while sending: then the channel is down, in words)."""
        detail = await self.check()
        self._stopped.clear()
        self._sink = sink
        sink.connected(f"{detail}; receiving webhooks")
        try:
            await self._stopped.wait()
            raise PermanentError(self._stop_reason)
        finally:
            self._sink = None

    def _stop(self, reason: str) -> None:
        """Take the channel down from inside a send or a download (the token was rejected)."""
        self._stop_reason = reason
        self._stopped.set()

    async def _verify(self, request: WebRequest) -> WebResponse:
        """Meta's subscription handshake: echo `hub.challenge` to whoever knows the verify token."""
        mode = request.query.get("hub.mode", "")
        token = request.query.get("hub.verify_token", "")
        challenge = request.query.get("hub.challenge", "")
        if mode != "subscribe" or not self.verify_token or not hmac.compare_digest(token.encode(), self.verify_token.encode()):
            self.log.warning("refused a webhook verification from %s: wrong mode or verify token", request.remote)
            return WebResponse.text(403, "verification refused: the verify token does not match")
        self.log.info("Meta verified the webhook")
        return WebResponse.text(200, challenge[:200])

    async def _webhook(self, request: WebRequest) -> WebResponse:
        """A signed webhook: store its messages, record its statuses, then (only then) 200."""
        signature = request.header("X-Hub-Signature-256")
        if not signature:
            self.log.warning("refused an unsigned webhook from %s", request.remote)
            return WebResponse.text(401, "refused: the request is not signed (X-Hub-Signature-256 is missing)")
        if not self._signed(request.body, signature):
            self.log.warning("refused a webhook with a wrong signature from %s", request.remote)
            return WebResponse.text(403, "refused: the signature does not match the app secret")
        sink = self._sink
        if sink is None:
            # Not an error for Meta: it keeps the webhook and delivers it again later.
            return WebResponse.text(503, "the channel is not running; deliver again later")
        try:
            payload = json.loads(request.body)
        except (UnicodeDecodeError, ValueError, RecursionError):
            self.log.warning("skipped a signed webhook whose body is not JSON (%d bytes)", len(request.body))
            return WebResponse.text(400, "the body is not JSON")
        try:
            messages, updates, raws = await self._read_payload(payload)
            if messages:
                # A message the core refuses as data is kept as unreadable; the rest are stored.
                await deliver_isolated(sink, messages, None, raw_of=lambda m: raws.get(m.external_id), log=self.log)
            if updates:
                await sink.delivery_updates(updates)
        except ConnectorError as exc:
            # A download failed for a reason that passes (or the token broke): not stored,
            # so not acknowledged; Meta delivers the webhook again.
            self.log.warning("webhook not taken, Meta will deliver it again: %s", exc.reason)
            return WebResponse.text(503, "not stored; deliver again later")
        except Exception:
            self.log.exception("webhook not stored, Meta will deliver it again")
            return WebResponse.text(503, "not stored; deliver again later")
        return WebResponse.text(200, "ok")

    def _signed(self, body: bytes, header: str) -> bool:
        """Whether `X-Hub-Signature-256: sha256=<hex>` is the HMAC-SHA256 of the raw body.

        Any other header value (not hex, not ASCII, undecodable bytes) is simply not a match."""
        scheme, _, given = header.strip().partition("=")
        given = given.strip().lower()
        if scheme.lower() != "sha256" or not self.app_secret or len(given) != 64 or not given.isascii():
            return False
        expected = hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii"))

    async def _read_payload(self, payload: Any) -> tuple[list[InboundMessage], list[DeliveryUpdate], dict[str, Any]]:
        """The messages and delivery updates in one webhook (and each message's raw item, by
        external id); what we do not know is skipped, in the log."""
        messages: list[InboundMessage] = []
        updates: list[DeliveryUpdate] = []
        raws: dict[str, Any] = {}
        if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
            self.log.info(
                "skipped a webhook about %r", payload.get("object") if isinstance(payload, dict) else type(payload).__name__
            )
            return messages, updates, raws
        for entry in _list(payload.get("entry")):
            for change in _list(_dict(entry).get("changes")):
                change = _dict(change)
                value = _dict(change.get("value"))
                if change.get("field") != "messages":
                    self.log.info("skipped a %r webhook", change.get("field"))
                    continue
                number = str(_dict(value.get("metadata")).get("phone_number_id") or "")
                if number and number != self.phone_number_id:
                    # Meta sends every number of an app to one URL: say it loudly, it is a setup
                    # mistake that otherwise loses that number's messages without a trace.
                    self.log.warning(
                        "skipped a webhook for phone number id %s; this channel serves %s only: give that number"
                        " its own channel (its own callback URL) in Meta's settings",
                        number,
                        self.phone_number_id,
                    )
                    continue
                for error in _list(value.get("errors")):
                    self.log.warning("WhatsApp reported: %s", error_words(_dict(error)))
                senders = contacts(value)
                for item in _list(value.get("messages")):
                    message = await self._inbound_or_unreadable(_dict(item), senders)
                    if message is not None:
                        messages.append(message)
                        raws[message.external_id] = item
                for status in _list(value.get("statuses")):
                    update = _delivery_update(_dict(status))
                    if update is not None:
                        updates.append(update)
        return messages, updates, raws

    async def _inbound_or_unreadable(self, item: dict[str, Any], senders: Mapping[str, Sender]) -> InboundMessage | None:
        """`_inbound`, except that a message no reader expected is kept as unreadable (its raw
        JSON and the reason) rather than failing the whole webhook."""
        try:
            return await self._inbound(item, senders)
        except ConnectorError:
            raise  # a download that may pass: the webhook is answered 503 and comes again
        except Exception as exc:
            wamid = item.get("id")
            if not isinstance(wamid, str) or not wamid:
                self.log.warning("skipped an unreadable webhook message without an id: %s", describe(exc))
                return None
            sender = sender_of(item, senders)
            self.log.warning("webhook message %s cannot be read (%s); kept as unreadable", wamid, describe(exc))
            stand_in = InboundMessage(
                external_id=wamid,
                identity_kind=sender.kind if sender else IdentityKind.WHATSAPP,
                address=sender.address if sender else "unknown",
                body="",
                sent_at=timestamp(item.get("timestamp")),
                sender_name=sender.name if sender else "",
            )
            return unreadable(stand_in, item, f"omniconsole could not read it: {describe(exc)}")

    async def _inbound(self, item: dict[str, Any], senders: Mapping[str, Sender]) -> InboundMessage | None:
        """One webhook message as an InboundMessage, or None when it is not one we take."""
        wamid, kind = item.get("id"), str(item.get("type") or "")
        sender = sender_of(item, senders)
        if not isinstance(wamid, str) or not wamid or sender is None:
            self.log.warning("skipped a webhook message without an id or a sender: %.300r", item)
            return None
        if kind in NOT_WRITTEN:
            # A welcome request (the customer opened the chat) or a notice WhatsApp wrote: nothing
            # the customer said, so it opens no conversation; the log says what it was.
            self.log.info("whatsapp: %s from %s: %s", kind, sender.address, NOT_WRITTEN[kind])
            return None
        group = str(item.get("group_id") or "")
        if group and not self.groups:
            self.log.info("whatsapp: skipped a message in group %s (set groups = true to take group messages)", group)
            return None
        meta: dict[str, Any] = {"kind": kind}
        if sender.wa_id:
            meta["wa_id"] = sender.wa_id
        if sender.user_id:
            meta["user_id"] = sender.user_id
        if sender.username:
            meta["username"] = sender.username
        if kind == "system":
            return self._system_notice(item, wamid, sender, meta)
        content = await read_content(kind, item, self._download, self.log)
        meta.update(content.meta)
        context = _dict(item.get("context"))
        referral = _dict(item.get("referral"))
        flags: frozenset[str] = frozenset()
        reply_to = str(context["id"]) if context.get("id") else None
        if kind == "reaction":
            flags, reply_to = frozenset({REACTION}), str(meta.get("reacted_to") or "") or None
        elif kind == "interactive" and meta.get("reply_kind") in ("button_reply", "list_reply") and meta.get("reply_id"):
            flags = frozenset({"button"})  # one of our interactive buttons or list rows
            meta["button"] = meta["reply_id"]
        body, address, identity, name = content.body, sender.address, sender.kind, sender.name
        extra = list(content.identities(sender.wa_id))
        if sender.wa_id and sender.user_id:
            # The phone and the business-scoped id are the same person: join them.
            extra.append((IdentityKind.EXTERNAL, bsuid_address(sender.user_id)))
        if group:
            # The group is the customer of a group message, and replies go to the group.
            meta["group_id"] = group
            address, identity = group_address(group), IdentityKind.EXTERNAL
            name = f"WhatsApp group {group[:12]}"
            body = f"{sender.name or sender.address}: {body}" if body else body
            extra = []
        return InboundMessage(
            external_id=wamid,
            identity_kind=identity,
            address=address,
            body=body,
            sent_at=timestamp(item.get("timestamp")),
            sender_name=name,
            reply_to_external_id=reply_to,
            attachments=content.attachments,
            extra_identities=tuple(extra),
            # A click-to-WhatsApp ad says where the customer came from.
            origin=str(referral.get("source_url") or referral.get("headline") or "") or None,
            flags=flags,
            meta=meta,
        )

    def _system_notice(self, item: dict[str, Any], wamid: str, sender: Sender, meta: dict[str, Any]) -> None:
        """A system message (a number change, an identity change) is WhatsApp's words, not the
        customer's: it opens no conversation. Said in the log with both numbers, so an operator
        can join them (the store has no record kind for a notice yet)."""
        system = _dict(item.get("system"))
        new_wa_id = str(system.get("wa_id") or system.get("new_wa_id") or "")
        words = str(system.get("body") or "") or "a system notice"
        self.log.warning(
            "whatsapp: %s (%s) %s%s; message %s not stored as a customer message",
            sender.address,
            sender.name or "no name",
            words,
            f" (new number {new_wa_id})" if new_wa_id else "",
            wamid,
        )
        return None

    async def _download(self, media_id: str, filename: str, mime_type: str) -> InboundAttachment:
        """Fetch a customer's file: the media id gives a short-lived URL, fetched with the token.
        A refusal becomes a note on the attachment; a fault that passes raises TransientError
        (the webhook is not acknowledged and comes again)."""
        if not media_id:
            return InboundAttachment(filename, mime_type, None, None, "not downloaded: WhatsApp gave no media id")
        try:
            info = await self._graph(
                "GET", self._url(media_id), f"looking up {filename}", params={"phone_number_id": self.phone_number_id}
            )
        except PermanentError as exc:
            if self._stopped.is_set():
                raise  # the token broke: take nothing, Meta delivers the webhook again
            return InboundAttachment(filename, mime_type, None, None, f"not downloaded: {exc.reason}")
        declared = _int(info.get("file_size"))
        mime_type = str(info.get("mime_type") or mime_type)
        if declared is not None and declared > self.max_file_bytes:
            return InboundAttachment(filename, mime_type, None, declared, TOO_LARGE)
        url = info.get("url")
        if not isinstance(url, str) or not url:
            return InboundAttachment(filename, mime_type, None, declared, "not downloaded: WhatsApp gave no download URL")
        data = bytearray()
        try:
            async with self._http().stream("GET", url) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise self._error(response, f"downloading {filename}")
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > self.max_file_bytes:
                        return InboundAttachment(filename, mime_type, None, declared, TOO_LARGE)
        except PermanentError as exc:
            if self._stopped.is_set():
                raise
            return InboundAttachment(filename, mime_type, None, declared, f"not downloaded: {exc.reason}")
        except httpx.HTTPError as exc:
            raise TransientError(
                f"the WhatsApp media server is unavailable while downloading {filename}: {_network(exc)}"
            ) from exc
        expected = str(info.get("sha256") or "")
        if expected and hashlib.sha256(data).hexdigest() != expected.lower():
            raise TransientError(f"{filename} arrived damaged (its SHA-256 does not match)")
        return InboundAttachment(filename, mime_type, bytes(data), len(data))

    # -- sending ---------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send a template (when the message carries one), else text (split at 4,096) and files;
        the first file takes the text as its caption when it fits."""
        if self._settings_problem:
            raise PermanentError(self._settings_problem)
        to = _recipient(message)
        template = message.meta.get("template") if message.meta else None
        steps = [_Step(template=template)] if template else _send_plan(message)
        if message.buttons and not template:
            steps = _with_buttons(steps, message.buttons)
        if not steps:
            raise PermanentError("nothing to send: the message has no text and no files")
        sent = self._partial_sends.setdefault(message.id, [])
        try:
            for step in steps[len(sent) :]:
                sent.append(await self._post(to, step, None if sent else message.reply_to_external_id))
        except PermanentError:
            self._partial_sends.pop(message.id, None)
            raise
        self._partial_sends.pop(message.id, None)
        return SendResult(external_id=sent[0])

    async def _post(self, to: tuple[str, str, str], step: _Step, reply_to: str | None) -> str:
        """One Cloud API message to `to` (recipient type, field, value); returns its wamid."""
        recipient_type, field_name, value = to
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": recipient_type, field_name: value}
        if reply_to:
            body["context"] = {"message_id": reply_to}
        if step.template is not None:
            body.update(type="template", template=_template_object(step.template))
        elif step.buttons:
            body.update(type="interactive", interactive=_interactive(step.text, step.buttons))
        elif step.path is None:
            body.update(type="text", text={"preview_url": False, "body": step.text})
        else:
            media_type, media_id = await self._upload(step.path)
            media: dict[str, Any] = {"id": media_id}
            if step.text and media_type != "audio":
                media["caption"] = step.text
            if media_type == "document":
                media["filename"] = step.path.name
            body.update(type=media_type, **{media_type: media})
        data = await self._graph("POST", self._url(self.phone_number_id, "messages"), "sending", json=body)
        ids = [m.get("id") for m in map(_dict, _list(data.get("messages")))]
        if not ids or not isinstance(ids[0], str):
            raise TransientError("WhatsApp accepted the message but gave no message id")
        return ids[0]

    async def _upload(self, path: Path) -> tuple[str, str]:
        """Upload a file to WhatsApp; (media type to send it as, media id)."""
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise PermanentError(f"cannot read the attachment {path.name}: {exc.strerror or exc}") from exc
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        media_type = _MEDIA_TYPES.get(mime, "document")
        if len(data) > _MEDIA_LIMITS.get(media_type, 100 * 1024 * 1024):
            media_type = "document"  # a large photo still goes, as a file
        if len(data) > 100 * 1024 * 1024:
            raise PermanentError(f"{path.name} is over WhatsApp's 100 MB limit for files")
        result = await self._graph(
            "POST",
            self._url(self.phone_number_id, "media"),
            f"uploading {path.name}",
            data={"messaging_product": "whatsapp", "type": mime},
            files={"file": (path.name, data, mime)},
        )
        media_id = result.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise TransientError(f"WhatsApp took {path.name} but gave no media id")
        return media_type, media_id

    # -- the Graph API ---------------------------------------------------------------------

    async def _graph(self, method: str, url: str, doing: str, **kwargs: Any) -> dict[str, Any]:
        """One Graph API call; its JSON answer, or our error taxonomy in words."""
        try:
            response = await self._http().request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise TransientError(f"the Graph API at {self.graph_url} is unavailable while {doing}: {_network(exc)}") from exc
        if response.status_code >= 400:
            raise self._error(response, doing)
        try:
            data = response.json()
        except ValueError:
            raise TransientError(f"the Graph API answered {doing} with something that is not JSON") from None
        return data if isinstance(data, dict) else {}

    def _error(self, response: httpx.Response, doing: str) -> ConnectorError:
        """A Graph error answer as TransientError / PermanentError with a reason in words."""
        try:
            error = _dict(response.json().get("error"))
        except (ValueError, AttributeError):
            error = {}
        code = _int(error.get("code"))
        said = error_words(error) if error else f"HTTP {response.status_code} {response.reason_phrase}".strip()
        said = said.replace(self.token, "<token>") if self.token else said
        if code == 190 or (not error and response.status_code == 401):
            reason = "WhatsApp rejected the access token (expired or revoked); put a new one where token_env points"
            self._stop(reason)
            return PermanentError(reason)
        if code in _RATE_CODES or response.status_code == 429:
            retry = response.headers.get("Retry-After")
            return TransientError(f"WhatsApp asks to slow down while {doing}: {said}", retry_after=_float(retry))
        if code in _PERMANENT_WORDS:
            return PermanentError(f"{_PERMANENT_WORDS[code]} ({said})")
        if code in _TRANSIENT_CODES or response.status_code >= 500:
            return TransientError(f"WhatsApp failed while {doing}: {said}")
        if doing == "sending":
            return PermanentError(f"WhatsApp refused the message: {said}")
        return PermanentError(f"WhatsApp refused {doing}: {said}")


# -- helpers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
    """One Cloud API message of an outbound message: text, a file with its caption, or a template."""

    text: str = ""
    path: Path | None = None
    template: Mapping[str, Any] | None = None
    buttons: tuple = ()  # Buttons: the step is an interactive message


# Interactive messages (https://developers.facebook.com/docs/whatsapp/cloud-api/messages/interactive-reply-buttons-messages,
# .../interactive-list-messages): body text up to 1,024 characters; up to 3 reply buttons
# (title up to 20) or a list of up to 10 rows (title up to 24, id up to 200).
INTERACTIVE_BODY_LIMIT = 1024


def _with_buttons(steps: list[_Step], buttons) -> list[_Step]:
    """The plan with the buttons on its last text step (split so that it fits an interactive
    body), or on a short step of their own after files."""
    if steps and steps[-1].path is None and steps[-1].text:
        head = split_text(steps[-1].text, INTERACTIVE_BODY_LIMIT)
        return steps[:-1] + [_Step(part) for part in head[:-1]] + [_Step(head[-1], buttons=tuple(buttons[:10]))]
    return steps + [_Step("…", buttons=tuple(buttons[:10]))]


def _interactive(text: str, buttons) -> dict[str, Any]:
    """Reply buttons for up to 3, else a list."""
    if len(buttons) <= 3:
        return {
            "type": "button",
            "body": {"text": text},
            "action": {"buttons": [{"type": "reply", "reply": {"id": b.id, "title": b.title}} for b in buttons]},
        }
    rows = [{"id": b.id, "title": b.title[:24]} for b in buttons]
    return {
        "type": "list",
        "body": {"text": text},
        "action": {"button": "Choose", "sections": [{"title": "Answers", "rows": rows}]},
    }


def _send_plan(message: OutboundMessage) -> list[_Step]:
    body = message.body or ""
    files = list(message.attachments)
    if (
        files
        and body.strip()
        and len(body) <= CAPTION_LIMIT
        and _MEDIA_TYPES.get(mimetypes.guess_type(files[0].name)[0] or "") != "audio"
    ):
        return [_Step(body, files[0])] + [_Step("", path) for path in files[1:]]
    return [_Step(part) for part in split_text(body)] + [_Step("", path) for path in files]


def _template_object(template: Mapping[str, Any]) -> dict[str, Any]:
    """The Cloud API's `template` object from what the composer stored."""
    params = [str(p) for p in _list(template.get("params"))]
    result: dict[str, Any] = {
        "name": str(template.get("name") or ""),
        "language": {"code": str(template.get("language") or "en_US")},
    }
    if params:
        result["components"] = [{"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}]
    return result


def _delivery_update(status: dict[str, Any]) -> DeliveryUpdate | None:
    state = _WEBHOOK_STATES.get(str(status.get("status") or ""))
    wamid = status.get("id")
    if state is None or not isinstance(wamid, str):
        return None
    error = ""
    if state is DeliveryState.FAILED:
        errors = [error_words(_dict(e)) for e in _list(status.get("errors"))]
        codes = [_int(_dict(e).get("code")) for e in _list(status.get("errors"))]
        known = next((_PERMANENT_WORDS[c] for c in codes if c in _PERMANENT_WORDS), "")
        error = "; ".join(x for x in [known, *errors] if x) or "WhatsApp could not deliver the message"
    return DeliveryUpdate(external_id=wamid, state=state, error=error)


def _recipient(message: OutboundMessage) -> tuple[str, str, str]:
    """Where a reply goes: ("group", "to", group id) for a group, ("individual", "to", wa_id)
    for a number, ("individual", "recipient", BSUID) for a user known only by that id."""
    meta = message.meta or {}
    if meta.get("group_id"):
        return "group", "to", str(meta["group_id"])
    if message.address.startswith("whatsapp-group:"):
        return "group", "to", message.address.removeprefix("whatsapp-group:")
    wa_id = str(meta.get("wa_id") or "")
    if not wa_id and not message.address.startswith("whatsapp-user:"):
        wa_id = "".join(ch for ch in message.address if ch.isdigit())
    if wa_id:
        return "individual", "to", wa_id
    user_id = str(meta.get("user_id") or "") or message.address.removeprefix("whatsapp-user:")
    if user_id and user_id != message.address:
        return "individual", "recipient", user_id
    raise PermanentError(f"{message.address!r} is not a WhatsApp number or user id")


def _network(exc: httpx.HTTPError) -> str:
    return str(exc) or type(exc).__name__


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """The parts a long reply goes out in (see connectors.text.split_text)."""
    return _split_text(text, limit, utf16=False)
