"""The core's HTTP listener: where channels that push (WhatsApp webhooks, later the website
chat, an open API, telephony call events) reach the core.

    listener = Listener(settings.listener)
    listener.mount("/hooks/whatsapp", connector.web_routes(), owner="whatsapp")
    await listener.start()      # ListenerError in words if the address is taken
    ...
    await listener.stop()

It is meant to sit behind a TLS reverse proxy and binds 127.0.0.1 unless told otherwise. Every
request passes the same gate before a connector sees it: a per-client rate limit (429), the
route table (404, 405), and a body size limit (413). Connectors never see aiohttp: they get a
`WebRequest` (header, query and path text always valid Unicode: bytes that are not UTF-8 become
U+FFFD) and answer a `WebResponse` (connectors/base.py).

Bad input is the client's mistake and is answered 4xx, never 500 and never a 503 that would
make the sender retry forever: a request aiohttp cannot parse (a header over 8 KB, a broken
request line) gets its 400, a handler that recurses on a deeply nested body gets 400. A handler
that raises otherwise answers 500 and is logged (a bug of ours), and the listener goes on
serving. A 503 (a fault that passes) always carries `Retry-After`.

Refusals are logged at most once per kind per minute with a count (connectors/log_digest.py),
never with a traceback: a flood of bad requests costs the log a line a minute.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from connectors.base import WebHandler, WebRequest, WebResponse, WebRoute
from connectors.json_body import repair_text
from connectors.limits import TokenBuckets
from connectors.log_digest import LogDigest
from omniconsole.config import ListenerSettings
from omniconsole.errors import OmniError
from omniconsole.i18n import N_
from omniconsole.models import sanitize_text

log = logging.getLogger(__name__)

_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


class ListenerError(OmniError):
    """The listener cannot serve as configured (the port is taken, two channels want one path)."""


def channel_prefix(name: str, channel_id: int, configured: str | None = None) -> str:
    """Where a channel's routes live: its configured `path`, else `/hooks/<name as a slug>`
    (`/hooks/channel-<id>` when the name has no Latin letters or digits)."""
    if configured:
        return "/" + configured.strip().strip("/")
    slug = _SLUG_JUNK.sub("-", name.lower()).strip("-")
    return f"/hooks/{slug or f'channel-{channel_id}'}"


@dataclass(frozen=True, slots=True)
class _Endpoint:
    handler: WebHandler
    owner: str


@dataclass(frozen=True, slots=True)
class ServedRoute:
    """One method on one path, and the channel that serves it."""

    path: str
    method: str
    owner: str


#: The listener's per-client rate limit (the one token bucket the web chat uses too).
RateLimiter = TokenBuckets


class Listener:
    """One HTTP server for every channel's routes, each channel under its own prefix."""

    def __init__(self, settings: ListenerSettings, *, clock: Callable[[], float] = time.monotonic, shutdown_timeout: float = 3.0):
        self.settings = settings
        # How long a stop waits for requests in flight. A webhook cut short was never
        # answered 200, so its sender delivers it again: short is safe, and a stop must not
        # hang on a client that keeps a connection open.
        self.shutdown_timeout = shutdown_timeout
        self.max_body = settings.max_body_kb * 1024
        # Request bodies held at once, all clients together (16 of the largest, at least 32 MB).
        self.held_budget = max(16 * self.max_body, 32 * 1024 * 1024)
        self._held = 0
        self.limiter = RateLimiter(settings.rate_per_minute, clock)
        self._proxies = _networks(settings.trusted_proxies)
        self.refusals = LogDigest(log)
        self._routes: dict[str, dict[str, _Endpoint]] = {}
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- routes ----------------------------------------------------------------------------

    def mount(self, prefix: str, routes: Sequence[WebRoute], owner: str) -> list[str]:
        """Serve `routes` under `prefix` for the channel `owner`; returns the full paths.

        Raises ListenerError, mounting nothing, when another channel has one of the paths."""
        prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        planned: list[tuple[str, str, WebHandler]] = []
        for route in routes:
            path = _normal_path(prefix + ("/" + route.path.strip("/") if route.path.strip("/") else ""))
            method = route.method.upper()
            taken = self._routes.get(path, {}).get(method)
            if taken is not None:
                raise ListenerError(
                    N_("{method} {path} is already served for channel {owner}; give one of them another `path`"),
                    method=method,
                    path=path,
                    owner=repr(taken.owner),
                )
            planned.append((path, method, route.handler))
        for path, method, handler in planned:
            self._routes.setdefault(path, {})[method] = _Endpoint(handler, owner)
        return sorted({path for path, _, _ in planned})

    @property
    def paths(self) -> list[str]:
        """Every path served, for the log and for `omniconsole doctor`."""
        return sorted(self._routes)

    @property
    def routes(self) -> list[ServedRoute]:
        """Every (path, method) served and its channel, sorted."""
        return [
            ServedRoute(path, method, endpoint.owner)
            for path, methods in sorted(self._routes.items())
            for method, endpoint in sorted(methods.items())
        ]

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the configured address and serve; ListenerError in words if that fails."""
        if self._runner is not None:
            return
        # aiohttp enforces the body limit as it reads (chunked bodies included); our handler
        # turns its refusal into a 413 with a reason.
        app = web.Application(client_max_size=self.max_body)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=self.shutdown_timeout,
            logger=_ServerLog(log, self.refusals),
        )
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ListenerError(
                N_("cannot listen for webhooks on {host}:{port}: {reason}; change [listener] port or stop what uses it"),
                host=self.settings.host,
                port=self.settings.port,
                reason=exc.strerror or str(exc),
            ) from exc
        self._runner = runner
        self._port = next((address[1] for address in runner.addresses if isinstance(address, tuple)), self.settings.port)
        log.info("listening for webhooks on %s", self.url)

    async def stop(self) -> None:
        """Stop serving (requests in flight are given a moment to finish)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self.refusals.flush()

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def port(self) -> int:
        """The port bound (the real one when the config says 0: any free port)."""
        return self._port if self._port is not None else self.settings.port

    @property
    def url(self) -> str:
        host = self.settings.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    # -- serving ---------------------------------------------------------------------------

    def client_of(self, remote: str, forwarded_for: str) -> str:
        """The client's address: the peer, or behind a trusted proxy (`trusted_proxies`, none by
        default) the last address in X-Forwarded-For that is not a proxy (the ones before it are
        the client's own claims). From anyone else X-Forwarded-For is only a claim, ignored."""
        if not forwarded_for or not self._trusted(remote):
            return remote
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop[:64]
        return hops[0][:64] if hops else remote

    def _trusted(self, address: str) -> bool:
        if not self._proxies:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in network for network in self._proxies)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        client = self.client_of(request.remote or "", request.headers.get("X-Forwarded-For", ""))
        wait = self.limiter.wait_for(client)
        if wait:
            self._refused("429", logging.WARNING, client, "over the rate limit ([listener] rate_per_minute)")
            return _plain(429, "too many requests from this address; slow down", {"Retry-After": str(max(1, round(wait)))})
        path = _normal_path(_text(request.path))
        methods = self._routes.get(path)
        if methods is None:
            self._refused("404", logging.INFO, client, f"nothing is served at {path}")
            return _plain(404, f"nothing is served at {path}; webhooks live under the paths the channels were given")
        method = _text(request.method.upper())
        endpoint = methods.get(method)
        if endpoint is None:
            allowed = ", ".join(sorted(methods))
            self._refused("405", logging.INFO, client, f"{method} {path}")
            return _plain(405, f"{path} does not take {method} requests; it takes {allowed}", {"Allow": allowed})
        if request.content_length is not None and request.content_length > self.max_body:
            return self._too_large(client, path)
        if self._held + (request.content_length or 0) > self.held_budget:
            return self._busy(client)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(client, path)
        if self._held + len(body) > self.held_budget:
            return self._busy(client)
        # Bodies waiting for their handler are counted, so many clients each sending the
        # largest allowed body cannot exhaust the core's memory (the rate limit is per client).
        self._held += len(body)
        try:
            return await self._answer(endpoint, method, path, request, body, client)
        finally:
            self._held -= len(body)

    async def _answer(
        self, endpoint: _Endpoint, method: str, path: str, request: web.Request, body: bytes, client: str
    ) -> web.StreamResponse:
        incoming = WebRequest(
            method=method,
            path=path,
            query={_text(key): _text(request.query.getone(key)) for key in request.query.keys()},
            headers={_text(name.lower()): _text(value) for name, value in request.headers.items()},
            body=body,
            remote=client,
        )
        try:
            answer = await endpoint.handler(incoming)
        except RecursionError:
            # A body nested past the parser's depth (JSON a thousand levels deep): the client's.
            self._refused(f"400 {path} nested", logging.WARNING, client, f"{method} {path}: nested too deeply to read")
            return _plain(400, "the request is nested too deeply to read")
        except Exception:
            # One channel's bug must not take the listener (or other channels) down.
            self.refusals.note(
                f"500 {endpoint.owner}",
                logging.ERROR,
                "listener: the %s handler of channel %r failed",
                method,
                endpoint.owner,
                exc_info=True,
            )
            return _plain(500, "internal error; the details are in the core's log")
        if not isinstance(answer, WebResponse):
            log.error("listener: channel %r answered %s with %r, not a WebResponse", endpoint.owner, path, type(answer).__name__)
            return _plain(500, "internal error; the details are in the core's log")
        headers = {**answer.headers, "Content-Type": answer.content_type}
        if answer.status == 503 and not any(name.lower() == "retry-after" for name in headers):
            headers["Retry-After"] = "5"  # a passing fault: say when to come back
        if 400 <= answer.status < 500 or answer.status == 503:
            reason = answer.body[:200].decode("utf-8", "replace")
            self._refused(f"{answer.status} {path}", logging.WARNING, client, f"{method} {path}: {reason}", answer.status)
        return web.Response(status=answer.status, body=answer.body, headers=headers)

    def _refused(self, kind: str, level: int, client: str, what: str, status: int | None = None) -> None:
        """Log a refusal (its kind at most once a minute, with a count)."""
        what = " ".join(sanitize_text(what).split())[:300]
        self.refusals.note(kind, level, "listener: refused %s from %s: %s", status or kind.split()[0], client[:64], what)

    def _too_large(self, client: str, path: str) -> web.Response:
        self._refused("413", logging.WARNING, client, f"a body over {self.settings.max_body_kb} KB for {path}")
        return _plain(413, f"the request body is over the {self.settings.max_body_kb} KB limit ([listener] max_body_kb)")

    def _busy(self, client: str) -> web.Response:
        self._refused("503 held", logging.WARNING, client, "too many large bodies held at once")
        return _plain(503, "too many large requests at once; try again shortly", {"Retry-After": "2"})


