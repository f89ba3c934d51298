"""Routing (issue #18) on a real SQLite store: queues, policies, capacity with channel weights,
skills (the customer's language detected offline), stickiness, the return timer and the offline
grace fired by the core's one scheduler (once, even after a restart), dead windows, and
`omniconsole operator set`. Each decision's reason is checked in words."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from omniconsole.answers.language import detect_messages
from omniconsole.core.ingest import Ingestor
from omniconsole.core.scheduler import Scheduler
from omniconsole.models import OperatorRole
from omniconsole.routing.engine import Router
from omniconsole.routing.service import _mark_dead
from omniconsole.routing.settings import RoutingSettingsError, parse_routing
from omniconsole.store import Store, actions, history
from omniconsole.store import routing as db
from omniconsole.store import schedule as timers
from omniconsole.store.database import connect, write_transaction
from tests.conftest import inbound, repo_root, subprocess_env

T0 = 1_800_000_000.0  # a fixed "now", epoch seconds


class Desk:
    """A store with channels and operators, and a router; sync, on one connection."""

    def __init__(self, path: Path, routing: dict | None = None, queues: list | None = None, calendars: list | None = None):
        self.path = path
        self.conn = connect(path)
        self.router = Router(parse_routing(routing or {}, queues or [], calendars or []), detect_messages)
        self.ingestor = Ingestor.__new__(Ingestor)  # prepare() needs only the region
        self.ingestor.default_region = "RU"
        self.channels = {
            kind: write_transaction(self.conn, actions.ensure_channel, kind, kind) for kind in ("telegram", "email", "phone")
        }
        self.n = 0

    def operator(
        self, login: str, capacity: int, status: str = "online", skills: list[str] | None = None, teams: list[str] | None = None
    ) -> None:
        write_transaction(self.conn, actions.add_operator, login, login, OperatorRole.AGENT)
        write_transaction(
            self.conn, db.update_operator, login, actor="test", now=T0, capacity=capacity, skills=skills or [], teams=teams or []
        )
        if status != "offline":
            self.status(login, status, T0)

    def status(self, login: str, status: str, now: float):
        return write_transaction(self.conn, self.router.set_status, login, status, now, "test")

    def arrive(
        self,
        body: str = "hello",
        *,
        address: str | None = None,
        kind: str = "telegram",
        at: float = T0,
        labels: tuple[str, ...] = (),
    ):
        """A customer writes; the pipeline step routes the conversation. Returns (id, decision)."""
        self.n += 1
        from omniconsole.models import IdentityKind

        identity = {"telegram": IdentityKind.TELEGRAM, "email": IdentityKind.EMAIL, "phone": IdentityKind.PHONE}[kind]
        address = address or (
            f"c{self.n}@example.com" if kind == "email" else f"+7999000{self.n:04d}" if kind == "phone" else str(5000 + self.n)
        )
        record = self.ingestor.prepare(inbound(f"m{self.n}", body, kind=identity, address=address, at=at))
        result = write_transaction(self.conn, history.ingest_batch, self.channels[kind], kind, [record], None)
        conversation_id = result.receipts[0][2]
        if labels:  # as rules would, before routing
            write_transaction(self.conn, actions.set_conversation_labels, conversation_id, list(labels), "test")
        return conversation_id, write_transaction(self.conn, self.router.route, conversation_id, at)

    def assignee(self, conversation_id: int) -> str | None:
        return self.conn.execute("SELECT assignee FROM conversations WHERE id = ?", (conversation_id,)).fetchone()[0]

    def resolve(self, conversation_id: int, now: float):
        from omniconsole.models import ConversationStatus

        write_transaction(self.conn, actions.set_status, conversation_id, ConversationStatus.RESOLVED, "test")
        return write_transaction(self.conn, self.router.drain, now)

    def loads(self) -> dict[str, str]:
        states = db.operator_states(self.conn, self.router.settings.load_statuses())
        return {login: f"{self.router.load(op):g}/{self.router.capacity(op)}" for login, op in states.items()}


@pytest.fixture
def desk(tmp_path: Path):
    made: list[Desk] = []

    def make(**kwargs) -> Desk:
        made.append(Desk(tmp_path / f"desk{len(made)}.db", **kwargs))
        return made[-1]

    yield make
    for d in made:
        d.conn.close()


def test_least_loaded_fills_by_share_of_capacity_and_says_why(desk) -> None:
    d = desk()
    d.operator("anna", 2)
    d.operator("boris", 3)
    first, decision = d.arrive()
    # Both empty: the tie goes to the one idle longest (neither was ever assigned: by login).
    assert decision.assignee == "anna" and decision.reason == "least loaded in queue default: anna 0/2, boris 0/3"
    second, decision = d.arrive(at=T0 + 1)
    assert decision.assignee == "boris" and decision.reason == "least loaded in queue default: boris 0/3, anna 1/2"
    for i in range(3):
        d.arrive(at=T0 + 2 + i)
    assert d.loads() == {"anna": "2/2", "boris": "3/3"}
    waiting, decision = d.arrive(at=T0 + 10)
    assert decision.assignee is None
    assert decision.reason == "waits in queue default: everyone online is at capacity: anna 2/2, boris 3/3"
    # The reason is in the timeline and in the event.
    line = d.conn.execute("SELECT body FROM messages WHERE conversation_id = ? AND direction = 'event'", (first,)).fetchone()[0]
    assert line == "assigned to anna: least loaded in queue default: anna 0/2, boris 0/3"
    payload = json.loads(
        d.conn.execute(
            "SELECT payload FROM events WHERE kind = 'conversation.assigned' AND conversation_id = ?", (second,)
        ).fetchone()[0]
    )
    assert payload["assignee"] == "boris" and payload["queue"] == "default" and payload["reason"].startswith("least loaded")
    # Capacity freed: the waiting conversation goes at once.
    [decision] = d.resolve(first, T0 + 20)
    assert decision.conversation_id == waiting and decision.assignee == "anna"


def test_queue_order_is_priority_then_waiting_time(desk) -> None:
    d = desk()
    d.operator("anna", 1, status="offline")
    a, _ = d.arrive(at=T0)
    b, _ = d.arrive(at=T0 + 1)
    c, _ = d.arrive(at=T0 + 2)
    write_transaction(d.conn, actions.set_priority, c, 2, "test")
    assert [row[0] for row in db.waiting(d.conn, "default")] == [c, a, b]
    d.status("anna", "online", T0 + 5)  # coming online serves the queue
    assert (d.assignee(c), d.assignee(a), d.assignee(b)) == ("anna", None, None)
    d.resolve(c, T0 + 6)
    assert d.assignee(a) == "anna" and d.assignee(b) is None
    count, oldest = db.queue_figures(d.conn)["default"]
    assert (count, oldest) == (1, T0 + 1)


def test_round_robin_and_manual_queues(desk) -> None:
    d = desk(queues=[{"name": "mail", "channels": ["email"], "policy": "manual"}, {"name": "default", "policy": "round_robin"}])
    for login in ("anna", "boris", "cara"):
        d.operator(login, 10)
    got = [d.arrive(at=T0 + i)[1] for i in range(4)]
    assert [g.assignee for g in got] == ["anna", "boris", "cara", "anna"]
    assert got[1].reason == "round robin in queue default: boris 0/10, longest since their last assignment"
    mail, decision = d.arrive(kind="email", at=T0 + 10)
    assert decision.assignee is None and decision.queue == "mail" and decision.reason == "queue mail is assigned by hand"
    # Manual assignment always wins, even beyond capacity.
    write_transaction(d.conn, db.update_operator, "anna", actor="t", now=T0, capacity=1)
    write_transaction(d.conn, actions.assign, mail, "anna", "boss", T0 + 11)
    assert d.assignee(mail) == "anna"


def test_channel_weights_a_call_takes_everything_and_mail_half(desk) -> None:
    d = desk(routing={"weights": {"phone": 5, "email": 0.5}})
    d.operator("anna", 2)
    assert [d.arrive(kind="email", at=T0 + i)[1].assignee for i in range(5)] == ["anna"] * 4 + [None]
    e = desk(routing={"weights": {"phone": 5}})
    e.operator("boris", 3)
    e.arrive(at=T0)
    _, call = e.arrive(kind="phone", at=T0 + 1)
    assert call.assignee is None  # a call needs an operator with nothing else
    f = desk(routing={"weights": {"phone": 5}})
    f.operator("cara", 3)
    assert f.arrive(kind="phone", at=T0)[1].assignee == "cara"
    assert f.arrive(at=T0 + 1)[1].assignee is None


def test_pending_can_be_configured_not_to_count(desk) -> None:
    from omniconsole.models import ConversationStatus

    for counts, expected in ((True, None), (False, "anna")):
        d = desk(routing={"pending_counts": counts})
        d.operator("anna", 1)
        first, _ = d.arrive(at=T0)
        write_transaction(d.conn, actions.set_status, first, ConversationStatus.PENDING, "anna")
        assert d.arrive(at=T0 + 1)[1].assignee == expected


def test_skills_language_detected_labels_and_queue_skills(desk) -> None:
    d = desk(routing={"skills": ["ru", "en", "vip"]}, queues=[{"name": "VIP", "labels": ["vip"], "skills": ["vip"]}])
    d.operator("anna", 5, skills=["en"])
    d.operator("boris", 5, skills=["ru"])
    _, ru = d.arrive("Здравствуйте, где мой заказ? Уже неделя прошла")
    _, en = d.arrive("Hello, where is my order? It has been a week", at=T0 + 1)
    assert (ru.assignee, en.assignee) == ("boris", "anna")
    vip, decision = d.arrive("Hello, where is my order? It has been a week", at=T0 + 2, labels=("vip",))
    assert decision.queue == "VIP" and decision.assignee is None
    assert decision.reason == "waits in queue VIP: nobody online has the skills en, vip"
    write_transaction(d.conn, db.update_operator, "anna", actor="admin", now=T0 + 5, skills=["en", "vip"])
    [served] = write_transaction(d.conn, d.router.drain, T0 + 5)
    assert served.conversation_id == vip and served.assignee == "anna"


def test_a_returning_customer_goes_back_to_their_operator(desk) -> None:
    d = desk()
    d.operator("anna", 5)
    d.operator("boris", 5)
    first, decision = d.arrive(address="7001", at=T0)
    assert decision.assignee == "anna"
    d.resolve(first, T0 + 60)
    d.arrive(at=T0 + 70)  # someone else takes boris's turn
    again, decision = d.arrive("one more thing", address="7001", at=T0 + 3600)
    assert again != first and decision.assignee == "anna"
    assert decision.reason == "returning customer: back to anna, who handled them 1 h ago (0/5)"


def test_return_timer_in_business_minutes_fires_once(desk, tmp_path: Path) -> None:
    d = desk(routing={"return_minutes": 10}, calendars=[{"name": "default", "hours": "Mon-Sun 00:00-24:00"}])
    d.operator("anna", 5)
    d.operator("boris", 5)
    conversation, decision = d.arrive(at=T0)
    assert decision.assignee == "anna"
    [row] = timers.scheduled(d.conn)
    assert (row.kind, row.conversation_id, row.due_at) == ("routing.return", conversation, T0 + 600)

    async def fire(now: float) -> int:
        store = await Store.open(d.path)
        try:
            return await Scheduler(store, {"routing.return": d.router.fire}).fire_due(now)
        finally:
            await store.close()

    import asyncio

    assert asyncio.run(fire(T0 + 599)) == 0
    assert asyncio.run(fire(T0 + 601)) == 1
    # Back in the queue and on to the next operator, not to anna again.
    assert d.assignee(conversation) == "boris"
    reasons = [json.loads(p)["reason"] for (p,) in d.conn.execute("SELECT payload FROM events WHERE kind = 'routing.returned'")]
    assert reasons == ["anna did not answer within 10 business minutes"]
    # boris's own timer is new; a second run at the same moment fires nothing more (a restart).
    assert asyncio.run(fire(T0 + 601)) == 0
    # boris answers: his timer comes due but does nothing.
    write_transaction(d.conn, actions.queue_reply, conversation, "on it", "boris", now=T0 + 700)
    assert asyncio.run(fire(T0 + 1300)) == 1
    assert d.assignee(conversation) == "boris"


def test_return_timer_counts_business_time_only(desk) -> None:
    d = desk(routing={"return_minutes": 30}, calendars=[{"name": "default", "hours": "Mon-Fri 09:00-18:00", "timezone": "UTC"}])
    d.operator("anna", 5)
    friday = 1_795_801_500.0  # Fri 27 Nov 2026 17:45 UTC
    d.arrive(at=friday)
    [row] = timers.scheduled(d.conn)
    assert row.due_at == 1_796_030_100.0  # Mon 30 Nov 2026 09:15 UTC: 15 min Friday + 15 min Monday


def test_offline_grace_returns_unanswered_conversations_only(desk) -> None:
    d = desk(routing={"offline_grace_minutes": 5})
    d.operator("anna", 5)
    answered, _ = d.arrive(at=T0)
    unanswered, _ = d.arrive(at=T0 + 1)
    write_transaction(d.conn, actions.queue_reply, answered, "hi", "anna", now=T0 + 2)
    d.operator("boris", 5, status="offline")
    d.status("boris", "online", T0 + 3)
    d.status("anna", "offline", T0 + 10)
    # A dropped connection that comes back within the grace loses nothing.
    d.status("anna", "online", T0 + 100)
    assert timers.scheduled(d.conn) == []
    d.status("anna", "offline", T0 + 200)
    [row] = timers.scheduled(d.conn)
    assert row.due_at == T0 + 500
    write_transaction(
        d.conn,
        lambda conn: [d.router.fire(conn, r, T0 + 500) for r in [timers.take_due(conn, T0 + 500, ["routing.offline_grace"])]],
    )
    assert d.assignee(answered) == "anna" and d.assignee(unanswered) == "boris"


def test_a_dead_window_is_detected_and_marks_the_operator_offline(desk) -> None:
    d = desk(routing={"heartbeat_seconds": 1})
    d.operator("anna", 5, status="offline")
    d.operator("boris", 5, status="offline")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    import socket

    host = socket.gethostname()
    write_transaction(d.conn, db.window_heartbeat, "anna", "w-anna", gone.pid, host, T0)
    write_transaction(d.conn, db.window_heartbeat, "boris", "w-boris", 1, "elsewhere", T0)
    d.status("anna", "online", T0)
    d.status("boris", "online", T0)
    # boris's heartbeat is fresh (another host: only its age tells); anna's process is gone.
    assert write_transaction(d.conn, _mark_dead, d.router, T0 + 1, host) == ["anna"]
    assert write_transaction(d.conn, _mark_dead, d.router, T0 + 10, host) == ["boris"]
    assert write_transaction(d.conn, db.windows) == []  # the dead windows' slots are gone
    reasons = [
        json.loads(p)["reason"]
        for (p,) in d.conn.execute("SELECT payload FROM events WHERE kind = 'operator.status' ORDER BY id DESC LIMIT 2")
    ]
    assert reasons[1] == f"their window (pid {gone.pid}) has gone"
    assert reasons[0].startswith("their window (pid 1 on elsewhere) sent no heartbeat for 10 s")


def test_two_windows_of_one_operator_have_a_slot_each(desk) -> None:
    import socket

    d = desk(routing={"heartbeat_seconds": 1})
    d.operator("anna", 5, status="offline")
    host = socket.gethostname()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_transaction(d.conn, db.set_own_status, "anna", "online", "window one", "w1", alive.pid, host, T0)
        write_transaction(d.conn, db.set_own_status, "anna", "online", "window two", "w2", gone.pid, host, T0)
        assert [w.window for w in write_transaction(d.conn, db.windows)] == ["w1", "w2"]
        # Closing one window leaves her online while the other lives.
        assert write_transaction(d.conn, db.close_own_window, "anna", "w1", "closed", T0 + 1) == "online"
        assert d.conn.execute("SELECT status FROM operators WHERE login = 'anna'").fetchone()[0] == "online"
        write_transaction(d.conn, db.window_heartbeat, "anna", "w1", alive.pid, host, T0 + 1)  # opened again
        # One window dies: the other still beats, so she stays online.
        assert write_transaction(d.conn, _mark_dead, d.router, T0 + 2, host) == []
        assert [w.window for w in write_transaction(d.conn, db.windows)] == ["w1"]
        assert d.conn.execute("SELECT status FROM operators WHERE login = 'anna'").fetchone()[0] == "online"
        # The last one closes: offline, and the grace period begins in the core.
        assert write_transaction(d.conn, db.close_own_window, "anna", "w1", "closed", T0 + 3) == "offline"
    finally:
        alive.kill()
        alive.wait()
    write_transaction(d.conn, d.router.after_status, "anna", T0 + 3.5)
    rows = [r for r in write_transaction(d.conn, timers.scheduled) if r.kind == "routing.offline_grace"]
    assert [(r.subject, r.due_at) for r in rows] == [("anna", T0 + 3 + 5 * 60)]
    # A window that is not an operator's keeps nothing.
    assert write_transaction(d.conn, db.set_own_status, "nobody", "online", "", "w9", 1, host, T0) == ""


def test_bad_routing_settings_are_refused_in_words() -> None:
    with pytest.raises(RoutingSettingsError, match="policy must be one of manual, round_robin, least_loaded"):
        parse_routing({}, [{"name": "x", "policy": "random"}], [])
    with pytest.raises(RoutingSettingsError, match="calendar 'night' is not defined"):
        parse_routing({}, [{"name": "x", "calendar": "night"}], [])
    with pytest.raises(RoutingSettingsError, match="unknown key"):
        parse_routing({"capcity": 3}, [], [])
    with pytest.raises(RoutingSettingsError, match="position_text may use"):
        parse_routing({"position_text": "{place}"}, [], [])


def test_position_and_wait_are_told_on_chat_channels(desk) -> None:
    d = desk(routing={"position_text": "You are number {position} in the queue ({queue}), about {wait} min."})
    d.operator("anna", 1)
    d.arrive(at=T0)
    waiting, decision = d.arrive(at=T0 + 1)
    assert decision.assignee is None
    body, author, state = d.conn.execute(
        "SELECT body, author, state FROM messages WHERE conversation_id = ? AND direction = 'out'", (waiting,)
    ).fetchone()
    assert (body, author, state) == ("You are number 1 in the queue (default), about 1 min.", "routing", "queued")
    # The notice is no first response: the customer still waits for a person.
    assert tuple(
        d.conn.execute(
            "SELECT first_response_at, waiting_since IS NOT NULL FROM conversations WHERE id = ?", (waiting,)
        ).fetchone()
    ) == (None, 1)
    _, mail = d.arrive(kind="email", at=T0 + 2)
    assert d.conn.execute("SELECT count(*) FROM messages WHERE direction = 'out' AND author = 'routing'").fetchone()[0] == 1


def test_operator_set_from_the_command_line(tmp_path: Path) -> None:
    db_path = tmp_path / "o.db"
    binary = Path(sys.executable).with_name("omniconsole")
    run = lambda *args: subprocess.run(  # noqa: E731
        [str(binary), *args, "--db", str(db_path)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=repo_root(),
        timeout=60,
    )
    import getpass

    me = getpass.getuser()
    assert run("operator", "add", me, "--admin").returncode == 0
    assert run("operator", "add", "anna").returncode == 0
    done = run("operator", "set", "anna", "--status", "online", "--capacity", "4", "--skills", "ru,en,VIP", "--teams", "a,b")
    assert done.returncode == 0, done.stderr
    assert "anna: online, capacity 4, skills en, ru, vip, teams a, b" in done.stdout
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT status, capacity, skills, teams FROM operators WHERE login = 'anna'").fetchone() == (
        "online",
        4,
        '["en", "ru", "vip"]',
        '["a", "b"]',
    )
    bad = run("operator", "set", "anna", "--status", "busy")
    assert bad.returncode != 0 and "status must be one of online, away, offline" in bad.stderr
    listed = run("operator", "list")
    assert "online" in listed.stdout and "0/4" in listed.stdout


def test_a_failing_schedule_row_is_dropped_with_its_reason_and_holds_up_nothing(desk) -> None:
    d = desk()
    write_transaction(d.conn, timers.schedule, "test.broken", T0, T0, subject="a")
    write_transaction(d.conn, timers.schedule, "test.fine", T0 + 1, T0, subject="b")
    done: list[str] = []

    def broken(conn, row, now):
        raise ValueError("the rule it belonged to is gone")

    def fine(conn, row, now):
        done.append(row.subject)

    import asyncio

    async def fire() -> int:
        store = await Store.open(d.path)
        try:
            return await Scheduler(store, {"test.broken": broken, "test.fine": fine}).fire_due(T0 + 5)
        finally:
            await store.close()

    assert asyncio.run(fire()) == 2
    assert done == ["b"] and timers.scheduled(d.conn) == []
    payload = json.loads(d.conn.execute("SELECT payload FROM events WHERE kind = 'schedule.failed'").fetchone()[0])
    assert payload["kind"] == "test.broken" and payload["reason"] == "ValueError: the rule it belonged to is gone"


async def test_imports_never_enter_the_pipeline_while_the_core_routes(tmp_path: Path) -> None:
    """The demo's backfill (an import) runs while a core with routing runs: nothing is queued
    or assigned, though an operator is online with room."""
    import asyncio
    import dataclasses

    from omniconsole.config import Settings
    from omniconsole.core.demo import build_demo_history
    from omniconsole.core.hub import Hub
    from omniconsole.routing.service import core_extensions, set_operator
    from tests.rig import FAST

    settings = Settings(database=tmp_path / "i.db", data_dir=tmp_path / "data")
    store = await Store.open(settings.database)
    try:
        await store.add_operator("anna", "anna", OperatorRole.AGENT)
        await set_operator(store, settings, "anna", actor="admin", status="online", capacity=50)
        core = Hub(settings, store, timing=FAST, extensions=core_extensions(settings))
        task = asyncio.create_task(core.run())
        try:
            await asyncio.wait_for(core.holding_lease.wait(), 10)
            from omniconsole.core.demo import demo_settings

            backfill = dataclasses.replace(demo_settings(tmp_path / "data"), database=settings.database)
            assert await build_demo_history(store, backfill, conversations=20, admin="admin") > 0
            await asyncio.sleep(1.0)  # the routing follower has seen the import's events
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        counts = await store.db.run(
            lambda conn: conn.execute(
                "SELECT count(*), count(queue) FROM conversations WHERE status = 'open' AND assignee IS NULL"
            ).fetchone()
        )
        assert counts[0] >= 1 and counts[1] == 0  # unassigned open history stays where the import left it
        assert (
            await store.db.run(
                lambda conn: conn.execute(
                    "SELECT count(*) FROM events WHERE actor = 'routing' OR kind LIKE 'routing.%'"
                ).fetchone()[0]
            )
            == 0
        )
    finally:
        await store.close()


def test_a_manual_assignment_stops_the_return_timer(desk) -> None:
    d = desk(routing={"return_minutes": 10})
    d.operator("anna", 5)
    conversation, decision = d.arrive(at=T0)
    assert decision.assignee == "anna"
    write_transaction(d.conn, actions.assign, conversation, "anna", "boss", T0 + 60)  # the supervisor confirms it
    row = write_transaction(d.conn, timers.take_due, T0 + 601, ["routing.return"])
    assert write_transaction(d.conn, d.router.fire, row, T0 + 601) == []
    assert d.assignee(conversation) == "anna"
