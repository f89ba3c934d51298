"""Every figure of METRICS.md on small hand-built histories, with the answers worked out here.

The history is written through the store's own functions (ingest, replies, notes, status
changes) with explicit times; a bot answer and a bot handoff are written the way the bot
branch writes them (an outbound message flagged `bot`, a `bot.handoff` event).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniconsole.analytics import figures as f
from omniconsole.analytics import report as rp
from omniconsole.models import ConversationStatus, InboxView
from omniconsole.store import actions, analytics, history, write_transaction
from omniconsole.store.database import connect
from omniconsole.store.events import add_event
from omniconsole.store.records import InboundRecord
from tests.conftest import repo_root, subprocess_env

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
UTC = UTC


class History:
    """A database and helpers to write a history at chosen times."""

    def __init__(self, path):
        self.conn = connect(path)
        self.channels: dict[str, int] = {}
        self.n = 0
        for login in ("alice", "bob"):
            write_transaction(self.conn, actions.add_operator, login)

    def channel(self, kind: str) -> int:
        if kind not in self.channels:
            self.channels[kind] = write_transaction(self.conn, actions.ensure_channel, kind, kind)
        return self.channels[kind]

    def customer_says(self, who: str, at: float, body: str = "hello", *, kind: str = "telegram", flags=frozenset()) -> int:
        self.n += 1
        address = who if kind != "email" else f"{who}@example.com"
        record = InboundRecord(
            external_id=f"m{self.n}", identity_kind=kind, address=address, body=body, sent_at=at, flags=frozenset(flags)
        )
        result = write_transaction(self.conn, history.ingest_batch, self.channel(kind), kind, [record], None)
        return result.receipts[0][2]

    def reply(self, cid: int, who: str, at: float) -> None:
        write_transaction(self.conn, actions.queue_reply, cid, "answer", who, now=at)

    def status(self, cid: int, status: ConversationStatus, at: float, who: str = "alice", until: float | None = None) -> None:
        write_transaction(self.conn, actions.set_status, cid, status, who, snoozed_until=until, now=at)

    def bot_answers(self, cid: int, at: float) -> None:
        def write(conn):
            customer = conn.execute("SELECT customer_id FROM conversations WHERE id = ?", (cid,)).fetchone()[0]
            conn.execute(
                "INSERT INTO messages (conversation_id, customer_id, direction, author, body, created_at, state, flags)"
                " VALUES (?, ?, 'out', 'bot', 'bot answer', ?, 'sent', 'bot')",
                (cid, customer, at),
            )

        write_transaction(self.conn, write)

    def handoff(self, cid: int, at: float) -> None:
        write_transaction(self.conn, lambda conn: add_event(conn, "bot.handoff", actor="bot", conversation_id=cid, at=at))

    def report(self, period=rp.Period(None, None), now: float = T0 + 10_000, by=None) -> dict:  # noqa: B008
        histories = analytics.report_histories(self.conn, period.start, period.end)
        sent = analytics.surveys_sent_between(self.conn, period.start, period.end)
        return rp.build_report(rp.facts_for(histories, now), period, now, by=by, tz=UTC, surveys_sent=sent)

    def facts(self, now: float = T0 + 10_000) -> list[f.Fact]:
        return rp.facts_for(analytics.report_histories(self.conn, None, None), now)


def build(h: History) -> dict[str, int]:
    """Six conversations whose figures are worked out in the comments."""
    c = {}
    # 1 (telegram, alice): FRT 100 from the first message (a note before does not answer),
    # an auto-reply that starts nothing, NRT 160 (run from +300 to +460), first resolution
    # at +500; reopened at +1000, a run from +1100 answered by bob at +1300 (NRT 200), full
    # resolution at +2000 (2000 s from the first message).
    c[1] = h.customer_says("ann", T0)
    h.customer_says("ann", T0 + 10, "more")
    write_transaction(h.conn, actions.assign, c[1], "alice", "alice", now=T0 + 50)
    write_transaction(h.conn, actions.add_note, c[1], "checking", "alice", now=T0 + 60)
    h.reply(c[1], "alice", T0 + 100)
    h.customer_says("ann", T0 + 200, "Out of office", flags={"auto_reply"})
    h.customer_says("ann", T0 + 300)
    h.customer_says("ann", T0 + 400)
    h.reply(c[1], "alice", T0 + 460)
    h.status(c[1], ConversationStatus.RESOLVED, T0 + 500)
    h.status(c[1], ConversationStatus.OPEN, T0 + 1000)
    h.customer_says("ann", T0 + 1100)
    h.reply(c[1], "bob", T0 + 1300)
    h.status(c[1], ConversationStatus.RESOLVED, T0 + 2000)
    # 2 (e-mail): the company wrote first (not a response); the customer answered at +50,
    # alice replied at +80: FRT 30. Open, last word ours: not unattended.
    c[2] = h.customer_says("bea", T0 - 5000, kind="email")  # an old conversation gives us a route
    h.status(c[2], ConversationStatus.RESOLVED, T0 - 4000)
    c[2] = _company_starts(h, "bea@example.com", T0)
    h.customer_says("bea", T0 + 50, kind="email")
    h.reply(c[2], "alice", T0 + 80)
    # 3 (telegram): the bot answered, handed off at +20; the customer wrote again at +50;
    # alice replied at +140: FRT 120 (from the handoff, the latest start before the reply).
    c[3] = h.customer_says("cid", T0)
    h.bot_answers(c[3], T0 + 5)
    h.handoff(c[3], T0 + 20)
    h.customer_says("cid", T0 + 50)
    h.reply(c[3], "alice", T0 + 140)
    # 4 (telegram): FRT 30; snoozed +40 to +1000 (woken), the customer wrote at +1200 and
    # waits: unattended now; that run has no reply yet (no NRT).
    c[4] = h.customer_says("dan", T0)
    h.reply(c[4], "alice", T0 + 30)
    h.status(c[4], ConversationStatus.SNOOZED, T0 + 40, until=T0 + 1000)
    write_transaction(h.conn, actions.wake_snoozed, T0 + 1000)
    h.customer_says("dan", T0 + 1200)
    # 5 (telegram): the bot answered and it was resolved at +60 without a person: contained,
    # resolution 60 credited to the bot.
    c[5] = h.customer_says("eve", T0)
    h.bot_answers(c[5], T0 + 5)
    h.status(c[5], ConversationStatus.RESOLVED, T0 + 60, who="bot")
    # 6 (telegram): FRT 20, snoozed 10 s (waiting on the customer) before its resolution at +40.
    c[6] = h.customer_says("fay", T0)
    h.reply(c[6], "alice", T0 + 20)
    h.status(c[6], ConversationStatus.PENDING, T0 + 25)
    h.status(c[6], ConversationStatus.OPEN, T0 + 35)
    h.status(c[6], ConversationStatus.RESOLVED, T0 + 40)
    return c


def _company_starts(h: History, address: str, at: float) -> int:
    """A conversation the company started: alice's message before any customer message."""

    def write(conn):
        customer, identity = conn.execute("SELECT customer_id, id FROM identities WHERE address = ?", (address,)).fetchone()
        cid = conn.execute(
            "INSERT INTO conversations (customer_id, status, opened_at, last_activity_at) VALUES (?, 'open', ?, ?) RETURNING id",
            (customer, at, at),
        ).fetchone()[0]
        actions.queue_reply(
            conn, cid, "Your order is ready", "alice", identity_id=identity, channel_id=h.channel("email"), now=at
        )
        return cid

    return write_transaction(h.conn, write)


