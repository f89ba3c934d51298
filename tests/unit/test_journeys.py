"""Journeys and channel advice (issue #21, METRICS.md "Journeys") on hand-built histories with
the answers worked out here, and on the demo's history, whose channels differ per topic by
construction (connectors/demo.py RECONTACT_CHANCE).

Histories are written through the store's own functions (ingest, replies, status changes,
merges) with explicit times, and read back through store/journeys.py's SQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys

import pytest

import connectors.demo as demo_world
from omniconsole.analytics import journey_service as js
from omniconsole.analytics import journeys as j
from omniconsole.models import ConversationStatus
from omniconsole.store import Store, actions, history, write_transaction
from omniconsole.store import identities as identities_store
from omniconsole.store import journeys as sj
from omniconsole.store.database import connect
from omniconsole.store.records import InboundRecord
from tests.conftest import repo_root, subprocess_env

T0 = 1_700_000_000.0
DAY = 86400.0
NOW = T0 + 30 * DAY


class Shop:
    """A database, its channels, and customers who write at chosen times."""

    def __init__(self, path):
        self.conn = connect(path)
        self.channels: dict[str, int] = {}
        self.n = 0
        write_transaction(self.conn, actions.add_operator, "alice")

    def customer(self, name: str, *identities: tuple[str, str]) -> int:
        return write_transaction(self.conn, identities_store.add_customer, name, [(k, a, a) for k, a in identities], now=T0 - DAY)

    def says(self, kind: str, address: str, at: float, body: str) -> int:
        if kind not in self.channels:
            self.channels[kind] = write_transaction(self.conn, actions.ensure_channel, kind, kind)
        self.n += 1
        record = InboundRecord(external_id=f"m{self.n}", identity_kind=kind, address=address, body=body, sent_at=at)
        return write_transaction(self.conn, history.ingest_batch, self.channels[kind], kind, [record], None).receipts[0][2]

    def reply(self, cid: int, at: float) -> None:
        write_transaction(self.conn, actions.queue_reply, cid, "answer", "alice", now=at)

    def resolve(self, cid: int, at: float) -> None:
        write_transaction(self.conn, actions.set_status, cid, ConversationStatus.RESOLVED, "alice", now=at)

    def issues(self, now: float = NOW) -> list[j.Issue]:
        rows = sj.issue_rows(self.conn, opened_before=now)
        texts = sj.contact_texts(self.conn, j.repeat_candidates(rows))
        return j.build_issues(rows, ["refunds"], now, repeated=j.repeated_by_customer(texts, rows, 0.5))


@pytest.fixture
def shop(tmp_path):
    """Ann: a refund asked in Telegram, asked again by e-mail within the hour (a switch, the same
    request), resolved after an hour; two days later she phones: a repeat contact, resolved in
    20 minutes, and nothing after. Bob: Telegram only, resolved in two hours, no return. Cid:
    e-mail, still open."""
    s = Shop(tmp_path / "j.db")
    s.customer("Ann", ("telegram", "1001"), ("email", "ann@example.com"), ("phone", "+79990000001"))
    s.customer("Bob", ("telegram", "1002"))
    s.customer("Cid", ("email", "cid@example.com"))
    a = s.says("telegram", "1001", T0, "Хочу вернуть деньги за заказ 12345, не подошёл размер")
    s.reply(a, T0 + 600)
    assert s.says("email", "ann@example.com", T0 + 1200, "Хочу вернуть деньги за заказ 12345: размер не подошёл!") == a
    s.reply(a, T0 + 1800)
    s.resolve(a, T0 + 3600)
    b = s.says("phone", "+79990000001", T0 + 2 * DAY, "Деньги так и не пришли")
    s.reply(b, T0 + 2 * DAY + 600)
    s.resolve(b, T0 + 2 * DAY + 1200)
    c = s.says("telegram", "1002", T0 + 100, "Где мой заказ?")
    s.reply(c, T0 + 400)
    s.resolve(c, T0 + 100 + 7200)
    d = s.says("email", "cid@example.com", T0 + 200, "Hello")
    s.ids = {"ann_refund": a, "ann_call": b, "bob": c, "cid": d}
    return s


def test_figures_of_a_hand_built_history(shop):
    issues = shop.issues()
    by_id = {i.row.conversation_id: i for i in issues}
    refund, call = by_id[shop.ids["ann_refund"]], by_id[shop.ids["ann_call"]]
    assert refund.channels == ("telegram", "email") and refund.resolved_on == "email"
    assert refund.repeat_contact is True and refund.next_contact_at == T0 + 2 * DAY
    assert refund.repeated_themselves and not call.repeated_themselves  # the call came two days later
    assert call.repeat_contact is False and call.ttr_s == 1200
    fig = j.figures(issues)
    assert (fig["issues"], fig["resolved"], fig["judged"]) == (4, 3, 3)
    assert fig["fcr"] == round(2 / 3, 3) and fig["repeat_contact_rate"] == round(1 / 3, 3)
    assert fig["switch_rate"] == 0.25 and fig["repeated_themselves_rate"] == 0.25
    assert fig["ttr_median_s"] == 3600  # of 3600 (Ann's refund), 1200 (her call), 7200 (Bob)
    assert j.transitions(issues) == [{"from": "telegram", "to": "email", "switches": 1}]
    paths = {tuple(p["path"]): p["issues"] for p in j.common_paths(issues)}
    assert paths == {("telegram",): 1, ("email",): 1, ("phone",): 1, ("telegram", "email"): 1}


def test_recontact_is_not_judged_before_seven_days_pass(shop):
    # Seen one day later (the history as it was then), nobody can know yet whether they come back.
    issues = {i.row.conversation_id: i for i in shop.issues(now=T0 + DAY)}
    assert issues[shop.ids["bob"]].repeat_contact is None
    assert issues[shop.ids["ann_refund"]].repeat_contact is None  # her call had not come yet either
    # Three days on she has called again: the card says so, but the figures wait for the 7 days
    # (judging early only those who came back would make a recent period all repeats).
    rows = sj.issue_rows(shop.conn)
    issues = {i.row.conversation_id: i for i in j.build_issues(rows, [], T0 + 3 * DAY)}
    refund = issues[shop.ids["ann_refund"]]
    assert refund.repeat_contact is None and refund.next_contact_at == T0 + 2 * DAY
    assert js.outcome_words(refund) == "resolved in 1h 00m, came back within 7 days"
    assert j.figures(list(issues.values()))["judged"] == 0


def test_summary_path_of_all_conversations_agrees_with_reading_every_message(shop):
    everyone = {r.conversation_id: r for r in sj.issue_rows(shop.conn)}
    for customer in (1, 2, 3):
        for row in sj.issue_rows(shop.conn, customer_ids=[customer]):
            fast = everyone[row.conversation_id]
            assert (fast.first_contact, fast.last_contact, fast.path) == (row.first_contact, row.last_contact, row.path)
            assert (fast.resolved_at, fast.recontact_in, fast.operator_seconds) == (
                row.resolved_at,
                row.recontact_in,
                row.operator_seconds,
            )


def test_topic_an_operator_label_wins_then_the_bot_then_detection(shop):
    row = sj.IssueRow(1, 1, "open", T0, topic="delivery", bot_topic="orders", labels=("vip", "refunds"))
    assert j.topic_of(row, frozenset({"refunds", "orders", "delivery"})) == "refunds"
    assert j.topic_of(dataclasses.replace(row, labels=("vip",)), frozenset({"refunds"})) == "orders"
    assert j.topic_of(dataclasses.replace(row, labels=(), bot_topic=""), frozenset()) == "delivery"
    assert j.topic_of(sj.IssueRow(2, 1, "open", T0), frozenset()) == j.OTHER
    # Detected topics are recorded once; an operator's label is read from the labels.
    assert write_transaction(shop.conn, sj.set_topics, [(shop.ids["bob"], "orders")]) == 1
    assert write_transaction(shop.conn, sj.set_topics, [(shop.ids["bob"], "refunds")]) == 0
    write_transaction(shop.conn, actions.set_conversation_labels, shop.ids["cid"], ["refunds"], "alice")
    topics = {i.row.conversation_id: i.topic for i in shop.issues()}
    assert topics[shop.ids["bob"]] == "orders" and topics[shop.ids["cid"]] == "refunds"


def test_similarity_of_the_same_request_in_other_words():
    a = j.stems("Хочу вернуть деньги за заказ 12345")
    assert j.similarity(a, j.stems("хочу вернуть деньги за заказ №12345!")) == 1.0
    assert j.similarity(a, j.stems("Где мой заказ?")) < 0.5
    assert j.similarity(frozenset(), a) == 0.0
    texts = [(1, T0, "telegram", "refund for order 555 please"), (2, T0 + 3600, "email", "Refunds for order 555, please")]
    assert j.repeated_issues(texts, 0.5) == {2}
    assert j.repeated_issues([(1, T0, "telegram", texts[0][3]), (2, T0 + 2 * DAY, "email", texts[1][3])], 0.5) == set()
    assert j.repeated_issues([(1, T0, "email", texts[0][3]), (2, T0 + 60, "email", texts[1][3])], 0.5) == set()


def test_intervals_and_shrinkage():
    lo, hi = j.wilson(8, 10)
    assert (round(lo, 3), round(hi, 3)) == (0.49, 0.943)  # Wilson (1927), z = 1.96
    assert j.wilson(0, 0) is None
    assert j.median_interval([float(x) for x in range(1, 101)]) == (41.0, 60.0)

    def issue(n: int, topic: str, channel: str, repeat: bool) -> j.Issue:
        row = sj.IssueRow(n, n, "resolved", T0, first_contact=T0, resolved_at=T0 + 60, operator_seconds=120)
        return j.Issue(row, topic, (channel,), True, channel, repeat, None, 60.0, 60.0)

    # Phone 3 of 3 without a return; chat 10 of 20: the topic's rate is 13/23.
    issues = [issue(n, "refunds", "phone", False) for n in range(3)]
    issues += [issue(10 + n, "refunds", "web", n % 2 == 0) for n in range(20)]
    table = j.outcome_table(issues, prior_issues=20)
    phone = table[("refunds", "phone")]
    assert phone.rate == 1.0 and phone.shrunk == pytest.approx((3 + 20 * 13 / 23) / 23)
    assert phone.operator_minutes == 2.0
    # Three lucky issues are no evidence: below min_n nothing is advised.
    assert j.advise(table, "refunds", "web", {"web", "phone"}, j.JourneySettings(min_n=3)) is None


def test_settings_are_checked_in_words():
    assert j.parse_settings({"min_n": 50, "holdout": 0.2, "bot_offer": True}) == j.JourneySettings(
        min_n=50, holdout=0.2, bot_offer=True
    )
    with pytest.raises(ValueError, match="holdout must be a share"):
        j.parse_settings({"holdout": 5})
    with pytest.raises(ValueError, match="unknown key 'minimum'"):
        j.parse_settings({"minimum": 3})


def test_holdout_is_a_stable_share():
    held = [cid for cid in range(1, 20001) if j.in_holdout(cid, 0.1)]
    assert 0.09 < len(held) / 20000 < 0.11
    assert held == [cid for cid in range(1, 20001) if j.in_holdout(cid, 0.1)]
    assert not any(j.in_holdout(cid, 0.0) for cid in range(1, 1000))


async def test_a_customers_journey_across_a_merge(tmp_path):
    store = await Store.open(tmp_path / "m.db")
    try:
        tg = await store.ensure_channel("telegram", "Telegram")
        mail = await store.ensure_channel("email", "E-mail")
        one = InboundRecord(
            external_id="a", identity_kind="telegram", address="77", body="[bold]refund?\x1b]52;c;x\x07", sent_at=T0
        )
        two = InboundRecord(external_id="b", identity_kind="email", address="dan@example.com", body="refund?", sent_at=T0 + 60)
        first = (await store.ingest(tg, "telegram", [one], None)).receipts[0]
        second = (await store.ingest(mail, "email", [two], None)).receipts[0]
        assert first[3] != second[3]  # two customers until an operator merges them
        await store.add_operator("alice")
        await store.merge_customers(first[3], second[3], "alice", "same person")
        journey = await js.customer_journey(store, second[3], NOW, j.JourneySettings())
        assert len(journey.issues) in (1, 2) and journey.reachable == {"telegram", "email"}
        channels = [kind for issue in journey.issues for kind in issue.channels]
        assert sorted(channels) == ["email", "telegram"]
        assert any(issue.repeated_themselves for issue in journey.issues)
    finally:
        await store.close()


# --- the demo's history -------------------------------------------------------------------


async def _demo_table(tmp_path, name: str):
    from omniconsole.core.demo import build_demo_history, demo_settings

    settings = demo_settings(tmp_path / name)
    store = await Store.open(settings.database)
    try:
        await build_demo_history(store, settings, conversations=2000)
        now = await store.db.run(lambda conn: conn.execute("SELECT max(last_activity_at) FROM conversations").fetchone()[0])
        data = await js.journey_data(store, j.JourneySettings(), now)
        report = j.build_report(data, j.JourneySettings())
    finally:
        await store.close()
    return data, report


def _all_advice(table) -> list[j.Advice]:
    kinds = {"telegram", "email", "phone", "vk", "whatsapp"}
    found = []
    for topic, channel in table:
        advice = j.advise(table, topic, channel, kinds, j.JourneySettings())
        if advice is not None:
            found.append(advice)
    return found


async def test_the_outcome_table_finds_the_pattern_the_demo_put_in(tmp_path):
    data, report = await _demo_table(tmp_path, "demo")
    advice = _all_advice(data.table)
    assert advice, "the demo's pattern gives advice"
    for a in advice:
        # Only where the demo made channels differ, and always toward a channel it made better.
        assert a.topic in ("refunds", "cards", "delivery"), a.words
        assert demo_world.recontact_chance(a.topic, a.better.channel) < demo_world.recontact_chance(a.topic, a.current.channel)
    refunds = [a for a in advice if a.topic == "refunds"]
    assert refunds and all(a.better.channel == "phone" for a in refunds)
    assert refunds[0].words.startswith("Refunds: by phone ") and " resolved in one contact, " in refunds[0].words
    assert f"(n={refunds[0].better.n}/{refunds[0].current.n})" in refunds[0].words
    assert report["switch_rate"] > 0 and report["repeated_themselves"] > 0 and report["transitions"]
    assert all(c["rate_interval"] is not None for c in report["outcomes"])


async def test_no_advice_on_a_history_without_a_pattern(tmp_path, monkeypatch):
    flat = {topic: {"*": 0.3} for topic in demo_world.RECONTACT_CHANCE}
    monkeypatch.setattr(demo_world, "RECONTACT_CHANCE", flat)
    data, _ = await _demo_table(tmp_path, "flat")
    assert [a.words for a in _all_advice(data.table)] == []


def test_report_journeys_cli_formats(tmp_path, shop):
    db = str(tmp_path / "j.db")
    shop.conn.close()
    run = [sys.executable, "-m", "omniconsole.cli", "report", "journeys", "--db", db]
    out = subprocess.run(
        [*run, "--format", "json"], capture_output=True, text=True, cwd=repo_root(), env=subprocess_env(), timeout=120
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["issues"] == 4 and report["transitions"] == [{"from": "telegram", "to": "email", "switches": 1}]
    table = subprocess.run(run, capture_output=True, text=True, cwd=repo_root(), env=subprocess_env(), timeout=120)
    assert table.returncode == 0, table.stderr
    assert "Most common paths" in table.stdout and "telegram → email" in table.stdout
    csv_out = subprocess.run(
        [*run, "--format", "csv"], capture_output=True, text=True, cwd=repo_root(), env=subprocess_env(), timeout=120
    )
    assert csv_out.returncode == 0 and csv_out.stdout.startswith("section,key,issues,")


async def test_the_bot_offers_the_better_channel_only_when_configured(tmp_path):
    from omniconsole.core.demo import build_demo_history, demo_settings

    settings = demo_settings(tmp_path / "offer")
    store = await Store.open(settings.database)
    try:
        await build_demo_history(store, settings, conversations=2000)
        tg = await store.ensure_channel("telegram", "Telegram")
        customer = await store.db.write(
            identities_store.add_customer, "Вера", [("telegram", "990001", "990001"), ("phone", "+79990001122", "+79990001122")]
        )
        record = InboundRecord(
            external_id="offer-1", identity_kind="telegram", address="990001", body="Верните деньги", sent_at=NOW
        )
        conversation = (await store.ingest(tg, "telegram", [record], None)).receipts[0][2]
        await store.set_topics([(conversation, "refunds")])
        assert js.channel_offer(settings, store) is None  # off unless configured
        on = dataclasses.replace(settings, journeys=j.JourneySettings(holdout=0.0, bot_offer=True))
        offer = js.channel_offer(on, store)
        assert "по телефону" in await offer.words(conversation, customer, "ru")
        assert "by phone" in await offer.words(conversation, customer, "en")
        held = dataclasses.replace(settings, journeys=j.JourneySettings(holdout=1.0, bot_offer=True))
        assert await js.channel_offer(held, store).words(conversation, customer, "en") == ""
    finally:
        await store.close()


def test_origin_of_a_conversation_is_where_the_customer_came_from(tmp_path):
    s = Shop(tmp_path / "o.db")
    kind = "telegram"
    s.channels[kind] = write_transaction(s.conn, actions.ensure_channel, kind, kind)

    def arrive(external_id: str, at: float, origin: str | None) -> int:
        record = InboundRecord(external_id=external_id, identity_kind=kind, address="5005", body="hi", sent_at=at, origin=origin)
        return write_transaction(s.conn, history.ingest_batch, s.channels[kind], kind, [record], None).receipts[0][2]

    first = arrive("o1", T0, "spring_sale")  # a Telegram deep link's payload
    assert arrive("o2", T0 + 60, "refund_form") == first  # a later link does not rewrite it
    s.resolve(first, T0 + 120)
    second = arrive("o3", T0 + 9 * DAY, None)
    origins = {r.conversation_id: r.origin for r in sj.issue_rows(s.conn)}
    assert origins == {first: "spring_sale", second: None}


# --- the outcome table the core saves and every window reads ----------------------------------


def test_a_cell_round_trips_through_json_exactly(shop):
    """What the core saves is what the window advises from: every field, unrounded, intervals
    back as tuples (a list would not compare equal and `_apart` indexes them)."""
    table = j.outcome_table(shop.issues())
    full = j.Cell(
        "refunds",
        "phone",
        31,
        29,
        29 / 31,
        0.9123456789,
        (0.7, 0.98),
        1234.5,
        (600.0, 4000.25),
        0.8,
        5,
        (0.3, 0.97),
        7.25,
        (1.0, 12.5),
    )
    assert table
    for cell in [*table.values(), full]:
        back = j.Cell.from_json(json.loads(json.dumps(cell.to_json())))
        assert back == cell
        assert all(
            isinstance(getattr(back, name), tuple)
            for name in ("interval", "ttr_business_interval", "csat_interval")
            if getattr(back, name) is not None
        )


def _counting_rows(store) -> list[int]:
    """Count this store's `journey_rows` calls (each still reads the history as usual)."""
    calls: list[int] = []
    real = store.journey_rows

    async def counted(*args, **kwargs):
        calls.append(1)
        return await real(*args, **kwargs)

    store.journey_rows = counted
    return calls


