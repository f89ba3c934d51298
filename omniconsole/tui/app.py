"""The operator's window: the Textual App. It opens the store, runs the core in-process when no
other core holds the lease, and shows the main screen (`tui/screens/main.py`)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from textual import work
from textual.app import App

from omniconsole.config import Settings
from omniconsole.errors import OmniError
from omniconsole.store import Operator, Store
from omniconsole.tui.screens.main import MainScreen
from omniconsole.tui.workers import WorkerFailures


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
        self.settings = settings
        self.operator = operator
        self.clock = clock
        self.run_core = run_core
        self.store = store
        self._own_store = store is None
        self.core_state: str | None = None
        self.main: MainScreen | None = None

    async def on_mount(self) -> None:
        if self.settings.keymap:
            self.set_keymap(self.settings.keymap)
        if self.store is None:
            self.store = await Store.open(self.settings.database)
        if self.run_core and self.settings.channels:
            self.start_core()
        self.main = MainScreen(self.store, self.operator, self.clock)
        await self.push_screen(self.main)

    @work(exclusive=True, group="core", exit_on_error=False)
    async def start_core(self) -> None:
        """Run the core in this window while no other core holds the lease; wait otherwise
        and take over if the other one dies."""
        from omniconsole.core.hub import Hub, LeaseLost
        from omniconsole.integrations.webhooks import core_services

        store = await Store.open(self.settings.database)
        try:
            while True:
                hub = Hub(self.settings, store, services=core_services(self.settings, store))
                waiter = asyncio.create_task(hub.holding_lease.wait())
                waiter.add_done_callback(lambda _: setattr(self, "core_state", "core: in this window"))
                try:
                    await hub.run()
                except LeaseLost:
                    pass  # another core took over while this window stalled: wait again
                waiter.cancel()
                self.core_state = None
        finally:
            await store.close()

    async def on_unmount(self) -> None:
        if self.store is not None and self.main is not None:
            try:
                await self.store.set_presence(self.operator.login, None)
            except OmniError:
                pass
        self.workers.cancel_group(self, "core")
        if self._own_store and self.store is not None:
            await self.store.close()
