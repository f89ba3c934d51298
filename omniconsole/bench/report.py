"""`omniconsole bench report`: how long reports and the wallboard take on a big database.

    omniconsole bench ingest --messages 1000000 --keep /tmp/reports1m.db
    omniconsole bench report --db /tmp/reports1m.db --work

Budgets (issue #20, DESIGN.md): a 30-day report p95 <= 200 ms, an all-time report <= 1 s, a
wallboard refresh p95 <= 30 ms. Periods end at the newest message of the database (the bench's
traffic has its own clock), so the 30 days hold what a busy month would.

Reports fold the stored `conversation_facts` rows (store/facts.py). Beside them the bench times
the reference, the same 30-day report recounted from every conversation's whole history
(figures.py over `report_histories`, what reports did before the rows existed), and checks that
both give the same object: a wrong fact row at scale fails the bench.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path

from omniconsole.analytics import report as rp
from omniconsole.analytics.commands import make_report
from omniconsole.analytics.wallboard import wallboard
from omniconsole.bench.query import percentiles
from omniconsole.models import ConversationStatus
from omniconsole.store import Store, actions, analytics

BUDGETS_MS = {"report_30d": 200.0, "report_all": 1000.0, "wallboard": 30.0}
BENCH_OPERATORS = ("bench-ann", "bench-bob", "bench-cat", "bench-dan")


async def add_operator_work(store: Store, batch: int = 1000) -> int:
    """Give the bench database (inbound messages only) the work of a team, once: each
    conversation gets a reply 30 s to 1 h after its first message, by one of four operators,
    and every second one is resolved 10 min after its last activity, so reports have response
    and resolution times to fold. Returns how many conversations were answered (0: done before).
    Written through the store's own actions, so the facts are kept as in production."""
    if any(op.login == BENCH_OPERATORS[0] for op in await store.operators()):
        return 0
    for login in BENCH_OPERATORS:
        await store.db.write(actions.add_operator, login)
    rng = random.Random(7)
    work = await store.db.run(analytics.conversation_spans)

    def answer(conn, part):
        for cid, opened, last in part:
            who = BENCH_OPERATORS[cid % len(BENCH_OPERATORS)]
            actions.queue_reply(conn, cid, "Thank you, we are on it", who, now=opened + rng.uniform(30, 3600))
            if cid % 2 == 0:
                actions.set_status(conn, cid, ConversationStatus.RESOLVED, who, now=max(last, opened + 3600) + 600)

    for start in range(0, len(work), batch):
        await store.db.write(answer, work[start : start + batch])
    return len(work)


async def reference_report(store: Store, period: rp.Period, now: float) -> dict:
    """The report recounted from whole histories (the pre-facts way, and the reference)."""
    histories, sent, _ = await store.report_histories(period.start, period.end)
    return rp.build_report(rp.facts_for(histories, now), period, now, surveys_sent=sent)


async def report_benchmark(
    db_path: Path, rounds: int, all_time_rounds: int, reference_rounds: int = 0, work: bool = False
) -> dict:
    """p50/p95 (ms) of a 30-day report, an all-time report and a wallboard refresh, and of the
    reference recount when `reference_rounds` > 0 (with `reference_equal`: same object). With
    `work`, the team's replies and resolutions are added first (`add_operator_work`, untimed)."""
    store = await Store.open(db_path, create=False)
    try:
        started = time.perf_counter()
        answered = await add_operator_work(store) if work else 0
        work_s = time.perf_counter() - started
        newest = await store.db.run(analytics.newest_activity)
        if newest is None:
            raise SystemExit(f"{db_path} holds no conversations; build one with `omniconsole bench ingest --keep FILE`")
        started = time.perf_counter()
        backfilled = await store.backfill_facts()  # a database from before the facts: once, not timed
        backfill_s = time.perf_counter() - started
        now = newest + 1
        month = rp.Period(now - 30 * 86400, now)
        figures: dict[str, list[float]] = {"report_30d": [], "report_all": [], "wallboard": [], "reference_30d": []}
        last: dict = {}
        for _ in range(rounds):
            started = time.perf_counter()
            last = await make_report(store, month, now=now)
            figures["report_30d"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await wallboard(store, now)
            figures["wallboard"].append(time.perf_counter() - started)
        for _ in range(all_time_rounds):
            started = time.perf_counter()
            await make_report(store, rp.Period(None, None), now=now)
            figures["report_all"].append(time.perf_counter() - started)
        reference: dict | None = None
        for _ in range(reference_rounds):
            started = time.perf_counter()
            reference = await reference_report(store, month, now)
            figures["reference_30d"].append(time.perf_counter() - started)
    finally:
        await store.close()
    result: dict = {
        "rounds": rounds,
        "conversations_30d": last.get("conversations"),
        "unattended": last.get("unattended"),
        "backfilled_conversations": backfilled,
        "backfill_s": round(backfill_s, 1),
        "answered_conversations": answered,
        "work_s": round(work_s, 1),
        "resolved_30d": last.get("resolved"),
        "frt_responses_30d": last.get("frt_responses"),
    }
    if reference is not None:
        result["reference_equal"] = reference == last
    for name, samples in figures.items():
        if not samples:
            continue
        p50, p95 = percentiles(samples)
        result[f"{name}_p50_ms"] = round(p50, 1)
        result[f"{name}_p95_ms"] = round(p95, 1)
    return result


def main(args: argparse.Namespace) -> int:
    db = Path(args.db) if args.db else None
    if db is None or not db.exists():
        raise SystemExit("bench report needs --db FILE: a database kept by `omniconsole bench ingest --keep FILE`")
    figures = asyncio.run(
        report_benchmark(
            db, args.rounds, args.all_time_rounds, getattr(args, "reference_rounds", 0), getattr(args, "work", False)
        )
    )
    if figures["answered_conversations"]:
        print(f"operators answered {figures['answered_conversations']:,} conversations first ({figures['work_s']} s, once)")
    if figures["backfilled_conversations"]:
        print(f"facts computed for {figures['backfilled_conversations']:,} conversations first ({figures['backfill_s']} s, once)")
    print(
        f"30 days: {figures['conversations_30d']:,} conversations opened, {figures['frt_responses_30d']:,} first responses,"
        f" {figures['resolved_30d']:,} resolved"
    )
    names = {"report_30d": "30-day report ", "report_all": "all-time report", "wallboard": "wallboard      "}
    for key, name in names.items():
        p50, p95 = figures[f"{key}_p50_ms"], figures[f"{key}_p95_ms"]
        verdict = "within" if p95 <= BUDGETS_MS[key] else "OVER"
        print(f"{name} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  budget {BUDGETS_MS[key]:6.0f} ms  {verdict}")
    if "reference_30d_p95_ms" in figures:
        same = "same figures" if figures["reference_equal"] else "DIFFERENT FIGURES"
        print(
            f"reference: the 30-day report recounted from whole histories  p50 {figures['reference_30d_p50_ms']:.1f} ms"
            f"  p95 {figures['reference_30d_p95_ms']:.1f} ms  ({same})"
        )
    if args.json:
        print(json.dumps(figures))
    return 0 if figures.get("reference_equal", True) else 1