async def test_the_window_reads_the_saved_table_and_computes_only_without_one(tmp_path, shop):
    """Before any core saved a table a window on its own database computes it from the history
    (as it always did); once saved, a new window's table is the saved one and reads no journey
    rows; a table saved with other [journeys] settings is not used by a local window."""
    from omniconsole.config import Settings

    shop.conn.close()
    settings = Settings(database=tmp_path / "j.db", data_dir=tmp_path / "data")
    async with await Store.open(settings.database) as store:
        calls = _counting_rows(store)
        assert await store.journey_outcomes() == (None, "", [])
        computed = await js.OutcomeTable(store, j.JourneySettings(), clock=lambda: NOW).get()
        assert computed and len(calls) == 1
        assert await js.save_outcome_table(store, settings, NOW) == len(computed)
        assert len(calls) == 2
        at, key, cells = await store.journey_outcomes()
        assert (at, key) == (NOW, js.settings_key(j.JourneySettings())) and len(cells) == len(computed)
        window = js.OutcomeTable(store, j.JourneySettings(), clock=lambda: NOW + 3 * js.TABLE_TTL)  # stale: still used
        assert await window.get() == computed and len(calls) == 2
        other = js.OutcomeTable(store, j.JourneySettings(prior_issues=5.0), clock=lambda: NOW)
        await other.get()
        assert len(calls) == 3


