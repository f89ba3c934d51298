"""Business calendars: when the team works, and how much working time lies between two moments.

Pure on purpose: this module imports only the standard library and the `holidays` package (no
store, no core), so everything may use it — routing, SLA clocks, the bot, reports, and the
connectors (the web chat's offline mode) without breaking `connectors -> models` — it sits beside
`models.py` for that reason.

A calendar is:
* a time zone (IANA name, e.g. "Europe/Moscow"; DST is honoured: a working hour that the clock
  skips is not counted, one it repeats is counted twice, as the wall clock says);
* weekly open intervals in the web chat's office-hours syntax: `"Mon-Fri 09:00-18:00; Sat
  10:00-14:00"`, several per weekday (`"Mon-Fri 09:00-13:00, 14:00-18:00"` is not allowed — write
  each span with its day: `"Mon-Fri 09:00-13:00; Mon-Fri 14:00-18:00"`); a span that ends before
  it starts runs past midnight (`"Fri 22:00-02:00"`) and belongs to the day it starts on; `24:00`
  is the end of the day; no spans means open around the clock;
* closed dates (holidays, one-off closures) and a country's official holidays (`country = "RU"`,
  from the `holidays` package); a closed date removes the spans that start on it;
* one-off working days (Russia's production calendar moves working days onto Saturdays, which
  `holidays` does not model): `"2026-11-07"` works as a Monday, `"2026-11-07 as Fri"` as a
  Friday; a working day wins over a closure of the same date.

Business time is computed from a sorted table of open intervals in epoch seconds with running
totals, built per calendar year on first use; after that `business_seconds`, `add_business`,
`is_open` and `next_open` are bisections (microseconds, whatever the distance).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_WORKDAY = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\s+as\s+([a-z]{3}))?$")
_DAY_MINUTES = 24 * 60


class CalendarError(ValueError):
    """A calendar setting that cannot be read; the message says which and how to write it."""


def parse_spans(text: str) -> tuple[tuple[int, int, int], ...]:
    """Weekly spans `(weekday 0=Mon, start minute, end minute)` from `"Mon-Fri 09:00-18:00; Sat
    10:00-14:00"` (`;` or `,` between spans, day names case-insensitive). An end before the start
    runs past midnight. CalendarError in words when malformed."""
    spans: list[tuple[int, int, int]] = []
    for part in filter(None, (p.strip() for p in re.split(r"[;,]", (text or "").lower()))):
        match = _SPAN.match(part)
        if not match or match[1] not in DAYS or (match[2] and match[2] not in DAYS):
            raise CalendarError(f'hours: cannot read {part!r}; write spans such as "Mon-Fri 09:00-18:00; Sat 10:00-14:00"')
        first = DAYS.index(match[1])
        last = DAYS.index(match[2]) if match[2] else first
        start, end = int(match[3]) * 60 + int(match[4]), int(match[5]) * 60 + int(match[6])
        if start > _DAY_MINUTES or end > _DAY_MINUTES or int(match[4]) > 59 or int(match[6]) > 59 or start == end:
            raise CalendarError(f"hours: {part!r} is not a time span within a day")
        if start == _DAY_MINUTES:
            raise CalendarError(f"hours: {part!r} starts at 24:00; start it at 00:00 of the next day")
        day = first
        while True:
            spans.append((day, start, end))
            if day == last:
                break
            day = (day + 1) % 7
    return tuple(spans)


def zone_of(name: str) -> ZoneInfo:
    """The IANA time zone `name` ("UTC" when empty); CalendarError in words when unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(f'timezone {name!r} is not a known time zone (write one such as "Europe/Moscow")') from None


