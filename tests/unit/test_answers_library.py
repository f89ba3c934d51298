"""The answers library as files and in the store: the fixed file format, placeholders, scripts,
`kb import / export / list`, refusals in one line naming the file, usage figures."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from omniconsole.answers.library import (
    DEMO_LIBRARY,
    import_folder,
    read_folder,
    write_folder,
)
from omniconsole.answers.placeholders import ask_labels, fill, unknown_placeholders
from omniconsole.answers.scripts import Branch, parse_script
from omniconsole.store import Store
from omniconsole.store.answers import ArticleRecord
from tests.unit.test_cli import omniconsole

REPO = Path(__file__).resolve().parents[2]


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- the file format ----------------------------------------------------------------------


def test_defaults_from_the_file_name_and_kind(tmp_path):
    write(tmp_path, "delivery/late.ru.md", "---\ntitle: Курьер опаздывает\ntags: доставка\n---\nИзвините!\n")
    write(tmp_path, "faq.md", "---\ntitle: FAQ\nowner: team-a\nreviewed: 2026-01-01\n---\n# Q\n\nA\n")
    write(tmp_path, "s.md", "---\ntitle: S\nkind: script\n---\n1. One → 2\n2. Two\n")
    write(tmp_path, "ask.en.md", "---\ntitle: Ask\nkind: answer\nshortcode: /ord\n---\nOrder {ask:order number}\n")
    write(tmp_path, "open.en.md", "---\ntitle: Open\nkind: script\ninternal: false\n---\n1. x\n")
    read = read_folder(tmp_path)
    assert read.problems == []
    by_key = {r.key: r for r in read.records}
    late = by_key["late"]
    assert (late.language, late.kind, late.tags, late.internal, late.source_path) == (
        "ru",
        "article",
        ("доставка",),
        False,
        "delivery/late.ru.md",
    )
    assert by_key["faq"].language == "" and by_key["faq"].extra == {
        "owner": "team-a",
        "reviewed": __import__("datetime").date(2026, 1, 1),
    }
    assert by_key["s"].internal is True  # scripts are internal by default
    assert by_key["ask"].internal is True and by_key["ask"].shortcode == "ord"  # {ask:} makes it internal
    assert by_key["open"].internal is False  # unless said otherwise


def test_language_variants_share_an_id_and_duplicates_name_both_files(tmp_path):
    write(tmp_path, "a/hello.ru.md", "---\ntitle: Привет\n---\nПривет\n")
    write(tmp_path, "a/hello.en.md", "---\ntitle: Hello\n---\nHello\n")
    write(tmp_path, "b/other.md", "---\nid: hello\nlanguage: en\ntitle: Hello again\n---\nHi\n")
    read = read_folder(tmp_path)
    assert sorted((r.key, r.language) for r in read.records) == [("hello", "en"), ("hello", "ru")]
    assert read.problems == ["b/other.md: refused: duplicate of id 'hello' (en) already read from a/hello.en.md"]


MALFORMED = {
    "bad-yaml.md": ("---\ntitle: [unclosed\n---\nbody\n", "not valid YAML"),
    "no-title.md": ("---\ntags: [x]\n---\nbody\n", "no title"),
    "no-front.md": ("just text\n", "no front matter"),
    "binary.md": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file"),
    "latin1.md": ("---\ntitle: caf\xe9\n---\n".encode("latin-1"), "not UTF-8"),
    "bad-kind.md": ("---\ntitle: x\nkind: faq\n---\n", "kind 'faq'"),
    "bad-lang.md": ("---\ntitle: x\nlanguage: de\n---\n", "language 'de'"),
    "conflict.ru.md": ("---\ntitle: x\nlanguage: en\n---\n", "file name says language 'ru'"),
    "tags-map.md": ("---\ntitle: x\ntags: {a: 1}\n---\n", "'tags' must be a list"),
    "python-tag.md": ("---\ntitle: !!python/object/apply:os.system [echo hi]\n---\n", "not valid YAML"),
}


def test_malformed_files_are_refused_in_one_line_each_while_the_rest_imports(tmp_path):
    write(tmp_path, "good.en.md", "---\ntitle: Good\n---\nFine\n")
    for name, (text, _) in MALFORMED.items():
        write(tmp_path, name, text)
    write(tmp_path, "huge.md", "---\ntitle: Huge\n---\n" + "x" * (5 * 1024 * 1024))
    write(tmp_path, "zz-dup.md", "---\nid: good\nlanguage: en\ntitle: Again\n---\n")
    read = read_folder(tmp_path)
    assert [r.key for r in read.records] == ["good"]
    problems = {line.split(":", 1)[0]: line for line in read.problems}
    assert set(problems) == {*MALFORMED, "huge.md", "zz-dup.md"}
    for name, (_, reason) in MALFORMED.items():
        assert reason in problems[name], problems[name]
    assert "5.0 MB, over the 1 MB limit" in problems["huge.md"]
    assert "good.en.md" in problems["zz-dup.md"]
    assert all("\n" not in line for line in read.problems)


# --- placeholders and scripts ----------------------------------------------------------------


def test_placeholders_fill_with_fallbacks_asks_cursor_and_literal_braces():
    body = (
        "Hi {customer.first_name|there}, I'm {operator.name}. Order {ask:order number} ({ask:order number})"
        " for {customer.attr.city|your city}; ticket #{conversation.id}. {cursor}{{literal}} {unknown.thing}"
    )
    values = {"customer.first_name": "", "operator.name": "Anna", "conversation.id": 42, "customer.attr.city": "Омск"}
    filled = fill(body, values, {"order number": "4711"})
    assert filled.text == "Hi there, I'm Anna. Order 4711 (4711) for Омск; ticket #42. {literal} {unknown.thing}"
    assert filled.text[filled.cursor :].startswith("{literal}")
    assert ask_labels(body) == ["order number"]
    assert unknown_placeholders(body) == ["{unknown.thing}"]
    unanswered = fill("Order {ask:order number}", {})
    assert unanswered.text == "Order {ask:order number}" and unanswered.cursor is None


def test_import_reports_unknown_placeholders_and_broken_script_branches(tmp_path):
    write(tmp_path, "a.md", "---\ntitle: A\n---\nHello {customer.nmae}\n")
    write(tmp_path, "s.md", "---\ntitle: S\nkind: script\n---\n1. Ask → 3\n")
    read = read_folder(tmp_path)
    assert len(read.records) == 2
    assert read.warnings == [
        "a.md: warning: unknown placeholder {customer.nmae} left as written",
        "s.md: warning: step 1 leads to step 3, which does not exist",
    ]


def test_script_steps_and_branches():
    steps = parse_script(
        "# Order problem\n\n1. Greet and ask for the order number. → 2\n2. Is it paid?\n   Check the system.\n"
        "   if yes: → 3 if no: → 4\n3) Tell the date.\n4. Send the link -> 1\n"
    )
    assert [s.number for s in steps] == [1, 2, 3, 4]
    assert steps[0].text == "Greet and ask for the order number." and steps[0].branches == (Branch(None, 2),)
    assert steps[1].text == "Is it paid? Check the system."
    assert steps[1].branches == (Branch("yes", 3), Branch("no", 4))
    assert steps[2].branches == () and steps[3].branches == (Branch(None, 1),)


# --- the store: import, prune, export, events, figures -------------------------------------------


async def test_import_is_idempotent_prunes_only_file_articles_and_keeps_refused_ones(tmp_path):
    folder = tmp_path / "kb"
    write(folder, "a.en.md", "---\ntitle: A\n---\nA\n")
    write(folder, "b.en.md", "---\ntitle: B\n---\nB\n")
    write(folder, "c.en.md", "---\ntitle: C\n---\nC\n")
    store = await Store.open(tmp_path / "o.db")
    try:
        first = await import_folder(store, folder, "alice")
        assert first.counts["new"] == 3
        again = await import_folder(store, folder, "alice")
        assert again.counts["unchanged"] == 3 and again.counts["new"] == again.counts["updated"] == 0
        await store.kb_save(ArticleRecord(key="mine", title="Mine", body="from the window", language="en"), "bob")
        (folder / "b.en.md").unlink()
        write(folder, "c.en.md", "---\ntitle: [broken\n---\n")  # refused this time: its article stays
        write(folder, "a.en.md", "---\ntitle: A2\n---\nA\n")
        dry = await import_folder(store, folder, "alice", prune=True, dry_run=True)
        assert (dry.counts["updated"], dry.counts["removed"], dry.counts["refused"]) == (1, 1, 1)
        assert {r.title for r in await store.kb_articles()} == {"A", "B", "C", "Mine"}  # a dry run wrote nothing
        done = await import_folder(store, folder, "alice", prune=True)
        assert "b.en.md: removed: b (en)" in done.lines
        assert any(line.startswith("c.en.md: refused: the front matter is not valid YAML") for line in done.lines)
        assert {r.key: r.title for r in await store.kb_articles()} == {"a": "A2", "c": "C", "mine": "Mine"}
        events = await store.events_since(0)
        kinds = [(e.kind, e.actor, json.loads(e.payload).get("article")) for e in events if e.kind.startswith("kb.")]
        assert ("kb.article_created", "bob", "mine") in kinds
        assert ("kb.article_updated", "alice", "a") in kinds and ("kb.article_deleted", "alice", "b") in kinds
    finally:
        await store.close()


async def test_demo_library_round_trips_through_the_store_and_files(tmp_path):
    read = read_folder(DEMO_LIBRARY)
    assert read.problems == [] and read.warnings == []
    assert len(read.records) >= 30 and {r.language for r in read.records} == {"ru", "en"}
    tags = {t for r in read.records for t in r.tags}
    assert {"orders", "delivery", "refunds", "account", "cards", "appointments", "greeting", "checking", "closing"} <= tags
    assert any(r.kind == "script" for r in read.records)
    store = await Store.open(tmp_path / "one.db")
    other = await Store.open(tmp_path / "two.db")
    try:
        await import_folder(store, DEMO_LIBRARY, "alice")
        await store.kb_save(
            ArticleRecord(key="from-window", title="Окно", body="Текст {{x}}", language="ru", extra={"owner": "anna"}), "anna"
        )
        exported = write_folder(await store.kb_articles(), tmp_path / "out")
        assert "from-window.ru.md" in exported and "greeting.en.md" in exported
        report = await import_folder(other, tmp_path / "out", "alice")
        assert report.counts["refused"] == 0

        def digest(records):
            return sorted((r.key, r.language, r.content_hash) for r in records)

        assert digest(await other.kb_articles()) == digest(await store.kb_articles())
    finally:
        await store.close()
        await other.close()


async def test_usage_figures_per_article(tmp_path):
    store = await Store.open(tmp_path / "o.db")
    try:
        await store.kb_save(ArticleRecord(key="hi", title="Hi", language="en"), "alice")
        await store.kb_record_shown([("hi", "en"), ("bye", "en")], "alice", 7)
        one = await store.kb_record_insertion("hi", "en", "alice", 7, suggested=True)
        two = await store.kb_record_insertion("hi", "en", "bob", 8)
        await store.kb_record_insertion("hi", "en", "bob", 9)  # inserted, never sent
        await store.kb_record_sent([one], 100, edited=False)
        await store.kb_record_sent([two], 101, edited=True)
        figures = await store.kb_figures()
        hi = figures[("hi", "en")]
        assert (hi.shown, hi.used, hi.sent, hi.edited, hi.share_edited) == (1, 3, 2, 1, 0.5)
        assert hi.last_used is not None and figures[("bye", "en")].used == 0
    finally:
        await store.close()


# --- the command line ----------------------------------------------------------------------------


def test_kb_commands(tmp_path):
    db = str(tmp_path / "o.db")
    folder = tmp_path / "kb"
    write(folder, "ok.en.md", "---\ntitle: OK answer\nkind: answer\n---\nFine\n")
    write(folder, "bad.md", "---\ntitle: [x\n---\n")
    result = omniconsole("kb", "import", str(folder), "--db", db, "--json")
    assert result.returncode == 1, result.stderr  # a refused file is worth a non-zero exit
    assert "ok.en.md: new: ok (en)" in result.stdout and "bad.md: refused:" in result.stdout
    assert json.loads(result.stdout.splitlines()[-1])["new"] == 1
    listing = omniconsole("kb", "list", "--db", db)
    assert listing.returncode == 0 and "OK answer" in listing.stdout and "never" in listing.stdout
    out = tmp_path / "out"
    assert omniconsole("kb", "export", str(out), "--db", db).returncode == 0
    assert (out / "ok.en.md").read_text(encoding="utf-8").startswith("---\nid: ok\ntitle: OK answer\nkind: answer\n")

    async def use_ok():
        store = await Store.open(db)
        try:
            await store.kb_record_insertion("ok", "en", "anna", 1)
        finally:
            await store.close()

    asyncio.run(use_ok())
    write(folder, "zz.en.md", "---\ntitle: Never used\n---\nx\n")
    omniconsole("kb", "import", str(folder), "--db", db)
    stale = omniconsole("kb", "list", "--db", db, "--unused-first").stdout.splitlines()
    assert stale[1].startswith("zz ") and stale[-1].startswith("ok ")
    missing = omniconsole("kb", "import", str(tmp_path / "nope"), "--db", db)
    assert missing.returncode == 2 and "is not a folder" in missing.stderr and "Traceback" not in missing.stderr


# --- shipping the demo library -------------------------------------------------------------------


def test_data_kb_is_the_packaged_library():
    link = REPO / "data" / "kb"
    assert link.is_symlink() and link.resolve() == DEMO_LIBRARY.resolve()


def test_package_data_covers_every_demo_article():
    """What `pip install` copies is what pyproject's package-data globs match: every article of
    the demo library must be matched (a deeper subfolder would silently not ship)."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["omniconsole"]
    package = REPO / "omniconsole"
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    articles = set(DEMO_LIBRARY.rglob("*.md"))
    assert articles and articles <= shipped


