"""One customer across channels: merge and unmerge, an operator's edits of a customer, and
personal-data requests (export, erase).

Open-source helpdesks merge contacts automatically on a shared e-mail and so merge strangers
(a family's shared mailbox, a typo). Here nothing is merged on weak evidence: ingest only
*suggests* ("possibly the same as X", with the reason in words: suggestions.py, identities.py)
and an operator decides. A merge records exactly which rows it moved, so an unmerge puts back
those rows and no others. (At 600 lines: merge/unmerge and export/erase share the list of
tables that hold a customer's rows; splitting them would split that list.)

Every function runs inside the caller's write transaction; times are epoch seconds; a request
about a customer that does not exist, was merged away or erased raises StoreError in words.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from omniconsole.errors import StoreError
from omniconsole.i18n import N_

# Suggestions and identity lookups moved one floor down (suggestions.py, identities.py); their
# old names here are kept for the modules and tests that import them from this one. `history`
# too: core/contacts_import.py calls `customers.history.refresh_customer_index` (history no
# longer imports this module, so there is no circle).
from omniconsole.store import (
    edits,
    history,  # noqa: E402,I001
    phones,
    search,
)
from omniconsole.store.events import add_event
from omniconsole.store.identities import PHONE_KINDS, identity_owner, suggest_for_identity
from omniconsole.store.rows import MergeRecord
from omniconsole.store.suggestions import (
    customer_name,
    dismiss_suggestion,
    name_key,
    suggest,
    suggest_for_new_customer,
    suggestions,
)

__all__ = [
    "PHONE_KINDS",
    "compact_search_indexes",
    "customer_name",
    "dismiss_suggestion",
    "erase_customer",
    "export_customer",
    "history",
    "identity_owner",
    "live_customer",
    "merge_customers",
    "merge_tree",
    "merges",
    "name_key",
    "suggest",
    "suggest_for_identity",
    "suggest_for_new_customer",
    "suggestions",
    "unmerge",
    "update_customer",
    "add_identity",
]


def _event(conn: sqlite3.Connection, kind: str, actor: str, customer_id: int | None, payload: dict, now: float) -> None:
    add_event(conn, kind, actor=actor, customer_id=customer_id, payload=payload, at=now)


def live_customer(conn: sqlite3.Connection, customer_id: int) -> int:
    """The customer that `customer_id` is now: itself, or whom it was merged into."""
    seen = set()
    while customer_id not in seen:
        seen.add(customer_id)
        row = conn.execute("SELECT merged_into FROM customers WHERE id = ?", (customer_id,)).fetchone()
        if row is None:
            raise StoreError(N_("there is no customer {id}"), id=customer_id)
        if row[0] is None:
            return customer_id
        customer_id = row[0]
    raise StoreError(N_("customer {id} is merged in a loop; the database is damaged"), id=customer_id)


def customer_with_identity(conn: sqlite3.Connection, kind: str, address: str) -> int | None:
    """The customer (following merges) who holds identity (`kind`, `address`, normalised),
    or None; a phone is looked up under every phone-like kind."""
    owner = identity_owner(conn, kind, address)
    return live_customer(conn, owner) if owner is not None else None


def merge_tree(conn: sqlite3.Connection, customer_id: int) -> list[int]:
    """A customer and every customer merged into them, however deep (A into B into C)."""
    return [
        r[0]
        for r in conn.execute(
            "WITH RECURSIVE tree(id) AS (SELECT ? UNION SELECT c.id FROM customers c JOIN tree t ON c.merged_into = t.id)"
            " SELECT id FROM tree",
            (customer_id,),
        )
    ]


# --- merge and unmerge ------------------------------------------------------------------------


def _move_messages(conn: sqlite3.Connection, where: str, params: tuple, to_customer: int) -> list[int]:
    """Give messages to another customer, keeping the full-text index's customer column true."""
    rows = conn.execute(f"SELECT id, subject, body, customer_id, direction FROM messages WHERE {where}", params).fetchall()
    for message_id, subject, body, old, direction in rows:
        if old == to_customer or direction not in search.INDEXED_DIRECTIONS:
            continue
        text = search.fts_text(subject, body)
        search.unindex_message(conn, message_id, text, old)
        search.index_message(conn, message_id, text, to_customer)
    ids = [r[0] for r in rows if r[3] != to_customer]
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        conn.execute(f"UPDATE messages SET customer_id = ? WHERE id IN ({', '.join('?' * len(part))})", (to_customer, *part))
    return ids


