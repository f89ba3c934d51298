"""The main screen's routing part (issue #18), kept out of screens/main.py: the window keeps
its operator's status (online when it opens, a heartbeat with its pid, away when idle, back at
the next key, offline when it closes), `S` toggles away, `Q` opens the queue view."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import work

from omniconsole.errors import OmniError
from omniconsole.i18n import N_, _

if TYPE_CHECKING:
    from omniconsole.routing.service import WindowPresence

#: Events that may change my status or load in the status bar.
STATUS_BAR_KINDS = frozenset(
    {
        "operator.status",
        "operator.updated",
        "conversation.assigned",
        "conversation.resolved",
        "conversation.snoozed",
        "conversation.pending",
        "conversation.open",
        "routing.returned",
    }
)


#: What `S` says, by the status it set.
YOU_ARE = {"online": N_("You are online"), "away": N_("You are away"), "offline": N_("You are offline")}


class RoutingActions:
    """Mixed into MainScreen (which has `store`, `operator`, `clock`, `_store_trouble`)."""

    presence: WindowPresence | None

    def make_presence(self) -> WindowPresence | None:
        # The same in a team window: the presence goes through the store's methods, which
        # RemoteStore sends to the core (it knows the caller's login). Routing is imported once the inbox is up, not while the window starts.
        from omniconsole.routing.service import WindowPresence, settings_of

        return WindowPresence(self.store, self.operator.login, settings_of(getattr(self.app, "settings", None)), clock=time.time)

    async def start_presence(self, status_bar) -> None:
        """Online now, then a heartbeat every `[routing] heartbeat_seconds`."""
        if self.presence is None:
            return
        try:
            await self.presence.opened()
            await status_bar.reload()
        except OmniError as exc:
            self._store_trouble(exc)
        self.set_interval(self.presence.settings.heartbeat_seconds, self._presence_beat)

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_queues(self) -> None:
        from omniconsole.tui.screens.queues import queue_dialog

        await self.app.push_screen_wait(await queue_dialog(self.store, self.app.settings, self.clock()))

    async def action_toggle_away(self) -> None:
        if self.presence is None:
            return
        from omniconsole.tui.widgets.status_bar import StatusBar

        status = await self.presence.toggle_away()
        await self.query_one(StatusBar).reload()
        self.notify(_(YOU_ARE[status]) if status in YOU_ARE else _("You are {status}").format(status=status))

    async def _presence_beat(self) -> None:
        if self.presence is None:
            return
        try:
            was = self.presence.status
            await self.presence.beat()
            if self.presence.status != was:
                from omniconsole.tui.widgets.status_bar import StatusBar

                await self.query_one(StatusBar).reload()
        except OmniError as exc:
            self._store_trouble(exc)

    async def routing_changed(self, events) -> None:
        """The follower's changes, for routing's parts of the window: my status and load in the
        status bar, and the queue view while it is open (live, issue #18)."""
        kinds = {e.kind for e in events} - {"conversation.read"}
        if not kinds:
            return
        if kinds & STATUS_BAR_KINDS:
            from omniconsole.tui.widgets.status_bar import StatusBar

            await self.query_one(StatusBar).reload()
        reload_queues = getattr(self.app.screen, "reload_queues", None)
        if reload_queues is not None:
            await reload_queues(self.clock())

    async def on_key(self, event) -> None:
        """Any key is activity: an idle window that went away comes back (never consumed)."""
        if self.presence is None:
            return
        if self.presence.status == "away" and not self.presence.chosen_away:
            from omniconsole.tui.widgets.status_bar import StatusBar

            await self.presence.key_pressed()
            await self.query_one(StatusBar).reload()
        else:
            self.presence.last_key = self.presence.clock()
