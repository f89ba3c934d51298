"""Token buckets: the one rate limit of the listener (per client address) and of the web chat
(per visitor, per address for new sessions)."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBuckets:
    """A token bucket per key (a client address, a visitor): `per_minute` requests, refilled
    smoothly, bursts up to the whole minute's allowance. Keys whose buckets are full again are
    forgotten once `_PRUNE_AT` are tracked, so memory does not grow with every address seen."""

    _PRUNE_AT = 10_000

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.capacity = float(max(1, per_minute))
        self.rate = self.capacity / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def wait_for(self, key: str) -> float:
        """Take one request from `key`'s allowance: 0 if allowed, else the seconds until the
        next request would be."""
        now = self.clock()
        tokens, at = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self._PRUNE_AT:
            self._buckets = {k: v for k, v in self._buckets.items() if v[0] + (now - v[1]) * self.rate < self.capacity}
        return 0.0