def _labels(conn: sqlite3.Connection, customer_id: int) -> set[int]:
    return {r[0] for r in conn.execute("SELECT label_id FROM customer_labels WHERE customer_id = ?", (customer_id,))}


def _attributes(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def merge_customers(
    conn: sqlite3.Connection, survivor_id: int, merged_id: int, actor: str, reason: str = "", now: float | None = None
) -> int:
    """Merge customer `merged_id` into `survivor_id`; returns the merge record's id.

    The survivor takes every identity, conversation and message, plus the labels, attributes
    and note it lacked; the merged customer stays as an empty shell pointing at the survivor
    (`merged_into`), so old references still find the person."""
    now = now or time.time()
    if survivor_id == merged_id:
        raise StoreError(N_("a customer cannot be merged with themselves"))
    rows = {
        r[0]: r
        for r in conn.execute(
            "SELECT id, display_name, note, attributes, merged_into, erased_at FROM customers WHERE id IN (?, ?)",
            (survivor_id, merged_id),
        )
    }
    for customer_id in (survivor_id, merged_id):
        row = rows.get(customer_id)
        if row is None:
            raise StoreError(N_("there is no customer {id}"), id=customer_id)
        if row[4] is not None:
            raise StoreError(N_("customer {id} was already merged into customer {into}"), id=customer_id, into=row[4])
        if row[5] is not None:
            raise StoreError(N_("customer {id} was erased"), id=customer_id)
    survivor, merged = rows[survivor_id], rows[merged_id]
    identities = [r[0] for r in conn.execute("SELECT id FROM identities WHERE customer_id = ?", (merged_id,))]
    conversations = [r[0] for r in conn.execute("SELECT id FROM conversations WHERE customer_id = ?", (merged_id,))]
    conn.execute("UPDATE identities SET customer_id = ? WHERE customer_id = ?", (survivor_id, merged_id))
    conn.execute("UPDATE conversations SET customer_id = ? WHERE customer_id = ?", (survivor_id, merged_id))
    # Surveys follow their conversations: a typed answer to one sent before the merge is
    # looked up through the survivor's identities (store/analytics.py `pending_survey`).
    conn.execute("UPDATE surveys SET customer_id = ? WHERE customer_id = ?", (survivor_id, merged_id))
    messages = _move_messages(conn, "customer_id = ?", (merged_id,), survivor_id)

    added_labels = sorted(_labels(conn, merged_id) - _labels(conn, survivor_id))
    conn.executemany(
        "INSERT INTO customer_labels (customer_id, label_id) VALUES (?, ?)", [(survivor_id, label) for label in added_labels]
    )
    survivor_attributes = _attributes(survivor[3])
    added_attributes = {k: v for k, v in _attributes(merged[3]).items() if k not in survivor_attributes}
    note_before = None
    if merged[2] and merged[2] not in survivor[2]:
        note_before = survivor[2]
        conn.execute("UPDATE customers SET note = ? WHERE id = ?", ((survivor[2] + "\n" + merged[2]).strip(), survivor_id))
    if added_attributes:
        conn.execute(
            "UPDATE customers SET attributes = ? WHERE id = ?",
            (json.dumps({**survivor_attributes, **added_attributes}, ensure_ascii=False), survivor_id),
        )
    conn.execute("UPDATE customers SET merged_into = ? WHERE id = ?", (survivor_id, merged_id))
    moved = {
        "identities": identities,
        "conversations": conversations,
        "messages": messages,
        "labels": added_labels,
        "attributes": added_attributes,
        "note_before": note_before,
    }
    merge_id = conn.execute(
        "INSERT INTO merges (survivor_id, merged_id, actor, reason, at, moved) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (survivor_id, merged_id, actor, reason, now, json.dumps(moved, ensure_ascii=False)),
    ).fetchone()[0]
    low, high = sorted((survivor_id, merged_id))
    conn.execute(
        "UPDATE merge_suggestions SET status = 'merged', decided_by = ?, decided_at = ? WHERE customer_id = ? AND other_id = ?",
        (actor, now, low, high),
    )
    search.unindex_customer(conn, merged_id)
    search.refresh_customer_index(conn, survivor_id)
    payload = {
        "merge_id": merge_id,
        "merged_id": merged_id,
        "merged_name": merged[1],
        "reason": reason,
        "identities": len(identities),
        "conversations": len(conversations),
        "messages": len(messages),
    }
    _event(conn, "customer.merged", actor, survivor_id, payload, now)
    _event(conn, "customer.merged_away", actor, merged_id, {"merge_id": merge_id, "survivor_id": survivor_id}, now)
    return merge_id


def unmerge(conn: sqlite3.Connection, merge_id: int, actor: str, now: float | None = None) -> None:
    """Undo a merge: the rows it moved go back to the merged customer, the labels, attributes
    and note it added leave the survivor (unless an operator changed them since).

    Identities and conversations the survivor gained after the merge stay with the survivor."""
    now = now or time.time()
    row = conn.execute("SELECT survivor_id, merged_id, moved, undone_at FROM merges WHERE id = ?", (merge_id,)).fetchone()
    if row is None:
        raise StoreError(N_("there is no merge {id}"), id=merge_id)
    survivor_id, merged_id, moved_text, undone_at = row
    if undone_at is not None:
        raise StoreError(N_("merge {id} was already undone"), id=merge_id)
    survivor_into, erased = conn.execute("SELECT merged_into, erased_at FROM customers WHERE id = ?", (survivor_id,)).fetchone()
    if erased is not None:
        raise StoreError(N_("customer {id} was erased; there is nothing to give back"), id=survivor_id)
    if survivor_into is not None:
        raise StoreError(
            N_("customer {id} was itself merged into customer {into} since; undo that merge first"),
            id=survivor_id,
            into=survivor_into,
        )
    moved = json.loads(moved_text)
    for table in ("identities", "conversations"):
        ids = moved[table]
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            conn.execute(
                f"UPDATE {table} SET customer_id = ? WHERE customer_id = ? AND id IN ({', '.join('?' * len(part))})",
                (merged_id, survivor_id, *part),
            )
    conversations = moved["conversations"]
    for chunk in range(0, len(conversations), 500):
        part = conversations[chunk : chunk + 500]
        conn.execute(
            f"UPDATE surveys SET customer_id = ? WHERE customer_id = ? AND conversation_id IN ({', '.join('?' * len(part))})",
            (merged_id, survivor_id, *part),
        )
    # Messages go back by who they are with, not by conversation: a third person's mail in
    # a returned thread stays theirs, the survivor's own reply in it stays the survivor's.
    # Back go: the messages the merge moved, what arrived since through the identities it
    # moved, and notes and events (no identity) in the conversations it moved.
    _move_messages(
        conn,
        "customer_id = ? AND (id IN (SELECT value FROM json_each(?)) OR identity_id IN (SELECT value FROM json_each(?))"
        " OR (identity_id IS NULL AND conversation_id IN (SELECT value FROM json_each(?))))",
        (survivor_id, json.dumps(moved["messages"]), json.dumps(moved["identities"]), json.dumps(moved["conversations"])),
        merged_id,
    )
    if moved["labels"]:
        conn.execute(
            f"DELETE FROM customer_labels WHERE customer_id = ? AND label_id IN ({', '.join('?' * len(moved['labels']))})",
            (survivor_id, *moved["labels"]),
        )
    survivor = conn.execute("SELECT note, attributes FROM customers WHERE id = ?", (survivor_id,)).fetchone()
    if moved["attributes"]:
        attributes = _attributes(survivor[1])
        for key, value in moved["attributes"].items():
            if attributes.get(key) == value:
                del attributes[key]
        conn.execute(
            "UPDATE customers SET attributes = ? WHERE id = ?", (json.dumps(attributes, ensure_ascii=False), survivor_id)
        )
    if moved["note_before"] is not None:
        merged_note = conn.execute("SELECT note FROM customers WHERE id = ?", (merged_id,)).fetchone()[0]
        if survivor[0] == (moved["note_before"] + "\n" + merged_note).strip():
            conn.execute("UPDATE customers SET note = ? WHERE id = ?", (moved["note_before"], survivor_id))
    conn.execute("UPDATE customers SET merged_into = NULL WHERE id = ?", (merged_id,))
    conn.execute("UPDATE merges SET undone_by = ?, undone_at = ? WHERE id = ?", (actor, now, merge_id))
    # The pair was one person's once; as a suggestion it is settled (dismissed by this undo).
    low, high = sorted((survivor_id, merged_id))
    conn.execute(
        "UPDATE merge_suggestions SET status = 'dismissed', decided_by = ?, decided_at = ? WHERE customer_id = ? AND other_id = ?",
        (actor, now, low, high),
    )
    search.refresh_customer_index(conn, survivor_id)
    search.refresh_customer_index(conn, merged_id)
    _event(conn, "customer.unmerged", actor, survivor_id, {"merge_id": merge_id, "merged_id": merged_id}, now)
    _event(conn, "customer.unmerged", actor, merged_id, {"merge_id": merge_id, "survivor_id": survivor_id}, now)


def merges(conn: sqlite3.Connection, customer_id: int) -> list[MergeRecord]:
    """The merges into a customer, newest first (undone ones included, marked)."""
    return [
        MergeRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])
        for r in conn.execute(
            "SELECT m.id, m.survivor_id, m.merged_id, c.display_name, m.actor, m.reason, m.at, m.undone_by, m.undone_at"
            " FROM merges m JOIN customers c ON c.id = m.merged_id WHERE m.survivor_id = ? ORDER BY m.id DESC",
            (customer_id,),
        )
    ]