def _date(value: Any, where: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise CalendarError(f"{where}: {value!r} is not a date (write YYYY-MM-DD)") from None


def _workday(value: Any, where: str) -> tuple[date, int]:
    if isinstance(value, date):
        return (value if not isinstance(value, datetime) else value.date()), 0
    match = _WORKDAY.match(str(value).strip().lower())
    if not match or (match[2] and match[2] not in DAYS):
        raise CalendarError(f'{where}: cannot read {value!r}; write "2026-11-07" or "2026-11-07 as Fri"')
    return _date(match[1], where), DAYS.index(match[2]) if match[2] else 0


def read_dates_file(path: Path) -> list[str]:
    """Lines of a dates file (`workdays_file`, `closed_file`): one date per line, `#` starts a
    comment, blank lines skipped. CalendarError when the file cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CalendarError(f"cannot read the dates file {path}: {exc.strerror or exc}") from None
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


@dataclass(eq=False)
class Calendar:
    """A business calendar (see the module docstring). Times in and out are epoch seconds
    (floats) unless a method says otherwise; durations are seconds."""

    name: str = "default"
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    spans: tuple[tuple[int, int, int], ...] = ()
    closed: frozenset[date] = frozenset()
    workdays: Mapping[date, int] = field(default_factory=dict)  # date -> weekday whose spans it uses
    country: str = ""
    subdivision: str = ""
    text: str = ""
    _years: set[int] = field(default_factory=set, repr=False)
    _starts: list[float] = field(default_factory=list, repr=False)
    _ends: list[float] = field(default_factory=list, repr=False)
    _before: list[float] = field(default_factory=list, repr=False)  # business seconds before each interval

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def parse(
        cls,
        hours: str = "",
        timezone: str = "UTC",
        *,
        name: str = "default",
        closed: Iterable[Any] = (),
        workdays: Iterable[Any] = (),
        country: str = "",
        subdivision: str = "",
    ) -> Calendar:
        """A calendar from its settings; CalendarError in words when one is malformed (an unknown
        country included)."""
        zone = zone_of(timezone)
        spans = parse_spans(hours)
        closed_dates = frozenset(_date(d, f"calendar {name}: closed") for d in closed)
        moved = dict(_workday(d, f"calendar {name}: workdays") for d in workdays)
        if country:
            try:
                import holidays  # noqa: F401  (checked here so a wrong code fails at load)

                holidays.country_holidays(country.upper(), subdiv=subdivision or None, years=[2000])
            except Exception as exc:  # NotImplementedError for unknown codes, ValueError for subdivisions
                raise CalendarError(
                    f"calendar {name}: country {country!r} has no official holidays known to the holidays package ({exc})"
                ) from None
        return cls(name, zone, spans, closed_dates, moved, country.upper(), subdivision, hours.strip())

    @classmethod
    def from_settings(cls, table: Mapping[str, Any], base: Path | None = None) -> Calendar:
        """A calendar from one `[[calendars]]` table: `name`, `timezone`, `hours`, `closed` (list of
        dates), `closed_file`, `country`, `subdivision`, `workdays` (list), `workdays_file`. File
        paths are relative to `base` (the config's directory)."""
        name = str(table.get("name") or "default")
        known = {"name", "timezone", "hours", "closed", "closed_file", "country", "subdivision", "workdays", "workdays_file"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise CalendarError(f"calendar {name}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        closed = list(table.get("closed") or [])
        workdays = list(table.get("workdays") or [])
        for key, into in (("closed_file", closed), ("workdays_file", workdays)):
            if table.get(key):
                path = Path(str(table[key])).expanduser()
                into.extend(read_dates_file(path if path.is_absolute() or base is None else base / path))
        return cls.parse(
            str(table.get("hours") or ""),
            str(table.get("timezone") or "UTC"),
            name=name,
            closed=closed,
            workdays=workdays,
            country=str(table.get("country") or ""),
            subdivision=str(table.get("subdivision") or ""),
        )

    # ---- the interval table ---------------------------------------------------------------------

    def _working_spans(self, day: date, official: Any) -> list[tuple[int, int]]:
        if day in self.workdays:
            weekday = self.workdays[day]
        elif day in self.closed or (official is not None and day in official):
            return []
        else:
            weekday = day.weekday()
        if not self.spans:
            return [(0, _DAY_MINUTES)]
        return [(start, end) for d, start, end in self.spans if d == weekday]

    def _local(self, day: date, minute: int) -> float:
        moment = datetime.combine(day, dtime(0), tzinfo=self.zone) + timedelta(minutes=minute)
        # Wall-clock arithmetic: rebuild the local time so DST applies to the target moment.
        wall = datetime(moment.year, moment.month, moment.day, moment.hour, moment.minute, tzinfo=self.zone)
        return wall.timestamp()

    def _ensure(self, lo: float, hi: float) -> None:
        first = datetime.fromtimestamp(lo, UTC).year - 1
        last = datetime.fromtimestamp(hi, UTC).year + 1
        wanted = set(range(first, last + 1))
        if wanted <= self._years:
            return
        years = sorted(self._years | wanted)
        years = list(range(years[0], years[-1] + 1))
        official = None
        if self.country:
            import holidays

            official = holidays.country_holidays(self.country, subdiv=self.subdivision or None, years=years)
        intervals: list[tuple[float, float]] = []
        day = date(years[0], 1, 1) - timedelta(days=1)
        end_day = date(years[-1], 12, 31)
        while day <= end_day:
            for start, end in self._working_spans(day, official):
                until = end if end > start else end + _DAY_MINUTES
                intervals.append((self._local(day, start), self._local(day, until)))
            day += timedelta(days=1)
        intervals.sort()
        merged: list[list[float]] = []
        for start, end in intervals:
            if end <= start:
                continue
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self._starts = [m[0] for m in merged]
        self._ends = [m[1] for m in merged]
        total = 0.0
        self._before = []
        for start, end in merged:
            self._before.append(total)
            total += end - start
        self._years = set(years)

    def _cumulative(self, t: float) -> float:
        """Business seconds from the start of the table to `t`."""
        i = bisect.bisect_right(self._starts, t) - 1
        if i < 0:
            return 0.0
        return self._before[i] + min(t, self._ends[i]) - self._starts[i]

    # ---- questions ------------------------------------------------------------------------------

    def business_seconds(self, start: float, end: float) -> float:
        """Working seconds between two moments (epoch seconds); negative when `end` < `start`."""
        if end < start:
            return -self.business_seconds(end, start)
        self._ensure(start, end)
        return self._cumulative(end) - self._cumulative(start)

    def add_business(self, start: float, seconds: float) -> float:
        """The moment (epoch seconds) when `seconds` of working time have passed since `start`:
        the due time of a business-time timer. `seconds` <= 0 gives `start`."""
        if seconds <= 0:
            return start
        hi = start + max(seconds * 4, 14 * 86400)
        while True:
            self._ensure(start, hi)
            target = self._cumulative(start) + seconds
            if self._before and target <= self._before[-1] + self._ends[-1] - self._starts[-1]:
                i = bisect.bisect_left(self._before, target) - 1  # the last interval begun before the target
                return self._starts[i] + (target - self._before[i])
            if not self._starts:
                raise CalendarError(f"calendar {self.name} has no working time at all")
            hi += 366 * 86400
            if hi - start > 50 * 366 * 86400:
                raise CalendarError(f"calendar {self.name} has no working time within 50 years of the start")

    def is_open(self, t: float) -> bool:
        """Whether `t` (epoch seconds) falls in working time."""
        self._ensure(t, t)
        i = bisect.bisect_right(self._starts, t) - 1
        return i >= 0 and t < self._ends[i]

    def open_at(self, moment: datetime) -> bool:
        """Whether an aware datetime falls in working time (the web chat's question)."""
        return self.is_open(moment.timestamp())

    def next_open(self, t: float) -> float | None:
        """`t` when open, else the next opening (epoch seconds); None when nothing opens within
        two years."""
        self._ensure(t, t + 2 * 366 * 86400)
        i = bisect.bisect_right(self._starts, t) - 1
        if i >= 0 and t < self._ends[i]:
            return t
        return self._starts[i + 1] if i + 1 < len(self._starts) else None

    def describe(self) -> str:
        """One line for status texts: `Mon-Fri 09:00-18:00 (Europe/Moscow)` or `always open`."""
        template, params = self.describe_parts()
        return template.format(**params)

    def describe_parts(self) -> tuple[str, dict[str, str]]:
        """`describe()` as an English template (marked for the catalog, issue #24) and its
        values, for a line shown in the admin's language (`omniconsole doctor`); `hours` is
        the config's own text and is not translated."""
        from omniconsole.i18n import N_  # noqa: PLC0415 - stdlib only, like this module

        if self.country:
            template = (
                N_("{hours} ({zone}, holidays of {country})") if self.text else N_("always open ({zone}, holidays of {country})")
            )
            return template, {"hours": self.text, "zone": self.zone.key, "country": self.country}
        if self.text:
            return N_("{hours} ({zone})"), {"hours": self.text, "zone": self.zone.key}
        return N_("always open"), {}


def calendars_from_settings(tables: Iterable[Mapping[str, Any]], base: Path | None = None) -> dict[str, Calendar]:
    """`[[calendars]]` tables by name, with a `default` (open around the clock in UTC) unless the
    config defines one. CalendarError on a malformed table or a repeated name."""
    out: dict[str, Calendar] = {}
    for table in tables:
        if not isinstance(table, Mapping):
            raise CalendarError("calendars must be written as [[calendars]] tables")
        cal = Calendar.from_settings(table, base)
        if cal.name in out:
            raise CalendarError(f"calendar {cal.name} is defined twice")
        out[cal.name] = cal
    out.setdefault("default", Calendar())
    return out
