"""Reports: the figures of a period, in total or grouped, as the JSON contract of issue #20
(documented in README "Reports"), a table or CSV; and one row per conversation.

A period is [start, end) in epoch seconds (`--from` inclusive, `--to` exclusive, dates at
local midnight). Each fact counts in the period of its ending event (figures.py).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from omniconsole.analytics import figures as f
from omniconsole.analytics.figures import Fact, conversation_facts
from omniconsole.i18n import Np_, _, local_number, pgettext
from omniconsole.store.facts import THRESHOLDS, WITH_MEAN, Spread, spread_of

GROUPINGS = ("channel", "operator", "queue", "label", "day", "hour")
FORMATS = ("table", "csv", "json")
#: The key used for every conversation while queues do not exist (routing lands them).
DEFAULT_QUEUE = "default"
NO_LABEL = "(none)"

#: The contract's fields in order (README "Reports"); `_business` twins follow each duration.
DURATIONS = (
    "frt_median_s",
    "frt_p90_s",
    "frt_mean_s",
    "nrt_median_s",
    "nrt_p90_s",
    "nrt_mean_s",
    "resolution_median_s",
    "resolution_p90_s",
    "resolution_mean_s",
    "full_resolution_median_s",
    "full_resolution_p90_s",
    "waiting_on_customer_median_s",
)


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in epoch seconds; None: unbounded on that side."""

    start: float | None
    end: float | None

    def holds(self, at: float) -> bool:
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)


def local_midnight(day: date, tz: tzinfo | None = None) -> float:
    """Epoch seconds of local midnight starting `day` in `tz` (None: the system's zone)."""
    moment = datetime(day.year, day.month, day.day)
    return (moment.replace(tzinfo=tz) if tz else moment.astimezone()).timestamp()


def period_of(start: date | None, end: date | None, tz: tzinfo | None = None) -> Period:
    """The period from `start` (inclusive) to `end` (exclusive) as local midnights."""
    return Period(local_midnight(start, tz) if start else None, local_midnight(end, tz) if end else None)


def last_days(days: int, now: float, tz: tzinfo | None = None) -> Period:
    """Today and the `days - 1` days before it, to the end of today."""
    today = datetime.fromtimestamp(now, tz).date() if tz else datetime.fromtimestamp(now).date()
    return period_of(today - timedelta(days=days - 1), today + timedelta(days=1), tz)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (the smallest value with at least `share` of values at or below it)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def summarise(facts: Iterable[Fact], period: Period, now: float) -> dict:
    """The contract's object for these facts: counts, medians/p90/means of durations in
    seconds (null when nothing to measure), CSAT share 0-1, NPS -100..100."""
    values: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for fact in facts:
        if fact.figure == f.UNATTENDED:
            counts[f.UNATTENDED] += 1
        elif not period.holds(fact.at):
            continue
        elif fact.value is not None and fact.figure in MEASURED:
            values[fact.figure].append(fact.value)
        else:
            counts[fact.figure] += 1
    spreads = {figure: spread_of(values[figure], *THRESHOLDS.get(figure, ()), mean=figure in WITH_MEAN) for figure in MEASURED}
    return summarise_figures(counts, spreads, period, now)


#: Figures that carry a value (seconds or a score); the others are counted.
MEASURED = frozenset({f.FRT, f.NRT, f.RESOLUTION, f.FULL_RESOLUTION, f.WAITING_ON_CUSTOMER, f.CSAT, f.NPS})


def summarise_figures(counts: dict[str, int], spreads: dict[str, Spread], period: Period, now: float) -> dict:
    """The contract's object from counts per counted figure (`unattended` as of now) and the
    spread of each measured figure, all already restricted to the period (`summarise` from
    facts, or store `report_figures` from the `conversation_facts` rows)."""
    empty = Spread(0, None, None, None)
    out: dict = {
        "conversations": counts.get(f.OPENED, 0),
        "resolved": counts.get(f.RESOLVED, 0),
    }
    for figure in (f.FRT, f.NRT, f.RESOLUTION, f.FULL_RESOLUTION):
        spread = spreads.get(figure, empty)
        for stat in ("median", "p90", "mean"):
            if figure == f.FULL_RESOLUTION and stat == "mean":
                continue
            out[f"{figure}_{stat}_s"] = _round(getattr(spread, stat))
            out[f"{figure}_{stat}_s_business"] = None
    out["waiting_on_customer_median_s"] = _round(spreads.get(f.WAITING_ON_CUSTOMER, empty).median)
    out["waiting_on_customer_median_s_business"] = None
    out["frt_responses"] = spreads.get(f.FRT, empty).n
    out["nrt_responses"] = spreads.get(f.NRT, empty).n
    ongoing = period.end is None or period.end > now
    out["unattended"] = counts.get(f.UNATTENDED, 0) if ongoing else None
    csat, nps = spreads.get(f.CSAT, empty), spreads.get(f.NPS, empty)
    out["csat"] = _round(csat.high / csat.n) if csat.n else None
    out["csat_responses"] = csat.n
    out["nps"] = _round(100.0 * (nps.high - nps.low) / nps.n) if nps.n else None
    out["nps_responses"] = nps.n
    out["bot_contained"] = counts.get(f.BOT_CONTAINED, 0)
    out["bot_handoffs"] = counts.get(f.BOT_HANDOFF, 0)
    return out


