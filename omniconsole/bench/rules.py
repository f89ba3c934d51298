"""`omniconsole bench rules`: what automation rules cost the conversation pipeline (issue #19).

    omniconsole bench rules [--history 200000] [--arrivals 5000]

A fresh database in a temporary folder with `--history` customer messages stored first as an
import stores them (no pipeline: a big events log to look things up in), and ten rules: keywords
(contains and a regular expression, any), a customer attribute on opening, the message's
language, a label added, an assignment, a resolution, and timers (waiting for us in business
time, no customer reply). Then `--arrivals` live messages: each is stored (not timed), then the
rules' pipeline step (`Engine.step`: the batch's look-up, matching, acting, the timers it puts)
is timed in its own write transaction; after every fifth arrival an operator assigns, labels or
resolves, and one pass of the rules' follower of the events log (`Engine.follow`) is timed.
There is no budget of its own: the step runs beside routing's, whose budget is p95 <= 5 ms, and
ingest through the whole pipeline must keep >= 10,000 messages/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from omniconsole.bench.query import percentiles

RULES = """
[[rules]]
name = "refund words"
on = "message.received"
match = "any"
conditions = [ { field = "message.body", contains = "refund" }, { field = "message.body", matches = "(?i)money\\\\s+back|возврат" } ]
actions = [ { add_labels = ["refund"] } ]

[[rules]]
name = "vip opened"
on = "conversation.opened"
conditions = [ { field = "customer.attributes.tier", is = "vip" } ]
actions = [ { priority = "high" } ]

[[rules]]
name = "russian"
on = "message.received"
conditions = [ { field = "message.language", is = "ru" }, { field = "conversation.labels", has = "refund" } ]
actions = [ { note = "russian refund" } ]

[[rules]]
name = "urgent label"
on = "label.added"
conditions = [ { field = "event.label", is = "urgent" } ]
actions = [ { priority = "urgent" } ]

[[rules]]
name = "assigned"
on = "conversation.assigned"
conditions = [ { field = "conversation.priority", above = 0 } ]
actions = [ { notify = "a priority conversation is yours" } ]

[[rules]]
name = "resolved"
on = "conversation.resolved"
actions = [ { add_labels = ["done"] } ]

[[rules]]
name = "waiting"
timer = "waiting_for_us"
after = "30min"
business_time = true
actions = [ { priority = "urgent" } ]

[[rules]]
name = "quiet"
timer = "no_customer_reply"
after = "3d"
actions = [ { resolve = true } ]

[[rules]]
name = "never"
on = "message.received"
conditions = [ { field = "message.body", contains = "zzzz-never" } ]
actions = [ { note = "never" } ]

