"""The VK connector: one community's private messages in, replies out.

Receiving is the Bots Long Poll API (no public URL needed): `groups.getLongPollServer` gives a
server, a key and a `ts`; the long poll answers the events after `ts` and the next `ts`. VK
does not remember what we confirmed, so our position is the cursor (`recovery.Position`),
committed with the messages it covers (`sink.deliver`). A restart polls again from the committed
`ts`, replaying rather than losing; the core stores `(channel, external_id)` once. When VK loses
our `ts`, what arrived meanwhile is read from the message history (`recovery`).

A message that cannot be read or stored holds nothing up: it is repaired (text no database
takes) or kept as an unreadable message with its raw JSON, and the rest of the answer and the
cursor commit (`connectors.payload.deliver_isolated`).

Sending is `messages.send` with a `random_id` derived from our message id: VK drops a second
message with the same `random_id` to the same peer (within an hour), so a retry after a crash
or a timeout cannot post twice.

External ids are VK message ids (`id`), which are unique within a community's messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path
from typing import Any

import httpx

from connectors.base import (
    N_,
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
    Words,
    raise_if_cancelled,
)
from connectors.payload import as_int, as_list, deliver_isolated, describe, unreadable
from connectors.text import split_text as _split_text
from connectors.vk import content as reader
from connectors.vk.api import DEFAULT_API_URL, DEFAULT_API_VERSION, VkApi
from connectors.vk.recovery import CHAT_PEER_BASE, RECOVERY_CHUNK, Position, history_since, newest_message_id
from omniconsole.models import IdentityKind, sanitize_text

__all__ = [
    "CHAT_PEER_BASE",
    "DEFAULT_API_URL",
    "DEFAULT_API_VERSION",
    "TEXT_LIMIT",
    "TOO_LARGE",
    "VkConnector",
    "random_id",
    "split_text",
]

#: VK refuses messages longer than this (we count UTF-16 code units, never more than VK counts).
TEXT_LIMIT = 4096
#: At most this many attachments go with one message.
ATTACHMENTS_PER_MESSAGE = 10
#: VK takes photos up to 50 MB; larger images go as documents (up to 200 MB).
PHOTO_UPLOAD_LIMIT = 50 * 1024 * 1024
DOC_UPLOAD_LIMIT = 200 * 1024 * 1024
TOO_LARGE = "not downloaded: too large"

_PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif"}
# Events that are not something a customer said: confirmed with the batch, never stored.
_SKIPPED_EVENTS = {
    "message_reply",  # our own (or a community admin's) message
    "message_allow",
    "message_deny",
    "message_typing_state",
    "message_read",
    "message_event",
    # A reaction names its message by conversation message id (cmid), which our sends do not
    # record: it cannot be put on the message, and a reaction never opens a conversation.
    "message_reaction_event",
}
# A file whose download fails transiently this often is recorded with a note instead of
# holding the whole channel back forever.
_DOWNLOAD_ATTEMPTS = 3
# Long-poll answers that are not JSON in a row before the channel reports a fault.
_MALFORMED_POLLS = 3


class VkConnector(Connector):
    """A VK community's messages: private conversations in, replies out.

    Settings: `token` (a community access token, from `token_env`/`token_file`), `group_id`
    (the community's number; learned from the token when left out), `api_url`, `api_version`,
    `poll_wait` (long-poll seconds, default 25), `max_file_mb` (default 20).
    """

    kind = "vk"
    identity_kind = IdentityKind.VK
    draws_buttons = True  # an inline keyboard of text buttons; a press is a message with our payload
    needs_customer_first = "a VK community can only write to someone who has written to it or allowed its messages (VK API)"

    def __init__(self, context: ChannelContext):
        super().__init__(context)
        settings = context.settings
        token = str(settings.get("token") or "").strip()
        if not token:
            raise PermanentError(
                N_(
                    "no VK community token: set token_env (or token_file) to where the community access token is "
                    "(community → Manage → API usage → Access tokens)"
                )
            )
        api_url = str(settings.get("api_url") or DEFAULT_API_URL).rstrip("/")
        if not api_url.startswith(("https://", "http://")):
            raise PermanentError(N_("api_url must be an http(s) URL, not {url!r}"), url=api_url)
        self.api = VkApi(token, api_url, str(settings.get("api_version") or DEFAULT_API_VERSION))
        raw_group = settings.get("group_id")
        self.group_id: int | None = None
        if raw_group not in (None, ""):
            text = str(raw_group).strip().removeprefix("club").removeprefix("public").removeprefix("-")
            if not text.isdigit() or int(text) == 0:
                raise PermanentError(N_("group_id must be the community's number (like 123456), not {value!r}"), value=raw_group)
            self.group_id = int(text)
        try:
            self.poll_wait = max(0, min(90, round(float(settings.get("poll_wait", 25)))))
            self.max_file_bytes = int(float(settings.get("max_file_mb", 20)) * 1024 * 1024)
        except (TypeError, ValueError):
            raise PermanentError(N_("poll_wait and max_file_mb must be numbers")) from None
        self.community_name = ""
        self._names: dict[int, str] = {}
        self._screen_names: dict[int, str] = {}
        self._reader = reader.ContentReader(self._who, self._download)
        # Ids read from the history in the last gap recovery: the long poll may still bring
        # some of them, and they are not news twice.
        self._recovered: set[int] = set()
        self._download_failures: dict[str, int] = {}
        # Attachments uploaded for an outbound message whose send failed, so a retry in this
        # process does not upload them again (random_id already keeps the message single).
        self._uploaded: dict[tuple[int, Path], str] = {}

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def token(self) -> str:
        return self.api.token

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self.api.close()

    async def check(self) -> str:
        """groups.getById: "community «Name» (club123)" when the token works."""
        return await self._community()

    async def _community(self) -> str:
        """Learn the community's name (and number, if the config left it out)."""
        params = {"group_id": self.group_id} if self.group_id else {}
        answer = await self.api.call("groups.getById", params, "checking the community")
        groups = answer.get("groups") if isinstance(answer, dict) else answer
        if not groups or not isinstance(groups, list) or not isinstance(groups[0], dict):
            raise PermanentError(N_("VK did not describe the community; is group_id right?"))
        group = groups[0]
        self.group_id = as_int(group.get("id")) or self.group_id or 0
        # The name goes to the status bar: no terminal escapes from a remote server.
        self.community_name = sanitize_text(str(group.get("name") or ""))
        return Words(N_("community «{name}» (club{id})"), name=self.community_name, id=self.group_id)

    # -- receiving -------------------------------------------------------------------------

    async def run(self, sink: InboundSink) -> None:
        """Long-poll the community's events forever, delivering each answer's messages with
        the position that covers them."""
        self.api.reset()
        self._recovered = set()
        community = await self._community()
        server = await self.api.long_poll_server(self.group_id)
        # Resume from the committed cursor, never from memory: after a failed delivery the
        # position we last polled from may cover events the core did not store.
        position = Position.parse(sink.cursor)
        if position is None:
            if sink.cursor:
                self.log.warning("vk: the stored cursor %r is unreadable; starting from now", sink.cursor)
            # VK keeps no position for us, so the first start commits one at once: messages
            # that arrive before the core's next start are then replayed, not skipped.
            position = Position(server.ts, await newest_message_id(self.api))
            await sink.deliver([], position.dump())
        sink.connected(community)
        malformed = 0
        while True:
            raise_if_cancelled()
            if self.api.fatal is not None:
                raise self.api.fatal
            answer = await self.api.interruptible(self.api.poll(server, position.ts, self.poll_wait))
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
                server = await self.api.long_poll_server(self.group_id)  # the key expired; our ts is still good
            elif failed is not None:
                # failed 3 (or a value VK has not documented): key and ts are both gone.
                self.log.info("vk: long poll answered failed=%s; taking a new key and ts", failed)
                server = await self.api.long_poll_server(self.group_id)
                position = await self._recover(sink, position, server.ts)
            elif answer["updates"]:
                position = await self._deliver(answer["updates"], str(answer["ts"]), position, sink)
            elif str(answer["ts"]) != position.ts:
                position = Position(str(answer["ts"]), position.last_id)

    async def _deliver(self, updates: Sequence[Any], ts: str, position: Position, sink: InboundSink) -> Position:
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
        after = Position(ts, last_id)
        await deliver_isolated(sink, batch, after.dump(), log=self.log)
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
        message = reader.with_int_ids(message)
        if not reader.is_message(message):
            self.log.warning("vk: skipping a %s event without a readable message: %.200r", kind, payload)
            return None, False
        if message["from_id"] <= 0 or message["peer_id"] != message["from_id"]:
            # The community's own messages, and group chats: not a customer's private message.
            return None, False
        return message, edited

    async def _convert(self, taken: Sequence[tuple[dict[str, Any], bool]]) -> list[InboundMessage]:
        await self._learn_names(reader.people(message for message, _ in taken))
        converted = []
        for message, edited in taken:
            try:
                converted.append(await self._inbound(message, edited))
            except ConnectorError:
                raise  # a download that may pass: nothing is committed, the events come again
            except Exception as exc:  # a shape no reader expected: kept unread, never a stall
                self.log.warning("vk: message %s cannot be read (%s); kept as unreadable", message.get("id"), describe(exc))
                stand_in = InboundMessage(
                    external_id=str(message["id"]),
                    identity_kind=IdentityKind.VK,
                    address=str(message["from_id"]),
                    body="",
                    sent_at=reader.message_time(message.get("date")) or datetime.now(UTC),
                    sender_name=self._names.get(message["from_id"], ""),
                )
                converted.append(unreadable(stand_in, message, f"omniconsole could not read it: {describe(exc)}"))
        return converted

    async def _inbound(self, message: dict[str, Any], edited: bool) -> InboundMessage:
        """The InboundMessage for one VK message object."""
        # An edit only replaces the stored text, so its files are not fetched again.
        content = await self._reader.read(message, download=not edited)
        reply = message.get("reply_message")
        reply_to = None
        if isinstance(reply, dict) and as_int(reply.get("id")):
            reply_to = str(reply["id"])
        sender = message["from_id"]
        meta: dict[str, Any] = {"peer_id": message["peer_id"], "message_id": message["id"]}
        if content.kinds:
            meta["kinds"] = content.kinds
        if sender in self._screen_names:
            meta["screen_name"] = self._screen_names[sender]
        edited_at = None
        if edited:
            edited_at = reader.message_time(message.get("update_time")) or datetime.now(UTC)
        flags: frozenset[str] = frozenset()
        body = "\n".join(content.lines)
        pressed = None if edited else button_pressed(message)
        if pressed is not None:
            # A button of our keyboard: its id, with the label as the customer's words.
            flags = frozenset({"button"})
            meta["button"] = pressed
        elif not edited and reader.start_button(message) and not content.attachments and len(content.lines) <= 1:
            # The «Начать» button a customer presses before writing: as Telegram's /start, an
            # origin and no question; nobody waits for an answer to it.
            flags, body = frozenset({"start"}), ""
            meta["button"] = str(message.get("text") or "")
        return InboundMessage(
            external_id=str(message["id"]),
            identity_kind=IdentityKind.VK,
            address=str(sender),
            body=body,
            sent_at=reader.message_time(message.get("date")) or datetime.now(UTC),
            sender_name=self._names.get(sender, ""),
            reply_to_external_id=reply_to,
            attachments=tuple(content.attachments),
            edited_at=edited_at,
            flags=flags,
            meta=meta,
        )

    async def _download(self, url: Any, filename: str, mime_type: str, declared: int | None) -> InboundAttachment:
        """Fetch one file unless it is over the size cap. A refusal becomes a note; a network
        fault a TransientError (nothing is committed, the events come again), until the same
        file has failed a few times."""
        if declared is not None and declared > self.max_file_bytes:
            return InboundAttachment(filename, mime_type, None, declared, TOO_LARGE)
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            return InboundAttachment(filename, mime_type, None, declared, "not downloaded: VK gave no link to the file")
        try:
            async with self.api.client.stream("GET", url) as answer:
                if answer.status_code >= 500:
                    return self._download_failed(url, filename, mime_type, declared, f"HTTP {answer.status_code}")
                if answer.status_code != 200:
                    return InboundAttachment(
                        filename, mime_type, None, declared, f"not downloaded: VK answered HTTP {answer.status_code}"
                    )
                length = as_int(answer.headers.get("Content-Length"))
                if length is not None and length > self.max_file_bytes:
                    return InboundAttachment(filename, mime_type, None, length, TOO_LARGE)
                chunks, size = [], 0
                async for chunk in answer.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_file_bytes:
                        return InboundAttachment(filename, mime_type, None, declared or length, TOO_LARGE)
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            return self._download_failed(url, filename, mime_type, declared, describe(exc))
        self._download_failures.pop(url, None)
        data = b"".join(chunks)
        return InboundAttachment(filename, mime_type, data, len(data))

    def _download_failed(self, url: str, filename: str, mime_type: str, declared: int | None, why: str) -> InboundAttachment:
        failures = self._download_failures.get(url, 0) + 1
        self._download_failures[url] = failures
        if failures < _DOWNLOAD_ATTEMPTS:
            raise TransientError(f"downloading {filename} from VK failed: {why}")
        self._download_failures.pop(url, None)
        return InboundAttachment(
            filename, mime_type, None, declared, f"not downloaded: VK's file server failed {failures} times ({why})"
        )

    async def _learn_names(self, people: Iterable[int]) -> None:
        """Ask users.get once for every sender not yet known (names are cached)."""
        unknown = sorted({person for person in people if person > 0 and person not in self._names})
        for start in range(0, len(unknown), 1000):
            chunk = unknown[start : start + 1000]
            try:
                users = await self.api.call(
                    "users.get", {"user_ids": ",".join(map(str, chunk)), "fields": "screen_name"}, "reading the customers' names"
                )
            except ConnectorError as exc:
                # A name is a nicety: the messages go in without it, and the next batch asks again.
                self.log.warning("vk: could not read names of %d senders: %s", len(chunk), exc.reason)
                return
            for person in as_list(users):
                if isinstance(person, dict) and as_int(person.get("id")):
                    name = " ".join(str(person.get(key) or "") for key in ("first_name", "last_name")).strip()
                    self._names[int(person["id"])] = name
                    if person.get("screen_name"):
                        self._screen_names[int(person["id"])] = str(person["screen_name"])

    def _who(self, sender: Any) -> str:
        number = as_int(sender) or 0
        if number > 0:
            return self._names.get(number) or f"id{number}"
        if number < 0 and -number == self.group_id and self.community_name:
            return self.community_name
        return f"club{-number}" if number < 0 else "someone"

    # -- gap recovery ----------------------------------------------------------------------

    async def _recover(self, sink: InboundSink, position: Position, new_ts: str) -> Position:
        """Read the inbound messages newer than `position.last_id` from the history, deliver
        them with the new ts, and say plainly what could not be read."""
        self.log.warning(
            "vk: VK lost the events after ts %s; reading newer messages than %s from the history", position.ts, position.last_id
        )
        try:
            messages, missing = await history_since(self.api, position.last_id)
        except TransientError:
            raise  # the committed ts is unchanged: the next run recovers again
        except PermanentError as exc:
            if self.api.fatal is not None:
                raise  # the token itself was refused: keep the gap for after it is replaced
            messages, missing = [], f"VK refused to show the message history: {exc.reason}"
        messages = [
            message for message in messages if reader.is_message(message) and message["from_id"] == message["peer_id"] > 0
        ]
        messages.sort(key=lambda message: message["id"])
        # Delivered in chunks, each with its files: a long gap must not hold every file in
        # memory at once. Until the last chunk the cursor keeps the old ts, so a crash midway
        # asks VK again, gets "failed 1" again and goes on from the last message stored.
        last_id = position.last_id
        for start in range(0, max(1, len(messages)), RECOVERY_CHUNK):
            part = messages[start : start + RECOVERY_CHUNK]
            batch = await self._convert([(message, False) for message in part])
            last_id = max([last_id] + [message["id"] for message in part])
            final = start + RECOVERY_CHUNK >= len(messages)
            await deliver_isolated(sink, batch, Position(new_ts if final else position.ts, last_id).dump(), log=self.log)
        after = Position(new_ts, last_id)
        self._recovered = {message["id"] for message in messages}
        if missing:
            reason = (
                f"VK lost its event history for a while; {missing}. Check the community's messages in VK for anything unanswered"
            )
            self.log.warning("vk: %s", reason)
            sink.connected(f"community «{self.community_name}» (club{self.group_id}); {reason}")
        elif messages:
            self.log.info("vk: recovered %d messages from the history", len(messages))
        return after

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
                if message.buttons and number == max(len(parts), len(groups)) - 1:
                    params["keyboard"] = keyboard(message.buttons)
                answer = await self.api.call("messages.send", params, "sending")
                sent_id = as_int(answer.get("message_id") if isinstance(answer, dict) else answer)
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
        server = await self.api.call("photos.getMessagesUploadServer", {"peer_id": peer_id}, f"preparing to upload {name}")
        uploaded = await self.api.post_file(_field(server, "upload_url", name), "photo", name, data)
        if not uploaded.get("photo") or uploaded.get("photo") == "[]":
            raise PermanentError(f"VK did not accept the image {name}: {uploaded.get('error') or 'no photo in its answer'}")
        saved = await self.api.call(
            "photos.saveMessagesPhoto",
            {"server": uploaded.get("server"), "photo": uploaded["photo"], "hash": uploaded.get("hash")},
            f"saving the image {name}",
        )
        photos = as_list(saved)
        if not photos or not isinstance(photos[0], dict):
            raise TransientError(f"VK did not describe the saved image {name}")
        photo = photos[0]
        attachment = f"photo{photo.get('owner_id')}_{photo.get('id')}"
        return f"{attachment}_{photo['access_key']}" if photo.get("access_key") else attachment

    async def _upload_doc(self, peer_id: int, name: str, data: bytes) -> str:
        server = await self.api.call(
            "docs.getMessagesUploadServer", {"type": "doc", "peer_id": peer_id}, f"preparing to upload {name}"
        )
        uploaded = await self.api.post_file(_field(server, "upload_url", name), "file", name, data)
        if not uploaded.get("file"):
            raise PermanentError(f"VK did not accept the file {name}: {uploaded.get('error') or 'no file in its answer'}")
        saved = await self.api.call("docs.save", {"file": uploaded["file"], "title": name}, f"saving the file {name}")
        doc = saved.get("doc") if isinstance(saved, dict) else None
        if doc is None and isinstance(saved, list) and saved and isinstance(saved[0], dict):
            doc = saved[0]  # API versions before 5.103 answered a list of documents
        if not isinstance(doc, dict):
            raise TransientError(f"VK did not describe the saved file {name}")
        attachment = f"doc{doc.get('owner_id')}_{doc.get('id')}"
        return f"{attachment}_{doc['access_key']}" if doc.get("access_key") else attachment


# -- helpers -------------------------------------------------------------------------------


def keyboard(buttons) -> str:
    """Our buttons as a VK inline keyboard (one text button a row; the button id in its
    payload), https://dev.vk.com/en/api/bots/development/keyboard."""
    rows = [
        [{"action": {"type": "text", "label": b.title, "payload": json.dumps({"b": b.id}, ensure_ascii=False)}}]
        for b in buttons[:6]
    ]
    return json.dumps({"inline": True, "buttons": rows}, ensure_ascii=False)


def button_pressed(message: dict[str, Any]) -> str | None:
    """The id of our button a message answers (its payload `{"b": id}`), or None."""
    raw = message.get("payload")
    try:
        payload = json.loads(raw) if isinstance(raw, str) else raw
    except (ValueError, RecursionError):
        return None
    if isinstance(payload, dict) and isinstance(payload.get("b"), str) and payload["b"]:
        return payload["b"]
    return None


def random_id(message_id: int, part: int = 0) -> int:
    """The `random_id` of part `part` of our outbound message `message_id`: the same on every
    retry, different for every part, a positive int32 as VK wants."""
    digest = hashlib.sha256(f"omniconsole:{message_id}:{part}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF or 1


def _peer_id(message: OutboundMessage) -> int:
    peer = message.meta.get("peer_id") if message.meta else None
    if peer is None:
        peer = message.address
    number = as_int(peer)
    if number is None or number == 0:
        raise PermanentError(f"{peer!r} is not a VK user id")
    return number


def _field(answer: Any, key: str, name: str) -> str:
    if not isinstance(answer, Mapping) or not answer.get(key):
        raise TransientError(f"VK gave no {key} for {name}")
    return str(answer[key])


def _well_formed(answer: dict[str, Any]) -> bool:
    """A long-poll answer we can act on: events and a ts, or `failed` (1 comes with a ts)."""
    if "failed" in answer:
        return answer["failed"] != 1 or answer.get("ts") not in (None, "")
    return answer.get("ts") not in (None, "") and isinstance(answer.get("updates"), list)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """The parts a long reply goes out in (see connectors.text.split_text)."""
    return _split_text(text, limit)


# For tests and callers of the former single module.
_time = reader.message_time
_RECOVERY_CHUNK = RECOVERY_CHUNK
