"""CRM import, export and erase from the command line, on a messy spreadsheet export."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3

from omniconsole.core.ingest import Ingestor
from omniconsole.store import Store
from tests.conftest import inbound
from tests.unit.test_cli import assert_one_line_error, omniconsole

# Excel's "CSV (semicolon)" export: a BOM, semicolons, Cyrillic, quoted fields with the
# separator inside, a duplicate person, a bad phone, a Telegram username, an empty line.
MESSY = (
    "\ufeffФИО;Телефон;E-mail;Telegram;Город;Тариф\r\n"
    "Иван Петров;8 (999) 123-45-67;Ivan@Example.com;;Омск;gold\r\n"
    'Ольга Смирнова;+7 912 000-11-22;;555;"Москва; центр";free\r\n'
    "Иван Петров (дубль);89991234567;;;Омск;gold\r\n"
    "Плохой Телефон;12-34;;;Тверь;free\r\n"
    "Без Контактов;;;;Тула;free\r\n"
    "\r\n"
    "Ник;;nick@example.com;@nick_tg;;\r\n"
    "Chatbot Person;;known@example.com;;Pskov;gold\r\n"
    "Конфликт;+7 912 000-11-22;known@example.com;;;\r\n"
)


def _prepare(tmp_path):
    """A database with one operator-admin (the test's user) and a customer known by e-mail."""
    db = tmp_path / "o.db"

    async def setup():
        store = await Store.open(db)
        try:
            import getpass

            from omniconsole.models import OperatorRole

            await store.add_operator(getpass.getuser(), role=OperatorRole.ADMIN)
            channel = await store.ensure_channel("email", "mail")
            await Ingestor(store, tmp_path, "RU").ingest(
                channel,
                "email",
                [inbound("m1", "hello, my secret is 42", kind="email", address="known@example.com", sender_name="Known")],
                None,
            )
        finally:
            await store.close()

    asyncio.run(setup())
    path = tmp_path / "crm.csv"
    path.write_bytes(MESSY.encode("utf-8"))
    return db, path


def test_dry_run_reports_every_row_and_writes_nothing(tmp_path):
    db, path = _prepare(tmp_path)
    before = sqlite3.connect(db).execute("SELECT COUNT(*) FROM customers").fetchone()[0]
    result = omniconsole("import", "contacts", str(path), "--db", str(db), "--dry-run", "--json")
    assert result.returncode == 1, result.stderr  # some rows need attention
    lines = result.stdout.splitlines()
    assert json.loads(lines[-1]) == {
        "rows": 8,
        "written": 3,
        "new": 2,
        "matched": 2,
        "updated": 1,
        "conflicting": 1,
        "invalid": 3,
        "dry_run": True,
        "seconds": json.loads(lines[-1])["seconds"],
    }
    # The summary says what would be written (3 customers), not "imported 8 rows".
    assert lines[-2] == (
        "read 8 rows; would write 3: 2 new customers, 1 customer updated; 1 already up to date;"
        " would not write: 1 conflicting, 3 invalid (dry run: nothing written)"
    )
    text = result.stdout
    assert "line 2: new: Иван Петров (email ivan@example.com, phone +79991234567)" in text
    assert "line 4: matched: Иван Петров (дубль) is line 2 of this file; nothing new" in text
    assert "line 5: invalid: not a valid phone number for region RU: '12-34'" in text
    assert "line 6: invalid: no e-mail, phone" in text
    assert "line 8: invalid: Telegram needs the numeric user id, not '@nick_tg'" in text
    assert "line 9: matched: Chatbot Person is customer 1; adds" not in text  # nothing but attributes
    assert "line 9: matched: Chatbot Person is customer 1; attributes" in text
    assert (
        "line 10: conflicting: Конфликт: email known@example.com belongs to customer 1; phone +79120001122 belongs to line 3 of this file"
        in text
    )
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM customers").fetchone()[0] == before


def test_import_then_rerun_changes_nothing(tmp_path):
    db, path = _prepare(tmp_path)
    first = omniconsole("import", "contacts", str(path), "--db", str(db), "--json")
    assert first.returncode == 1, first.stderr
    assert json.loads(first.stdout.splitlines()[-1])["new"] == 2
    conn = sqlite3.connect(db)
    ivan = conn.execute("SELECT customer_id FROM identities WHERE address = '+79991234567'").fetchone()[0]
    assert conn.execute("SELECT customer_id FROM identities WHERE address = 'ivan@example.com'").fetchone()[0] == ivan
    name, attributes, source = conn.execute(
        "SELECT display_name, attributes, name_source FROM customers WHERE id = ?", (ivan,)
    ).fetchone()
    assert (name, json.loads(attributes), source) == ("Иван Петров", {"Город": "Омск", "Тариф": "gold"}, "import")
    olga_attrs = conn.execute(
        "SELECT c.attributes FROM customers c JOIN identities i ON i.customer_id = c.id WHERE i.address = '555'"
    ).fetchone()[0]
    assert json.loads(olga_attrs)["Город"] == "Москва; центр"
    # The CRM knows the e-mail customer as "Chatbot Person": their attributes arrive.
    known = conn.execute("SELECT attributes FROM customers WHERE id = 1").fetchone()[0]
    assert json.loads(known) == {"Город": "Pskov", "Тариф": "gold"}
    # The conflicting row suggests the two may be one person.
    assert conn.execute("SELECT COUNT(*) FROM merge_suggestions WHERE status = 'open'").fetchone()[0] == 1
    counts = conn.execute(
        "SELECT (SELECT COUNT(*) FROM customers), (SELECT COUNT(*) FROM identities), (SELECT COUNT(*) FROM events)"
    ).fetchone()
    conn.close()

    second = omniconsole("import", "contacts", str(path), "--db", str(db), "--json")
    summary = json.loads(second.stdout.splitlines()[-1])
    assert (summary["new"], summary["updated"]) == (0, 0), second.stdout
    conn = sqlite3.connect(db)
    assert (
        conn.execute(
            "SELECT (SELECT COUNT(*) FROM customers), (SELECT COUNT(*) FROM identities), (SELECT COUNT(*) FROM events)"
        ).fetchone()
        == counts
    )


def test_column_mapping_and_its_errors(tmp_path):
    db, _ = _prepare(tmp_path)
    path = tmp_path / "odd.csv"
    path.write_text("Who,Contact number,Mailbox\nAnna Lee,+44 20 7946 0958,anna@example.org\n", encoding="utf-8")
    assert_one_line_error(omniconsole("import", "contacts", str(path), "--db", str(db)), "no column to recognise customers by")
    assert_one_line_error(
        omniconsole("import", "contacts", str(path), "--db", str(db), "--map", "phone=Telephone"), "no column 'Telephone'"
    )
    result = omniconsole(
        "import",
        "contacts",
        str(path),
        "--db",
        str(db),
        "--map",
        "phone=Contact number",
        "--map",
        "email=Mailbox",
        "--map",
        "name=Who",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    conn = sqlite3.connect(db)
    assert (
        conn.execute(
            "SELECT c.display_name FROM customers c JOIN identities i ON i.customer_id = c.id WHERE i.address = '+442079460958'"
        ).fetchone()[0]
        == "Anna Lee"
    )
    assert_one_line_error(omniconsole("import", "contacts", str(tmp_path / "missing.csv"), "--db", str(db)), "does not exist")
    cp1251 = tmp_path / "win.csv"
    cp1251.write_bytes("Имя;Почта\r\nЁжик Туманов;hedgehog@example.com\r\n".encode("cp1251"))
    assert omniconsole("import", "contacts", str(cp1251), "--db", str(db)).returncode == 0
    assert conn.execute("SELECT COUNT(*) FROM customers WHERE display_name = 'Ёжик Туманов'").fetchone()[0] == 1


def test_export_and_erase_from_the_command_line(tmp_path):
    db, _ = _prepare(tmp_path)
    out = tmp_path / "export.json"
    result = omniconsole("export", "customer", "1", "--db", str(db), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert os.stat(out).st_mode & 0o777 == 0o600
    data = json.loads(out.read_text())
    assert data["identities"][0]["address"] == "known@example.com"
    assert data["conversations"][0]["messages"][0]["body"] == "hello, my secret is 42"

    assert_one_line_error(omniconsole("erase", "customer", "1", "--db", str(db)), "--yes")  # not a terminal
    assert_one_line_error(omniconsole("erase", "customer", "77", "--db", str(db), "--yes"), "no customer 77")
    result = omniconsole("erase", "customer", "1", "--db", str(db), "--yes")
    assert result.returncode == 0 and "erased customer 1: 1 messages emptied" in result.stdout
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT body FROM messages").fetchall() == [("",)]
    assert conn.execute("SELECT COUNT(*) FROM identities").fetchone()[0] == 0
    kinds = [
        k for (k,) in conn.execute("SELECT kind FROM events WHERE kind IN ('customer.exported', 'customer.erased') ORDER BY id")
    ]
    assert kinds == ["customer.exported", "customer.erased"]


def test_only_admins_handle_personal_data(tmp_path):
    db = tmp_path / "o.db"

    async def setup():
        store = await Store.open(db)
        from omniconsole.models import OperatorRole

        await store.add_operator("somebody-else", role=OperatorRole.ADMIN)
        await store.close()

    asyncio.run(setup())
    assert_one_line_error(omniconsole("export", "customer", "1", "--db", str(db)), "only an admin")
    assert_one_line_error(omniconsole("erase", "customer", "1", "--db", str(db), "--yes"), "only an admin")


def test_a_broken_csv_is_one_line_and_a_number_in_two_columns_is_one_person(tmp_path):
    db, _ = _prepare(tmp_path)
    huge = tmp_path / "huge.csv"
    huge.write_text('email,note\nx@example.com,"' + "a" * 200_000 + '"\n', encoding="utf-8")
    assert_one_line_error(omniconsole("import", "contacts", str(huge), "--db", str(db)), "line", "not readable as CSV")
    both = tmp_path / "both.csv"
    both.write_text("name,phone,whatsapp\nIra,+7 901 111-22-33,\nIra W,,79011112233\n", encoding="utf-8")
    for extra in (["--dry-run"], []):
        result = omniconsole("import", "contacts", str(both), "--db", str(db), "--json", *extra)
        assert json.loads(result.stdout.splitlines()[-1])["new"] == 1, result.stdout


def test_erase_also_deletes_the_web_chat_log_of_the_person(tmp_path):
    """The web chat keeps each visitor's side of the chat in a file of its own: an erased
    person's file goes too (their other visitors' files stay)."""
    db, _ = _prepare(tmp_path)
    visitor, other = "V" * 22, "W" * 22

    async def add_web_identity():
        store = await Store.open(db)
        try:
            await store.add_identity(1, "web", visitor, "test")
        finally:
            await store.close()

    asyncio.run(add_web_identity())
    logs = []
    for who in (visitor, other):
        path = tmp_path / "data" / "webchat" / "webchat" / who[:2] / f"{who}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('{"seq": 1, "key": "a", "from": "visitor", "text": "my address is ...", "at": 1}\n')
        logs.append(path)
    result = omniconsole("erase", "customer", "1", "--db", str(db), "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not logs[0].exists() and logs[1].exists()


async def test_colleagues_sharing_an_office_number_without_extensions_are_not_merged(store, tmp_path):
    """Real-world case 15's kind when the export gives no extensions: the number stays with the
    first colleague, the second is a customer of their own by their e-mail, with a suggestion;
    a row that has nothing but the shared number is a conflict. A re-run changes nothing."""
    from omniconsole.core.contacts_import import import_contacts

    path = tmp_path / "office.csv"
    path.write_text(
        "ФИО;Email;Телефон\n"
        "Иван Пробный;ivan@firm.example;+7 (495) 123-45-67\n"
        "Мария Тестова;maria@firm.example;+7 (495) 123-45-67\n"
        "Ольга Телефонова;;8 495 123 45 67\n"
        "Иван Петрович Пробный;;+74951234567\n",
        encoding="utf-8",
    )
    dry = await import_contacts(store, path, region="RU", dry_run=True)
    assert [(r.status, r.detail) for r in dry.rows] == [
        ("new", "Иван Пробный (email ivan@firm.example, phone +74951234567)"),
        (
            "new",
            "Мария Тестова (email maria@firm.example); phone +74951234567 is also line 2 of this file «Иван Пробный»'s,"
            " another person: suggested, not merged",
        ),
        (
            "conflicting",
            "Ольга Телефонова: phone +74951234567 is also line 2 of this file «Иван Пробный»'s, another person:"
            " suggested, not merged; nothing else to recognise Ольга Телефонова by, nothing written",
        ),
        ("matched", "Иван Петрович Пробный is line 2 of this file; nothing new"),
    ]
    first = await import_contacts(store, path, region="RU")
    assert [r.status for r in first.rows] == ["new", "new", "conflicting", "matched"]
    ivan, maria = first.rows[0].customer_id, first.rows[1].customer_id
    assert {(i.kind, i.address) for i in (await store.customer_profile(maria)).identities} == {("email", "maria@firm.example")}
    [s] = (await store.customer_profile(maria)).suggestions
    assert (s.other_id, s.reason) == (ivan, "a CRM import gives phone +74951234567 to «Мария Тестова» and to «Иван Пробный»")
    assert (await store.customer_profile(ivan)).display_name == "Иван Пробный"
    events = len(await store.events_since(0))
    again = await import_contacts(store, path, region="RU")
    assert [r.status for r in again.rows] == ["matched", "matched", "conflicting", "matched"]
    assert again.as_dict()["written"] == 0 and len(await store.events_since(0)) == events
