"""Automation rules (issue #19) on a real SQLite store: every event kind and action, validation
errors in words, imports triggering nothing, loops ended, the hourly budget, timers in the one
schedule (business time), restarts acting on nothing twice, and the dry run doing what the live
run does on the same history."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omniconsole.automation.engine import TIMER_KIND, Engine, dry_run
from omniconsole.automation.rules import RulesError, load_rules, parse_rulebook
from omniconsole.calendar import Calendar
from omniconsole.core.ingest import Ingestor
from omniconsole.models import ConversationStatus, Health, OperatorRole
from omniconsole.store import actions, history
from omniconsole.store import schedule as timers
from omniconsole.store.answers import ArticleRecord, save_article
from omniconsole.store.database import connect, write_transaction
from omniconsole.store.events import add_event
from tests.conftest import inbound, repo_root, subprocess_env


class Desk:
    """A store with a Telegram channel and rules; customers write through the pipeline step
    (as a live channel does) or are imported (no step)."""

    def __init__(self, path: Path, rules: str, calendars: dict | None = None):
        self.conn = connect(path)
        self.book = parse_rulebook(_toml(rules), "rules.toml", set(calendars or {}) | {"default"})
        self.engine = Engine(self.book, calendars or {})
        self.ingestor = Ingestor.__new__(Ingestor)
        self.ingestor.default_region = "RU"
        self.channel = write_transaction(self.conn, actions.ensure_channel, "telegram", "tg")
        self.n = 0

    def write(self, body: str, address: str = "1001", *, live: bool = True) -> int:
        self.n += 1
        record = self.ingestor.prepare(inbound(f"m{self.n}", body, address=address))
        result = write_transaction(self.conn, history.ingest_batch, self.channel, "telegram", [record], None)
        cid = result.receipts[0][2]
        if live:
            write_transaction(self.conn, self.engine.step, cid, time.time())
        return cid

    def follow(self, now: float | None = None) -> int:
        return write_transaction(self.conn, self.engine.follow, now or time.time())

    def fired(self, rule: str | None = None, key: str = "did") -> list[tuple[str, int | None, list[str]]]:
        rows = self.conn.execute("SELECT conversation_id, payload FROM events WHERE kind = 'rule.fired' ORDER BY id").fetchall()
        out = [(json.loads(p)["rule"], c, json.loads(p)[key]) for c, p in rows]
        return [f for f in out if rule is None or f[0] == rule]

    def events(self, kind: str) -> list[dict]:
        return [
            json.loads(p or "{}") for (p,) in self.conn.execute("SELECT payload FROM events WHERE kind = ? ORDER BY id", (kind,))
        ]

    def one(self, sql: str, *args):
        row = self.conn.execute(sql, args).fetchone()
        return None if row is None else tuple(row)

    def labels(self, cid: int) -> list[str]:
        from omniconsole.store.automation import conversation_labels

        return conversation_labels(self.conn, cid)


def _toml(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


@pytest.fixture
def desk(tmp_path: Path):
    made: list[Desk] = []

    def make(rules: str, **kwargs) -> Desk:
        made.append(Desk(tmp_path / f"desk{len(made)}.db", rules, **kwargs))
        return made[-1]

    yield make
    for d in made:
        d.conn.close()


KEYWORDS = """
[[rules]]
name = "refund words"
on = "message.received"
match = "any"
conditions = [
  { field = "message.body", contains = "refund" },
  { field = "message.body", matches = "(?i)money\\\\s+back" },
]
actions = [ { add_labels = ["refund"] }, { priority = "high" }, { note = "check the order" } ]
"""


def test_message_received_labels_priority_and_note_by_keywords(desk) -> None:
    d = desk(KEYWORDS)
    cid = d.write("I want my MONEY  back")
    assert d.labels(cid) == ["refund"]
    assert d.one("SELECT priority FROM conversations WHERE id = ?", cid) == (1,)
    assert d.one("SELECT body, author FROM messages WHERE conversation_id = ? AND direction = 'note'", cid) == (
        "check the order",
        "rule:refund words",
    )
    # Every firing is one event and one timeline line in words.
    assert d.fired() == [("refund words", cid, ["add label refund", "set priority high", "add a private note 'check the order'"])]
    line = d.one("SELECT body, author FROM messages WHERE conversation_id = ? AND direction = 'event' ORDER BY id DESC", cid)
    assert line == (
        "rule refund words did: add label refund; set priority high; add a private note 'check the order'",
        "rule:refund words",
    )
    other = d.write("hello there", address="2002")
    assert d.labels(other) == [] and len(d.fired()) == 1
    # The step runs again for the same conversation (an edit): the message triggers nothing twice.
    write_transaction(d.conn, d.engine.step, cid, time.time())
    assert len(d.fired()) == 1


def test_all_conditions_on_customer_conversation_and_channel_fields(desk) -> None:
    d = desk(
        """
