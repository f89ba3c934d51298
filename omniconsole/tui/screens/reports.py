"""The reports screen: the figures of today, 7 days, 30 days, all time or a typed range, in
total or by channel, operator, queue or label; volume by hour and by day, the first-response and
CSAT trends as sparklines, and a weekday x hour heatmap of arrivals. Enter on a figure lists
the conversations behind it; choosing one opens it in the inbox (the screen's result).

Drawn with Textual's own `Sparkline` and a Text grid: `textual-plotext` is not among the
packages available to this project (see the branch report), and the figures need no axes.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta, tzinfo

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Sparkline, Static

from omniconsole.analytics import figures as f
from omniconsole.analytics import report as rp
from omniconsole.errors import OmniError, error_text
from omniconsole.i18n import N_
from omniconsole.tui.screens.dialogs import ChoiceDialog, InputDialog

#: Table columns: (report field, title, the figure behind it).
COLUMNS = (
    ("conversations", "opened", f.OPENED),
    ("resolved", "resolved", f.RESOLVED),
    ("frt_median_s", "FRT med", f.FRT),
    ("frt_p90_s", "FRT p90", f.FRT),
    ("nrt_median_s", "NRT med", f.NRT),
    ("resolution_median_s", "resol. med", f.RESOLUTION),
    ("unattended", "unattended", f.UNATTENDED),
    ("csat", "CSAT", f.CSAT),
    ("nps", "NPS", f.NPS),
    ("bot_contained", "bot cont.", f.BOT_CONTAINED),
    ("bot_handoffs", "handoffs", f.BOT_HANDOFF),
)
GROUPS = (None, "channel", "operator", "queue", "label")
SHADES = " ░▒▓█"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def heatmap(facts: list[f.Fact], period: rp.Period, tz: tzinfo | None = None) -> Text:
    """Arrivals (conversations opened) by weekday x hour as shaded cells, busiest darkest."""
    grid = [[0] * 24 for _ in range(7)]
    for fact in facts:
        if fact.figure == f.OPENED and period.holds(fact.at):
            moment = datetime.fromtimestamp(fact.at, tz) if tz else datetime.fromtimestamp(fact.at)
            grid[moment.weekday()][moment.hour] += 1
    top = max(max(row) for row in grid) or 1
    text = Text("     " + "".join(f"{h:<3}" for h in range(0, 24, 3)).rstrip() + "\n", style="dim")
    for day, row in zip(WEEKDAYS, grid):
        text.append(f"{day}  ")
        for n in row:
            text.append(SHADES[min(len(SHADES) - 1, (n * (len(SHADES) - 1) + top - 1) // top)])
        text.append("\n")
    text.rstrip()
    return text


def daily(facts: list[f.Fact], period: rp.Period, figure: str, days: list[date], tz: tzinfo | None, fold) -> list[float]:
    """One value per day of `days` of a figure's facts (folded by `fold`, 0 when none)."""
    values: dict[date, list[float]] = defaultdict(list)
    for fact in facts:
        if fact.figure == figure and period.holds(fact.at):
            moment = datetime.fromtimestamp(fact.at, tz) if tz else datetime.fromtimestamp(fact.at)
            values[moment.date()].append(fact.value if fact.value is not None else 1.0)
    return [fold(values[d]) if values[d] else 0.0 for d in days]


