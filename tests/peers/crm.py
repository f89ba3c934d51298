"""A CRM on 127.0.0.1 (TESTING.md "Webhook sinks and CRMs"): an aiohttp server that records the
webhooks it is sent (headers, body, arrival order) and can answer slowly, with 5xx, or not at
all; the same server answers CRM record lookups."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    """One request as the CRM saw it."""

    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class CrmPeer:
    """What the server does: `fail_next` requests answer `fail_status`; `hang` never answers;
    `lookups` maps a lookup path's last segment to (status, raw body, delay seconds)."""

    received: list[Received] = field(default_factory=list)
    fail_next: int = 0
    fail_status: int = 503
    hang: bool = False
    lookups: dict[str, tuple[int, bytes, float]] = field(default_factory=dict)
    lookup_requests: list[Received] = field(default_factory=list)
    url: str = ""

    async def _hook(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(Received(dict(request.headers), body, time.monotonic()))
        if self.hang:
            await asyncio.Event().wait()
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=self.fail_status, text="not now")
        return web.Response(status=204)

    async def _lookup(self, request: web.Request) -> web.StreamResponse:
        self.lookup_requests.append(Received(dict(request.headers), b"", time.monotonic()))
        status, body, delay = self.lookups.get(request.match_info["key"], (404, b'{"error": "no such record"}', 0.0))
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=status, body=body, content_type="application/json")

    @property
    def bodies(self) -> list[dict]:
        return [r.json for r in self.received]


@contextlib.asynccontextmanager
async def crm_peer(port: int = 0) -> AsyncIterator[CrmPeer]:
    """The CRM listening on 127.0.0.1 while the block runs; `peer.url` is its base URL."""
    peer = CrmPeer()
    app = web.Application()
    app.router.add_post("/hooks", peer._hook)
    app.router.add_get("/lookup/{kind}/{key}", peer._lookup)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    peer.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        yield peer
    finally:
        await runner.cleanup()
