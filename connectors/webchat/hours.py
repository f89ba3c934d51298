"""Office hours of the web chat: the shared business calendar (`omniconsole.calendar`, pure, so
a connector may import it) built from the channel's settings. Outside working time the widget is
offline and offers to answer by e-mail.

Settings read: `hours` ("Mon-Fri 09:00-18:00; Sat 10:00-14:00"), `timezone`, and optionally
`country` (official holidays), `closed` (dates) and `workdays` (one-off working days), with
the meanings of a `[[calendars]]` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniconsole.calendar import Calendar

#: The web chat's office hours are a business calendar (kept as a name for existing callers).
OfficeHours = Calendar


def office_hours(settings: Mapping[str, Any]) -> Calendar:
    """The calendar of a web chat channel's settings; ValueError (CalendarError) in words when
    one is malformed."""
    return Calendar.parse(
        str(settings.get("hours") or ""),
        str(settings.get("timezone") or "UTC"),
        name="web chat",
        closed=list(settings.get("closed") or []),
        workdays=list(settings.get("workdays") or []),
        country=str(settings.get("country") or ""),
    )
