"""The live wallboard for a supervisor: open, unattended, unassigned, snoozed, the longest wait,
operators with their status, open conversations and load (routing's), the
conversations with the bot (once the bot lands), and today's volume by channel.

Live: it reads the events log's newest id every `INTERVAL` seconds and redraws when it moved
(a read of the figures costs a few milliseconds: analytics/wallboard.py).
"""

from __future__ import annotations

from datetime import tzinfo

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from omniconsole.analytics.report import human_duration
from omniconsole.analytics.wallboard import Wallboard, wallboard
from omniconsole.errors import OmniError, error_text
from omniconsole.i18n import N_


def tiles(board: Wallboard) -> Text:
    """The headline figures as one line of big-number tiles."""
    text = Text()
    for label, value, style in (
        ("open", str(board.open), "bold"),
        ("unattended", str(board.unattended), "bold red" if board.unattended else "bold green"),
        ("unassigned", str(board.unassigned), "bold yellow" if board.unassigned else "bold"),
        ("snoozed", str(board.snoozed), "bold"),
        ("longest wait", human_duration(board.longest_wait_s), "bold red" if (board.longest_wait_s or 0) > 3600 else "bold"),
        ("with the bot", "-" if board.with_bot is None else str(board.with_bot), "bold"),
    ):
        text.append(f" {value} ", style=style)
        text.append(f"{label}    ", style="dim")
    return text


class WallboardScreen(Screen[None]):
    """The team's live figures."""

    INTERVAL = 1.0
    BINDINGS = [Binding("escape,q", "close", N_("Back"), id="wallboard.back")]

    def __init__(self, store, clock, tz: tzinfo | None = None) -> None:
        super().__init__()
        self.store = store
        self.clock = clock
        self.tz = tz
        self.seen_event: int | None = None
        self.board: Wallboard | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("Wallboard", style="bold"), id="wallboard-title")
        yield Static(id="wallboard-tiles")
        with Horizontal(id="wallboard-lists"):
            yield DataTable(id="wallboard-operators", cursor_type="row")
            yield DataTable(id="wallboard-channels", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        operators = self.query_one("#wallboard-operators", DataTable)
        operators.add_columns("operator", "status", "open", "load")
        channels = self.query_one("#wallboard-channels", DataTable)
        channels.add_columns("today by channel", "opened")
        self.refresh_board()
        self.set_interval(self.INTERVAL, self.refresh_board)

    def action_close(self) -> None:
        self.dismiss(None)

    @work(exclusive=True, group="wallboard")
    async def refresh_board(self) -> None:
        try:
            last = await self.store.last_event_id()
            if last == self.seen_event:
                return
            board = await wallboard(self.store, self.clock(), self.tz, getattr(self.app, "settings", None))
        except OmniError as exc:
            self.app.notify(f"The wallboard could not be read: {error_text(exc)}", severity="error", markup=False)
            return
        self.seen_event = last
        self.board = board
        self.query_one("#wallboard-tiles", Static).update(tiles(board))
        operators = self.query_one("#wallboard-operators", DataTable)
        operators.clear()
        for line in board.operators:
            operators.add_row(
                Text(line.login),
                Text(line.status or "-"),
                Text(str(line.active), justify="right"),
                Text("-" if line.load is None else f"{line.load * 100:.0f}%", justify="right"),
            )
        channels = self.query_one("#wallboard-channels", DataTable)
        channels.clear()
        for kind, n in board.volume_by_channel.items():
            channels.add_row(Text(kind), Text(str(n), justify="right"))
