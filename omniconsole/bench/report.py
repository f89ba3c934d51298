"""`omniconsole bench report`: how long reports and the wallboard take on a big database.

    omniconsole bench ingest --messages 1000000 --keep /tmp/analytics.db
    omniconsole bench report --db /tmp/analytics.db

Budgets (DESIGN.md): a 30-day report p95 <= 200 ms, an all-time report <= 1 s, a wallboard
refresh p95 <= 30 ms. Periods end at the newest message of the database (the bench's traffic
has its own clock), so the 30 days hold what a busy month would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from omniconsole.analytics import report as rp
from omniconsole.analytics.commands import make_report
from omniconsole.analytics.wallboard import wallboard
from omniconsole.bench.query import percentiles
from omniconsole.store import Store, analytics


async def report_benchmark(db_path: Path, rounds: int, all_time_rounds: int) -> dict:
    """p50/p95 (ms) of a 30-day report, an all-time report and a wallboard refresh."""
    store = await Store.open(db_path, create=False)
    try:
        newest = await store.db.run(analytics.newest_activity)
        if newest is None:
            raise SystemExit(f"{db_path} holds no conversations; build one with `omniconsole bench ingest --keep FILE`")
        now = newest + 1
        figures: dict[str, list[float]] = {"report_30d": [], "report_all": [], "wallboard": []}
        last: dict = {}
        for _ in range(rounds):
            started = time.perf_counter()
            last = await make_report(store, rp.Period(now - 30 * 86400, now), now=now)
            figures["report_30d"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await wallboard(store, now)
            figures["wallboard"].append(time.perf_counter() - started)
        for _ in range(all_time_rounds):
            started = time.perf_counter()
            await make_report(store, rp.Period(None, None), now=now)
            figures["report_all"].append(time.perf_counter() - started)
    finally:
        await store.close()
    result: dict = {"rounds": rounds, "conversations_30d": last.get("conversations")}
    for name, samples in figures.items():
        p50, p95 = percentiles(samples)
        result[f"{name}_p50_ms"] = round(p50, 1)
        result[f"{name}_p95_ms"] = round(p95, 1)
    return result


def main(args: argparse.Namespace) -> int:
    db = Path(args.db) if args.db else None
    if db is None or not db.exists():
        raise SystemExit("bench report needs --db FILE: a database kept by `omniconsole bench ingest --keep FILE`")
    figures = asyncio.run(report_benchmark(db, args.rounds, args.all_time_rounds))
    print(f"30-day report  p50 {figures['report_30d_p50_ms']:.1f} ms  p95 {figures['report_30d_p95_ms']:.1f} ms  (budget 200 ms)")
    print(
        f"all-time report p50 {figures['report_all_p50_ms']:.1f} ms  p95 {figures['report_all_p95_ms']:.1f} ms  (budget 1000 ms)"
    )
    print(f"wallboard      p50 {figures['wallboard_p50_ms']:.1f} ms  p95 {figures['wallboard_p95_ms']:.1f} ms  (budget 30 ms)")
    if args.json:
        print(json.dumps(figures))
    return 0