[[rules]]
name = "sla"
on = "sla.breach"
actions = [ { priority = "urgent" } ]
"""
TEXTS = (
    "Hello, where is my order? I have been waiting a week",
    "I would like a refund, the parcel was damaged",
    "Здравствуйте, хочу оформить возврат, товар не подошёл",
    "Подскажите, пожалуйста, сроки доставки в Казань",
    "Money back please, it never arrived",
)


def rules_benchmark(folder: Path, history_size: int, arrivals: int, seed: int = 7) -> dict:
    """Figures (ms, counts) of the rules' step and follower (see the module docstring)."""
    from connectors.base import InboundMessage
    from omniconsole.answers.language import detect_messages, warm_up
    from omniconsole.automation.engine import Engine
    from omniconsole.automation.rules import parse_rulebook
    from omniconsole.calendar import Calendar
    from omniconsole.core.ingest import Ingestor
    from omniconsole.models import ConversationStatus, IdentityKind, OperatorRole
    from omniconsole.store import actions, automation, history
    from omniconsole.store.database import connect, write_transaction

    rng = random.Random(seed)
    warm_up()
    conn = connect(folder / "rules-bench.db")
    engine = Engine(
        parse_rulebook(tomllib.loads(RULES)), {"default": Calendar.parse("Mon-Fri 09:00-18:00", "UTC")}, detect=detect_messages
    )
    ingestor = Ingestor.__new__(Ingestor)
    ingestor.default_region = "RU"
    channel = write_transaction(conn, actions.ensure_channel, "telegram", "tg")
    write_transaction(conn, actions.add_operator, "anna", "Anna", OperatorRole.AGENT)
    now = time.time() - 86400

    def message(n: int, who: int) -> InboundMessage:
        return InboundMessage(
            external_id=f"m{n}",
            identity_kind=IdentityKind.TELEGRAM,
            address=str(100_000 + who),
            body=rng.choice(TEXTS),
            sent_at=datetime.fromtimestamp(now, UTC),
        )

    customers = max(1, history_size // 3)
    for start in range(0, history_size, 1000):
        batch = [ingestor.prepare(message(n, rng.randrange(customers))) for n in range(start, min(history_size, start + 1000))]
        write_transaction(conn, history.ingest_batch, channel, "telegram", batch, None)
    write_transaction(conn, engine.follow, time.time())  # the follower starts after the history
    step_times: list[float] = []
    step_cpu: list[float] = []  # CPU time of this thread: the step's own cost on a busy machine
    follow_times: list[float] = []
    followed = 0
    for n in range(arrivals):
        who = customers + rng.randrange(max(1, arrivals // 2))
        record = ingestor.prepare(message(history_size + n, who))
        result = write_transaction(conn, history.ingest_batch, channel, "telegram", [record], None)
        conversation_id = result.receipts[0][2]
        started, cpu = time.perf_counter(), time.thread_time()
        write_transaction(conn, engine.step, conversation_id, time.time())
        step_times.append(time.perf_counter() - started)
        step_cpu.append(time.thread_time() - cpu)
        if n % 5 == 4:
            choice = n % 3
            if choice == 0:
                write_transaction(conn, actions.assign, conversation_id, "anna", "anna")
            elif choice == 1:
                write_transaction(conn, actions.set_conversation_labels, conversation_id, ["urgent"], "anna")
            else:
                write_transaction(conn, actions.set_status, conversation_id, ConversationStatus.RESOLVED, "anna")
            started = time.perf_counter()
            followed += write_transaction(conn, engine.follow, time.time())
            follow_times.append(time.perf_counter() - started)
    counts = automation.figures(conn)
    fired, events, scheduled = counts["fired"], counts["events"], counts["scheduled"]
    conn.close()
    step50, step95 = percentiles(step_times)
    follow50, follow95 = percentiles(follow_times or [0.0])
    cpu50, cpu95 = percentiles(step_cpu)
    return {
        "history_messages": history_size,
        "events": events,
        "arrivals": arrivals,
        "rules": len(engine.book.rules),
        "step_p50_ms": round(step50, 3),
        "step_p95_ms": round(step95, 3),
        "step_cpu_p50_ms": round(cpu50, 3),
        "step_cpu_p95_ms": round(cpu95, 3),
        "follow_pass_p50_ms": round(follow50, 3),
        "follow_pass_p95_ms": round(follow95, 3),
        "events_followed": followed,
        "rules_fired": fired,
        "timers_scheduled": scheduled,
        "load_average": round(os.getloadavg()[0], 2),
    }


def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="omniconsole-bench-rules-") as folder:
        figures = rules_benchmark(Path(folder), args.history, args.arrivals)
    print(
        f"rules: {figures['rules']} rules, {figures['arrivals']} live arrivals on a history of"
        f" {figures['history_messages']:,} messages ({figures['events']:,} events)"
    )
    print(
        f"  pipeline step (Engine.step)           p50 {figures['step_p50_ms']:.2f} ms   p95 {figures['step_p95_ms']:.2f} ms"
        "   (beside routing's step, budget p95 <= 5 ms)"
    )
    print(
        f"  the same, CPU time of the thread      p50 {figures['step_cpu_p50_ms']:.2f} ms   p95 {figures['step_cpu_p95_ms']:.2f} ms"
    )
    print(
        f"  follower pass after an operator action p50 {figures['follow_pass_p50_ms']:.2f} ms"
        f"   p95 {figures['follow_pass_p95_ms']:.2f} ms   ({figures['events_followed']:,} events followed)"
    )
    print(
        f"  rules fired {figures['rules_fired']:,}, timers waiting {figures['timers_scheduled']:,}"
        f" (load average {figures['load_average']} on {os.cpu_count()} cores)"
    )
    if getattr(args, "json", False):
        print(json.dumps(figures))
    return 0
