""" "Possibly the same person" suggestions: made on evidence, decided by an operator.

A pair of customers is suggested once, with the reason in words; a dismissed pair stays
dismissed. `suggest_for_new_customer` looks for the same full name shared by few people;
`identities.suggest_for_identity` for an identity that someone else holds.

Every function runs inside the caller's write transaction.
"""

from __future__ import annotations

import re
import sqlite3
import time

from omniconsole.errors import StoreError
from omniconsole.i18n import N_
from omniconsole.store import search
from omniconsole.store.events import add_event
from omniconsole.store.rows import MergeSuggestion

# A name shared by more people than this is no evidence that two customers are one.
_MAX_NAME_MATCHES = 3
_WORD = re.compile(r"\w+", re.UNICODE)


def customer_name(conn: sqlite3.Connection, customer_id: int) -> str:
    """A customer's display name, or "customer N" when they have none."""
    row = conn.execute("SELECT display_name FROM customers WHERE id = ?", (customer_id,)).fetchone()
    return (row[0] if row else "") or f"customer {customer_id}"


def suggest(
    conn: sqlite3.Connection, customer_id: int, other_id: int, reason: str, *, actor: str = "", now: float | None = None
) -> bool:
    """Suggest that two customers are one person, with the reason in words.

    A pair is suggested once: a dismissed pair stays dismissed. Returns True when new."""
    if customer_id == other_id:
        return False
    now = now or time.time()
    low, high = sorted((customer_id, other_id))
    created = conn.execute(
        "INSERT INTO merge_suggestions (customer_id, other_id, reason, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (customer_id, other_id) DO NOTHING",
        (low, high, reason, now),
    ).rowcount
    if created:
        # One event per side, so a window showing either customer refreshes their card.
        for one, two in ((customer_id, other_id), (other_id, customer_id)):
            add_event(conn, "customer.suggested", actor=actor, customer_id=one, payload={"other_customer_id": two}, at=now)
    return bool(created)


def suggestions(conn: sqlite3.Connection, customer_id: int) -> list[MergeSuggestion]:
    """Open suggestions about a customer whose other side is still a live customer."""
    rows = conn.execute(
        "SELECT s.id, CASE WHEN s.customer_id = ?1 THEN s.other_id ELSE s.customer_id END AS other, s.reason, s.created_at"
        " FROM merge_suggestions s WHERE (s.customer_id = ?1 OR s.other_id = ?1) AND s.status = 'open' ORDER BY s.id",
        (customer_id,),
    ).fetchall()
    found = []
    for suggestion_id, other, reason, at in rows:
        c = conn.execute("SELECT display_name, merged_into, erased_at FROM customers WHERE id = ?", (other,)).fetchone()
        if c is None or c[1] is not None or c[2] is not None:
            continue
        found.append(MergeSuggestion(suggestion_id, customer_id, other, c[0], reason, at))
    return found


def dismiss_suggestion(conn: sqlite3.Connection, suggestion_id: int, actor: str, now: float | None = None) -> None:
    """An operator says the two are different people; the pair is never suggested again."""
    now = now or time.time()
    row = conn.execute("SELECT customer_id, other_id, status FROM merge_suggestions WHERE id = ?", (suggestion_id,)).fetchone()
    if row is None:
        raise StoreError(N_("there is no suggestion {id}"), id=suggestion_id)
    if row[2] != "open":
        return
    conn.execute(
        "UPDATE merge_suggestions SET status = 'dismissed', decided_by = ?, decided_at = ? WHERE id = ?",
        (actor, now, suggestion_id),
    )
    for one, two in ((row[0], row[1]), (row[1], row[0])):
        add_event(conn, "customer.suggestion_dismissed", actor=actor, customer_id=one, payload={"other_customer_id": two}, at=now)


def name_key(name: str) -> tuple[str, ...] | None:
    """A person's full name as a comparable key (case, ё/е and word order ignored), or None
    when it is not a full name (one word, initials): a first name alone proves nothing."""
    words = [w for w in _WORD.findall(name.lower().replace("ё", "е")) if len(w) >= 2 and not w.isdigit()]
    if len(words) < 2:
        return None
    return tuple(sorted(words))


def suggest_for_new_customer(conn: sqlite3.Connection, customer_id: int, name: str, now: float) -> int:
    """Look for people a just-created customer may be: the same full name, shared by few.

    Returns how many suggestions were made."""
    key = name_key(name)
    if key is None:
        return 0
    same = []
    for other in search.customers_named(conn, key, exclude=customer_id, limit=_MAX_NAME_MATCHES * 4):
        c = conn.execute("SELECT display_name, merged_into, erased_at FROM customers WHERE id = ?", (other,)).fetchone()
        if c is not None and c[1] is None and c[2] is None and name_key(c[0]) == key:
            same.append(other)
    if not same or len(same) > _MAX_NAME_MATCHES:
        return 0
    made = 0
    for other in same:
        made += suggest(conn, customer_id, other, f"the same full name «{name}»", now=now)
    return made
