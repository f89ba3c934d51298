"""Meta's side of the WhatsApp Cloud API on 127.0.0.1, for connector tests.

Two halves, both following the public documentation
(https://developers.facebook.com/docs/whatsapp/cloud-api):

* `FakeGraphApi`, an HTTP server speaking the Graph API our connector calls:
  `GET /{version}/{phone-number-id}` (the number's profile), `POST .../messages` (text, media by
  id, templates; answers `{"messaging_product", "contacts", "messages": [{"id": "wamid..."}]}`),
  `POST .../media` (multipart upload, answers `{"id"}`), `GET /{version}/{media-id}` (a media
  object with a short-lived `url`, `mime_type`, `sha256`, `file_size`) and that URL, which needs
  the same bearer token. Errors are Graph error objects
  `{"error": {"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}`;
  a wrong token is HTTP 401 with code 190.
* `Meta`, what posts webhooks: JSON in Meta's envelope
  (`object`/`entry[].changes[].value` with `metadata`, `contacts`, `messages`, `statuses`),
  signed with `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body with the app secret>`, and
  delivered again until it is answered 200, as Meta does.

Tests inject failures for the next call of an endpoint (`fail_next`) and inspect what the
connector sent (`calls`).
"""

from __future__ import annotations

import hashlib
import hmac
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

TOKEN = "EAAGtest-omniconsole-system-user-token"
APP_SECRET = "0123456789abcdef0123456789abcdef"
VERIFY_TOKEN = "omni-verify-phrase"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
DISPLAY_NUMBER = "+1 555-010-0199"
VERIFIED_NAME = "Omni Shop"
VERSION = "v21.0"
TEXT_LIMIT = 4096  # the fake's own copy: it must not share the code it checks


@dataclass
class Call:
    """One request the connector made: the endpoint kind, its JSON or form fields, its files."""

    kind: str  # "profile", "messages", "media_upload", "media_info", "media_download"
    params: dict[str, Any]
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)  # name -> (filename, type, data)


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    drop: bool = False


