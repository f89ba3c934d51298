"""A VK API server on 127.0.0.1 for connector tests: methods, Bots Long Poll, uploads, files.

It is the only VK we have in tests, so it follows the public documentation
(https://dev.vk.com/ru/api/bots-long-poll/getting-started, /method/messages.send, ...) where
the connector depends on it:

* methods are `POST /method/<name>` with form fields (or a query string) including
  `access_token` and `v`; answers are `{"response": ...}` or `{"error": {"error_code": N,
  "error_msg": "...", "request_params": [...]}}`, both with HTTP 200; a wrong token is error 5;
* `groups.getLongPollServer` gives `server`, `key` and `ts`; `GET <server>?act=a_check&key=&ts=&wait=`
  answers `{"ts": "..", "updates": [...]}` with the events after `ts`, waiting up to `wait`
  seconds for one; `{"failed": 1, "ts": N}` when `ts` is older than the kept event history,
  `{"failed": 2}` when the key expired, `{"failed": 3}` when the key's information is lost;
* every message has a community-wide increasing `id`; `message_new` events carry
  `{"message": ..., "client_info": ...}`, `message_edit` and `message_reply` the message itself;
* `messages.send` needs `random_id`; a second send with the same `random_id` to the same peer
  within an hour (and the peer's last 100 messages) is dropped and answers the first message's
  id; it refuses peers who never allowed messages (901), who blacklisted the community (900),
  text over 4,096 characters (914) and empty messages (100);
* `messages.getConversations` lists conversations newest first, `messages.getHistory` a peer's
  messages newest first, both with `offset`/`count` (at most 200);
* documents: `docs.getMessagesUploadServer` -> multipart POST of `file` -> `docs.save`;
  photos: `photos.getMessagesUploadServer` -> multipart POST of `photo` -> `photos.saveMessagesPhoto`.

A test creates users (`add_user`), pushes messages (`push_message`, `push_edit`), makes
attachments (`photo`, `doc`, ...), breaks things (`fail_next`, `expire_key`, `forget_events`,
`lose_key`, `next_poll_raw`) and inspects what the client did (`calls_of`, `sent`).
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "vk1.a.omniconsole-test-community-token"
GROUP = {"id": 218000111, "name": "Магазин «Омни»", "screen_name": "omni_shop", "is_closed": 0, "type": "group"}
CHAT_PEER_BASE = 2_000_000_000
_DEDUP_SECONDS = 3600
_DEDUP_MESSAGES = 100

ERROR_MESSAGES = {
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    7: "Permission to perform this action is denied",
    9: "Flood control",
    10: "Internal server error",
    15: "Access denied",
    100: "One of the parameters specified was missing or invalid",
    113: "Invalid user id",
    900: "Can't send messages for users from blacklist",
    901: "Can't send messages for users without permission",
    902: "Can't send messages to this user due to their privacy settings",
    914: "Message is too long",
}


@dataclass
class Call:
    """One request the client made: the method, its parameters and any uploaded files."""

    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class _Failure:
    answer: Any  # a _VkError or a raw _Response
    after: int = 0  # calls of the method that succeed before this failure


class _VkError(Exception):
    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or ERROR_MESSAGES.get(code, "Unknown error"))
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, "Unknown error")


class FakeVkApi:
    """A VK API server in a thread; use as a context manager or call start()/stop()."""

    def __init__(self, token: str = TOKEN, group: dict[str, Any] | None = None) -> None:
        self.token = token
        self.group = dict(group or GROUP)
        self.calls: list[Call] = []
        self.users: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}  # id -> message
        self.blacklisted: set[int] = set()
        self._lock = threading.Condition()
        self._message_ids = itertools.count(7001)
        self._events: list[tuple[int, dict[str, Any]]] = []
        self._event_number = 1000
        self._first_kept = 1  # events numbered below this are gone (failed 1)
        self._keys: dict[str, str] = {}  # key -> "ok" | "expired" | "lost"
        self._key_numbers = itertools.count(1)
        self._peers: dict[int, list[int]] = {}  # peer -> message ids, oldest first
        self._allowed: set[int] = set()
        self._random_ids: dict[tuple[int, int], tuple[int, float]] = {}
        self._failures: dict[str, deque[Any]] = {}
        self._poll_raw: deque[_Response] = deque()
        self._before: dict[str, deque[Callable[[], None]]] = {}
        self._files: dict[str, bytes] = {}
        self.downloads: list[str] = []  # names of files the client fetched
        self._file_failures: dict[str, deque[int]] = {}
        self._uploads: dict[str, tuple[str, bytes]] = {}
        self._docs: dict[str, dict[str, Any]] = {}
        self._photos: dict[str, dict[str, Any]] = {}
        self._upload_numbers = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeVkApi:
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-vk-api", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            with self._lock:
                self._keys = {key: "lost" for key in self._keys}  # end waiting long polls
                self._lock.notify_all()
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeVkApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        assert self._server is not None, "the server is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """What to give the connector as `api_url`."""
        return f"{self.origin}/method"

    # -- what the test controls ------------------------------------------------------------

    def add_user(self, user_id: int, first_name: str, last_name: str = "", screen_name: str | None = None) -> dict[str, Any]:
        """A VK user who may write to the community."""
        person = {"id": user_id, "first_name": first_name, "last_name": last_name, "can_access_closed": True, "is_closed": False}
        person["screen_name"] = screen_name or f"id{user_id}"
        with self._lock:
            self.users[user_id] = person
        return person

    def allow_messages(self, user_id: int) -> None:
        """The user pressed "allow messages" without writing (a message_allow event)."""
        with self._lock:
            self._allowed.add(user_id)
            self._event("message_allow", {"user_id": user_id, "key": ""})

    def push_message(
        self, user: dict[str, Any] | int, text: str = "", *, silently: bool = False, **fields: Any
    ) -> dict[str, Any]:
        """A message from `user` to the community: stored in the history and, unless
        `silently` (its event was lost), sent as a `message_new` event. `fields` holds more
        message fields (attachments, reply_message, fwd_messages)."""
        user_id = user if isinstance(user, int) else user["id"]
        with self._lock:
            message = self._store_message(user_id, user_id, text, fields)
            self._allowed.add(user_id)
            if not silently:
                client_info = {
                    "button_actions": ["text"],
                    "keyboard": True,
                    "inline_keyboard": True,
                    "carousel": True,
                    "lang_id": 0,
                }
                self._event("message_new", {"message": message, "client_info": client_info})
            return message

    def push_edit(self, message: dict[str, Any], text: str) -> dict[str, Any]:
        """The customer edited `message`: a `message_edit` event with the new text."""
        with self._lock:
            stored = self.messages[message["id"]]
            stored["text"] = text
            stored["update_time"] = int(time.time()) + 1
            self._event("message_edit", dict(stored))
            return dict(stored)

    def push_event(self, event_type: str, payload: Any) -> None:
        """Any event, as given (for unknown kinds and odd payloads)."""
        with self._lock:
            self._event(event_type, payload)

    def expire_key(self) -> None:
        """The long-poll key expires: the next poll with it answers failed 2."""
        with self._lock:
            self._keys = {key: "expired" for key in self._keys}
            self._lock.notify_all()

    def lose_key(self) -> None:
        """The key's information is lost: the next poll answers failed 3 and the events so far
        are gone too (a new key starts at the current ts)."""
        with self._lock:
            self._keys = {key: "lost" for key in self._keys}
            self._first_kept = self._event_number + 1
            self._lock.notify_all()

    def forget_events(self) -> None:
        """The event history is lost up to now: a poll from an older ts answers failed 1."""
        with self._lock:
            self._first_kept = self._event_number + 1
            self._lock.notify_all()

    def next_poll_raw(self, body: bytes, status: int = 200, content_type: str = "application/json") -> None:
        """Answer the next long poll with exactly this (malformed JSON, an HTTP error)."""
        with self._lock:
            self._poll_raw.append(_Response(status, body, content_type))

    def fail_next(self, method: str, code: int, message: str | None = None, *, after: int = 0) -> None:
        """Make the next call of `method` (or the one after `after` successful calls) answer
        VK error `code`."""
        with self._lock:
            self._failures.setdefault(method, deque()).append(_Failure(_VkError(code, message), after))

    def fail_next_http(self, method: str, status: int, body: bytes = b"") -> None:
        """Make the next call of `method` answer an HTTP error (a 502 from a proxy)."""
        with self._lock:
            self._failures.setdefault(method, deque()).append(_Failure(_Response(status, body, "text/html")))

    def before_next(self, method: str, action: Callable[[], None]) -> None:
        """Run `action` (in the server thread) just before answering the next `method` call."""
        with self._lock:
            self._before.setdefault(method, deque()).append(action)

    def revoke_token(self) -> None:
        """The community token stops working: every method answers error 5."""
        with self._lock:
            self.token = self.token + "-revoked"

    def add_file(self, name: str, data: bytes) -> str:
        """Keep a file the client can download; returns its URL."""
        with self._lock:
            self._files[name] = data
        return f"{self.origin}/files/{urllib.parse.quote(name)}"

    def fail_file(self, name: str, status: int, times: int = 1) -> None:
        with self._lock:
            self._file_failures.setdefault(name, deque()).extend([status] * times)

    def photo(self, data: bytes, owner_id: int, photo_id: int) -> dict[str, Any]:
        """A photo attachment with three sizes; the largest ("w") holds `data`."""
        sizes = [
            {"type": "s", "width": 75, "height": 56, "url": self.add_file(f"photo{photo_id}_s.jpg", b"small")},
            {"type": "w", "width": 2560, "height": 1920, "url": self.add_file(f"photo{photo_id}_w.jpg", data)},
            {"type": "x", "width": 604, "height": 453, "url": self.add_file(f"photo{photo_id}_x.jpg", b"medium")},
        ]
        photo = {
            "id": photo_id,
            "owner_id": owner_id,
            "album_id": -3,
            "date": int(time.time()),
            "access_key": "k1",
            "sizes": sizes,
            "text": "",
        }
        return {"type": "photo", "photo": photo}

    def doc(
        self, data: bytes, title: str, ext: str, owner_id: int, doc_id: int, declared_size: int | None = None
    ) -> dict[str, Any]:
        url = self.add_file(f"doc{doc_id}.{ext}", data)
        doc = {
            "id": doc_id,
            "owner_id": owner_id,
            "title": title,
            "size": declared_size if declared_size is not None else len(data),
            "ext": ext,
            "url": url,
            "date": int(time.time()),
            "type": 1,
        }
        return {"type": "doc", "doc": doc}

    def sticker(self, data: bytes, sticker_id: int) -> dict[str, Any]:
        images = [
            {"url": self.add_file(f"sticker{sticker_id}_64.png", b"tiny"), "width": 64, "height": 64},
            {"url": self.add_file(f"sticker{sticker_id}_512.png", data), "width": 512, "height": 512},
        ]
        return {
            "type": "sticker",
            "sticker": {"product_id": 1, "sticker_id": sticker_id, "images": images, "images_with_background": images},
        }

    def audio_message(
        self, data: bytes, owner_id: int, audio_id: int, duration: int, transcript: str | None = None
    ) -> dict[str, Any]:
        item = {
            "id": audio_id,
            "owner_id": owner_id,
            "duration": duration,
            "waveform": [0, 3, 7, 3, 0],
            "link_ogg": self.add_file(f"audio{audio_id}.ogg", data),
            "link_mp3": self.add_file(f"audio{audio_id}.mp3", b"mp3"),
            "access_key": "a1",
        }
        if transcript is not None:
            item["transcript"] = transcript
            item["transcript_state"] = "done"
        return {"type": "audio_message", "audio_message": item}

    @staticmethod
    def wall(owner_id: int, post_id: int, text: str) -> dict[str, Any]:
        post = {
            "id": post_id,
            "owner_id": owner_id,
            "from_id": owner_id,
            "date": int(time.time()),
            "text": text,
            "post_type": "post",
        }
        return {"type": "wall", "wall": post}

    # -- what the test inspects ------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def sent(self, peer_id: int) -> list[dict[str, Any]]:
        """Messages the community posted to `peer_id`, oldest first."""
        with self._lock:
            return [self.messages[i] for i in self._peers.get(peer_id, []) if self.messages[i]["from_id"] < 0]

    def saved_file(self, attachment: dict[str, Any]) -> tuple[str, bytes]:
        """The (file name, bytes) the client uploaded for a doc or photo of a sent message."""
        kind = attachment["type"]
        item = attachment[kind]
        key = f"{kind}{item['owner_id']}_{item['id']}" + (f"_{item['access_key']}" if kind == "photo" else "")
        with self._lock:
            stored = (self._docs if kind == "doc" else self._photos)[key]
        return stored["name"], stored["data"]

    # -- the API ---------------------------------------------------------------------------

    def handle(self, method_path: str, params: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> _Response:
        """Answer one request to a path (already split from its query)."""
        if method_path.startswith("/lp/"):
            return self._long_poll(params)
        if method_path.startswith("/files/"):
            return self._download(urllib.parse.unquote(method_path[len("/files/") :]))
        if method_path.startswith("/upload/"):
            return self._upload(method_path[len("/upload/") :], files)
        if not method_path.startswith("/method/"):
            return _Response(404, b"not found", "text/plain")
        method = method_path[len("/method/") :]
        with self._lock:
            self.calls.append(Call(method, params, files))
            before = self._before.get(method)
            action = before.popleft() if before else None
        if action is not None:
            action()
        with self._lock:
            queue = self._failures.get(method)
            failure = None
            if queue and queue[0].after > 0:
                queue[0].after -= 1
            elif queue:
                failure = queue.popleft().answer
            if isinstance(failure, _Response):
                return failure
            try:
                if params.get("access_token") != self.token:
                    raise _VkError(5)
                if failure is not None:
                    raise failure
                handler = _METHODS.get(method)
                if handler is None:
                    raise _VkError(3, "Unknown method passed")
                return _ok(handler(self, params))
            except _VkError as exc:
                return _error(exc, method, params)

    def _groups_get_by_id(self, params: dict[str, Any]) -> Any:
        wanted = params.get("group_id") or params.get("group_ids")
        if wanted not in (None, "", str(self.group["id"]), self.group["screen_name"]):
            raise _VkError(100, "One of the parameters specified was missing or invalid: group_id is invalid")
        return {"groups": [self.group], "profiles": []}

    def _groups_get_long_poll_server(self, params: dict[str, Any]) -> Any:
        if str(params.get("group_id")) != str(self.group["id"]):
            raise _VkError(100, "One of the parameters specified was missing or invalid: group_id is undefined")
        key = f"key{next(self._key_numbers):04d}{'f' * 20}"
        self._keys[key] = "ok"
        return {"key": key, "server": f"{self.origin}/lp/wh{self.group['id']}", "ts": str(self._event_number)}

    def _users_get(self, params: dict[str, Any]) -> Any:
        ids = [part for part in str(params.get("user_ids") or "").split(",") if part]
        found = []
        for raw in ids:
            if not raw.isdigit():
                raise _VkError(113)
            if int(raw) in self.users:
                person = dict(self.users[int(raw)])
                if "screen_name" not in str(params.get("fields") or ""):
                    person.pop("screen_name", None)
                found.append(person)
        return found

    def _messages_send(self, params: dict[str, Any]) -> Any:
        if params.get("random_id") in (None, ""):
            raise _VkError(100, "One of the parameters specified was missing or invalid: random_id is a required parameter")
        peer = int(params.get("peer_id") or 0)
        random_id = int(params["random_id"])
        text = params.get("message") or ""
        attachments = [a for a in str(params.get("attachment") or "").split(",") if a]
        if peer in self.blacklisted:
            raise _VkError(900)
        if peer not in self._allowed:
            raise _VkError(901)
        now = time.time()
        seen = self._random_ids.get((peer, random_id))
        if seen is not None and now - seen[1] < _DEDUP_SECONDS and seen[0] in self._peers.get(peer, [])[-_DEDUP_MESSAGES:]:
            return seen[0]  # VK drops the repeat and answers the message already sent
        if len(text) > 4096:
            raise _VkError(914)
        if not text and not attachments:
            raise _VkError(100, "One of the parameters specified was missing or invalid: message is empty or invalid")
        resolved = []
        for attachment in attachments:
            stored = self._docs.get(attachment) or self._photos.get(attachment)
            if stored is None:
                raise _VkError(100, f"One of the parameters specified was missing or invalid: attachment {attachment} is invalid")
            resolved.append(stored)
        fields: dict[str, Any] = {"attachments": resolved, "random_id": random_id}
        if params.get("keyboard"):
            fields["keyboard"] = self._keyboard(params["keyboard"])
        if params.get("reply_to"):
            replied = self.messages.get(int(params["reply_to"]))
            if replied is None or replied["peer_id"] != peer:
                raise _VkError(100, "One of the parameters specified was missing or invalid: reply_to is invalid")
            fields["reply_message"] = {k: replied[k] for k in ("id", "date", "from_id", "peer_id", "text")}
        message = self._store_message(peer, -self.group["id"], text, fields, out=1)
        self._random_ids[(peer, random_id)] = (message["id"], now)
        self._event("message_reply", dict(message))
        return message["id"]

    @staticmethod
    def _keyboard(raw: Any) -> dict[str, Any]:
        """Check a bot keyboard as VK does (https://dev.vk.com/en/api/bots/development/keyboard):
        an inline keyboard holds at most 6 rows and 10 buttons, a text button's label is at
        most 40 characters and its payload a JSON string of at most 255 characters."""
        try:
            keyboard = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            raise _VkError(911) from None
        rows = keyboard.get("buttons") if isinstance(keyboard, dict) else None
        if not isinstance(rows, list):
            raise _VkError(911)
        if keyboard.get("inline") and (len(rows) > 6 or sum(len(r) for r in rows) > 10):
            raise _VkError(913)
        for row in rows:
            for button in row:
                action = button.get("action") or {}
                if action.get("type") == "text":
                    if not action.get("label") or len(action["label"]) > 40:
                        raise _VkError(912)
                    payload = action.get("payload")
                    if payload is not None:
                        json.loads(payload)
                        if len(payload) > 255:
                            raise _VkError(912)
        return keyboard

    def _messages_get_conversations(self, params: dict[str, Any]) -> Any:
        offset, count = int(params.get("offset") or 0), min(int(params.get("count") or 20), 200)
        peers = sorted(self._peers, key=lambda peer: self._peers[peer][-1], reverse=True)
        items = []
        for peer in peers[offset : offset + count]:
            last = self.messages[self._peers[peer][-1]]
            conversation = {
                "peer": {"id": peer, "type": "user" if peer < CHAT_PEER_BASE else "chat", "local_id": peer},
                "last_message_id": last["id"],
                "last_conversation_message_id": last["conversation_message_id"],
                "in_read": last["id"],
                "out_read": last["id"],
                "can_write": {"allowed": peer in self._allowed},
            }
            items.append({"conversation": conversation, "last_message": dict(last)})
        return {"count": len(peers), "items": items}

    def _messages_get_history(self, params: dict[str, Any]) -> Any:
        peer = int(params.get("peer_id") or 0)
        offset, count = int(params.get("offset") or 0), min(int(params.get("count") or 20), 200)
        ids = list(reversed(self._peers.get(peer, [])))
        return {"count": len(ids), "items": [dict(self.messages[i]) for i in ids[offset : offset + count]]}

    def _docs_get_messages_upload_server(self, params: dict[str, Any]) -> Any:
        if params.get("type", "doc") not in ("doc", "audio_message", "graffiti") or not params.get("peer_id"):
            raise _VkError(100)
        return {"upload_url": f"{self.origin}/upload/doc?peer={params['peer_id']}"}

    def _photos_get_messages_upload_server(self, params: dict[str, Any]) -> Any:
        return {
            "upload_url": f"{self.origin}/upload/photo?peer={params.get('peer_id', 0)}",
            "album_id": -3,
            "group_id": self.group["id"],
        }

    def _docs_save(self, params: dict[str, Any]) -> Any:
        upload = self._uploads.pop(params.get("file") or "", None)
        if upload is None:
            raise _VkError(100, "One of the parameters specified was missing or invalid: file is invalid")
        name, data = upload
        doc_id = 600000 + next(self._upload_numbers)
        title = params.get("title") or name
        doc = {
            "id": doc_id,
            "owner_id": -self.group["id"],
            "title": title,
            "size": len(data),
            "ext": name.rsplit(".", 1)[-1],
            "url": self.add_file(f"sent-doc{doc_id}", data),
        }
        self._docs[f"doc{doc['owner_id']}_{doc_id}"] = {"type": "doc", "doc": doc, "data": data, "name": name}
        return {"type": "doc", "doc": doc}

    def _photos_save_messages_photo(self, params: dict[str, Any]) -> Any:
        photo_field = params.get("photo") or "[]"
        try:
            token = json.loads(photo_field)[0]["photo"]
        except (ValueError, LookupError, TypeError):
            raise _VkError(100, "One of the parameters specified was missing or invalid: photo is undefined") from None
        upload = self._uploads.pop(token, None)
        if upload is None or params.get("hash") != _hash(token):
            raise _VkError(100, "One of the parameters specified was missing or invalid: hash is invalid")
        name, data = upload
        photo_id = 457239000 + next(self._upload_numbers)
        photo = {
            "id": photo_id,
            "owner_id": -self.group["id"],
            "album_id": -3,
            "access_key": f"ak{photo_id}",
            "sizes": [],
            "text": "",
        }
        attachment = {"type": "photo", "photo": photo, "data": data, "name": name}
        self._photos[f"photo{photo['owner_id']}_{photo_id}_{photo['access_key']}"] = attachment
        return [photo]

    # -- long poll, files and uploads ------------------------------------------------------

    def _long_poll(self, params: dict[str, Any]) -> _Response:
        with self._lock:
            if self._poll_raw:
                return self._poll_raw.popleft()
            if params.get("act") != "a_check":
                return _json({"failed": 2})
            key = params.get("key", "")
            try:
                ts = int(params.get("ts") or "")
            except ValueError:
                return _json({"failed": 1, "ts": self._event_number})
            wait = min(max(float(params.get("wait") or 0), 0.0), 90.0)
            deadline = time.monotonic() + wait
            while True:
                state = self._keys.get(key)
                if state in (None, "expired"):
                    return _json({"failed": 2})
                if state == "lost":
                    return _json({"failed": 3})
                if ts < self._first_kept - 1 or ts > self._event_number:
                    return _json({"failed": 1, "ts": self._event_number})
                updates = [event for number, event in self._events if number > ts]
                remaining = deadline - time.monotonic()
                if updates or remaining <= 0:
                    return _json({"ts": str(self._event_number), "updates": updates})
                self._lock.wait(remaining)

    def _download(self, name: str) -> _Response:
        with self._lock:
            failures = self._file_failures.get(name)
            if failures:
                return _Response(failures.popleft(), b"<html>error</html>", "text/html")
            data = self._files.get(name)
            if data is not None:
                self.downloads.append(name)
        if data is None:
            return _Response(404, b"<html>404 Not Found</html>", "text/html")
        return _Response(200, data, "application/octet-stream")

    def _upload(self, kind: str, files: dict[str, tuple[str, bytes]]) -> _Response:
        field_name = "photo" if kind.startswith("photo") else "file"
        with self._lock:
            if field_name not in files:
                if field_name == "photo":
                    return _json({"server": 839211, "photo": "[]", "hash": _hash("")})
                return _json({"error": "no_file", "error_descr": "file not found"})
            token = f"upl{next(self._upload_numbers):06d}"
            self._uploads[token] = files[field_name]
            if field_name == "photo":
                return _json({"server": 839211, "photo": json.dumps([{"photo": token, "sizes": []}]), "hash": _hash(token)})
            return _json({"file": token})

    # -- helpers (the lock is held) ---------------------------------------------------------

    def _event(self, event_type: str, payload: Any) -> None:
        self._event_number += 1
        event = {
            "group_id": self.group["id"],
            "type": event_type,
            "event_id": f"{self._event_number:040x}",
            "v": "5.199",
            "object": payload,
        }
        self._events.append((self._event_number, event))
        self._lock.notify_all()

    def _store_message(self, peer: int, from_id: int, text: str, fields: dict[str, Any], out: int = 0) -> dict[str, Any]:
        message_id = next(self._message_ids)
        history = self._peers.setdefault(peer, [])
        message = {
            "id": message_id,
            "date": int(time.time()),
            "peer_id": peer,
            "from_id": from_id,
            "out": out,
            "text": text,
            "conversation_message_id": len(history) + 1,
            "fwd_messages": [],
            "important": False,
            "is_hidden": False,
            "attachments": [],
            "random_id": 0,
            **fields,
        }
        # Attachments sent by the community keep their private bytes out of the wire format.
        message["attachments"] = [{k: v for k, v in a.items() if k not in ("data", "name")} for a in message["attachments"]]
        self.messages[message_id] = message
        history.append(message_id)
        return dict(message)


_METHODS: dict[str, Callable[[FakeVkApi, dict[str, Any]], Any]] = {
    "groups.getById": FakeVkApi._groups_get_by_id,
    "groups.getLongPollServer": FakeVkApi._groups_get_long_poll_server,
    "users.get": FakeVkApi._users_get,
    "messages.send": FakeVkApi._messages_send,
    "messages.getConversations": FakeVkApi._messages_get_conversations,
    "messages.getHistory": FakeVkApi._messages_get_history,
    "docs.getMessagesUploadServer": FakeVkApi._docs_get_messages_upload_server,
    "docs.save": FakeVkApi._docs_save,
    "photos.getMessagesUploadServer": FakeVkApi._photos_get_messages_upload_server,
    "photos.saveMessagesPhoto": FakeVkApi._photos_save_messages_photo,
}


def _hash(token: str) -> str:
    return f"h{abs(hash(('omni', token))) % 10**12:012d}"


def _json(value: Any) -> _Response:
    try:
        return _Response(200, json.dumps(value, ensure_ascii=False).encode())
    except UnicodeEncodeError:
        # Text holding a lone UTF-16 surrogate travels as a JSON escape ("\ud83d"), as VK sends it.
        return _Response(200, json.dumps(value).encode())


def _ok(result: Any) -> _Response:
    return _json({"response": result})


def _error(exc: _VkError, method: str, params: dict[str, Any]) -> _Response:
    request_params = [
        {"key": "method", "value": method},
        {"key": "oauth", "value": "1"},
        {"key": "v", "value": str(params.get("v", ""))},
    ]
    return _json({"error": {"error_code": exc.code, "error_msg": exc.message, "request_params": request_params}})


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up (a cancelled long poll, a closed connector) are normal here."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Parses a request: query string, url-encoded form or multipart."""

    api: FakeVkApi
    protocol_version = "HTTP/1.1"  # keep-alive, as api.vk.com
    # Headers and body are separate writes: without TCP_NODELAY each answer waits out the
    # client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def _serve(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        params: dict[str, Any] = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        files: dict[str, tuple[str, bytes]] = {}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            params.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        elif content_type.startswith("multipart/form-data"):
            form = BytesParser(policy=policy.HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
            for part in form.iter_parts():
                name = part.get_param("name", header="content-disposition")
                data = part.get_payload(decode=True) or b""
                if part.get_filename() is not None:
                    files[name] = (part.get_filename(), data)
                else:
                    params[name] = data.decode()
        response = self.api.handle(url.path, params, files)
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
