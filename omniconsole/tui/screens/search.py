"""Search across every message and customer. Results arrive as the operator types (a stale
search is cancelled); choosing one opens its conversation at that message."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from omniconsole.errors import OmniError, error_text
from omniconsole.i18n import N_, _
from omniconsole.store import SearchResults, Store
from omniconsole.tui.text import badge, clock_time, counted, one_line, safe
from omniconsole.tui.widgets.dialog_list import DialogList
from omniconsole.tui.workers import WorkerFailures


@dataclass(frozen=True)
class SearchChoice:
    """What the operator picked: a message (open its conversation there) or a customer."""

    conversation_id: int | None
    message_id: int | None
    customer_id: int


#: The option at the end of a page when more messages match.
MORE = "more"
PAGE = 100


def result_options(results: SearchResults, width: int = 100, *, customers: bool = True) -> list[Option]:
    options: list[Option] = []
    for customer in results.customers if customers else ():
        label = Text(end="")
        label.append(_("customer") + "  ", style="bold magenta")
        label.append_text(safe(one_line(customer.display_name, 40), "bold"))
        label.append("  ")
        label.append_text(safe(one_line(customer.identities, 60), "grey62"))
        options.append(Option(label, id=f"c:{customer.customer_id}"))
    for hit in results.messages:
        label = Text(end="")
        label.append_text(badge(hit.channel_kind or ("note" if hit.direction == "note" else "")))
        label.append(f" {clock_time(hit.created_at)}  ", style="grey62")
        label.append_text(safe(one_line(hit.customer_name, 24), "bold cyan"))
        label.append("  ")
        label.append_text(safe(one_line(hit.body, width)))
        options.append(Option(label, id=f"m:{hit.message_id}:{hit.conversation_id}:{hit.customer_id}"))
    if results.more:
        options.append(Option(Text(_("more results… (Enter shows the next {n})").format(n=PAGE), style="bold"), id=MORE))
    return options


def summary_line(customers: int, messages: int, more: bool) -> str:
    """`1 customer, 100 messages and more (latest stored first)`."""
    found = f"{counted(customers, 'customer')}, {counted(messages, 'message')}" + (" " + _("and more") if more else "")
    return _("{found} (latest stored first)").format(found=found) if messages else found


class SearchScreen(WorkerFailures, ModalScreen[SearchChoice | None]):
    """`/`: type to search; Down moves into the results, Enter opens one, Escape closes."""

    BINDINGS = [Binding("escape", "close", N_("Close"), id="search.close")]

    def __init__(self, store: Store, initial: str = "", region: str = "RU") -> None:
        super().__init__()
        self.store = store
        self.initial = initial
        self.phone_region = region
        self.results = SearchResults()
        self.text = ""
        self.shown_messages = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="search-box", classes="dialog wide"):
            yield Label(Text(_("Search messages and customers"), style="bold"), markup=False)
            yield Input(value=self.initial, placeholder=_("words, a name, an e-mail or a phone number"), id="search-input")
            yield Label(Text("", style="grey62"), id="search-summary", markup=False)
            yield DialogList(id="search-results", markup=False)

    def on_mount(self) -> None:
        search = self.query_one(Input)
        search.cursor_blink = False  # steady over slow links (and in snapshot tests)
        search.focus()
        if self.initial:
            self.run_search(self.initial)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.run_search(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        results = self.query_one(OptionList)
        if results.option_count:
            results.focus()
            results.highlighted = 0

    def on_key(self, event) -> None:
        if event.key == "down" and isinstance(self.focused, Input):
            results = self.query_one(OptionList)
            if results.option_count:
                results.focus()
                results.highlighted = 0
                event.stop()

    @work(exclusive=True, group="search", exit_on_error=False)
    async def run_search(self, text: str) -> None:
        from omniconsole.core.identity import phone_search_digits

        await asyncio.sleep(0.12)  # typing on: this search is cancelled by the next one
        try:
            # A number is looked for as identities are stored (the configured region), whole
            # or in part.
            results = await self.store.search(text, limit=PAGE, phone_digits=phone_search_digits(text, self.phone_region))
        except OmniError as exc:
            self.query_one("#search-summary", Label).update(
                Text(_("search failed: {error}").format(error=error_text(exc)), style="red")
            )
            return
        self.results, self.text = results, text
        self.shown_messages = len(results.messages)
        option_list = self.query_one(OptionList)
        option_list.clear_options()
        option_list.add_options(result_options(results))
        self._summarise(text)

    def _summarise(self, text: str) -> None:
        summary = summary_line(len(self.results.customers), self.shown_messages, self.results.more) if text.strip() else ""
        self.query_one("#search-summary", Label).update(Text(summary, style="grey62"))

    @work(exclusive=True, group="search", exit_on_error=False)
    async def next_page(self) -> None:
        """Replace the `more results…` option with the next page of messages."""
        last = next((o for o in reversed(self.query_one(OptionList).options) if (o.id or "").startswith("m:")), None)
        if last is None:
            return
        before = int((last.id or "").split(":")[1])
        try:
            page = await self.store.search(self.text, limit=PAGE, before_id=before)
        except OmniError as exc:
            self.query_one("#search-summary", Label).update(
                Text(_("search failed: {error}").format(error=error_text(exc)), style="red")
            )
            return
        option_list = self.query_one(OptionList)
        more_at = option_list.get_option_index(MORE)
        option_list.remove_option(MORE)
        option_list.add_options(result_options(page, customers=False))
        self.results = SearchResults(self.results.messages + page.messages, self.results.customers, page.more)
        self.shown_messages += len(page.messages)
        option_list.highlighted = more_at  # the first of the new page
        self._summarise(self.text)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id == MORE:
            self.next_page()
            return
        kind, *ids = (event.option.id or "").split(":")
        if kind == "c":
            self.dismiss(SearchChoice(None, None, int(ids[0])))
        elif kind == "m":
            self.dismiss(SearchChoice(int(ids[1]), int(ids[0]), int(ids[2])))

    def action_close(self) -> None:
        self.dismiss(None)
