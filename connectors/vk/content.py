"""What a VK message says, in words and files: the readers of VK's message objects.

Everything here is pure except `ContentReader.read`, which asks the connector to fetch files
(given as a callable). The shapes are VK's documented objects (https://dev.vk.com/en/reference/objects/message,
/attachments-message, /geo): text, `reply_message`, `fwd_messages`, `attachments` of every
documented type (files are fetched; the rest become a line in words), `geo` (a shared place) and
`payload` (a keyboard button's data: `{"command":"start"}` is the «Начать» button).
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.base import InboundAttachment
from connectors.payload import as_dict, as_int, as_list, as_text, epoch_time, place

#: How deep quotes of quotes are shown.
QUOTE_DEPTH = 3

#: Fetches one file: (url, file name, MIME type, declared size) -> the attachment.
Downloader = Callable[[Any, str, str, "int | None"], Awaitable[InboundAttachment]]


@dataclass(slots=True)
class Content:
    """What a message says, as we keep it: body lines and downloaded files."""

    lines: list[str] = field(default_factory=list)
    attachments: list[InboundAttachment] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)


def message_time(value: Any) -> datetime | None:
    """A VK `date`/`update_time` (epoch seconds) as UTC; None when absent or impossible."""
    return epoch_time(as_int(value))


def is_message(message: Any) -> bool:
    """Whether `message` is a message object with the ids we rely on."""
    return isinstance(message, dict) and all(
        isinstance(message.get(key), int) and not isinstance(message.get(key), bool) for key in ("id", "from_id", "peer_id")
    )


def with_int_ids(message: Any) -> Any:
    """`message` with its `id`, `from_id` and `peer_id` as numbers when they came as numeric
    strings (a proxy or an old client library may stringify them): the same person, not a
    message to drop."""
    if not isinstance(message, dict) or not any(isinstance(message.get(key), str) for key in ("id", "from_id", "peer_id")):
        return message
    fixed = dict(message)
    for key in ("id", "from_id", "peer_id"):
        number = as_int(fixed.get(key))
        if number is not None:
            fixed[key] = number
    return fixed


def people(messages: Iterable[Mapping[str, Any]]) -> set[int]:
    """Every user id a message names: sender, quoted and forwarded authors, at any depth."""
    found: set[int] = set()
    stack = list(messages)
    while stack:
        message = stack.pop()
        sender = as_int(message.get("from_id"))
        if sender and sender > 0:
            found.add(sender)
        if isinstance(message.get("reply_message"), dict):
            stack.append(message["reply_message"])
        stack.extend(item for item in as_list(message.get("fwd_messages")) if isinstance(item, dict))
    return found


def start_button(message: Mapping[str, Any]) -> bool:
    """Whether the message is the «Начать»/"Start" button VK shows before a first message: its
    `payload` is `{"command":"start"}` (https://dev.vk.com/en/api/bots/development/keyboard)."""
    raw = message.get("payload")
    try:
        payload = json.loads(raw) if isinstance(raw, str) else raw
    except (ValueError, RecursionError):
        return False
    return isinstance(payload, dict) and payload.get("command") == "start"


def largest_photo_url(photo: Mapping[str, Any]) -> str | None:
    """The biggest copy of a photo: by pixels, then by VK's size letters."""
    order = "smxopqryzw"
    sizes = [size for size in as_list(photo.get("sizes")) if isinstance(size, dict) and size.get("url")]
    if isinstance(photo.get("orig_photo"), dict) and photo["orig_photo"].get("url"):
        sizes.append(photo["orig_photo"])
    if not sizes:
        return None

    def rank(size: Mapping[str, Any]) -> tuple[int, int]:
        pixels = (as_int(size.get("width")) or 0) * (as_int(size.get("height")) or 0)
        letter = str(size.get("type") or "")
        return pixels, order.find(letter) if letter else len(order)

    return str(max(sizes, key=rank)["url"])


def owner_name(owner: int) -> str:
    """A wall's owner as VK writes it in links: id123 for a person, club123 for a community."""
    return f"club{-owner}" if owner < 0 else f"id{owner}"


def wall_line(post: Mapping[str, Any], depth: int = 0) -> str:
    """A shared wall post: its link, its text quoted, and the posts it reposts
    (`copy_history`), each with its own link and text."""
    owner = as_int(post.get("owner_id")) or as_int(post.get("to_id")) or as_int(post.get("from_id")) or 0
    line = f"Shared post https://vk.com/wall{owner}_{post.get('id', '')}"
    text = as_text(post.get("text"))
    if text:
        line += "\n" + "\n".join(quote([text]))
    for attachment in as_list(post.get("attachments")):
        if isinstance(attachment, dict) and attachment.get("type") != "wall":
            line += "\n" + "\n".join(quote([label(attachment)]))
    for copied in as_list(post.get("copy_history"))[:QUOTE_DEPTH]:
        if not isinstance(copied, dict):
            continue
        source = as_int(copied.get("owner_id")) or as_int(copied.get("from_id")) or 0
        link = f"https://vk.com/wall{source}_{copied.get('id', '')}"
        inner = [f"Reposted from {owner_name(source)} ({link}):"]
        copied_text = as_text(copied.get("text"))
        if copied_text:
            inner += quote([copied_text])
        inner += quote([label(a) for a in as_list(copied.get("attachments"))])
        line += "\n" + "\n".join(quote(inner))
    return line


def geo_line(geo: Any) -> str:
    """A shared place (`geo`): "Location: title (lat, long)", as much as VK gave."""
    geo = as_dict(geo)
    spot = as_dict(geo.get("place"))
    coordinates = geo.get("coordinates")
    if isinstance(coordinates, dict):
        latitude, longitude = coordinates.get("latitude"), coordinates.get("longitude")
    elif isinstance(coordinates, str) and len(coordinates.split()) == 2:  # old API versions: "59.93 30.33"
        latitude, longitude = coordinates.split()
    else:
        latitude, longitude = spot.get("latitude"), spot.get("longitude")
    where = place(latitude, longitude) if latitude is not None or longitude is not None else ""
    title = ", ".join(as_text(spot.get(key)) for key in ("title", "address") if as_text(spot.get(key)))
    if title and where:
        return f"Location: {title} ({where})"
    return f"Location: {title or where or 'unknown place'}"


def label(attachment: Any) -> str:
    """A short readable stand-in for an attachment in a quote, or for kinds we do not fetch."""
    if not isinstance(attachment, dict):
        return "[attachment]"
    kind = str(attachment.get("type") or "attachment")
    item = attachment.get(kind) if isinstance(attachment.get(kind), dict) else {}
    if kind == "wall":
        return wall_line(item)
    if kind == "wall_reply":
        return f"[comment] {as_text(item.get('text'))}".strip()
    if kind == "link":
        return f"[link] {item.get('title') or ''} {item.get('url') or ''}".replace("  ", " ").strip()
    if kind == "audio":
        return f"[audio] {item.get('artist') or ''} – {item.get('title') or ''}".strip(" –")
    if kind == "audio_message":
        return f"[voice message, {duration(item.get('duration'))}]"
    if kind == "poll":
        return f"[poll] {item.get('question') or ''}".strip()
    if kind in ("video", "market", "doc", "article", "market_album"):
        shown = {"market": "product", "doc": "file", "market_album": "product collection"}.get(kind, kind)
        return f"[{shown}] {item.get('title') or ''}".strip()
    if kind == "gift":
        return "[gift]"
    return f"[{kind.replace('_', ' ')}]"


def quote(lines: Sequence[str]) -> list[str]:
    """Lines quoted with "> ", each line of a multi-line text on its own."""
    return ["> " + line if line else ">" for text in lines for line in text.split("\n")]


def duration(seconds: Any) -> str:
    total = as_int(seconds) or 0
    return f"{total // 60}:{total % 60:02d}"


class ContentReader:
    """Reads message objects into `Content`; `who` names a sender id, `download` fetches a file."""

    def __init__(self, who: Callable[[Any], str], download: Downloader):
        self.who = who
        self.download = download

    async def read(self, message: Mapping[str, Any], download: bool) -> Content:
        """Body lines (quote, text, place, things that are not files, forwards) and files."""
        content = Content()
        reply = message.get("reply_message")
        if isinstance(reply, dict):
            quoted = await self.quoted(reply, depth=1)
            content.lines.append(f"> {self.who(reply.get('from_id'))}:")
            content.lines.extend(quoted)
            content.kinds.append("reply")
        text = message.get("text")
        if isinstance(text, str) and text:
            content.lines.append(text)
        if isinstance(message.get("geo"), dict):
            content.lines.append(geo_line(message["geo"]))
            content.kinds.append("geo")
        for attachment in as_list(message.get("attachments")):
            line, file, kind = await self.attachment(attachment, download)
            if line:
                content.lines.append(line)
            if file is not None:
                content.attachments.append(file)
            if kind:
                content.kinds.append(kind)
        for forwarded in as_list(message.get("fwd_messages")):
            if not isinstance(forwarded, dict):
                continue
            content.kinds.append("forward")
            content.lines.append(f"Forwarded from {self.who(forwarded.get('from_id'))}:")
            inner = await self.read(forwarded, download)
            content.lines.extend(quote(inner.lines))
            content.attachments.extend(inner.attachments)
        return content

    async def quoted(self, message: Mapping[str, Any], depth: int) -> list[str]:
        """The quoted lines of a message replied to (no downloads: it is usually in history)."""
        lines: list[str] = []
        if isinstance(message.get("text"), str) and message["text"]:
            lines.append(message["text"])
        if isinstance(message.get("geo"), dict):
            lines.append(geo_line(message["geo"]))
        for attachment in as_list(message.get("attachments")):
            lines.append(label(attachment))
        if depth < QUOTE_DEPTH:
            for forwarded in as_list(message.get("fwd_messages")):
                if isinstance(forwarded, dict):
                    lines.append(f"Forwarded from {self.who(forwarded.get('from_id'))}:")
                    lines.extend(quote(await self.quoted(forwarded, depth + 1)))
        return quote(lines)

    async def attachment(self, attachment: Any, download: bool) -> tuple[str, InboundAttachment | None, str]:
        """(body line, file, kind) for one attachment; files are fetched when `download`."""
        if not isinstance(attachment, dict) or not isinstance(attachment.get(str(attachment.get("type"))), dict):
            return "[attachment omniconsole cannot read]", None, "unknown"
        kind = str(attachment["type"])
        item: dict[str, Any] = attachment[kind]
        if kind == "photo":
            url = largest_photo_url(item)
            name = f"photo{item.get('owner_id', '')}_{item.get('id', '')}.jpg"
            file = await self.download(url, name, "image/jpeg", None) if download else None
            return "", file, kind
        if kind == "doc":
            title = str(item.get("title") or "document")
            ext = str(item.get("ext") or "")
            name = title if not ext or title.lower().endswith(f".{ext.lower()}") else f"{title}.{ext}"
            mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
            file = await self.download(item.get("url"), name, mime, as_int(item.get("size"))) if download else None
            return "", file, kind
        if kind == "audio_message":
            link, suffix, mime = (
                (item.get("link_ogg"), ".ogg", "audio/ogg")
                if item.get("link_ogg")
                else (item.get("link_mp3"), ".mp3", "audio/mpeg")
            )
            name = f"voice{item.get('owner_id', '')}_{item.get('id', '')}{suffix}"
            file = await self.download(link, name, mime, None) if download else None
            transcript = item.get("transcript")
            line = f"[voice message, {duration(item.get('duration'))}]"
            if isinstance(transcript, str) and transcript:
                line += f" {transcript}"
            return line, file, kind
        if kind == "sticker":
            images = [image for image in as_list(item.get("images")) if isinstance(image, dict) and image.get("url")]
            file = None
            if images and download:
                largest = max(images, key=lambda image: (as_int(image.get("width")) or 0) * (as_int(image.get("height")) or 0))
                file = await self.download(largest["url"], f"sticker_{item.get('sticker_id', '')}.png", "image/png", None)
            return "[sticker]", file, kind
        if kind == "wall":
            return wall_line(item), None, kind
        return label(attachment), None, kind
