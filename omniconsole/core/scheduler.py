"""The core's one scheduler and the hooks of the conversation pipeline.

Capability packages (routing now; SLA, rules and surveys later) depend on the core, not the
other way round, so they hand the core a `CoreExtension`: a pipeline step run for each
conversation a customer wrote to (inside its own write transaction, after ingest committed;
imports never pass here), handlers for their kinds of schedule rows, and an optional
background task (routing's follower of the events log).

The scheduler sleeps until the earliest due row of the kinds it handles (at most
`max_sleep` seconds, so rows that another process added are seen; `poke()` wakes it at once),
then fires due rows one at a time, each in the transaction that removes it: a restart fires
nothing twice, and a handler that raises loses its row with a `schedule.failed` event saying
why, instead of holding up the rows behind it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omniconsole.store import schedule as timers
from omniconsole.store.events import add_event
from omniconsole.store.schedule import ScheduledRow

if TYPE_CHECKING:
    from omniconsole.store import Store

log = logging.getLogger(__name__)

#: A schedule row's handler: runs inside the write transaction that removed the row.
Handler = Callable[[sqlite3.Connection, ScheduledRow, float], Any]
#: A pipeline step: `(conn, conversation id, now epoch seconds)`, inside a write transaction.
Step = Callable[[sqlite3.Connection, int, float], Any]


@dataclass
class CoreExtension:
    """What a capability package adds to the core (see the module docstring)."""

    name: str
    step: Step | None = None
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    background: Callable[[Store, Scheduler], Awaitable[None]] | None = None


class Scheduler:
    """Fires due schedule rows of the kinds in `handlers` (see the module docstring)."""

    def __init__(
        self, store: Store, handlers: Mapping[str, Handler], *, max_sleep: float = 30.0, clock: Callable[[], float] = time.time
    ):
        self.store = store
        self.handlers = dict(handlers)
        self.max_sleep = max_sleep
        self.clock = clock
        self.fired = 0
        self._wake = asyncio.Event()

    def poke(self) -> None:
        """Something was scheduled: look at the schedule again now."""
        self._wake.set()

    async def run(self) -> None:
        """Run until cancelled."""
        if not self.handlers:
            return
        while True:
            now = self.clock()
            due = await self.store.db.run(timers.next_due, self.handlers)
            if due is not None and due <= now:
                await self.fire_due(now)
                continue
            delay = self.max_sleep if due is None else min(self.max_sleep, due - now)
            self._wake.clear()
            try:
                async with asyncio.timeout(max(0.0, delay)):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def fire_due(self, now: float | None = None) -> int:
        """Fire every row due at `now` (default: the clock), one transaction each; how many."""
        now = self.clock() if now is None else now
        count = 0
        while True:
            try:
                row = await self.store.db.write(self._fire_one, now)
            except _Failed as failed:
                log.error("schedule row %s (%s) failed: %s", failed.row.id, failed.row.kind, failed.reason)
                await self.store.db.write(_record_failure, failed.row, failed.reason, now)
                count += 1
                continue
            if row is None:
                self.fired += count
                return count
            count += 1

    def _fire_one(self, conn: sqlite3.Connection, now: float) -> ScheduledRow | None:
        row = timers.take_due(conn, now, self.handlers)
        if row is None:
            return None
        try:
            self.handlers[row.kind](conn, row, now)
        except Exception as exc:  # the transaction rolls back; the row is then dropped with a reason
            raise _Failed(row, f"{type(exc).__name__}: {exc}") from exc
        return row


class _Failed(Exception):
    def __init__(self, row: ScheduledRow, reason: str):
        super().__init__(reason)
        self.row, self.reason = row, reason


def _record_failure(conn: sqlite3.Connection, row: ScheduledRow, reason: str, now: float) -> None:
    timers.drop(conn, row.id)
    add_event(
        conn,
        "schedule.failed",
        actor="scheduler",
        conversation_id=row.conversation_id,
        payload={"kind": row.kind, "subject": row.subject, "due_at": row.due_at, "reason": reason},
        at=now,
    )


async def run_pipeline(
    store: Store, extensions: Iterable[CoreExtension], conversation_ids: Iterable[int], clock: Callable[[], float] = time.time
) -> None:
    """Run each extension's step, in order, for each conversation a customer just wrote to;
    one conversation's failure is logged and does not hold up the others."""
    steps = [(e.name, e.step) for e in extensions if e.step is not None]
    if not steps:
        return
    for conversation_id in sorted(set(conversation_ids)):
        for name, step in steps:
            try:
                await store.db.write(step, conversation_id, clock())
            except Exception:
                log.exception("pipeline step %s failed for conversation %s", name, conversation_id)