[[rules]]
name = "vip to senior"
on = "conversation.opened"
conditions = [
  { field = "customer.attributes.tier", is = "vip" },
  { field = "channel.kind", in = ["telegram", "vk"] },
  { field = "conversation.priority", is = "normal" },
  { field = "office_hours", is = true },
]
actions = [ { add_labels = ["vip"] }, { assign_queue = "senior" } ]
"""
    )
    plain = d.write("hi", address="3003")
    assert d.fired() == []
    write_transaction(d.conn, lambda c: c.execute('UPDATE customers SET attributes = \'{"tier": "VIP"}\''))
    d.write("again", address="3003")  # the same open conversation: not opened now
    assert d.fired() == []
    vip = d.write("hello", address="4004")  # a new customer ...
    assert d.fired() == []  # ... without the attribute
    write_transaction(d.conn, lambda c: c.execute('UPDATE customers SET attributes = \'{"tier": "vip"}\''))
    write_transaction(d.conn, actions.set_status, plain, ConversationStatus.RESOLVED, "anna")
    third = d.write("new question", address="3003")  # opens a new conversation: vip now
    assert third not in (plain, vip)
    assert d.labels(third) == ["vip"]
    assert d.one("SELECT queue FROM conversations WHERE id = ?", third) == ("senior",)


def test_follower_triggers_reopened_resolved_assigned_label_sla_survey(desk) -> None:
    rules = "".join(
        f"""
[[rules]]
name = "on {event}"
on = "{event}"
actions = [ {{ note = "saw {event}" }} ]
"""
        for event in (
            "conversation.reopened",
            "conversation.resolved",
            "conversation.assigned",
            "label.added",
            "sla.warning",
            "sla.breach",
            "survey.answered",
        )
    )
    rules += """
[[rules]]
name = "breach of first response"
on = "sla.breach"
conditions = [ { field = "event.target", is = "first_response" } ]
actions = [ { priority = "urgent" } ]
"""
    d = desk(rules)
    cid = d.write("hello")
    d.follow()  # the follower starts at the newest event: what came before is old news
    write_transaction(d.conn, actions.add_operator, "anna", "Anna", OperatorRole.AGENT)
    write_transaction(d.conn, actions.assign, cid, "anna", "boss")
    write_transaction(d.conn, actions.assign, cid, None, "boss")  # unassigning assigns nobody
    write_transaction(d.conn, actions.set_conversation_labels, cid, ["billing"], "anna")
    write_transaction(d.conn, actions.set_conversation_labels, cid, [], "anna")  # removing adds nothing
    write_transaction(d.conn, actions.set_status, cid, ConversationStatus.RESOLVED, "anna")
    write_transaction(d.conn, actions.set_status, cid, ConversationStatus.OPEN, "anna")
    sla = {"policy": "gold", "target": "first_response", "share": 0.75, "due": time.time() + 60}
    write_transaction(d.conn, lambda c: add_event(c, "sla.warning", actor="sla", conversation_id=cid, payload=sla))
    write_transaction(
        d.conn, lambda c: add_event(c, "sla.breach", actor="sla", conversation_id=cid, payload={**sla, "share": 1.0})
    )
    write_transaction(
        d.conn,
        lambda c: add_event(c, "survey.answered", actor="customer", conversation_id=cid, payload={"kind": "csat", "score": 2}),
    )
    d.follow()
    assert [f[0] for f in d.fired()] == [
        "on conversation.assigned",
        "on label.added",
        "on conversation.resolved",
        "on conversation.reopened",
        "on sla.warning",
        "on sla.breach",
        "breach of first response",
        "on survey.answered",
    ]
    assert d.one("SELECT priority FROM conversations WHERE id = ?", cid) == (2,)


def test_channel_down_and_back_up_notify_operators(desk) -> None:
    d = desk(
        """
[[rules]]
name = "channel alarm"
on = "channel.down"
actions = [ { notify = "a channel is down", operators = ["anna"] } ]

[[rules]]
name = "channel back"
on = "channel.up"
conditions = [ { field = "channel.name", is = "tg" } ]
actions = [ { notify = "it is back" } ]
"""
    )
    write_transaction(d.conn, actions.add_operator, "anna", "Anna", OperatorRole.AGENT)
    write_transaction(d.conn, actions.add_operator, "boris", "Boris", OperatorRole.AGENT)
    d.follow()
    write_transaction(d.conn, actions.set_channel_health, d.channel, Health.UP, "")  # up from nothing: not "back"
    write_transaction(d.conn, actions.set_channel_health, d.channel, Health.DOWN, "token revoked")
    write_transaction(d.conn, actions.set_channel_health, d.channel, Health.UP, "")
    d.follow()
    assert [f[0] for f in d.fired()] == ["channel alarm", "channel back"]
    assert d.events("rule.notify") == [
        {"text": "a channel is down", "operators": ["anna"]},
        {"text": "it is back", "operators": ["anna", "boris"]},
    ]


def test_actions_reply_assign_snooze_resolve_reopen_survey(desk) -> None:
    d = desk(
        """
