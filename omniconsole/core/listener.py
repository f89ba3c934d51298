"""The core's HTTP listener: where channels that push (WhatsApp webhooks, later the website
chat, an open API, telephony call events) reach the core.

    listener = Listener(settings.listener)
    listener.mount("/hooks/whatsapp", connector.web_routes(), owner="whatsapp")
    await listener.start()      # ListenerError in words if the address is taken
    ...
    await listener.stop()

It is meant to sit behind a TLS reverse proxy and binds 127.0.0.1 unless told otherwise. Every
request passes the same gate before a connector sees it: a per-client rate limit (429), the
route table (404, 405), and a body size limit (413); a handler that raises answers 500 and is
logged, and the listener goes on serving. Connectors never see aiohttp: they get a
`WebRequest` and answer a `WebResponse` (connectors/base.py).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from connectors.base import WebHandler, WebRequest, WebResponse, WebRoute
from connectors.limits import TokenBuckets
from omniconsole.config import ListenerSettings
from omniconsole.errors import OmniError

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


#: The listener's per-client rate limit (the one token bucket the web chat uses too).
RateLimiter = TokenBuckets


class Listener:
    """One HTTP server for every channel's routes, each channel under its own prefix."""

    def __init__(
        self, settings: ListenerSettings, *, clock: Callable[[], float] = time.monotonic, shutdown_timeout: float = 3.0
    ):
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
                    f"{method} {path} is already served for channel {taken.owner!r}; give one of them another `path`"
                )
            planned.append((path, method, route.handler))
        for path, method, handler in planned:
            self._routes.setdefault(path, {})[method] = _Endpoint(handler, owner)
        return sorted({path for path, _, _ in planned})

    @property
    def paths(self) -> list[str]:
        """Every path served, for the log and for `omniconsole doctor`."""
        return sorted(self._routes)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the configured address and serve; ListenerError in words if that fails."""
        if self._runner is not None:
            return
        # aiohttp enforces the body limit as it reads (chunked bodies included); our handler
        # turns its refusal into a 413 with a reason.
        app = web.Application(client_max_size=self.max_body)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=self.shutdown_timeout)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ListenerError(
                f"cannot listen for webhooks on {self.settings.host}:{self.settings.port}: "
                f"{exc.strerror or exc}; change [listener] port or stop what uses it"
            ) from exc
        self._runner = runner
        self._port = next((address[1] for address in runner.addresses if isinstance(address, tuple)), self.settings.port)
        log.info("listening for webhooks on %s", self.url)

    async def stop(self) -> None:
        """Stop serving (requests in flight are given a moment to finish)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

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
        """The client's address: the peer, or behind a trusted proxy the last address in
        X-Forwarded-For that is not a proxy (the ones before it are the client's own claims)."""
        trusted = self.settings.trusted_proxies
        if remote not in trusted or not forwarded_for:
            return remote
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if hop not in trusted:
                return hop
        return hops[0] if hops else remote

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        client = self.client_of(request.remote or "", request.headers.get("X-Forwarded-For", ""))
        wait = self.limiter.wait_for(client)
        if wait:
            log.debug("listener: %s is over the rate limit", client)
            return _plain(429, "too many requests from this address; slow down", {"Retry-After": str(max(1, round(wait)))})
        path = _normal_path(request.path)
        methods = self._routes.get(path)
        if methods is None:
            return _plain(404, f"nothing is served at {path}; webhooks live under the paths the channels were given")
        method = request.method.upper()
        endpoint = methods.get(method)
        if endpoint is None:
            allowed = ", ".join(sorted(methods))
            return _plain(405, f"{path} does not take {method} requests; it takes {allowed}", {"Allow": allowed})
        if request.content_length is not None and request.content_length > self.max_body:
            return self._too_large()
        if self._held + (request.content_length or 0) > self.held_budget:
            return _plain(503, "too many large requests at once; try again shortly", {"Retry-After": "2"})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()
        if self._held + len(body) > self.held_budget:
            return _plain(503, "too many large requests at once; try again shortly", {"Retry-After": "2"})
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
            query={key: request.query.getone(key) for key in request.query.keys()},
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
            remote=client,
        )
        try:
            answer = await endpoint.handler(incoming)
        except Exception:
            # One channel's bug must not take the listener (or other channels) down.
            log.exception("listener: the %s handler of channel %r failed", method, endpoint.owner)
            return _plain(500, "internal error; the details are in the core's log")
        if not isinstance(answer, WebResponse):
            log.error("listener: channel %r answered %s with %r, not a WebResponse", endpoint.owner, path, type(answer).__name__)
            return _plain(500, "internal error; the details are in the core's log")
        return web.Response(status=answer.status, body=answer.body, headers={**answer.headers, "Content-Type": answer.content_type})

    def _too_large(self) -> web.Response:
        return _plain(413, f"the request body is over the {self.settings.max_body_kb} KB limit ([listener] max_body_kb)")


def _normal_path(path: str) -> str:
    """`/hooks/whatsapp/` and `/hooks/whatsapp` are one path."""
    stripped = path.rstrip("/")
    return stripped or "/"


def _plain(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    # Any page may read why the listener itself refused (a rate limit, a size limit): the
    # answer holds nothing but the reason, and a web chat widget on a shop's site can then
    # tell its visitor instead of seeing a bare network error.
    return web.Response(status=status, text=reason + "\n", headers={"Access-Control-Allow-Origin": "*", **(headers or {})})
