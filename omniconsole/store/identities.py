"""Who wrote: finding the customer behind an identity, creating them on first contact, and
giving a customer one more identity.

An identity is `(kind, address)`, address already normalised by the core (e-mail lower-case
and IDNA, phone E.164). It is unique: one identity names one customer. A phone number is one
number whichever phone-like channel (`PHONE_KINDS`) it arrives by. An identity that already
belongs to someone else is never moved silently: the conflict is recorded and a merge is
suggested (see `suggestions`).

Every function runs inside the caller's write transaction; times are epoch seconds.
"""

from __future__ import annotations

import sqlite3
import time

from omniconsole.store import phones, search
from omniconsole.store.events import add_event
from omniconsole.store.phones import PHONE_KINDS
from omniconsole.store.records import InboundRecord
from omniconsole.store.suggestions import customer_name, suggest, suggest_for_new_customer

# The inserts here run for every new customer of an ingest batch: `lastrowid`, because
# `RETURNING id` made the hot path measurably slower (store/events.py says how much).


def identity_owner(conn: sqlite3.Connection, kind: str, address: str) -> int | None:
    """The customer holding identity (kind, address), or None; a phone number is looked up
    under every phone-like kind (a WhatsApp id and a caller's number are the same number)."""
    kinds = PHONE_KINDS if kind in PHONE_KINDS else (kind,)
    marks = ", ".join("?" * len(kinds))
    row = conn.execute(
        f"SELECT customer_id FROM identities WHERE kind IN ({marks}) AND address = ? ORDER BY id LIMIT 1", (*kinds, address)
    ).fetchone()
    return row[0] if row else None


def suggest_for_identity(
    conn: sqlite3.Connection, customer_id: int, kind: str, address: str, how: str, now: float, actor: str = ""
) -> bool:
    """`customer_id` revealed identity (kind, address) `how` ("wrote it in a message",
    "shared it as a contact"); if it belongs to someone else, suggest they are one person.
    Returns True when a new suggestion was made."""
    owner = identity_owner(conn, kind, address)
    if owner is None or owner == customer_id:
        return False
    label = {"email": "e-mail", "phone": "phone", "whatsapp": "WhatsApp number"}.get(kind, kind)
    reason = f"{how} the {label} {address}, which belongs to {customer_name(conn, owner)}"
    return suggest(conn, customer_id, owner, reason, actor=actor, now=now)


def _insert_identity(conn: sqlite3.Connection, customer_id: int, kind: str, address: str, display: str, now: float) -> int:
    return conn.execute(
        "INSERT INTO identities (customer_id, kind, address, display, created_at) VALUES (?, ?, ?, ?, ?)",
        (customer_id, kind, address, display, now),
    ).lastrowid


def customer_for(conn: sqlite3.Connection, record: InboundRecord, now: float) -> tuple[int, int]:
    """(customer id, identity id) of a record's sender, creating both on first contact and
    following a channel's rename unless an operator named the customer."""
    row = conn.execute(
        "SELECT i.id, i.customer_id, c.display_name, c.name_source FROM identities i"
        " JOIN customers c ON c.id = i.customer_id WHERE i.kind = ? AND i.address = ?",
        (record.identity_kind, record.address),
    ).fetchone()
    if row is not None:
        identity_id, customer_id, name, source = row
        if record.sender_name and source == "channel" and record.sender_name != name:
            conn.execute("UPDATE customers SET display_name = ? WHERE id = ?", (record.sender_name, customer_id))
            search.refresh_customer_index(conn, customer_id)
        return customer_id, identity_id
    if record.identity_kind in PHONE_KINDS:
        # A number we know by another phone-like channel (they called, now they WhatsApp) is
        # the same identity: the same person, not a guess.
        owner = identity_owner(conn, record.identity_kind, record.address)
        if owner is not None:
            identity_id = _insert_identity(conn, owner, record.identity_kind, record.address, record.identity_display, now)
            search.refresh_customer_index(conn, owner)
            return owner, identity_id
    name = record.sender_name or record.identity_display or record.address
    customer_id = conn.execute(
        "INSERT INTO customers (display_name, origin, created_at) VALUES (?, ?, ?)", (name, record.origin, now)
    ).lastrowid
    identity_id = _insert_identity(conn, customer_id, record.identity_kind, record.address, record.identity_display, now)
    search.index_new_customer(conn, customer_id, name, record.address)
    add_event(conn, "customer.created", customer_id=customer_id, payload={"kind": record.identity_kind}, at=now)
    if record.sender_name:
        suggest_for_new_customer(conn, customer_id, record.sender_name, now)
    phones.suggest_for_shared_number(conn, customer_id, record.identity_kind, record.address, now)
    return customer_id, identity_id


def attach_identity(
    conn: sqlite3.Connection, customer_id: int, kind: str, address: str, display: str, now: float, actor: str
) -> None:
    """Give a customer one more identity; if it already belongs to someone else, leave it
    there and record the conflict (merging strangers silently is worse than a duplicate)."""
    row = conn.execute("SELECT customer_id FROM identities WHERE kind = ? AND address = ?", (kind, address)).fetchone()
    if row is None and kind in PHONE_KINDS:
        owner = identity_owner(conn, kind, address)
        row = (owner,) if owner is not None else None
    if row is not None:
        if row[0] != customer_id:
            add_event(
                conn,
                "identity.conflict",
                actor=actor,
                customer_id=customer_id,
                payload={"kind": kind, "address": address, "other_customer_id": row[0]},
                at=now,
            )
            suggest_for_identity(conn, customer_id, kind, address, "gave", now, actor)
        return
    _insert_identity(conn, customer_id, kind, address, display, now)
    search.refresh_customer_index(conn, customer_id)
    add_event(conn, "identity.added", actor=actor, customer_id=customer_id, payload={"kind": kind, "address": address}, at=now)
    phones.suggest_for_shared_number(conn, customer_id, kind, address, now, actor)


def add_customer(
    conn: sqlite3.Connection, name: str, identities: list[tuple[str, str, str]], *, actor: str = "", now: float | None = None
) -> int:
    """Create a customer known from elsewhere (a CRM, the demo) with normalised identities
    given as (kind, address, display); an identity that already exists stays where it is.
    Returns the new customer's id."""
    now = now or time.time()
    customer_id = conn.execute("INSERT INTO customers (display_name, created_at) VALUES (?, ?)", (name, now)).lastrowid
    search.index_new_customer(conn, customer_id, name)
    add_event(conn, "customer.created", actor=actor, customer_id=customer_id, at=now)
    for kind, address, display in identities:
        attach_identity(conn, customer_id, kind, address, display, now, actor)
    search.refresh_customer_index(conn, customer_id)
    return customer_id
