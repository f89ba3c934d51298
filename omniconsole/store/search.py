"""Full-text search over messages and customers.

Whatever a person types becomes a query of quoted tokens, so FTS5 syntax in the input
(`AND`, `"`, `*`, `:`, parentheses) is searched for as text and never raises a syntax error.
Messages come latest stored first by walking the index in rowid order: no ranking pass over every
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
_PHONE_TYPED = re.compile(r"\+?[\d\s().\-]+")
_NOT_DIGIT = re.compile(r"\D+")


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
    conn: sqlite3.Connection,
    text: str,
    *,
    customer_id: int | None = None,
    limit: int = 50,
    before_id: int | None = None,
    phone_digits: tuple[str, ...] = (),
) -> SearchResults:
    """Messages (latest stored first, `limit` a page) and customers matching `text`;
    `customer_id` limits messages to one customer, `before_id` continues after the last
    message of a previous page; `more` says whether another page exists. `phone_digits`
    (digits only, from `core.identity.phone_search_digits`) finds customers whose phone or
    WhatsApp number contains one of them."""
    query = fts_query(text)
    if not phone_digits:
        # A caller that knows no region still finds a number typed with its country code.
        digits = _NOT_DIGIT.sub("", text)
        if _PHONE_TYPED.fullmatch(text.strip()) and len(digits) >= 5:
            phone_digits = (digits,)
    if query is None and not phone_digits:
        return SearchResults()
    customers: list[CustomerHit] = []
    if customer_id is None and before_id is None:
        customers = search_customers(conn, query) if query else []
        seen = {c.customer_id for c in customers}
        customers += [c for c in customers_with_phone(conn, phone_digits) if c.customer_id not in seen]
    messages: list[MessageHit] = []
    if query:
        messages = search_messages(conn, query, customer_id=customer_id, limit=limit + 1, before_id=before_id)
    return SearchResults(messages=tuple(messages[:limit]), customers=tuple(customers), more=len(messages) > limit)


def customers_with_phone(conn: sqlite3.Connection, phone_digits: tuple[str, ...], limit: int = 20) -> list[CustomerHit]:
    """Customers (newest first) whose phone or WhatsApp address contains one of the digit
    runs `phone_digits` (each all digits: anything else is ignored, so nothing reaches LIKE
    but digits). A scan of the phone identities; E.164 leaves no index for a middle part."""
    runs = [d for d in phone_digits if d.isdigit() and d.isascii()]
    if not runs:
        return []
    likes = " OR ".join("i.address LIKE ?" for _ in runs)
    rows = conn.execute(
        "SELECT c.id, c.display_name, f.identities FROM customers c JOIN customers_fts f ON f.rowid = c.id"
        " WHERE c.merged_into IS NULL AND c.id IN (SELECT i.customer_id FROM identities i"
        " WHERE i.kind IN ('phone', 'whatsapp') AND (" + likes + ")) ORDER BY c.id DESC LIMIT ?",
        [*(f"%{d}%" for d in runs), limit],
    ).fetchall()
    return [CustomerHit(*r) for r in rows]


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


def customers_named(conn: sqlite3.Connection, words: tuple[str, ...], *, exclude: int, limit: int) -> list[int]:
    """Ids of up to `limit` customers (other than `exclude`) whose indexed name holds every
    word of `words` (whole words, each quoted: no FTS syntax gets through)."""
    query = " AND ".join('name : "' + w.replace('"', '""') + '"' for w in words)
    rows = conn.execute(
        "SELECT rowid FROM customers_fts WHERE customers_fts MATCH ? AND rowid != ? LIMIT ?", (query, exclude, limit)
    ).fetchall()
    return [r[0] for r in rows]


# --- keeping the indexes (inside the caller's write transaction) --------------------------


def fts_text(subject: str, body: str) -> str:
    """What the full-text index holds for a message: its subject (e-mail) and body."""
    return f"{subject}\n{body}" if subject else body


#: Messages of these directions are in the message index; timeline lines (`event`: "alice
#: assigned bob") are not. External-content FTS5 corrupts its index when asked to delete a row
#: it never held, so every unindexing follows this rule.
INDEXED_DIRECTIONS = ("in", "out", "note")


#: A migration (the last of store/schema.py's at the time): the bot's handoff note for the
#: operator was never put in the message index, as every other note is, so search missed it
#: and erasing its text (retention's `messages_days`, an erasure) asked the index to delete a
#: row it never held, which damages it. This indexes the notes written before (each has its
#: `bot.handoff` event at the same moment in the same conversation); store/bot.py indexes new ones.
INDEX_OLD_HANDOFF_NOTES = """
    INSERT INTO messages_fts (rowid, body, customer_id)
    SELECT DISTINCT m.id, m.body, m.customer_id FROM events e
    JOIN messages m ON m.conversation_id = e.conversation_id AND m.created_at = e.at AND m.direction = 'note'
    WHERE e.kind = 'bot.handoff' AND m.body != '';
"""


def index_message(conn: sqlite3.Connection, message_id: int, text: str, customer_id: int) -> None:
    """Add a message's `fts_text` to the message index under its customer."""
    conn.execute("INSERT INTO messages_fts (rowid, body, customer_id) VALUES (?, ?, ?)", (message_id, text, customer_id))


def unindex_message(conn: sqlite3.Connection, message_id: int, text: str, customer_id: int) -> None:
    """Remove a message from the index. External-content FTS5 removes a row by being given
    back exactly what was indexed (`text` and `customer_id` as they were)."""
    conn.execute(
        "INSERT INTO messages_fts (messages_fts, rowid, body, customer_id) VALUES ('delete', ?, ?, ?)",
        (message_id, text, customer_id),
    )


def refresh_customer_index(conn: sqlite3.Connection, customer_id: int) -> None:
    """Rewrite a customer's row in the customer search index from their name and identities."""
    name = conn.execute("SELECT display_name FROM customers WHERE id = ?", (customer_id,)).fetchone()[0]
    addresses = " ".join(r[0] for r in conn.execute("SELECT address FROM identities WHERE customer_id = ?", (customer_id,)))
    conn.execute("DELETE FROM customers_fts WHERE rowid = ?", (customer_id,))
    conn.execute("INSERT INTO customers_fts (rowid, name, identities) VALUES (?, ?, ?)", (customer_id, name, addresses))


def index_new_customer(conn: sqlite3.Connection, customer_id: int, name: str, addresses: str = "") -> None:
    """Index a customer created just now (cheaper than a refresh: nothing to delete)."""
    conn.execute("INSERT INTO customers_fts (rowid, name, identities) VALUES (?, ?, ?)", (customer_id, name, addresses))


def unindex_customer(conn: sqlite3.Connection, customer_id: int) -> None:
    """Remove a customer from the customer index (merged away, erased)."""
    conn.execute("DELETE FROM customers_fts WHERE rowid = ?", (customer_id,))


def compact_indexes(conn: sqlite3.Connection) -> None:
    """Rewrite both full-text indexes without deleted entries (FTS5 keeps a deleted row's
    words until its segments merge). About 2 s per million messages: its own transaction."""
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
    conn.execute("INSERT INTO customers_fts (customers_fts) VALUES ('optimize')")
