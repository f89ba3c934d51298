"""Business calendars (issue #18): business time between two moments against hand-computed
cases — overnight spans, weekends, holidays (configured and a country's official ones), one-off
working days, DST in a zone that has it — plus the next opening and timers in business time."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from omniconsole.calendar import Calendar, CalendarError, calendars_from_settings

HOUR = 3600.0


def at(text: str, zone: str = "UTC") -> float:
    """Epoch seconds of a local wall-clock time `YYYY-MM-DD HH:MM` in `zone`."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


WEEKDAYS = Calendar.parse("Mon-Fri 09:00-18:00")


def test_weekend_is_skipped() -> None:
    # Fri 27 Nov 2026 17:00 -> Mon 30 Nov 10:00: 1 h on Friday + 1 h on Monday.
    assert WEEKDAYS.business_seconds(at("2026-11-27 17:00"), at("2026-11-30 10:00")) == 2 * HOUR
    # A whole working week: 5 x 9 h.
    assert WEEKDAYS.business_seconds(at("2026-11-30 00:00"), at("2026-12-07 00:00")) == 45 * HOUR
    # Both ends outside working time, on the same weekend: nothing.
    assert WEEKDAYS.business_seconds(at("2026-11-28 08:00"), at("2026-11-29 20:00")) == 0
    # Reversed order gives the negative.
    assert WEEKDAYS.business_seconds(at("2026-11-30 10:00"), at("2026-11-27 17:00")) == -2 * HOUR


def test_several_intervals_a_day_and_a_year() -> None:
    cal = Calendar.parse("Mon-Fri 09:00-13:00; Mon-Fri 14:00-18:00")
    assert cal.business_seconds(at("2026-11-30 12:00"), at("2026-11-30 15:00")) == 2 * HOUR
    assert not cal.is_open(at("2026-11-30 13:30"))
    # 2026: 261 weekdays x 8 h.
    assert cal.business_seconds(at("2026-01-01 00:00"), at("2027-01-01 00:00")) == 261 * 8 * HOUR


def test_overnight_span_belongs_to_the_day_it_starts() -> None:
    cal = Calendar.parse("Fri 22:00-02:00")
    # Fri 27 Nov 23:00 -> Sat 28 Nov 03:00: 23:00-02:00 = 3 h.
    assert cal.business_seconds(at("2026-11-27 23:00"), at("2026-11-28 03:00")) == 3 * HOUR
    assert cal.is_open(at("2026-11-28 01:59")) and not cal.is_open(at("2026-11-28 02:00"))
    # Closing the Friday closes its night too.
    closed = Calendar.parse("Fri 22:00-02:00", closed=["2026-11-27"])
    assert closed.business_seconds(at("2026-11-27 12:00"), at("2026-11-28 12:00")) == 0


def test_configured_closures_and_one_off_working_days() -> None:
    cal = Calendar.parse("Mon-Fri 09:00-18:00", closed=["2026-12-01"], workdays=["2026-11-28", "2026-12-05 as Fri"])
    # Sat 28 Nov works as a Monday (9 h); Tue 1 Dec is closed.
    assert cal.business_seconds(at("2026-11-28 00:00"), at("2026-11-29 00:00")) == 9 * HOUR
    assert cal.business_seconds(at("2026-12-01 00:00"), at("2026-12-02 00:00")) == 0
    assert cal.is_open(at("2026-12-05 09:30"))


def test_a_countrys_official_holidays() -> None:
    cal = Calendar.parse("Mon-Fri 09:00-18:00", "Europe/Moscow", country="RU")
    # Russia's New Year holidays 1-6 and 8 January, Christmas on the 7th: Mon 5 - Thu 8 Jan 2026 closed.
    assert cal.business_seconds(at("2026-01-05 00:00", "Europe/Moscow"), at("2026-01-09 00:00", "Europe/Moscow")) == 0
    # Tue 30 Dec 2025 17:00 -> Mon 12 Jan 2026 10:00: 31 Dec and 9 Jan are days off moved from
    # weekends (the package models those), 1-8 Jan holidays: one hour each side.
    assert cal.business_seconds(at("2025-12-30 17:00", "Europe/Moscow"), at("2026-01-12 10:00", "Europe/Moscow")) == 2 * HOUR
    # An ordinary week later on is whole.
    assert cal.business_seconds(at("2026-11-30 00:00", "Europe/Moscow"), at("2026-12-05 00:00", "Europe/Moscow")) == 45 * HOUR