@pytest.fixture
def h(tmp_path):
    history_ = History(tmp_path / "figures.db")
    yield history_
    history_.conn.close()


def test_every_figure_on_a_worked_history(h):
    build(h)
    r = h.report()
    # Opened: six conversations of the build plus the old e-mail one.
    assert r["conversations"] == 7
    # Resolved now: 1, 5, 6 and the old e-mail conversation.
    assert r["resolved"] == 4
    # FRT: 100, 30, 120, 30, 20 -> median 30, p90 (nearest rank, 5 of 5) 120, mean 60.
    assert (r["frt_median_s"], r["frt_p90_s"], r["frt_mean_s"], r["frt_responses"]) == (30, 120, 60, 5)
    # NRT: 160 and 200 (conversation 1); conversation 4's run has no reply yet.
    assert (r["nrt_median_s"], r["nrt_p90_s"], r["nrt_responses"]) == (180, 200, 2)
    # First resolution: 500, 60, 40 and the old one's 1000 -> median (60+500)/2 = 280.
    assert (r["resolution_median_s"], r["resolution_p90_s"]) == (280, 1000)
    # Full resolution: 2000, 60, 40, 1000 -> median 530.
    assert r["full_resolution_median_s"] == 530
    # Waiting on the customer: 0, 0, 10 (pending), 0 -> median 0.
    assert r["waiting_on_customer_median_s"] == 0
    assert r["unattended"] == 1  # conversation 4
    assert r["bot_contained"] == 1 and r["bot_handoffs"] == 1
    # No calendar on this branch: every business twin is null; nothing measured is null.
    assert r["frt_median_s_business"] is None and r["csat"] is None and r["nps"] is None


