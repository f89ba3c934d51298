"""When a snoozed conversation comes back: the choices an operator is offered and the date they
type, read as local time (pure functions of the clock, epoch seconds, tested without a window);
and the core's handler of the schedule row a snooze puts (`snooze.end`, store/actions.py), which
reopens the conversation at its time.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from omniconsole.errors import OmniError
from omniconsole.i18n import N_
from omniconsole.store import actions
from omniconsole.store.schedule import ScheduledRow

#: The hour (local time) "tomorrow morning" means.
MORNING_HOUR = 9


class SnoozeError(OmniError, ValueError):
    """A typed snooze time that cannot be used; the message says why in plain words (an
    OmniError so the window shows it translated; still a ValueError for older callers)."""


def in_an_hour(now: float) -> float:
    """One hour from `now` (epoch seconds)."""
    return now + 3600


def tomorrow_morning(now: float) -> float:
    """09:00 local time on the day after `now` (epoch seconds in, epoch seconds out)."""
    local = datetime.fromtimestamp(now) + timedelta(days=1)
    return local.replace(hour=MORNING_HOUR, minute=0, second=0, microsecond=0).timestamp()


def parse_until(typed: str, now: float) -> float:
    """A typed `YYYY-MM-DD HH:MM` or `YYYY-MM-DD` (midnight), local time, as epoch seconds.

    Raises SnoozeError when it is not such a date ("Write the date as YYYY-MM-DD HH:MM") or when
    it is not after `now` ("That time has passed")."""
    text = " ".join(typed.split())
    try:
        until = datetime.strptime(text, "%Y-%m-%d %H:%M" if " " in text else "%Y-%m-%d").timestamp()
    except ValueError:
        raise SnoozeError(N_("Write the date as YYYY-MM-DD HH:MM")) from None
    if until <= now:
        raise SnoozeError(N_("That time has passed"))
    return until


def snooze_ended(conn: sqlite3.Connection, row: ScheduledRow, now: float) -> bool:
    """The scheduler's handler of a `snooze.end` row: reopen its conversation if it still sleeps
    (inside the transaction that removed the row, so a restart wakes it once)."""
    return row.conversation_id is not None and actions.wake_one(conn, row.conversation_id, now)


#: What the core's one scheduler handles for snoozes (Hub adds it to every core).
HANDLERS = {actions.SNOOZE_END: snooze_ended}
