"""The stored `conversation_facts` rows equal a recount from the whole history.

The store rewrites a conversation's facts in the transaction whose events change them
(store/facts.py); `figures.conversation_facts` over the history that `report_histories` reads
is the reference. Random histories are written through the store's own functions (ingest,
replies, notes, status changes, snoozes woken by the timer, bot answers and handoffs,
assignments, labels, surveys and their typed answers, customer merges); after each one the
table must hold exactly the recount. A write path that forgets to mark its conversation
stale, or an ingest shortcut that skips one it should not, fails here.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniconsole.analytics import commands
from omniconsole.analytics import figures as f
from omniconsole.analytics import report as rp
from omniconsole.models import ConversationStatus
from omniconsole.store import actions, analytics, bot, customers, facts, write_transaction
from omniconsole.store.database import connect
from tests.unit.test_analytics_figures import T0, History, build


def stored(conn) -> Counter:
    return Counter(
        tuple(row)
        for row in conn.execute(
            "SELECT conversation_id, figure, ended_at, value, operator, channel, labels FROM conversation_facts"
        )
    )


def recount(conn) -> Counter:
    return Counter(
        (x.conversation_id, x.figure, x.at, x.value, x.operator, x.channel, "\n".join(x.labels))
        for h in analytics.report_histories(conn, None, None)
        for x in f.conversation_facts(h, 0.0)
    )


STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "in",
                "in",
                "in_other",
                "auto",
                "reply",
                "reply_bob",
                "note",
                "resolve",
                "reopen",
                "snooze",
                "wake",
                "pending",
                "bot",
                "handoff",
                "bot_handoff",
                "assign",
                "unassign",
                "label",
                "survey",
                "answer",
                "merge",
            ]
        ),
        st.integers(1, 400),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(STEPS)
def test_stored_facts_equal_a_recount(tmp_path_factory, steps):
    h = History(tmp_path_factory.mktemp("facts") / "f.db")
    conn = h.conn
    try:
        at = T0
        cid = h.customer_says("zed", at)
        other_kind = "email"
        merged = False
        survey_sent = False
        for action, gap in steps:
            at += gap
            status = conn.execute("SELECT status FROM conversations WHERE id = ?", (cid,)).fetchone()[0]
            if action == "in":
                cid = h.customer_says("zed", at)  # may open a new conversation after a resolution
            elif action == "in_other":
                # The same person by e-mail: another customer until merged, then the same one.
                other = h.customer_says("zed", at, kind=other_kind)
                if merged:
                    cid = other
            elif action == "auto":
                h.customer_says("zed", at, "Out of office", flags={"auto_reply"})
            elif action in ("reply", "reply_bob"):
                h.reply(cid, "alice" if action == "reply" else "bob", at)
            elif action == "note":
                write_transaction(conn, actions.add_note, cid, "a note", "alice", now=at)
            elif action == "resolve" and status != "resolved":
                h.status(cid, ConversationStatus.RESOLVED, at)
            elif action == "reopen" and status == "resolved":
                try:
                    h.status(cid, ConversationStatus.OPEN, at)
                except actions.OpenElsewhere:
                    pass  # an auto-reply opened another one: refused, nothing written
            elif action == "snooze" and status == "open":
                h.status(cid, ConversationStatus.SNOOZED, at, until=at + gap)
            elif action == "wake":
                write_transaction(conn, actions.wake_snoozed, at)
            elif action == "pending" and status == "open":
                h.status(cid, ConversationStatus.PENDING, at)
            elif action == "bot":
                write_transaction(conn, bot.queue_message, cid, "bot answer", "bot", now=at)
            elif action == "handoff":
                h.handoff(cid, at)
            elif action == "bot_handoff":
                customer = conn.execute("SELECT customer_id FROM conversations WHERE id = ?", (cid,)).fetchone()[0]
                write_transaction(conn, bot.begin, cid, customer, now=at)
                write_transaction(conn, bot.handoff, cid, "asked", "other", "The bot could not help", "bot", now=at)
            elif action in ("assign", "unassign"):
                who = ("alice" if gap % 2 else "bob") if action == "assign" else None
                write_transaction(conn, actions.assign, cid, who, "alice", now=at)
            elif action == "label":
                labels = [["vip"], ["billing", "vip"], []][gap % 3]
                write_transaction(conn, actions.set_conversation_labels, cid, labels, "alice")
            elif action == "survey" and status == "resolved" and not survey_sent:
                customer, channel, identity = conn.execute(
                    "SELECT customer_id, channel_id, identity_id FROM messages WHERE conversation_id = ? AND direction = 'in'"
                    " ORDER BY id LIMIT 1",
                    (cid,),
                ).fetchone()
                survey_sent = True
                kind = "csat" if gap % 2 else "nps"
                write_transaction(
                    conn, analytics.record_survey, kind, cid, customer, channel, identity, "alice", "en", "Rate us", None, at
                )
            elif action == "answer" and survey_sent:
                h.customer_says("zed", at, str(gap % 5 + 1))  # a typed score: the answer, never a message
            elif action == "merge" and not merged:
                ids = [r[0] for r in conn.execute("SELECT DISTINCT customer_id FROM identities ORDER BY customer_id")]
                if len(ids) == 2:
                    write_transaction(conn, customers.merge_customers, ids[0], ids[1], "alice", now=at)
                    merged = True
            assert stored(conn) == recount(conn), (action, at)
            # The wallboard's trigger-kept count of waiting conversations equals a count.
            kept = conn.execute("SELECT n FROM live_counts WHERE name = 'waiting'").fetchone()[0]
            counted = conn.execute(
                "SELECT count(*) FROM conversations WHERE status = 'open' AND waiting_since IS NOT NULL"
            ).fetchone()[0]
            assert kept == counted, (action, at)
    finally:
        conn.close()


def test_the_migration_backfills_existing_history(tmp_path):
    """A database from before the table: every conversation is queued, `backfill` computes
    them in short transactions, and reports read the result."""
    h = History(tmp_path / "old.db")
    try:
        build(h)
        expected = recount(h.conn)
        assert stored(h.conn) == expected
        h.conn.execute("DELETE FROM conversation_facts")  # as the migration finds an older database
        assert facts.queue_all(h.conn) == 7
        assert facts.backfill_pending(h.conn)
        assert write_transaction(h.conn, facts.backfill, 3) == 3
        assert write_transaction(h.conn, facts.backfill, 3) == 3
        assert write_transaction(h.conn, facts.backfill, 3) == 1
        assert not facts.backfill_pending(h.conn)
        assert stored(h.conn) == expected
    finally:
        h.conn.close()


async def test_reports_from_stored_facts_equal_the_reference(tmp_path):
    """`make_report` (stored rows, totals without objects) gives the reference's object, in
    total and grouped, for a period and for all time."""
    from datetime import UTC

    from omniconsole.store import Store

    h = History(tmp_path / "r.db")
    try:
        build(h)
        reference = {}
        for period in (rp.Period(None, None), rp.Period(T0 + 100, T0 + 1500)):
            for by in (None, "operator", "channel", "label", "day"):
                reference[period, by] = h.report(period, now=T0 + 10_000, by=by)
    finally:
        h.conn.close()
    async with await Store.open(tmp_path / "r.db") as store:
        for (period, by), expected in reference.items():
            got = await commands.make_report(store, period, by=by, now=T0 + 10_000, tz=UTC)
            assert got == expected, (period, by)


async def test_an_agent_sees_their_own_figures_beside_the_team(tmp_path):
    from omniconsole.store import Store

    h = History(tmp_path / "own.db")
    try:
        build(h)
    finally:
        h.conn.close()
    async with await Store.open(tmp_path / "own.db") as store:
        team, own = await store.own_figures(None, None, "bob")
    # bob answered one run of conversation 1 (NRT 200); the team answered 5 first responses.
    assert (own.spreads[f.NRT].n, own.spreads[f.NRT].median, own.spreads[f.FRT].n) == (1, 200.0, 0)
    frt = team.spreads[f.FRT]  # 20, 30, 30, 100, 120
    assert (frt.n, frt.median, frt.p90, frt.mean) == (5, 30.0, 120.0, 60.0)
    assert team.counts[f.OPENED] == 7 and own.counts[f.OPENED] == 0


def test_a_new_database_has_an_empty_backfill(tmp_path):
    conn = connect(tmp_path / "new.db")
    try:
        assert not facts.backfill_pending(conn)
    finally:
        conn.close()


async def test_the_report_bench_equals_its_reference_on_a_bench_database(tmp_path):
    """`omniconsole bench report` on a small bench database: every timing is there, and the
    stored-facts report equals the recount from whole histories."""
    from omniconsole.bench.ingest import ingest_benchmark
    from omniconsole.bench.report import report_benchmark

    await ingest_benchmark(3000, 500, tmp_path / "bench.db")
    figures = await report_benchmark(tmp_path / "bench.db", 2, 1, 1, work=True)
    assert figures["reference_equal"] is True
    assert figures["conversations_30d"] == 300 and figures["answered_conversations"] == 300
    assert figures["frt_responses_30d"] == 300 and figures["resolved_30d"] == 150
    for name in ("report_30d", "report_all", "wallboard", "reference_30d"):
        assert figures[f"{name}_p95_ms"] >= 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 50)), min_size=1, max_size=60),
    st.integers(0, 1000),
    st.integers(1, 1000),
)
def test_period_spreads_in_sql_equal_the_reference_both_ways(tmp_path_factory, rows, start, length):
    """Median, p90 and mean of a period's values read in SQLite (walking the value index, or
    sorting a short period's values) equal `spread_of` over the same values, ties included."""
    h = History(tmp_path_factory.mktemp("spread") / "s.db")
    try:
        cid = h.customer_says("zed", T0)
        h.conn.executemany(
            "INSERT INTO conversation_facts (conversation_id, figure, ended_at, value, operator, channel, labels)"
            " VALUES (?, 'frt', ?, ?, 'alice', 'telegram', '')",
            [(cid, T0 + at, float(value)) for at, value in rows],
        )
        lo, hi = T0 + start, T0 + start + length
        expected = facts.spread_of([float(v) for at, v in rows if lo <= T0 + at < hi])
        original = facts._wide
        try:
            for wide in (True, False):
                facts._wide = lambda *args, wide=wide: wide
                assert facts.period_figures(h.conn, lo, hi).spreads[f.FRT] == expected, wide
        finally:
            facts._wide = original
    finally:
        h.conn.close()


