"""SLA clocks (issue #19) on a real SQLite store: business-time due times (overnight, weekend,
holiday, DST), each target met, breached and paused, a priority change moving the due time,
warnings and escalation steps recorded once, imports without clocks, the settings' one-line
errors, and a real core stopped and restarted mid-way that keeps due times and fires nothing
twice."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from omniconsole.core.ingest import Ingestor
from omniconsole.models import ConversationStatus, IdentityKind, OperatorRole
from omniconsole.routing.settings import parse_routing
from omniconsole.routing.sla.engine import DUE, Sla
from omniconsole.routing.sla.settings import SlaSettingsError, parse_sla
from omniconsole.store import actions, history
from omniconsole.store import schedule as timers
from omniconsole.store import sla as sla_db
from omniconsole.store.database import connect, write_transaction
from tests.conftest import inbound

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = {"name": "office", "timezone": "Europe/Moscow", "hours": "Mon-Fri 09:00-18:00", "closed": ["2027-01-18"]}


def at(zone: ZoneInfo, *parts: int) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()


T0 = at(MSK, 2027, 1, 13, 11, 0)  # a Wednesday, 11:00 in Moscow


class Desk:
    """A store, a channel and SLA clocks for `policies`; sync, on one connection."""

    def __init__(self, path: Path, policies: list[dict], calendars: list[dict] | None = None):
        self.conn = connect(path)
        routing = parse_routing({}, [], calendars if calendars is not None else [OFFICE])
        self.sla = Sla(parse_sla(policies, routing.calendars))
        self.ingestor = Ingestor.__new__(Ingestor)
        self.ingestor.default_region = "RU"
        self.channel = write_transaction(self.conn, actions.ensure_channel, "telegram", "telegram")
        self.n = 0

    def write(self, now: float, address: str = "5001", *, pipeline: bool = True) -> int:
        """The customer writes at `now`; the pipeline step runs (unless an import)."""
        self.n += 1
        record = self.ingestor.prepare(
            inbound(f"m{self.n}", "where is my order?", kind=IdentityKind.TELEGRAM, address=address, at=now)
        )
        result = write_transaction(self.conn, history.ingest_batch, self.channel, "telegram", [record], None)
        conversation = result.receipts[0][2]
        if pipeline:
            write_transaction(self.conn, self.sla.step, conversation, now)
        return conversation

    def act(self, conversation: int, when: float, fn, *args, **kwargs):
        """An operator's action at `when`, then the follower's re-evaluation."""
        out = write_transaction(self.conn, lambda conn: fn(conn, conversation, *args, **kwargs))
        write_transaction(self.conn, self.sla.evaluate, conversation, when)
        return out

    def reply(self, conversation: int, now: float, author: str = "anna") -> None:
        self.act(conversation, now, actions.queue_reply, "on it", author, now=now)

    def status(self, conversation: int, now: float, status: ConversationStatus, until: float | None = None) -> None:
        self.act(conversation, now, actions.set_status, status, "anna", snoozed_until=until, now=now)

    def fire(self, now: float) -> int:
        """What the scheduler does at `now`: every due `sla.due` row, one transaction each."""
        fired = 0
        while True:

            def one(conn):
                row = timers.take_due(conn, now, [DUE])
                if row is not None:
                    self.sla.fire(conn, row, now)
                return row

            if write_transaction(self.conn, one) is None:
                return fired
            fired += 1

    def target(self, conversation: int, name: str) -> sla_db.TargetRow:
        return sla_db.targets(self.conn, conversation)[name]

    def events(self, kind_prefix: str = "sla.") -> list[tuple[str, dict]]:
        return [
            (kind, json.loads(payload or "{}"))
            for kind, payload in self.conn.execute(
                "SELECT kind, payload FROM events WHERE kind LIKE ? ORDER BY id", (kind_prefix + "%",)
            )
        ]

    def nearest(self, conversation: int) -> tuple[float | None, int]:
        return tuple(
            self.conn.execute("SELECT due_at, stage FROM sla_conversations WHERE conversation_id = ?", (conversation,)).fetchone()
        )


@pytest.fixture
def desk(tmp_path: Path):
    made: list[Desk] = []

    def make(policies: list[dict], calendars: list[dict] | None = None) -> Desk:
        made.append(Desk(tmp_path / f"desk{len(made)}.db", policies, calendars))
        return made[-1]

    yield make
    for d in made:
        d.conn.close()


# ---- business time through due times ---------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "minutes", "due"),
    [
        # overnight: Wednesday 17:50 + 30 business minutes = Thursday 09:20
        (at(MSK, 2027, 1, 13, 17, 50), 30, at(MSK, 2027, 1, 14, 9, 20)),
        # the weekend and a holiday: Friday 17:30 + 60 min; Monday 18 January is closed
        (at(MSK, 2027, 1, 15, 17, 30), 60, at(MSK, 2027, 1, 19, 9, 30)),
        # written at night: the clock starts at opening time
        (at(MSK, 2027, 1, 13, 3, 0), 45, at(MSK, 2027, 1, 13, 9, 45)),
    ],
)
def test_due_times_count_business_time_of_the_calendar(desk, written: float, minutes: int, due: float) -> None:
    d = desk([{"name": "office hours", "calendar": "office", "first_response_minutes": minutes}])
    conversation = d.write(written)
    assert d.target(conversation, "first_response").due_at == due
    assert d.nearest(conversation) == (due, 0)
    [row] = timers.scheduled(d.conn)
    # The scheduler wakes at the first warning share (75%), not at the due time.
    assert row.kind == "sla.due" and row.subject == "first_response" and written < row.due_at < due


def test_due_time_across_a_dst_change_follows_the_wall_clock(desk) -> None:
    berlin = {"name": "berlin", "timezone": "Europe/Berlin", "hours": "Mon-Fri 09:00-18:00"}
    d = desk([{"name": "b", "calendar": "berlin", "first_response_minutes": 120}], calendars=[berlin])
    # Friday 26 March 2027 17:00 CET; clocks go forward on Sunday 28 March.
    conversation = d.write(at(BERLIN, 2027, 3, 26, 17, 0))
    due = d.target(conversation, "first_response").due_at
    assert due == at(BERLIN, 2027, 3, 29, 10, 0)  # 10:00 CEST, 08:00 UTC
    assert datetime.fromtimestamp(due, BERLIN).utcoffset().total_seconds() == 7200


def test_wall_clock_policy_counts_every_second(desk) -> None:
    d = desk([{"name": "always", "first_response_minutes": 30}])
    night = at(MSK, 2027, 1, 16, 2, 0)  # a Saturday night
    conversation = d.write(night)
    assert d.target(conversation, "first_response").due_at == night + 1800


# ---- targets met, breached, paused -----------------------------------------------------------


def test_first_response_met_by_a_human_reply_only(desk) -> None:
    d = desk([{"name": "p", "first_response_minutes": 30, "next_response_minutes": 60}])
    conversation = d.write(T0)
    # A note is no reply: the clock still runs.
    d.act(conversation, T0 + 60, actions.add_note, "looking", "anna", now=T0 + 60)
    assert d.target(conversation, "first_response").state == "running"
    d.reply(conversation, T0 + 600)
    first = d.target(conversation, "first_response")
    assert first.state == "met" and d.nearest(conversation) == (None, 0)
    assert timers.scheduled(d.conn) == []
    # The customer writes again: a next-response clock from that message.
    d.write(T0 + 900)
    nxt = d.target(conversation, "next_response")
    assert (nxt.state, nxt.started_at, nxt.due_at) == ("running", T0 + 900, T0 + 900 + 3600)
    d.reply(conversation, T0 + 1000)
    assert d.target(conversation, "next_response").state == "met"
    assert d.fire(T0 + 99_999) == 0 and d.events("sla.warning") == [] and d.events("sla.breach") == []


def test_breach_with_warnings_and_the_escalation_ladder_each_once(desk) -> None:
    d = desk(
        [
            {
                "name": "gold",
                "first_response_minutes": 40,
                "escalation": [
                    {"at": 0.75, "do": ["notify_assignee"]},
                    {"at": 1.0, "do": ["notify_assignee", "return_to_queue", "raise_priority", "notify_admins"]},
                ],
            }
        ]
    )
    write_transaction(d.conn, actions.add_operator, "anna", "anna", OperatorRole.AGENT)
    write_transaction(d.conn, actions.add_operator, "root", "root", OperatorRole.ADMIN)
    conversation = d.write(T0)
    write_transaction(d.conn, actions.assign, conversation, "anna", "boss", now=T0 + 1)
    assert d.fire(T0 + 29 * 60) == 0
    assert d.fire(T0 + 30 * 60) == 1  # 75%
    assert d.nearest(conversation) == (T0 + 2400, 1)
    assert d.fire(T0 + 36 * 60) == 1  # 90%
    assert d.fire(T0 + 40 * 60) == 1  # 100%
    assert d.fire(T0 + 50 * 60) == 0  # nothing left to wake for
    kinds = [(k, p.get("share"), p.get("step")) for k, p in d.events()]
    assert kinds == [
        ("sla.policy", None, None),
        ("sla.warning", 0.75, None),
        ("sla.escalated", 0.75, "notify_assignee"),
        ("sla.warning", 0.9, None),
        ("sla.breach", 1.0, None),
        ("sla.escalated", 1.0, "notify_assignee"),
        ("sla.escalated", 1.0, "return_to_queue"),
        ("sla.escalated", 1.0, "raise_priority"),
        ("sla.escalated", 1.0, "notify_admins"),
    ]
    breach = d.events("sla.breach")[0][1]
    assert breach == {"policy": "gold", "target": "first_response", "share": 1.0, "due": T0 + 2400, "started_at": T0}
    notified = [p["to"] for k, p in d.events("sla.escalated") if p["step"].startswith("notify")]
    assert notified == [["anna"], ["anna"], ["root"]]
    assignee, priority = d.conn.execute("SELECT assignee, priority FROM conversations WHERE id = ?", (conversation,)).fetchone()
    assert (assignee, priority) == (None, 1)
    assert d.nearest(conversation) == (T0 + 2400, 2)  # breached and still waiting: red, "-10m"
    # Re-evaluating (the follower sees the priority change, a restart) records nothing again.
    before = len(d.events())
    for _ in range(3):
        write_transaction(d.conn, d.sla.evaluate, conversation, T0 + 60 * 60)
    assert len([k for k, _ in d.events()[before:] if k != "sla.policy"]) == 0
    # The timeline shows the SLA lines.
    lines = [r[0] for r in d.conn.execute("SELECT body FROM messages WHERE direction = 'event' AND author = 'sla' ORDER BY id")]
    assert "SLA gold: first response breached (target 40 min)" in lines
    assert "SLA gold: first response at 75% of 40 min" in lines
    # The late reply ends the clock: breached, not counting down any more.
    d.reply(conversation, T0 + 70 * 60)
    assert d.target(conversation, "first_response").state == "breached" and d.nearest(conversation) == (None, 0)


def test_snooze_and_pending_pause_the_clock_and_move_the_due_time(desk) -> None:
    d = desk([{"name": "p", "first_response_minutes": 60, "resolution_minutes": 240}])
    conversation = d.write(T0)
    d.status(conversation, T0 + 600, ConversationStatus.SNOOZED, until=T0 + 7200)
    first = d.target(conversation, "first_response")
    assert (first.state, first.due_at) == ("paused", None) and d.nearest(conversation) == (None, 0)
    assert [r.kind for r in timers.scheduled(d.conn)] == ["snooze.end"]  # no SLA row while paused: only the snooze's end
    assert d.fire(T0 + 3 * 3600) == 0
    d.status(conversation, T0 + 3600, ConversationStatus.OPEN)  # woken by hand after 50 min paused
    assert d.target(conversation, "first_response").due_at == T0 + 3600 + 3000
    assert d.target(conversation, "resolution").due_at == T0 + 4 * 3600 + 3000
    # Pending (waiting on the customer) pauses too; a customer message ends it.
    d.status(conversation, T0 + 4000, ConversationStatus.PENDING)
    d.write(T0 + 5000)
    assert d.target(conversation, "first_response").due_at == T0 + 3600 + 3000 + 1000


def test_pause_can_be_configured_off(desk) -> None:
    d = desk([{"name": "p", "first_response_minutes": 60, "pause_on": ["pending"]}])
    conversation = d.write(T0)
    d.status(conversation, T0 + 600, ConversationStatus.SNOOZED, until=T0 + 7200)
    assert d.target(conversation, "first_response").due_at == T0 + 3600  # snooze does not pause this policy


def test_resolution_stops_on_resolve_and_continues_on_reopen(desk) -> None:
    d = desk([{"name": "p", "resolution_minutes": 120}])
    conversation = d.write(T0)
    d.status(conversation, T0 + 1800, ConversationStatus.RESOLVED)
    assert d.target(conversation, "resolution").state == "met"
    d.status(conversation, T0 + 7200, ConversationStatus.OPEN)
    # 30 min used before; the resolved hour and a half does not count.
    assert d.target(conversation, "resolution").due_at == T0 + 7200 + 5400
    d.status(conversation, T0 + 7200 + 6000, ConversationStatus.RESOLVED)
    assert d.target(conversation, "resolution").state == "breached"
    assert [p["target"] for _, p in d.events("sla.breach")] == ["resolution"]


def test_periodic_update_after_each_human_reply(desk) -> None:
    d = desk([{"name": "p", "update_minutes": 60, "warn_at": []}])
    conversation = d.write(T0)
    assert "update" not in sla_db.targets(d.conn, conversation)
    d.reply(conversation, T0 + 100)
    assert d.target(conversation, "update").due_at == T0 + 100 + 3600
    d.reply(conversation, T0 + 2000)
    assert d.target(conversation, "update").due_at == T0 + 2000 + 3600
    assert d.fire(T0 + 2000 + 3600) == 1 and [p["target"] for _, p in d.events("sla.breach")] == ["update"]


def test_a_priority_change_chooses_another_policy_and_moves_the_due_time(desk) -> None:
    d = desk(
        [
            {"name": "urgent", "priorities": ["urgent"], "first_response_minutes": 10},
            {"name": "vip", "labels": ["vip"], "first_response_minutes": 20},
            {"name": "normal", "first_response_minutes": 60},
        ]
    )
    conversation = d.write(T0)
    assert d.target(conversation, "first_response").due_at == T0 + 3600
    d.act(conversation, T0 + 60, actions.set_conversation_labels, ["vip"], "anna")
    assert d.target(conversation, "first_response").due_at == T0 + 1200
    d.act(conversation, T0 + 120, actions.set_priority, 2, "anna")
    row = d.target(conversation, "first_response")
    assert (row.policy, row.due_at) == ("urgent", T0 + 600)
    [scheduled] = timers.scheduled(d.conn)
    assert scheduled.due_at == T0 + 450  # 75% of the new target
    policies = [p["policy"] for _, p in d.events("sla.policy")]
    assert policies == ["normal", "vip", "urgent"]


def test_policy_conditions_channel_queue_and_attribute(desk) -> None:
    d = desk(
        [
            {"name": "mail", "channels": ["email"], "first_response_minutes": 5},
            {"name": "queue", "queues": ["VIP"], "first_response_minutes": 6},
            {"name": "gold", "attributes": {"tier": "gold"}, "first_response_minutes": 7},
        ]
    )
    conversation = d.write(T0)
    assert sla_db.targets(d.conn, conversation) == {}  # telegram, no queue, no attribute: none applies
    customer = d.conn.execute("SELECT customer_id FROM conversations WHERE id = ?", (conversation,)).fetchone()[0]
    d.conn.execute('UPDATE customers SET attributes = \'{"tier": "gold"}\' WHERE id = ?', (customer,))
    write_transaction(d.conn, d.sla.evaluate, conversation, T0 + 1)
    assert d.target(conversation, "first_response").policy == "gold"
    d.conn.execute("UPDATE conversations SET queue = 'VIP' WHERE id = ?", (conversation,))
    write_transaction(d.conn, d.sla.evaluate, conversation, T0 + 2)
    assert d.target(conversation, "first_response").policy == "queue"


def test_imported_history_gets_no_clocks(desk) -> None:
    d = desk([{"name": "p", "first_response_minutes": 30}])
    imported = d.write(T0 - 86400, address="7001", pipeline=False)
    write_transaction(d.conn, d.sla.evaluate, imported, T0)  # the follower sees its events
    assert sla_db.armed(d.conn, imported) is None and timers.scheduled(d.conn) == []
    # A live message later starts the clock from that message, not from the imported past.
    d.write(T0, address="7001")
    assert d.target(imported, "first_response").due_at == T0 + 1800
    assert d.events("sla.breach") == []


def test_the_bot_holding_a_conversation_has_no_first_response_clock_until_handoff(desk) -> None:
    d = desk([{"name": "p", "first_response_minutes": 30}])
    conversation = d.write(T0)
    customer = d.conn.execute("SELECT customer_id FROM conversations WHERE id = ?", (conversation,)).fetchone()[0]
    d.conn.execute(
        "INSERT INTO messages (conversation_id, customer_id, direction, author, body, created_at, flags)"
        " VALUES (?, ?, 'out', 'bot', 'answer', ?, 'bot')",
        (conversation, customer, T0 + 1),
    )
    write_transaction(d.conn, d.sla.evaluate, conversation, T0 + 2)
    assert "first_response" not in sla_db.targets(d.conn, conversation)
    from omniconsole.store.events import add_event

    write_transaction(d.conn, lambda c: add_event(c, "bot.handoff", conversation_id=conversation, at=T0 + 300))
    write_transaction(d.conn, d.sla.evaluate, conversation, T0 + 301)
    assert d.target(conversation, "first_response").due_at == T0 + 300 + 1800


# ---- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ([{"first_response_minutes": 5}], "[[sla]] #1: every policy needs a name"),
        ([{"name": "vip"}], "SLA policy 'vip': give at least one target"),
        ([{"name": "vip", "first_response_minutes": -1}], "SLA policy 'vip': first_response_minutes must be"),
        ([{"name": "vip", "first_response_minutes": 5, "calendar": "nope"}], "SLA policy 'vip': calendar 'nope' is not defined"),
        ([{"name": "vip", "first_response_minutes": 5, "priorities": ["asap"]}], "SLA policy 'vip': priorities must name"),
        ([{"name": "vip", "first_response_minutes": 5, "pause_on": ["lunch"]}], "SLA policy 'vip': pause_on may name"),
        ([{"name": "vip", "first_response_minutes": 5, "warn_at": [75]}], "SLA policy 'vip': warn_at must be shares"),
        (
            [{"name": "vip", "first_response_minutes": 5, "escalation": [{"at": 0.5, "do": ["notify_admins"]}]}],
            "SLA policy 'vip': escalation at 0.5 is neither",
        ),
        (
            [{"name": "vip", "first_response_minutes": 5, "escalation": [{"at": 1.0, "do": ["page_ceo"]}]}],
            "SLA policy 'vip': escalation step 'page_ceo' is not one of",
        ),
        ([{"name": "vip", "first_response_minutes": 5, "colour": "red"}], "SLA policy 'vip': unknown key(s) colour"),
        (
            [{"name": "a", "first_response_minutes": 5}, {"name": "a", "first_response_minutes": 6}],
            "SLA policy 'a' is defined twice",
        ),
    ],
)
def test_bad_policies_are_refused_in_one_line_naming_the_policy(tables, message: str) -> None:
    calendars = parse_routing({}, [], [OFFICE]).calendars
    with pytest.raises(SlaSettingsError) as caught:
        parse_sla(tables, calendars)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_the_config_file_reads_sla_policies(tmp_path: Path) -> None:
    from omniconsole.config import load_settings
    from omniconsole.errors import UsageError

    config = tmp_path / "c.toml"
    config.write_text(
        f'database = "{tmp_path}/x.db"\n[[calendars]]\nname = "office"\nhours = "Mon-Fri 09:00-18:00"\n'
        '[[sla]]\nname = "VIP"\ncalendar = "office"\nlabels = ["vip"]\nfirst_response_minutes = 30\n'
        'escalation = [{ at = 1.0, do = ["raise_priority"] }]\n'
    )
    [policy] = load_settings(config).sla
    assert (policy.name, policy.calendar_name, policy.targets, policy.escalation) == (
        "VIP",
        "office",
        {"first_response": 1800.0},
        ((1.0, ("raise_priority",)),),
    )
    config.write_text(f'database = "{tmp_path}/x.db"\n[[sla]]\nname = "VIP"\n')
    with pytest.raises(UsageError, match="SLA policy 'VIP': give at least one target"):
        load_settings(config)


# ---- a real core, stopped and restarted mid-way ---------------------------------------------


async def test_a_core_restarted_mid_way_keeps_due_times_and_fires_nothing_twice(tmp_path: Path) -> None:
    """A real Hub runs the pipeline step, the scheduler and the follower; it is stopped after the
    warning and a second one takes over: the due time is the same, the breach fires once, the
    warning is not recorded again."""
    import dataclasses
    import time

    from omniconsole.config import Settings
    from omniconsole.core.hub import Hub
    from omniconsole.core.scheduler import run_pipeline
    from omniconsole.routing.service import core_extensions
    from omniconsole.store import Store
    from tests.rig import FAST

    settings = Settings(database=tmp_path / "r.db", data_dir=tmp_path / "data")
    # 2.4 s to the first response, a warning at half of it.
    settings = dataclasses.replace(
        settings, sla=parse_sla([{"name": "fast", "first_response_minutes": 0.04, "warn_at": [0.5]}], {})
    )
    store = await Store.open(settings.database)

    async def kinds() -> list[str]:
        return await store.db.run(
            lambda c: [r[0] for r in c.execute("SELECT kind FROM events WHERE kind LIKE 'sla.%' ORDER BY id")]
        )

    async def wait_for(kind: str, limit: float = 10.0) -> None:
        deadline = time.monotonic() + limit
        while kind not in await kinds():
            assert time.monotonic() < deadline, f"no {kind} within {limit} s: {await kinds()}"
            await asyncio.sleep(0.05)

    async def run_core() -> tuple[Hub, asyncio.Task]:
        core = Hub(settings, store, timing=FAST, extensions=core_extensions(settings))
        task = asyncio.create_task(core.run())
        async with asyncio.timeout(10):
            await core.holding_lease.wait()
        return core, task

    try:
        core, task = await run_core()
        ingestor = Ingestor.__new__(Ingestor)
        ingestor.default_region = "RU"
        channel = await store.db.write(actions.ensure_channel, "telegram", "telegram")
        written = time.time()
        record = ingestor.prepare(inbound("r1", "hello", at=written))
        result = await store.db.write(history.ingest_batch, channel, "telegram", [record], None)
        conversation = result.receipts[0][2]
        await run_pipeline(store, core.extensions, [conversation])  # what the core does after a batch
        core.scheduler.poke()
        due = (await store.db.run(sla_db.targets, conversation))["first_response"].due_at
        assert due == pytest.approx(written + 2.4, abs=0.01)
        await wait_for("sla.warning")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # Stopped between the warning and the breach: the breach's row waits in the schedule.
        [row] = await store.db.run(timers.scheduled)
        assert (row.kind, row.due_at) == (DUE, due)
        await asyncio.sleep(max(0.0, due - time.time()) + 0.5)  # the breach comes due while no core runs
        core, task = await run_core()
        try:
            await wait_for("sla.breach")
            await asyncio.sleep(1.0)  # the follower and the scheduler have had their turns
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        # No assignee and no admins: the default ladder has nobody to notify.
        assert await kinds() == ["sla.policy", "sla.warning", "sla.breach"]
        target = (await store.db.run(sla_db.targets, conversation))["first_response"]
        assert (target.state, target.due_at, target.fired) == ("breached", due, 1.0)
        assert await store.db.run(timers.scheduled) == []
    finally:
        await store.close()


def test_the_config_templates_sla_example_is_valid(tmp_path: Path) -> None:
    """The commented example in the config template, uncommented, is a policy that loads."""
    import tomllib

    from omniconsole.config import template

    text = template()
    block = text[text.index("# [[calendars]]") : text.index("# Automation rules and macros")]
    lines = [line[2:] for line in block.splitlines() if line.startswith("# ") and not line.startswith("# SLA policies")]
    raw = tomllib.loads("\n".join(lines))
    [policy] = parse_sla(raw["sla"], parse_routing({}, [], raw["calendars"]).calendars)
    assert policy.name == "VIP" and policy.calendar_name == "support" and policy.steps_at(1.0)[-1] == "notify_admins"


async def test_a_reply_made_while_no_core_ran_is_caught_up_at_start(tmp_path: Path) -> None:
    """The operator answered from the command line while the core was down: the starting core's
    follower reads the events since the clocks were last evaluated, so the first response is met
    and its breach row fires nothing."""
    import dataclasses
    import time

    from omniconsole.config import Settings
    from omniconsole.core.hub import Hub
    from omniconsole.routing.service import core_extensions
    from omniconsole.store import Store
    from tests.rig import FAST

    settings = dataclasses.replace(
        Settings(database=tmp_path / "c.db", data_dir=tmp_path / "data"),
        sla=parse_sla([{"name": "p", "first_response_minutes": 0.1, "warn_at": []}], {}),
    )
    sla = Sla(settings.sla)
    conn = connect(settings.database)
    ingestor = Ingestor.__new__(Ingestor)
    ingestor.default_region = "RU"
    channel = write_transaction(conn, actions.ensure_channel, "telegram", "telegram")
    written = time.time()
    result = write_transaction(
        conn, history.ingest_batch, channel, "telegram", [ingestor.prepare(inbound("c1", at=written))], None
    )
    conversation = result.receipts[0][2]
    write_transaction(conn, sla.step, conversation, written)
    write_transaction(conn, actions.queue_reply, conversation, "on it", "anna", now=written + 1)  # no core runs
    conn.close()
    store = await Store.open(settings.database)
    core = Hub(settings, store, timing=FAST, extensions=core_extensions(settings))
    task = asyncio.create_task(core.run())
    try:
        # Met well before its due moment: the follower caught up, not the breach row's firing.
        for _ in range(40):
            target = (await store.db.run(sla_db.targets, conversation))["first_response"]
            if target.state == "met":
                break
            await asyncio.sleep(0.05)
        assert target.state == "met" and time.time() < written + 5
        assert await store.db.run(timers.scheduled) == []
        kinds = await store.db.run(lambda c: [r[0] for r in c.execute("SELECT kind FROM events WHERE kind LIKE 'sla.%'")])
        assert kinds == ["sla.policy"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


def test_a_reopening_starts_a_new_first_response_and_resolution(desk) -> None:
    d = desk([{"name": "p", "first_response_minutes": 30, "resolution_minutes": 600, "pause_on": ["snoozed", "pending"]}])
    conversation = d.write(T0)
    d.status(conversation, T0 + 600, ConversationStatus.RESOLVED)  # resolved without a reply
    assert d.target(conversation, "first_response").state == "stopped"
    assert d.nearest(conversation) == (None, 0)
    d.status(conversation, T0 + 7200, ConversationStatus.OPEN)  # reopened, still unanswered
    first = d.target(conversation, "first_response")
    assert (first.state, first.started_at, first.due_at) == ("running", T0 + 7200, T0 + 7200 + 1800)
    # Without "resolved" in pause_on each issue's resolution is measured afresh.
    assert d.target(conversation, "resolution").started_at == first.started_at


def test_a_blocked_conversation_gets_no_warning_or_escalation_until_unblocked(desk) -> None:
    """Spam never waits (README "Spam"): the breach's ladder would have put it back in a
    queue. The unblock (an event the follower reads) gives it its clock back."""
    from omniconsole.routing.sla.engine import _touched
    from omniconsole.store import automation as automation_db
    from omniconsole.store import spam

    d = desk([{"name": "gold", "first_response_minutes": 40}])
    write_transaction(d.conn, actions.add_operator, "anna", "anna", OperatorRole.AGENT)
    write_transaction(d.conn, actions.add_operator, "root", "root", OperatorRole.ADMIN)
    conversation = d.write(T0)
    other = d.write(T0, address="5002")
    write_transaction(d.conn, actions.assign, conversation, "anna", "boss", now=T0 + 1)
    customer = d.conn.execute("SELECT customer_id FROM conversations WHERE id = ?", (conversation,)).fetchone()[0]
    mark = automation_db.last_event_id(d.conn)
    write_transaction(d.conn, lambda conn: spam.block(conn, customer, None, "anna", T0 + 60))
    assert _touched(automation_db.events_after(d.conn, mark)) == [conversation]
    write_transaction(d.conn, d.sla.evaluate, conversation, T0 + 60)
    assert d.nearest(conversation) == (None, 0)  # out of At risk
    assert d.fire(T0 + 45 * 60) == 1  # the other conversation's row only
    warned = {
        r[0]
        for r in d.conn.execute("SELECT conversation_id FROM events WHERE kind IN ('sla.warning', 'sla.breach', 'sla.escalated')")
    }
    assert warned == {other}
    row = d.conn.execute("SELECT assignee, status FROM conversations WHERE id = ?", (conversation,)).fetchone()
    assert tuple(row) == ("anna", "spam")  # not returned to a queue

    mark = automation_db.last_event_id(d.conn)
    write_transaction(d.conn, lambda conn: spam.unblock(conn, customer, "anna", T0 + 50 * 60))
    assert conversation in _touched(automation_db.events_after(d.conn, mark))
    write_transaction(d.conn, d.sla.evaluate, conversation, T0 + 50 * 60)
    assert d.nearest(conversation) == (T0 + 2400, 2)  # back in At risk, breached
    assert "sla.breach" in {r[0] for r in d.conn.execute("SELECT kind FROM events WHERE conversation_id = ?", (conversation,))}