def test_figures_belong_to_the_period_of_their_ending_event(h):
    build(h)
    # [T0+150, T0+1250): FRT none (all sent before), NRT 160 (sent at +460); conversation 6
    # is outside; first resolutions at +500 (conv 1); the range ends in the past: unattended null.
    r = h.report(rp.Period(T0 + 150, T0 + 1250), now=T0 + 10_000)
    assert r["frt_responses"] == 0 and r["frt_median_s"] is None
    assert (r["nrt_median_s"], r["nrt_responses"]) == (160, 1)
    assert r["resolution_median_s"] == 500
    assert r["resolved"] == 0  # conversation 1's last resolution is at +2000
    assert r["conversations"] == 0
    assert r["unattended"] is None
    # A range still running reports unattended now.
    assert h.report(rp.Period(T0, T0 + 20_000), now=T0 + 10_000)["unattended"] == 1


def test_grouped_by_operator_channel_and_hour(h):
    build(h)
    by_operator = {row["key"]: row for row in h.report(by="operator")["rows"]}
    assert by_operator["alice"]["frt_responses"] == 5 and by_operator["alice"]["nrt_median_s"] == 160
    assert by_operator["bob"]["nrt_median_s"] == 200 and by_operator["bob"]["frt_median_s"] is None
    assert by_operator["bot"]["bot_contained"] == 1 and by_operator["bot"]["resolution_median_s"] == 60
    assert by_operator["unassigned"]["unattended"] == 1
    by_channel = {row["key"]: row for row in h.report(by="channel")["rows"]}
    assert by_channel["email"]["frt_median_s"] == 30 and by_channel["email"]["conversations"] == 2
    assert by_channel["telegram"]["conversations"] == 5
    by_hour = {row["key"]: row for row in h.report(by="hour")["rows"]}
    # T0 is 22:13 UTC: conversations open in hour 22, the old e-mail one at 20:50.
    assert by_hour[22]["conversations"] == 6 and by_hour[20]["conversations"] == 1
    assert h.report(by="queue")["rows"][0]["key"] == "default"


def test_survey_answers_do_not_count_and_never_reopen(h):
    c = build(h)
    target = analytics.survey_target(h.conn, c[6])
    made = write_transaction(
        h.conn,
        analytics.record_survey,
        "csat",
        c[6],
        target.customer_id,
        target.route[0],
        target.route[2],
        target.handled_by,
        "en",
        "Rate us",
        None,
        T0 + 50,
    )
    assert made is not None
    # The customer answers "2 slow" by typing: the survey's answer, not a customer message.
    h.customer_says("fay", T0 + 60, "2 slow")
    conv = h.conn.execute("SELECT status FROM conversations WHERE id = ?", (c[6],)).fetchone()[0]
    assert conv == "resolved"
    assert h.conn.execute("SELECT count(*) FROM conversations").fetchone()[0] == 7  # nothing new opened
    row = h.conn.execute("SELECT score, comment, handled_by FROM surveys").fetchone()
    assert tuple(row) == (2, "slow", "alice")  # nobody was assigned: who resolved it
    note = h.conn.execute("SELECT body FROM messages WHERE direction = 'note' AND conversation_id = ?", (c[6],)).fetchone()
    assert note is not None and "Low CSAT score: 2" in note[0]
    r = h.report()
    assert r["unattended"] == 1 and r["nrt_responses"] == 2 and r["frt_responses"] == 5  # unchanged
    assert (r["csat"], r["csat_responses"], r["csat_surveys_sent"], r["csat_response_rate"]) == (0, 1, 1, 1)
    # Under the operator who handled it when it was sent.
    assert {row["key"]: row["csat_responses"] for row in h.report(by="operator")["rows"]}["alice"] == 1
    # A second survey for the same conversation is refused by the store.
    assert (
        write_transaction(
            h.conn,
            analytics.record_survey,
            "csat",
            c[6],
            target.customer_id,
            target.route[0],
            target.route[2],
            "x",
            "en",
            "Rate us",
            None,
            T0 + 70,
        )
        is None
    )


