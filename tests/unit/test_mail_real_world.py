"""Mail that people really send (issue #14), fed the way the cases' README says: through
`omniconsole import maildir|mbox` (cmd_import) into a fresh history, then read back from the
store. The inputs are copies of ../shared/cases/real-world/ in tests/fixtures/real_world/."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
from pathlib import Path

import pytest

from omniconsole.core.mail_import import cmd_import
from omniconsole.models import ConversationStatus
from omniconsole.store import Store

CASES = Path(__file__).parents[1] / "fixtures" / "real_world"


def maildir_of(root: Path, *files: Path) -> Path:
    """A Maildir holding `files` in cur/, delivered in the order given."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(files):
        shutil.copyfile(path, root / "cur" / f"{1731000000 + number}.M{number}P1.test:2,S")
    return root


def run_import(tmp_path: Path, command: str, path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    """`omniconsole import COMMAND PATH --json --open-days 0` (old mail stays open, as in a
    recent mailbox); the figures it printed."""
    args = argparse.Namespace(
        config=None,
        db=str(tmp_path / "omniconsole.db"),
        import_command=command,
        path=str(path),
        channel="import",
        own_address=None,
        workers=0,
        json=True,
        open_days=0,
    )
    assert cmd_import(args) == 0
    return json.loads(capsys.readouterr().out.splitlines()[-1])


def query(tmp_path: Path, sql: str, *params) -> list[tuple]:
    """Rows of `sql` from the history the import wrote (through the store, as the window reads)."""

    async def run() -> list[tuple]:
        store = await Store.open(tmp_path / "omniconsole.db")
        try:
            return await store.db.run(lambda conn: [tuple(row) for row in conn.execute(sql, params)])
        finally:
            await store.close()

    return asyncio.run(run())


CUSTOMERS = "SELECT c.display_name, i.address FROM customers c JOIN identities i ON i.customer_id = c.id ORDER BY c.id"


def test_01_unknown_8bit_encoded_words_in_subject_and_name(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    case = CASES / "01-unknown-8bit-encoded-subject"
    figures = run_import(tmp_path, "maildir", maildir_of(tmp_path / "Maildir", case / "mail.eml"), capsys)
    assert figures["imported"] == 1 and figures["unreadable"] == []
    assert query(tmp_path, "SELECT subject FROM messages") == [("Возврат за заказ 7731",)]
    assert query(tmp_path, "SELECT subject FROM conversations") == [("Возврат за заказ 7731",)]
    assert query(tmp_path, CUSTOMERS) == [("Григорий Пробный", "grigory.probny@example.org")]


def test_02_multipart_without_boundary_is_the_customers_text(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    case = CASES / "02-multipart-without-boundary"
    run_import(tmp_path, "maildir", maildir_of(tmp_path / "Maildir", case / "mail.eml"), capsys)
    assert query(tmp_path, "SELECT body FROM messages") == [
        ("Hello, parcel 55-812 arrived with the seal broken and one cup missing.\nPlease call me back.",)
    ]
    assert query(tmp_path, "SELECT filename FROM attachments") == []


def test_04_mbox_with_an_unescaped_from_line_gives_two_whole_mails(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    figures = run_import(tmp_path, "mbox", CASES / "04-mbox-unescaped-from-line" / "mailbox.mbox", capsys)
    assert (figures["messages"], figures["imported"], figures["unreadable"]) == (2, 2, [])
    bodies = dict(query(tmp_path, "SELECT external_id, body FROM messages"))
    assert bodies["<mbox-from-1@example.org>"] == (
        "Hello,\n\nFrom the photos you can see the corner of the box was crushed.\n"
        "I would like a replacement, not a refund.\n\nKirill"
    )
    assert bodies["<mbox-from-2@example.net>"] == "Please deliver order 9031 to the pick-up point instead."
    assert query(tmp_path, CUSTOMERS) == [("Kirill Primerov", "kirill@example.org"), ("Lidia Testova", "lidia@example.net")]


def test_mbox_import_reports_what_is_not_a_mail(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mbox = tmp_path / "export.mbox"
    mbox.write_bytes(b"exported by SomeTool 1.0\n\n" + (CASES / "04-mbox-unescaped-from-line" / "mailbox.mbox").read_bytes())
    figures = run_import(tmp_path, "mbox", mbox, capsys)
    assert (figures["messages"], figures["imported"]) == (3, 3)
    (problem,) = figures["unreadable"]
    assert problem["reason"] == 'lines 1-2 come before the first "From " separator line, so they are not one of its mails'
    # Kept, not dropped: the bytes are the stored message's original.eml.
    rows = query(tmp_path, "SELECT m.body, a.filename FROM messages m JOIN attachments a ON a.message_id = m.id")
    assert rows == [("could not be read: " + problem["reason"], "original.eml")]

    single = tmp_path / "one" / "mail.mbox"
    single.parent.mkdir()
    shutil.copyfile(CASES / "02-multipart-without-boundary" / "mail.eml", single)
    figures = run_import(tmp_path / "one", "mbox", single, capsys)
    assert [u["reason"] for u in figures["unreadable"]] == [
        'the file has no "From " separator line (sender and date), so it is not an mbox'
    ]


def test_05_a_reply_with_bare_ids_joins_and_reopens_its_thread(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    case = CASES / "05-bare-in-reply-to"
    run_import(tmp_path, "maildir", maildir_of(tmp_path / "first", case / "1-question.eml"), capsys)
    ((conversation,),) = query(tmp_path, "SELECT id FROM conversations")

    async def resolve() -> None:
        store = await Store.open(tmp_path / "omniconsole.db")
        try:
            await store.set_status(conversation, ConversationStatus.RESOLVED, "alice")
        finally:
            await store.close()

    asyncio.run(resolve())

    run_import(tmp_path, "maildir", maildir_of(tmp_path / "later", case / "2-reply.eml"), capsys)
    rows = query(tmp_path, "SELECT external_id, conversation_id, reply_to_keys FROM messages WHERE direction = 'in' ORDER BY id")
    assert rows == [
        ("<88120.1731049872@tracker.example.org>", conversation, None),
        ("<88121.1732255200@tracker.example.org>", conversation, "<88120.1731049872@tracker.example.org>"),
    ]
    assert query(tmp_path, "SELECT status FROM conversations") == [("open",)]
    assert query(tmp_path, "SELECT count(*) FROM events WHERE kind = 'conversation.reopened'") == [(1,)]


def test_08_the_file_inside_winmail_dat_is_an_attachment(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    case = CASES / "08-tnef-winmail-dat"
    run_import(tmp_path, "maildir", maildir_of(tmp_path / "Maildir", case / "mail.eml"), capsys)
    assert query(tmp_path, "SELECT body FROM messages") == [("Hello, the invoice for the wholesale order is attached.",)]
    ((name, mime, size, path),) = query(tmp_path, "SELECT filename, mime_type, size, path FROM attachments")
    assert (name, mime) == ("invoice-0042.txt", "text/plain")
    data = (tmp_path / "data" / "attachments" / path).read_bytes()
    assert data == b"Invoice 42: 3 x widget, total 1500 RUB\n" and size == len(data)


def test_14_google_group_rewrites_are_two_people_both_waiting(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    case = CASES / "14-google-group-from-rewrite"
    run_import(tmp_path, "maildir", maildir_of(tmp_path / "Maildir", case / "1-ivan.eml", case / "2-olga.eml"), capsys)
    assert query(tmp_path, CUSTOMERS) == [
        ("Ivan Testov", "ivan.testov@mailbox.example"),
        ("Olga Primerova", "olga.primerova@post.example"),
    ]
    rows = query(tmp_path, "SELECT status, waiting_since IS NOT NULL FROM conversations ORDER BY id")
    assert rows == [("open", 1), ("open", 1)]
    assert query(tmp_path, "SELECT flags FROM messages") == [("",), ("",)]
