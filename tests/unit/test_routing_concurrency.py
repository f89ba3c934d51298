"""Routing under concurrency and at random (issue #18):

* several processes route and serve the same queues of one SQLite file at once: no
  conversation is ever assigned twice and no capacity is exceeded;
* a Hypothesis property: under random arrivals (channels, a skill label), resolutions and status
  changes, automatic assignment never exceeds capacity, no assignable conversation waits while a
  matching operator has room, and within a step the queue's order holds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniconsole.core.ingest import Ingestor
from omniconsole.models import ConversationStatus, IdentityKind, OperatorRole
from omniconsole.routing.engine import Router
from omniconsole.routing.settings import parse_routing
from omniconsole.store import actions, history
from omniconsole.store import routing as db
from omniconsole.store.database import connect, write_transaction
from tests.conftest import inbound, repo_root, subprocess_env

T0 = 1_800_000_000.0
KINDS = {"telegram": IdentityKind.TELEGRAM, "email": IdentityKind.EMAIL, "phone": IdentityKind.PHONE}
ROUTING = {"weights": {"phone": 3, "email": 0.5}, "skills": ["vip"], "sticky_minutes": 0}


def _ingestor() -> Ingestor:
    ingestor = Ingestor.__new__(Ingestor)
    ingestor.default_region = "RU"
    return ingestor


def _arrive(conn, ingestor: Ingestor, channels: dict[str, int], n: int, kind: str, at: float, vip: bool = False) -> int:
    address = f"c{n}@example.com" if kind == "email" else f"+7999{n:07d}" if kind == "phone" else str(10_000 + n)
    record = ingestor.prepare(inbound(f"m{n}", "hello", kind=KINDS[kind], address=address, at=at))
    conversation_id = write_transaction(conn, history.ingest_batch, channels[kind], kind, [record], None).receipts[0][2]
    if vip:
        write_transaction(conn, actions.set_conversation_labels, conversation_id, ["vip"], "rules")
    return conversation_id


WORKER = """
import random, sys
from omniconsole.routing.engine import Router
from omniconsole.routing.settings import parse_routing
from omniconsole.store.database import connect, write_transaction
path, seed = sys.argv[1], int(sys.argv[2])
conn = connect(path)
router = Router(parse_routing({}, [], []))
ids = [r[0] for r in conn.execute("SELECT id FROM conversations")]
random.Random(seed).shuffle(ids)
for i, cid in enumerate(ids):
    write_transaction(conn, router.route, cid, 1800000000.0 + i)
    if i % 7 == 0:
        write_transaction(conn, router.drain, 1800000000.0 + i)
