"""Full-text search over messages and customers.

Whatever a person types becomes a query of quoted tokens, so FTS5 syntax in the input
(`AND`, `"`, `*`, `:`, parentheses) is searched for as text and never raises a syntax error.
Results come newest first by walking the index in rowid order: no ranking pass over every
match, so a very common word costs the same as a rare one.
"""

from __future__ import annotations

import re
import sqlite3

from omniconsole.store.rows import CustomerHit, MessageHit, SearchResults

# Words as the unicode61 tokenizer sees them (letters, digits); everything else separates.
_WORD = re.compile(r"\w+", re.UNICODE)
# A prefix search on one or two characters would merge thousands of terms; only the last word
# of at least this many characters is matched as a prefix (as the user is still typing it).
# Three-character prefixes have their own index (see the schema); longer ones are selective.
MIN_PREFIX = 3
_PHONE_LIKE = re.compile(r"\+?[\d\s().-]+")
_PHONE_NOISE = re.compile(r"[+().-]")


def fts_query(text: str, *, prefix_last: bool = True) -> str | None:
    """An FTS5 query matching every word of `text` (the last one as a prefix), or None when
    `text` has no searchable word."""
    words = _WORD.findall(text.replace("_", " "))
    if not words:
        return None
    parts = [f'"{w}"' for w in words]
    if prefix_last and len(words[-1]) >= MIN_PREFIX and not text[-1:].isspace():
        parts[-1] += "*"
    return " ".join(parts)


def search(
    conn: sqlite3.Connection, text: str, *, customer_id: int | None = None, limit: int = 50, before_id: int | None = None
) -> SearchResults:
    """Messages (newest first) and customers matching `text`; `customer_id` limits messages to
    one customer, `before_id` continues after the last message of a previous page."""
    query = fts_query(text)
    if query is None:
        return SearchResults()
    customers: list[CustomerHit] = []
    if customer_id is None and before_id is None:
        customers = search_customers(conn, query)
        # A phone number is typed with spaces, dashes and brackets but indexed as one run of
        # digits: look it up as such too.
        digits = "".join(_PHONE_NOISE.sub("", text).split())
        if _PHONE_LIKE.fullmatch(text.strip()) and len(digits) >= 5:
            seen = {c.customer_id for c in customers}
            customers += [c for c in search_customers(conn, f'"{digits}"*') if c.customer_id not in seen]
    return SearchResults(
        messages=tuple(search_messages(conn, query, customer_id=customer_id, limit=limit, before_id=before_id)),
        customers=tuple(customers),
    )


def search_messages(
    conn: sqlite3.Connection, query: str, *, customer_id: int | None = None, limit: int = 50, before_id: int | None = None
) -> list[MessageHit]:
    """Messages matching an `fts_query`, newest first."""
    match = f"body : ({query})"
    if customer_id is not None:
        # Intersecting with the customer's own (short) token list is what keeps a common word
        # fast inside one customer's history.
        match = f'customer_id : "{int(customer_id)}" AND {match}'
    params: list = [match]
    bound = ""
    if before_id is not None:
        bound = " AND f.rowid < ?"
        params.append(before_id)
    params.append(limit)
    rows = conn.execute(
        "SELECT m.id, m.conversation_id, m.customer_id, cu.display_name, m.direction, ch.kind, m.created_at, m.body"
        " FROM (SELECT rowid FROM messages_fts f WHERE messages_fts MATCH ?" + bound + " ORDER BY rowid DESC LIMIT ?) hit"
        " JOIN messages m ON m.id = hit.rowid JOIN customers cu ON cu.id = m.customer_id"
        " LEFT JOIN channels ch ON ch.id = m.channel_id ORDER BY m.id DESC",
        params,
    ).fetchall()
    return [MessageHit(*r) for r in rows]


def search_customers(conn: sqlite3.Connection, query: str, limit: int = 20) -> list[CustomerHit]:
    """Customers whose name or any identity address matches an `fts_query`."""
    rows = conn.execute(
        "SELECT f.rowid, c.display_name, f.identities FROM customers_fts f JOIN customers c ON c.id = f.rowid"
        " WHERE customers_fts MATCH ? AND c.merged_into IS NULL ORDER BY f.rowid DESC LIMIT ?",
        (query, limit),
    ).fetchall()
    return [CustomerHit(*r) for r in rows]