class _ServerLog(logging.LoggerAdapter):
    """aiohttp's own log, for what it answers before our gate: a request it cannot parse (a
    header over 8 KB, a broken request line or chunk) is the client's mistake, counted in the
    listener's digest without a traceback; anything else is logged as aiohttp logs it."""

    def __init__(self, logger: logging.Logger, refusals: LogDigest):
        super().__init__(logger, {})
        self.refusals = refusals

    def exception(self, msg: Any, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            problem = " ".join(sanitize_text(str(exc_info.message)).split())[:120]
            self.refusals.note(
                f"400 unreadable {type(exc_info).__name__}",
                logging.WARNING,
                "listener: refused an unreadable request from %s: %s",
                *(args[:1] or ("?",)),
                problem,
            )
            return
        if isinstance(exc_info, (ConnectionError, TimeoutError)):
            self.logger.debug(msg, *args, exc_info=exc_info, **kwargs)
            return
        self.refusals.note(f"aiohttp {msg}", logging.ERROR, msg, *args, exc_info=exc_info)


def _text(value: str) -> str:
    """Header, query and path text as aiohttp gives it (bytes that are not UTF-8 kept as lone
    surrogates) made valid Unicode: those bytes become U+FFFD, so no handler fails to encode it."""
    if value.isascii():
        return value
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that stands for no byte: only replace it
        return repair_text(value)


def _networks(proxies: Sequence[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """`trusted_proxies` as networks (an address is a network of one); config.py checked them."""
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies)


def _normal_path(path: str) -> str:
    """`/hooks/whatsapp/` and `/hooks/whatsapp` are one path."""
    stripped = path.rstrip("/")
    return stripped or "/"


def _plain(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    # Any page may read why the listener itself refused (a rate limit, a size limit): the
    # answer holds nothing but the reason, and a web chat widget on a shop's site can then
    # tell its visitor instead of seeing a bare network error.
    return web.Response(status=status, text=reason + "\n", headers={"Access-Control-Allow-Origin": "*", **(headers or {})})
