"""`omniconsole import contacts FILE.csv`: customers from a CRM export.

Each row names one person by any of e-mail, phone, Telegram id, VK id, WhatsApp number. A row
whose identities are all unknown makes a new customer; a row whose known identities all belong
to one customer updates that customer (new identities, attributes from extra columns); a row
whose identities belong to *different* customers is a conflict and changes nothing (it suggests
the two may be one person, for an operator to decide). A malformed value makes the row invalid,
with the line number and the reason. Re-running the same file changes nothing.

Files come from spreadsheets: a UTF-8 BOM, Windows-1251, semicolons or tabs are all normal.
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
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers

from omniconsole.core.identity import normalize_address
from omniconsole.errors import UsageError
from omniconsole.models import IdentityKind, sanitize_text
from omniconsole.store import Store
from omniconsole.store import customers as customer_store
from omniconsole.store.history import add_customer

# Our fields and the column headers that mean them (compared case-insensitively, with spaces,
# dashes, dots and underscores ignored).
FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("name", "fullname", "fio", "фио", "имя", "клиент", "contact", "контакт", "customer", "client"),
    "email": ("email", "mail", "emailaddress", "почта", "электроннаяпочта", "эл почта", "эпочта"),
    "phone": ("phone", "tel", "telephone", "mobile", "phonenumber", "телефон", "тел", "мобильный", "мобтелефон"),
    "telegram": ("telegram", "tg", "telegramid", "телеграм", "телеграмм"),
    "vk": ("vk", "vkid", "vkontakte", "вк", "вконтакте"),
    "whatsapp": ("whatsapp", "wa", "ватсап", "вотсап"),
    "note": ("note", "notes", "comment", "заметка", "комментарий", "примечание"),
    "labels": ("labels", "tags", "метки", "теги"),
}
IDENTITY_FIELDS = ("email", "phone", "telegram", "vk", "whatsapp")
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
        return {
            "rows": len(self.rows), "new": self.count("new"), "matched": self.count("matched"),
            "updated": sum(1 for r in self.rows if r.status == "matched" and r.changed),
            "conflicting": self.count("conflicting"), "invalid": self.count("invalid"),
            "dry_run": self.dry_run, "seconds": round(self.seconds, 3),
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


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the data rows (with their line numbers) of a CSV file, whatever its
    encoding (UTF-8 with or without BOM, else Windows-1251) and delimiter."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory; give a CSV file") from None
    except PermissionError:
        raise UsageError(f"cannot read {path}: permission denied") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1251", errors="replace")
    if not text.strip():
        raise UsageError(f"{path} is empty")
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
        raise UsageError(f"{path} has no header row") from None
    except csv.Error as exc:
        raise UsageError(f"{path} line {reader.line_num}: not readable as CSV ({exc})") from None
    return [sanitize_text(h).strip() for h in header], rows


def column_mapping(header: list[str], overrides: Iterable[str] = ()) -> dict[str, int]:
    """Which column holds each field: `--map field=Column` first, then known header names."""
    index_of = {h: i for i, h in enumerate(header)}
    mapping: dict[str, int] = {}
    for item in overrides:
        name, eq, column = item.partition("=")
        name = name.strip().lower()
        if not eq or name not in FIELDS:
            raise UsageError(f"--map takes FIELD=COLUMN with FIELD one of {', '.join(FIELDS)} (got {item!r})")
        if column not in index_of:
            raise UsageError(f"--map {item}: the file has no column {column!r} (columns: {', '.join(header)})")
        mapping[name] = index_of[column]
    for i, h in enumerate(header):
        key = _header_key(h)
        for name, aliases in FIELDS.items():
            if name not in mapping and i not in mapping.values() and key in {_header_key(a) for a in aliases}:
                mapping[name] = i
    if not any(f in mapping for f in IDENTITY_FIELDS):
        raise UsageError(
            "no column to recognise customers by (e-mail, phone, telegram, vk or whatsapp);"
            f" name one with --map, e.g. --map email={header[0] if header else 'Column'} (columns: {', '.join(header)})"
        )
    return mapping


def parse_contact(line: int, values: list[str], header: list[str], mapping: dict[str, int], region: str) -> Contact | RowOutcome:
    """A row as a Contact, or an `invalid` outcome saying what is wrong with it."""
    def value(name: str) -> str:
        i = mapping.get(name)
        return sanitize_text(values[i]).strip() if i is not None and i < len(values) else ""

    problems: list[str] = []
    identities: list[tuple[str, str]] = []
    for text in re.split(r"[,;\s]+", value("email")) if value("email") else []:
        if _EMAIL.match(text):
            identities.append(("email", normalize_address(IdentityKind.EMAIL, text, region)))
        else:
            problems.append(f"not an e-mail address: {text!r}")
    for name, kind in (("phone", IdentityKind.PHONE), ("whatsapp", IdentityKind.WHATSAPP)):
        for text in re.split(r"[,;]+", value(name)) if value(name) else []:
            text = text.strip()
            try:
                number = phonenumbers.parse(text, region)
                valid = phonenumbers.is_valid_number(number)
            except phonenumbers.NumberParseException:
                valid = False
            if valid:
                identities.append((str(kind), phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)))
            else:
                problems.append(f"not a valid phone number for region {region}: {text!r}")
    telegram = value("telegram")
    if telegram:
        if telegram.isdigit():
            identities.append(("telegram", telegram))
        else:
            problems.append(f"Telegram needs the numeric user id, not {telegram!r} (a username cannot be matched to a chat)")
    vk = value("vk")
    if vk:
        match = _VK.match(vk)
        if match:
            identities.append(("vk", match.group(1)))
        else:
            problems.append(f"VK needs the numeric user id or vk.com/idNNN, not {vk!r}")
    if problems:
        return RowOutcome(line, "invalid", "; ".join(problems))
    if not identities:
        return RowOutcome(line, "invalid", "no e-mail, phone, Telegram, VK or WhatsApp to recognise the customer by")
    used = set(mapping.values())
    attributes = {
        header[i]: sanitize_text(v).strip()
        for i, v in enumerate(values)
        if i not in used and i < len(header) and header[i] and sanitize_text(v).strip()
    }
    labels = [x.strip() for x in re.split(r"[,;]", value("labels")) if x.strip()]
    return Contact(line, value("name"), list(dict.fromkeys(identities)), attributes, value("note"), labels)


def _seen_key(kind: str, address: str) -> tuple[str, str]:
    # One number is one identity whichever phone-like column it came in (as in the store).
    return ("phone" if kind in customer_store.PHONE_KINDS else kind, address)


def _describe(identities: list[tuple[str, str]]) -> str:
    return ", ".join(f"{kind} {address}" for kind, address in identities)


_State = tuple[str, str, dict, set, str]  # name, name source, attributes, labels, note


def _state(conn: sqlite3.Connection, customer_id: int, states: dict[int, _State]) -> _State:
    if customer_id in states:
        return states[customer_id]
    row = conn.execute("SELECT display_name, name_source, attributes, note FROM customers WHERE id = ?", (customer_id,)).fetchone()
    try:
        attributes = json.loads(row[2]) if row[2] else {}
    except ValueError:
        attributes = {}
    labels = {
        r[0] for r in conn.execute(
            "SELECT l.name FROM customer_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.customer_id = ?", (customer_id,)
        )
    }
    return row[0], row[1], attributes if isinstance(attributes, dict) else {}, labels, row[3]


def process(
    conn: sqlite3.Connection,
    contact: Contact,
    seen: dict[tuple[str, str], int],
    states: dict[int, _State],
    actor: str,
    apply: bool,
) -> RowOutcome:
    """Classify one contact against the history (and rows earlier in this file: `seen` maps
    their identities to customers, `states` holds what a dry run would have written) and, with
    `apply`, write it. A dry run gives the customers it would create the id -line."""
    owners: dict[int, list[tuple[str, str]]] = {}
    for kind, address in contact.identities:
        owner = seen.get(_seen_key(kind, address))
        if owner is None:
            owner = customer_store.identity_owner(conn, kind, address)
            if owner is not None:
                owner = customer_store.live_customer(conn, owner)
        if owner is not None:
            owners.setdefault(owner, []).append((kind, address))
    label = contact.name or _describe(contact.identities)
    if len(owners) > 1:
        parts = []
        for owner, found in owners.items():
            who = f"line {-owner} of this file" if owner < 0 else f"customer {owner}"
            parts.append(f"{_describe(found)} belong{'s' if len(found) == 1 else ''} to {who}")
        if apply:
            real = [o for o in owners if o > 0]
            for one, two in zip(real, real[1:]):
                customer_store.suggest(conn, one, two, f"one contact of a CRM import lists both ({label})", actor=actor)
        return RowOutcome(contact.line, "conflicting", f"{label}: " + "; ".join(parts))
    if not owners:
        if apply:
            customer_id = add_customer(
                conn, contact.name or contact.identities[0][1], [(k, a, "") for k, a in contact.identities], actor=actor
            )
            if contact.name:
                conn.execute("UPDATE customers SET name_source = 'import' WHERE id = ?", (customer_id,))
            customer_store.update_customer(
                conn, customer_id, actor, note=contact.note or None, attributes=contact.attributes or None,
                labels=contact.labels or None,
            )
        else:
            customer_id = -contact.line
            states[customer_id] = (
                contact.name or contact.identities[0][1], "import" if contact.name else "channel",
                dict(contact.attributes), set(contact.labels), contact.note,
            )
        for kind, address in contact.identities:
            seen[_seen_key(kind, address)] = customer_id
        return RowOutcome(contact.line, "new", f"{label} ({_describe(contact.identities)})", customer_id, True)
    [(customer_id, known)] = owners.items()
    missing = [i for i in contact.identities if i not in known]
    name, source, attributes, labels_now, note = _state(conn, customer_id, states)
    merged = {**attributes, **contact.attributes}
    # The CRM's name replaces a channel's nickname, but never a name an operator or an earlier
    # import gave (so a file naming one person twice is still idempotent).
    rename = bool(contact.name) and source == "channel" and contact.name != name
    changes: list[str] = []
    if missing:
        changes.append("adds " + _describe(missing))
    if merged != attributes:
        changes.append("attributes")
    if contact.labels and not set(contact.labels) <= labels_now:
        changes.append("labels")
    if contact.note and contact.note not in note:
        changes.append("note")
    if rename:
        changes.append(f"name «{name}» → «{contact.name}»")
    new_note = (note + "\n" + contact.note).strip() if "note" in changes else note
    if apply and changes:
        for kind, address in missing:
            customer_store.add_identity(conn, customer_id, kind, address, actor)
        customer_store.update_customer(
            conn, customer_id, actor,
            attributes=merged if merged != attributes else None,
            labels=sorted(labels_now | set(contact.labels)) if "labels" in changes else None,
            note=new_note if "note" in changes else None,
        )
        if rename:
            conn.execute("UPDATE customers SET display_name = ?, name_source = 'import' WHERE id = ?", (contact.name, customer_id))
            customer_store.history.refresh_customer_index(conn, customer_id)
    elif changes:
        # A dry run remembers what this row would have done, for the rows after it.
        states[customer_id] = (
            contact.name if rename else name, "import" if rename else source, merged, labels_now | set(contact.labels), new_note
        )
    for kind, address in contact.identities:
        seen[_seen_key(kind, address)] = customer_id
    who = f"line {-customer_id} of this file" if customer_id < 0 else f"customer {customer_id}"
    detail = f"{label} is {who}" + (f"; {', '.join(changes)}" if changes else "; nothing new")
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
    states: dict[int, _State] = {}
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        parsed = [parse_contact(line, values, header, mapping, region) for line, values in batch]

        def work(conn: sqlite3.Connection) -> list[RowOutcome]:
            return [
                p if isinstance(p, RowOutcome) else process(conn, p, seen, states, actor, apply=not dry_run)
                for p in parsed
            ]

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
    verb = "would import" if report.dry_run else "imported"
    print(
        f"{verb} {c['rows']:,} rows: {c['new']:,} new, {c['matched']:,} matched ({c['updated']:,} with changes),"
        f" {c['conflicting']:,} conflicting, {c['invalid']:,} invalid" + ("" if not report.dry_run else " (dry run: nothing written)"),
        file=out,
    )


def cmd_import_contacts(args: argparse.Namespace, settings, actor: str) -> int:
    """`omniconsole import contacts FILE.csv [--map field=Column] [--dry-run] [--json]`."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    async def run() -> ContactsReport:
        store = await Store.open(settings.database)
        try:
            with Progress(TextColumn("contacts"), BarColumn(), MofNCompleteColumn(), console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task("contacts", total=None)
                return await import_contacts(
                    store, Path(args.path).expanduser(), region=settings.default_region, overrides=args.map or (),
                    dry_run=args.dry_run, actor=actor, progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
        finally:
            await store.close()

    report = asyncio.run(run())
    print_report(report, every_row=args.dry_run)
    if args.json:
        print(json.dumps(report.as_dict()))
    return 1 if report.count("invalid") or report.count("conflicting") else 0