class ReportsScreen(Screen[int | None]):
    """Figures of a period; dismisses with a conversation id to open, or None."""

    BINDINGS = [
        Binding("t", "period('today')", N_("Today"), id="reports.today"),
        Binding("7", "period('7')", N_("7 days"), id="reports.week"),
        Binding("3", "period('30')", N_("30 days"), id="reports.month"),
        Binding("0", "period('all')", N_("All time"), id="reports.all"),
        Binding("f", "range", N_("Range…"), id="reports.range"),
        Binding("g", "group", N_("Group by"), id="reports.group"),
        Binding("enter", "behind", N_("Conversations behind"), id="reports.behind"),
        Binding("escape,q", "close", N_("Back"), id="reports.back"),
    ]

    def __init__(self, store, clock, tz: tzinfo | None = None, operator=None) -> None:
        super().__init__()
        self.store = store
        # An agent sees their own figures beside the team's totals (issue #20), nobody else's;
        # supervisors and admins see every figure and grouping.
        self.own_login: str | None = operator.login if operator is not None and operator.role == "agent" else None
        self.clock = clock
        self.tz = tz
        self.period_name = "7"
        self.period = rp.last_days(7, clock(), tz)
        self.group: str | None = None
        self.facts: list[f.Fact] = []
        self.report: dict = {}

    def compose(self) -> ComposeResult:
        yield Static(id="reports-title")
        yield DataTable(id="reports-table", cursor_type="cell", zebra_stripes=True)
        with Horizontal(id="reports-charts"):
            with Vertical(classes="chart"):
                yield Static("Arrivals by hour", classes="chart-title")
                yield Sparkline([0], id="chart-hour")
                yield Static("Arrivals by day", classes="chart-title")
                yield Sparkline([0], id="chart-day")
                yield Static("First response, median by day", classes="chart-title")
                yield Sparkline([0], id="chart-frt")
                yield Static("CSAT by day", classes="chart-title")
                yield Sparkline([0], id="chart-csat")
            yield Static(id="reports-heatmap")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    def action_period(self, name: str) -> None:
        now = self.clock()
        self.period_name = name
        if name == "today":
            self.period = rp.last_days(1, now, self.tz)
        elif name == "all":
            self.period = rp.Period(None, None)
        else:
            self.period = rp.last_days(int(name), now, self.tz)
        self.load()

    @work(group="dialog", exclusive=True)
    async def action_range(self) -> None:
        typed = await self.app.push_screen_wait(
            InputDialog("Range: FROM TO (YYYY-MM-DD, TO exclusive)", placeholder="2026-03-01 2026-04-01")
        )
        if not typed:
            return
        try:
            start, end = (date.fromisoformat(part) for part in typed.split())
        except ValueError:
            self.app.notify("Write the range as two dates: 2026-03-01 2026-04-01", severity="error", markup=False)
            return
        if end <= start:
            self.app.notify("The second date must be after the first (it is exclusive)", severity="error", markup=False)
            return
        self.period_name = f"{start} – {end - timedelta(days=1)}"
        self.period = rp.period_of(start, end, self.tz)
        self.load()

    def action_group(self) -> None:
        if self.own_login is not None:
            self.app.notify("Your figures and the team's totals: grouping is for supervisors", markup=False)
            return
        self.group = GROUPS[(GROUPS.index(self.group) + 1) % len(GROUPS)]
        self.load()

    def action_close(self) -> None:
        self.dismiss(None)

    @work(exclusive=True, group="report")
    async def load(self) -> None:
        now = self.clock()
        try:
            if self.own_login is not None:
                team, own = await self.store.own_figures(self.period.start, self.period.end, self.own_login)
            else:
                self.facts, sent = await self.store.report_facts(self.period.start, self.period.end, now)
        except OmniError as exc:
            self.app.notify(f"The report could not be read: {error_text(exc)}", severity="error", markup=False)
            return
        if self.own_login is not None:
            self.facts = []
            self.report = rp.summarise_figures(team.counts, team.spreads, self.period, now)
            self.report["rows"] = [{"key": self.own_login, **rp.summarise_figures(own.counts, own.spreads, self.period, now)}]
        else:
            self.report = rp.build_report(self.facts, self.period, now, by=self.group, tz=self.tz, surveys_sent=sent)
        self.draw(now)

    def _title(self) -> Text:
        names = {"today": "Today", "7": "Last 7 days", "30": "Last 30 days", "all": "All time"}
        text = Text(names.get(self.period_name, self.period_name), style="bold")
        if self.own_login is not None:
            text.append(f"   {self.own_login} beside the team's totals", style="dim")
        else:
            text.append(f"   by {self.group or 'nothing (totals)'}", style="dim")
        text.append("   t today · 7 · 3 (30 days) · 0 all · f range · g group · Enter: conversations behind", style="dim")
        return text

    def draw(self, now: float) -> None:
        self.query_one("#reports-title", Static).update(self._title())
        table = self.query_one("#reports-table", DataTable)
        table.clear(columns=True)
        table.add_column("", key="key")
        for field, title, _ in COLUMNS:
            table.add_column(title, key=field)
        for row in self.report.get("rows", []):
            table.add_row(
                Text(str(row["key"])),
                *[Text(rp.cell(fd, row.get(fd)), justify="right") for fd, _, _ in COLUMNS],
                key=f"row:{row['key']}",
            )
        table.add_row(
            Text("total", style="bold"),
            *[Text(rp.cell(fd, self.report.get(fd)), justify="right", style="bold") for fd, _, _ in COLUMNS],
            key="total",
        )
        hours = [0.0] * 24
        for fact in self.facts:
            if fact.figure == f.OPENED and self.period.holds(fact.at):
                moment = datetime.fromtimestamp(fact.at, self.tz) if self.tz else datetime.fromtimestamp(fact.at)
                hours[moment.hour] += 1
        self.query_one("#chart-hour", Sparkline).data = hours
        days = self._days(now)
        self.query_one("#chart-day", Sparkline).data = daily(self.facts, self.period, f.OPENED, days, self.tz, len) or [0]
        self.query_one("#chart-frt", Sparkline).data = daily(
            self.facts, self.period, f.FRT, days, self.tz, statistics.median
        ) or [0]
        self.query_one("#chart-csat", Sparkline).data = daily(
            self.facts, self.period, f.CSAT, days, self.tz, lambda v: sum(1 for s in v if s >= f.CSAT_GOOD) / len(v)
        ) or [0]
        self.query_one("#reports-heatmap", Static).update(heatmap(self.facts, self.period, self.tz))

    def _days(self, now: float) -> list[date]:
        def day_of(at: float) -> date:
            return (datetime.fromtimestamp(at, self.tz) if self.tz else datetime.fromtimestamp(at)).date()

        first = (
            day_of(self.period.start)
            if self.period.start is not None
            else (day_of(min(x.at for x in self.facts)) if self.facts else day_of(now))
        )
        last = day_of((self.period.end if self.period.end is not None else now) - 1)
        last = min(last, day_of(now))
        count = max(1, min(400, (last - first).days + 1))
        return [first + timedelta(days=i) for i in range(count)]

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        """Enter (or a click) on a figure: the table takes the key and says so here."""
        event.stop()
        self.action_behind()

    @work(group="dialog", exclusive=True)
    async def action_behind(self) -> None:
        table = self.query_one("#reports-table", DataTable)
        if not table.row_count:
            return
        coordinate = table.cursor_coordinate
        if coordinate.column == 0:
            # The first column names the row; a new user's first Enter lands here (it did nothing).
            self.app.notify("Move to a figure with → first: Enter lists the conversations behind it", markup=False)
            return
        if self.own_login is not None:
            self.app.notify("The conversations behind a figure are for supervisors", markup=False)
            return
        field, title, figure = COLUMNS[coordinate.column - 1]
        row_key = table.coordinate_to_cell_key(coordinate).row_key.value
        key = None
        if row_key != "total":
            key = next(r["key"] for r in self.report["rows"] if f"row:{r['key']}" == row_key)
        ids = rp.conversations_behind(
            self.facts, self.period, figure, by=self.group if key is not None else None, key=key, tz=self.tz
        )
        if not ids:
            self.app.notify("No conversations behind this figure", markup=False)
            return
        options = [(str(cid), Text(f"#{cid}")) for cid in ids[:500]]
        heading = f"{title}{f' · {key}' if key is not None else ''}: {len(ids)} conversations"
        choice = await self.app.push_screen_wait(ChoiceDialog(heading, options))
        if choice is not None:
            self.dismiss(int(choice))