def test_conversations_behind_a_figure(h):
    c = build(h)
    facts = h.facts()
    assert rp.conversations_behind(facts, rp.Period(None, None), f.UNATTENDED) == [c[4]]
    assert rp.conversations_behind(facts, rp.Period(None, None), f.BOT_CONTAINED) == [c[5]]
    assert rp.conversations_behind(facts, rp.Period(None, None), f.NRT, by="operator", key="bob") == [c[1]]


def test_report_command_prints_the_json_contract_on_the_last_line(h, tmp_path):
    build(h)
    h.conn.close()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "omniconsole.cli",
            "--db",
            str(tmp_path / "figures.db"),
            "report",
            "--format",
            "json",
            "--by",
            "channel",
            "--from",
            "2023-01-01",
            "--to",
            "2024-01-01",
        ],
        capture_output=True,
        text=True,
        cwd=repo_root(),
        env=subprocess_env(TZ="UTC"),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    for key in (
        "conversations",
        "resolved",
        "frt_median_s",
        "frt_p90_s",
        "nrt_median_s",
        "resolution_median_s",
        "resolution_p90_s",
        "unattended",
        "csat",
        "csat_responses",
        "nps",
        "bot_contained",
        "bot_handoffs",
        "frt_median_s_business",
        "rows",
    ):
        assert key in report
    assert report["unattended"] is None  # the range ended in the past
    assert report["from"] == 1672531200.0
    assert {row["key"] for row in report["rows"]} == {"email", "telegram"}
    csv_out = subprocess.run(
        [
            sys.executable,
            "-m",
            "omniconsole.cli",
            "--db",
            str(tmp_path / "figures.db"),
            "report",
            "conversations",
            "--format",
            "csv",
        ],
        capture_output=True,
        text=True,
        cwd=repo_root(),
        env=subprocess_env(TZ="UTC"),
        timeout=120,
    )
    assert csv_out.returncode == 0, csv_out.stderr
    lines = csv_out.stdout.strip().splitlines()
    assert lines[0].startswith("id,customer,channels,opened,first_response,resolved,assignee,frt_s")
    assert len(lines) == 1 + 7
    bad = subprocess.run(
        [sys.executable, "-m", "omniconsole.cli", "--db", str(tmp_path / "figures.db"), "report", "--from", "yesterday"],
        capture_output=True,
        text=True,
        cwd=repo_root(),
        env=subprocess_env(TZ="UTC"),
        timeout=120,
    )
    assert bad.returncode == 2 and "is not a date; write it as YYYY-MM-DD" in bad.stderr


def test_period_dates_are_local_midnights():
    period = rp.period_of(date(2024, 3, 1), date(2024, 3, 2), UTC)
    assert (period.start, period.end) == (1709251200.0, 1709337600.0)


