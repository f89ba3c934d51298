"""`omniconsole bench routing`: how long a routing decision takes (DESIGN.md budget: p95 <= 5 ms
with 50 operators).

    omniconsole bench routing [--arrivals 10000] [--operators 50]

A fresh database in a temporary folder; operators online with capacities 3-8, a third speaking
Russian, a third English, a third both, one in five with the `vip` skill; three queues (VIP by
label, e-mail round robin, the default least loaded). Customers write in Russian or English on
Telegram, e-mail or the phone; one in ten conversations is VIP. Each arrival is stored (not
timed), then the pipeline step `Router.route` is timed in its own write transaction — queue
matching, language detection, skills, stickiness and the assignment with its event. Once the
team is full, each arrival is followed by a resolution and the serving of the queues it frees
(`Router.drain`, timed separately), so a queue stands all along.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from datetime import UTC
from pathlib import Path

from omniconsole.answers.language import detect_messages, warm_up
from omniconsole.bench.query import percentiles
from omniconsole.core.ingest import Ingestor
from omniconsole.models import ConversationStatus, IdentityKind, OperatorRole
from omniconsole.routing.engine import Router
from omniconsole.routing.settings import parse_routing
from omniconsole.store import actions, history
from omniconsole.store import routing as db
from omniconsole.store.database import connect, write_transaction

TEXTS = {
    "ru": [
        "Здравствуйте, где мой заказ? Жду уже неделю",
        "Хочу вернуть товар, он не подошёл по размеру",
        "Подскажите, пожалуйста, сроки доставки в Казань",
    ],
    "en": [
        "Hello, where is my order? I have been waiting a week",
        "I would like to return an item, it does not fit",
        "Could you tell me the delivery time to Berlin please",
    ],
}
KINDS = (("telegram", IdentityKind.TELEGRAM), ("email", IdentityKind.EMAIL), ("phone", IdentityKind.PHONE))


def routing_benchmark(folder: Path, arrivals: int, operators: int, seed: int = 7) -> dict:
    """Figures (ms, counts) of `arrivals` routed among `operators` (see the module docstring)."""
    from datetime import datetime

    from connectors.base import InboundMessage

    rng = random.Random(seed)
    warm_up()
    conn = connect(folder / "routing-bench.db")
    settings = parse_routing(
        {"skills": ["ru", "en", "vip"], "weights": {"phone": 5, "email": 0.5}, "sticky_minutes": 60},
        [{"name": "VIP", "labels": ["vip"], "skills": ["vip"]}, {"name": "mail", "channels": ["email"], "policy": "round_robin"}],
        [],
    )
    router = Router(settings, detect_messages)
    ingestor = Ingestor.__new__(Ingestor)
    ingestor.default_region = "RU"
    channels = {kind: write_transaction(conn, actions.ensure_channel, kind, kind) for kind, _ in KINDS}
    for n in range(operators):
        login = f"op{n:02d}"
        langs = (["ru"], ["en"], ["ru", "en"])[n % 3]
        write_transaction(conn, actions.add_operator, login, login, OperatorRole.AGENT)
        write_transaction(
            conn,
            db.update_operator,
            login,
            actor="bench",
            now=0.0,
            capacity=rng.randint(3, 8),
            skills=langs + (["vip"] if n % 5 == 0 else []),
        )
        write_transaction(conn, router.set_status, login, "online", 0.0, "bench")
    route_times: list[float] = []
    route_cpu: list[float] = []  # CPU time of this thread: the decision's own cost on a busy machine
    drain_times: list[float] = []
    assigned = waited = 0
    now = 1_800_000_000.0
    customers = max(1, arrivals // 2)  # half of the arrivals are returning customers
    for n in range(arrivals):
        now += 0.5
        kind, identity = KINDS[rng.choices(range(3), weights=(70, 25, 5))[0]]
        who = rng.randrange(customers)
        address = f"c{who}@example.com" if kind == "email" else f"+7999{who:07d}" if kind == "phone" else str(100_000 + who)
        language = rng.choice(("ru", "en"))
        message = InboundMessage(
            external_id=f"b{n}",
            identity_kind=identity,
            address=address,
            body=rng.choice(TEXTS[language]),
            sent_at=datetime.fromtimestamp(now, UTC),
        )
        result = write_transaction(conn, history.ingest_batch, channels[kind], kind, [ingestor.prepare(message)], None)
        conversation_id = result.receipts[0][2]
        if rng.random() < 0.1:
            write_transaction(conn, actions.set_conversation_labels, conversation_id, ["vip"], "rules")
        started, cpu = time.perf_counter(), time.thread_time()
        decision = write_transaction(conn, router.route, conversation_id, now)
        route_times.append(time.perf_counter() - started)
        route_cpu.append(time.thread_time() - cpu)
        if decision is not None:
            assigned += decision.assignee is not None
            waited += decision.assignee is None
        if n >= operators * 5:
            oldest = db.longest_assigned(conn)
            if oldest is not None:
                write_transaction(conn, actions.set_status, oldest, ConversationStatus.RESOLVED, "bench", now=now)
                started = time.perf_counter()
                write_transaction(conn, router.drain, now)
                drain_times.append(time.perf_counter() - started)
    figures = db.queue_figures(conn)
    conn.close()
    route50, route95 = percentiles(route_times)
    drain50, drain95 = percentiles(drain_times or [0.0])
    cpu50, cpu95 = percentiles(route_cpu)
    return {
        "arrivals": arrivals,
        "operators": operators,
        "route_p50_ms": round(route50, 3),
        "route_p95_ms": round(route95, 3),
        "route_cpu_p50_ms": round(cpu50, 3),
        "route_cpu_p95_ms": round(cpu95, 3),
        "load_average": round(os.getloadavg()[0], 2),
        "drain_p50_ms": round(drain50, 3),
        "drain_p95_ms": round(drain95, 3),
        "assigned_at_arrival": assigned,
        "waited_at_arrival": waited,
        "waiting_at_end": {q: n for q, (n, _) in figures.items()},
    }


def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="omniconsole-bench-routing-") as folder:
        figures = routing_benchmark(Path(folder), args.arrivals, args.operators)
    print(f"routing: {figures['arrivals']} arrivals, {figures['operators']} operators")
    print(
        f"  decision at arrival (Router.route)   p50 {figures['route_p50_ms']:.2f} ms   p95 {figures['route_p95_ms']:.2f} ms"
        f"   (budget p95 <= 5 ms)"
    )
    print(
        f"  the same, CPU time of the thread      p50 {figures['route_cpu_p50_ms']:.2f} ms   p95 {figures['route_cpu_p95_ms']:.2f} ms"
        f"   (load average {figures['load_average']} on {os.cpu_count()} cores)"
    )
    print(f"  serving the queues after a resolution p50 {figures['drain_p50_ms']:.2f} ms   p95 {figures['drain_p95_ms']:.2f} ms")
    print(
        f"  assigned at arrival {figures['assigned_at_arrival']}, waited {figures['waited_at_arrival']};"
        f" waiting at the end: {figures['waiting_at_end']}"
    )
    if getattr(args, "json", False):
        print(json.dumps(figures))
    return 0 if figures["route_p95_ms"] <= 5.0 else 1