[[rules]]
name = "auto answer"
on = "message.received"
conditions = [ { field = "message.body", contains = "hours" } ]
actions = [ { reply = "opening-hours" }, { assign = "anna" }, { snooze = "2h" } ]

[[rules]]
name = "done"
on = "message.received"
conditions = [ { field = "message.body", contains = "thanks" } ]
actions = [ { resolve = true }, { survey = "csat" } ]

[[rules]]
name = "missing answer"
on = "message.received"
conditions = [ { field = "message.body", contains = "prices" } ]
actions = [ { reply = "no-such-answer" }, { add_labels = ["prices"] } ]
"""
    )
    write_transaction(d.conn, actions.add_operator, "anna", "Anna", OperatorRole.AGENT)
    article = ArticleRecord(key="opening-hours", title="Hours", body="Hello {customer.first_name|there}! We open at **9**.")
    write_transaction(d.conn, save_article, article, "admin")
    before = time.time()
    cid = d.write("what are your hours?")
    reply = d.one("SELECT body, author, state FROM messages WHERE conversation_id = ? AND direction = 'out'", cid)
    assert reply == ("Hello 1001! We open at 9.", "rule:auto answer", "queued")
    status, assignee, until = d.one("SELECT status, assignee, snoozed_until FROM conversations WHERE id = ?", cid)
    assert (status, assignee) == ("snoozed", "anna") and before + 7200 <= until <= time.time() + 7200
    d.write("thanks!")  # wakes it (a customer message) and the rule resolves it and asks
    assert d.one("SELECT status FROM conversations WHERE id = ?", cid) == ("resolved",)
    assert d.one("SELECT kind, conversation_id FROM surveys") == ("csat", cid)
    # A refused action is said in words; the rule's other actions still happen.
    other = d.write("your prices?", address="5005")
    assert d.fired("missing answer") == [
        (
            "missing answer",
            other,
            ["could not reply with answer 'no-such-answer': the library has no answer 'no-such-answer'", "add label prices"],
        )
    ]
    assert d.labels(other) == ["prices"]
    # Reopening (by a rule on the reopened conversation's label) goes through the same store call.
    d2 = desk(
        """
[[rules]]
name = "reopen flagged"
on = "label.added"
conditions = [ { field = "event.label", is = "again" } ]
actions = [ { reopen = true } ]
"""
    )
    c2 = d2.write("hi")
    write_transaction(d2.conn, actions.set_status, c2, ConversationStatus.RESOLVED, "anna")
    d2.follow()
    write_transaction(d2.conn, actions.set_conversation_labels, c2, ["again"], "anna")
    d2.follow()
    assert d2.one("SELECT status FROM conversations WHERE id = ?", c2) == ("open",)
    assert d2.one("SELECT actor FROM events WHERE kind = 'conversation.open'") == ("rule:reopen flagged",)


def test_a_rule_never_triggers_itself_and_chains_end(desk) -> None:
    d = desk(
        """
[[rules]]
name = "ping"
on = "label.added"
actions = [ { add_labels = ["ping"] }, { remove_labels = ["pong"] } ]

[[rules]]
name = "pong"
on = "label.added"
conditions = [ { field = "event.label", is = "ping" } ]
actions = [ { add_labels = ["pong"] }, { remove_labels = ["ping"] } ]
"""
    )
    cid = d.write("hi")
    d.follow()
    write_transaction(d.conn, actions.set_conversation_labels, cid, ["start"], "anna")
    for _ in range(10):
        d.follow()
    # anna's label fires ping; ping's label fires pong; pong's label would fire ping, but ping
    # is in the chain already: it ends there.
    assert [f[0] for f in d.fired()] == ["ping", "pong"]
    assert d.labels(cid) == ["pong", "start"]


def test_budget_of_actions_per_conversation_per_hour(desk) -> None:
    d = desk(
        """
budget = 4

[[rules]]
name = "note each"
on = "message.received"
actions = [ { note = "seen" }, { add_labels = ["seen"] } ]
"""
    )
    for _ in range(3):
        cid = d.write("again and again")
    assert len(d.fired()) == 2
    assert d.events("rule.skipped") == [
        {"rule": "note each", "reason": "the budget of 4 rule actions per hour on this conversation is spent"}
    ]
    assert d.one("SELECT count(*) FROM messages WHERE conversation_id = ? AND direction = 'note'", cid) == (2,)


def test_imports_trigger_nothing(desk) -> None:
    d = desk(
        KEYWORDS.replace('on = "message.received"', 'on = "message.received"')
        + """