def test_bench_kb_prints_its_figures(tmp_path):
    result = omniconsole(
        "bench", "kb", "--articles", "120", "--queries", "30", "--rounds", "20", "--ingest-messages", "0", "--json"
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["articles"] == 120 and figures["picker_p95_ms"] > 0 and figures["suggest_p95_ms"] > 0
    assert figures["stemmers"][0]["stemmer"].startswith("PyStemmer") and figures["stemmers"][0]["found_first"] > 0


def test_demo_loads_the_library(tmp_path):
    result = omniconsole("demo", "--dir", str(tmp_path / "demo"), "--conversations", "20", "--seconds", "0.5", "--rate", "0")
    assert result.returncode == 0, result.stderr
    loaded = re.search(r"answers library: (\d+) articles", result.stdout)
    assert loaded and int(loaded.group(1)) >= 30, result.stdout
    listing = omniconsole("kb", "list", "--db", str(tmp_path / "demo" / "omniconsole.db"), "--json")
    rows = [json.loads(line) for line in listing.stdout.splitlines()]
    assert len(rows) >= 30 and {r["language"] for r in rows} == {"ru", "en"} and {r["source"] for r in rows} == {"file"}


def test_only_admins_and_supervisors_import(tmp_path):
    db = tmp_path / "o.db"

    async def someone_else_is_admin():
        from omniconsole.models import OperatorRole

        store = await Store.open(db)
        try:
            await store.add_operator("boss", "Boss", OperatorRole.ADMIN)
        finally:
            await store.close()

    asyncio.run(someone_else_is_admin())
    write(tmp_path / "kb", "a.md", "---\ntitle: A\n---\n")
    result = omniconsole("kb", "import", str(tmp_path / "kb"), "--db", str(db))
    assert result.returncode == 2 and "only an admin or a supervisor may change the library" in result.stderr