async def test_over_the_core_socket_an_agent_gets_only_their_own_figures(tmp_path):
    """In a team setup the core sets `me` to the caller's login (whatever the window sends),
    the figures travel over the socket, and an agent is refused the supervisor's reports."""
    from omniconsole.core.control import ControlServer
    from omniconsole.core.remote import RemoteStore
    from omniconsole.store import Store, access

    h = History(tmp_path / "team.db")
    try:
        build(h)
    finally:
        h.conn.close()
    async with await Store.open(tmp_path / "team.db") as store:
        local_team, local_bob = await store.own_figures(None, None, "bob")
        async with ControlServer(store, tmp_path / "core.sock", group=None, logins=lambda uid: "bob"):
            remote = await RemoteStore.connect(tmp_path / "core.sock")
            try:
                team, own = await remote.own_figures(None, None, "alice")  # asks for alice's: gets bob's
                assert (team, own) == (local_team, local_bob)
                assert own.spreads[f.NRT].median == 200.0
                with pytest.raises(access.RoleRefused):
                    await remote.report_figures(None, None)
            finally:
                await remote.close()


async def test_imported_and_demo_history_have_their_facts(tmp_path):
    """History that did not arrive live has facts like any other: a mailbox import (a thread
    read out of order, our own sent mail, old threads resolved as history) and the demo's
    backfill (replies, assignments and resolutions written in one transaction)."""
    from connectors.mail.mailbox import iter_maildir
    from omniconsole.config import Settings
    from omniconsole.core.demo import build_demo_history, demo_settings
    from omniconsole.core.mail_import import import_mailbox
    from omniconsole.store import Store
    from tests.unit.test_mail_import import OWN, THREAD, corpus_mails, write_maildir

    settings = Settings(database=tmp_path / "mail.db", data_dir=tmp_path / "data")
    maildir = write_maildir(tmp_path / "Maildir", {"": [*corpus_mails(), THREAD[1], THREAD[2], OWN], ".Archive": [THREAD[0]]})
    async with await Store.open(settings.database) as store:
        summary = await import_mailbox(store, settings, iter_maildir(maildir), workers=0, own_addresses=["Support@Shop.example"])
        assert summary.imported > 0
        kept, counted = await store.db.run(lambda conn: (stored(conn), recount(conn)))
        assert kept == counted and any(figure == f.OPENED for _, figure, *_ in kept)

    demo = dataclasses.replace(demo_settings(tmp_path / "demo"), database=tmp_path / "demo.db")
    async with await Store.open(demo.database) as store:
        assert await build_demo_history(store, demo, conversations=40, admin="admin") > 0
        kept, counted = await store.db.run(lambda conn: (stored(conn), recount(conn)))
        assert kept == counted
        assert {figure for _, figure, *_ in kept} >= {f.OPENED, f.FRT, f.RESOLVED}


async def test_the_core_computes_earlier_history_after_an_upgrade(tmp_path):
    """A migrated database's queued conversations get their facts from the core's
    housekeeping, without waiting for somebody to open a report."""
    from omniconsole.config import Settings
    from omniconsole.core.hub import Hub
    from omniconsole.store import Store
    from tests.rig import FAST

    h = History(tmp_path / "up.db")
    try:
        build(h)
        expected = recount(h.conn)
        h.conn.execute("DELETE FROM conversation_facts")
        facts.queue_all(h.conn)
    finally:
        h.conn.close()
    settings = Settings(database=tmp_path / "up.db", data_dir=tmp_path / "data")
    async with await Store.open(settings.database) as store:
        core = Hub(settings, store, timing=FAST)
        task = asyncio.create_task(core.run())
        try:
            async with asyncio.timeout(10):
                while await store.db.run(facts.backfill_pending):
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert await store.db.run(stored) == expected
