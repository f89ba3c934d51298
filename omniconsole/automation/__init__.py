"""Automation: rules (`rules.py` reads them, `engine.py` matches and acts) and macros
(`macros.py`), issue #19. What the core runs for them is `core_extension`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omniconsole.automation.engine import Engine
    from omniconsole.core.scheduler import CoreExtension, Scheduler
    from omniconsole.store import Store

log = logging.getLogger(__name__)


def engine_for(settings) -> Engine | None:
    """The rules engine of `settings` (its `[automation]` rules and routing's calendars), or
    None when there are no rules."""
    from omniconsole.answers.language import detect_messages
    from omniconsole.automation.engine import Engine

    automation = getattr(settings, "automation", None)
    if automation is None or not automation.book.rules:
        return None
    calendars = getattr(getattr(settings, "routing", None), "calendars", None)
    return Engine(automation.book, calendars, settings, detect=detect_messages)


def core_extension(settings, *, tick: float = 0.25, clock: Callable[[], float] = time.time) -> CoreExtension | None:
    """The rules' part of the core: the pipeline step, the `rules.timer` handler and the
    follower of the events log (omniconsole/automation/engine.py); None without rules."""
    from omniconsole.automation.engine import TIMER_KIND
    from omniconsole.core.scheduler import CoreExtension

    engine = engine_for(settings)
    if engine is None:
        return None

    async def follow(store: Store, scheduler: Scheduler) -> None:
        newest = -1  # the events log's newest id at the last pass that found nothing
        while True:
            latest = await store.last_event_id()
            if latest == newest:  # nothing new: no write transaction (ingest keeps the lock)
                await asyncio.sleep(tick)
                continue
            try:
                seen = await store.db.write(engine.follow, clock())
            except asyncio.CancelledError:
                raise
            except Exception:  # find the one event that cannot be handled: it must not stop the rest
                try:
                    seen = await store.db.write(engine.follow, clock(), 1)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("rules: an event could not be handled; it is skipped")
                    seen = await store.db.write(engine.skip_failed, clock(), f"{type(exc).__name__}: {exc}")
            if seen:
                scheduler.poke()
            else:
                newest = latest
                await asyncio.sleep(tick)

    return CoreExtension("rules", step=engine.step, handlers={TIMER_KIND: engine.fire_timer}, background=follow)
