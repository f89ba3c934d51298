"""`omniconsole bench journeys`: the journeys report and one customer's journey on a big database.

    omniconsole bench ingest --messages 1000000 --keep /tmp/journeys1m.db
    omniconsole bench journeys --db /tmp/journeys1m.db

Budgets (issue #21): `omniconsole report journeys` over the 1M-message database <= 2 s; one
customer's journey <= 20 ms. Topics of conversations never looked at are detected once (the
first report over a database does it and records them); that one-off cost is printed apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path

from omniconsole.analytics import journey_service as js
from omniconsole.analytics.journeys import JourneySettings
from omniconsole.bench.query import percentiles
from omniconsole.store import Store, analytics, journeys

REPORT_BUDGET_MS, JOURNEY_BUDGET_MS = 2000.0, 20.0


async def journeys_benchmark(db_path: Path, rounds: int, customers: int) -> dict:
    """Milliseconds: topic detection (once), report p50/p95 over `rounds`, and p50/p95 of the
    journey of `customers` customers picked at random."""
    store = await Store.open(db_path, create=False)
    try:
        newest = await store.db.run(analytics.newest_activity)
        if newest is None:
            raise SystemExit(f"{db_path} holds no conversations; build one with `omniconsole bench ingest --keep FILE`")
        now = newest + 1
        started = time.perf_counter()
        detected = await js.detect_topics(store)
        detect_ms = (time.perf_counter() - started) * 1000
        reports: list[float] = []
        report: dict = {}
        for _ in range(rounds):
            started = time.perf_counter()
            report = js.render(await js.journeys_report(store, None, now=now), "json")
            reports.append(time.perf_counter() - started)
        ids = await store.db.run(journeys.live_customer_ids)
        picked = random.Random(5).sample(ids, min(customers, len(ids)))
        journey_times: list[float] = []
        config = JourneySettings()
        for customer_id in picked:
            started = time.perf_counter()
            await js.customer_journey(store, customer_id, now, config)
            journey_times.append(time.perf_counter() - started)
    finally:
        await store.close()
    report_p50, report_p95 = percentiles(reports)
    journey_p50, journey_p95 = percentiles(journey_times)
    return {
        "issues": json.loads(report)["issues"],
        "topics_detected": detected,
        "topic_detection_ms": round(detect_ms, 1),
        "report_p50_ms": round(report_p50, 1),
        "report_p95_ms": round(report_p95, 1),
        "journey_p50_ms": round(journey_p50, 2),
        "journey_p95_ms": round(journey_p95, 2),
    }


def main(args: argparse.Namespace) -> int:
    db = Path(args.db) if args.db else None
    if db is None or not db.exists():
        raise SystemExit("bench journeys needs --db FILE: a database kept by `omniconsole bench ingest --keep FILE`")
    f = asyncio.run(journeys_benchmark(db, args.rounds, args.customers))
    print(
        f"journeys report ({f['issues']:,} issues)  p50 {f['report_p50_ms']:.0f} ms  p95 {f['report_p95_ms']:.0f} ms  (budget {REPORT_BUDGET_MS:.0f} ms)"
    )
    print(
        f"one customer's journey          p50 {f['journey_p50_ms']:.1f} ms  p95 {f['journey_p95_ms']:.1f} ms  (budget {JOURNEY_BUDGET_MS:.0f} ms)"
    )
    print(
        f"topics detected first: {f['topics_detected']:,} conversations in {f['topic_detection_ms'] / 1000:.1f} s (once per conversation)"
    )
    if args.json:
        print(json.dumps(f))
    return 0