def group_keys(fact: Fact, by: str, tz: tzinfo | None = None) -> list:
    """The group(s) a fact counts under: a channel kind, an operator login (`bot`,
    `unassigned`), the queue (`default` until queues exist), each label, a local date (ISO) or
    a local hour 0-23."""
    if by == "channel":
        return [fact.channel]
    if by == "operator":
        return [fact.operator]
    if by == "queue":
        return [DEFAULT_QUEUE]
    if by == "label":
        return list(fact.labels) or [NO_LABEL]
    moment = datetime.fromtimestamp(fact.at, tz) if tz else datetime.fromtimestamp(fact.at)
    if by == "day":
        return [moment.date().isoformat()]
    if by == "hour":
        return [moment.hour]
    raise ValueError(f"cannot group by {by!r}; choose one of {', '.join(GROUPINGS)}")


def build_report(
    facts: list[Fact],
    period: Period,
    now: float,
    *,
    by: str | None = None,
    tz: tzinfo | None = None,
    surveys_sent: dict[str, int] | None = None,
    totals: dict | None = None,
) -> dict:
    """The report object: the totals, `from`/`to` (epoch seconds or null), and with `by` a
    `rows` list of the same objects each with its `key`, sorted by key. `totals`: the
    summary already folded (`summarise_figures`), when `facts` are not all there is."""
    report = dict(totals) if totals is not None else summarise(facts, period, now)
    sent = surveys_sent or {}
    report["csat_surveys_sent"] = sent.get("csat", 0)
    report["csat_response_rate"] = _round(report["csat_responses"] / sent["csat"]) if sent.get("csat") else None
    report["from"] = period.start
    report["to"] = period.end
    if by is not None:
        groups: dict = defaultdict(list)
        for fact in facts:
            for key in group_keys(fact, by, tz):
                groups[key].append(fact)
        rows = []
        for key in sorted(groups, key=lambda k: (str(type(k)), k)):
            row = {"key": key, **summarise(groups[key], period, now)}
            if row["conversations"] or any(v for k, v in row.items() if k not in ("key", "unattended")):
                rows.append(row)
            elif row["unattended"]:
                rows.append(row)
        report["rows"] = rows
    return report


def conversations_behind(
    facts: list[Fact], period: Period, figure: str, *, by: str | None = None, key=None, tz: tzinfo | None = None
) -> list[int]:
    """Ids of the conversations a figure (of one group) was computed from: what a click on a
    figure in the window lists."""
    ids = {
        fact.conversation_id
        for fact in facts
        if fact.figure == figure
        and (figure == f.UNATTENDED or period.holds(fact.at))
        and (by is None or key in group_keys(fact, by, tz))
    }
    return sorted(ids)


def facts_for(histories, now: float) -> list[Fact]:
    """Every fact of these conversation histories as of `now`."""
    out: list[Fact] = []
    for h in histories:
        out.extend(conversation_facts(h, now))
    return out


# --- output -----------------------------------------------------------------------------

#: The `table` format's columns: (contract field, title). Titles are marked for the catalog in
#: the context "report" and drawn through `column_title()` (CSV and JSON keep the fields).
TABLE_FIELDS = (
    ("conversations", Np_("report", "opened")),
    ("resolved", Np_("report", "resolved")),
    ("frt_median_s", Np_("report", "FRT median")),
    ("frt_p90_s", Np_("report", "FRT p90")),
    ("nrt_median_s", Np_("report", "NRT median")),
    ("resolution_median_s", Np_("report", "resolution median")),
    ("resolution_p90_s", Np_("report", "resolution p90")),
    ("unattended", Np_("report", "unattended")),
    ("csat", Np_("report", "CSAT")),
    ("csat_responses", Np_("report", "CSAT answers")),
    ("nps", Np_("report", "NPS")),
    ("bot_contained", Np_("report", "bot contained")),
    ("bot_handoffs", Np_("report", "bot handoffs")),
)
#: The last row of a report table, the totals of the period.
TOTAL = Np_("report", "total")


def column_title(title: str) -> str:
    """A report column's (or the total row's) title, marked with `Np_("report", ...)`, in the
    current language."""
    return pgettext("report", title)


