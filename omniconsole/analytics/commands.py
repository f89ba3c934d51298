"""`omniconsole report`: the figures of a period in total or grouped (table, CSV or the JSON
contract of README "Reports"), and `report conversations`: one row per conversation."""

from __future__ import annotations

import argparse
from datetime import date

from omniconsole.analytics import report as rp
from omniconsole.errors import UsageError
from omniconsole.i18n import N_, _


def add_parser(sub: argparse._SubParsersAction, common) -> None:
    """The `report` sub-command (`common` adds --config/--db/-v)."""
    p = sub.add_parser("report", help=_("response, resolution and satisfaction figures of a period"))
    common(p)
    p.add_argument(
        "what",
        nargs="?",
        choices=("summary", "conversations", "journeys"),
        default="summary",
        help=_(
            "summary (default), conversations: one row per conversation opened in the period, or journeys:"
            " customers' paths across channels and which channel resolves each topic best"
        ),
    )
    p.add_argument(
        "--from",
        dest="date_from",
        metavar="DATE",
        default=None,
        help=_("first day, inclusive (YYYY-MM-DD, local midnight; default: the beginning)"),
    )
    p.add_argument(
        "--to",
        dest="date_to",
        metavar="DATE",
        default=None,
        help=_("day after the last, exclusive (YYYY-MM-DD, local midnight; default: now)"),
    )
    p.add_argument("--by", choices=rp.GROUPINGS, default=None, help=_("one row per channel, operator, queue, label, day or hour"))
    p.add_argument("--format", choices=rp.FORMATS, default="table", help=_("table (default), csv or json"))


def parse_day(text: str | None, option: str) -> date | None:
    """A YYYY-MM-DD date, or a UsageError saying what was expected."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(
            N_("{option} {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-03-01"), option=option, text=text
        ) from None


async def make_report(store, period: rp.Period, *, by: str | None = None, now: float | None = None, tz=None) -> dict:
    """The report object of a period (see report.build_report), folded from the stored
    `conversation_facts` rows: the totals through the index without building a `Fact` per row,
    the groups of `by` from the period's facts."""
    now = rp.now() if now is None else now
    if by is None:
        figures, sent = await store.report_figures(period.start, period.end)
        totals = rp.summarise_figures(figures.counts, figures.spreads, period, now)
        return rp.build_report([], period, now, tz=tz, surveys_sent=sent, totals=totals)
    facts, sent = await store.report_facts(period.start, period.end, now)
    return rp.build_report(facts, period, now, by=by, tz=tz, surveys_sent=sent)


async def conversations_report(store, period: rp.Period, *, now: float | None = None) -> list[dict]:
    """One row per conversation opened in the period (report.conversation_rows)."""
    now = rp.now() if now is None else now
    histories, _, names = await store.report_histories(period.start, period.end)
    return rp.conversation_rows(histories, rp.facts_for(histories, now), period, names)


def run(args: argparse.Namespace, settings) -> int:
    """Print the report; exit code 0."""
    from omniconsole.store import Store

    start, end = parse_day(args.date_from, "--from"), parse_day(args.date_to, "--to")
    if start and end and end <= start:
        raise UsageError(N_("--to {end} must be after --from {start} (--to is exclusive)"), end=str(end), start=str(start))
    period = rp.period_of(start, end)

    async def main() -> str:
        store = await Store.open(settings.database, create=False)
        try:
            if args.what == "journeys":
                from omniconsole.analytics import journey_service

                report = await journey_service.journeys_report(store, settings, start=period.start, end=period.end)
                return journey_service.render(report, args.format)
            if args.what == "conversations":
                return rp.render_conversations(await conversations_report(store, period), args.format)
            return rp.render(await make_report(store, period, by=args.by), args.format)
        finally:
            await store.close()

    import asyncio

    print(asyncio.run(main()))
    return 0