async def test_the_core_saves_the_table_and_a_team_window_advises_from_it(tmp_path):
    """The core's extension saves at start the table `journey_data` computes (the demo's
    refunds-by-phone pattern in it) and stops at once when cancelled; an agent's window over the
    core's socket reads it and advises from it, and never pulls journey rows: before the core
    saved one it has no table rather than the whole history."""
    from omniconsole.capabilities import hub_parts
    from omniconsole.core.control import ControlServer
    from omniconsole.core.demo import build_demo_history, demo_settings
    from omniconsole.core.hub import Hub
    from omniconsole.core.remote import RemoteStore
    from tests.unit.test_core import FAST

    demo = demo_settings(tmp_path / "core")
    settings = dataclasses.replace(demo, channels=[])  # the core runs no channel here
    async with await Store.open(settings.database) as store:
        await build_demo_history(store, demo, conversations=2000)
        now = await store.db.run(lambda conn: conn.execute("SELECT max(last_activity_at) FROM conversations").fetchone()[0])
        expected = (await js.journey_data(store, j.JourneySettings(), now, js.default_calendar(settings), detect=False)).table
        login = await store.db.run(
            lambda conn: conn.execute("SELECT login FROM operators WHERE role = 'agent' LIMIT 1").fetchone()[0]
        )
        calls = _counting_rows(store)
        async with ControlServer(store, tmp_path / "core.sock", group=None, logins=lambda uid: login):
            remote = await RemoteStore.connect(tmp_path / "core.sock")
            try:
                assert await js.OutcomeTable(remote, j.JourneySettings(), clock=lambda: now).get() == {}
                assert calls == []
                assert any(
                    type(e).__name__ == "CoreExtension" and e.name == "journeys outcome table"
                    for e in hub_parts(settings, store)["extensions"]
                )
                hub = Hub(settings, store, timing=FAST, extensions=[js.outcome_table_extension(settings, clock=lambda: now)])
                task = asyncio.create_task(hub.run())
                try:
                    async with asyncio.timeout(60):
                        while (await store.journey_outcomes())[0] is None:
                            await asyncio.sleep(0.05)
                finally:
                    task.cancel()
                    async with asyncio.timeout(5):
                        await asyncio.gather(task, return_exceptions=True)
                assert len(calls) == 1  # the core's one computation
                at, key, cells = await store.journey_outcomes()
                assert at == now and {(c["topic"], c["channel"]): j.Cell.from_json(c) for c in cells} == expected
                table = await js.OutcomeTable(remote, j.JourneySettings(), clock=lambda: now).get()
                assert table == expected and len(calls) == 1
                advice = _all_advice(table)
                assert any(a.topic == "refunds" and a.better.channel == "phone" for a in advice)
                with pytest.raises(Exception, match="core's own work"):
                    await remote.save_journey_outcomes(now, "{}", [])
            finally:
                await remote.close()


