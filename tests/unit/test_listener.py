"""The core's HTTP listener, spoken to over real HTTP on 127.0.0.1: the gate every webhook
passes (rate limit, routes, body size), handler crashes, binding, and the Hub running it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from connectors.base import Connector, SendResult, WebRequest, WebResponse, WebRoute
from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.core.hub import Hub, HubTiming
from omniconsole.core.listener import Listener, ListenerError, RateLimiter, channel_prefix
from omniconsole.models import IdentityKind
from omniconsole.store import Store
from tests.waiting import eventually


class Clock:
    """A clock the test moves by hand, for the rate limit."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Echo:
    """Routes that record what they were given and answer in kind; one of them crashes."""

    def __init__(self) -> None:
        self.seen: list[WebRequest] = []

    async def echo(self, request: WebRequest) -> WebResponse:
        self.seen.append(request)
        return WebResponse(201, request.body[::-1], "application/octet-stream", {"X-Seen": str(len(self.seen))})

    async def crash(self, request: WebRequest) -> WebResponse:
        raise RuntimeError("a connector bug")

    async def wrong(self, request: WebRequest) -> WebResponse:
        return "not a response"  # type: ignore[return-value]

    async def refuse(self, request: WebRequest) -> WebResponse:
        return WebResponse.text(400, f"the body is not JSON: {request.body[:20]!r}")

    async def recurse(self, request: WebRequest) -> WebResponse:
        json.loads(request.body)  # a handler that parses without a depth limit
        return WebResponse.text(200, "parsed")

    async def unavailable(self, request: WebRequest) -> WebResponse:
        return WebResponse.text(503, "not stored; send again later")

    def routes(self) -> list[WebRoute]:
        return [
            WebRoute("POST", "", self.echo),
            WebRoute("GET", "/status", self.echo),
            WebRoute("POST", "/crash", self.crash),
            WebRoute("POST", "/wrong", self.wrong),
            WebRoute("POST", "/refuse", self.refuse),
            WebRoute("POST", "/recurse", self.recurse),
            WebRoute("POST", "/unavailable", self.unavailable),
        ]


@contextlib.asynccontextmanager
async def serving(**options) -> AsyncIterator[tuple[Listener, Echo, httpx.AsyncClient]]:
    clock = options.pop("clock", None)
    listener = Listener(ListenerSettings(port=0, **options), **({"clock": clock} if clock else {}), shutdown_timeout=0.5)
    echo = Echo()
    listener.mount("/hooks/shop", echo.routes(), owner="shop")
    await listener.start()
    try:
        async with httpx.AsyncClient(base_url=listener.url, timeout=5) as client:
            yield listener, echo, client
    finally:
        await listener.stop()


async def test_a_route_gets_the_request_in_our_own_terms() -> None:
    async with serving() as (listener, echo, client):
        answer = await client.post("/hooks/shop/?a=1&a=2&b=x", content=b"hello", headers={"X-Hub-Signature-256": "sha256=ab"})
        status = await client.get("/hooks/shop/status")
    assert answer.status_code == 201 and answer.content == b"olleh"
    assert answer.headers["content-type"] == "application/octet-stream" and answer.headers["x-seen"] == "1"
    request = echo.seen[0]
    assert (request.method, request.path, request.body) == ("POST", "/hooks/shop", b"hello")
    assert request.query == {"a": "1", "b": "x"}
    assert request.header("x-hub-signature-256") == request.header("X-HUB-SIGNATURE-256") == "sha256=ab"
    assert request.remote == "127.0.0.1"
    assert status.status_code == 201 and echo.seen[1].path == "/hooks/shop/status"
    assert listener.paths == [
        "/hooks/shop",
        "/hooks/shop/crash",
        "/hooks/shop/recurse",
        "/hooks/shop/refuse",
        "/hooks/shop/status",
        "/hooks/shop/unavailable",
        "/hooks/shop/wrong",
    ]
    assert [(r.path, r.method, r.owner) for r in listener.routes][:2] == [
        ("/hooks/shop", "POST", "shop"),
        ("/hooks/shop/crash", "POST", "shop"),
    ]


