"""Contacts exports of other systems, read by their own column names with no `--map`: Google
Contacts (real-world case 09: several values in one cell joined by " ::: "), Outlook,
Bitrix24 and amoCRM. Each small file holds the columns its system really writes."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest

from omniconsole.core.contacts_import import import_contacts
from omniconsole.models import OperatorRole
from omniconsole.store import Store
from tests.unit.test_cli import omniconsole

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "real_world"


async def people(store: Store) -> dict[str, dict]:
    """Each customer by name: their identities by kind, attributes and labels."""

    def read(conn):
        found = {}
        for cid, name, attributes in conn.execute("SELECT id, display_name, attributes FROM customers ORDER BY id"):
            kinds: dict[str, list[str]] = {}
            for kind, address in conn.execute("SELECT kind, address FROM identities WHERE customer_id = ? ORDER BY id", (cid,)):
                kinds.setdefault(kind, []).append(address)
            labels = sorted(
                r[0]
                for r in conn.execute(
                    "SELECT l.name FROM customer_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.customer_id = ?", (cid,)
                )
            )
            found[name] = {"identities": kinds, "attributes": json.loads(attributes or "{}"), "labels": labels}
        return found

    return await store.db.run(read)


def test_case_09_google_contacts_multi_value_cells_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    import asyncio

    async def admin() -> None:
        async with await Store.open(db) as store:
            await store.add_operator(getpass.getuser(), role=OperatorRole.ADMIN)

    asyncio.run(admin())
    result = omniconsole(
        "import",
        "contacts",
        str(FIXTURES / "09-google-contacts-csv-multivalue" / "google-contacts.csv"),
        "--db",
        str(db),
        "--json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert (summary["rows"], summary["written"], summary["new"], summary["invalid"]) == (2, 2, 2, 0)
    assert result.stdout.splitlines()[-2] == "read 2 rows; wrote 2: 2 new customers, 0 customers updated; 0 already up to date"

    async def check() -> None:
        async with await Store.open(db) as store:
            found = await people(store)
            assert found["Ольга Тестова"]["identities"] == {
                "email": ["olga.t@example.org", "olga@work.example"],
                "phone": ["+79120001122", "+73432003040"],
            }
            assert found["Марк Пробный"]["identities"] == {"email": ["mark.p@example.org"], "phone": ["+79120003344"]}
            # The name's parts and the Type columns describe other columns; Google's system
            # group "* myContacts" is no label.
            assert found["Ольга Тестова"]["attributes"] == {} and found["Ольга Тестова"]["labels"] == []

    asyncio.run(check())


FORMATS = {
    # contacts.google.com today: split names, "Label" columns, "Labels" with " ::: ".
    "google": (
        "First Name,Middle Name,Last Name,Nickname,Labels,E-mail 1 - Label,E-mail 1 - Value,E-mail 2 - Label,E-mail 2 - Value,"
        "Phone 1 - Label,Phone 1 - Value,Notes\n"
        "Анна,,Образцова,,VIP ::: * myContacts,Work,anna@firm.example,,,Mobile ::: Work,+7 912 111-22-33 ::: +7 343 222-33-44,"
        "звонить после 12\n",
        "Анна Образцова",
        {"email": ["anna@firm.example"], "phone": ["+79121112233", "+73432223344"]},
        ["VIP"],
    ),
    # Outlook's "Export to a file > Comma Separated Values".
    "outlook": (
        "First Name,Middle Name,Last Name,Company,E-mail Address,E-mail Type,E-mail Display Name,E-mail 2 Address,"
        "Mobile Phone,Business Phone,Business Phone 2,Company Main Phone,Business Fax,Notes,Categories\n"
        "John,Q,Sample,Acme,john@acme.example,SMTP,John Sample (john@acme.example),jq@home.example,"
        "+44 7911 123456,+44 20 7946 0958 ext. 12,,+44 20 7946 0000,+44 20 7946 0001,met at a fair,Partners;Print\n",
        "John Q Sample",
        {"email": ["john@acme.example", "jq@home.example"], "phone": ["+447911123456", "+442079460958;ext=12"]},
        ["Partners", "Print"],
    ),
    # Bitrix24 CRM > Contacts > Export (CSV): semicolons, split names, many typed columns.
    "bitrix24": (
        "ID;Обращение;Имя;Отчество;Фамилия;Рабочий телефон;Мобильный телефон;Номер факса;Домашний телефон;"
        "Рабочий e-mail;Частный e-mail;E-mail для рассылок;Другой e-mail;Контакт Telegram;Комментарий\n"
        "17;;Пётр;Ильич;Образцов;+7 (495) 765-43-21 доб. 7;8 916 555-66-77;+7 495 765-43-20;;petr@firm.example;;;;"
        "@petr_o;постоянный клиент\n",
        "Пётр Ильич Образцов",
        {"email": ["petr@firm.example"], "phone": ["+74957654321;ext=7", "+79165556677"]},
        [],
    ),
    # amoCRM > Контакты > Экспорт: "Полное имя", work/direct/mobile phones, work/personal e-mails.
    "amocrm": (
        "ID,Полное имя,Имя,Фамилия,Компания,Рабочий телефон,Рабочий прямой телефон,Мобильный телефон,Рабочий email,"
        "Личный email,Теги,Примечание 1\n"
        "3301,Сергей Пробов,Сергей,Пробов,ООО Ромашка,,+7 812 300-40-50,79217778899,sergey@romashka.example,"
        'sergey@home.example,"опт, СПб",перезвонить\n',
        "Сергей Пробов",
        {"email": ["sergey@romashka.example", "sergey@home.example"], "phone": ["+78123004050", "+79217778899"]},
        ["СПб", "опт"],
    ),
}


@pytest.mark.parametrize("system", sorted(FORMATS))
async def test_each_systems_export_is_read_by_its_column_names(store: Store, tmp_path: Path, system: str) -> None:
    text, name, identities, labels = FORMATS[system]
    path = tmp_path / f"{system}.csv"
    path.write_text(text, encoding="utf-8")
    report = await import_contacts(store, path, region="RU")
    assert [r.status for r in report.rows] == ["new"], report.rows
    [(found_name, person)] = (await people(store)).items()
    assert found_name == name
    assert person["identities"] == identities
    assert person["labels"] == labels
    # Describing columns (types, display names) are nobody's attributes; what is left is kept.
    assert not any(key.endswith(("Type", "Label", "Display Name")) for key in person["attributes"]), person["attributes"]


async def test_a_company_line_and_faxes_are_attributes_not_the_persons_phone(store: Store, tmp_path: Path) -> None:
    """Outlook's "Company Main Phone" and Bitrix24's fax are shared by a whole company: taken as
    a person's identity they would join every colleague into one customer."""
    path = tmp_path / "outlook.csv"
    path.write_text(FORMATS["outlook"][0], encoding="utf-8")
    await import_contacts(store, path, region="RU")
    [person] = (await people(store)).values()
    assert person["attributes"]["Company Main Phone"] == "+44 20 7946 0000"
    assert person["attributes"]["Business Fax"] == "+44 20 7946 0001"
    assert person["attributes"]["Company"] == "Acme"


