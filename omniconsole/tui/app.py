"""The operator's window: the Textual App. It opens the store, runs the core in-process when no
other core holds the lease, and shows the main screen (`tui/screens/main.py`)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from rich.text import Text
from textual import events, work
from textual.app import App

from omniconsole.config import Settings
from omniconsole.errors import OmniError
from omniconsole.i18n import N_, choose_language, set_language
from omniconsole.store import Operator, Store
from omniconsole.tui.keys import latin_key
from omniconsole.tui.screens.main import MainScreen
from omniconsole.tui.workers import WorkerFailures

log = logging.getLogger(__name__)


class OmniApp(WorkerFailures, App):
    """The window of one operator."""

    # Absolute, so subclasses elsewhere (benchmarks, tests) find it too.
    CSS_PATH = Path(__file__).with_name("omniconsole.tcss")
    TITLE = "omniconsole"
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        settings: Settings,
        operator: Operator,
        *,
        clock=time.time,
        run_core: bool = True,
        store: Store | None = None,
    ) -> None:
        super().__init__()
        # The operator's language, read when the window opens (no core restart to change it).
        self.language = set_language(choose_language(operator.language, settings.language))
        if self.language != "en":
            import threading

            from omniconsole.tui.text import warm_up

            threading.Thread(target=warm_up, name="babel-warm-up", daemon=True).start()
        self.settings = settings
        self.operator = operator
        self.clock = clock
        self.run_core = run_core
        self.store = store
        self._own_store = store is None
        self.core_state: str | None = None
        self.main: MainScreen | None = None

    def notify(self, message, *, title: str = "", severity="information", timeout: float | None = None, markup: bool = True):
        """A toast. Literal rich `Text` (customers' words, tui/text.py `safe`) is shown as its plain
        string with markup off: Textual's toast reads only a string, and a Text crashed the whole
        window when the toast was drawn (every window's toast passes here, screens' too)."""
        if isinstance(message, Text):
            message, markup = message.plain, False
        return super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    async def on_event(self, event: events.Event) -> None:
        # A Russian keyboard layout: the same keys do the same things (tui/keys.latin_key).
        if isinstance(event, events.Key) and not event.is_forwarded:
            event = latin_key(event, self.focused) or event
        await super().on_event(event)

    async def on_mount(self) -> None:
        if self.settings.keymap:
            self.set_keymap(self.settings.keymap)
            self.check_keymap()
        if self.store is None:
            if self.settings.team.socket is not None:
                # A team setup: the core (systemd's) does every read and write for this window.
                from omniconsole.core.remote import RemoteStore

                self.store = RemoteStore(self.settings.team.socket)
                self.run_core = False
            else:
                self.store = await Store.open(self.settings.database)
        if self.run_core and self.settings.channels and self.settings.team.socket is None:
            self.start_core()
        self.main = MainScreen(self.store, self.operator, self.clock)
        await self.push_screen(self.main)

    @work(exclusive=True, group="core", exit_on_error=False)
    async def start_core(self) -> None:
        """Run the core in this window while no other core holds the lease; wait otherwise
        and take over if the other one dies."""
        from omniconsole.capabilities import hub_parts
        from omniconsole.core.hub import Hub, LeaseLost

        store = await Store.open(self.settings.database)
        try:
            while True:
                hub = Hub(self.settings, store, **hub_parts(self.settings, store))
                waiter = asyncio.create_task(hub.holding_lease.wait())
                waiter.add_done_callback(lambda _: setattr(self, "core_state", N_("core: in this window")))
                try:
                    await hub.run()
                except LeaseLost:
                    pass  # another core took over while this window stalled: wait again
                waiter.cancel()
                self.core_state = None
        finally:
            await store.close()

    def check_keymap(self) -> list[str]:
        """Say, in one line each, which `[keymap]` ids name no binding (Textual ignores them
        silently) and the nearest real id; the lines also go to the log."""
        from omniconsole.tui.keys import known_binding_ids, unknown_keymap_ids

        lines = unknown_keymap_ids(self.settings.keymap, known_binding_ids())
        for line in lines:
            log.warning("config: %s", line)
            self.notify(line, severity="warning", markup=False, timeout=15)
        return lines

    async def on_unmount(self) -> None:
        if self.store is not None and self.main is not None:
            try:
                await self.store.set_presence(self.operator.login, None)
                if self.main.presence is not None:
                    await self.main.presence.closed()  # routing: this window's operator goes offline
            except OmniError:
                pass
        self.workers.cancel_group(self, "core")
        if self._own_store and self.store is not None:
            await self.store.close()
