"""The live wallboard's figures (METRICS.md): open now, unattended, unassigned, longest wait,
operators with their open conversations, conversations with the bot, the day's volume by
channel. Read in one snapshot through indexes kept for it (store/analytics.py); the window
refreshes it when the events log moves.

Operators' status and load come from routing (`store.operator_states()`, weighed by the
configured channel weights and capacities, as routing itself weighs them); conversations with
the bot are those it is answering now (state `bot`, not resolved or in Spam).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, tzinfo


@dataclass(frozen=True, slots=True)
class OperatorLine:
    """One operator on the wallboard: login, status (online/away/offline; None: not known to
    routing), active conversations assigned, and load 0-1 (capacity units taken ÷ capacity)."""

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


def day_start(now: float, tz: tzinfo | None = None) -> float:
    """Local midnight that began the day of `now`."""
    moment = datetime.fromtimestamp(now, tz) if tz else datetime.fromtimestamp(now)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


async def wallboard(store, now: float, tz: tzinfo | None = None, settings=None) -> Wallboard:
    """The wallboard as of `now` (conversations a migration queued get their facts first);
    `settings` (a `Settings`, None: defaults) give routing's capacities and channel weights."""
    from omniconsole.routing.engine import Router
    from omniconsole.routing.service import settings_of

    await store.backfill_facts()
    rows = await store.wallboard_rows(day_start(now, tz))
    router = Router(settings_of(settings))
    states = {s.login: s for s in await store.operator_states(list(router.settings.load_statuses()))}
    operators = []
    for op in await store.operators():
        state = states.get(op.login)
        capacity = router.capacity(state) if state is not None else 0
        load = router.load(state) / capacity if state is not None and capacity else None
        status = state.status if state is not None else None
        operators.append(OperatorLine(op.login, status, rows.per_operator.get(op.login, 0), load))
    return Wallboard(
        at=now,
        open=rows.active,
        snoozed=rows.snoozed,
        unattended=rows.unattended,
        unassigned=rows.unassigned,
        longest_wait_s=None if rows.oldest_wait is None else max(0.0, now - rows.oldest_wait),
        with_bot=rows.with_bot,
        operators=operators,
        volume_by_channel=dict(sorted(Counter(rows.opened_today).items())),
    )
