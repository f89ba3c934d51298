"""Routing as the core runs it: a `CoreExtension` with the pipeline step (`Router.route`), the
scheduler's handlers (return timer, offline grace) and a background follower of the events log
that serves the queues when capacity frees or someone comes online (a resolution, a snooze, an
unassignment, a status or capacity change — from any process), and marks offline the operators
whose window died (no heartbeat for three periods, or its pid gone on this host).

It also gives status changes written by anyone (a window through the store or the core's socket,
a command) their consequences: the offline grace starts or ends (`Router.after_status`).

Also the window's side: `WindowPresence` keeps an operator online while their window runs,
through `Store` methods only, so it works the same in a team window.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from omniconsole.core.scheduler import CoreExtension, Scheduler
from omniconsole.routing.engine import KINDS, Router
from omniconsole.routing.settings import RoutingSettings
from omniconsole.store import routing as db
from omniconsole.store.lease import pid_alive

if TYPE_CHECKING:
    from omniconsole.store import Store

log = logging.getLogger(__name__)

#: Events after which a queue may move: capacity freed, an operator came online or changed.
SERVE_ON = {
    "conversation.resolved",
    "conversation.snoozed",
    "conversation.pending",
    "conversation.open",
    "conversation.assigned",
    "routing.returned",
    "operator.status",
    "operator.updated",
    "operator.added",
    "operator.removed",
    "conversation.priority",
}


def dead_windows(slots: list[db.WindowSlot], now: float, heartbeat: float, host: str) -> list[tuple[db.WindowSlot, str]]:
    """Operators' windows that died, each with the reason in words: no heartbeat for three
    periods, or (on this host) its process is gone."""
    dead: list[tuple[db.WindowSlot, str]] = []
    for slot in slots:
        if slot.host == host and not pid_alive(slot.pid):
            dead.append((slot, f"their window (pid {slot.pid}) has gone"))
        elif now - slot.heartbeat_at > 3 * heartbeat:
            dead.append(
                (slot, f"their window (pid {slot.pid} on {slot.host}) sent no heartbeat for {now - slot.heartbeat_at:.0f} s")
            )
    return dead


def _mark_dead(conn, router: Router, now: float, host: str) -> list[str]:
    """Forget the windows that died; an operator whose last window died goes offline (with the
    grace period). Returns those operators' logins."""
    gone: set[str] = set()
    for slot, reason in dead_windows(db.windows(conn), now, router.settings.heartbeat_seconds, host):
        if db.window_closed(conn, slot.login, slot.window) == 0 and db.is_operator(conn, slot.login):
            router.set_status(conn, slot.login, "offline", now, "routing", reason)
            gone.add(slot.login)
    return sorted(gone)


def _status_logins(events) -> set[str]:
    logins = set()
    for event in events:
        if event.kind == "operator.status" and event.actor != db.ROUTER:
            try:
                logins.add(str(json.loads(event.payload or "{}").get("login") or ""))
            except ValueError:
                continue
    return logins - {""}


def extension(settings: RoutingSettings, *, tick: float = 0.25, clock: Callable[[], float] = time.time) -> CoreExtension:
    """Routing's part of the core for `settings` (see the module docstring)."""
    from omniconsole.answers.language import detect_messages

    router = Router(settings, detect_messages)
    host = socket.gethostname()

    def step(conn, conversation_id: int, now: float) -> None:
        router.route(conn, conversation_id, now)

    async def follow(store: Store, scheduler: Scheduler) -> None:
        last = await store.last_event_id()
        await store.db.write(lambda conn: router.drain(conn, clock()))
        scheduler.poke()
        next_check = 0.0
        while True:
            events = await store.events_since(last, limit=1000)
            if events:
                last = events[-1].id
                # A status set by a window or a command (any process, through the store) gets
                # its consequences here, in the core: the offline grace starts or ends.
                for login in sorted(_status_logins(events)):
                    await store.db.write(router.after_status, login, clock())
                if any(e.kind in SERVE_ON for e in events):
                    await store.db.write(lambda conn: router.drain(conn, clock()))
                    scheduler.poke()
                continue
            now = clock()
            if now >= next_check:
                next_check = now + settings.heartbeat_seconds
                gone = await store.db.write(_mark_dead, router, now, host)
                if gone:
                    log.warning("operators marked offline, their window died: %s", ", ".join(gone))
                    scheduler.poke()
            await asyncio.sleep(tick)

    return CoreExtension("routing", step=step, handlers={kind: router.fire for kind in KINDS}, background=follow)


