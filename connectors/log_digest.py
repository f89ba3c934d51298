"""Log lines that a flood would repeat (refused requests, a store that keeps failing), written
at most once per kind per minute with a count, so 1,000 bad requests a second cost the log a
line a minute instead of megabytes.

    digest = LogDigest(log)
    digest.note("401 /hooks/api/messages", logging.WARNING, "refused a request from %s: %s", ip, why)
    ...
    digest.flush()      # at stop: the counts not yet written

The first line of a kind is written at once (with its traceback when `exc_info` is given: the
first one is what a person needs to read); later ones within the minute are counted, and one
line with the count is written when the minute is over. A kind that stays quiet for a whole
minute is forgotten, so the next one is written at once again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Kind:
    level: int
    started: float
    count: int = 0  # since the last line written
    last: str = ""  # the last message counted, already formatted
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class LogDigest:
    """At most one log line per kind of event per `window` seconds, with a count."""

    #: Kinds tracked at once; past it the quietest are written out and forgotten.
    MAX_KINDS = 200

    def __init__(self, logger: logging.Logger, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.logger = logger
        self.window = window
        self.clock = clock
        self._kinds: dict[str, _Kind] = {}

    def note(self, kind: str, level: int, message: str, *args: Any, exc_info: Any = None) -> None:
        """One event of `kind`: written now if it is the first of its minute, else counted."""
        now = self.clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen.started >= self.window:
            self._close(kind)  # its timer did not run (no event loop): write its count now
            seen = None
        if seen is None:
            if len(self._kinds) >= self.MAX_KINDS:
                self._close(next(iter(self._kinds)))
            self.logger.log(level, message, *args, exc_info=exc_info)
            seen = self._kinds[kind] = _Kind(level, now)
            try:
                seen.timer = asyncio.get_running_loop().call_later(self.window, self._tick, kind)
            except RuntimeError:  # no loop: the count is written by the next note or flush
                pass
            return
        seen.count += 1
        seen.level = max(seen.level, level)
        seen.last = message % args if args else message

    def flush(self) -> None:
        """Write every count not yet written and forget all kinds (when the listener stops)."""
        for kind in list(self._kinds):
            self._close(kind)

    def _tick(self, kind: str) -> None:
        seen = self._kinds.get(kind)
        if seen is None:
            return
        if not seen.count:
            del self._kinds[kind]
            return
        self._write(seen)
        seen.count, seen.started = 0, self.clock()
        seen.timer = asyncio.get_running_loop().call_later(self.window, self._tick, kind)

    def _close(self, kind: str) -> None:
        seen = self._kinds.pop(kind)
        if seen.timer is not None:
            seen.timer.cancel()
        if seen.count:
            self._write(seen)

    def _write(self, seen: _Kind) -> None:
        took = max(1, round(self.clock() - seen.started))
        self.logger.log(seen.level, "%d more like this in the last %d s, the latest: %s", seen.count, took, seen.last)
