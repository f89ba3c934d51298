"""The "Bot" view: conversations the bot is answering now, live, and take-over by one key.

Each row shows the customer, the topic and language the bot detected, the answers it sent and
the conversation's latest line; `t` takes the highlighted conversation over (the bot stops at
once and it is assigned to the operator), `escape` goes back. The list is read again every
second (a short list: DataTable is fine here).
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Label

from omniconsole.i18n import N_, Np_, _, pgettext
from omniconsole.models import preview_line, sanitize_text
from omniconsole.store import Store
from omniconsole.store.bot import BotStore
from omniconsole.tui.widgets.footer import Footer

REFRESH_SECONDS = 1.0


class BotScreen(Screen):
    """Live bot conversations with take-over; see the module's docstring."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", N_("Back"), id="bot.back"),
        Binding("t", "take_over", N_("Take over"), id="bot.take_over"),
    ]

    DEFAULT_CSS = """
    BotScreen DataTable { height: 1fr; }
    BotScreen #bot-hint { color: $text-muted; padding: 0 1; }
    """

    def __init__(self, store: Store, login: str):
        super().__init__()
        self.store = store
        self.rows = BotStore(store)
        self.login = login
        self.shown: list[int] = []

    def compose(self) -> ComposeResult:
        yield Label(_("Conversations the bot is answering · t takes one over · esc back"), id="bot-hint", markup=False)
        table = DataTable(id="bot-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(
            "#",
            *(
                Text(pgettext("bot view", title))
                for title in (
                    Np_("bot view", "customer"),
                    Np_("bot view", "topic"),
                    Np_("bot view", "lang"),
                    Np_("bot view", "answers sent"),
                    Np_("bot view", "latest"),
                )
            ),
        )
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_rows()
        self.set_interval(REFRESH_SECONDS, self.refresh_rows)

    @work(exclusive=True, group="bot-view")
    async def refresh_rows(self) -> None:
        """Read the live bot conversations again and redraw, keeping the highlighted one."""
        live = await self.rows.live()
        table = self.query_one(DataTable)
        keep = self.shown[table.cursor_row] if self.shown and 0 <= table.cursor_row < len(self.shown) else None
        table.clear()
        self.shown = []
        for state, name, preview in live:
            table.add_row(
                Text(str(state.conversation_id)),
                Text(sanitize_text(name) or _("(no name)")),
                Text(state.topic or "-"),
                Text(state.language or "-"),
                Text(", ".join(state.answered) or "-"),
                Text(preview_line(sanitize_text(preview), 60)),
            )
            self.shown.append(state.conversation_id)
        if keep in self.shown:
            table.move_cursor(row=self.shown.index(keep))

    async def action_take_over(self) -> None:
        table = self.query_one(DataTable)
        if not self.shown or not 0 <= table.cursor_row < len(self.shown):
            self.notify(_("No bot conversation is highlighted."), markup=False)
            return
        conversation_id = self.shown[table.cursor_row]
        if await self.rows.take_over(conversation_id, self.login):
            self.notify(_("You took conversation {id} over; the bot is silent there.").format(id=conversation_id), markup=False)
        else:
            self.notify(_("The bot was no longer answering in conversation {id}.").format(id=conversation_id), markup=False)
        self.refresh_rows()
