"""A real core for tests of channels that are pushed to (webhooks): its fast timing, a free
port for its listener, and the core running on a store until the test is done."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

from omniconsole.config import Settings
from omniconsole.core.hub import Hub, HubTiming
from omniconsole.store import Store

FAST = HubTiming(
    lease_ttl=1.5,
    lease_poll=0.05,
    outbox_poll=0.02,
    restart_initial=0.05,
    restart_max=0.2,
    down_retry=0.3,
    send_retry_base=0.05,
    send_retry_max=0.2,
    send_max_attempts=4,
    housekeeping=0.5,
    listener_shutdown=0.3,
    typing_poll=0.05,
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.asynccontextmanager
async def running_core(
    settings: Settings, store: Store, *, until_up: str | None = "any", listen_timeout: float = 5, **hub: Any
) -> AsyncIterator[Hub]:
    """The core on `store` while the block runs: holding the lease and listening, then
    (`until_up` "any" or "all") until a channel, or every channel, says it is up."""
    core = Hub(settings, store, timing=FAST, **hub)
    task = asyncio.create_task(core.run())
    try:
        await asyncio.wait_for(core.holding_lease.wait(), listen_timeout)
        await asyncio.wait_for(core.listening.wait(), listen_timeout)
        check = {"any": any, "all": all}.get(until_up or "")
        for _ in range(250 if check else 0):
            if check(c.health == "up" for c in await store.channels()):
                break
            await asyncio.sleep(0.02)
        yield core
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
