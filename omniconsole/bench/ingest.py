"""`omniconsole bench ingest`: messages per second through the whole ingest path, and how
much the database grows per 100,000 messages.

    omniconsole bench ingest --messages 1000000 --keep /tmp/bench.db

Traffic is synthetic and deterministic (seeded): customers on five identity kinds, bodies drawn
from a Zipf-distributed Russian and English vocabulary with a long tail of rare words, so a
search mixes very common words, rare words, prefixes and one-customer searches as real use does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from connectors.base import InboundMessage
from omniconsole.core.ingest import Ingestor
from omniconsole.errors import UsageError
from omniconsole.models import IdentityKind
from omniconsole.store import Store
from omniconsole.store.database import channel_names_of

COMMON_WORDS = (
    "заказ доставка возврат карта оплата курьер деньги спасибо пожалуйста здравствуйте когда где почему "
    "номер адрес сегодня завтра неделю пароль аккаунт вход товар размер примерка запись магазин ответ "
    "order delivery refund card payment courier money thanks please hello when where why number address "
    "today tomorrow week password account login item size fitting appointment store answer help problem"
).split()
KINDS = (IdentityKind.TELEGRAM, IdentityKind.EMAIL, IdentityKind.PHONE, IdentityKind.VK, IdentityKind.WHATSAPP)


def _rare_word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyzабвгдежзиклмнопрстуфхцчшщэюя") for _ in range(rng.randint(5, 9)))


class SyntheticTraffic:
    """A deterministic stream of inbound messages: `customers` people, each writing in turn."""

    def __init__(self, messages: int, seed: int = 1):
        self.messages = messages
        self.customers = max(1, messages // 10)
        rng = random.Random(seed)
        self.vocabulary = COMMON_WORDS + [_rare_word(rng) for _ in range(20_000)]
        # Zipf weights: the first words are very common, the tail is rare.
        self.weights = [1.0 / (rank + 1) for rank in range(len(self.vocabulary))]
        self.cum_weights = []
        total = 0.0
        for w in self.weights:
            total += w
            self.cum_weights.append(total)
        self.start = 1_600_000_000.0

    def address(self, customer: int) -> tuple[IdentityKind, str]:
        kind = KINDS[customer % len(KINDS)]
        if kind is IdentityKind.EMAIL:
            return kind, f"customer{customer}@example.com"
        if kind in (IdentityKind.PHONE, IdentityKind.WHATSAPP):
            return kind, f"+7999{customer:07d}"
        return kind, str(10_000_000 + customer)

    def batches(self, size: int) -> Iterator[tuple[list[InboundMessage], str]]:
        """Batches of messages with the cursor (last sequence number) that covers each."""
        rng = random.Random(42)
        batch: list[InboundMessage] = []
        for seq in range(self.messages):
            # Customers write in bursts, as conversations do.
            customer = (seq // 3 * 7919) % self.customers
            kind, address = self.address(customer)
            words = rng.choices(self.vocabulary, cum_weights=self.cum_weights, k=rng.randint(4, 24))
            batch.append(
                InboundMessage(
                    external_id=f"bench-{seq}",
                    identity_kind=kind,
                    address=address,
                    body=" ".join(words),
                    sent_at=datetime.fromtimestamp(self.start + seq, UTC),
                    sender_name=f"Customer {customer}",
                )
            )
            if len(batch) >= size:
                yield batch, str(seq)
                batch = []
        if batch:
            yield batch, str(self.messages - 1)


async def ingest_benchmark(messages: int, batch: int, db_path: Path) -> dict:
    """Messages per second through the whole ingest path, and the bare-insert ceiling."""
    traffic = SyntheticTraffic(messages)
    store = await Store.open(db_path)
    elapsed = 0.0
    try:
        channels = {kind: await store.ensure_channel(kind.value, f"{BENCH_CHANNEL_PREFIX}{kind.value}") for kind in KINDS}
        ingestor = Ingestor(store, db_path.parent / "bench-data")
        done = 0
        report_at = time.perf_counter()
        for chunk, cursor in traffic.batches(batch):
            # One channel per batch keeps the cursor semantics of a real connector.
            kind = chunk[0].identity_kind
            started = time.perf_counter()
            await ingestor.ingest(channels[kind], kind.value, chunk, cursor)
            elapsed += time.perf_counter() - started
            done += len(chunk)
            if time.perf_counter() - report_at > 5:
                report_at = time.perf_counter()
                print(f"  ingested {done:,} messages, {done / elapsed:,.0f}/s so far", flush=True)
        growth = await storage_growth(store)
    finally:
        await store.close()
    ceiling = bare_insert_ceiling(traffic, batch)
    rate = messages / elapsed
    return {
        "messages": messages,
        "ingest_msgs_per_s": round(rate),
        "ceiling_rows_per_s": round(ceiling),
        "ratio": round(rate / ceiling, 3),
        **growth,
    }


async def storage_growth(store: Store) -> dict:
    """Database bytes and events rows per 100,000 messages as ingested, and again once the live
    events are pruned (what `[retention] live_days` leaves behind)."""
    before = await store.storage_figures()
    await store.prune_live_events(time.time() + 1)
    after = await store.storage_figures()

    def per_100k(n: int, messages: int) -> int:
        return round(n * 100_000 / max(1, messages))

    n = before["messages"]
    return {
        "bytes_per_100k": per_100k(before["bytes"], n),
        "events_per_100k": per_100k(sum(before["events"].values()), n),
        "bytes_per_100k_pruned": per_100k(after["bytes"], n),
        "events_per_100k_pruned": per_100k(sum(after["events"].values()), n),
    }


def bare_insert_ceiling(traffic: SyntheticTraffic, batch: int) -> float:
    """Rows per second of a plain executemany of the same rows into a table without indexes."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "ceiling.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(
            "CREATE TABLE messages (conversation_id INTEGER, customer_id INTEGER, channel_id INTEGER, direction TEXT,"
            " author TEXT, body TEXT, external_id TEXT, created_at REAL)"
        )
        elapsed = 0.0
        for chunk, _ in traffic.batches(batch):
            rows = [(0, 0, 1, "in", m.sender_name, m.body, m.external_id, m.sent_at.timestamp()) for m in chunk]
            started = time.perf_counter()
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
            elapsed += time.perf_counter() - started
        conn.close()
    return traffic.messages / elapsed