print("done")
"""


def test_several_processes_never_assign_a_conversation_twice(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    conn = connect(path)
    ingestor = _ingestor()
    channels = {kind: write_transaction(conn, actions.ensure_channel, kind, kind) for kind in KINDS}
    for n in range(60):
        _arrive(conn, ingestor, channels, n, "telegram", T0)
    capacities = {"anna": 2, "boris": 3, "cara": 5}
    for login, capacity in capacities.items():
        write_transaction(conn, actions.add_operator, login, login, OperatorRole.AGENT)
        write_transaction(conn, db.update_operator, login, actor="t", now=T0, capacity=capacity, status="online")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(seed)],
            cwd=repo_root(),
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0 and out.strip() == "done", err
    per_conversation = conn.execute(
        "SELECT conversation_id, count(*) FROM events WHERE kind = 'conversation.assigned' GROUP BY conversation_id"
    ).fetchall()
    assert per_conversation and all(count == 1 for _, count in per_conversation)
    loads = dict(
        tuple(r)
        for r in conn.execute("SELECT assignee, count(*) FROM conversations WHERE assignee IS NOT NULL GROUP BY assignee")
    )
    assert loads == capacities
    assert len(per_conversation) == sum(capacities.values())


operators_st = st.lists(st.tuples(st.integers(min_value=1, max_value=4), st.booleans()), min_size=1, max_size=4)
steps_st = st.lists(
    st.one_of(
        st.tuples(st.just("arrive"), st.sampled_from(sorted(KINDS)), st.booleans(), st.integers(0, 2)),
        st.tuples(st.just("resolve"), st.integers(0, 50)),
        st.tuples(st.just("status"), st.integers(0, 3), st.sampled_from(["online", "away", "offline"])),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(operators=operators_st, steps=steps_st)
def test_property_capacity_never_exceeded_nobody_waits_needlessly_and_order_holds(operators, steps) -> None:
    with tempfile.TemporaryDirectory() as folder:
        conn = connect(Path(folder) / "p.db")
        try:
            _run_property(conn, operators, steps)
        finally:
            conn.close()


def _run_property(conn, operators, steps) -> None:
    router = Router(parse_routing(ROUTING, [], []))
    ingestor = _ingestor()
    channels = {kind: write_transaction(conn, actions.ensure_channel, kind, kind) for kind in KINDS}
    logins = [f"op{i}" for i in range(len(operators))]
    for login, (capacity, vip) in zip(logins, operators):
        write_transaction(conn, actions.add_operator, login, login, OperatorRole.AGENT)
        write_transaction(conn, db.update_operator, login, actor="t", now=T0, capacity=capacity, skills=["vip"] if vip else [])
        write_transaction(conn, router.set_status, login, "online", T0, "t")
    arrived: list[int] = []
    now = T0
    for n, step in enumerate(steps):
        now += 10
        before = {r[0] for r in conn.execute("SELECT id FROM conversations WHERE assignee IS NOT NULL")}
        if step[0] == "arrive":
            _, kind, vip, priority = step
            conversation_id = _arrive(conn, ingestor, channels, n, kind, now, vip)
            if priority:
                write_transaction(conn, actions.set_priority, conversation_id, priority, "rules")
            arrived.append(conversation_id)
            write_transaction(conn, router.route, conversation_id, now)
        elif step[0] == "resolve" and arrived:
            conversation_id = arrived[step[1] % len(arrived)]
            write_transaction(conn, actions.set_status, conversation_id, ConversationStatus.RESOLVED, "t", now=now)
            write_transaction(conn, router.drain, now)
        elif step[0] == "status":
            write_transaction(conn, router.set_status, logins[step[1] % len(logins)], step[2], now, "t")
        _check(conn, router, before)


def _check(conn, router: Router, assigned_before: set[int]) -> None:
    states = db.operator_states(conn, router.settings.load_statuses())
    # 1. Automatic assignment never exceeds capacity (nobody here assigns by hand).
    for op in states.values():
        assert router.load(op) <= router.capacity(op) + 1e-9, (op.login, op.assigned)
    # 2. No assignable conversation waits while a matching operator has room.
    queue = router.settings.queue("default")
    waiting = db.waiting(conn, "default", limit=10_000)
    for conversation_id, needs, kind, _priority, _queued in waiting:
        login, reason = router.choose(queue, needs, kind, states)
        assert login is None, f"conversation {conversation_id} waits but {login} could take it ({reason})"
    # 3. Order: nothing assigned in this step was behind a waiting conversation with the same needs and channel.
    new = [
        (r[0], json.loads(r[1]), r[2], r[3], r[4])
        for r in conn.execute(
            "SELECT c.id, c.needs, coalesce(ch.kind, ''), c.priority, c.queued_at FROM conversations c"
            " LEFT JOIN channels ch ON ch.id = c.last_channel_id WHERE c.assignee IS NOT NULL"
        )
        if r[0] not in assigned_before
    ]
    for conversation_id, needs, kind, priority, queued_at in new:
        for w_id, w_needs, w_kind, w_priority, w_queued in waiting:
            if list(w_needs) == list(needs) and w_kind == kind:
                assert (w_priority, -w_queued, -w_id) < (priority, -queued_at, -conversation_id), (
                    f"{conversation_id} was assigned while {w_id}, ahead of it, waits"
                )
