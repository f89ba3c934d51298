"""The live wallboard's figures (METRICS.md): open now, unattended, unassigned, longest wait,
operators with their open conversations, conversations with the bot, the day's volume by
channel. Read in one snapshot through indexes kept for it (store/analytics.py); the window
refreshes it when the events log moves.

Where a part is not built yet the figure is None, and one small function is the place to
plug it in: `operator_status` (routing's statuses and load), `with_bot` (the bot).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, tzinfo


@dataclass(frozen=True, slots=True)
class OperatorLine:
    """One operator on the wallboard: login, status (None until routing keeps statuses),
    active conversations assigned, and load 0-1 (None until capacities exist)."""

    login: str
    status: str | None
    active: int
    load: float | None


@dataclass(frozen=True, slots=True)
class Wallboard:
    """The figures at `at` (epoch seconds); `longest_wait_s` in seconds or None."""

    at: float
    open: int
    snoozed: int
    unattended: int
    unassigned: int
    longest_wait_s: float | None
    with_bot: int | None
    operators: list[OperatorLine] = field(default_factory=list)
    volume_by_channel: dict[str, int] = field(default_factory=dict)


def operator_status(login: str) -> tuple[str | None, float | None]:
    """(status, load) of an operator: the one place routing's presence and capacity plug in."""
    return None, None


def with_bot(rows) -> int | None:
    """Conversations the bot holds now: the one place the bot's figure plugs in."""
    return None


def day_start(now: float, tz: tzinfo | None = None) -> float:
    """Local midnight that began the day of `now`."""
    moment = datetime.fromtimestamp(now, tz) if tz else datetime.fromtimestamp(now)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


async def wallboard(store, now: float, tz: tzinfo | None = None) -> Wallboard:
    """The wallboard as of `now` (conversations a migration queued get their facts first)."""
    await store.backfill_facts()
    rows = await store.wallboard_rows(day_start(now, tz))
    operators = []
    for op in await store.operators():
        status, load = operator_status(op.login)
        operators.append(OperatorLine(op.login, status, rows.per_operator.get(op.login, 0), load))
    return Wallboard(
        at=now,
        open=rows.active,
        snoozed=rows.snoozed,
        unattended=rows.unattended,
        unassigned=rows.unassigned,
        longest_wait_s=None if rows.oldest_wait is None else max(0.0, now - rows.oldest_wait),
        with_bot=with_bot(rows),
        operators=operators,
        volume_by_channel=dict(sorted(Counter(rows.opened_today).items())),
    )