[[rules]]
name = "resolved"
on = "conversation.resolved"
actions = [ { note = "bye" } ]
"""
    )
    d.follow()
    # An import stores history without the pipeline step and resolves old threads as "import".
    cid = d.write("refund please", live=False)
    write_transaction(d.conn, actions.resolve_stale, [cid], time.time() + 1, "import", "old mail")
    d.follow()
    assert d.fired() == []
    # A live message later into the same customer's new conversation fires for itself only.
    live = d.write("hello, a refund?")
    assert [f[:2] for f in d.fired()] == [("refund words", live)]


def test_follower_restart_acts_on_nothing_twice(desk, tmp_path: Path) -> None:
    rules = """
[[rules]]
name = "assigned"
on = "conversation.assigned"
actions = [ { note = "assigned" } ]
"""
    d = desk(rules)
    cid = d.write("hi")
    d.follow()
    write_transaction(d.conn, actions.add_operator, "anna", "Anna", OperatorRole.AGENT)
    write_transaction(d.conn, actions.assign, cid, "anna", "boss")
    d.follow()
    # A new process (a restarted core) on the same database: its cursor is where the last left.
    again = Engine(parse_rulebook(_toml(rules)))
    conn = connect(tmp_path / "desk0.db")
    try:
        write_transaction(conn, again.follow, time.time())
    finally:
        conn.close()
    assert len(d.fired()) == 1


def _fire_due(d: Desk, now: float) -> int:
    def one(conn):
        row = timers.take_due(conn, now, [TIMER_KIND])
        if row is not None:
            d.engine.fire_timer(conn, row, now)
        return row

    n = 0
    while write_transaction(d.conn, one) is not None:
        n += 1
    return n


def test_timers_waiting_for_us_in_business_time_no_reply_and_resolved(desk) -> None:
    hours = Calendar.parse("Mon-Fri 09:00-18:00", "UTC")
    d = desk(
        """
[[rules]]
name = "nudge"
timer = "waiting_for_us"
after = "30min"
business_time = true
calendar = "support"
actions = [ { priority = "urgent" } ]

[[rules]]
name = "close quiet"
timer = "no_customer_reply"
after = "2d"
actions = [ { resolve = true } ]

[[rules]]
name = "forget"
timer = "resolved"
after = "7d"
actions = [ { add_labels = ["archived"] } ]
""",
        calendars={"support": hours},
    )
    cid = d.write("anyone?")
    (row,) = [r for r in timers.scheduled(d.conn) if r.subject == "nudge"]
    since = d.one("SELECT waiting_since FROM conversations WHERE id = ?", cid)[0]
    assert row.kind == TIMER_KIND and row.due_at == hours.add_business(since, 1800)
    assert _fire_due(d, row.due_at - 1) == 0
    assert _fire_due(d, row.due_at) == 1
    assert d.one("SELECT priority FROM conversations WHERE id = ?", cid) == (2,)
    assert _fire_due(d, row.due_at + 10**6) == 0  # fired once; the row is gone
    # Our reply: the customer's silence timer starts; their answer would cancel it.
    d.follow()
    write_transaction(d.conn, actions.queue_reply, cid, "here we are", "anna")
    d.follow()
    (quiet,) = [r for r in timers.scheduled(d.conn) if r.subject == "close quiet"]
    assert _fire_due(d, quiet.due_at) == 1
    assert d.one("SELECT status FROM conversations WHERE id = ?", cid) == ("resolved",)
    d.follow()  # the rule's resolution starts the "resolved for 7 days" timer
    (gone,) = [r for r in timers.scheduled(d.conn) if r.subject == "forget"]
    assert gone.due_at == pytest.approx(quiet.due_at + 7 * 86400, abs=5)
    assert _fire_due(d, gone.due_at) == 1 and d.labels(cid) == ["archived"]


def test_a_timer_whose_state_ended_does_nothing(desk) -> None:
    d = desk(
        """
[[rules]]
name = "close quiet"
timer = "no_customer_reply"
after = "1h"
actions = [ { resolve = true } ]
"""
    )
    cid = d.write("hello")
    d.follow()
    write_transaction(d.conn, actions.queue_reply, cid, "hi, how can I help?", "anna")
    d.follow()
    (row,) = timers.scheduled(d.conn)
    d.write("my order is late")  # the customer answered: the timer is dropped ...
    assert timers.scheduled(d.conn) == []
    # ... and a row fired anyway (a stale copy) checks the state again and does nothing.
    write_transaction(
        d.conn,
        lambda c: timers.schedule(c, row.kind, row.due_at, 0, conversation_id=cid, subject=row.subject, payload=row.payload),
    )
    assert _fire_due(d, row.due_at) == 1  # taken from the schedule ...
    assert d.fired() == [] and d.one("SELECT status FROM conversations WHERE id = ?", cid) == ("open",)


def test_a_timer_of_a_conversation_blocked_into_spam_does_nothing(desk) -> None:
    """Spam is never answered (README "Spam"): the customer's silence after our reply does not
    let a rule reply, note or resolve once the sender is blocked."""
    from omniconsole.store import spam

    d = desk(
        """
