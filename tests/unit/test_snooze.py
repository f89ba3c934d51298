"""Snooze times (core/snooze.py): the offered choices and a typed date, in local time."""

from __future__ import annotations

import os
import time
from datetime import datetime

import pytest

from omniconsole.core.snooze import SnoozeError, in_an_hour, parse_until, tomorrow_morning


@pytest.fixture(autouse=True)
def moscow(monkeypatch):
    """A zone off UTC, so local time is really what is read."""
    monkeypatch.setenv("TZ", "Europe/Moscow")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def late_evening() -> float:
    """23:30 local time (read after the zone is set)."""
    return datetime(2027, 1, 15, 23, 30).timestamp()


def test_an_hour_is_3600_seconds() -> None:
    assert in_an_hour(late_evening()) == late_evening() + 3600


def test_tomorrow_morning_is_nine_oclock_local_the_next_day() -> None:
    assert datetime.fromtimestamp(tomorrow_morning(late_evening())) == datetime(2027, 1, 16, 9, 0)


def test_a_typed_date_and_time_is_local_time() -> None:
    until = parse_until("2031-05-01 10:30", late_evening())
    assert until == datetime(2031, 5, 1, 10, 30).timestamp()
    assert time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(until)) == "2031-05-01 10:30 MSK"
    assert os.environ["TZ"] == "Europe/Moscow"


def test_a_date_alone_means_its_midnight_and_spaces_are_forgiven() -> None:
    assert parse_until(" 2031-05-01 ", late_evening()) == datetime(2031, 5, 1).timestamp()
    assert parse_until("2031-05-01   10:30", late_evening()) == datetime(2031, 5, 1, 10, 30).timestamp()


@pytest.mark.parametrize("typed", ["tomorrow", "01.05.2031", "2031-13-01", "2031-05-01 25:00", "", "2031-05-01T10:30"])
def test_what_is_not_a_date_is_refused_in_words(typed: str) -> None:
    with pytest.raises(SnoozeError, match="Write the date as YYYY-MM-DD HH:MM"):
        parse_until(typed, late_evening())


def test_a_time_that_has_passed_is_refused() -> None:
    with pytest.raises(SnoozeError, match="That time has passed"):
        parse_until("2027-01-15 23:30", late_evening())
    with pytest.raises(SnoozeError, match="That time has passed"):
        parse_until("2020-01-01", late_evening())
