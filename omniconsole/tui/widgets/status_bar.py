"""The status bar: who is working, the health of every channel (and of a failing webhook
endpoint), whether a core runs, and the keys to start with (read from the live bindings, so a
remapped key is shown as help shows it). It reads the store itself every 5 s; `reload()` after
a channel's health changed."""

from __future__ import annotations

import time

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from omniconsole.tui.widgets.pane_colours import PaneStyles
from omniconsole.errors import OmniError
from omniconsole.store import Operator, Store
from omniconsole.tui.keys import key_displays
from omniconsole.tui.messages import StoreUnavailable
from omniconsole.tui.text import HEALTH, one_line, safe

#: The hints at the end of the bar: (binding id on the screen, what it does).
HINTS = [
    ("app.help", "help"), ("app.search", "search"), ("conversation.reply", "reply"), ("conversation.note", "note"),
    ("conversation.resolve", "resolve"), ("app.commands", "commands"),
]


class StatusBar(PaneStyles, Static):
    """One line at the bottom of the main screen. Its colours are component classes of the
    stylesheet (`status-bar--operator`, `--dim`, `--alarm`, `--hints`, and `--up`, `--degraded`,
    `--down`, `--unknown` for a channel's health)."""

    PANE = "status-bar"

    INTERVAL = 5.0

    def __init__(self, store: Store, operator: Operator, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.store = store
        self.operator = operator
        self._channels_text = Text("")
        self._core_text = Text("")

    def follow(self) -> None:
        """Read the store again every few seconds (channel health, the core's lease)."""
        self.set_interval(self.INTERVAL, self._reload_quietly)

    async def _reload_quietly(self) -> None:
        try:
            await self.reload()
        except OmniError as exc:
            self.post_message(StoreUnavailable(exc))

    async def reload(self) -> None:
        """Read channel health and the core's lease and draw them. Raises OmniError when the
        store does not answer."""
        channels = await self.store.channels()
        text = Text(end="")
        for channel in channels:
            health = channel.health if channel.health in HEALTH else "unknown"
            symbol, style = HEALTH[health], self.pane_style(health)
            text.append(f" {symbol} ", style=style)
            text.append_text(safe(one_line(channel.name, 20)))
            if channel.health in ("degraded", "down") and channel.health_detail:
                text.append(": ")
                text.append_text(safe(one_line(channel.health_detail, 40), style))
        # A webhook endpoint shows only while its deliveries fail (integrations/webhooks.py).
        for hook, backlog in await self.store.webhook_states():
            if hook.failures:
                text.append(" ⚠ webhook ", style=self.pane_style("degraded"))
                text.append_text(safe(one_line(hook.endpoint, 20)))
                text.append(f": {backlog} waiting, ", style=self.pane_style("degraded"))
                text.append_text(safe(one_line(hook.last_error, 40), self.pane_style("degraded")))
        self._channels_text = text
        holder = await self.store.lease_holder()
        core = getattr(self.app, "core_state", None)
        if core:
            self._core_text = Text(core, style=self.pane_style("dim"))
        elif holder is None or holder.expires_at < time.time():
            self._core_text = Text("no core is running: nothing is received or sent", style=self.pane_style("alarm"))
        else:
            self._core_text = Text(f"core: pid {holder.pid} on {holder.host}", style=self.pane_style("dim"))
        self.draw()

    def hints(self) -> str:
        """`? help  / search  r reply ...` with the keys in force on the screen."""
        keys = key_displays(self.screen)
        shown = [(keys.get(binding_id, ""), words) for binding_id, words in HINTS]
        return "  ".join(f"{key} {words}" for key, words in shown if key)

    def draw(self) -> None:
        text = Text(end="")
        text.append(f" {self.operator.login} ", style=self.pane_style("operator"))
        text.append(f" {self.operator.role} ", style=self.pane_style("dim"))
        text.append_text(self._channels_text)
        text.append("  ")
        text.append_text(self._core_text)
        text.append("   " + self.hints(), style=self.pane_style("hints"))
        self.update(text, layout=False)
