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
from textual.widgets import DataTable, Static

from omniconsole.analytics import journey_service as js
from omniconsole.analytics.report import human_duration
from omniconsole.errors import OmniError, error_text
from omniconsole.i18n import N_, Np_, _, local_number, pgettext
from omniconsole.tui.widgets.footer import Footer


def _percent(value) -> str:
    """A share 0-1 as a percentage for the current language (46%, Russian 46 %)."""
    return "-" if value is None else local_number(value, f"{value * 100:.0f}%", percent=True)


def _count(n: int) -> str:
    return local_number(n, str(n))


def headline(report: dict) -> Text:
    """The headline figures as one line."""
    text = Text()
    for label, value in (
        (Np_("journeys", "issues"), _count(report["issues"])),
        (Np_("journeys", "first-contact resolution"), _percent(report["fcr"])),
        (Np_("journeys", "repeat contact 7d"), _percent(report["repeat_contact_rate"])),
        (Np_("journeys", "switched channel"), _percent(report["switch_rate"])),
        (Np_("journeys", "repeated themselves"), _percent(report["repeated_themselves_rate"])),
        (Np_("journeys", "time to resolution"), human_duration(report["ttr_median_s"])),
    ):
        text.append(f" {value} ", style="bold")
        text.append(f"{pgettext('journeys', label)}   ", style="dim")
    return text


#: The tables' columns, in the context "journeys".
TRANSITION_COLUMNS = (Np_("journeys", "from"), Np_("journeys", "to"), Np_("journeys", "switches"))
PATH_COLUMNS = (Np_("journeys", "path"), Np_("journeys", "issues"), Np_("journeys", "FCR"), Np_("journeys", "resolution"))
OUTCOME_COLUMNS = (
    Np_("journeys", "topic"),
    Np_("journeys", "channel"),
    Np_("journeys", "n"),
    Np_("journeys", "one contact"),
    Np_("journeys", "shrunk"),
    Np_("journeys", "interval"),  # drawn "95% interval": a "%" in a msgid reads as a %-format
    Np_("journeys", "business TTR"),
    Np_("journeys", "CSAT"),
    Np_("journeys", "op. min"),
)


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
        yield Static(Text(_("Journeys across channels"), style="bold"), id="journeys-title")
        yield Static(Text(_("reading…"), style="dim"), id="journeys-headline")
        with VerticalScroll():
            with Horizontal(id="journeys-top"):
                yield DataTable(id="journeys-transitions", cursor_type="row")
                yield DataTable(id="journeys-paths", cursor_type="row")
            yield Static(Text(_("Outcomes by topic and the channel it was resolved on"), style="bold"))
            yield DataTable(id="journeys-outcomes", cursor_type="row")
            yield Static(id="journeys-advice")
        yield Footer()

    def on_mount(self) -> None:
        for table, titles in (
            ("#journeys-transitions", TRANSITION_COLUMNS),
            ("#journeys-paths", PATH_COLUMNS),
            ("#journeys-outcomes", OUTCOME_COLUMNS),
        ):
            self.query_one(table, DataTable).add_columns(
                *(Text(("95% " if title == "interval" else "") + pgettext("journeys", title)) for title in titles)
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
                Text(_("The journeys could not be read: {error}").format(error=error_text(exc)), style="red")
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
            table.add_row(Text(t["from"]), Text(t["to"]), Text(_count(t["switches"]), justify="right"))
        table = self.query_one("#journeys-paths", DataTable)
        table.clear()
        for p in report["paths"]:
            table.add_row(
                Text(js.path_words(p["path"])),
                Text(_count(p["issues"]), justify="right"),
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
                Text(_count(c["n"]), justify="right"),
                Text(_percent(c["rate"]), justify="right"),
                Text(_percent(c["rate_shrunk"]), justify="right"),
                Text("-" if interval is None else f"{_percent(interval[0])}-{_percent(interval[1])}"),
                Text(human_duration(c["ttr_business_median_s"]), justify="right"),
                Text(f"{_percent(c['csat'])} n={c['csat_n']}"),
                Text(
                    "-"
                    if c["operator_minutes"] is None
                    else local_number(c["operator_minutes"], f"{c['operator_minutes']:.1f}", "#,##0.0"),
                    justify="right",
                ),
            )
        advice = report["advice"]
        self.query_one("#journeys-advice", Static).update(
            Text(
                _(
                    "Advice is given from {min_n} issues a cell; {holdout_share} of conversations get none (holdout)."
                    " Qualified and advised: {advised} issues, first-contact resolution {advised_fcr}; holdout:"
                    " {holdout}, {holdout_fcr}."
                ).format(
                    min_n=advice["min_n"],
                    holdout_share=local_number(advice["holdout_share"], f"{advice['holdout_share']:.0%}", percent=True),
                    advised=_count(advice["advised"]["issues"]),
                    advised_fcr=_percent(advice["advised"]["fcr"]),
                    holdout=_count(advice["holdout"]["issues"]),
                    holdout_fcr=_percent(advice["holdout"]["fcr"]),
                ),
                style="dim",
            )
        )