async def test_unknown_paths_and_methods_are_refused_with_a_reason() -> None:
    async with serving() as (_, echo, client):
        missing = await client.post("/hooks/other", content=b"x")
        root = await client.get("/")
        wrong_method = await client.put("/hooks/shop", content=b"x")
    assert missing.status_code == 404 and "nothing is served at /hooks/other" in missing.text
    assert root.status_code == 404
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert "does not take PUT requests" in wrong_method.text
    assert echo.seen == []


async def test_a_body_over_the_limit_is_refused_before_the_handler() -> None:
    async with serving(max_body_kb=1) as (_, echo, client):
        declared = await client.post("/hooks/shop", content=b"x" * 1025)

        async def chunks():  # no Content-Length: the limit holds while reading
            for _ in range(4):
                yield b"y" * 512

        streamed = await client.post("/hooks/shop", content=chunks())
        fits = await client.post("/hooks/shop", content=b"z" * 1024)
    assert declared.status_code == 413 and "over the 1 KB limit" in declared.text
    assert declared.headers["access-control-allow-origin"] == "*"  # a widget on any site can read why
    assert streamed.status_code == 413
    assert fits.status_code == 201
    assert [len(r.body) for r in echo.seen] == [1024]


async def test_each_client_has_its_own_rate_limit() -> None:
    clock = Clock()
    async with serving(rate_per_minute=3, clock=clock, trusted_proxies=("127.0.0.1",)) as (_, echo, client):
        first = [(await client.post("/hooks/shop", content=b"x")).status_code for _ in range(3)]
        limited = await client.post("/hooks/shop", content=b"x")
        # Behind the reverse proxy (127.0.0.1 is named), the client is who the proxy names.
        other = await client.post("/hooks/shop", content=b"x", headers={"X-Forwarded-For": "203.0.113.7"})
        spoofed = await client.post("/hooks/shop", content=b"x", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
        clock.now += 20  # a third of a minute gives one request back
        again = await client.post("/hooks/shop", content=b"x")
        still = await client.post("/hooks/shop", content=b"x")
        unknown_path = await client.post("/nothing", content=b"x")  # scanners count too
    assert first == [201, 201, 201]
    assert limited.status_code == 429 and limited.headers["retry-after"] == "20" and "too many requests" in limited.text
    assert other.status_code == 201
    assert spoofed.status_code == 201  # the last untrusted hop is 203.0.113.7, not the claim before it
    assert [again.status_code, still.status_code, unknown_path.status_code] == [201, 429, 429]
    assert [r.remote for r in echo.seen[3:5]] == ["203.0.113.7", "203.0.113.7"]


async def test_forwarded_addresses_are_a_claim_unless_the_config_names_the_proxy() -> None:
    """By default nobody is a trusted proxy: a flood from one address that rotates its
    X-Forwarded-For is still one client and is rate-limited. Behind a named proxy, the
    clients it names keep their own limits, and one client's flood does not stop another."""
    clock = Clock()
    async with serving(rate_per_minute=5, clock=clock) as (_, echo, client):
        flood = [
            (await client.post("/hooks/shop", content=b"x", headers={"X-Forwarded-For": f"203.0.113.{n}"})).status_code
            for n in range(20)
        ]
    assert flood.count(201) == 5 and flood[5:] == [429] * 15
    assert {r.remote for r in echo.seen} == {"127.0.0.1"}

    async with serving(rate_per_minute=5, clock=clock, trusted_proxies=("127.0.0.0/8",)) as (_, echo, client):
        noisy = [
            (await client.post("/hooks/shop", content=b"x", headers={"X-Forwarded-For": "203.0.113.9"})).status_code
            for _ in range(8)
        ]
        quiet = await client.post("/hooks/shop", content=b"x", headers={"X-Forwarded-For": "198.51.100.4"})
        # The client's own claim before the proxy's hop does not buy a fresh allowance.
        claimed = await client.post("/hooks/shop", content=b"x", headers={"X-Forwarded-For": "192.0.2.1, 203.0.113.9"})
    assert noisy == [201] * 5 + [429] * 3
    assert quiet.status_code == 201 and claimed.status_code == 429
    assert echo.seen[-1].remote == "198.51.100.4"


def test_the_rate_limiter_refills_and_forgets_idle_clients() -> None:
    clock = Clock()
    limiter = RateLimiter(60, clock)
    assert all(limiter.wait_for("a") == 0 for _ in range(60))
    assert limiter.wait_for("a") == pytest.approx(1.0)
    clock.now += 1
    assert limiter.wait_for("a") == 0
    for n in range(RateLimiter._PRUNE_AT + 1):
        limiter.wait_for(f"client-{n}")
    clock.now += 120
    limiter.wait_for("late")
    assert len(limiter._buckets) < 10


async def test_a_crashing_handler_answers_500_and_the_listener_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    async with serving() as (_, echo, client):
        crashed = await client.post("/hooks/shop/crash", content=b"x")
        wrong = await client.post("/hooks/shop/wrong", content=b"x")
        after = await client.post("/hooks/shop", content=b"ok")
    assert crashed.status_code == 500 and "a connector bug" not in crashed.text
    assert wrong.status_code == 500
    assert after.status_code == 201
    assert "a connector bug" in caplog.text  # the details are in the log, not the answer


def our_log_bytes(caplog: pytest.LogCaptureFixture) -> int:
    """What the core and aiohttp wrote to the log (httpx's own lines are the test's client)."""
    records = [r for r in caplog.records if r.name.startswith(("omniconsole", "aiohttp", "connectors"))]
    return sum(
        len(r.getMessage()) + len(r.exc_text or "") + (len(caplog.handler.format(r)) if r.exc_info else 0) for r in records
    )


async def test_a_flood_of_bad_requests_logs_a_line_per_kind_per_minute_and_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """1,000 requests with an oversized header once wrote 729 KB of tracebacks. Now each kind
    of refusal (unreadable request, unknown path, wrong method, a channel's 400) writes its
    first line, the rest are counted, and the count is written when the minute ends (or the
    listener stops)."""
    caplog.set_level(logging.DEBUG)
    async with serving(rate_per_minute=100_000) as (listener, _, client):
        for _ in range(1000):
            answer = await client.post("/hooks/shop", content=b"{}", headers={"X-Big": "x" * 9000})
            assert answer.status_code == 400
        for _ in range(200):
            assert (await client.post("/hooks/nothing/here", content=b"x")).status_code == 404
            assert (await client.delete("/hooks/shop")).status_code == 405
            assert (await client.post("/hooks/shop/refuse", content=b"\x00" * 30)).status_code == 400
        during = our_log_bytes(caplog)
        assert (await client.post("/hooks/shop", content=b"fine")).status_code == 201
    assert during < 2000, caplog.text[:3000]
    assert "Traceback" not in caplog.text
    lines = [r.getMessage() for r in caplog.records if r.name.startswith(("omniconsole", "aiohttp"))]
    assert not any(r.exc_info for r in caplog.records if r.name.startswith(("omniconsole", "aiohttp")))
    # At stop the counts are written: one line per kind with how many more there were.
    assert any(line.startswith("999 more like this") for line in lines), lines
    assert sum(line.startswith("199 more like this") for line in lines) == 3, lines
    assert len(lines) <= 9, lines  # "listening", then the first line and the count of each kind
    assert our_log_bytes(caplog) < 3000


async def test_deep_nesting_is_400_and_a_503_always_says_when_to_come_back() -> None:
    async with serving() as (_, _, client):
        deep = await client.post("/hooks/shop/recurse", content=b"[" * 100_000 + b"]" * 100_000)
        shallow = await client.post("/hooks/shop/recurse", content=b"[[1]]")
        unavailable = await client.post("/hooks/shop/unavailable", content=b"x")
    assert deep.status_code == 400 and "nested too deeply" in deep.text
    assert shallow.status_code == 200
    assert unavailable.status_code == 503 and unavailable.headers["retry-after"] == "5"


async def test_header_bytes_that_are_not_utf8_reach_a_handler_as_text() -> None:
    async with serving() as (_, echo, client):
        answer = await client.post(
            "/hooks/shop?q=%FF%FEx", content=b"x", headers={"X-Hub-Signature-256": b"sha256=\xff\xfe", "X-Name": "Ольга".encode()}
        )
    assert answer.status_code == 201
    [request] = echo.seen
    assert request.header("x-hub-signature-256") == "sha256=\ufffd\ufffd"
    assert request.header("x-name") == "Ольга"
    assert all(value.encode("utf-8") for value in (*request.headers.values(), *request.query.values()))


async def test_it_binds_only_the_configured_host() -> None:
    async with serving() as (listener, _, _):
        addresses = listener._runner.addresses  # noqa: SLF001
        assert addresses == [("127.0.0.1", listener.port)]
        assert listener.url == f"http://127.0.0.1:{listener.port}"


async def test_a_port_in_use_is_an_error_in_words() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        listener = Listener(ListenerSettings(port=port))
        with pytest.raises(ListenerError, match=f"cannot listen for webhooks on 127.0.0.1:{port}: .*in use.*\\[listener\\] port"):
            await listener.start()
        assert not listener.running


def test_two_channels_cannot_share_a_path() -> None:
    listener = Listener(ListenerSettings())

    async def handler(request: WebRequest) -> WebResponse:
        return WebResponse()

    assert listener.mount("/hooks/a/", [WebRoute("post", "", handler)], owner="a") == ["/hooks/a"]
    with pytest.raises(ListenerError, match="already served for channel 'a'"):
        listener.mount("/hooks/a", [WebRoute("GET", "/x", handler), WebRoute("POST", "/", handler)], owner="b")
    assert listener.paths == ["/hooks/a"]  # nothing of b's was mounted
    assert channel_prefix("WhatsApp Shop #1", 3) == "/hooks/whatsapp-shop-1"
    assert channel_prefix("Ватсап", 3) == "/hooks/channel-3"
    assert channel_prefix("x", 3, "/custom/wa/") == "/custom/wa"


# -- the Hub runs it -----------------------------------------------------------------------

FAST = HubTiming(
    lease_ttl=1.5,
    lease_poll=0.05,
    outbox_poll=0.02,
    restart_initial=0.05,
    restart_max=0.2,
    down_retry=0.2,
    housekeeping=0.5,
    listener_shutdown=0.3,
)


class HookChannel(Connector):
    """A channel that is pushed to: its one route answers while it runs."""

    kind = "hook"
    identity_kind = IdentityKind.WEB

    def __init__(self, context) -> None:
        super().__init__(context)
        self.running = False

    def web_routes(self) -> Sequence[WebRoute]:
        return [WebRoute("POST", "", self.hook)]

    async def hook(self, request: WebRequest) -> WebResponse:
        return WebResponse.text(200 if self.running else 503, "hooked")

    async def run(self, sink) -> None:
        self.running = True
        sink.connected("hooks")
        try:
            await asyncio.Event().wait()
        finally:
            self.running = False

    async def send(self, message) -> SendResult:
        return SendResult("1")


def hub_settings(tmp_path, port: int, **listener) -> Settings:
    return Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        channels=[ChannelSettings("hook", "Web hooks", {}), ChannelSettings("hook", "Other", {"path": "/api/other"})],
        listener=ListenerSettings(port=port, **listener),
    )


