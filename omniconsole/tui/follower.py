"""Following the events log: every 150 ms the window asks what others (and the core) changed and
posts `StoreChanged` with those events, then `CallRinging` for the newest recent ring at this
operator's extension (the screen-pop policy is `omniconsole.core.screen_pop`).

A tick that finds the previous one still being handled skips, so no change is ever dropped by a
cancelled reload; events are passed on only once the screen handled them without a store error.
"""

from __future__ import annotations

import asyncio
import time

from textual.message import Message
from textual.widget import Widget

from omniconsole.core.screen_pop import rings_here
from omniconsole.errors import OmniError
from omniconsole.store import Event, Store
from omniconsole.tui.messages import StoreUnavailable


class Follower(Widget):
    """A non-visual member of the screen that follows the events log."""

    DEFAULT_CSS = "Follower { display: none; }"

    INTERVAL = 0.15

    class StoreChanged(Message):
        """Others changed the store: `events`, oldest first. The handler sets `handled` when it
        is done (and `ok` to False when the store did not answer: the events come again)."""

        def __init__(self, events: list[Event]) -> None:
            super().__init__()
            self.events = events
            self.handled = asyncio.Event()
            self.ok = True

        @property
        def customers(self) -> set[int]:
            return {e.customer_id for e in self.events if e.customer_id}

    class CallRinging(Message):
        """A call rings this operator's extension now (`event` is the `call.ringing` event)."""

        def __init__(self, event: Event) -> None:
            super().__init__()
            self.event = event

    def __init__(self, store: Store, extension: str | None) -> None:
        super().__init__()
        self.store = store
        self.extension = extension
        self.last_event = 0
        self.busy = False

    async def start_from_now(self) -> None:
        """Changes from this moment on are followed (what is in the store now is read anyway)."""
        self.last_event = await self.store.last_event_id()

    def follow(self) -> None:
        if getattr(self.store, "remote", False):
            # A team setup: the core pushes when the events log grows (core/control.py).
            self.run_worker(self._follow_pushes(), group="follower", exit_on_error=False)
        else:
            self.set_interval(self.INTERVAL, self.tick)

    async def _follow_pushes(self) -> None:
        while True:
            try:
                await self.store.subscribe()
            except OmniError as exc:
                self.post_message(StoreUnavailable(exc))
                await asyncio.sleep(1.0)  # the core is down: try again, as systemd restarts it
                continue
            while self.store.connected:
                await self.store.changed.wait()
                self.store.changed.clear()
                await self.tick()

    async def tick(self) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            events = await self.store.events_since(self.last_event, limit=5000)
            if not events:
                return
            changed = self.StoreChanged(events)
            self.post_message(changed)
            await changed.handled.wait()
            if not changed.ok:
                return
            self.last_event = events[-1].id
            now = time.time()
            ring = next((e for e in reversed(events) if rings_here(e, self.extension, now)), None)
            if ring is not None:
                self.post_message(self.CallRinging(ring))
        except OmniError as exc:
            self.post_message(StoreUnavailable(exc))
        finally:
            self.busy = False