# --- an operator's edits ----------------------------------------------------------------------


def update_customer(
    conn: sqlite3.Connection,
    customer_id: int,
    actor: str,
    *,
    name: str | None = None,
    note: str | None = None,
    attributes: dict[str, str] | None = None,
    labels: list[str] | None = None,
    now: float | None = None,
) -> list[str]:
    """Change what an operator may edit about a customer; returns the fields that changed.

    An operator's name wins over any channel's from then on (`name_source = 'operator'`)."""
    now = now or time.time()
    row = conn.execute(
        "SELECT display_name, note, attributes, merged_into, erased_at FROM customers WHERE id = ?", (customer_id,)
    ).fetchone()
    if row is None:
        raise StoreError(N_("there is no customer {id}"), id=customer_id)
    if row[3] is not None:
        raise StoreError(N_("customer {id} was merged into customer {into}; edit that one"), id=customer_id, into=row[3])
    if row[4] is not None:
        raise StoreError(N_("customer {id} was erased"), id=customer_id)
    changed = []
    if name is not None and name.strip() and name.strip() != row[0]:
        conn.execute("UPDATE customers SET display_name = ?, name_source = 'operator' WHERE id = ?", (name.strip(), customer_id))
        search.refresh_customer_index(conn, customer_id)
        changed.append("name")
    if note is not None and note != row[1]:
        conn.execute("UPDATE customers SET note = ? WHERE id = ?", (note, customer_id))
        changed.append("note")
    if attributes is not None:
        clean = {str(k).strip(): str(v) for k, v in attributes.items() if str(k).strip()}
        if clean != _attributes(row[2]):
            conn.execute("UPDATE customers SET attributes = ? WHERE id = ?", (json.dumps(clean, ensure_ascii=False), customer_id))
            changed.append("attributes")
    if labels is not None:
        wanted = sorted({label.strip() for label in labels if label.strip()})
        current = sorted(
            r[0]
            for r in conn.execute(
                "SELECT l.name FROM customer_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.customer_id = ?",
                (customer_id,),
            )
        )
        if wanted != current:
            conn.execute("DELETE FROM customer_labels WHERE customer_id = ?", (customer_id,))
            for label in wanted:
                conn.execute("INSERT INTO labels (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (label,))
                conn.execute(
                    "INSERT INTO customer_labels (customer_id, label_id) SELECT ?, id FROM labels WHERE name = ?",
                    (customer_id, label),
                )
            changed.append("labels")
    if changed:
        _event(conn, "customer.updated", actor, customer_id, {"fields": changed}, now)
    return changed


def add_identity(
    conn: sqlite3.Connection, customer_id: int, kind: str, address: str, actor: str, display: str = "", now: float | None = None
) -> bool:
    """Give a customer one more (normalised) identity. Returns False when they have it already;
    raises StoreError when it belongs to someone else (that is a merge, not an edit)."""
    now = now or time.time()
    row = conn.execute("SELECT merged_into, erased_at FROM customers WHERE id = ?", (customer_id,)).fetchone()
    if row is None or row[1] is not None:
        if row is None:
            raise StoreError(N_("there is no customer {id}"), id=customer_id)
        raise StoreError(N_("customer {id} was erased"), id=customer_id)
    if row[0] is not None:
        raise StoreError(N_("customer {id} was merged into customer {into}; add it there"), id=customer_id, into=row[0])
    owner = identity_owner(conn, kind, address)
    if owner is not None and owner != customer_id:
        raise StoreError(
            N_("{kind} {address} belongs to {name} (customer {id})"),
            kind=kind,
            address=address,
            name=customer_name(conn, owner),
            id=owner,
        )
    if conn.execute("SELECT 1 FROM identities WHERE kind = ? AND address = ?", (kind, address)).fetchone():
        return False
    conn.execute(
        "INSERT INTO identities (customer_id, kind, address, display, created_at) VALUES (?, ?, ?, ?, ?)",
        (customer_id, kind, address, display, now),
    )
    search.refresh_customer_index(conn, customer_id)
    _event(conn, "identity.added", actor, customer_id, {"kind": kind, "address": address}, now)
    phones.suggest_for_shared_number(conn, customer_id, kind, address, now, actor)
    return True


# --- personal-data requests -------------------------------------------------------------------


def export_customer(conn: sqlite3.Connection, customer_id: int, actor: str, now: float | None = None) -> dict[str, Any]:
    """Everything held about one person, as plain JSON-ready data (and an audit event).

    Customers merged into this one are included: their data lives here now."""
    now = now or time.time()
    customer_id = live_customer(conn, customer_id)
    c = conn.execute(
        "SELECT id, display_name, name_source, note, attributes, origin, created_at, erased_at, do_not_contact,"
        " do_not_contact_at FROM customers WHERE id = ?",
        (customer_id,),
    ).fetchone()
    tree = merge_tree(conn, customer_id)
    shells = tree[1:]
    marks = ", ".join("?" * len(tree))
    labels = [
        r[0]
        for r in conn.execute(
            "SELECT l.name FROM customer_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.customer_id = ? ORDER BY l.name",
            (customer_id,),
        )
    ]
    identities = [
        {"kind": r[0], "address": r[1], "display": r[2], "added_at": r[3]}
        for r in conn.execute(
            "SELECT kind, address, display, created_at FROM identities WHERE customer_id = ? ORDER BY id", (customer_id,)
        )
    ]
    conversations = []
    # Their messages (and our replies and notes about them), by conversation; a third
    # person's mail in one of their threads is that person's, not theirs to receive.
    for conv in conn.execute(
        "SELECT id, status, subject, assignee, opened_at, resolved_at FROM conversations"
        f" WHERE id IN (SELECT conversation_id FROM messages WHERE customer_id IN ({marks})) ORDER BY id",
        tree,
    ).fetchall():
        messages = []
        for m in conn.execute(
            "SELECT m.id, m.direction, m.author, m.subject, m.body, m.created_at, m.edited_at, m.state, ch.kind, ch.name"
            " FROM messages m LEFT JOIN channels ch ON ch.id = m.channel_id"
            f" WHERE m.conversation_id = ? AND m.customer_id IN ({marks}) ORDER BY m.created_at, m.id",
            (conv[0], *tree),
        ).fetchall():
            files = [
                {"filename": a[0], "mime_type": a[1], "size": a[2], "sha256": a[3], "path": a[4]}
                for a in conn.execute(
                    "SELECT filename, mime_type, size, sha256, path FROM attachments WHERE message_id = ?", (m[0],)
                )
            ]
            messages.append(
                {
                    "id": m[0],
                    "direction": m[1],
                    "author": m[2],
                    "subject": m[3],
                    "body": m[4],
                    "at": m[5],
                    "edited_at": m[6],
                    "state": m[7],
                    "channel": m[8],
                    "channel_name": m[9],
                    "attachments": files,
                    "earlier_versions": edits.versions(conn, m[0]),
                }
            )
        conversations.append(
            {
                "id": conv[0],
                "status": conv[1],
                "subject": conv[2],
                "assignee": conv[3],
                "opened_at": conv[4],
                "resolved_at": conv[5],
                "messages": messages,
            }
        )
    _event(conn, "customer.exported", actor, customer_id, {}, now)
    return {
        "customer": {
            "id": c[0],
            "name": c[1],
            "name_source": c[2],
            "note": c[3],
            "attributes": _attributes(c[4]),
            "origin": c[5],
            "first_contact_at": c[6],
            "erased_at": c[7],
            "merged_from": shells,
            "labels": labels,
            "do_not_contact": c[8],
            "do_not_contact_at": c[9],
        },
        "identities": identities,
        "conversations": conversations,
        "exported_at": now,
        "exported_by": actor,
    }


def erase_customer(conn: sqlite3.Connection, customer_id: int, actor: str, now: float | None = None) -> dict[str, Any]:
    """Delete a person's personal data and keep what statistics need: the message rows stay
    with their channel, direction and times, emptied of text, names and files.

    Returns the counts kept and the attachment paths that no other message uses (the caller
    deletes those files after the commit, so a rolled-back erase deletes nothing)."""
    now = now or time.time()
    customer_id = live_customer(conn, customer_id)
    # Freed pages are zeroed, so the erased text does not linger in the file.
    conn.execute("PRAGMA secure_delete = ON")
    ids = merge_tree(conn, customer_id)
    marks = ", ".join("?" * len(ids))
    messages = conn.execute(
        f"SELECT id, subject, body, customer_id, direction FROM messages WHERE customer_id IN ({marks})", ids
    ).fetchall()
    for message_id, subject, body, owner, direction in messages:
        if direction not in search.INDEXED_DIRECTIONS:
            continue  # timeline lines were never indexed: "deleting" them would corrupt the index
        search.unindex_message(conn, message_id, search.fts_text(subject, body), owner)
    files = conn.execute(
        f"SELECT a.id, a.path FROM attachments a JOIN messages m ON m.id = a.message_id WHERE m.customer_id IN ({marks})", ids
    ).fetchall()
    conn.execute(f"DELETE FROM attachments WHERE message_id IN (SELECT id FROM messages WHERE customer_id IN ({marks}))", ids)
    # The versions edits replaced are their words too.
    conn.execute(
        f"DELETE FROM message_versions WHERE message_id IN (SELECT id FROM messages WHERE customer_id IN ({marks}))", ids
    )
    orphans = []
    for _, path in files:
        if path and conn.execute("SELECT 1 FROM attachments WHERE path = ? LIMIT 1", (path,)).fetchone() is None:
            orphans.append(path)
    conn.execute(
        f"UPDATE messages SET body = '', subject = '', author = CASE WHEN direction = 'in' THEN '' ELSE author END,"
        f" meta = NULL, thread_key = NULL, reply_to_keys = NULL, error = '' WHERE customer_id IN ({marks})",
        ids,
    )
    conn.execute(
        f"UPDATE conversations SET subject = '', preview = '' WHERE customer_id IN ({marks})"
        f" OR last_message_id IN (SELECT id FROM messages WHERE customer_id IN ({marks}))",
        (*ids, *ids),
    )
    # A reply still waiting to go has nobody to go to.
    conn.execute(
        f"UPDATE messages SET state = 'failed', error = 'the customer was erased', next_attempt_at = NULL"
        f" WHERE customer_id IN ({marks}) AND state IN ('queued', 'sending')",
        ids,
    )
    # Merge records keep which rows moved (ids), not what they said.
    for merge_id, moved_text in conn.execute(
        f"SELECT id, moved FROM merges WHERE survivor_id IN ({marks}) OR merged_id IN ({marks})", (*ids, *ids)
    ).fetchall():
        moved = json.loads(moved_text)
        moved["attributes"] = {}
        moved["note_before"] = None
        conn.execute("UPDATE merges SET reason = '', moved = ? WHERE id = ?", (json.dumps(moved), merge_id))
    identities = conn.execute(
        f"SELECT kind, COUNT(*) FROM identities WHERE customer_id IN ({marks}) GROUP BY kind", ids
    ).fetchall()
    # Channels that keep their own copy of a conversation (the web chat's visitor logs) are
    # told by the caller, after the commit, which of their people to forget.
    web_visitors = [
        r[0] for r in conn.execute(f"SELECT address FROM identities WHERE customer_id IN ({marks}) AND kind = 'web'", ids)
    ]
    conn.execute(f"UPDATE messages SET identity_id = NULL WHERE customer_id IN ({marks})", ids)
    conn.execute(f"DELETE FROM identities WHERE customer_id IN ({marks})", ids)
    conn.execute(f"DELETE FROM customer_labels WHERE customer_id IN ({marks})", ids)
    conn.execute(f"DELETE FROM merge_suggestions WHERE customer_id IN ({marks}) OR other_id IN ({marks})", (*ids, *ids))
    conn.execute(
        f"UPDATE customers SET display_name = '', note = '', attributes = '{{}}', origin = NULL, erased_at = ?"
        f" WHERE id IN ({marks})",
        (now, *ids),
    )
    for one in ids:
        search.unindex_customer(conn, one)
    # The audit trail keeps what happened, not what was said: payloads about them go (they
    # hold addresses and old message bodies), the event kinds and times stay.
    conn.execute(f"UPDATE events SET payload = NULL WHERE customer_id IN ({marks})", ids)
    # ... and events about someone else that name them (a conflict over their number, a merge).
    for key in ("other_customer_id", "merged_id", "survivor_id"):
        conn.execute(
            f"UPDATE events SET payload = NULL WHERE payload IS NOT NULL"
            f" AND CASE WHEN json_valid(payload) THEN json_extract(payload, '$.{key}') END IN ({marks})",
            ids,
        )
    conn.execute(
        f"UPDATE events SET payload = NULL WHERE message_id IN (SELECT id FROM messages WHERE customer_id IN ({marks}))", ids
    )
    counts = {
        "messages": len(messages),
        "conversations": conn.execute(f"SELECT COUNT(*) FROM conversations WHERE customer_id IN ({marks})", ids).fetchone()[0],
        "identities": {kind: n for kind, n in identities},
        "attachments": len(files),
    }
    _event(conn, "customer.erased", actor, customer_id, counts, now)
    return {"customer_id": customer_id, **counts, "files_to_delete": orphans, "web_visitors": web_visitors}


def compact_search_indexes(conn: sqlite3.Connection) -> None:
    """Rewrite the full-text indexes without the deleted entries (FTS5 keeps a deleted row's
    words until its segments merge). About 2 s for a million messages: run after an erase,
    in its own transaction."""
    search.compact_indexes(conn)