async def channel_health(store: Store, name: str, health: str) -> str:
    for _ in range(250):
        found = [c for c in await store.channels() if c.name == name and c.health == health]
        if found:
            return found[0].health_detail
        await asyncio.sleep(0.02)
    raise AssertionError(f"channel {name} never became {health}: {await store.channels()}")


async def test_the_hub_mounts_each_channel_and_stops_listening_when_it_stops(tmp_path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = await Store.open(tmp_path / "core.db")
    hub = Hub(hub_settings(tmp_path, port), store, timing=FAST, connector_factory=lambda c, ctx: HookChannel(ctx))
    task = asyncio.create_task(hub.run())
    try:
        await asyncio.wait_for(hub.listening.wait(), 5)
        await channel_health(store, "Other", "up")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            assert (await client.post("/hooks/web-hooks")).text == "hooked"
            assert (await client.post("/api/other")).status_code == 200
        assert hub.listener is not None and hub.listener.paths == ["/api/other", "/hooks/web-hooks"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=5) as client:
            await client.post(f"http://127.0.0.1:{port}/api/other")
    await store.close()


async def test_a_port_in_use_is_the_channels_health_and_the_core_goes_on(tmp_path) -> None:
    store = await Store.open(tmp_path / "core.db")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        hub = Hub(hub_settings(tmp_path, port), store, timing=FAST, connector_factory=lambda c, ctx: HookChannel(ctx))
        task = asyncio.create_task(hub.run())
        try:
            detail = await channel_health(store, "Web hooks", "down")
            assert f"cannot listen for webhooks on 127.0.0.1:{port}" in detail and "trying again" in detail
            assert not task.done() and hub.holding_lease.is_set()
            taken.close()  # the port is free again: the next try takes it
            await asyncio.wait_for(hub.listening.wait(), 5)
            await channel_health(store, "Web hooks", "up")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    await store.close()


async def test_a_disabled_listener_says_why_the_channel_is_down(tmp_path) -> None:
    store = await Store.open(tmp_path / "core.db")
    hub = Hub(hub_settings(tmp_path, 0, enabled=False), store, timing=FAST, connector_factory=lambda c, ctx: HookChannel(ctx))
    task = asyncio.create_task(hub.run())
    try:
        detail = await channel_health(store, "Web hooks", "down")
        assert "[listener] enabled = false" in detail
        assert hub.listener is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await store.close()


def test_the_listener_table_is_read_and_checked(tmp_path) -> None:
    from omniconsole.config import parse_settings
    from omniconsole.errors import UsageError

    path = tmp_path / "omniconsole.toml"
    default = parse_settings({}, path).listener
    assert (default.host, default.port, default.enabled) == ("127.0.0.1", 8780, None)
    table = {
        "host": "0.0.0.0",
        "port": 9000,
        "max_body_kb": 64,
        "rate_per_minute": 30,
        "enabled": True,
        "trusted_proxies": ["10.0.0.1"],
    }
    read = parse_settings({"listener": table}, path).listener
    assert read == ListenerSettings("0.0.0.0", 9000, 64, 30, True, ("10.0.0.1",))
    assert default.trusted_proxies == ()  # X-Forwarded-For is trusted from nobody unless named
    for bad, words in (
        ({"port": 70000}, "port must be a whole number"),
        ({"prot": 1}, "unknown key 'prot'"),
        ({"trusted_proxies": ["nginx"]}, "'nginx' is not an IP address or network"),
        ({"enabled": "yes"}, "enabled must be true or false"),
    ):
        with pytest.raises(UsageError, match=words):
            parse_settings({"listener": bad}, path)


async def test_bodies_held_at_once_are_bounded_for_all_clients_together() -> None:
    """Many clients, each within its rate limit, each sending the largest allowed body to a
    slow handler: past the budget the listener answers 503 instead of holding more memory."""
    import asyncio

    release = asyncio.Event()

    async def slow(request: WebRequest) -> WebResponse:
        await release.wait()
        return WebResponse.text(200, "ok")

    async with serving(max_body_kb=1024) as (listener, _, client):
        listener.mount("/hooks/slow", [WebRoute("POST", "", slow)], owner="slow")
        budget = listener.held_budget // listener.max_body  # this many full bodies fit
        sends = [asyncio.create_task(client.post("/hooks/slow", content=b"x" * listener.max_body)) for _ in range(budget)]
        await eventually(lambda: listener._held >= budget * listener.max_body)
        refused = await client.post("/hooks/slow", content=b"y" * listener.max_body)
        assert refused.status_code == 503 and "too many large requests" in refused.text
        release.set()
        assert all(r.status_code == 200 for r in await asyncio.gather(*sends))
        assert listener._held == 0
        assert (await client.post("/hooks/slow", content=b"z")).status_code == 200


async def test_the_digest_writes_one_line_a_window_while_a_flood_lasts(caplog: pytest.LogCaptureFixture) -> None:
    from connectors.log_digest import LogDigest

    caplog.set_level(logging.INFO)
    digest = LogDigest(logging.getLogger("omniconsole.test.digest"), window=0.1)
    for n in range(50):
        digest.note("401", logging.WARNING, "refused %d", n)
    await asyncio.sleep(0.15)  # the window ends: its count is written
    for n in range(5):
        digest.note("401", logging.WARNING, "refused again %d", n)
    await asyncio.sleep(0.35)  # a counted window, then a quiet one: the kind is forgotten
    digest.note("401", logging.WARNING, "refused late")
    digest.flush()
    lines = [r.getMessage() for r in caplog.records if r.name == "omniconsole.test.digest"]
    assert lines == [
        "refused 0",
        "49 more like this in the last 1 s, the latest: refused 49",
        "5 more like this in the last 1 s, the latest: refused again 4",
        "refused late",
    ]
