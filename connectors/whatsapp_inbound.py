"""What a WhatsApp Cloud API webhook says: its senders and its messages in words and files.

The shapes are the Cloud API's webhook payloads
(https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components and the payload
examples): every documented message type is shown in words (text, media, location, contacts,
interactive replies including Flow answers, template buttons, orders, reactions) or deliberately
skipped (`NOT_WRITTEN`); a sender is known by their `wa_id` (phone), by their business-scoped
user id (BSUID, `from_user_id`) when they hide their number behind a username, or both.
Pure apart from `read_content`, which is given the connector's downloader.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.base import InboundAttachment
from connectors.payload import as_dict as _dict
from connectors.payload import as_list as _list
from connectors.payload import coordinate as _coordinate
from connectors.payload import epoch_time
from connectors.payload import file_suffix as _suffix
from omniconsole.models import IdentityKind

#: Message types that carry a file to fetch.
INBOUND_MEDIA = ("image", "video", "audio", "document", "sticker")

#: Fetches one customer file: (media id, file name, MIME type) -> the attachment.
Downloader = Callable[[str, str, str], Awaitable[InboundAttachment]]


@dataclass(frozen=True, slots=True)
class Content:
    """A message's content as we keep it."""

    body: str
    attachments: tuple[InboundAttachment, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    shared_phones: tuple[tuple[str, str], ...] = ()  # (phone, wa_id) of shared contact cards

    def identities(self, sender: str) -> tuple[tuple[IdentityKind, str], ...]:
        """A shared card's phones become the sender's identities only when the card is the
        sender's own (its wa_id is theirs): anyone else's card is a different person."""
        return tuple((IdentityKind.PHONE, phone) for phone, wa_id in self.shared_phones if sender and wa_id == sender)


#: Message types that are not the customer's words, and what they are.
NOT_WRITTEN = {
    "request_welcome": "a welcome request (they opened the chat for the first time)",
    "ephemeral": "a disappearing message WhatsApp does not show to businesses",
}


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent a webhook message: their wa_id (phone) when WhatsApp gave it, their
    business-scoped user id (BSUID) when it gave that, and the identity we file them under."""

    wa_id: str
    user_id: str
    name: str = ""
    username: str = ""

    @property
    def kind(self) -> IdentityKind:
        return IdentityKind.WHATSAPP if self.wa_id else IdentityKind.EXTERNAL

    @property
    def address(self) -> str:
        return self.wa_id or bsuid_address(self.user_id)


def bsuid_address(user_id: str) -> str:
    """The identity address of a WhatsApp user known only by their business-scoped user id
    (`from_user_id`, e.g. "DE.1502576394655843"): an external id, kept exactly as WhatsApp
    wrote it (the phone normaliser would strip it to digits)."""
    return f"whatsapp-user:{user_id}"


def group_address(group_id: str) -> str:
    """The identity address of a WhatsApp group (the group is the customer of its messages)."""
    return f"whatsapp-group:{group_id}"


def contacts(value: Mapping[str, Any]) -> dict[str, Sender]:
    """The change's `contacts[]` by every id they carry (wa_id and user_id)."""
    found: dict[str, Sender] = {}
    for contact in map(_dict, _list(value.get("contacts"))):
        profile = _dict(contact.get("profile"))
        sender = Sender(
            wa_id=text_id(contact.get("wa_id")),
            user_id=text_id(contact.get("user_id")),
            name=str(profile.get("name") or ""),
            username=str(profile.get("username") or ""),
        )
        for key in (sender.wa_id, sender.user_id):
            if key:
                found[key] = sender
    return found


def sender_of(item: Mapping[str, Any], contacts: Mapping[str, Sender]) -> Sender | None:
    """The sender of a webhook message by `from` (wa_id) or `from_user_id` (BSUID), with the
    name and the other id from `contacts[]`; None when the message names nobody."""
    wa_id, user_id = text_id(item.get("from")), text_id(item.get("from_user_id"))
    known = contacts.get(wa_id) or contacts.get(user_id)
    if not wa_id and not user_id:
        return None
    if known is not None:
        return Sender(wa_id or known.wa_id, user_id or known.user_id, known.name, known.username)
    return Sender(wa_id, user_id)


def text_id(value: Any) -> str:
    """An id WhatsApp sends as a string (a number is taken too); "" otherwise."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def flow_answers(reply: Mapping[str, Any]) -> Content:
    """A WhatsApp Flow's answers (`interactive.nfm_reply.response_json`, a JSON object of the
    form's fields) as "field: value" lines; the flow token is kept in meta, not shown."""
    raw = reply.get("response_json")
    try:
        answers = json.loads(raw) if isinstance(raw, str) else raw
    except (ValueError, RecursionError):
        answers = None
    if not isinstance(answers, dict):
        text = str(raw or reply.get("body") or "")
        return Content(f"Form answers: {text}" if text else "Form sent (no answers given)", meta={"reply_kind": "nfm_reply"})
    token = answers.get("flow_token")
    lines = ["Form answers:"]
    for key, value in answers.items():
        if key == "flow_token":
            continue
        shown = (
            ", ".join(map(str, value))
            if isinstance(value, list)
            else json.dumps(value, ensure_ascii=False)
            if isinstance(value, dict)
            else str(value)
        )
        lines.append(f"{str(key).replace('_', ' ')}: {shown}")
    meta = {"reply_kind": "nfm_reply", "flow_name": str(reply.get("name") or "")}
    if token is not None:
        meta["flow_token"] = str(token)
    return Content("\n".join(lines) if len(lines) > 1 else "Form sent (no answers given)", meta=meta)


def error_words(error: Mapping[str, Any]) -> str:
    """A Graph error object as one sentence: its title or message, the details, the code."""
    title = str(error.get("title") or error.get("message") or "").strip()
    details = str(_dict(error.get("error_data")).get("details") or "").strip()
    code = error.get("code")
    words = title
    if details and details not in title:
        words = f"{title}: {details}" if title else details
    return f"{words} (code {code})" if code is not None else words


def timestamp(value: Any) -> datetime:
    """A webhook's epoch-seconds `timestamp`; a missing one or a date no clock can hold keeps
    the message, dated now."""
    return epoch_time(value) or datetime.now(UTC)


async def read_content(kind: str, item: Mapping[str, Any], download: Downloader, log: logging.Logger) -> Content:
    """What the customer sent (a `messages[]` item of type `kind`), as readable text and files;
    `download` fetches a media id. A kind nobody documented for us becomes words saying so."""
    part = _dict(item.get(kind))
    if kind == "text":
        return Content(str(part.get("body") or ""))
    if kind in INBOUND_MEDIA:
        mime = str(part.get("mime_type") or "application/octet-stream").split(";")[0].strip()
        media_id = str(part.get("id") or "")
        filename = str(part.get("filename") or "") or f"{kind}_{media_id or 'file'}{_suffix(mime)}"
        attachment = await download(media_id, filename, mime)
        meta: dict[str, Any] = {"media_id": media_id}
        if kind == "audio" and part.get("voice"):
            meta["voice"] = True
        body = str(part.get("caption") or "")
        if kind == "sticker" and not body:
            body = "Sticker"
        return Content(body, (attachment,), meta)
    if kind == "location":
        latitude, longitude = part.get("latitude"), part.get("longitude")
        where = f"{_coordinate(latitude)}, {_coordinate(longitude)}"
        named = ", ".join(str(part[key]) for key in ("name", "address") if part.get(key))
        body = f"Location: {named} ({where})" if named else f"Location: {where}"
        return Content(body, meta={"latitude": latitude, "longitude": longitude})
    if kind == "contacts":
        lines, phones = [], []
        for card in map(_dict, _list(item.get("contacts"))):
            name = str(_dict(card.get("name")).get("formatted_name") or "")
            numbers = [_dict(p) for p in _list(card.get("phones"))]
            shown = ", ".join(str(p.get("phone") or p.get("wa_id") or "") for p in numbers if p.get("phone") or p.get("wa_id"))
            lines.append("Contact: " + ", ".join(x for x in (name, shown) if x) if name or shown else "Contact")
            phones += [
                (str(p.get("phone") or p.get("wa_id")), str(p.get("wa_id") or ""))
                for p in numbers
                if p.get("phone") or p.get("wa_id")
            ]
        return Content(
            "\n".join(lines) or "Contact", meta={"contact_phones": [p for p, _ in phones]}, shared_phones=tuple(phones)
        )
    if kind == "interactive" and str(part.get("type") or "") == "nfm_reply":
        return flow_answers(_dict(part.get("nfm_reply")))
    if kind == "order":
        products = [_dict(p) for p in _list(part.get("product_items"))]
        lines = [f"Order from catalog {part.get('catalog_id') or '?'}:"] + [
            f"- {p.get('product_retailer_id') or '?'} × {p.get('quantity') or 1}"
            + (f" at {p.get('item_price')} {p.get('currency') or ''}".rstrip() if p.get("item_price") is not None else "")
            for p in products
        ]
        if part.get("text"):
            lines.append(str(part["text"]))
        return Content("\n".join(lines), meta={"catalog_id": str(part.get("catalog_id") or "")})
    if kind == "interactive":
        reply_kind = str(part.get("type") or "")
        reply = _dict(part.get(reply_kind))
        title, description = str(reply.get("title") or ""), str(reply.get("description") or "")
        body = f"{title}\n{description}" if description else title
        return Content(body, meta={"reply_kind": reply_kind, "reply_id": str(reply.get("id") or "")})
    if kind == "button":  # a quick-reply button of a template we sent
        return Content(str(part.get("text") or ""), meta={"button_payload": str(part.get("payload") or "")})
    if kind == "reaction":
        emoji = str(part.get("emoji") or "")
        body = f"Reacted {emoji}" if emoji else "Removed a reaction"
        return Content(body, meta={"reacted_to": str(part.get("message_id") or ""), "emoji": emoji})
    if kind == "system":
        return Content(str(part.get("body") or "(a WhatsApp system message)"))
    errors = "; ".join(error_words(_dict(e)) for e in _list(item.get("errors")))
    log.info("a %r message arrived that omniconsole cannot show%s", kind, f": {errors}" if errors else "")
    return Content(f"({kind or 'unknown'} message: omniconsole cannot show this kind of message)")