# --- a property: the facts of a random history equal a recount by brute force ----------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(["in", "reply", "auto", "resolve", "reopen"]), st.integers(1, 500)), min_size=1, max_size=25
    )
)
def test_frt_and_nrt_equal_a_recount(tmp_path_factory, steps):
    h = History(tmp_path_factory.mktemp("prop") / "p.db")
    try:
        at = T0
        cid = h.customer_says("zed", at)
        timeline = [("in", at)]
        status = "open"
        for action, gap in steps:
            at += gap
            if action == "in" and status == "open":
                h.customer_says("zed", at)
                timeline.append(("in", at))
            elif action == "auto" and status == "open":
                h.customer_says("zed", at, "away", flags={"auto_reply"})
            elif action == "reply":
                h.reply(cid, "alice", at)
                timeline.append(("reply", at))
            elif action == "resolve" and status == "open":
                h.status(cid, ConversationStatus.RESOLVED, at)
                timeline.append(("resolve", at))
                status = "resolved"
            elif action == "reopen" and status == "resolved":
                h.status(cid, ConversationStatus.OPEN, at)
                timeline.append(("reopen", at))
                status = "open"
        # Brute force, straight from METRICS.md.
        expected_frt, expected_nrt = None, []
        start = None
        waiting_from = None
        for kind, moment in timeline:
            if kind == "in":
                if expected_frt is None and start is None:
                    start = moment
                elif expected_frt is not None and waiting_from is None:
                    waiting_from = moment
            elif kind == "reopen" and expected_frt is None:
                start = moment
            elif kind == "resolve":
                waiting_from = None
            elif kind == "reply":
                if expected_frt is None:
                    expected_frt = moment - start
                elif waiting_from is not None:
                    expected_nrt.append(moment - waiting_from)
                waiting_from = None
        facts = h.facts(now=at + 1)
        assert [x.value for x in facts if x.figure == f.FRT] == ([expected_frt] if expected_frt is not None else [])
        assert sorted(x.value for x in facts if x.figure == f.NRT) == sorted(expected_nrt)
    finally:
        h.conn.close()


async def test_wallboard_agrees_with_the_report(tmp_path):
    from omniconsole.analytics.wallboard import wallboard
    from omniconsole.store import Store

    h = History(tmp_path / "board.db")
    try:
        c = build(h)
    finally:
        h.conn.close()
    async with await Store.open(tmp_path / "board.db") as store:
        board = await wallboard(store, T0 + 1300, UTC)
    # Open: 2, 3, 4; none assigned (1 was alice's, resolved); 4 waits since +1200.
    assert (board.open, board.unassigned, board.unattended, board.snoozed) == (3, 3, 1, 0)
    assert board.longest_wait_s == 100
    assert board.volume_by_channel == {"email": 2, "telegram": 5}
    assert {line.login: line.active for line in board.operators} == {"alice": 0, "bob": 0}
    assert {line.login: (line.status, line.load) for line in board.operators} == {
        "alice": ("offline", 0.0),
        "bob": ("offline", 0.0),
    }
    assert board.with_bot == 0
    assert c[4]


async def test_the_wallboard_shows_routings_status_and_load(tmp_path):
    """Status and load as routing keeps them: two conversations of a capacity of 4 is 50%."""
    from omniconsole.analytics.wallboard import wallboard
    from omniconsole.store import Store
    from omniconsole.store.history import InboundRecord

    async with await Store.open(tmp_path / "load.db") as store:
        await store.add_operator("anna", "Anna", actor="root")
        await store.set_operator_routing("anna", actor="root", status="online", capacity=4)
        channel = await store.ensure_channel("telegram", "tg")
        for n in range(2):
            await store.ingest(channel, "telegram", [InboundRecord(f"m{n}", "telegram", f"10{n}", "hi", T0 + n)], None)
        for row in await store.inbox_page(InboxView.ALL):
            await store.assign(row.conversation_id, "anna", "root")
        board = await wallboard(store, T0 + 10, UTC)
    [line] = board.operators
    assert (line.login, line.status, line.active, line.load) == ("anna", "online", 2, 0.5)


def test_csv_cells_a_spreadsheet_would_run_are_written_as_text():
    """A customer's name is theirs to choose: `=HYPERLINK(...)` in `report conversations
    --format csv` must open as text in a spreadsheet (OWASP CSV injection), phone numbers stay."""
    import csv
    import io

    from omniconsole.analytics.report import CONVERSATION_COLUMNS, render_conversations

    names = ['=HYPERLINK("http://x","y")', "@SUM(1)", "+cmd|' /C calc'!A0", "-2+3", "+7 916 642-38-68", "Иван"]
    rows = [{c: None for c in CONVERSATION_COLUMNS} | {"id": n, "customer": name} for n, name in enumerate(names)]
    read = list(csv.DictReader(io.StringIO(render_conversations(rows, "csv"))))
    assert [r["customer"] for r in read] == [
        '\'=HYPERLINK("http://x","y")',
        "'@SUM(1)",
        "'+cmd|' /C calc'!A0",
        "'-2+3",
        "+7 916 642-38-68",
        "Иван",
    ]