[[rules]]
name = "close quiet"
timer = "no_customer_reply"
after = "1h"
actions = [ { note = "closing" }, { resolve = true } ]
"""
    )
    cid = d.write("hello")
    d.follow()
    write_transaction(d.conn, actions.queue_reply, cid, "hi, how can I help?", "anna")
    d.follow()
    (row,) = timers.scheduled(d.conn)
    customer = d.one("SELECT customer_id FROM conversations WHERE id = ?", cid)[0]
    write_transaction(d.conn, lambda conn: spam.block(conn, customer, None, "anna"))
    d.follow()
    assert _fire_due(d, row.due_at) == 1  # taken from the schedule ...
    assert d.fired() == [] and d.one("SELECT status FROM conversations WHERE id = ?", cid) == ("spam",)


def test_dry_run_matches_the_live_run_on_the_same_history(desk, tmp_path: Path) -> None:
    rules = (
        KEYWORDS
        + """
[[rules]]
name = "greeting"
on = "conversation.opened"
conditions = [ { field = "message.body", contains = "hello" } ]
actions = [ { note = "new customer" } ]

[[rules]]
name = "resolved"
on = "conversation.resolved"
actions = [ { add_labels = ["done"] } ]
"""
    )
    d = desk(rules)
    d.follow()
    texts = ["hello, refund?", "where is my parcel", "money back now", "hello there", "REFUND!!", "ok"]
    cids = [d.write(t, address=str(7000 + i % 4)) for i, t in enumerate(texts)]
    write_transaction(d.conn, actions.set_status, cids[1], ConversationStatus.RESOLVED, "anna")
    d.follow()
    live = sorted((f[0], f[1], "; ".join(f[2])) for f in d.fired(key="actions"))
    planned = dry_run(d.engine, d.conn, time.time() - 3600)
    dry = sorted((p.rule.name, p.trigger.conversation_id, p.words()) for p in planned)
    assert live == dry
    # "hello" opened two conversations; refund words came three times; one resolution.
    assert [name for name, *_ in live].count("greeting") == 2
    assert [name for name, *_ in live].count("refund words") == 3 and [name for name, *_ in live].count("resolved") == 1
    # The dry run did nothing.
    assert len(d.fired()) == len(live)


def test_validation_errors_name_the_rule_in_one_line(tmp_path: Path) -> None:
    def problem(text: str) -> str:
        path = tmp_path / "rules.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(RulesError) as caught:
            load_rules(path)
        assert "\n" not in str(caught.value)
        return str(caught.value).replace(str(path), "F")

    assert problem('[[rules]]\nname = "x"\non = "message.sent"\nactions = [{ note = "a" }]') == (
        "F: rule 'x': unknown event 'message.sent'; events are "
        + ", ".join(__import__("omniconsole.automation.rules", fromlist=["EVENTS"]).EVENTS)
    )
    assert problem('[[rules]]\nname = "x"\ntimer = "resolved"\nafter = "soon"\nactions = [{ note = "a" }]') == (
        'F: rule \'x\': \'soon\' is not a duration; write one such as "30min", "2h" or "7d"'
    )
    assert problem(
        '[[rules]]\nname = "x"\non = "message.received"\nconditions = [{ field = "message.body", matches = "(" }]\nactions = [{ note = "a" }]'
    ).startswith("F: rule 'x': '(' is not a regular expression")
    assert problem('[[rules]]\nname = "x"\non = "message.received"\nactions = [{ shout = "a" }]').startswith(
        "F: rule 'x': an action needs exactly one of reply, note"
    )
    assert problem('[[rules]]\nname = "x"\non = "channel.down"\nactions = [{ resolve = true }]') == (
        "F: rule 'x': channel.down has no conversation, so only notify and webhook can follow it (not resolve)"
    )
    assert problem(
        '[[rules]]\nname = "x"\non = "message.received"\nconditions = [{ field = "message.colour", is = "red" }]\nactions = [{ note = "a" }]'
    ).startswith("F: rule 'x': unknown field 'message.colour'")
    assert problem(
        '[[rules]]\nname = "x"\ntimer = "waiting_for_us"\nafter = "1h"\nbusiness_time = true\ncalendar = "nope"\nactions = [{ note = "a" }]'
    ) == ("F: rule 'x': calendar 'nope' is not defined in [[calendars]]")
    assert problem('[[rules]]\nname = "x"\non = "message.received"\nactions = [{ priority = "huge" }]') == (
        "F: rule 'x': priority is one of normal, high, urgent (or 0, 1, 2)"
    )
    assert problem(
        '[[rules]]\nname = "x"\non = "message.received"\nactions = [{ note = "a" }]\n[[rules]]\nname = "x"\non = "message.received"\nactions = [{ note = "a" }]'
    ) == ("F: rule 'x' is defined twice; names must be unique")
    assert problem('[[macros]]\nname = "m"\nactions = []') == "F: macro 'm': actions must be a non-empty list of tables"
    assert problem("[[rules]\n").startswith("rules file F is not valid TOML")


def test_the_shipped_example_rules_are_valid() -> None:
    book = load_rules(repo_root() / "data" / "rules.example.toml", {"default"})
    names = {r.name for r in book.rules}
    assert {
        "out of office",
        "auto-resolve quiet conversations",
        "labels from keywords",
        "VIP customers to the senior queue",
    } <= names
    assert book.macros


def test_rules_check_and_test_commands(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(KEYWORDS, encoding="utf-8")
    config = tmp_path / "omniconsole.toml"
    config.write_text(f'[store]\ndatabase = "{tmp_path / "o.db"}"\n\n[automation]\nrules = "rules.toml"\n', encoding="utf-8")
    env = subprocess_env()

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "omniconsole.cli", "--config", str(config), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        )

    done = cli("rules", "check")
    assert done.returncode == 0, done.stderr
    assert (
        "1 rules and 0 macros are fine" in done.stdout and "rule refund words: when a customer's message arrives" in done.stdout
    )
    # History written with no rules running: the dry run says what would have happened.
    conn = connect(tmp_path / "o.db")
    try:
        d = Desk.__new__(Desk)
        d.conn, d.n = conn, 0
        d.ingestor = Ingestor.__new__(Ingestor)
        d.ingestor.default_region = "RU"
        d.channel = write_transaction(conn, actions.ensure_channel, "telegram", "tg")
        cid = d.write("a refund please", live=False)
        for n in range(3):
            d.write(f"refund number {n}", address=f"20{n}", live=False)
    finally:
        conn.close()
    done = cli("rules", "test", "--days", "1", "--show", "1")
    assert done.returncode == 0, done.stderr
    assert "rule refund words (a customer's message arrives): 4 matches" in done.stdout
    assert "  … and 3 more (--show 0 lists all)" in done.stdout
    assert done.stdout.count("would add label refund") == 1
    done = cli("rules", "test", "--days", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("would add label refund") == 4 and "more" not in done.stdout
    assert f"conversation #{cid}: would add label refund; set priority high; add a private note 'check the order'" in done.stdout
    conn = connect(tmp_path / "o.db")
    try:
        assert conn.execute("SELECT count(*) FROM events WHERE kind LIKE 'rule.%'").fetchone()[0] == 0
    finally:
        conn.close()
    rules.write_text('[[rules]]\nname = "bad"\non = "message.received"\nactions = [{ priority = "huge" }]\n', encoding="utf-8")
    done = cli("rules", "check")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"omniconsole: error: {rules}: rule 'bad': priority is one of normal, high, urgent (or 0, 1, 2)"
    ]


def test_the_config_names_the_rules_file_and_its_mistakes_stop_the_start(tmp_path: Path) -> None:
    from omniconsole.config import load_settings
    from omniconsole.errors import UsageError

    config = tmp_path / "omniconsole.toml"
    config.write_text('[automation]\nrules = "rules.toml"\n', encoding="utf-8")
    (tmp_path / "rules.toml").write_text(KEYWORDS, encoding="utf-8")
    settings = load_settings(config)
    assert settings.automation.rules_path == tmp_path / "rules.toml"
    assert [r.name for r in settings.automation.book.rules] == ["refund words"]
    (tmp_path / "rules.toml").write_text(
        '[[rules]]\nname = "tell the crm"\non = "conversation.resolved"\nactions = [{ webhook = "crm" }]\n', encoding="utf-8"
    )
    with pytest.raises(UsageError) as caught:
        load_settings(config)
    assert (
        str(caught.value)
        == f"{tmp_path / 'rules.toml'}: rule 'tell the crm': webhook 'crm' is not a [[webhooks]] endpoint of {config}"
    )
    (tmp_path / "rules.toml").unlink()
    with pytest.raises(UsageError, match="rules file .* does not exist"):
        load_settings(config)


def test_history_an_import_stored_earlier_is_no_trigger_when_a_live_edit_reaches_it(desk) -> None:
    d = desk(KEYWORDS)
    cid = d.write("refund, imported long ago", live=False)
    write_transaction(d.conn, lambda c: c.execute("UPDATE events SET at = at - 3600"))
    write_transaction(d.conn, d.engine.step, cid, time.time())  # the step runs for an edit
    assert d.fired() == []


def test_a_customer_reply_to_a_resolved_mail_thread_triggers_reopened(desk) -> None:
    d = desk(
        """
