"""The journeys screen: how customers move between channels (switch, repeat-contact and
first-contact-resolution figures, the from -> to transition table, the most common paths with
their outcomes) and the outcome table that channel advice comes from (analytics/journeys.py).
Short tables (tens of rows): DataTable is fine here."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from omniconsole.analytics import journey_service as js
from omniconsole.analytics.report import human_duration
from omniconsole.errors import OmniError, error_text
from omniconsole.i18n import N_


def _percent(value) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def headline(report: dict) -> Text:
    """The headline figures as one line."""
    text = Text()
    for label, value in (
        ("issues", str(report["issues"])),
        ("first-contact resolution", _percent(report["fcr"])),
        ("repeat contact 7d", _percent(report["repeat_contact_rate"])),
        ("switched channel", _percent(report["switch_rate"])),
        ("repeated themselves", _percent(report["repeated_themselves_rate"])),
        ("time to resolution", human_duration(report["ttr_median_s"])),
    ):
        text.append(f" {value} ", style="bold")
        text.append(f"{label}   ", style="dim")
    return text


class JourneysScreen(Screen[None]):
    """The team's journeys and the outcome table (a supervisor's read, like reports)."""

    BINDINGS = [
        Binding("escape,q", "close", N_("Back"), id="journeys.back"),
        Binding("g", "reload", N_("Read again"), id="journeys.reload"),
    ]

    def __init__(self, store, clock, settings=None) -> None:
        super().__init__()
        self.store = store
        self.clock = clock
        self.settings = settings
        self.report: dict | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("Journeys across channels", style="bold"), id="journeys-title")
        yield Static(Text("reading…", style="dim"), id="journeys-headline")
        with VerticalScroll():
            with Horizontal(id="journeys-top"):
                yield DataTable(id="journeys-transitions", cursor_type="row")
                yield DataTable(id="journeys-paths", cursor_type="row")
            yield Static(Text("Outcomes by topic and the channel it was resolved on", style="bold"))
            yield DataTable(id="journeys-outcomes", cursor_type="row")
            yield Static(id="journeys-advice")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#journeys-transitions", DataTable).add_columns("from", "to", "switches")
        self.query_one("#journeys-paths", DataTable).add_columns("path", "issues", "FCR", "resolution")
        self.query_one("#journeys-outcomes", DataTable).add_columns(
            "topic", "channel", "n", "one contact", "shrunk", "95% interval", "business TTR", "CSAT", "op. min"
        )
        self.load()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_reload(self) -> None:
        self.load()

    @work(exclusive=True, group="journeys", exit_on_error=False)
    async def load(self) -> None:
        try:
            report = await js.journeys_report(self.store, self.settings, now=self.clock())
        except OmniError as exc:
            self.query_one("#journeys-headline", Static).update(
                Text(f"The journeys could not be read: {error_text(exc)}", style="red")
            )
            return
        self.show(report)

    def show(self, report: dict) -> None:
        """Fill the tables from a journeys report (analytics/journeys.py build_report)."""
        self.report = report
        self.query_one("#journeys-headline", Static).update(headline(report))
        table = self.query_one("#journeys-transitions", DataTable)
        table.clear()
        for t in report["transitions"][:30]:
            table.add_row(Text(t["from"]), Text(t["to"]), Text(str(t["switches"]), justify="right"))
        table = self.query_one("#journeys-paths", DataTable)
        table.clear()
        for p in report["paths"]:
            table.add_row(
                Text(js.path_words(p["path"])),
                Text(str(p["issues"]), justify="right"),
                Text(_percent(p["fcr"]), justify="right"),
                Text(human_duration(p["ttr_median_s"]), justify="right"),
            )
        table = self.query_one("#journeys-outcomes", DataTable)
        table.clear()
        for c in report["outcomes"]:
            interval = c["rate_interval"]
            table.add_row(
                Text(c["topic"]),
                Text(c["channel"]),
                Text(str(c["n"]), justify="right"),
                Text(_percent(c["rate"]), justify="right"),
                Text(_percent(c["rate_shrunk"]), justify="right"),
                Text("-" if interval is None else f"{_percent(interval[0])}-{_percent(interval[1])}"),
                Text(human_duration(c["ttr_business_median_s"]), justify="right"),
                Text(f"{_percent(c['csat'])} n={c['csat_n']}"),
                Text("-" if c["operator_minutes"] is None else f"{c['operator_minutes']:.1f}", justify="right"),
            )
        advice = report["advice"]
        self.query_one("#journeys-advice", Static).update(
            Text(
                f"Advice is given from {advice['min_n']} issues a cell; {advice['holdout_share']:.0%} of conversations"
                f" get none (holdout). Qualified and advised: {advice['advised']['issues']} issues,"
                f" first-contact resolution {_percent(advice['advised']['fcr'])}; holdout:"
                f" {advice['holdout']['issues']}, {_percent(advice['holdout']['fcr'])}.",
                style="dim",
            )
        )
