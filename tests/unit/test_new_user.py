"""What a new user met on the command line and in search (issue 15): phones found however they
are dictated, search pages that say there are more, a customer named by address in `export`
and `erase`, a benchmark that never overwrites a real database, one migration line, the
demo's config beside its database, a mailbox's own replies recognised, docs that stand alone."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import tomllib
from pathlib import Path

import pytest

from omniconsole.core.identity import phone_search_digits
from omniconsole.core.ingest import Ingestor
from omniconsole.core.mail_import import import_mailbox, print_summary
from omniconsole.models import IdentityKind
from omniconsole.store import Store
from tests.conftest import inbound, repo_root
from tests.unit.test_cli import assert_one_line_error, omniconsole
from tests.unit.test_mail_import import mail, write_mbox


@pytest.fixture
async def ingest(store: Store, tmp_path):
    ingestor = Ingestor(store, tmp_path / "data")
    channels: dict[str, int] = {}

    async def deliver(messages, channel="telegram"):
        if channel not in channels:
            channels[channel] = await store.ensure_channel(channel, channel)
        return await ingestor.ingest(channels[channel], channel, messages, None)

    return deliver


# --- phone search -------------------------------------------------------------------------

DICTATED = ["8 (916) 642-38-68", "89166423868", "9166423868", "916 642", "6423868", "+7 916 642-38-68", "8 916 642"]


@pytest.mark.parametrize("typed", DICTATED)
def test_a_dictated_number_gives_digits_inside_the_stored_one(typed):
    stored = "79166423868"  # +7 916 642-38-68 in E.164, the + dropped
    runs = phone_search_digits(typed, "RU")
    assert runs and any(run in stored for run in runs), runs


def test_words_and_short_digit_runs_are_not_phone_searches():
    assert phone_search_digits("заказ 4711", "RU") == ()
    assert phone_search_digits("471", "RU") == ()
    assert phone_search_digits("ivan@example.com", "RU") == ()
    # The region decides how a national number reads: in Britain 020 is London, +44 20.
    assert "442079460000" in phone_search_digits("020 7946 0000", "GB")


async def test_search_finds_a_caller_by_every_dictated_form(store, ingest):
    await ingest([inbound("c1", "Перезвоните мне", kind=IdentityKind.PHONE, address="+79166423868")], channel="phone")
    await ingest([inbound("c2", "hello", kind=IdentityKind.PHONE, address="+79031112233")], channel="phone")
    owner = (await store.search("+7 916 642-38-68")).customers[0].customer_id
    for typed in DICTATED:
        found = await store.search(typed, phone_digits=phone_search_digits(typed, "RU"))
        assert [c.customer_id for c in found.customers] == [owner], typed
    # A WhatsApp number is the same kind of number.
    await ingest([inbound("w1", "hi", kind=IdentityKind.WHATSAPP, address="+79250001122")], channel="whatsapp")
    found = await store.search("8 925 000", phone_digits=phone_search_digits("8 925 000", "RU"))
    assert len(found.customers) == 1


# --- search pages ---------------------------------------------------------------------------


async def test_search_says_there_are_more_and_pages_on(store, ingest):
    base = time.time() - 1000
    await ingest([inbound(f"a{n}", f"delivery problem {n}", address=str(n % 3), at=base + n) for n in range(7)])
    first = await store.search("delivery", limit=3)
    assert len(first.messages) == 3 and first.more
    second = await store.search("delivery", limit=3, before_id=first.messages[-1].message_id)
    third = await store.search("delivery", limit=3, before_id=second.messages[-1].message_id)
    assert second.more and not third.more and len(third.messages) == 1
    seen = [h.message_id for page in (first, second, third) for h in page.messages]
    assert len(set(seen)) == 7 and seen == sorted(seen, reverse=True)
    exactly = await store.search("delivery", limit=7)
    assert len(exactly.messages) == 7 and not exactly.more


# --- migrations ----------------------------------------------------------------------------


async def test_a_new_database_logs_one_line_and_an_old_one_none(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="omniconsole.store.database")
    store = await Store.open(tmp_path / "new.db")
    await store.close()
    lines = [r.getMessage() for r in caplog.records if "schema version" in r.getMessage()]
    assert len(lines) == 1 and "created" in lines[0], lines
    caplog.clear()
    store = await Store.open(tmp_path / "new.db")
    await store.close()
    assert not [r for r in caplog.records if "schema version" in r.getMessage()]


# --- the command line ----------------------------------------------------------------------


def test_export_and_erase_take_an_email_or_a_phone(tmp_path):
    db = str(tmp_path / "x.db")
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("name,email,phone\nIvan Petrov,ivan@example.com,+7 916 642-38-68\nEmma Wilson,emma@example.com,\n")
    assert omniconsole("import", "contacts", str(contacts), "--db", db).returncode == 0
    by_mail = omniconsole("export", "customer", "IVAN@example.com", "--db", db)
    assert by_mail.returncode == 0, by_mail.stderr
    ivan = json.loads(by_mail.stdout)["customer"]["id"]
    for given in ("8 (916) 642-38-68", "89166423868", str(ivan), f"#{ivan}"):
        result = omniconsole("export", "customer", given, "--db", db)
        assert result.returncode == 0 and json.loads(result.stdout)["customer"]["id"] == ivan, (given, result.stderr)
    assert_one_line_error(
        omniconsole("export", "customer", "nobody@example.com", "--db", db), "no customer has", "nobody@example.com"
    )
    assert_one_line_error(omniconsole("export", "customer", "hello there", "--db", db), "neither a customer id")
    assert_one_line_error(omniconsole("export", "customer", "999", "--db", db), "no customer 999")
    erased = omniconsole("erase", "customer", "emma@example.com", "--yes", "--db", db)
    assert erased.returncode == 0 and "erased customer" in erased.stdout, erased.stderr
    assert_one_line_error(omniconsole("export", "customer", "emma@example.com", "--db", db), "no customer has")


def test_bench_ingest_never_overwrites_a_database_that_is_not_a_bench_one(tmp_path):
    real = tmp_path / "real.db"
    conn = sqlite3.connect(real)
    conn.execute("CREATE TABLE precious (x)")
    conn.commit()
    conn.close()
    before = real.read_bytes()
    assert_one_line_error(omniconsole("bench", "ingest", "--messages", "500", "--keep", str(real)), "not a benchmark database")
    assert real.read_bytes() == before
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    assert_one_line_error(omniconsole("bench", "ingest", "--messages", "500", "--db", str(notes)), "refusing to overwrite")
    assert notes.read_text() == "my notes"
    # An omniconsole database with real channels is refused too.
    shop = tmp_path / "shop.db"
    assert omniconsole("operator", "add", "x", "--db", str(shop)).returncode == 0
    conn = sqlite3.connect(shop)
    conn.execute("INSERT INTO channels (kind, name, created_at) VALUES ('telegram', 'Support bot', 0)")
    conn.commit()
    conn.close()
    assert_one_line_error(omniconsole("bench", "ingest", "--messages", "500", "--keep", str(shop)), "not a benchmark database")
    # --db is honoured (the database is kept there) and a bench database is replaced.
    kept = tmp_path / "bench.db"
    for _ in range(2):
        result = omniconsole("bench", "ingest", "--messages", "500", "--db", str(kept))
        assert result.returncode == 0, result.stderr
        names = [r[0] for r in sqlite3.connect(kept).execute("SELECT name FROM channels")]
        assert names and all(name.startswith("bench ") for name in names)
        assert sqlite3.connect(kept).execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 500
    assert_one_line_error(
        omniconsole("bench", "ingest", "--keep", str(kept), "--db", str(tmp_path / "other.db")), "name two files"
    )


def test_doctor_names_unknown_keymap_ids_and_the_nearest_real_one(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[keymap]\n"inbox.resolve" = "E"\n"app.serch" = "f2"\n"conversation.reply" = "ctrl+r"\n')
    result = omniconsole("--config", str(config), "doctor")
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warn")]
    assert warnings == [
        'warn  [keymap] "inbox.resolve" is not a binding id and is ignored; did you mean "conversation.resolve"?',
        'warn  [keymap] "app.serch" is not a binding id and is ignored; did you mean "app.search"?',
    ], result.stdout


def test_the_demo_writes_a_config_that_stats_and_doctor_read(tmp_path):
    demo = tmp_path / "demo"
    result = omniconsole("demo", "--dir", str(demo), "--conversations", "30", "--seconds", "1", "--rate", "0")
    assert result.returncode == 0, result.stderr
    config = demo / "omniconsole.toml"
    assert str(config) in result.stdout
    # One line for the new database's migrations, not one per step.
    assert result.stderr.count("schema version") == 1, result.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    stats = omniconsole("--config", str(config), "stats", cwd=elsewhere)
    assert stats.returncode == 0 and str(demo / "omniconsole.db") in stats.stdout and "WhatsApp (demo)" in stats.stdout
    doctor = omniconsole("--config", str(config), "doctor", cwd=elsewhere)
    assert "no channels configured" not in doctor.stdout
    assert sum(line.startswith("ok    ") and "(demo)" in line for line in doctor.stdout.splitlines()) == 5, doctor.stdout


# --- a mailbox's own replies ------------------------------------------------------------------


async def test_an_mbox_without_own_address_names_the_sender_who_answers_everyone(store, tmp_path, capsys):
    from omniconsole.config import Settings

    settings = Settings(database=tmp_path / "omniconsole.db", data_dir=tmp_path / "data")
    raws = []
    for n, who in enumerate(("anna", "boris", "vera", "gleb")):
        raws.append(mail(f"<q{n}@customer.example>", f"{who} <{who}@customer.example>", "Где заказ?", hours=n))
        raws.append(
            mail(
                f"<a{n}@shop.example>",
                "Support <support@shop.example>",
                "Уже везём.",
                hours=n + 1,
                references=(f"<q{n}@customer.example>",),
            )
        )
    # A customer answering us back is one conversation partner, not many.
    raws.append(
        mail(
            "<q9@customer.example>",
            "anna <anna@customer.example>",
            "Спасибо",
            hours=9,
            references=("<q0@customer.example>", "<a0@shop.example>"),
        )
    )
    summary = await import_mailbox(store, settings, iter_mbox_of(write_mbox(tmp_path / "box.mbox", raws)), workers=0)
    assert summary.answering == [("support@shop.example", 4)]
    print_summary(summary, "import")
    out = capsys.readouterr().out
    assert "support@shop.example answered mail from 4 different senders" in out and "--own-address support@shop.example" in out
    # Given as our own, nothing is said.
    again = await import_mailbox(
        store,
        settings,
        iter_mbox_of(tmp_path / "box.mbox"),
        workers=0,
        channel_name="second",
        own_addresses=["support@shop.example"],
    )
    assert again.answering == [] and again.own == 4


def iter_mbox_of(path: Path):
    from connectors.mail.mailbox import iter_mbox

    return iter_mbox(path)


# --- what a reader of the repository gets ----------------------------------------------------


def test_readme_and_docs_need_nothing_outside_the_repository():
    root = repo_root()
    for path in [root / "README.md", *sorted((root / "docs").rglob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text, path
    for link in ("docs/architecture.md",):
        assert link in (root / "README.md").read_text(encoding="utf-8") and (root / link).exists()
    readme = (root / "README.md").read_text(encoding="utf-8")
    quick_start = readme[readme.index("## Quick start") : readme.index("## Commands")]
    assert "skips" in quick_start and ".ci/run" in quick_start and "Dovecot" in quick_start


def test_packaging_uses_the_spdx_license_form():
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "MIT"  # a table makes setuptools >= 77 warn on every install
    [setuptools] = [r for r in project["build-system"]["requires"] if r.startswith("setuptools")]
    assert setuptools == "setuptools>=77"  # the first to read the SPDX string (PEP 639)


def test_config_template_speaks_of_the_present():
    from omniconsole.config import template

    text = template()
    assert "later the website chat" not in text
    assert "inbox.resolve" not in text and '# "conversation.resolve" = "x"' in text


# --- the demo ------------------------------------------------------------------------------


async def test_the_demo_reports_delivery_of_an_operators_reply_and_offers_templates(store, tmp_path):
    import asyncio

    from omniconsole.config import ChannelSettings, Settings
    from omniconsole.core.demo import demo_settings
    from omniconsole.core.hub import Hub
    from omniconsole.message_templates import parse_templates
    from omniconsole.models import InboxView
    from tests.unit.test_core import FAST, stop, wait_until

    whatsapp = next(c for c in demo_settings(tmp_path).channels if c.options["simulate"] == "whatsapp")
    assert [t.name for t in parse_templates(whatsapp.options["templates"])] == ["order_update", "follow_up"]

    options = {"simulate": "telegram", "seed": 7, "rate": 0, "limit": 40, "send_delay": 0.05, "failure_rate": 0}
    settings = Settings(
        database=store.path,
        data_dir=tmp_path / "data",
        channels=[ChannelSettings(kind="demo", name="Telegram (demo)", options=options)],
    )
    task = asyncio.create_task(Hub(settings, store, timing=FAST).run())
    try:
        rows = await wait_until(lambda: store.inbox_page(InboxView.ALL), timeout=20)
        reply = await store.queue_reply(rows[0].conversation_id, "Проверяем, ответим в течение часа", "anna")

        async def state():
            [entry] = [e for e in await store.timeline(rows[0].conversation_id) if e.id == reply]
            return entry.state in ("delivered", "read") and entry.state

        assert await wait_until(state, timeout=20)
    finally:
        await stop(task)


async def test_the_demo_phone_channel_carries_calls_that_ring_the_operator(store, tmp_path):
    import asyncio

    from connectors.demo import DEMO_EXTENSION
    from omniconsole.config import ChannelSettings, Settings
    from omniconsole.core.demo import demo_settings
    from omniconsole.core.hub import Hub
    from tests.unit.test_core import FAST, stop, wait_until

    phone = next(c for c in demo_settings(tmp_path).channels if c.options["simulate"] == "phone")
    assert phone.options["calls"] is True  # what `omniconsole demo` runs
    options = {"simulate": "phone", "seed": 7, "rate": 0, "limit": 60, "calls": True}
    settings = Settings(
        database=store.path,
        data_dir=tmp_path / "data",
        channels=[ChannelSettings(kind="demo", name="Phone (demo)", options=options)],
    )
    task = asyncio.create_task(Hub(settings, store, timing=FAST).run())

    async def calls():
        rows = await store.db.run(
            lambda c: c.execute("SELECT meta FROM messages WHERE external_id LIKE 'call:demo-%' AND flags = 'call'").fetchall()
        )
        return [json.loads(r[0])["call"] for r in rows]

    async def every_call_over():
        found = await calls()
        return found if found and all(call.get("final") for call in found) else None

    try:
        found = await wait_until(every_call_over, timeout=40)
    finally:
        await stop(task)
    assert not await store.db.run(
        lambda c: c.execute("SELECT 1 FROM messages WHERE direction = 'in' AND channel_id IS NOT NULL").fetchall()
    )  # calls, not text
    answered = [call for call in found if call.get("answered")]
    missed = [call for call in found if not call.get("answered")]
    assert answered and missed, found
    assert all(40 <= call["duration"] <= 420 and call["note"] for call in answered)
    rang = await store.db.run(lambda c: c.execute("SELECT payload FROM events WHERE kind = 'call.ringing'").fetchall())
    assert len(rang) == len(found) and all(DEMO_EXTENSION in r[0] for r in rang)


def test_the_demo_config_runs_an_sla_policy_and_macros_with_answers_the_demo_library_has(tmp_path):
    """A newcomer sees countdowns, the At risk view and `M` in the demo: its config carries an
    SLA policy and names a rules file whose macros reply with answers the demo library has."""
    from omniconsole.answers.library import DEMO_LIBRARY
    from omniconsole.config import load_settings
    from omniconsole.core.demo import DEMO_CONFIG_NAME, DEMO_RULES, DEMO_RULES_NAME, demo_config_text, demo_settings

    settings = demo_settings(tmp_path)
    (tmp_path / DEMO_CONFIG_NAME).write_text(demo_config_text(settings), encoding="utf-8")
    (tmp_path / DEMO_RULES_NAME).write_text(DEMO_RULES, encoding="utf-8")
    loaded = load_settings(tmp_path / DEMO_CONFIG_NAME)
    assert [p.name for p in loaded.sla] == ["Demo: answer within 15 minutes"]
    macros = loaded.automation.book.macros_for("anyone")
    assert len(macros) == 2
    answers = {path.name.split(".")[0] for path in DEMO_LIBRARY.rglob("*.md")}
    replies = {a.value for m in macros for a in m.actions if a.kind == "reply"}
    assert replies == {"closing", "checking"} and replies <= answers
