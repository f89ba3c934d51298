"""A Telegram Bot API server on 127.0.0.1, faithful to the wire format, for connector tests.

It is the only Telegram we have in tests, so it follows the public documentation
(https://core.telegram.org/bots/api) where our connector depends on it:

* requests go to `/bot<token>/<method>` as a query string, form fields, JSON or multipart;
  answers are `{"ok": true, "result": ...}` or `{"ok": false, "error_code": N,
  "description": "..."}` with the same HTTP status, `parameters.retry_after` on 429;
* `getUpdates` keeps a queue of updates with increasing `update_id`s; an update is confirmed
  (dropped) once a call passes a higher `offset`, a negative offset keeps only the last
  `-offset` updates, `limit` caps a batch, `timeout` long-polls until an update arrives, and a
  second `getUpdates` ends the first one with 409 Conflict, as Telegram does;
* `allowed_updates` applies to updates created after the call that set it;
* `getFile` answers 400 "file is too big" over 20 MB, files download from
  `/file/bot<token>/<file_path>`;
* `sendMessage` refuses empty text and more than 4,096 UTF-16 code units, captions over 1,024,
  and replies to a message the chat does not have unless `allow_sending_without_reply`;
* `parse_mode=HTML` ("Formatting options"): only Telegram's tags (b, strong, i, em, u, ins, s,
  strike, del, code, pre, a href, blockquote, tg-spoiler, span class="tg-spoiler"), properly
  nested; only &lt; &gt; &amp; &quot; and numeric entities; anything else is 400 "can't parse
  entities" as Telegram says it; the limits count the text after parsing.

A test pushes updates (`push_message`, `push_edit`, ...), injects failures for the next call of
a method (`fail_next`) and inspects what the client sent (`calls`).
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "123456789:AAF-omniconsole-test-token_0123456789"
BOT_USER = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "Omni Test",
    "username": "omni_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
# Update kinds Telegram sends when `allowed_updates` was never set.
_DEFAULT_UPDATE_KINDS = frozenset(
    {"message", "edited_message", "channel_post", "edited_channel_post", "callback_query", "my_chat_member"}
)
_CLOUD_DOWNLOAD_LIMIT = 20 * 1024 * 1024
BAD_GATEWAY_HTML = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def utf16_len(text: str) -> int:
    """Telegram counts text lengths in UTF-16 code units. (Kept apart from the connector's own
    count on purpose: the fake must not share the code it checks.)"""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Call:
    """One request the client made: the method, its parameters and any uploaded files."""

    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


@dataclass
class _Failure:
    status: int
    body: bytes
    content_type: str = "application/json"
    drop: bool = False
    after: int = 0  # calls of the method that succeed before this failure


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    drop: bool = False


class FakeBotApi:
    """A Bot API server in a thread; use as a context manager or call start()/stop()."""

    def __init__(self, token: str = TOKEN, first_update_id: int = 500_000_001) -> None:
        self.token = token
        self.calls: list[Call] = []
        self._lock = threading.Condition()
        self._updates: deque[dict[str, Any]] = deque()
        self._next_update_id = first_update_id
        self._allowed_updates = _DEFAULT_UPDATE_KINDS
        self._poll_generation = 0
        self._failures: dict[str, deque[_Failure]] = {}
        self._files: dict[str, dict[str, Any]] = {}  # file_id -> File + "data"
        self._file_numbers = itertools.count(1)
        self._chat_messages: dict[int, set[int]] = {}
        self._next_message_id: dict[int, int] = {}
        self._sent_log: list[dict[str, Any]] = []  # Message objects the bot sent
        self._callback_seq = 0
        self._open_callbacks: set[str] = set()  # callback queries not answered yet
        self.answered_callbacks: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeBotApi:
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-bot-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            with self._lock:
                self._poll_generation += 1  # end a waiting long poll
                self._lock.notify_all()
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeBotApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """What to give the client as `base_url` (the token is appended)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- what the test controls ------------------------------------------------------------

    def push_update(self, kind: str, payload: dict[str, Any]) -> int:
        """Queue an update of `kind` ("message", "edited_message", ...); returns its update_id.

        Like Telegram, an update of a kind excluded by the last `allowed_updates` is never
        created."""
        with self._lock:
            update_id = self._next_update_id
            self._next_update_id += 1
            if kind in self._allowed_updates:
                self._updates.append({"update_id": update_id, kind: payload})
                chat_id = payload.get("chat", {}).get("id")
                if chat_id is not None and "message_id" in payload:
                    self._chat_messages.setdefault(chat_id, set()).add(payload["message_id"])
                    self._next_message_id[chat_id] = max(self._next_message_id.get(chat_id, 1), payload["message_id"] + 1)
                self._lock.notify_all()
            return update_id

    def message(self, sender: dict[str, Any], chat: dict[str, Any] | None = None, **content: Any) -> dict[str, Any]:
        """A Message object from `sender` in `chat` (their private chat by default) with a new
        message_id; `content` holds the Bot API fields (text, photo, caption, ...)."""
        chat = chat or private_chat(sender)
        with self._lock:
            message_id = self._next_message_id.get(chat["id"], 1)
            self._next_message_id[chat["id"]] = message_id + 1
        message: dict[str, Any] = {"message_id": message_id, "date": int(time.time()), "chat": chat}
        if sender is not None and chat.get("type") != "channel":
            message["from"] = sender
        message.update(content)
        return message

    def push_message(self, sender: dict[str, Any], chat: dict[str, Any] | None = None, **content: Any) -> dict[str, Any]:
        """Build a message (see `message`) and queue it as a `message` update."""
        message = self.message(sender, chat, **content)
        self.push_update("message", message)
        return message

    def push_callback(self, sender: dict[str, Any], sent: dict[str, Any], data: str) -> str:
        """Queue a `callback_query` update: `sender` pressed the inline button with
        `callback_data` `data` under `sent` (a Message the bot sent, as returned in
        `sent_messages`); returns the query's id (https://core.telegram.org/bots/api#callbackquery)."""
        with self._lock:
            self._callback_seq += 1
            query_id = f"{sender['id']}{self._callback_seq:06d}"
            self._open_callbacks.add(query_id)
        self.push_update(
            "callback_query",
            {
                "id": query_id,
                "from": sender,
                "message": sent,
                "chat_instance": f"ci{sender['id']}",
                "data": data,
            },
        )
        return query_id

    def sent_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The Message objects the bot sent in `chat_id`, oldest first."""
        with self._lock:
            return [m for m in self._sent_log if m["chat"]["id"] == chat_id]

    def push_edit(self, original: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """Queue an `edited_message` update: `original` with `changes` and an `edit_date`."""
        edited = {**original, **changes, "edit_date": int(time.time()) + 1}
        self.push_update("edited_message", edited)
        return edited

    def add_file(self, data: bytes, file_path: str, declared_size: bool = True) -> dict[str, Any]:
        """Keep a file the client can fetch with getFile; returns the fields a message carries
        (file_id, file_unique_id and, unless `declared_size` is false, file_size)."""
        number = next(self._file_numbers)
        file_id = f"AgACAgIAAxkBAAI{number:06d}"
        unique_id = f"AQAD{number:06d}"
        with self._lock:
            self._files[file_id] = {
                "file_id": file_id,
                "file_unique_id": unique_id,
                "file_size": len(data),
                "file_path": file_path,
                "data": data,
            }
        fields: dict[str, Any] = {"file_id": file_id, "file_unique_id": unique_id}
        if declared_size:
            fields["file_size"] = len(data)
        return fields

    def fail_next(
        self,
        method: str,
        status: int,
        description: str | None = None,
        retry_after: int | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
        after: int = 0,
    ) -> None:
        """Make the next call of `method` (or the one after `after` successful calls) fail the
        way Telegram fails: a JSON error body for `description`/`retry_after`, or the raw
        `body` (a proxy's HTML 502, an empty body)."""
        if body is None:
            answer: dict[str, Any] = {"ok": False, "error_code": status, "description": description or HTTPStatus(status).phrase}
            if retry_after is not None:
                answer["parameters"] = {"retry_after": retry_after}
            body = json.dumps(answer).encode()
        with self._lock:
            self._failures.setdefault(method.lower(), deque()).append(_Failure(status, body, content_type, after=after))

    def drop_next(self, method: str) -> None:
        """Close the connection instead of answering the next call of `method`."""
        with self._lock:
            self._failures.setdefault(method.lower(), deque()).append(_Failure(0, b"", drop=True))

    def calls_of(self, method: str) -> list[Call]:
        """The calls of `method` so far, in order."""
        with self._lock:
            return [call for call in self.calls if call.method.lower() == method.lower()]

    def pending_update_ids(self) -> list[int]:
        """update_ids not yet confirmed by a getUpdates offset."""
        with self._lock:
            return [update["update_id"] for update in self._updates]

    # -- the Bot API -----------------------------------------------------------------------

    def handle(self, path: str, params: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> _Response:
        """Answer one request to `path` (already split from its query)."""
        if path.startswith("/file/bot"):
            return self._download(path[len("/file/bot") :])
        if not path.startswith("/bot") or "/" not in path[4:]:
            return _error(HTTPStatus.NOT_FOUND, "Not Found")
        token, _, method = path[4:].partition("/")
        if token != self.token:
            return _error(HTTPStatus.UNAUTHORIZED, "Unauthorized")
        with self._lock:
            self.calls.append(Call(method, params, files))
            queue = self._failures.get(method.lower())
            failure = None
            if queue and queue[0].after > 0:
                queue[0].after -= 1
            elif queue:
                failure = queue.popleft()
        if failure is not None:
            return _Response(failure.status, failure.body, failure.content_type, failure.drop)
        handler = _METHODS.get(method.lower())
        if handler is None:
            return _error(HTTPStatus.NOT_FOUND, "Not Found")
        try:
            return handler(self, params, files)
        except _ApiError as exc:
            return _error(exc.status, exc.description)

    def _get_me(self, params: dict[str, Any], files: dict[str, Any]) -> _Response:
        return _ok(BOT_USER)

    def _get_updates(self, params: dict[str, Any], files: dict[str, Any]) -> _Response:
        offset = _int(params.get("offset"))
        limit = min(max(_int(params.get("limit")) or 100, 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        deadline = time.monotonic() + timeout
        with self._lock:
            self._poll_generation += 1
            generation = self._poll_generation
            self._lock.notify_all()  # an older long poll ends with 409
            if params.get("allowed_updates") not in (None, ""):
                allowed = params["allowed_updates"]
                kinds = json.loads(allowed) if isinstance(allowed, str) else allowed
                self._allowed_updates = frozenset(kinds) if kinds else _DEFAULT_UPDATE_KINDS
            if offset is not None and offset < 0:
                while len(self._updates) > -offset:
                    self._updates.popleft()
            elif offset is not None:
                while self._updates and self._updates[0]["update_id"] < offset:
                    self._updates.popleft()
            while True:
                if generation != self._poll_generation:
                    raise _ApiError(
                        HTTPStatus.CONFLICT,
                        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                    )
                batch = list(itertools.islice(self._updates, limit))
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0:
                    return _ok(batch)
                self._lock.wait(remaining)

    def _send_message(self, params: dict[str, Any], files: dict[str, Any]) -> _Response:
        chat_id = self._chat_id(params)
        text = params.get("text") or ""
        if params.get("parse_mode") == "HTML":
            text = parse_html(text)
        if not text.strip():
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: message text is empty")
        if utf16_len(text) > 4096:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: message is too long")
        content: dict[str, Any] = {"text": text}
        markup = params.get("reply_markup")
        if markup:
            content["reply_markup"] = self._inline_keyboard(markup)
        return _ok(self._sent(chat_id, params, content))

    @staticmethod
    def _inline_keyboard(raw: Any) -> dict[str, Any]:
        """Check an InlineKeyboardMarkup as Telegram does: rows of buttons, each with text and
        callback_data of 1-64 bytes (https://core.telegram.org/bots/api#inlinekeyboardbutton)."""
        markup = json.loads(raw) if isinstance(raw, str) else raw
        rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
        if not isinstance(rows, list):
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in rows:
            for button in row:
                data = button.get("callback_data")
                if not button.get("text"):
                    raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: text buttons are unallowed in the inline keyboard")
                if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                    raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _answer_callback_query(self, params: dict[str, Any], files: dict[str, Any]) -> _Response:
        query_id = str(params.get("callback_query_id") or "")
        with self._lock:
            if query_id not in self._open_callbacks:
                raise _ApiError(
                    HTTPStatus.BAD_REQUEST, "Bad Request: query is too old and response timeout expired or query ID is invalid"
                )
            self._open_callbacks.discard(query_id)
            self.answered_callbacks.append(query_id)
        return _ok(True)

    def _send_photo(self, params: dict[str, Any], files: dict[str, Any]) -> _Response:
        chat_id = self._chat_id(params)
        name, data = self._upload("photo", params, files)
        self._check_caption(params)
        unique = f"AQADp{len(self.calls)}"
        photo = [
            {
                "file_id": f"AgACAgIAAxkDp{len(self.calls)}",
                "file_unique_id": unique,
                "file_size": len(data),
                "width": 90,
                "height": 90,
            }
        ]
        return _ok(self._sent(chat_id, params, {"photo": photo, **self._caption(params)}))

    def _send_document(self, params: dict[str, Any], files: dict[str, Any]) -> _Response:
        chat_id = self._chat_id(params)
        name, data = self._upload("document", params, files)
        self._check_caption(params)
        document = {
            "file_id": f"BQACAgIAAxkDd{len(self.calls)}",
            "file_unique_id": f"AgADd{len(self.calls)}",
            "file_name": name,
            "file_size": len(data),
        }
        return _ok(self._sent(chat_id, params, {"document": document, **self._caption(params)}))

    def _get_file(self, params: dict[str, Any], files: dict[str, Any]) -> _Response:
        with self._lock:
            stored = self._files.get(params.get("file_id", ""))
        if stored is None:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: invalid file_id")
        if stored["file_size"] > _CLOUD_DOWNLOAD_LIMIT:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: file is too big")
        return _ok({key: value for key, value in stored.items() if key != "data"})

    def _download(self, rest: str) -> _Response:
        token, _, file_path = rest.partition("/")
        if token != self.token:
            return _error(HTTPStatus.UNAUTHORIZED, "Unauthorized")
        with self._lock:
            for stored in self._files.values():
                if stored["file_path"] == file_path:
                    return _Response(HTTPStatus.OK, stored["data"], "application/octet-stream")
        return _error(HTTPStatus.NOT_FOUND, "Not Found")

    # -- helpers ---------------------------------------------------------------------------

    def _chat_id(self, params: dict[str, Any]) -> int:
        raw = params.get("chat_id")
        if raw in (None, ""):
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: chat_id is empty")
        try:
            return int(raw)
        except ValueError:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: chat not found") from None

    def _upload(self, field_name: str, params: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> tuple[str, bytes]:
        value = params.get(field_name)
        if field_name in files:
            return files[field_name]
        if isinstance(value, str) and value.startswith("attach://") and value[9:] in files:
            return files[value[9:]]
        with self._lock:
            stored = self._files.get(value or "")
        if stored is None:
            raise _ApiError(HTTPStatus.BAD_REQUEST, f"Bad Request: there is no {field_name} in the request")
        return stored["file_path"].rsplit("/", 1)[-1], stored["data"]

    @staticmethod
    def _check_caption(params: dict[str, Any]) -> None:
        caption = params.get("caption") or ""
        if params.get("parse_mode") == "HTML":
            caption = parse_html(caption)
        if utf16_len(caption) > 1024:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: message caption is too long")

    @staticmethod
    def _caption(params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("caption"):
            return {}
        caption = params["caption"]
        return {"caption": parse_html(caption) if params.get("parse_mode") == "HTML" else caption}

    def _sent(self, chat_id: int, params: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        """Record a message the bot sent in `chat_id` and return it as a Message object."""
        reply_to = self._reply_target(chat_id, params)
        with self._lock:
            message_id = self._next_message_id.get(chat_id, 1)
            self._next_message_id[chat_id] = message_id + 1
            self._chat_messages.setdefault(chat_id, set()).add(message_id)
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "group", "first_name": "Customer"}
        message = {"message_id": message_id, "from": BOT_USER, "chat": chat, "date": int(time.time()), **content}
        if reply_to is not None:
            message["reply_to_message"] = {"message_id": reply_to, "chat": chat, "date": int(time.time())}
        with self._lock:
            self._sent_log.append(message)
        return message

    def _reply_target(self, chat_id: int, params: dict[str, Any]) -> int | None:
        raw = params.get("reply_parameters")
        if raw:
            reply = json.loads(raw) if isinstance(raw, str) else raw
            message_id = int(reply["message_id"])
            allow_missing = bool(reply.get("allow_sending_without_reply"))
        elif params.get("reply_to_message_id"):
            message_id = int(params["reply_to_message_id"])
            allow_missing = str(params.get("allow_sending_without_reply")).lower() == "true"
        else:
            return None
        with self._lock:
            exists = message_id in self._chat_messages.get(chat_id, set())
        if exists:
            return message_id
        if allow_missing:
            return None
        raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: message to be replied not found")


_HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "code",
        "pre",
        "a",
        "blockquote",
        "tg-spoiler",
        "span",
        "tg-emoji",
    }
)
_HTML_TOKEN = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^<>]*)>|&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);|([<>&])")
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def parse_html(text: str) -> str:
    """The text of a `parse_mode=HTML` message as Telegram parses it (entities dropped), or
    400 "can't parse entities" in Telegram's words for what Telegram refuses."""
    out: list[str] = []
    stack: list[str] = []
    position = 0

    def refuse(reason: str, at: int) -> _ApiError:
        offset = len(text[:at].encode("utf-8"))
        return _ApiError(HTTPStatus.BAD_REQUEST, f"Bad Request: can't parse entities: {reason} at byte offset {offset}")

    for match in _HTML_TOKEN.finditer(text):
        out.append(text[position : match.start()])
        position = match.end()
        closing, name, attributes, entity, bare = match.groups()
        if bare is not None:
            raise refuse(f'Unexpected character "{bare}"' if bare != "<" else "Unsupported start tag", match.start())
        if entity is not None:
            if entity.startswith("#"):
                out.append(chr(int(entity[2:], 16) if entity[1] in "xX" else int(entity[1:])))
            elif entity in _HTML_NAMED:
                out.append(_HTML_NAMED[entity])
            else:
                raise refuse(f'Unsupported HTML entity "&{entity};"', match.start())
            continue
        name = name.lower()
        if name not in _HTML_TAGS:
            raise refuse(f'Unsupported {"end" if closing else "start"} tag "{name}"', match.start())
        if closing:
            if not stack or stack[-1] != name:
                raise refuse(f'Unmatched end tag "{name}"', match.start())
            stack.pop()
        else:
            if name == "a" and "href=" not in attributes:
                raise refuse('Can\'t find "href" attribute of the "a" tag', match.start())
            stack.append(name)
    if stack:
        raise refuse(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"', len(text))
    out.append(text[position:])
    return "".join(out)


_METHODS = {
    "getme": FakeBotApi._get_me,
    "getupdates": FakeBotApi._get_updates,
    "sendmessage": FakeBotApi._send_message,
    "sendphoto": FakeBotApi._send_photo,
    "senddocument": FakeBotApi._send_document,
    "getfile": FakeBotApi._get_file,
    "answercallbackquery": FakeBotApi._answer_callback_query,
}


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _ok(result: Any) -> _Response:
    return _Response(HTTPStatus.OK, json.dumps({"ok": True, "result": result}).encode())


def _error(status: int, description: str) -> _Response:
    return _Response(status, json.dumps({"ok": False, "error_code": int(status), "description": description}).encode())


def _int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    return int(value)


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up (a cancelled long poll, a closed connector) are normal here."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Parses a Bot API request in any of the four encodings Telegram accepts."""

    api: FakeBotApi
    protocol_version = "HTTP/1.1"  # keep-alive, as api.telegram.org

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # keep test output quiet

    def _serve(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        params: dict[str, Any] = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        files: dict[str, tuple[str, bytes]] = {}
        body = self._body()
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            params.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        elif content_type.startswith("application/json") and body:
            params.update(json.loads(body))
        elif content_type.startswith("multipart/form-data"):
            form = BytesParser(policy=policy.HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
            for part in form.iter_parts():
                name = part.get_param("name", header="content-disposition")
                data = part.get_payload(decode=True) or b""
                if part.get_filename() is not None:
                    files[name] = (part.get_filename(), data)
                else:
                    params[name] = data.decode()
        # PTB percent-encodes file paths (the token's colon becomes %3A), as browsers may.
        response = self.api.handle(urllib.parse.unquote(url.path), params, files)
        if response.drop:
            self.close_connection = True
            return
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up on a long poll

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


def user(user_id: int, first_name: str, last_name: str | None = None, username: str | None = None) -> dict[str, Any]:
    """A User object."""
    result: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if last_name:
        result["last_name"] = last_name
    if username:
        result["username"] = username
    return result


def private_chat(person: dict[str, Any]) -> dict[str, Any]:
    """The private Chat object of a conversation with `person`."""
    chat = {"id": person["id"], "type": "private", "first_name": person["first_name"]}
    for key in ("last_name", "username"):
        if key in person:
            chat[key] = person[key]
    return chat


def group_chat(chat_id: int, title: str, kind: str = "supergroup") -> dict[str, Any]:
    """A group, supergroup or channel Chat object (ids of these are negative)."""
    return {"id": chat_id, "type": kind, "title": title}