[[rules]]
name = "back again"
on = "conversation.reopened"
actions = [ { add_labels = ["returned"] } ]
"""
    )
    channel = write_transaction(d.conn, actions.ensure_channel, "email", "mail")
    from omniconsole.models import IdentityKind

    def mail(n: int, body: str, **fields) -> int:
        record = d.ingestor.prepare(inbound(f"<m{n}@x>", body, kind=IdentityKind.EMAIL, address="ann@example.com", **fields))
        result = write_transaction(d.conn, history.ingest_batch, channel, "email", [record], None)
        write_transaction(d.conn, d.engine.step, result.receipts[0][2], time.time())
        return result.receipts[0][2]

    cid = mail(1, "my order", thread_key="<m1@x>")
    write_transaction(d.conn, actions.set_status, cid, ConversationStatus.RESOLVED, "anna")
    time.sleep(0.01)  # another batch, another stamp
    assert mail(2, "it broke again", thread_key="<m2@x>", reply_to_keys=("<m1@x>",)) == cid
    assert d.fired() == [("back again", cid, ["add label returned"])]


def test_conditions_on_language_labels_and_office_hours(desk) -> None:
    from omniconsole.answers.language import detect_messages

    closed = Calendar.parse("Mon 00:00-00:01", "UTC")  # open one minute a week
    d = desk(
        """