#: Every channel of a database this benchmark builds is named so (`bench tui` adds its own).
BENCH_CHANNEL_PREFIX = "bench "


def kept_database(args: argparse.Namespace) -> Path | None:
    """Where to keep the benchmark database: `--keep FILE`, or `--db FILE` (the same thing;
    both given must agree). A file already there is replaced only when it is empty or a
    database this benchmark built; anything else is refused (UsageError), never overwritten."""
    keep, db = getattr(args, "keep", None), getattr(args, "db", None)
    if keep and db and Path(keep).resolve() != Path(db).resolve():
        raise UsageError(f"--keep {keep} and --db {db} name two files; give one (both mean where the database is kept)")
    target = keep or db
    if not target:
        return None
    path = Path(target)
    if path.exists() and path.stat().st_size > 0:
        names = channel_names_of(path)
        if names is None or any(not name.startswith(BENCH_CHANNEL_PREFIX) for name in names):
            raise UsageError(
                f"{path} exists and is not a benchmark database; refusing to overwrite it (remove it yourself, or pick another file)"
            )
    return path


def main(args: argparse.Namespace) -> int:
    """Run the ingest benchmark and print the figures (`--json`: one JSON object last)."""
    keep = kept_database(args)
    with tempfile.TemporaryDirectory() as tmp:
        path = keep or Path(tmp) / "bench.db"
        if keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        print(f"ingesting {args.messages:,} synthetic messages in batches of {args.batch} into {path} ...", flush=True)
        result = asyncio.run(ingest_benchmark(args.messages, args.batch, path))
    print(f"ingest (identity, threading, FTS): {result['ingest_msgs_per_s']:>10,} messages/s")
    print(f"bare executemany, no indexes:      {result['ceiling_rows_per_s']:>10,} rows/s")
    print(f"ratio:                             {result['ratio']:>10}")
    print(
        f"per 100,000 messages:              {result['bytes_per_100k'] / 1e6:>10,.1f} MB,"
        f" {result['events_per_100k']:,} events rows"
    )
    print(
        f"  after pruning the live events:   {result['bytes_per_100k_pruned'] / 1e6:>10,.1f} MB,"
        f" {result['events_per_100k_pruned']:,} events rows"
    )
    if args.json:
        print(json.dumps(result))
    return 0
