"""Waiting in tests for something that happens on another task or server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(condition: Callable[[], bool], timeout: float = 10.0, poll: float = 0.02) -> None:
    """Return once `condition()` holds; fail the test if it does not within `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(poll)