async def test_multi_value_cells_of_a_dry_run_and_a_bad_value_among_good_ones(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "google.csv"
    path.write_text(
        "Name,E-mail 1 - Value,Phone 1 - Value\n"
        "Лев Проба,lev@example.org ::: not-an-address,+7 912 000-55-66\n"
        "Ян Проба,yan@example.org,998901234567 ::: +74951234567;ext=5\n",
        encoding="utf-8",
    )
    report = await import_contacts(store, path, region="RU", dry_run=True)
    assert [(r.status, r.detail) for r in report.rows] == [
        ("invalid", "not an e-mail address: 'not-an-address'"),
        ("new", "Ян Проба (email yan@example.org, phone +998901234567, phone +74951234567;ext=5)"),
    ]
    assert (await store.stats())["customers"] == 0


async def test_a_first_name_alone_is_the_name_and_imya_alone_is_the_whole_name(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "first.csv"
    path.write_text("First Name,E-mail Address\nRosa,rosa@example.org\n", encoding="utf-8")
    await import_contacts(store, path, region="RU")
    path.write_text("Имя;Почта\nЁжик Туманов;hedgehog@example.com\n", encoding="utf-8")
    await import_contacts(store, path, region="RU")
    assert sorted(await people(store)) == ["Rosa", "Ёжик Туманов"]
