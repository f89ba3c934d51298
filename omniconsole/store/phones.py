"""Office numbers that several people share: phone identities with extensions.

A phone identity's address may carry an extension in RFC 3966's form (`+74951234567;ext=101`,
see omniconsole/core/identity.py), so two colleagues behind one office number are two
customers. The bare number (`+74951234567`: a call from the office's line, a contact that
gives no extension) could be any of them, so it matches none of them silently: the customer
it belongs to and each person with an extension of that number get a merge suggestion, with
the reason in words, for an operator to settle.

Every function runs inside the caller's write transaction.
"""

from __future__ import annotations

import sqlite3
import time

from omniconsole.store.suggestions import suggest

# Identity kinds whose address is a phone number in E.164: one number is one person whichever
# of these channels it arrives by.
PHONE_KINDS = ("phone", "whatsapp")

# The separator of RFC 3966's extension parameter, as identity addresses write it.
EXTENSION = ";ext="
# Extensions of a number sort between "<number>;ext=" and "<number>;ext>" ('>' follows '=').
_AFTER_EXTENSIONS = ";ext>"


def split_extension(address: str) -> tuple[str, str]:
    """(number, extension) of a phone identity's address; the extension is "" when none."""
    number, _, extension = address.partition(EXTENSION)
    return number, extension


def sharing_the_number(conn: sqlite3.Connection, address: str) -> list[tuple[int, str]]:
    """(customer id, address) of the phone identities that share `address`'s office number
    and are not `address` itself: for a bare number, every extension of it; for an extension,
    the bare number. Ordered by address, one row per customer and address."""
    number, extension = split_extension(address)
    kinds = ", ".join("?" * len(PHONE_KINDS))
    if extension:
        rows = conn.execute(
            f"SELECT DISTINCT customer_id, address FROM identities WHERE kind IN ({kinds}) AND address = ? ORDER BY address",
            (*PHONE_KINDS, number),
        ).fetchall()
    else:
        # A range on the (kind, address) index rather than LIKE (whose index use depends on
        # the engine's collation settings).
        rows = conn.execute(
            f"SELECT DISTINCT customer_id, address FROM identities WHERE kind IN ({kinds}) AND address >= ? AND address < ?"
            " ORDER BY address",
            (*PHONE_KINDS, number + EXTENSION, number + _AFTER_EXTENSIONS),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def suggest_for_shared_number(
    conn: sqlite3.Connection, customer_id: int, kind: str, address: str, now: float | None = None, actor: str = ""
) -> int:
    """`customer_id` has just been given phone identity (kind, address): suggest them as one
    person with everyone who holds the same office number with another extension or without
    one. Returns how many suggestions are new (a pair is suggested once; see
    `suggestions.suggest`). Other kinds of identity are left alone (returns 0)."""
    if kind not in PHONE_KINDS or not address.startswith("+"):
        return 0
    now = now or time.time()
    number, extension = split_extension(address)
    made = 0
    for owner, other in sharing_the_number(conn, address):
        if owner == customer_id:
            continue
        other_extension = split_extension(other)[1]
        bare_id, extended_id, shared = (owner, customer_id, extension) if extension else (customer_id, owner, other_extension)
        reason = (
            f"one office number {number}: «{_name(conn, bare_id)}» has it without an extension,"
            f" «{_name(conn, extended_id)}» with extension {shared}"
        )
        made += suggest(conn, customer_id, owner, reason, actor=actor, now=now)
    return made


def _name(conn: sqlite3.Connection, customer_id: int) -> str:
    row = conn.execute("SELECT display_name FROM customers WHERE id = ?", (customer_id,)).fetchone()
    return (row[0] if row else "") or f"customer {customer_id}"
