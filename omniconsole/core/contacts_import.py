"""`omniconsole import contacts FILE.csv`: customers from a CRM export.

Each row names one person by any of e-mail, phone, Telegram id, VK id, WhatsApp number. A row
whose identities are all unknown makes a new customer; a row whose known identities all belong
to one customer updates that customer (new identities, attributes from extra columns); a row
whose identities belong to *different* customers is a conflict and changes nothing (it suggests
the two may be one person, for an operator to decide). A phone number shared with a customer of
another full name (an office line, a family's phone) never makes the row that customer: it
stays theirs, with a suggestion, and the row stands on its other identities. A malformed value makes the row invalid,
with the line number and the reason. Re-running the same file changes nothing.

Files come from spreadsheets and from other systems' exports (Google Contacts, Outlook,
Bitrix24, amoCRM: read by their own column names, several e-mails or phones to a cell): a
UTF-8 BOM, Windows-1251, semicolons or tabs are all normal. Phone numbers are read as every
phone number is (omniconsole/core/identity.py: the region, then with a `+`; an extension
stays part of the number). The statements behind each decision are in
omniconsole/store/contacts.py. The summary counts what was written, apart from rows read.
(At 600 lines: reading the file, mapping its columns and the command are one path a reader
follows; its errors carry their templates for the reader's language, omniconsole/errors.py.)
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from omniconsole.core.identity import normalize_address, valid_phone
from omniconsole.errors import UsageError
from omniconsole.i18n import N_
from omniconsole.models import IdentityKind, sanitize_text
from omniconsole.store import Store
from omniconsole.store import contacts as contacts_store
from omniconsole.store import integrations as integrations_store
from omniconsole.store.contacts import CustomerState
from omniconsole.store.customers import PHONE_KINDS, name_key

# Our fields and the column headers that mean them, compared as `_header_key`s (lower case,
# ё as е, spaces, dashes, dots and underscores ignored). Besides hand-made spreadsheets, the
# exports of Google Contacts ("E-mail 1 - Value", "Phone 2 - Value", several values in one
# cell joined by " ::: "), Outlook ("E-mail 2 Address", "Mobile Phone", "Business Phone 2"),
# Bitrix24 ("Рабочий e-mail", "Частный e-mail", "Мобильный телефон") and amoCRM ("Рабочий
# email", "Личный email", "Рабочий прямой телефон") are read by their own column names. A
# field may come from several columns. A company's main line, faxes and pagers are not a
# person's identity and stay attributes.
FIELDS: dict[str, str] = {
    "name": r"name|fullname|displayname|fio|фио|полноеимя|имя|клиент|contact|контакт|customer|client",
    "email": (
        r"e?mail|emailaddress|e?mail\d+(?:value|address)|почта|электроннаяпочта|элпочта|эпочта"
        r"|(?:work|home|personal|private|other)email|(?:рабочий|частный|личный|другой)e?mail|e?mailдлярассылок"
    ),
    "phone": (
        r"phone|tel|telephone|mobile|phonenumber|телефон|тел|номертелефона|мобильный|мобтелефон|phone\d+(?:value)?"
        r"|(?:mobile|business|home|other|primary|car|work|workdirect|personal)phone\d*"
        r"|(?:рабочий|рабочийпрямой|мобильный|домашний|другой|личный)телефон|телефондлярассылок"
    ),
    "telegram": r"telegram|tg|telegramid|телеграм|телеграмм",
    "vk": r"vk|vkid|vkontakte|вк|вконтакте",
    "whatsapp": r"whatsapp|wa|ватсап|вотсап",
    "note": r"notes?|comments?|заметка|комментарий|примечание\d*",
    "labels": r"labels|tags|categories|groupmembership|метки|теги|категории",
    # The company CRM's own id (identity kind `crm`, issue #22), and "do not contact".
    "crm": r"crm|crmid|idcrm|idвcrm|crmидентификатор",
    "do_not_contact": r"donotcontact|dnc|optout|optedout|unsubscribed|нетревожить|неконтактировать|отказотрассылки|отписан",
}
# A "do not contact" cell that says yes; any other non-empty value (no, 0, false) leaves it.
_YES = {"yes", "y", "true", "1", "x", "+", "да", "д", "истина"}
# The parts of a name, when a file splits it (Google, Outlook, Bitrix24, amoCRM all do).
NAME_PARTS: dict[str, str] = {
    "first": r"firstname|givenname|first|имя",
    "middle": r"middlename|additionalname|отчество",
    "last": r"lastname|familyname|surname|фамилия",
}
IDENTITY_FIELDS = ("email", "phone", "telegram", "vk", "whatsapp", "crm")
# Columns that only describe another column's value (Google's "E-mail 1 - Type: * Home ::: Work",
# Outlook's "E-mail Display Name"): neither fields nor attributes of the customer.
_DESCRIBING = re.compile(r"(?:e?mail|phone)\d*(?:type|label|displayname)")
# Several values in one cell: Google's " ::: ", else commas and semicolons (not the ";ext=" of
# an RFC 3966 extension) and line breaks; e-mail addresses may also be separated by spaces.
_PHONE_SEPARATORS = re.compile(r"\s*:::\s*|[,\n]|;(?!\s*ext=)")
_EMAIL_SEPARATORS = re.compile(r"\s*:::\s*|[,;\s]+")
_LABEL_SEPARATORS = re.compile(r"\s*:::\s*|[,;]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_VK = re.compile(r"^(?:https?://)?(?:m\.)?(?:vk\.com/)?(?:id)?(\d+)$", re.IGNORECASE)
_BATCH = 200


def _header_key(text: str) -> str:
    return re.sub(r"[\s\-_.]+", "", text.strip().lower().replace("ё", "е"))


@dataclass
class RowOutcome:
    """What became of one CSV row."""

    line: int
    status: str  # new | matched | conflicting | invalid
    detail: str
    customer_id: int | None = None
    changed: bool = False


@dataclass
class ContactsReport:
    """Every row's outcome, in file order, and the counts."""

    rows: list[RowOutcome] = field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    def as_dict(self) -> dict:
        """The counts: rows read, `written` (new customers + customers updated; what a dry
        run would write), then each outcome."""
        updated = sum(1 for r in self.rows if r.status == "matched" and r.changed)
        return {
            "rows": len(self.rows),
            "written": self.count("new") + updated,
            "new": self.count("new"),
            "matched": self.count("matched"),
            "updated": updated,
            "conflicting": self.count("conflicting"),
            "invalid": self.count("invalid"),
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Contact:
    """One row, parsed and normalised."""

    line: int
    name: str
    identities: list[tuple[str, str]]
    attributes: dict[str, str]
    note: str
    labels: list[str]
    # Why the customer must not be contacted first ("import: Do not contact = yes"), or "".
    do_not_contact: str = ""


@dataclass
class ColumnMap:
    """Which columns hold each field (a field may have several), the name's parts, and the
    columns to leave out of the attributes."""

    fields: dict[str, list[int]] = field(default_factory=dict)
    name_parts: dict[str, list[int]] = field(default_factory=dict)
    describing: set[int] = field(default_factory=set)

    def used(self) -> set[int]:
        """Every column that is not an attribute."""
        return {i for cols in (*self.fields.values(), *self.name_parts.values()) for i in cols} | self.describing


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the data rows (with their line numbers) of a CSV file, whatever its
    encoding (UTF-8 with or without BOM, else Windows-1251) and delimiter."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(N_("{path} does not exist"), path=str(path)) from None
    except IsADirectoryError:
        raise UsageError(N_("{path} is a directory; give a CSV file"), path=str(path)) from None
    except PermissionError:
        raise UsageError(N_("cannot read {path}: permission denied"), path=str(path)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1251", errors="replace")
    if not text.strip():
        raise UsageError(N_("{path} is empty"), path=str(path))
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        first = sample.splitlines()[0]
        delimiter = max(",;\t|", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    try:
        header = next(reader)
        for values in reader:
            if any(v.strip() for v in values):
                rows.append((reader.line_num, values))
    except StopIteration:
        raise UsageError(N_("{path} has no header row"), path=str(path)) from None
    except csv.Error as exc:
        raise UsageError(
            N_("{path} line {line}: not readable as CSV ({error})"), path=str(path), line=reader.line_num, error=str(exc)
        ) from None
    return [sanitize_text(h).strip() for h in header], rows


def _matches(pattern: str, key: str) -> bool:
    return re.fullmatch(pattern, key) is not None


def column_mapping(header: list[str], overrides: Iterable[str] = ()) -> ColumnMap:
    """Which columns hold each field: `--map field=Column` (repeatable) first, then the known
    header names of spreadsheets and of the Google, Outlook, Bitrix24 and amoCRM exports."""
    index_of = {h: i for i, h in enumerate(header)}
    mapping = ColumnMap()
    for item in overrides:
        name, eq, column = item.partition("=")
        name = name.strip().lower()
        if not eq or name not in FIELDS:
            raise UsageError(
                N_("--map takes FIELD=COLUMN with FIELD one of {fields} (got {item})"), fields=", ".join(FIELDS), item=repr(item)
            )
        if column not in index_of:
            raise UsageError(
                N_("--map {item}: the file has no column {column} (columns: {columns})"),
                item=item,
                column=repr(column),
                columns=", ".join(header),
            )
        mapping.fields.setdefault(name, []).append(index_of[column])
    overridden = set(mapping.fields)
    taken = {i for cols in mapping.fields.values() for i in cols}
    keys = [_header_key(h) for h in header]
    # "Имя" is the whole name in a hand-made sheet, the first name beside a "Фамилия" column;
    # "First Name" alone is the name there is.
    split_name = any(_matches(NAME_PARTS["last"], k) or _matches(NAME_PARTS["middle"], k) for k in keys)
    for i, key in enumerate(keys):
        if i in taken or not key:
            continue
        if _DESCRIBING.fullmatch(key):
            mapping.describing.add(i)
            continue
        part = next((p for p, pattern in NAME_PARTS.items() if _matches(pattern, key)), None)
        whole_name = part == "first" and not split_name and _matches(FIELDS["name"], key)
        if part is not None and "name" not in overridden and not whole_name:
            mapping.name_parts.setdefault(part, []).append(i)
            continue
        for name, pattern in FIELDS.items():
            if name not in overridden and _matches(pattern, key):
                mapping.fields.setdefault(name, []).append(i)
                break
    if not any(f in mapping.fields for f in IDENTITY_FIELDS):
        raise UsageError(
            N_(
                "no column to recognise customers by (e-mail, phone, telegram, vk or whatsapp);"
                " name one with --map, e.g. --map email={example} (columns: {columns})"
            ),
            example=header[0] if header else "Column",
            columns=", ".join(header),
        )
    return mapping


def parse_contact(line: int, values: list[str], header: list[str], mapping: ColumnMap, region: str) -> Contact | RowOutcome:
    """A row as a Contact, or an `invalid` outcome saying what is wrong with it."""

    def cell(i: int) -> str:
        return sanitize_text(values[i]).strip() if i < len(values) else ""

    def cells(columns: list[int]) -> list[str]:
        return [text for text in (cell(i) for i in columns) if text]

    def value(name: str) -> list[str]:
        return cells(mapping.fields.get(name, []))

    problems: list[str] = []
    identities: list[tuple[str, str]] = []
    for text in (t for v in value("email") for t in _EMAIL_SEPARATORS.split(v) if t):
        if _EMAIL.match(text):
            identities.append(("email", normalize_address(IdentityKind.EMAIL, text, region)))
        else:
            problems.append(f"not an e-mail address: {text!r}")
    for name, kind in (("phone", IdentityKind.PHONE), ("whatsapp", IdentityKind.WHATSAPP)):
        for text in (t.strip() for v in value(name) for t in _PHONE_SEPARATORS.split(v) if t.strip()):
            # Read in the region, then with a + in front (an international number written
            # without it), as every phone number is: see omniconsole/core/identity.py.
            address = valid_phone(text, region)
            if address is not None:
                identities.append((str(kind), address))
            else:
                problems.append(f"not a valid phone number for region {region}: {text!r}")
    for telegram in (t for v in value("telegram") for t in _LABEL_SEPARATORS.split(v) if t.strip()):
        telegram = telegram.strip()
        if telegram.isdigit():
            identities.append(("telegram", telegram))
        else:
            problems.append(f"Telegram needs the numeric user id, not {telegram!r} (a username cannot be matched to a chat)")
    for vk in (t for v in value("vk") for t in _LABEL_SEPARATORS.split(v) if t.strip()):
        match = _VK.match(vk.strip())
        if match:
            identities.append(("vk", match.group(1)))
        else:
            problems.append(f"VK needs the numeric user id or vk.com/idNNN, not {vk.strip()!r}")
    for crm_id in (t.strip() for v in value("crm") for t in _LABEL_SEPARATORS.split(v) if t.strip()):
        identities.append(("crm", sanitize_text(crm_id)[:200]))
    do_not_contact = ""
    for column in mapping.fields.get("do_not_contact", []):
        said = cell(column)
        if said and said.strip().casefold() in _YES:
            do_not_contact = f"import: {header[column] if column < len(header) else 'do not contact'} = {said.strip()}"
    if problems:
        return RowOutcome(line, "invalid", "; ".join(problems))
    if not identities:
        return RowOutcome(line, "invalid", "no e-mail, phone, Telegram, VK, WhatsApp or CRM id to recognise the customer by")
    used = mapping.used()
    attributes = {
        header[i]: sanitize_text(v).strip()
        for i, v in enumerate(values)
        if i not in used and i < len(header) and header[i] and sanitize_text(v).strip()
    }
    names = value("name")
    name = (
        names[0]
        if names
        else " ".join(text for part in ("first", "middle", "last") for text in cells(mapping.name_parts.get(part, [])))
    )
    # Google's system groups ("* myContacts", "* starred") are its own bookkeeping, not labels.
    labels = [
        x.strip() for v in value("labels") for x in _LABEL_SEPARATORS.split(v) if x.strip() and not x.strip().startswith("* ")
    ]
    return Contact(
        line,
        name,
        list(dict.fromkeys(identities)),
        attributes,
        "\n".join(value("note")),
        list(dict.fromkeys(labels)),
        do_not_contact,
    )


def _seen_key(kind: str, address: str) -> tuple[str, str]:
    # One number is one identity whichever phone-like column it came in (as in the store).
    return ("phone" if kind in PHONE_KINDS else kind, address)


def _describe(identities: list[tuple[str, str]]) -> str:
    return ", ".join(f"{kind} {address}" for kind, address in identities)


def process(
    conn: sqlite3.Connection,
    contact: Contact,
    seen: dict[tuple[str, str], int],
    states: dict[int, CustomerState],
    actor: str,
    apply: bool,
) -> RowOutcome:
    """Classify one contact against the history (and rows earlier in this file: `seen` maps
    their identities to customers, `states` holds what a dry run would have written) and, with
    `apply`, write it through omniconsole/store/contacts.py. A dry run gives the customers it
    would create the id -line."""
    owners: dict[int, list[tuple[str, str]]] = {}
    for kind, address in contact.identities:
        owner = seen.get(_seen_key(kind, address))
        if owner is None:
            owner = contacts_store.owner_of(conn, kind, address)
        if owner is not None:
            owners.setdefault(owner, []).append((kind, address))
    label = contact.name or _describe(contact.identities)
    # A phone the row shares with a customer of another full name (an office line, a family's
    # home phone) does not make the row that customer: it stays theirs, the row is judged by
    # its other identities, and the two are suggested as one person for an operator to settle.
    shared = {o: found for o, found in owners.items() if _another_person(contact, found, _state_of(conn, o, states))}
    if shared:
        owners = {o: found for o, found in owners.items() if o not in shared}
        contact = replace(contact, identities=[i for i in contact.identities if not any(i in f for f in shared.values())])
        others = "; ".join(
            f"{_describe(found)} is also {_who(o)} «{_state_of(conn, o, states).name}»'s, another person: suggested, not merged"
            for o, found in shared.items()
        )
        if not contact.identities:
            return RowOutcome(
                contact.line, "conflicting", f"{label}: {others}; nothing else to recognise {label} by, nothing written"
            )
    outcome = _classify(conn, contact, owners, label, seen, states, actor, apply)
    if shared:
        if apply and outcome.customer_id is not None and outcome.customer_id > 0:
            for owner, found in shared.items():
                if owner > 0:
                    theirs = _state_of(conn, owner, states).name
                    reason = f"a CRM import gives {_describe(found)} to «{contact.name}» and to «{theirs}»"
                    contacts_store.suggest_same_person(conn, [outcome.customer_id, owner], reason, actor)
        outcome.detail += f"; {others}"
    return outcome


def _who(customer_id: int) -> str:
    return f"line {-customer_id} of this file" if customer_id < 0 else f"customer {customer_id}"


def _state_of(conn: sqlite3.Connection, customer_id: int, states: dict[int, CustomerState]) -> CustomerState:
    return states.get(customer_id) or contacts_store.customer_state(conn, customer_id)


def _another_person(contact: Contact, found: list[tuple[str, str]], state: CustomerState) -> bool:
    """Whether the customer `state` (holding `found` of the row's identities) is someone else
    than the row names: they share only phone numbers (one person's e-mail is evidence, a
    number is often an office's or a family's) and both have full names, neither of which
    holds the other's words ("Иван Петров" is "Иван Петрович Петров" and "Иван Петров (дубль)";
    "Мария Петрова" is someone else). A channel's nickname is no name to compare."""
    if not all(kind in PHONE_KINDS for kind, _ in found) or state.name_source == "channel":
        return False
    theirs, ours = name_key(state.name), name_key(contact.name)
    if theirs is None or ours is None:
        return False
    return not (set(theirs) <= set(ours) or set(ours) <= set(theirs))


def _classify(
    conn: sqlite3.Connection,
    contact: Contact,
    owners: dict[int, list[tuple[str, str]]],
    label: str,
    seen: dict[tuple[str, str], int],
    states: dict[int, CustomerState],
    actor: str,
    apply: bool,
) -> RowOutcome:
    """A row as new, matched or conflicting, by the customers (`owners`) its identities belong to."""
    if len(owners) > 1:
        parts = []
        for owner, found in owners.items():
            parts.append(f"{_describe(found)} belong{'s' if len(found) == 1 else ''} to {_who(owner)}")
        if apply:
            contacts_store.suggest_same_person(
                conn, [o for o in owners if o > 0], f"one contact of a CRM import lists both ({label})", actor
            )
        return RowOutcome(contact.line, "conflicting", f"{label}: " + "; ".join(parts))
    if not owners:
        name = contact.name or contact.identities[0][1]
        if apply:
            customer_id = contacts_store.create_imported_customer(
                conn,
                name,
                contact.identities,
                actor,
                named=bool(contact.name),
                note=contact.note,
                attributes=contact.attributes,
                labels=contact.labels,
            )
        else:
            customer_id = -contact.line
            states[customer_id] = CustomerState(
                name, "import" if contact.name else "channel", dict(contact.attributes), set(contact.labels), contact.note
            )
        if apply and contact.do_not_contact:
            integrations_store.set_do_not_contact(conn, customer_id, contact.do_not_contact, actor)
        for kind, address in contact.identities:
            seen[_seen_key(kind, address)] = customer_id
        return RowOutcome(contact.line, "new", f"{label} ({_describe(contact.identities)})", customer_id, True)
    [(customer_id, known)] = owners.items()
    missing = [i for i in contact.identities if i not in known]
    state = _state_of(conn, customer_id, states)
    merged = {**state.attributes, **contact.attributes}
    # The CRM's name replaces a channel's nickname, but never a name an operator or an earlier
    # import gave (so a file naming one person twice is still idempotent).
    rename = bool(contact.name) and state.name_source == "channel" and contact.name != state.name
    changes: list[str] = []
    if missing:
        changes.append("adds " + _describe(missing))
    if merged != state.attributes:
        changes.append("attributes")
    if contact.labels and not set(contact.labels) <= state.labels:
        changes.append("labels")
    if contact.note and contact.note not in state.note:
        changes.append("note")
    if rename:
        changes.append(f"name «{state.name}» → «{contact.name}»")
    new_note = (state.note + "\n" + contact.note).strip() if "note" in changes else state.note
    if (
        apply
        and contact.do_not_contact
        and integrations_store.set_do_not_contact(conn, customer_id, contact.do_not_contact, actor)
    ):
        changes.append("do not contact")
    if apply and changes:
        contacts_store.update_imported_customer(
            conn,
            customer_id,
            actor,
            identities=missing,
            attributes=merged if merged != state.attributes else None,
            labels=sorted(state.labels | set(contact.labels)) if "labels" in changes else None,
            note=new_note if "note" in changes else None,
            name=contact.name if rename else None,
        )
    elif changes:
        # A dry run remembers what this row would have done, for the rows after it.
        states[customer_id] = CustomerState(
            contact.name if rename else state.name,
            "import" if rename else state.name_source,
            merged,
            state.labels | set(contact.labels),
            new_note,
        )
    for kind, address in contact.identities:
        seen[_seen_key(kind, address)] = customer_id
    detail = f"{label} is {_who(customer_id)}" + (f"; {', '.join(changes)}" if changes else "; nothing new")
    return RowOutcome(contact.line, "matched", detail, customer_id, bool(changes))


async def import_contacts(
    store: Store,
    path: Path,
    *,
    region: str = "RU",
    overrides: Iterable[str] = (),
    dry_run: bool = False,
    actor: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> ContactsReport:
    """Import (or with `dry_run` only classify) the contacts of a CSV file."""
    started = time.perf_counter()
    header, rows = read_rows(path)
    mapping = column_mapping(header, overrides)
    report = ContactsReport(dry_run=dry_run)
    seen: dict[tuple[str, str], int] = {}
    states: dict[int, CustomerState] = {}
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        parsed = [parse_contact(line, values, header, mapping, region) for line, values in batch]

        def work(conn: sqlite3.Connection) -> list[RowOutcome]:
            return [p if isinstance(p, RowOutcome) else process(conn, p, seen, states, actor, apply=not dry_run) for p in parsed]  # noqa: B023

        # One transaction per batch: a crash keeps the batches before it, and a re-run
        # finds those rows matched (the import is idempotent).
        report.rows.extend(await (store.db.run(work) if dry_run else store.db.write(work)))
        if progress is not None:
            progress(min(start + _BATCH, len(rows)), len(rows))
    report.seconds = time.perf_counter() - started
    return report


def print_report(report: ContactsReport, out=None, *, every_row: bool) -> None:
    """The per-row lines (all of them for a dry run, else the ones needing attention) and the
    counts."""
    out = out or sys.stdout
    for row in report.rows:
        if every_row or row.status in ("conflicting", "invalid"):
            print(f"line {row.line}: {row.status}: {' '.join(row.detail.split())[:300]}", file=out)
    c = report.as_dict()
    # Say what was written, not how many rows were read: a file of 5 rows that writes 2
    # customers must not read as "imported 5".
    dry = report.dry_run
    unchanged = c["matched"] - c["updated"]
    refused = c["conflicting"] + c["invalid"]
    print(
        f"read {c['rows']:,} rows; {'would write' if dry else 'wrote'} {c['written']:,}:"
        f" {c['new']:,} new {_plural(c['new'], 'customer')}, {c['updated']:,} {_plural(c['updated'], 'customer')} updated;"
        f" {unchanged:,} already up to date"
        + (
            f"; {'would not write' if dry else 'not written'}: {c['conflicting']:,} conflicting, {c['invalid']:,} invalid"
            if refused
            else ""
        )
        + (" (dry run: nothing written)" if dry else ""),
        file=out,
    )


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def cmd_import_contacts(args: argparse.Namespace, settings, actor: str) -> int:
    """`omniconsole import contacts FILE.csv [--map field=Column] [--dry-run] [--json]`."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    async def run() -> ContactsReport:
        store = await Store.open(settings.database)
        try:
            with Progress(
                TextColumn("contacts"), BarColumn(), MofNCompleteColumn(), console=Console(stderr=True), transient=True
            ) as bar:
                task = bar.add_task("contacts", total=None)
                return await import_contacts(
                    store,
                    Path(args.path).expanduser(),
                    region=settings.default_region,
                    overrides=args.map or (),
                    dry_run=args.dry_run,
                    actor=actor,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
        finally:
            await store.close()

    report = asyncio.run(run())
    print_report(report, every_row=args.dry_run)
    if args.json:
        print(json.dumps(report.as_dict()))
    return 1 if report.count("invalid") or report.count("conflicting") else 0
