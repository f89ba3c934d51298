"""The status bar: who is working, the health of every channel (and of a failing webhook
endpoint), whether a core runs, and the keys to start with (read from the live bindings, so a
remapped key is shown as help shows it). It reads the store itself every 5 s; `reload()` after
a channel's health changed."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from omniconsole.errors import OmniError
from omniconsole.i18n import N_, _
from omniconsole.store import Operator, Store
from omniconsole.tui.keys import key_displays
from omniconsole.tui.messages import StoreUnavailable
from omniconsole.tui.text import HEALTH, one_line, safe
from omniconsole.tui.widgets.pane_colours import PaneStyles

#: The hints at the end of the bar: (binding id on the screen, what it does).
HINTS = [
    ("app.help", N_("help")),
    ("app.search", N_("search")),
    ("conversation.reply", N_("reply")),
    ("conversation.note", N_("note")),
    ("conversation.resolve", N_("resolve")),
    ("app.commands", N_("commands")),
]


#: An operator's role as the bar says it.
ROLES = {"admin": N_("admin"), "supervisor": N_("supervisor"), "agent": N_("agent")}
#: An operator's routing status as the bar says it.
PRESENCE = {"online": N_("online"), "away": N_("away"), "offline": N_("offline")}


class StatusBar(PaneStyles, Static):
    """One line at the bottom of the main screen. Its colours are component classes of the
    stylesheet (`status-bar--operator`, `--dim`, `--alarm`, `--hints`, and `--up`, `--degraded`,
    `--down`, `--unknown` for a channel's health)."""

    PANE = "status-bar"

    INTERVAL = 5.0
    #: Cells of the core's line kept when the bar is short of room.
    CORE_LEAST = 20

    def __init__(self, store: Store, operator: Operator, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.store = store
        self.operator = operator
        self._channels: list = []
        self._core_text = Text("")
        self._routing_text = Text("")
        self._webhooks_text = Text("")

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
        remote = getattr(self.store, "remote", False)
        try:
            self._channels = await self.store.channels()
        except OmniError:
            if not remote:
                raise
            # A team setup whose core is down: say so here; actions are refused, drafts kept.
            self._core_text = Text(
                _("team: core down ({reason}); actions wait, drafts are kept").format(reason=self.store.down_reason),
                style=self.pane_style("alarm"),
            )
            self.draw()
            return
        from omniconsole.routing.service import team_lines

        mine = [
            line for line in await team_lines(self.store, getattr(self.app, "settings", None)) if line[0] == self.operator.login
        ]
        self._routing_text = (
            Text(f" {_(PRESENCE.get(mine[0][1], mine[0][1]))} {mine[0][2]} ", style=self.pane_style("dim")) if mine else Text("")
        )
        # A webhook endpoint shows only while its deliveries fail (integrations/webhooks.py).
        webhooks = Text(end="")
        for hook, backlog in await self.store.webhook_states():
            if hook.failures:
                webhooks.append(" " + _("⚠ webhook") + " ", style=self.pane_style("degraded"))
                webhooks.append_text(safe(one_line(hook.endpoint, 20)))
                webhooks.append(": " + _("{n} waiting").format(n=backlog) + ", ", style=self.pane_style("degraded"))
                webhooks.append_text(safe(one_line(hook.last_error, 40), self.pane_style("degraded")))
        self._webhooks_text = webhooks
        holder = await self.store.lease_holder()
        core = getattr(self.app, "core_state", None)
        if remote:
            where = _("pid {pid} on {host}").format(pid=holder.pid, host=holder.host) if holder is not None else _("starting")
            self._core_text = Text(_("team: core {where}").format(where=where), style=self.pane_style("dim"))
        elif core:
            self._core_text = Text(_(core), style=self.pane_style("dim"))
        elif holder is None or holder.expires_at < time.time():
            self._core_text = Text(_("no core is running: nothing is received or sent"), style=self.pane_style("alarm"))
        else:
            self._core_text = Text(
                _("core: pid {pid} on {host}").format(pid=holder.pid, host=holder.host), style=self.pane_style("dim")
            )
        self.draw()

    def hints(self) -> str:
        """`? help  / search  r reply ...` with the keys in force on the screen."""
        keys = key_displays(self.screen)
        shown = [(keys.get(binding_id, ""), _(words)) for binding_id, words in HINTS]
        return "  ".join(f"{key} {words}" for key, words in shown if key)

    def channels_text(self, name_width: int, detail_width: int) -> Text:
        """Each channel's health symbol and name (cut to `name_width` cells; 0: the symbol
        alone) with the reason of a degraded or down one (cut to `detail_width`; 0: none)."""
        text = Text(end="")
        for channel in self._channels:
            health = channel.health if channel.health in HEALTH else "unknown"
            symbol, style = HEALTH[health], self.pane_style(health)
            text.append(f" {symbol}", style=style)
            if name_width:
                text.append(" ")
                text.append_text(safe(one_line(channel.name, name_width)))
            if detail_width and channel.health in ("degraded", "down") and channel.health_detail:
                text.append(": ")
                text.append_text(safe(one_line(channel.health_detail, detail_width), style))
        return text

    def draw(self) -> None:
        """One line that fits the width: the operator and the key hints are kept whole; the
        channels' names and problems are shortened first, then the core's line."""
        start = Text(end="")
        start.append(f" {self.operator.login} ", style=self.pane_style("operator"))
        start.append(f" {_(ROLES.get(self.operator.role, self.operator.role))} ", style=self.pane_style("dim"))
        start.append_text(self._routing_text)  # my status and load: "online 2/5"
        hints = Text("   " + self.hints(), style=self.pane_style("hints"), end="")
        width = self.size.width or 160
        room = width - start.cell_len - hints.cell_len
        core = self._core_text
        # The core's line may be cut to its start ("no core is running…") before names go.
        core_least = min(core.cell_len, self.CORE_LEAST)
        channels = Text("")
        for name_width, detail_width in ((20, 40), (20, 0), (12, 0), (8, 0), (4, 0), (0, 0)):
            channels = self.channels_text(name_width, detail_width)
            channels.append_text(self._webhooks_text)
            if channels.cell_len + 2 + core.cell_len <= room:
                break
            if detail_width == 0 and channels.cell_len + 2 + core_least <= room:
                break
        text = Text(end="", no_wrap=True, overflow="ellipsis")
        text.append_text(start)
        text.append_text(channels)
        text.append("  ")
        spare = room - channels.cell_len - 2
        if core.cell_len > spare:
            core = core.copy()
            core.truncate(max(spare, 0), overflow="ellipsis")
        text.append_text(core)
        text.append_text(hints)
        self.update(text, layout=False)

    def on_resize(self) -> None:
        self.draw()