async def test_a_failed_round_of_the_core_is_logged_and_the_next_one_tried(tmp_path, caplog):
    """A round that fails (here the database is closed under it) is logged, the task keeps
    running and tries again after `every` seconds, and ends at once when cancelled."""
    from omniconsole.config import Settings

    settings = Settings(database=tmp_path / "gone.db", data_dir=tmp_path / "data")
    store = await Store.open(settings.database)
    await store.close()
    task = asyncio.create_task(js.outcome_table_extension(settings, every=0.05).background(store, None))
    try:
        async with asyncio.timeout(10):
            while sum("outcome table failed" in r.getMessage() for r in caplog.records) < 2:
                await asyncio.sleep(0.02)
        assert not task.done()
    finally:
        task.cancel()
        async with asyncio.timeout(2):
            await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


async def test_a_fresh_saved_table_is_not_computed_again_when_the_core_starts(tmp_path):
    """A core that starts (or a window that runs the core opens) while the saved table is
    younger than `every` with the same settings waits for it to age instead of walking the whole
    history at once; with other settings it computes at once."""
    import time

    from omniconsole.config import Settings

    settings = Settings(database=tmp_path / "t.db", data_dir=tmp_path / "data")
    async with await Store.open(settings.database) as store:
        await store.save_journey_outcomes(time.time() - 0.3, js.settings_key(j.JourneySettings()), [])
        calls = _counting_rows(store)
        task = asyncio.create_task(js.outcome_table_extension(settings, every=1.0).background(store, None))
        try:
            await asyncio.sleep(0.4)
            assert calls == []  # saved 0.3 s ago, every 1 s: the first round waits ~0.7 s more
            async with asyncio.timeout(5):
                while not calls:
                    await asyncio.sleep(0.02)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await store.save_journey_outcomes(time.time(), js.settings_key(j.JourneySettings(prior_issues=5.0)), [])
        calls.clear()
        task = asyncio.create_task(js.outcome_table_extension(settings, every=60.0).background(store, None))
        try:
            async with asyncio.timeout(5):
                while not calls:
                    await asyncio.sleep(0.02)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