[[rules]]
name = "russian after hours"
on = "message.received"
calendar = "tiny"
conditions = [
  { field = "message.language", is = "ru" },
  { field = "office_hours", is = false },
  { field = "conversation.labels", has = "billing" },
]
actions = [ { note = "ответим утром" } ]
""",
        calendars={"tiny": closed},
    )
    d.engine.detect = detect_messages
    cid = d.write("Здравствуйте, у меня вопрос по оплате заказа")
    assert d.fired() == []  # no billing label yet
    write_transaction(d.conn, actions.set_conversation_labels, cid, ["billing"], "anna")
    d.write("Hello, a question about my invoice please")
    assert d.fired() == []  # English
    d.write("Подскажите, пожалуйста, когда придёт возврат денег")
    if closed.is_open(time.time()):
        pytest.skip("the one open minute of the week")
    assert d.fired() == [("russian after hours", cid, ["add a private note 'ответим утром'"])]


async def test_a_macro_runs_every_action_through_store_methods(store) -> None:
    from omniconsole.automation.macros import run_macro
    from omniconsole.store import Store

    assert isinstance(store, Store)
    book = parse_rulebook(
        _toml(
            """
[[macros]]
name = "Everything"
actions = [
  { reply = "hello" }, { note = "n" }, { add_labels = ["a", "b"] }, { remove_labels = ["b"] }, { priority = "high" },
  { assign = "anna" }, { assign_queue = "senior" }, { webhook = "crm" }, { notify = "look", operators = ["anna"] },
  { survey = "csat" }, { snooze = "1h" },
]
"""
        )
    )
    channel = await store.ensure_channel("telegram", "tg")
    await Ingestor(store, store.path.parent, "RU").ingest(channel, "telegram", [inbound("x1", "hi", address="1001")], None)
    cid = (await store.db.run(lambda c: c.execute("SELECT id FROM conversations").fetchone()))[0]
    await store.add_operator("anna", "Anna")
    await store.kb_save(ArticleRecord(key="hello", title="Hello", body="Hi {customer.first_name|there}, **welcome**"), "admin")
    did = await run_macro(store, book.macros[0], cid, "boris", customer_name="Ann Lee")
    assert did == [
        "reply with answer 'hello'",
        "add a private note 'n'",
        "add labels a, b",
        "remove label b",
        "set priority high",
        "assign to anna",
        "move to queue senior",
        "call webhook crm",
        "notify anna: 'look'",
        "could not send a CSAT survey: surveys are sent by the core after a resolution, not from a macro",
        "snooze for 1 h",
    ]
    conversation = await store.conversation(cid)
    assert (conversation.labels, conversation.priority, conversation.assignee, conversation.status) == (
        ("a",),
        1,
        "anna",
        "snoozed",
    )

    def read(c):
        return (
            c.execute("SELECT body, author FROM messages WHERE direction = 'out'").fetchone(),
            c.execute("SELECT queue FROM conversations").fetchone()[0],
            [
                (k, a, json.loads(p))
                for k, a, p in c.execute(
                    "SELECT kind, actor, payload FROM events WHERE kind IN ('rule.webhook', 'rule.notify') ORDER BY id"
                )
            ],
            c.execute("SELECT body FROM messages WHERE body LIKE 'boris ran macro%'").fetchone()[0],
        )

    reply, queue, calls, line = await store.db.run(read)
    assert tuple(reply) == ("Hi Ann, welcome", "boris") and queue == "senior"
    assert calls == [
        ("rule.webhook", "boris", {"endpoint": "crm", "macro": "Everything"}),
        ("rule.notify", "boris", {"text": "look", "operators": ["anna"]}),
    ]
    assert line.startswith("boris ran macro Everything: reply with answer 'hello'; add a private note 'n'")


async def test_an_event_the_rules_cannot_handle_is_skipped_in_words_and_holds_up_nothing(
    store, tmp_path: Path, monkeypatch
) -> None:
    import asyncio

    from omniconsole.automation import core_extension
    from omniconsole.automation.engine import Engine as RulesEngine
    from omniconsole.automation.rules import AutomationSettings
    from omniconsole.config import default_settings
    from omniconsole.core.scheduler import Scheduler

    book = parse_rulebook(_toml('[[rules]]\nname = "tag"\non = "conversation.assigned"\nactions = [{ note = "assigned" }]\n'))
    settings = dataclasses.replace(default_settings(store.path), automation=AutomationSettings(None, book))
    real = RulesEngine._do

    def flaky(self, conn, action, actor, planned, now):
        if planned.trigger.conversation_id == bad:
            raise RuntimeError("disk on fire")
        return real(self, conn, action, actor, planned, now)

    monkeypatch.setattr(RulesEngine, "_do", flaky)
    extension = core_extension(settings, tick=0.02)
    channel = await store.ensure_channel("telegram", "tg")
    ingestor = Ingestor(store, tmp_path, "RU")
    await ingestor.ingest(channel, "telegram", [inbound("a", "hi", address="1"), inbound("b", "hi", address="2")], None)
    bad, good = [r[0] for r in await store.db.run(lambda c: c.execute("SELECT id FROM conversations ORDER BY id").fetchall())]
    await store.add_operator("anna", "Anna")
    task = asyncio.create_task(extension.background(store, Scheduler(store, extension.handlers)))
    try:
        await asyncio.sleep(0.2)  # the follower starts at the newest event
        await store.assign(bad, "anna", "boss")
        await store.assign(good, "anna", "boss")
        for _ in range(200):
            kinds = await store.db.run(lambda c: [r[0] for r in c.execute("SELECT kind FROM events WHERE kind LIKE 'rule.%'")])
            if "rule.fired" in kinds:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    rows = await store.db.run(
        lambda c: c.execute("SELECT kind, conversation_id, payload FROM events WHERE kind LIKE 'rule.%' ORDER BY id").fetchall()
    )
    assert [(k, c) for k, c, _ in rows] == [("rule.failed", bad), ("rule.fired", good)]
    failed = json.loads(rows[0][2])
    assert failed["kind"] == "conversation.assigned" and failed["reason"] == "RuntimeError: disk on fire"


def test_firings_older_than_a_day_are_forgotten_once_followed(desk) -> None:
    d = desk(KEYWORDS)
    d.write("refund!")
    d.follow()
    assert d.one("SELECT count(*) FROM rule_firings") == (1,)
    d.write("another refund", address="9")
    d.follow(time.time() + 2 * 86400)  # a day later the first firing is history
    assert d.one("SELECT count(*) FROM rule_firings") == (0,)


def test_the_dry_run_lists_timers_that_would_have_fired(desk) -> None:
    d = desk(
        """