def test_dst_in_a_zone_that_has_it() -> None:
    always = Calendar.parse("", "Europe/Berlin")
    # Clocks go forward on Sun 29 Mar 2026: noon to noon is 23 hours; in October, 25.
    assert always.business_seconds(at("2026-03-28 12:00", "Europe/Berlin"), at("2026-03-29 12:00", "Europe/Berlin")) == 23 * HOUR
    assert always.business_seconds(at("2026-10-24 12:00", "Europe/Berlin"), at("2026-10-25 12:00", "Europe/Berlin")) == 25 * HOUR
    night = Calendar.parse("Sun 01:00-04:00", "Europe/Berlin")
    # 01:00-04:00 local on the spring Sunday lasts 2 h of real time, on the autumn one 4 h.
    assert night.business_seconds(at("2026-03-29 00:00", "Europe/Berlin"), at("2026-03-30 00:00", "Europe/Berlin")) == 2 * HOUR
    assert night.business_seconds(at("2026-10-25 00:00", "Europe/Berlin"), at("2026-10-26 00:00", "Europe/Berlin")) == 4 * HOUR


def test_next_opening_and_business_timers() -> None:
    assert WEEKDAYS.next_open(at("2026-11-28 12:00")) == at("2026-11-30 09:00")
    assert WEEKDAYS.next_open(at("2026-11-30 10:00")) == at("2026-11-30 10:00")
    # Two business hours from Friday 17:00 end on Monday 10:00; from Saturday, Monday 11:00.
    assert WEEKDAYS.add_business(at("2026-11-27 17:00"), 2 * HOUR) == at("2026-11-30 10:00")
    assert WEEKDAYS.add_business(at("2026-11-28 12:00"), 2 * HOUR) == at("2026-11-30 11:00")
    # Exactly to the end of the working day: the day's end, not the next morning.
    assert WEEKDAYS.add_business(at("2026-11-30 17:00"), HOUR) == at("2026-11-30 18:00")
    # Far ahead, across a year boundary: 46 weeks of 45 h.
    start = at("2026-11-30 09:00")
    assert WEEKDAYS.business_seconds(start, WEEKDAYS.add_business(start, 46 * 45 * HOUR)) == 46 * 45 * HOUR


def test_open_around_the_clock_without_hours() -> None:
    cal = Calendar()
    assert cal.business_seconds(at("2026-11-28 00:00"), at("2026-11-29 00:00")) == 24 * HOUR
    assert cal.is_open(at("2026-11-28 03:00"))


def test_settings_tables_files_and_errors(tmp_path: Path) -> None:
    (tmp_path / "ru-workdays.txt").write_text("# moved working days\n2026-11-28 as Fri\n\n", encoding="utf-8")
    cals = calendars_from_settings(
        [{"name": "support", "timezone": "Europe/Moscow", "hours": "Mon-Fri 10:00-19:00", "workdays_file": "ru-workdays.txt"}],
        tmp_path,
    )
    assert set(cals) == {"support", "default"}
    assert cals["support"].is_open(at("2026-11-28 12:00", "Europe/Moscow"))
    with pytest.raises(CalendarError, match="cannot read 'mon 9-18'"):
        Calendar.parse("Mon 9-18")
    with pytest.raises(CalendarError, match="not a known time zone"):
        Calendar.parse("", "Mars/Olympus")
    with pytest.raises(CalendarError, match="country 'XX'"):
        Calendar.parse("", country="XX")
    with pytest.raises(CalendarError, match="not a date"):
        Calendar.parse("", closed=["31.12.2026"])
    with pytest.raises(CalendarError, match="unknown setting"):
        calendars_from_settings([{"name": "x", "hour": "Mon 09:00-18:00"}])
    with pytest.raises(CalendarError, match="defined twice"):
        calendars_from_settings([{"name": "x"}, {"name": "x"}])


def test_the_web_chat_is_offline_on_a_countrys_holiday(tmp_path: Path) -> None:
    from connectors.base import ChannelContext
    from connectors.webchat import WebChatConnector

    moscow = ZoneInfo("Europe/Moscow")
    now = [datetime(2026, 1, 5, 10, 0, tzinfo=moscow)]  # a Monday, but Russia's New Year holidays
    settings = {
        "secret": "s" * 32,
        "allowed_origins": ["https://shop.example"],
        "hours": "Mon-Fri 09:00-18:00",
        "timezone": "Europe/Moscow",
        "country": "RU",
        "workdays": ["2026-01-10 as Mon"],
    }
    chat = WebChatConnector(ChannelContext(1, "chat", settings, tmp_path), clock=lambda: now[0])
    assert not chat.online()
    now[0] = datetime(2026, 1, 10, 10, 0, tzinfo=moscow)  # a Saturday made a working day
    assert chat.online()
    now[0] = datetime(2026, 1, 12, 10, 0, tzinfo=moscow)
    assert chat.online()
    import asyncio

    assert asyncio.run(chat.check()).endswith("hours Mon-Fri 09:00-18:00 (Europe/Moscow, holidays of RU), open now")
