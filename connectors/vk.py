"""The VK channel: one community's messages, spoken to over VK's HTTP API with httpx.

Receiving is the Bots Long Poll API (no public URL needed): `groups.getLongPollServer` gives a
server, a key and a `ts`; `GET {server}?act=a_check&key=..&ts=..&wait=..` answers the events
after `ts` and the next `ts`. VK does not remember what we confirmed, so our position is the
cursor: the `ts` and the newest message id we have seen, committed with the messages they
cover (`sink.deliver`). A restart polls again from the committed `ts`, replaying rather than
losing; the core stores `(channel, external_id)` once.

When VK cannot serve our `ts` any more (`failed: 1`, or `failed: 3` with a new key) the events
in between are gone from the long poll, so the connector reads what arrived meanwhile from the
message history (`messages.getConversations` + `messages.getHistory`, every inbound message
newer than the last id seen). What it cannot recover is said in the channel's status.

Sending is `messages.send` with a `random_id` derived from our message id: VK drops a second
message with the same `random_id` to the same peer (within an hour), so a retry after a crash
or a timeout cannot post twice.

External ids are VK message ids (`id`), which are unique within a community's messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path
from typing import Any, TypeVar

import httpx

from connectors.base import (
    ChannelContext,
    Connector,
    ConnectorError,
    InboundAttachment,
    InboundMessage,
    InboundSink,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
)
from connectors.text import split_text as _split_text
from omniconsole.models import IdentityKind, sanitize_text

DEFAULT_API_URL = "https://api.vk.com/method"
DEFAULT_API_VERSION = "5.199"
#: VK refuses messages longer than this (we count UTF-16 code units, never more than VK counts).
TEXT_LIMIT = 4096
#: At most this many attachments go with one message.
ATTACHMENTS_PER_MESSAGE = 10
#: VK takes photos up to 50 MB; larger images go as documents (up to 200 MB).
PHOTO_UPLOAD_LIMIT = 50 * 1024 * 1024
DOC_UPLOAD_LIMIT = 200 * 1024 * 1024
TOO_LARGE = "not downloaded: too large"
#: Peer ids from this number up are group chats, not a customer's private conversation.
CHAT_PEER_BASE = 2_000_000_000

_PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif"}
# Events that are not something a customer said: confirmed with the batch, never stored.
_SKIPPED_EVENTS = {
    "message_reply",  # our own (or a community admin's) message
    "message_allow",
    "message_deny",
    "message_typing_state",
    "message_read",
    "message_event",
}
# How much history a gap recovery reads before it says what it could not recover.
_RECOVERY_PAGE = 200
_RECOVERY_CONVERSATION_PAGES = 5
_RECOVERY_HISTORY_PAGES = 5
# A file whose download fails transiently this often is recorded with a note instead of
# holding the whole channel back forever.
_DOWNLOAD_ATTEMPTS = 3
# Long-poll answers that are not JSON in a row before the channel reports a fault.
_MALFORMED_POLLS = 3
_QUOTE_DEPTH = 3

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Position:
    """Where we are in the community's events: the long-poll `ts` and the newest inbound
    message id already delivered (what a gap recovery reads from). Serialised as the cursor."""

    ts: str
    last_id: int

    def dump(self) -> str:
        return json.dumps({"ts": self.ts, "last_id": self.last_id}, separators=(",", ":"))

    @classmethod
    def parse(cls, cursor: str | None) -> _Position | None:
        if not cursor:
            return None
        try:
            raw = json.loads(cursor)
            return cls(ts=str(raw["ts"]), last_id=int(raw["last_id"]))
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(slots=True)
class _LongPollServer:
    server: str
    key: str
    ts: str


@dataclass(slots=True)
class _Content:
    """What a message says, as we keep it: body lines and downloaded files."""

    lines: list[str] = field(default_factory=list)
    attachments: list[InboundAttachment] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)


class VkConnector(Connector):
    """A VK community's messages: private conversations in, replies out.

    Settings: `token` (a community access token, from `token_env`/`token_file`), `group_id`
    (the community's number; learned from the token when left out), `api_url`, `api_version`,
    `poll_wait` (long-poll seconds, default 25), `max_file_mb` (default 20).
    """

    kind = "vk"
    identity_kind = IdentityKind.VK

    def __init__(self, context: ChannelContext):
        super().__init__(context)
        settings = context.settings
        self.token = str(settings.get("token") or "").strip()
        if not self.token:
            raise PermanentError(
                "no VK community token: set token_env (or token_file) to where the community access token is "
                "(community → Manage → API usage → Access tokens)"
            )
        self.api_url = str(settings.get("api_url") or DEFAULT_API_URL).rstrip("/")
        if not self.api_url.startswith(("https://", "http://")):
            raise PermanentError(f"api_url must be an http(s) URL, not {self.api_url!r}")
        self.api_version = str(settings.get("api_version") or DEFAULT_API_VERSION)
        raw_group = settings.get("group_id")
        self.group_id: int | None = None
        if raw_group not in (None, ""):
            text = str(raw_group).strip().removeprefix("club").removeprefix("public").removeprefix("-")
            if not text.isdigit() or int(text) == 0:
                raise PermanentError(f"group_id must be the community's number (like 123456), not {raw_group!r}")
            self.group_id = int(text)
        try:
            self.poll_wait = max(0, min(90, round(float(settings.get("poll_wait", 25)))))
            self.max_file_bytes = int(float(settings.get("max_file_mb", 20)) * 1024 * 1024)
        except (TypeError, ValueError):
            raise PermanentError("poll_wait and max_file_mb must be numbers") from None
        self.community_name = ""
        self._client: httpx.AsyncClient | None = None
        self._names: dict[int, str] = {}
        self._screen_names: dict[int, str] = {}
        # Ids read from the history in the last gap recovery: the long poll may still bring
        # some of them, and they are not news twice.
        self._recovered: set[int] = set()
        self._download_failures: dict[str, int] = {}
        # Attachments uploaded for an outbound message whose send failed, so a retry in this
        # process does not upload them again (random_id already keeps the message single).
        self._uploaded: dict[tuple[int, Path], str] = {}
        # A rejected token seen by `send` stops the receive loop too, with the same reason.
        self._fatal: PermanentError | None = None
        self._fatal_event = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=True)
        return self._client

    async def close(self) -> None:
        """Close the HTTP connections."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def check(self) -> str:
        """groups.getById: "community «Name» (club123)" when the token works."""
        return await self._community()

    async def _community(self) -> str:
        """Learn the community's name (and number, if the config left it out)."""
        params = {"group_id": self.group_id} if self.group_id else {}
        answer = await self._call("groups.getById", params, "checking the community")
        groups = answer.get("groups") if isinstance(answer, dict) else answer
        if not groups or not isinstance(groups, list) or not isinstance(groups[0], dict):
            raise PermanentError("VK did not describe the community; is group_id right?")
        group = groups[0]
        self.group_id = int(group.get("id") or self.group_id or 0)
        # The name goes to the status bar: no terminal escapes from a remote server.
        self.community_name = sanitize_text(str(group.get("name") or ""))
        return f"community «{self.community_name}» (club{self.group_id})"

    # -- calls -----------------------------------------------------------------------------

    async def _call(self, method: str, params: Mapping[str, Any], doing: str) -> Any:
        """One API method; returns `response` or raises our error with VK's reason in words."""
        data = {key: str(value) for key, value in params.items() if value is not None}
        data["access_token"] = self.token
        data["v"] = self.api_version
        try:
            answer = await self.client.post(f"{self.api_url}/{method}", data=data)
        except httpx.TimeoutException:
            raise TransientError(f"VK did not answer in time while {doing}") from None
        except httpx.HTTPError as exc:
            raise TransientError(f"the VK API at {self.api_url} is unavailable while {doing}: {_describe(exc)}") from None
        if answer.status_code != 200:
            raise TransientError(f"the VK API at {self.api_url} is unavailable while {doing}: HTTP {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            raise TransientError(f"VK answered with something that is not JSON while {doing}") from None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            raise self._error(body["error"], method, doing)
        if not isinstance(body, dict) or "response" not in body:
            raise TransientError(f"VK gave an answer without a response while {doing}")
        return body["response"]

    def _error(self, error: Mapping[str, Any], method: str, doing: str) -> ConnectorError:
        """A VK error object as our taxonomy, with a sentence an operator can act on."""
        try:
            code = int(error.get("error_code"))
        except (TypeError, ValueError):
            code = 0
        said = str(error.get("error_msg") or "").replace(self.token, "<token>")
        if code == 5:
            reason = (
                f"VK rejected the community access token ({said}); make a new one in the community's "
                "settings (Manage → API usage) and put it where token_env/token_file points"
            )
            self._fatal = PermanentError(reason)
            self._fatal_event.set()
            return self._fatal
        transient = {
            1: (f"VK had an unknown error while {doing}", None),
            6: (f"VK says too many requests per second while {doing}", 1.0),
            9: (f"VK's flood control refused {doing}: too many similar requests", 10.0),
            10: (f"VK had an internal error while {doing}", None),
            29: (f"VK's rate limit for {method} is reached", 600.0),
        }
        if code in transient:
            reason, wait = transient[code]
            return TransientError(reason, retry_after=wait)
        permanent = {
            7: f"the community token has no permission for {method} (allow it community messages, photos and documents)",
            15: f"VK denied access while {doing}: {said}",
            18: "the customer's VK page was deleted or banned",
            27: f"VK refused {method} for a community token",
            100: f"VK rejected a parameter while {doing}: {said}",
            113: "VK knows no such user",
            900: "the customer has blocked the community (it is on their blacklist)",
            901: "the customer has not allowed messages from the community",
            902: "the customer's privacy settings do not allow messages from the community",
            914: "the message is too long for VK",
            917: "the community has no access to this conversation",
        }
        if code in permanent:
            return PermanentError(permanent[code])
        return PermanentError(f"VK refused {doing}: error {code}: {said}")

    async def _interruptible(self, work: Awaitable[_T]) -> _T:
        """Await `work` unless the token is rejected meanwhile (seen by a send)."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._fatal_event.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (task, stop):
                if not pending.done():
                    pending.cancel()
            await asyncio.gather(task, stop, return_exceptions=True)
        if task.cancelled() or not task.done():
            assert self._fatal is not None
            raise self._fatal
        return task.result()

    # -- receiving -------------------------------------------------------------------------

    async def run(self, sink: InboundSink) -> None:
        """Long-poll the community's events forever, delivering each answer's messages with
        the position that covers them."""
        self._fatal, self._recovered = None, set()
        self._fatal_event.clear()
        community = await self._community()
        server = await self._long_poll_server()
        # Resume from the committed cursor, never from memory: after a failed delivery the
        # position we last polled from may cover events the core did not store.
        position = _Position.parse(sink.cursor)
        if position is None:
            if sink.cursor:
                self.log.warning("vk: the stored cursor %r is unreadable; starting from now", sink.cursor)
            # VK keeps no position for us, so the first start commits one at once: messages
            # that arrive before the core's next start are then replayed, not skipped.
            position = _Position(server.ts, await self._newest_message_id())
            await sink.deliver([], position.dump())
        sink.connected(community)
        malformed = 0
        while True:
            if self._fatal is not None:
                raise self._fatal
            answer = await self._interruptible(self._poll(server, position.ts))
            if answer is None or not _well_formed(answer):
                malformed += 1
                self.log.warning("vk: the long poll server gave an unreadable answer: %.200r", answer)
                if malformed >= _MALFORMED_POLLS:
                    raise TransientError(f"VK's long poll server gave {malformed} unreadable answers in a row")
                continue
            malformed = 0
            failed = answer.get("failed")
            if failed == 1:
                # Our ts is older than VK's event history: go on from the new ts, and read what
                # the events in between said from the message history.
                position = await self._recover(sink, position, str(answer["ts"]))
            elif failed == 2:
                server = await self._long_poll_server()  # the key expired; our ts is still good
            elif failed is not None:
                # failed 3 (or a value VK has not documented): key and ts are both gone.
                self.log.info("vk: long poll answered failed=%s; taking a new key and ts", failed)
                server = await self._long_poll_server()
                position = await self._recover(sink, position, server.ts)
            elif answer["updates"]:
                position = await self._deliver(answer["updates"], str(answer["ts"]), position, sink)
            elif str(answer["ts"]) != position.ts:
                position = _Position(str(answer["ts"]), position.last_id)

    async def _long_poll_server(self) -> _LongPollServer:
        answer = await self._call("groups.getLongPollServer", {"group_id": self.group_id}, "starting the long poll")
        try:
            server = str(answer["server"])
            if "://" not in server:
                server = "https://" + server
            return _LongPollServer(server, str(answer["key"]), str(answer["ts"]))
        except (KeyError, TypeError):
            raise TransientError("VK's groups.getLongPollServer answer has no server, key and ts") from None

    async def _poll(self, server: _LongPollServer, ts: str) -> dict[str, Any] | None:
        """One long poll; None when the answer is not a JSON object."""
        params = {"act": "a_check", "key": server.key, "ts": ts, "wait": self.poll_wait}
        try:
            answer = await self.client.get(server.server, params=params, timeout=httpx.Timeout(self.poll_wait + 15.0, connect=10.0))
        except httpx.TimeoutException:
            raise TransientError("VK's long poll server did not answer in time") from None
        except httpx.HTTPError as exc:
            raise TransientError(f"VK's long poll server is unavailable: {_describe(exc)}") from None
        if answer.status_code != 200:
            raise TransientError(f"VK's long poll server is unavailable: HTTP {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _newest_message_id(self) -> int:
        """The id of the newest message in the community's conversations (0 when none)."""
        answer = await self._call("messages.getConversations", {"count": 1, "filter": "all"}, "reading the conversations")
        for item in _items(answer):
            return _last_message_id(item)
        return 0

    async def _deliver(self, updates: Sequence[Any], ts: str, position: _Position, sink: InboundSink) -> _Position:
        """Convert one answer's events and deliver them with the position after them.

        Every event, skipped ones included, is covered by the delivered cursor."""
        taken: list[tuple[dict[str, Any], bool]] = []
        for update in updates:
            message, edited = self._message_of(update)
            if message is None:
                continue
            if not edited and message["id"] in self._recovered:
                continue  # already read from the history during a gap recovery
            taken.append((message, edited))
        batch = await self._convert(taken)
        last_id = max([position.last_id] + [message["id"] for message, edited in taken if not edited])
        after = _Position(ts, last_id)
        await sink.deliver(batch, after.dump())
        return after

    def _message_of(self, update: Any) -> tuple[dict[str, Any] | None, bool]:
        """The customer's message an event carries (and whether it is an edit), or None."""
        if not isinstance(update, dict) or not isinstance(update.get("object"), dict):
            self.log.warning("vk: skipping an unreadable event: %.200r", update)
            return None, False
        kind, payload = update.get("type"), update["object"]
        if kind == "message_new":
            # Long poll API 5.103+ wraps the message with client_info; older versions do not.
            message = payload.get("message") if isinstance(payload.get("message"), dict) else payload
            edited = False
        elif kind == "message_edit":
            message, edited = payload, True
        elif kind in _SKIPPED_EVENTS:
            return None, False
        else:
            self.log.info("vk: skipping an event of a kind omniconsole does not take: %.60r", kind)
            return None, False
        if not _is_message(message):
            self.log.warning("vk: skipping a %s event without a readable message: %.200r", kind, payload)
            return None, False
        if message["from_id"] <= 0 or message["peer_id"] != message["from_id"]:
            # The community's own messages, and group chats: not a customer's private message.
            return None, False
        return message, edited

    async def _convert(self, taken: Sequence[tuple[dict[str, Any], bool]]) -> list[InboundMessage]:
        await self._learn_names(_people(message for message, _ in taken))
        return [await self._inbound(message, edited) for message, edited in taken]

    async def _inbound(self, message: dict[str, Any], edited: bool) -> InboundMessage:
        """The InboundMessage for one VK message object."""
        # An edit only replaces the stored text, so its files are not fetched again.
        content = await self._content(message, download=not edited)
        reply = message.get("reply_message")
        reply_to = None
        if isinstance(reply, dict) and _int(reply.get("id")):
            reply_to = str(reply["id"])
        sender = message["from_id"]
        meta: dict[str, Any] = {"peer_id": message["peer_id"], "message_id": message["id"]}
        if content.kinds:
            meta["kinds"] = content.kinds
        if sender in self._screen_names:
            meta["screen_name"] = self._screen_names[sender]
        edited_at = None
        if edited:
            edited_at = _time(message.get("update_time")) or datetime.now(UTC)
        return InboundMessage(
            external_id=str(message["id"]),
            identity_kind=IdentityKind.VK,
            address=str(sender),
            body="\n".join(content.lines),
            sent_at=_time(message.get("date")) or datetime.now(UTC),
            sender_name=self._names.get(sender, ""),
            reply_to_external_id=reply_to,
            attachments=tuple(content.attachments),
            edited_at=edited_at,
            meta=meta,
        )

    async def _content(self, message: Mapping[str, Any], download: bool) -> _Content:
        """Body lines (quote, text, things that are not files, forwards) and files."""
        content = _Content()
        reply = message.get("reply_message")
        if isinstance(reply, dict):
            quoted = await self._quoted(reply, depth=1)
            content.lines.append(f"> {self._who(reply.get('from_id'))}:")
            content.lines.extend(quoted)
            content.kinds.append("reply")
        text = message.get("text")
        if isinstance(text, str) and text:
            content.lines.append(text)
        for attachment in _list(message.get("attachments")):
            line, file, kind = await self._attachment(attachment, download)
            if line:
                content.lines.append(line)
            if file is not None:
                content.attachments.append(file)
            if kind:
                content.kinds.append(kind)
        for forwarded in _list(message.get("fwd_messages")):
            if not isinstance(forwarded, dict):
                continue
            content.kinds.append("forward")
            content.lines.append(f"Forwarded from {self._who(forwarded.get('from_id'))}:")
            inner = await self._content(forwarded, download)
            content.lines.extend(_quote(inner.lines))
            content.attachments.extend(inner.attachments)
        return content

    async def _quoted(self, message: Mapping[str, Any], depth: int) -> list[str]:
        """The quoted lines of a message replied to (no downloads: it is usually in history)."""
        lines: list[str] = []
        if isinstance(message.get("text"), str) and message["text"]:
            lines.append(message["text"])
        for attachment in _list(message.get("attachments")):
            lines.append(_label(attachment))
        if depth < _QUOTE_DEPTH:
            for forwarded in _list(message.get("fwd_messages")):
                if isinstance(forwarded, dict):
                    lines.append(f"Forwarded from {self._who(forwarded.get('from_id'))}:")
                    lines.extend(_quote(await self._quoted(forwarded, depth + 1)))
        return _quote(lines)

    async def _attachment(self, attachment: Any, download: bool) -> tuple[str, InboundAttachment | None, str]:
        """(body line, file, kind) for one attachment; files are fetched when `download`."""
        if not isinstance(attachment, dict) or not isinstance(attachment.get(str(attachment.get("type"))), dict):
            return "[attachment omniconsole cannot read]", None, "unknown"
        kind = str(attachment["type"])
        item: dict[str, Any] = attachment[kind]
        if kind == "photo":
            url = _largest_photo_url(item)
            name = f"photo{item.get('owner_id', '')}_{item.get('id', '')}.jpg"
            file = await self._download(url, name, "image/jpeg", None) if download else None
            return "", file, kind
        if kind == "doc":
            title = str(item.get("title") or "document")
            ext = str(item.get("ext") or "")
            name = title if not ext or title.lower().endswith(f".{ext.lower()}") else f"{title}.{ext}"
            mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
            file = await self._download(item.get("url"), name, mime, _int(item.get("size"))) if download else None
            return "", file, kind
        if kind == "audio_message":
            link, suffix, mime = (
                (item.get("link_ogg"), ".ogg", "audio/ogg") if item.get("link_ogg") else (item.get("link_mp3"), ".mp3", "audio/mpeg")
            )
            name = f"voice{item.get('owner_id', '')}_{item.get('id', '')}{suffix}"
            file = await self._download(link, name, mime, None) if download else None
            transcript = item.get("transcript")
            line = f"[voice message, {_duration(item.get('duration'))}]"
            if isinstance(transcript, str) and transcript:
                line += f" {transcript}"
            return line, file, kind
        if kind == "sticker":
            images = [image for image in _list(item.get("images")) if isinstance(image, dict) and image.get("url")]
            file = None
            if images and download:
                largest = max(images, key=lambda image: (_int(image.get("width")) or 0) * (_int(image.get("height")) or 0))
                file = await self._download(largest["url"], f"sticker_{item.get('sticker_id', '')}.png", "image/png", None)
            return "[sticker]", file, kind
        if kind == "wall":
            return _wall_line(item), None, kind
        return _label(attachment), None, kind

    async def _download(self, url: Any, filename: str, mime_type: str, declared: int | None) -> InboundAttachment:
        """Fetch one file unless it is over the size cap. A refusal becomes a note; a network
        fault a TransientError (nothing is committed, the events come again), until the same
        file has failed a few times."""
        if declared is not None and declared > self.max_file_bytes:
            return InboundAttachment(filename, mime_type, None, declared, TOO_LARGE)
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            return InboundAttachment(filename, mime_type, None, declared, "not downloaded: VK gave no link to the file")
        try:
            async with self.client.stream("GET", url) as answer:
                if answer.status_code >= 500:
                    return self._download_failed(url, filename, mime_type, declared, f"HTTP {answer.status_code}")
                if answer.status_code != 200:
                    return InboundAttachment(filename, mime_type, None, declared, f"not downloaded: VK answered HTTP {answer.status_code}")
                length = _int(answer.headers.get("Content-Length"))
                if length is not None and length > self.max_file_bytes:
                    return InboundAttachment(filename, mime_type, None, length, TOO_LARGE)
                chunks, size = [], 0
                async for chunk in answer.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_file_bytes:
                        return InboundAttachment(filename, mime_type, None, declared or length, TOO_LARGE)
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            return self._download_failed(url, filename, mime_type, declared, _describe(exc))
        self._download_failures.pop(url, None)
        data = b"".join(chunks)
        return InboundAttachment(filename, mime_type, data, len(data))

    def _download_failed(self, url: str, filename: str, mime_type: str, declared: int | None, why: str) -> InboundAttachment:
        failures = self._download_failures.get(url, 0) + 1
        self._download_failures[url] = failures
        if failures < _DOWNLOAD_ATTEMPTS:
            raise TransientError(f"downloading {filename} from VK failed: {why}")
        self._download_failures.pop(url, None)
        return InboundAttachment(filename, mime_type, None, declared, f"not downloaded: VK's file server failed {failures} times ({why})")

    async def _learn_names(self, people: Iterable[int]) -> None:
        """Ask users.get once for every sender not yet known (names are cached)."""
        unknown = sorted({person for person in people if person > 0 and person not in self._names})
        for start in range(0, len(unknown), 1000):
            chunk = unknown[start : start + 1000]
            try:
                users = await self._call(
                    "users.get", {"user_ids": ",".join(map(str, chunk)), "fields": "screen_name"}, "reading the customers' names"
                )
            except ConnectorError as exc:
                # A name is a nicety: the messages go in without it, and the next batch asks again.
                self.log.warning("vk: could not read names of %d senders: %s", len(chunk), exc.reason)
                return
            for person in _list(users):
                if isinstance(person, dict) and _int(person.get("id")):
                    name = " ".join(str(person.get(key) or "") for key in ("first_name", "last_name")).strip()
                    self._names[int(person["id"])] = name
                    if person.get("screen_name"):
                        self._screen_names[int(person["id"])] = str(person["screen_name"])

    def _who(self, sender: Any) -> str:
        number = _int(sender) or 0
        if number > 0:
            return self._names.get(number) or f"id{number}"
        if number < 0 and -number == self.group_id and self.community_name:
            return self.community_name
        return f"club{-number}" if number < 0 else "someone"

    # -- gap recovery ----------------------------------------------------------------------

    async def _recover(self, sink: InboundSink, position: _Position, new_ts: str) -> _Position:
        """Read the inbound messages newer than `position.last_id` from the history, deliver
        them with the new ts, and say plainly what could not be read."""
        self.log.warning("vk: VK lost the events after ts %s; reading newer messages than %s from the history", position.ts, position.last_id)
        try:
            messages, missing = await self._history_since(position.last_id)
        except TransientError:
            raise  # the committed ts is unchanged: the next run recovers again
        except PermanentError as exc:
            if self._fatal is not None:
                raise  # the token itself was refused: keep the gap for after it is replaced
            messages, missing = [], f"VK refused to show the message history: {exc.reason}"
        messages = [message for message in messages if _is_message(message) and message["from_id"] == message["peer_id"] > 0]
        messages.sort(key=lambda message: message["id"])
        # Delivered in chunks, each with its files: a long gap must not hold every file in
        # memory at once. Until the last chunk the cursor keeps the old ts, so a crash midway
        # asks VK again, gets "failed 1" again and goes on from the last message stored.
        last_id = position.last_id
        for start in range(0, max(1, len(messages)), _RECOVERY_CHUNK):
            part = messages[start : start + _RECOVERY_CHUNK]
            batch = await self._convert([(message, False) for message in part])
            last_id = max([last_id] + [message["id"] for message in part])
            final = start + _RECOVERY_CHUNK >= len(messages)
            await sink.deliver(batch, _Position(new_ts if final else position.ts, last_id).dump())
        after = _Position(new_ts, last_id)
        self._recovered = {message["id"] for message in messages}
        if missing:
            reason = f"VK lost its event history for a while; {missing}. Check the community's messages in VK for anything unanswered"
            self.log.warning("vk: %s", reason)
            sink.connected(f"community «{self.community_name}» (club{self.group_id}); {reason}")
        elif messages:
            self.log.info("vk: recovered %d messages from the history", len(messages))
        return after

    async def _history_since(self, last_id: int) -> tuple[list[dict[str, Any]], str]:
        """Every message newer than `last_id` in the conversations with newer messages, and a
        sentence about what was left unread ("" when nothing was)."""
        peers: list[int] = []
        complete = False
        for page in range(_RECOVERY_CONVERSATION_PAGES):
            answer = await self._call(
                "messages.getConversations",
                {"offset": page * _RECOVERY_PAGE, "count": _RECOVERY_PAGE, "filter": "all"},
                "reading the conversations",
            )
            items = _items(answer)
            for item in items:
                # Conversations come newest first: the first one without news ends the search.
                if _last_message_id(item) <= last_id:
                    complete = True
                    break
                peer = _int(item.get("conversation", {}).get("peer", {}).get("id"))
                if peer and 0 < peer < CHAT_PEER_BASE:
                    peers.append(peer)
            if complete or len(items) < _RECOVERY_PAGE:
                complete = True
                break
        missing: list[str] = []
        if not complete:
            missing.append(f"more than {len(peers)} conversations had news, older ones were not read")
        messages: list[dict[str, Any]] = []
        for peer in peers:
            done = False
            for page in range(_RECOVERY_HISTORY_PAGES):
                answer = await self._call(
                    "messages.getHistory",
                    {"peer_id": peer, "offset": page * _RECOVERY_PAGE, "count": _RECOVERY_PAGE},
                    "reading the message history",
                )
                items = _items(answer)
                for message in items:  # newest first
                    if _int(message.get("id")) is None or message["id"] <= last_id:
                        done = True
                        break
                    messages.append(message)
                if done or len(items) < _RECOVERY_PAGE:
                    done = True
                    break
            if not done:
                missing.append(f"id{peer} wrote more than {_RECOVERY_PAGE * _RECOVERY_HISTORY_PAGES} messages, older ones were not read")
        return messages, "; ".join(missing)

    # -- sending ---------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send text (split at 4,096) and files (photos as photos, the rest as documents);
        each VK message gets a random_id derived from our id, so a retry never posts twice."""
        peer_id = _peer_id(message)
        parts = split_text(message.body or "")
        files = list(message.attachments)
        if not parts and not files:
            raise PermanentError("nothing to send: the message has no text and no files")
        try:
            uploaded = [await self._upload(message.id, peer_id, path) for path in files]
            groups = [uploaded[i : i + ATTACHMENTS_PER_MESSAGE] for i in range(0, len(uploaded), ATTACHMENTS_PER_MESSAGE)]
            sent: list[int] = []
            for number, (text, attachments) in enumerate(zip_longest(parts, groups, fillvalue=None)):
                params: dict[str, Any] = {"peer_id": peer_id, "random_id": random_id(message.id, number), "message": text or ""}
                if attachments:
                    params["attachment"] = ",".join(attachments)
                if number == 0 and message.reply_to_external_id and message.reply_to_external_id.isdigit():
                    params["reply_to"] = message.reply_to_external_id
                answer = await self._call("messages.send", params, "sending")
                sent_id = _int(answer.get("message_id") if isinstance(answer, dict) else answer)
                if sent_id is None:
                    raise TransientError("VK accepted the message but did not say its id")
                sent.append(sent_id)
        except PermanentError:
            self._forget_uploads(message.id)
            raise
        self._forget_uploads(message.id)
        if len(sent) > 1:
            self.log.debug("vk message %s went out as %s", message.id, sent)
        return SendResult(external_id=str(sent[0]))

    def _forget_uploads(self, message_id: int) -> None:
        for key in [key for key in self._uploaded if key[0] == message_id]:
            del self._uploaded[key]

    async def _upload(self, message_id: int, peer_id: int, path: Path) -> str:
        """Upload one file for a message to `peer_id`; returns its attachment string."""
        if (message_id, path) in self._uploaded:
            return self._uploaded[(message_id, path)]
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise PermanentError(f"cannot read the attachment {path.name}: {exc.strerror or exc}") from exc
        if path.suffix.lower() in _PHOTO_SUFFIXES and len(data) <= PHOTO_UPLOAD_LIMIT:
            attachment = await self._upload_photo(peer_id, path.name, data)
        elif len(data) <= DOC_UPLOAD_LIMIT:
            attachment = await self._upload_doc(peer_id, path.name, data)
        else:
            raise PermanentError(f"{path.name} is larger than VK's 200 MB limit for documents")
        self._uploaded[(message_id, path)] = attachment
        return attachment

    async def _upload_photo(self, peer_id: int, name: str, data: bytes) -> str:
        server = await self._call("photos.getMessagesUploadServer", {"peer_id": peer_id}, f"preparing to upload {name}")
        uploaded = await self._post_file(_field(server, "upload_url", name), "photo", name, data)
        if not uploaded.get("photo") or uploaded.get("photo") == "[]":
            raise PermanentError(f"VK did not accept the image {name}: {uploaded.get('error') or 'no photo in its answer'}")
        saved = await self._call(
            "photos.saveMessagesPhoto",
            {"server": uploaded.get("server"), "photo": uploaded["photo"], "hash": uploaded.get("hash")},
            f"saving the image {name}",
        )
        photos = _list(saved)
        if not photos or not isinstance(photos[0], dict):
            raise TransientError(f"VK did not describe the saved image {name}")
        photo = photos[0]
        attachment = f"photo{photo.get('owner_id')}_{photo.get('id')}"
        return f"{attachment}_{photo['access_key']}" if photo.get("access_key") else attachment

    async def _upload_doc(self, peer_id: int, name: str, data: bytes) -> str:
        server = await self._call(
            "docs.getMessagesUploadServer", {"type": "doc", "peer_id": peer_id}, f"preparing to upload {name}"
        )
        uploaded = await self._post_file(_field(server, "upload_url", name), "file", name, data)
        if not uploaded.get("file"):
            raise PermanentError(f"VK did not accept the file {name}: {uploaded.get('error') or 'no file in its answer'}")
        saved = await self._call("docs.save", {"file": uploaded["file"], "title": name}, f"saving the file {name}")
        doc = saved.get("doc") if isinstance(saved, dict) else None
        if doc is None and isinstance(saved, list) and saved and isinstance(saved[0], dict):
            doc = saved[0]  # API versions before 5.103 answered a list of documents
        if not isinstance(doc, dict):
            raise TransientError(f"VK did not describe the saved file {name}")
        attachment = f"doc{doc.get('owner_id')}_{doc.get('id')}"
        return f"{attachment}_{doc['access_key']}" if doc.get("access_key") else attachment

    async def _post_file(self, url: str, field_name: str, name: str, data: bytes) -> dict[str, Any]:
        """POST a file to a VK upload server as multipart form data."""
        try:
            answer = await self.client.post(url, files={field_name: (name, data)}, timeout=httpx.Timeout(120.0, connect=10.0))
        except httpx.TimeoutException:
            raise TransientError(f"VK's upload server did not answer in time for {name}") from None
        except httpx.HTTPError as exc:
            raise TransientError(f"VK's upload server is unavailable for {name}: {_describe(exc)}") from None
        if answer.status_code != 200:
            raise TransientError(f"VK's upload server is unavailable for {name}: HTTP {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            raise TransientError(f"VK's upload server answered {name} with something that is not JSON") from None
        if not isinstance(body, dict):
            raise TransientError(f"VK's upload server gave an unreadable answer for {name}")
        return body


# -- helpers -------------------------------------------------------------------------------


def random_id(message_id: int, part: int = 0) -> int:
    """The `random_id` of part `part` of our outbound message `message_id`: the same on every
    retry, different for every part, a positive int32 as VK wants."""
    digest = hashlib.sha256(f"omniconsole:{message_id}:{part}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF or 1





def _peer_id(message: OutboundMessage) -> int:
    peer = message.meta.get("peer_id") if message.meta else None
    if peer is None:
        peer = message.address
    number = _int(peer)
    if number is None or number == 0:
        raise PermanentError(f"{peer!r} is not a VK user id")
    return number


def _field(answer: Any, key: str, name: str) -> str:
    if not isinstance(answer, dict) or not answer.get(key):
        raise TransientError(f"VK gave no {key} for {name}")
    return str(answer[key])


def _well_formed(answer: dict[str, Any]) -> bool:
    """A long-poll answer we can act on: events and a ts, or `failed` (1 comes with a ts)."""
    if "failed" in answer:
        return answer["failed"] != 1 or answer.get("ts") not in (None, "")
    return answer.get("ts") not in (None, "") and isinstance(answer.get("updates"), list)


def _is_message(message: Any) -> bool:
    return isinstance(message, dict) and all(isinstance(message.get(key), int) for key in ("id", "from_id", "peer_id"))


def _people(messages: Iterable[Mapping[str, Any]]) -> set[int]:
    """Every user id a message names: sender, quoted and forwarded authors, at any depth."""
    found: set[int] = set()
    stack = list(messages)
    while stack:
        message = stack.pop()
        sender = _int(message.get("from_id"))
        if sender and sender > 0:
            found.add(sender)
        if isinstance(message.get("reply_message"), dict):
            stack.append(message["reply_message"])
        stack.extend(item for item in _list(message.get("fwd_messages")) if isinstance(item, dict))
    return found


def _items(answer: Any) -> list[dict[str, Any]]:
    items = answer.get("items") if isinstance(answer, dict) else None
    return [item for item in _list(items) if isinstance(item, dict)]


def _last_message_id(conversation: Mapping[str, Any]) -> int:
    last = conversation.get("last_message")
    if isinstance(last, dict) and _int(last.get("id")):
        return int(last["id"])
    inner = conversation.get("conversation")
    return (_int(inner.get("last_message_id")) or 0) if isinstance(inner, dict) else 0


def _largest_photo_url(photo: Mapping[str, Any]) -> str | None:
    """The biggest copy of a photo: by pixels, then by VK's size letters."""
    order = "smxopqryzw"
    sizes = [size for size in _list(photo.get("sizes")) if isinstance(size, dict) and size.get("url")]
    if isinstance(photo.get("orig_photo"), dict) and photo["orig_photo"].get("url"):
        sizes.append(photo["orig_photo"])
    if not sizes:
        return None

    def rank(size: Mapping[str, Any]) -> tuple[int, int]:
        pixels = (_int(size.get("width")) or 0) * (_int(size.get("height")) or 0)
        letter = str(size.get("type") or "")
        return pixels, order.find(letter) if letter else len(order)

    return str(max(sizes, key=rank)["url"])


def _wall_line(post: Mapping[str, Any]) -> str:
    owner = _int(post.get("owner_id")) or _int(post.get("to_id")) or _int(post.get("from_id")) or 0
    line = f"Shared post https://vk.com/wall{owner}_{post.get('id', '')}"
    text = post.get("text")
    if isinstance(text, str) and text:
        line += "\n" + "\n".join(_quote([text]))
    return line


def _label(attachment: Any) -> str:
    """A short readable stand-in for an attachment in a quote, or for kinds we do not fetch."""
    if not isinstance(attachment, dict):
        return "[attachment]"
    kind = str(attachment.get("type") or "attachment")
    item = attachment.get(kind) if isinstance(attachment.get(kind), dict) else {}
    if kind == "wall":
        return _wall_line(item)
    if kind == "link":
        return f"[link] {item.get('title') or ''} {item.get('url') or ''}".replace("  ", " ").strip()
    if kind == "audio":
        return f"[audio] {item.get('artist') or ''} – {item.get('title') or ''}".strip(" –")
    if kind == "audio_message":
        return f"[voice message, {_duration(item.get('duration'))}]"
    if kind == "poll":
        return f"[poll] {item.get('question') or ''}".strip()
    if kind in ("video", "market", "doc", "article"):
        shown = {"market": "product", "doc": "file"}.get(kind, kind)
        return f"[{shown}] {item.get('title') or ''}".strip()
    return f"[{kind.replace('_', ' ')}]"


def _quote(lines: Sequence[str]) -> list[str]:
    return ["> " + line if line else ">" for text in lines for line in text.split("\n")]


def _duration(seconds: Any) -> str:
    total = _int(seconds) or 0
    return f"{total // 60}:{total % 60:02d}"


_RECOVERY_CHUNK = 100  # recovered messages per delivery (see VkConnector._recover)


def _time(value: Any) -> datetime | None:
    seconds = _int(value)
    try:
        return datetime.fromtimestamp(seconds, UTC) if seconds else None
    except (OverflowError, OSError, ValueError):  # a date no clock can hold: the message stays, undated
        return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """The parts a long reply goes out in (see connectors.text.split_text)."""
    return _split_text(text, limit)