[[rules]]
name = "nudge"
timer = "waiting_for_us"
after = "30min"
actions = [ { priority = "urgent" } ]
"""
    )
    waiting = d.write("anyone?")
    answered = d.write("hello", address="77")
    write_transaction(d.conn, actions.queue_reply, answered, "hi!", "anna")
    now = time.time()
    assert dry_run(d.engine, d.conn, now - 3600, now + 60) == []  # not yet half an hour
    (planned,) = dry_run(d.engine, d.conn, now - 3600, now + 1800)
    assert (planned.rule.name, planned.trigger.conversation_id, planned.words()) == ("nudge", waiting, "set priority urgent")
    assert d.fired() == []


def test_rules_do_not_act_on_a_blocked_customers_conversations(desk) -> None:
    """Spam is never answered, routed or worked (README "Spam"): a blocked sender's new
    message matches no event rule — no auto-reply, label, note or assignment — while the same
    rule keeps acting for everyone else."""
    from omniconsole.store import spam

    d = desk(
        """
[[rules]]
name = "tag every message"
on = "message.received"
actions = [ { add_labels = ["seen"] }, { note = "a rule saw this" } ]
"""
    )
    cid = d.write("hello")
    d.follow()
    assert len(d.fired("tag every message")) == 1
    customer = d.one("SELECT customer_id FROM conversations WHERE id = ?", cid)[0]
    write_transaction(d.conn, lambda conn: spam.block(conn, customer, None, "anna"))
    d.follow()
    spam_cid = d.write("buy cheap watches")
    d.follow()
    assert d.one("SELECT status FROM conversations WHERE id = ?", spam_cid) == ("spam",)
    assert len(d.fired("tag every message")) == 1  # nothing for the blocked sender
    other = d.write("where is my order?", address="2002")
    d.follow()
    assert len(d.fired("tag every message")) == 2 and d.labels(other) == ["seen"]
