"""Office hours of the web chat: when operators answer, as a pure value read from the channel's
`hours` and `timezone` settings. (The routing issue's business calendar will replace it.)"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """When operators answer: weekly spans in one time zone (`Mon-Fri 09:00-18:00; Sat
    10:00-14:00`). No spans means always open. A span that ends before it starts runs past
    midnight (`Fri 22:00-02:00`)."""

    spans: tuple[tuple[int, int, int], ...]  # (weekday, start minute, end minute) within a week
    zone: ZoneInfo
    text: str = ""

    @classmethod
    def parse(cls, text: str, timezone: str = "UTC") -> OfficeHours:
        """Read the `hours` and `timezone` settings; ValueError in words when malformed."""
        try:
            zone = ZoneInfo(timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {timezone!r} is not a known time zone (write one such as \"Europe/Moscow\")") from None
        spans: list[tuple[int, int, int]] = []
        for part in filter(None, (p.strip() for p in re.split(r"[;,]", (text or "").lower()))):
            match = _SPAN.match(part)
            if not match or match[1] not in _DAYS or (match[2] and match[2] not in _DAYS):
                raise ValueError(f"hours: cannot read {part!r}; write spans such as \"Mon-Fri 09:00-18:00; Sat 10:00-14:00\"")
            first = _DAYS.index(match[1])
            last = _DAYS.index(match[2]) if match[2] else first
            start, end = int(match[3]) * 60 + int(match[4]), int(match[5]) * 60 + int(match[6])
            if start > 24 * 60 or end > 24 * 60 or int(match[4]) > 59 or int(match[6]) > 59 or start == end:
                raise ValueError(f"hours: {part!r} is not a time span within a day")
            day = first
            while True:
                spans.append((day, start, end))
                if day == last:
                    break
                day = (day + 1) % 7
        return cls(tuple(spans), zone, text.strip())

    def open_at(self, moment: datetime) -> bool:
        """Whether operators answer at `moment` (an aware datetime)."""
        if not self.spans:
            return True
        local = moment.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        today, yesterday = local.weekday(), (local.weekday() - 1) % 7
        for day, start, end in self.spans:
            if start < end and day == today and start <= minute < end:
                return True
            if start > end and ((day == today and minute >= start) or (day == yesterday and minute < end)):
                return True
        return False

