"""The website chat channel: a small widget on the shop's pages talks to the core's listener.

One script tag (`<script src="https://your.host/hooks/webchat/widget.js" async></script>`)
opens a chat box. The routes, all under the channel's prefix:

    GET  /widget.js      the widget (plain JavaScript, no build step)
    GET  /demo           a demo page with the script tag (unless `demo_page = false`)
    POST /session        a new visitor: their id and a signed session token
    POST /messages       the visitor sends text with a client message id (and `button`, the id
                         of a button they pressed under one of our messages)
    GET  /poll?after=N   long poll: the visitor's conversation after entry N (or wait)
    POST /contact        the visitor leaves an e-mail or phone (becomes their identity)
    GET  /status         online or offline (office hours), whether an operator is typing

Every route takes `lang` in its query (the widget sends its language, "ru" or "en"; else the
Accept-Language header decides, else English): the title, greeting, offline note, the line
stored for a contact and the refusals of what a visitor typed come in that language
(connectors/webchat/texts.py), and the visitor's messages carry it in their meta as
`language` when the visitor said one, a hint for the bot.

Every endpoint but the two static files needs `Authorization: Bearer <token>` (session needs
nothing: it is how a visitor gets one, limited per client address instead). Tokens are
HMAC-signed with the channel's `secret`, so they survive restarts without a table. Browsers
from origins other than the channel's own and `allowed_origins` are refused (403); preflight
`OPTIONS` is answered. A visitor's message is acknowledged only after `sink.deliver`
returned; its `external_id` is derived from the client message id, so a retried POST stores
once.

The connector knows no SQLite: what the visitor sees of the conversation (their messages and
our replies) is a small append-only log per visitor under `<data_dir>/webchat/<channel>/`, so
a page reload and a core restart both keep it. `send` appends an operator's reply there and
wakes the visitor's long polls. The identity is `web` with the visitor id as address.

Past 600 lines: the widget's routes (session, send, poll, typing, contacts, buttons) and their
checks belong together; sessions, visitor logs and hours are already modules of their own.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from connectors.base import (
    N_,
    ChannelContext,
    Connector,
    ConnectorError,
    DeliveryUpdate,
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
from connectors.json_body import JsonRefused, read_json
from connectors.limits import TokenBuckets
from connectors.log_digest import LogDigest
from connectors.webchat.hours import office_hours
from connectors.webchat.sessions import VISITOR_ID, SessionTokens
from connectors.webchat.texts import localized, sentence, visitor_language
from connectors.webchat.visitors import VisitorLog, VisitorLogs
from omniconsole.models import DeliveryState, IdentityKind

# Requests to the chat's endpoints are small JSON; anything larger is refused before parsing.
MAX_REQUEST_BYTES = 16 * 1024
# How long `send` waits for a waiting long poll to take a reply before calling it only "sent".
DELIVER_WAIT = 1.0
# Long polls one visitor may hold open at once (tabs); more are refused (429).
MAX_POLLS_PER_VISITOR = 6

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMAIL = re.compile(r"^[^@\s<>\"',;]{1,64}@[^@\s<>\"',;]+\.[^@\s<>\"',;]{2,}$")
_PHONE = re.compile(r"^\+?[0-9 ()\-.]{6,24}$")
_STATIC = {
    "widget.js": "application/javascript; charset=utf-8",
    "demo.html": "text/html; charset=utf-8",
}
# The demo page loads only our own script and talks only to us.
_DEMO_CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self'"


# -- the connector ---------------------------------------------------------------------------


class WebChatConnector(Connector):
    """The website chat: a widget served by the core's listener, visitors as `web` identities.

    Settings: `secret` (signs session tokens; from `secret_env`/`secret_file`, at least 16
    characters), `allowed_origins` (the shop's sites, such as ["https://shop.example"]),
    `hours` and `timezone` (office hours, a business calendar that also reads `country`,
    `closed` and `workdays`; outside them the widget offers to answer by e-mail), `title`,
    `greeting`, `offline_text` (each text for every language, or a table by language such as
    `{ en = "...", ru = "..." }`: connectors/webchat/texts.py), `poll_seconds` (long poll, default 25),
    `messages_per_minute` (per visitor, default 20), `sessions_per_minute` (per address,
    default 10), `max_chars` (default 4000), `session_days` (default 365), `demo_page`
    (default true) and the listener `path` (default /hooks/<name>).
    """

    kind = "webchat"
    identity_kind = IdentityKind.WEB
    draws_buttons = True  # the widget draws them under the message; a press posts its id
    needs_customer_first = "the web chat can only write to a visitor who opened a chat on the site"

    def __init__(self, context: ChannelContext, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        super().__init__(context)
        settings = context.settings
        self.clock = clock
        secret = str(settings.get("secret") or "")
        if len(secret) < 16:
            raise PermanentError(
                N_(
                    "the web chat needs a secret of at least 16 characters to sign visitor sessions "
                    "(secret_env or secret_file; for example the output of `openssl rand -hex 32`)"
                )
            )
        try:
            self.hours = office_hours(settings)
            self.allowed_origins = _origins(settings.get("allowed_origins", []))
            self.poll_seconds = _number(settings, "poll_seconds", 25.0, 0.05, 120.0)
            self.max_chars = int(_number(settings, "max_chars", 4000, 1, 100_000))
            messages_per_minute = int(_number(settings, "messages_per_minute", 20, 1, 10_000))
            sessions_per_minute = int(_number(settings, "sessions_per_minute", 10, 1, 10_000))
            session_days = _number(settings, "session_days", 365, 1 / 86400, 3650)
            self.title = localized(settings, "title")
            self.greeting = localized(settings, "greeting")
            self.offline_text = localized(settings, "offline_text")
        except ValueError as exc:
            raise PermanentError(f"web chat settings: {exc}") from None
        self.demo_page = bool(settings.get("demo_page", True))
        self.tokens = SessionTokens(secret, context.name, session_days)
        self.message_limit = TokenBuckets(messages_per_minute)
        self.session_limit = TokenBuckets(sessions_per_minute)
        slug = re.sub(r"[^a-z0-9]+", "-", context.name.lower()).strip("-") or f"channel-{context.channel_id}"
        self.logs = VisitorLogs(context.data_dir / "webchat" / slug)
        self._sink: InboundSink | None = None
        self._closing = asyncio.Event()
        self._typing: frozenset[str] = frozenset()
        self._typing_at = 0.0
        self._static: dict[str, bytes] = {}
        self._recording: set[asyncio.Task[None]] = set()
        self.faults = LogDigest(self.log)  # failures to store or to write a log, once a minute per kind

    # -- the contract ----------------------------------------------------------------------

    async def check(self) -> str:
        """Say how the chat is set up and whether it is within office hours now."""
        origins = ", ".join(self.allowed_origins) or Words(N_("only its own demo page (allowed_origins is empty)"))
        if self.hours.spans or self.hours.country:
            template, params = self.hours.describe_parts()
            calendar = Words(template, **params)
            template = N_("hours {calendar}, open now") if self.online() else N_("hours {calendar}, closed now")
            hours = Words(template, calendar=calendar)
        else:
            hours = Words(N_("always open"))
        return Words(N_("web chat for {origins}; {hours}"), origins=origins, hours=hours)

    async def run(self, sink: InboundSink) -> None:
        """Take visitors' messages for `sink` until cancelled."""
        self._closing.clear()
        self._sink = sink
        sink.connected(await self.check())
        try:
            await asyncio.Event().wait()
        finally:
            self._sink = None
            self._release_polls()

    async def close(self) -> None:
        """Answer the long polls still waiting, so the listener stops at once."""
        self._release_polls()
        self.faults.flush()

    def _release_polls(self) -> None:
        self._closing.set()
        for log in self.logs.all():
            log.notify()

    async def send(self, message: OutboundMessage) -> SendResult:
        """Put an operator's reply in the visitor's log and wake their polls: delivered when a
        waiting poll took it at once, else sent (upgraded once the widget has it)."""
        visitor = message.address.strip()
        if not VISITOR_ID.match(visitor):
            raise PermanentError(f"{message.address!r} is not a web chat visitor")
        if message.attachments:
            raise PermanentError("the web chat cannot send files yet; send a link, or reply by e-mail")
        if not message.body.strip():
            raise PermanentError("nothing to send: the message is empty")
        external_id = f"out-{message.id}"
        try:
            log = await self.logs.get(visitor)
            async with log.lock:
                buttons = [{"id": b.id, "title": b.title} for b in message.buttons]
                entry, _ = await log.append(
                    f"out:{message.id}", "operator", message.body, **({"buttons": buttons} if buttons else {})
                )
        except OSError as exc:
            raise TransientError(f"cannot write the visitor's chat log: {exc.strerror or exc}") from exc
        seq = entry["seq"]
        if log.taken < seq and log.polls:
            deadline = time.monotonic() + DELIVER_WAIT
            while log.taken < seq and log.polls and time.monotonic() < deadline:
                await _wait(log.changed, deadline - time.monotonic())
        if log.taken >= seq:
            return SendResult(external_id, DeliveryState.DELIVERED)
        log.unconfirmed[seq] = external_id
        return SendResult(external_id, DeliveryState.SENT)

    async def operator_typing(self, addresses: set[str]) -> None:
        """The core says which visitors an operator is typing to now (about every second)."""
        now = frozenset(a for a in addresses if VISITOR_ID.match(a))
        changed = now ^ self._typing
        self._typing, self._typing_at = now, time.monotonic()
        for visitor in changed:
            log = self.logs.cached(visitor)
            if log is not None:
                log.notify()

    def web_routes(self) -> Sequence[WebRoute]:
        """The widget, the demo page and the visitor API (with its CORS preflights)."""
        api = {
            "/session": ("POST", self._session),
            "/messages": ("POST", self._message),
            "/contact": ("POST", self._contact),
            "/poll": ("GET", self._poll),
            "/status": ("GET", self._status),
        }
        routes = [WebRoute("GET", "/widget.js", self._widget)]
        if self.demo_page:
            routes.append(WebRoute("GET", "/demo", self._demo))
        for path, (method, handler) in api.items():
            routes.append(WebRoute(method, path, self._guarded(handler, needs_token=path != "/session")))
            routes.append(WebRoute("OPTIONS", path, self._preflight))
        return routes

    # -- state -----------------------------------------------------------------------------

    def online(self) -> bool:
        """Whether it is office hours now."""
        return self.hours.open_at(self.clock())

    def typing(self, visitor: str) -> bool:
        """Whether an operator is typing to this visitor (stale news counts as no)."""
        return visitor in self._typing and time.monotonic() - self._typing_at < 5.0

    # -- static files ----------------------------------------------------------------------

    def _file(self, name: str) -> bytes:
        if name not in self._static:
            self._static[name] = resources.files("connectors.webchat").joinpath("static").joinpath(name).read_bytes()
        return self._static[name]

    async def _widget(self, request: WebRequest) -> WebResponse:
        return WebResponse(
            200,
            self._file("widget.js"),
            _STATIC["widget.js"],
            {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    async def _demo(self, request: WebRequest) -> WebResponse:
        # The script tag names the widget by its full path, whatever the channel's prefix.
        widget = html.escape(request.path.rsplit("/", 1)[0] + "/widget.js", quote=True)
        page = self._file("demo.html").replace(b"{{widget}}", widget.encode("utf-8"))
        return WebResponse(
            200,
            page,
            _STATIC["demo.html"],
            {"Content-Security-Policy": _DEMO_CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
        )

    # -- the gate: origin, token, size -----------------------------------------------------

    def _allowed_origin(self, request: WebRequest) -> str | None:
        """The request's Origin when it may use the chat ("" when it sent none: not a
        browser's cross-site call, the token decides); None when it is another site."""
        origin = request.header("origin")
        if not origin:
            return ""
        if origin.lower() in self.allowed_origins:
            return origin
        try:
            parts = urlsplit(origin)
        except ValueError:  # "http://[" and the like: not an origin at all
            return None
        if parts.scheme in ("http", "https") and parts.netloc and parts.netloc == request.header("host"):
            return origin  # our own demo page
        return None

    async def _preflight(self, request: WebRequest) -> WebResponse:
        origin = self._allowed_origin(request)
        if origin is None:
            return _refused_origin(request)
        return WebResponse(
            204,
            b"",
            headers={
                **_cors(origin),
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
            },
        )

    def _guarded(self, handler: Callable[[WebRequest, str], Any], *, needs_token: bool) -> Callable[[WebRequest], Any]:
        """Wrap an API handler: refuse other sites (403), oversized bodies (413), missing or
        bad tokens (401, except for /session), and put the CORS headers on every answer."""

        async def gate(request: WebRequest) -> WebResponse:
            origin = self._allowed_origin(request)
            if origin is None:
                return _refused_origin(request)
            if len(request.body) > MAX_REQUEST_BYTES:
                answer = _error(413, f"the request is over {MAX_REQUEST_BYTES // 1024} KB")
            elif not needs_token:
                answer = await handler(request, "")
            else:
                scheme, _, token = request.header("authorization").partition(" ")
                visitor = self.tokens.visitor(token.strip()) if scheme.lower() == "bearer" else None
                if visitor is None:
                    why = (
                        "the session token is missing"
                        if not token
                        else "the session token is not valid (forged, damaged or expired)"
                    )
                    answer = _error(401, f"{why}; start a new session with POST {request.path.rsplit('/', 1)[0]}/session")
                else:
                    try:
                        answer = await handler(request, visitor)
                    except OSError as exc:
                        self.faults.note(
                            f"log {exc.errno}", logging.ERROR, "the web chat cannot read a visitor's log: %s", exc.strerror or exc
                        )
                        answer = _error(
                            503, "the chat cannot read its history right now; try again shortly", {"Retry-After": "5"}
                        )
            return WebResponse(
                answer.status, answer.body, answer.content_type, {**answer.headers, **_cors(origin), "Cache-Control": "no-store"}
            )

        return gate

    # -- the visitor API -------------------------------------------------------------------

    async def _session(self, request: WebRequest, _: str) -> WebResponse:
        """A new visitor: an id and a token (no customer exists until they write)."""
        wait = self.session_limit.wait_for(request.remote)
        if wait:
            return _slow_down(wait, "too many new chat sessions from this address")
        visitor, token = self.tokens.issue()
        return WebResponse.json(200, {"visitor": visitor, "token": token, **self._state(request, visitor)})

    async def _status(self, request: WebRequest, visitor: str) -> WebResponse:
        return WebResponse.json(200, self._state(request, visitor))

    def _state(self, request: WebRequest, visitor: str) -> dict[str, Any]:
        """Online, typing and the texts the widget shows, in the visitor's language (`language`
        says which one that is)."""
        language, _ = _language(request)
        return {
            "online": self.online(),
            "typing": self.typing(visitor),
            "language": language,
            "title": self.title.get(language),
            "greeting": self.greeting.get(language),
            "offline_text": self.offline_text.get(language),
        }

    async def _message(self, request: WebRequest, visitor: str) -> WebResponse:
        """Store the visitor's text, then (only then) record it in their log and answer 200."""
        fields, problem = _json_fields(request.body, ("id", "text"))
        if problem:
            return problem
        client_id, text = fields["id"], fields["text"]
        language, _ = _language(request)
        if not text.strip():
            return _error(400, sentence(language, "empty"))
        if len(text) > self.max_chars:
            return _error(413, sentence(language, "too_long", limit=self.max_chars))
        page = fields.get("page") if isinstance(fields.get("page"), str) else ""
        button = fields.get("button")
        if button is not None and (not isinstance(button, str) or not 1 <= len(button.encode("utf-8")) <= 64):
            return _error(400, "button must be the id of a button, 1 to 64 bytes")
        return await self._take(request, visitor, client_id, text, "", page=page, button=button)

    async def _contact(self, request: WebRequest, visitor: str) -> WebResponse:
        """An e-mail or phone the visitor left: delivered as an identity of theirs on an
        inbound message, so the core attaches it (or suggests the person who has it)."""
        fields, problem = _json_fields(request.body, ("id",))
        if problem:
            return problem
        email = str(fields.get("email") or "").strip()
        phone = str(fields.get("phone") or "").strip()
        name = str(fields.get("name") or "").strip()[:100]
        language, _ = _language(request)
        identities: list[tuple[IdentityKind, str]] = []
        said = []
        if email:
            if len(email) > 254 or not _EMAIL.match(email):
                return _error(400, sentence(language, "bad_email"))
            identities.append((IdentityKind.EMAIL, email))
            said.append(sentence(language, "my_email", address=email))
        if phone:
            if not _PHONE.match(phone) or not 6 <= sum(ch.isdigit() for ch in phone) <= 15:
                return _error(400, sentence(language, "bad_phone"))
            identities.append((IdentityKind.PHONE, phone))
            said.append(sentence(language, "my_phone", address=phone))
        if not identities:
            return _error(400, sentence(language, "no_contact"))
        # The visitor's own words, as their chat shows them (and the operator reads them).
        text = sentence(language, "my_contact", items=sentence(language, "and").join(said))
        text += sentence(language, "name", name=name) if name else ""
        return await self._take(request, visitor, fields["id"], text, name, identities=tuple(identities))

    async def _take(
        self,
        request: WebRequest,
        visitor: str,
        client_id: str,
        text: str,
        name: str,
        *,
        page: str = "",
        identities: tuple[tuple[IdentityKind, str], ...] = (),
        button: str | None = None,
    ) -> WebResponse:
        wait = self.message_limit.wait_for(visitor)
        if wait:
            return _slow_down(wait, "too many messages in a minute")
        sink = self._sink
        if sink is None:
            return _error(503, "the chat is starting or stopping; your message will be sent again shortly", {"Retry-After": "2"})
        key = f"in:{client_id}"
        try:
            log = await self.logs.get(visitor)
            async with log.lock:
                if key not in log.keys:
                    language, said = _language(request)
                    await self._deliver(
                        sink, log, visitor, client_id, text, name, page, identities, button, language if said else None
                    )
                entry, _ = await log.append(key, "visitor", text, id=client_id, **({"name": name} if name else {}))
        except OSError as exc:
            # Stored or not, it is not in what the visitor sees yet: the widget posts again,
            # the core drops a duplicate, and the log line is written then.
            self.faults.note(
                f"log {exc.errno}", logging.ERROR, "cannot use the web chat log of visitor %s: %s", visitor, exc.strerror or exc
            )
            return _error(503, "your message was not saved yet; it will be sent again shortly", {"Retry-After": "2"})
        except _NotStored:
            return _error(503, "your message was not saved yet; it will be sent again shortly", {"Retry-After": "2"})
        return WebResponse.json(200, {"seq": entry["seq"], "id": client_id, "online": self.online()})

    async def _deliver(
        self,
        sink: InboundSink,
        log: VisitorLog,
        visitor: str,
        client_id: str,
        text: str,
        name: str,
        page: str,
        identities: tuple[tuple[IdentityKind, str], ...],
        button: str | None = None,
        language: str | None = None,
    ) -> None:
        """Hand one visitor message to the core; returns once it is durable in the store
        (raises _NotStored when it is not). `button`: the id of the button the visitor pressed
        (the text is its title); `language`: the language the visitor's widget speaks ("ru",
        "en"), None when they did not say."""
        meta: dict[str, Any] = {"visitor": visitor}
        if button:
            meta["button"] = button
        if language:
            meta["language"] = language
        if not self.online():
            meta["offline"] = True
        try:
            page = page[:2000] if urlsplit(page).scheme in ("http", "https") else ""
        except ValueError:  # not a URL: the page is only a hint for the operator
            page = ""
        message = InboundMessage(
            external_id=f"{visitor}:{client_id}",
            identity_kind=IdentityKind.WEB,
            address=visitor,
            body=text,
            sent_at=self.clock(),
            # A name the operator can tell apart until the visitor gives theirs.
            sender_name=name or log.name or f"Web visitor {visitor[:6]}",
            extra_identities=identities,
            origin=page or None,
            # Anyone can type any address into a chat box: the core marks what it adds as
            # unverified, for the operator to see before trusting it.
            flags=frozenset({"unverified_identities"}) if identities else (frozenset({"button"}) if button else frozenset()),
            meta=meta,
        )
        # Durable in the store first: a crash before the log line means the widget posts
        # again, the core drops the duplicate and the log line is written then.
        try:
            await sink.deliver([message], cursor=None)
        except ConnectorError as exc:  # a fault that passes (a full disk): said without a traceback
            self.faults.note(
                f"not stored: {type(exc).__name__}",
                logging.WARNING,
                "a web chat message was not stored; the widget sends it again: %s",
                exc.reason,
            )
            raise _NotStored() from exc
        except Exception as exc:
            self.faults.note(
                "not stored", logging.ERROR, "a web chat message was not stored; the widget sends it again", exc_info=True
            )
            raise _NotStored() from exc

    async def _poll(self, request: WebRequest, visitor: str) -> WebResponse:
        """The conversation after entry `after`, with online and typing; waits up to
        `poll_seconds` when the widget already has everything (as its query says)."""
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            return _error(400, "after must be a whole number (the last entry the widget has)")
        if after < 0:
            return _error(400, "after must be 0 or more")
        shown_typing = request.query.get("typing")
        shown_online = request.query.get("online")
        log = await self.logs.get(visitor)
        reset = after > log.last  # the widget knows entries we lost: it starts over
        if reset:
            after = 0
        self._confirm(log, after)

        def news() -> bool:
            return (
                reset
                or log.last > after
                or self._closing.is_set()
                or shown_typing != str(int(self.typing(visitor)))
                or shown_online != str(int(self.online()))
            )

        if not news():
            if log.polls >= MAX_POLLS_PER_VISITOR:
                return _slow_down(5, "too many open chat windows for this visitor")
            log.polls += 1
            try:
                deadline = time.monotonic() + self.poll_seconds
                while not news() and time.monotonic() < deadline:
                    await _wait(log.changed, deadline - time.monotonic())
            finally:
                log.polls -= 1
        entries = log.view(after)
        if entries:
            log.taken = max(log.taken, entries[-1]["seq"])
            log.notify()  # a `send` waiting for this pickup
        return WebResponse.json(
            200,
            {
                "messages": entries,
                "last": log.last,
                "reset": reset,
                "typing": self.typing(visitor),
                "online": self.online(),
            },
        )

    def _confirm(self, log: VisitorLog, seen: int) -> None:
        """A poll from entry `seen` on says the widget has every reply up to it: they are
        delivered."""
        done = [seq for seq in log.unconfirmed if seq <= seen]
        if not done or self._sink is None:
            return
        updates = [DeliveryUpdate(log.unconfirmed.pop(seq), DeliveryState.DELIVERED) for seq in done]
        # Recorded beside the poll, which answers at once; kept referenced until done.
        task = asyncio.create_task(self._record_delivery(self._sink, updates))
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    async def _record_delivery(self, sink: InboundSink, updates: list[DeliveryUpdate]) -> None:
        try:
            await sink.delivery_updates(updates)
        except Exception as exc:
            self.log.warning("could not record that %d web chat replies were delivered: %s", len(updates), exc)


# -- helpers ---------------------------------------------------------------------------------


class _NotStored(Exception):
    """The core could not store a visitor's message (it said why in the log)."""


async def _wait(event: asyncio.Event, timeout: float) -> None:
    if timeout <= 0:
        return
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        pass


def _language(request: WebRequest) -> tuple[str, bool]:
    """The visitor's language for a request and whether they said it (texts.visitor_language)."""
    return visitor_language(request.query, request.header("accept-language"))


def _cors(origin: str) -> dict[str, str]:
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _error(status: int, reason: str, headers: Mapping[str, str] | None = None) -> WebResponse:
    """A refusal the widget can show: `{"error": reason}`."""
    answer = WebResponse.json(status, {"error": reason})
    return WebResponse(answer.status, answer.body, answer.content_type, dict(headers or {}))


def _slow_down(wait: float, why: str) -> WebResponse:
    seconds = max(1, round(wait))
    return _error(429, f"{why}; try again in {seconds} s", {"Retry-After": str(seconds)})


def _refused_origin(request: WebRequest) -> WebResponse:
    origin = request.header("origin")[:200]
    return _error(403, f"the site {origin!r} may not use this chat; add it to the channel's allowed_origins")


def _json_fields(body: bytes, required: Sequence[str]) -> tuple[dict[str, Any], WebResponse | None]:
    """The JSON object of a request with `required` text fields (`id` a client id); lone
    surrogates in its text are repaired (connectors.json_body)."""
    try:
        fields = read_json(body)
    except JsonRefused as exc:
        return {}, _error(400, str(exc))
    if not isinstance(fields, dict):
        return {}, _error(400, "the body must be a JSON object")
    for name in required:
        if not isinstance(fields.get(name), str):
            return {}, _error(400, f"{name} is missing (it must be text)")
    if "id" in required and not _CLIENT_ID.match(fields["id"]):
        return {}, _error(400, "id must be 1 to 64 letters, digits, '-' or '_' (the widget's message id)")
    return fields, None


def _origins(raw: Any) -> tuple[str, ...]:
    if raw in (None, ""):
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(o, str) for o in raw):
        raise ValueError('allowed_origins must be a list of sites such as ["https://shop.example"]')
    origins = []
    for origin in raw:
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
            raise ValueError(f'allowed_origins: {origin!r} is not an origin (scheme and host, such as "https://shop.example")')
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())
    return tuple(origins)


def _number(settings: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{key} must be a number from {low:g} to {high:g}")
    return float(value)