class FakeGraphApi:
    """A Graph API server in a thread; use as a context manager."""

    def __init__(self, token: str = TOKEN, phone_number_id: str = PHONE_NUMBER_ID) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._media: dict[str, dict[str, Any]] = {}
        self._numbers = itertools.count(1)
        self._failures: dict[str, deque[_Response]] = {}
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> FakeGraphApi:
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-graph-api", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        """What to give the connector as `graph_url`."""
        assert self._server is not None, "the server is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- what the test controls ------------------------------------------------------------

    def add_media(self, data: bytes, mime_type: str, declared_size: int | None = None) -> str:
        """Keep a customer's file as WhatsApp does; returns its media id."""
        media_id = f"{next(self._numbers) + 1_000_000_000_000_000}"
        with self._lock:
            self._media[media_id] = {
                "data": data,
                "mime_type": mime_type,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": declared_size if declared_size is not None else len(data),
            }
        return media_id

    def uploaded(self, media_id: str) -> dict[str, Any]:
        """A file the connector uploaded: its data, type and file name."""
        with self._lock:
            return dict(self._media[media_id])

    def fail_next(
        self,
        kind: str,
        status: int,
        code: int | None = None,
        message: str = "",
        details: str = "",
        body: bytes | None = None,
        drop: bool = False,
    ) -> None:
        """Make the next call of `kind` fail as the Graph API fails: an error object with `code`,
        or a raw `body` (a proxy's page), or a dropped connection."""
        if body is None:
            body = _graph_error(code or 1, message or "An unknown error occurred", details)
        with self._lock:
            self._failures.setdefault(kind, deque()).append(_Response(status, body, drop=drop))

    def calls_of(self, kind: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.kind == kind]

    # -- the Graph API ---------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Any,
        params: dict[str, Any],
        files: dict[str, tuple[str, str, bytes]],
    ) -> _Response:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["download"] and len(parts) == 2:
            kind = "media_download"
        elif len(parts) < 2 or parts[0] != VERSION:
            return _Response(400, _graph_error(2500, "Unknown path components: " + path))
        elif method == "POST" and parts[1:] == [self.phone_number_id, "messages"]:
            kind = "messages"
        elif method == "POST" and parts[1:] == [self.phone_number_id, "media"]:
            kind = "media_upload"
        elif method == "GET" and parts[1:] == [self.phone_number_id]:
            kind = "profile"
        elif method == "GET" and len(parts) == 2:
            kind = "media_info"
        else:
            return _Response(400, _graph_error(100, "Unsupported request", f"{method} {path}"))
        if headers.get("Authorization") != f"Bearer {self.token}":
            if kind == "media_download":
                return _Response(401, b"", "text/plain")
            return _Response(
                401, _graph_error(190, "Invalid OAuth access token - Cannot parse access token", type_="OAuthException")
            )
        with self._lock:
            self.calls.append(Call(kind, {**query, **params}, files))
            queue = self._failures.get(kind)
            failure = queue.popleft() if queue else None
        if failure is not None:
            return failure
        if kind == "profile":
            return _json({"display_phone_number": DISPLAY_NUMBER, "verified_name": VERIFIED_NAME, "id": self.phone_number_id})
        if kind == "media_info":
            return self._media_info(parts[1])
        if kind == "media_download":
            return self._download(parts[1])
        if kind == "media_upload":
            return self._upload(params, files)
        return self._send(params)

    def _media_info(self, media_id: str) -> _Response:
        with self._lock:
            media = self._media.get(media_id)
        if media is None:
            return _Response(
                400,
                _graph_error(
                    100, f"Unsupported get request. Object with ID '{media_id}' does not exist", type_="GraphMethodException"
                ),
            )
        return _json(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.url}/download/{media_id}",
                "mime_type": media["mime_type"],
                "sha256": media["sha256"],
                "file_size": media["file_size"],
                "id": media_id,
            }
        )

    def _download(self, media_id: str) -> _Response:
        with self._lock:
            media = self._media.get(media_id)
        if media is None:
            return _Response(404, b"", "text/plain")
        return _Response(200, media["data"], media["mime_type"])

    def _upload(self, params: dict[str, Any], files: dict[str, tuple[str, str, bytes]]) -> _Response:
        if params.get("messaging_product") != "whatsapp":
            return _Response(400, _graph_error(100, "The parameter messaging_product is required."))
        if "file" not in files:
            return _Response(400, _graph_error(100, "The parameter file is required."))
        filename, mime, data = files["file"]
        media_id = self.add_media(data, params.get("type") or mime)
        with self._lock:
            self._media[media_id]["filename"] = filename
        return _json({"id": media_id})

    def _send(self, body: dict[str, Any]) -> _Response:
        if body.get("messaging_product") != "whatsapp":
            return _Response(400, _graph_error(100, "The parameter messaging_product is required."))
        # A number goes in `to`; a user known only by their business-scoped id in `recipient`
        # ("CC.digits"); a group by its id in `to` with recipient_type "group".
        to = str(body.get("to") or body.get("recipient") or "")
        if body.get("recipient_type") == "group":
            if not to or "to" not in body:
                return _Response(400, _graph_error(100, "Invalid parameter", "a group message needs the group id in to"))
        elif "to" in body and not to.lstrip("+").isdigit():
            return _Response(400, _graph_error(100, "Invalid parameter", "to must be a phone number"))
        elif "to" not in body and not re.fullmatch(r"[A-Z]{2}(\.ENT)?\.[A-Za-z0-9]{1,128}", to):
            return _Response(400, _graph_error(100, "Invalid parameter", "recipient must be a business-scoped user id"))
        kind = body.get("type", "text")
        if kind == "text":
            text = str((body.get("text") or {}).get("body") or "")
            if not text.strip():
                return _Response(400, _graph_error(100, "Invalid parameter", "text.body is required"))
            if len(text) > TEXT_LIMIT:
                return _Response(400, _graph_error(100, "Invalid parameter", f"text.body is over {TEXT_LIMIT} characters"))
        elif kind in ("image", "video", "audio", "document", "sticker"):
            media = body.get(kind) or {}
            with self._lock:
                known = media.get("id") in self._media
            if not known:
                return _Response(400, _graph_error(131053, "Media upload error", "unknown media id"))
            if kind == "audio" and "caption" in media:
                return _Response(400, _graph_error(100, "Invalid parameter", "audio messages take no caption"))
        elif kind == "interactive":
            problem = _interactive_problem(body.get("interactive") or {})
            if problem:
                return _Response(400, _graph_error(131009, "Parameter value is not valid", problem))
        elif kind == "template":
            template = body.get("template") or {}
            if not template.get("name") or not (template.get("language") or {}).get("code"):
                return _Response(400, _graph_error(132001, "Template name does not exist in the translation"))
        else:
            return _Response(400, _graph_error(100, "Invalid parameter", f"unknown type {kind}"))
        wamid = "wamid.HBgL" + hashlib.sha1(f"{to}:{next(self._numbers)}".encode()).hexdigest()[:24].upper()
        return _json(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                "messages": [{"id": wamid, "message_status": "accepted"}],
            }
        )


def _interactive_problem(interactive: dict[str, Any]) -> str:
    """What the Cloud API refuses in an interactive message, or '' (reply buttons: 1-3, ids up
    to 256, titles up to 20, unique; lists: up to 10 rows, titles up to 24, ids up to 200;
    body text up to 1,024 characters)."""
    text = str((interactive.get("body") or {}).get("text") or "")
    if not text.strip() or len(text) > 1024:
        return "body.text is required and at most 1024 characters"
    action = interactive.get("action") or {}
    if interactive.get("type") == "button":
        buttons = [b.get("reply") or {} for b in action.get("buttons") or []]
        if not 1 <= len(buttons) <= 3:
            return "reply buttons: 1 to 3"
        titles = [str(b.get("title") or "") for b in buttons]
        if any(not t or len(t) > 20 for t in titles) or len(set(titles)) != len(titles):
            return "button titles must be unique, 1 to 20 characters"
        if any(not b.get("id") or len(str(b["id"])) > 256 for b in buttons):
            return "button ids must be 1 to 256 characters"
        return ""
    if interactive.get("type") == "list":
        rows = [r for section in action.get("sections") or [] for r in section.get("rows") or []]
        if not 1 <= len(rows) <= 10 or not action.get("button"):
            return "a list needs a button label and 1 to 10 rows"
        if any(not r.get("title") or len(str(r["title"])) > 24 or not r.get("id") or len(str(r["id"])) > 200 for r in rows):
            return "list rows: title up to 24 characters, id up to 200"
        return ""
    return f"unknown interactive type {interactive.get('type')!r}"


