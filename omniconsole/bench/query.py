"""`omniconsole bench query`: p50/p95 of what a window reads on a big database.

    omniconsole bench query --db /tmp/bench.db      # a database kept by `bench ingest --keep`

Searches mix the traffic's most common words, rare words, prefixes as typed, two common words
and one-customer searches, as real use does. The inbox is read in each order (a next page after
the first, by keyset) and with each kind of filter (a channel, a priority, an assignee, a label
nobody has: the worst case, every conversation read to fill no page), with the filtered counts
the view bar then shows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from omniconsole.bench.ingest import COMMON_WORDS, SyntheticTraffic, ingest_benchmark
from omniconsole.models import InboxOrder, InboxView
from omniconsole.store import InboxCursor, InboxFilter, Store, queries

#: The figures, in the order printed: an inbox page (newest first), a next page in each order,
#: a filtered page, the filtered counts, a timeline, a profile, a search.
FIGURES = ("inbox", "sorted", "filtered", "counts", "timeline", "profile", "search")


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds of samples in seconds."""
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return p50 * 1000, p95 * 1000


async def query_benchmark(db_path: Path, rounds: int) -> dict:
    """p50/p95 (ms) of an inbox page, a timeline, a customer profile and a search."""
    # Search words: the most common, mid-frequency and rare words of this database's traffic.
    vocabulary = SyntheticTraffic(10).vocabulary  # the same vocabulary the bench ingest used
    rng = random.Random(5)
    figures: dict[str, list[float]] = {name: [] for name in FIGURES}
    store = await Store.open(db_path, create=False)
    try:
        max_customer, max_conversation, positions = await store.db.run(queries.bench_sample, rounds)
        kinds, _ = await store.filter_choices()
        filters = [
            InboxFilter(channel=kinds[0] if kinds else "telegram"),
            InboxFilter(priority=0),
            InboxFilter(assignee="nobody"),
            InboxFilter(label="no such label"),
        ]
        orders = list(InboxOrder)
        for i in range(rounds):
            view = (InboxView.ALL, InboxView.UNASSIGNED, InboxView.RESOLVED)[i % 3]
            after = None if i % 2 == 0 or not positions else positions[i % len(positions)]
            started = time.perf_counter()
            await store.inbox_page(view, "nobody", after, 100)
            figures["inbox"].append(time.perf_counter() - started)

            order = orders[i % len(orders)]
            first = await store.inbox_page(view, "nobody", None, 100, order=order)
            after = InboxCursor.after_row(first[-1], order) if first else None
            started = time.perf_counter()
            await store.inbox_page(view, "nobody", after, 100, order=order)
            figures["sorted"].append(time.perf_counter() - started)

            only = filters[i % len(filters)]
            started = time.perf_counter()
            page = await store.inbox_page(view, "nobody", None, 100, order=order, only=only)
            if len(page) == 100:
                await store.inbox_page(view, "nobody", InboxCursor.after_row(page[-1], order), 100, order=order, only=only)
            figures["filtered"].append((time.perf_counter() - started) / (2 if len(page) == 100 else 1))
            started = time.perf_counter()
            await store.inbox_counts("nobody", only)
            figures["counts"].append(time.perf_counter() - started)

            started = time.perf_counter()
            await store.timeline(rng.randint(1, max_conversation))
            figures["timeline"].append(time.perf_counter() - started)

            started = time.perf_counter()
            await store.customer_profile(rng.randint(1, max_customer))
            figures["profile"].append(time.perf_counter() - started)

            kind = i % 5
            customer = None
            if kind == 0:
                text = rng.choice(vocabulary[:10])  # the most common words
            elif kind == 1:
                text = rng.choice(vocabulary[len(COMMON_WORDS) :])  # rare
            elif kind == 2:
                text = rng.choice(vocabulary[:40])[:3]  # a prefix, as typed
            elif kind == 3:
                text = f"{rng.choice(vocabulary[:10])} {rng.choice(vocabulary[:60])}"  # two common words
            else:
                text, customer = rng.choice(vocabulary[:10]), rng.randint(1, max_customer)  # one customer
            started = time.perf_counter()
            await store.search(text, customer_id=customer)
            figures["search"].append(time.perf_counter() - started)
    finally:
        await store.close()
    result: dict = {"rounds": rounds}
    for name, samples in figures.items():
        p50, p95 = percentiles(samples)
        result[f"{name}_p50_ms"] = round(p50, 2)
        result[f"{name}_p95_ms"] = round(p95, 2)
    return result


def main(args: argparse.Namespace) -> int:
    """Run the query benchmark (building a database first without `--db`) and print p50/p95."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if getattr(args, "db", None) else Path(tmp) / "bench.db"
        if not getattr(args, "db", None):
            print(f"building a database of {args.messages:,} messages first ...", flush=True)
            asyncio.run(ingest_benchmark(args.messages, 1000, path))
        result = asyncio.run(query_benchmark(path, args.rounds))
    for name in FIGURES:
        print(f"{name:<9} p50 {result[f'{name}_p50_ms']:>8.2f} ms   p95 {result[f'{name}_p95_ms']:>8.2f} ms")
    if args.json:
        print(json.dumps(result))
    return 0