def human_duration(seconds: float | None) -> str:
    """12s, 4m 05s, 3h 20m, 2d 4h; '-' for nothing to measure. In the current language
    (Russian 12 с, 4 мин 05 с, 3 ч 20 мин, 2 дн 4 ч); `seconds` in seconds."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return _("{s}s").format(s=s)
    if s < 3600:
        return _("{m}m {s:02d}s").format(m=s // 60, s=s % 60)
    if s < 86400:
        return _("{h}h {m:02d}m").format(h=s // 3600, m=s % 3600 // 60)
    return _("{d}d {h}h").format(d=s // 86400, h=s % 86400 // 3600)


def cell(field: str, value) -> str:
    """One figure as a table shows it, for the current language: English as it always was
    (12345, 46%, +12), Russian with CLDR's digit groups, decimal comma and percent (12 345,
    4,5, 46 %)."""
    if value is None:
        return "-"
    if field.endswith("_s"):
        return human_duration(value)
    if field == "csat":
        return local_number(value, f"{value * 100:.0f}%", percent=True)
    if field == "nps":
        return local_number(value, f"{value:+.0f}", "+#,##0;-#,##0")
    return local_number(value, str(value)) if isinstance(value, int | float) else str(value)


def render(report: dict, fmt: str) -> str:
    """The report as `table` (for people), `csv` (one line per group, or the totals) or
    `json` (the contract: one object on the last line)."""
    if fmt == "json":
        return json.dumps(report, ensure_ascii=False, sort_keys=False)
    rows = report.get("rows")
    fields = [name for name, _title in TABLE_FIELDS]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        keys = [k for k in report if k not in ("rows", "from", "to")]
        writer.writerow(["key", *keys])
        for row in rows if rows is not None else [{"key": "total", **report}]:
            writer.writerow([spreadsheet_safe(row["key"]), *["" if row.get(k) is None else row.get(k) for k in keys]])
        return buffer.getvalue().rstrip("\n")
    header = ["", *[column_title(title) for _name, title in TABLE_FIELDS]]
    lines = [[str(row["key"]), *[cell(name, row.get(name)) for name in fields]] for row in rows or []]
    lines.append([column_title(TOTAL), *[cell(name, report.get(name)) for name in fields]])
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    for r in lines:
        out.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


CONVERSATION_COLUMNS = (
    "id",
    "customer",
    "channels",
    "opened",
    "first_response",
    "resolved",
    "assignee",
    "frt_s",
    "nrt_mean_s",
    "resolution_s",
    "full_resolution_s",
    "waiting_on_customer_s",
    "csat",
    "nps",
)


def conversation_rows(histories, facts: list[Fact], period: Period, customer_names: dict[int, str]) -> list[dict]:
    """One row per conversation opened in the period: id, customer, channels used, opened,
    first response and resolved (ISO UTC), assignee, and its figures (seconds)."""
    by_conversation: dict[int, list[Fact]] = defaultdict(list)
    for fact in facts:
        by_conversation[fact.conversation_id].append(fact)

    def iso(at: float | None) -> str:
        return "" if at is None else datetime.utcfromtimestamp(at).strftime("%Y-%m-%dT%H:%M:%SZ")

    rows = []
    for h in histories:
        if not period.holds(h.opened_at):
            continue
        own = by_conversation[h.id]
        first = {x.figure: x for x in sorted(own, key=lambda x: x.at)}
        nrts = [x.value for x in own if x.figure == f.NRT]
        frt = next((x for x in own if x.figure == f.FRT), None)
        channels = []
        for m in h.messages:
            if m[4] and m[4] not in channels:
                channels.append(m[4])
        rows.append(
            {
                "id": h.id,
                "customer": customer_names.get(h.customer_id, str(h.customer_id)),
                "channels": " ".join(channels),
                "opened": iso(h.opened_at),
                "first_response": iso(frt.at) if frt else "",
                "resolved": iso(first[f.RESOLVED].at) if f.RESOLVED in first else "",
                "assignee": h.assignee or "",
                "frt_s": _round(frt.value) if frt else None,
                "nrt_mean_s": _round(statistics.fmean(nrts)) if nrts else None,
                "resolution_s": _round(first[f.RESOLUTION].value) if f.RESOLUTION in first else None,
                "full_resolution_s": _round(first[f.FULL_RESOLUTION].value) if f.FULL_RESOLUTION in first else None,
                "waiting_on_customer_s": _round(first[f.WAITING_ON_CUSTOMER].value) if f.WAITING_ON_CUSTOMER in first else None,
                "csat": next((x.value for x in own if x.figure == f.CSAT), None),
                "nps": next((x.value for x in own if x.figure == f.NPS), None),
            }
        )
    return rows


_NUMBER_LIKE = re.compile(r"[+-]?[\d\s().-]*\d[\d\s().-]*")


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet shows as text, never runs as a formula (OWASP "CSV injection"):
    text starting with `=`, `@`, a tab or a carriage return, or with `+`/`-` when it is not a
    number or a phone number (`+7 916 642-38-68` stays as it is), gets a leading apostrophe.
    Other values are returned unchanged."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in "=@\t\r" or (value[0] in "+-" and not _NUMBER_LIKE.fullmatch(value)):
        return "'" + value
    return value


def render_conversations(rows: list[dict], fmt: str) -> str:
    """Conversation rows as CSV (for spreadsheets), JSON lines, or a plain table."""
    if fmt == "json":
        return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", delimiter="," if fmt == "csv" else "\t")
    writer.writerow(CONVERSATION_COLUMNS)
    for r in rows:
        writer.writerow(["" if r[c] is None else spreadsheet_safe(r[c]) for c in CONVERSATION_COLUMNS])
    return buffer.getvalue().rstrip("\n")


def now() -> float:
    """The clock reports use (one place for tests to freeze)."""
    return time.time()
