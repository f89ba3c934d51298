"""What a contacts import (omniconsole/core/contacts_import.py) reads and writes.

The import decides, row by row, whether a CRM's contact is a new customer, an update of one
we know, or a conflict; these functions are the statements behind those decisions. Every
function runs inside the caller's transaction (a write transaction for the ones that write).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from omniconsole.store import customers, history


@dataclass
class CustomerState:
    """What an import may change about a customer, as it stands: the display name and where it
    came from (`channel`, `import`, `operator`), the attributes, label names and the note."""

    name: str
    name_source: str
    attributes: dict[str, str] = field(default_factory=dict)
    labels: set[str] = field(default_factory=set)
    note: str = ""


def owner_of(conn: sqlite3.Connection, kind: str, address: str) -> int | None:
    """The live customer holding identity (kind, address) (whoever a merged holder was merged
    into), or None; a phone number is one identity under every phone-like kind."""
    owner = customers.identity_owner(conn, kind, address)
    return customers.live_customer(conn, owner) if owner is not None else None


def customer_state(conn: sqlite3.Connection, customer_id: int) -> CustomerState:
    """A customer's `CustomerState`; attributes that are not a JSON object read as none."""
    row = conn.execute(
        "SELECT display_name, name_source, attributes, note FROM customers WHERE id = ?", (customer_id,)
    ).fetchone()
    try:
        attributes = json.loads(row[2]) if row[2] else {}
    except ValueError:
        attributes = {}
    labels = {
        r[0]
        for r in conn.execute(
            "SELECT l.name FROM customer_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.customer_id = ?", (customer_id,)
        )
    }
    return CustomerState(row[0], row[1], attributes if isinstance(attributes, dict) else {}, labels, row[3] or "")


def create_imported_customer(
    conn: sqlite3.Connection,
    name: str,
    identities: list[tuple[str, str]],
    actor: str,
    *,
    named: bool,
    note: str = "",
    attributes: dict[str, str] | None = None,
    labels: list[str] | None = None,
) -> int:
    """A new customer from a CRM's contact, with normalised (kind, address) identities; returns
    its id. `named`: the name is the CRM's (`name_source = 'import'`, which a channel's
    nickname never replaces), not one of the identities standing in for a name."""
    customer_id = history.add_customer(conn, name, [(kind, address, "") for kind, address in identities], actor=actor)
    if named:
        conn.execute("UPDATE customers SET name_source = 'import' WHERE id = ?", (customer_id,))
    customers.update_customer(conn, customer_id, actor, note=note or None, attributes=attributes or None, labels=labels or None)
    return customer_id


def update_imported_customer(
    conn: sqlite3.Connection,
    customer_id: int,
    actor: str,
    *,
    identities: list[tuple[str, str]] = (),
    attributes: dict[str, str] | None = None,
    labels: list[str] | None = None,
    note: str | None = None,
    name: str | None = None,
) -> None:
    """Write what a CRM's contact adds to a customer we know: more identities, the whole new
    attributes, labels and note (None: unchanged), and `name` as the CRM's name."""
    for kind, address in identities:
        customers.add_identity(conn, customer_id, kind, address, actor)
    customers.update_customer(conn, customer_id, actor, attributes=attributes, labels=labels, note=note)
    if name is not None:
        conn.execute("UPDATE customers SET display_name = ?, name_source = 'import' WHERE id = ?", (name, customer_id))
        history.refresh_customer_index(conn, customer_id)


def suggest_same_person(conn: sqlite3.Connection, customer_ids: list[int], reason: str, actor: str) -> int:
    """Suggest that each customer of `customer_ids` is the same person as the next (one
    contact of a CRM names them all); returns how many suggestions are new."""
    return sum(customers.suggest(conn, one, two, reason, actor=actor) for one, two in zip(customer_ids, customer_ids[1:]))