class WindowPresence:
    """An operator's window keeps their status through the store (in-process, or the core's
    socket in a team setup, where the core takes the login from the socket): online when it
    opens, a heartbeat for its own slot while it runs (two windows of one operator have two),
    away after `away_after_minutes` without a key pressed (back online at the next key, unless
    they chose away themselves), offline when its last window closes. If the process dies the
    core's follower notices the missing heartbeat (see `dead_windows`). What a status change
    sets off (the offline grace, serving the queues) happens in the core."""

    def __init__(self, store: Store, login: str, settings: RoutingSettings, clock: Callable[[], float] = time.time):
        self.store = store
        self.login = login
        self.settings = settings
        self.clock = clock
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.window = uuid.uuid4().hex
        self.status = "offline"
        self.chosen_away = False
        self.last_key = clock()

    async def _set(self, status: str, reason: str) -> None:
        await self.store.set_own_status(
            operator=self.login, status=status, reason=reason, window=self.window, pid=self.pid, host=self.host
        )
        self.status = status

    async def opened(self) -> None:
        await self._set("online", "their window opened")

    async def closed(self) -> None:
        self.status = await self.store.close_own_window(operator=self.login, window=self.window) or "offline"

    async def toggle_away(self) -> str:
        """The operator's key: away <-> online. Returns the new status."""
        if self.status == "away":
            self.chosen_away = False
            await self._set("online", "back (their key)")
        else:
            self.chosen_away = True
            await self._set("away", "away (their key)")
        return self.status

    async def key_pressed(self) -> None:
        self.last_key = self.clock()
        if self.status == "away" and not self.chosen_away:
            await self._set("online", "back at the keyboard")

    async def beat(self) -> None:
        """One heartbeat: keep the window known alive, and go away when idle too long."""
        now = self.clock()
        idle = self.settings.away_after_minutes * 60
        if self.status == "online" and idle > 0 and now - self.last_key >= idle:
            await self._set("away", f"no key pressed for {self.settings.away_after_minutes:g} min")
            return
        await self.store.window_beat(operator=self.login, window=self.window, pid=self.pid, host=self.host)


def settings_of(settings) -> RoutingSettings:
    """The routing settings of a `Settings` (the defaults when the config has none)."""
    return getattr(settings, "routing", None) or RoutingSettings()


def handoff_queue(settings) -> Callable[[object, int, float], tuple[int, int] | None]:
    """Routing's part of the bot's handoff (answers/bot_turn.py `HandoffQueue`): queue the
    conversation from now and give the bot its place and expected wait for its one message."""
    from omniconsole.answers.language import detect_messages

    router = Router(settings_of(settings), detect_messages)
    return router.route_at_handoff


def core_extensions(settings) -> list[CoreExtension]:
    """What the core runs for the capability packages, in pipeline order: routing, then the
    SLA clocks (DESIGN.md: ... -> routing -> SLA)."""
    from omniconsole.routing.sla.engine import extension as sla_extension

    return [extension(settings_of(settings)), sla_extension(getattr(settings, "sla", ()) or ())]


async def team_lines(store: Store, settings) -> list[tuple[str, str, str, str]]:
    """Per operator: `(login, status, load "2/5", skills)` for the team view and the CLI."""
    router = Router(settings_of(settings))
    states = await store.operator_states(list(router.settings.load_statuses()))
    return [(op.login, op.status, f"{router.load(op):g}/{router.capacity(op)}", ", ".join(op.skills)) for op in states]


async def set_operator(
    store: Store,
    settings,
    login: str,
    *,
    actor: str,
    status: str | None = None,
    capacity: int | None = None,
    skills: list[str] | None = None,
    teams: list[str] | None = None,
) -> str:
    """`omniconsole operator set`: change an operator's routing fields through a `Store` method
    (so it works alone and through a team setup's core, which checks the caller is an admin and
    records them as the actor). Alone, what a status change sets off (going offline starts the
    grace period, coming online serves the queues) is done here at once; a running core's
    routing follower does it too (both idempotent). Returns one line describing the operator
    now; ActionError in words for bad values."""
    router = Router(settings_of(settings))
    await store.set_operator_routing(login, actor=actor, status=status, capacity=capacity, skills=skills, teams=teams)
    if status is not None and hasattr(store, "db"):  # alone, not through a core's socket
        now = time.time()

        def consequences(conn) -> None:
            router.after_status(conn, login, now)
            if status == "online":
                router.drain(conn, now)

        await store.db.write(consequences)
    op = {s.login: s for s in await store.operator_states(list(router.settings.load_statuses()))}[login]
    return (
        f"{login}: {op.status}, capacity {op.capacity or f'{router.settings.default_capacity} (default)'}, "
        f"skills {', '.join(op.skills) or 'none'}, teams {', '.join(op.teams) or 'none'}"
    )


async def queue_overview(store: Store, settings, now: float | None = None) -> list[tuple[str, int, float]]:
    """Per configured queue: `(name, conversations waiting, longest wait in seconds)` for the
    window's queue view."""
    now = time.time() if now is None else now
    figures = await store.queue_figures()
    rows = []
    for queue in settings_of(settings).queues:
        count, oldest = figures.get(queue.name, (0, None))
        rows.append((queue.name, count, max(0.0, now - oldest) if oldest is not None else 0.0))
    return rows