class Meta:
    """What posts webhooks to our listener, the way Meta does: signed, and again until 200."""

    def __init__(self, url: str, app_secret: str = APP_SECRET, phone_number_id: str = PHONE_NUMBER_ID) -> None:
        self.url = url
        self.app_secret = app_secret
        self.phone_number_id = phone_number_id
        self._ids = itertools.count(1)
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        # One client for every delivery: building one costs ~0.1 s (its TLS context).
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def wamid(self) -> str:
        return f"wamid.HBgLMTU1NTAxMDAxOTkVAgASGBQz{next(self._ids):08d}"

    def message(
        self, wa_id: str, kind: str = "text", *, at: int | None = None, context: str | None = None, **content: Any
    ) -> dict[str, Any]:
        """A webhook `messages[]` item from `wa_id`; `content` is its type's object (or for
        `text`, `body=`); `contacts` for a contacts message is a list."""
        item: dict[str, Any] = {"from": wa_id, "id": self.wamid(), "timestamp": str(at or int(time.time())), "type": kind}
        if kind == "text" and "body" in content:
            item["text"] = {"body": content.pop("body")}
        elif kind == "contacts":
            item["contacts"] = content.pop("contacts")
        elif content:
            item[kind] = content
        if context:
            item["context"] = {"from": "15550100199", "id": context}
        return item

    def payload(
        self,
        messages: list[dict[str, Any]] = (),
        statuses: list[dict[str, Any]] = (),
        names: dict[str, str] | None = None,
        phone_number_id: str | None = None,
    ) -> dict[str, Any]:
        """Meta's envelope around messages and statuses (one entry, one change)."""
        value: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550100199", "phone_number_id": phone_number_id or self.phone_number_id},
        }
        if messages:
            senders = dict.fromkeys(m["from"] for m in messages)
            value["contacts"] = [{"profile": {"name": (names or {}).get(s, "")}, "wa_id": s} for s in senders]
            value["messages"] = list(messages)
        if statuses:
            value["statuses"] = list(statuses)
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}],
        }

    @staticmethod
    def status(wamid: str, state: str, wa_id: str = "79991234567", errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A `statuses[]` item: sent, delivered, read or failed (with Graph error objects)."""
        item: dict[str, Any] = {"id": wamid, "status": state, "timestamp": str(int(time.time())), "recipient_id": wa_id}
        if errors:
            item["errors"] = errors
        return item

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()

    async def post(self, payload: Any, *, signature: str | None = "valid", raw: bytes | None = None) -> httpx.Response:
        """POST one webhook; `signature` "valid" signs it, None leaves it unsigned, any other
        text is sent as the header."""
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "valid":
            headers["X-Hub-Signature-256"] = self.sign(body)
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return await self._http().post(self.url, content=body, headers=headers)

    async def verify(self, token: str, challenge: str = "1158201444", mode: str = "subscribe") -> httpx.Response:
        """Meta's GET handshake when the webhook is configured."""
        params = {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge}
        return await self._http().get(self.url, params=params)


def graph_error_object(code: int, title: str, details: str = "") -> dict[str, Any]:
    """An error object as a failed status carries it."""
    error: dict[str, Any] = {"code": code, "title": title, "message": title}
    if details:
        error["error_data"] = {"details": details}
    return error


def _graph_error(code: int, message: str, details: str = "", type_: str = "OAuthException") -> bytes:
    error: dict[str, Any] = {"message": f"(#{code}) {message}", "type": type_, "code": code, "fbtrace_id": "AbCdEfGhIjKlMnOp"}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return json.dumps({"error": error}).encode()


def _json(value: Any) -> _Response:
    return _Response(200, json.dumps(value).encode())


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    api: FakeGraphApi
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _serve(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        params: dict[str, Any] = {}
        files: dict[str, tuple[str, str, bytes]] = {}
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/json") and body:
            params = json.loads(body)
        elif content_type.startswith("multipart/form-data"):
            form = BytesParser(policy=policy.HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
            for part in form.iter_parts():
                name = part.get_param("name", header="content-disposition")
                data = part.get_payload(decode=True) or b""
                if part.get_filename() is not None:
                    files[name] = (part.get_filename(), part.get_content_type(), data)
                else:
                    params[name] = data.decode()
        response = self.api.handle(method, urllib.parse.unquote(url.path), query, self.headers, params, files)
        if response.drop:
            self.close_connection = True
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)
