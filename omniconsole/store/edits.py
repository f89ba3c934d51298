"""Edits of inbound messages: which edit is newer, and the versions an edit replaces.

A channel re-sends an edited message under its first `(channel, external_id)` with the time
of the edit (`edited_at`, epoch seconds). Telegram's `edit_date` has one-second resolution, so
several edits in one second tie on time: the channel's own sequence (`edit_seq`, Telegram's
`update_id`, which only grows, Bot API "Update") breaks the tie. An edit applies when it is
newer than what is stored and changes the text or the files; a re-delivered or older edit
changes nothing. What it replaces is kept in `message_versions` (one row per replaced
version, with its files marked `replaced_at`), not in the events log.

Runs inside the caller's write transaction.
"""

from __future__ import annotations

import sqlite3

from omniconsole.store import attachments, search
from omniconsole.store.events import add_event
from omniconsole.store.records import InboundRecord


def is_newer(record: InboundRecord, stored_edited_at: float | None, stored_seq: int | None) -> bool:
    """Whether `record` is a later version than the stored one (see the module docstring)."""
    if record.edited_at is None:
        return False
    stored_at = stored_edited_at or 0.0
    if record.edited_at != stored_at:
        return record.edited_at > stored_at
    # The same second: only the channel's sequence can tell.
    return record.edit_seq is not None and (stored_seq is None or record.edit_seq > stored_seq)


def apply_edit(conn: sqlite3.Connection, existing: sqlite3.Row | tuple, record: InboundRecord, now: float) -> bool:
    """Apply `record` as an edit of the stored message `existing` = (id, body, subject,
    customer id, conversation id, edited_at, edit_seq). Returns True when the message changed;
    False for a duplicate or an older edit."""
    message_id, old_body, subject, customer_id, conversation_id, old_edited_at, old_seq = tuple(existing)
    if not is_newer(record, old_edited_at, old_seq):
        return False
    new_files = attachments.signature(record.attachments)
    # An edit that carries no files leaves the message's files alone (a caption edit of a
    # channel that does not resend the media).
    files_changed = bool(new_files) and new_files != attachments.current_signature(conn, message_id)
    body_changed = record.body != old_body
    if not body_changed and not files_changed:
        # Newer but the same content: remember its place in the order, so an older straggler
        # cannot apply after it.
        conn.execute(
            "UPDATE messages SET edited_at = ?, edit_seq = ? WHERE id = ?", (record.edited_at, record.edit_seq, message_id)
        )
        return False
    version_id = conn.execute(
        "INSERT INTO message_versions (message_id, body, edited_at, edit_seq, replaced_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        (message_id, old_body, old_edited_at, old_seq, now),
    ).fetchone()[0]
    if body_changed:
        search.unindex_message(conn, message_id, search.fts_text(subject, old_body), customer_id)
        search.index_message(conn, message_id, search.fts_text(subject, record.body), customer_id)
    if files_changed:
        attachments.replace_attachments(conn, message_id, record.attachments, version_id, now)
    conn.execute(
        "UPDATE messages SET body = ?, edited_at = ?, edit_seq = ? WHERE id = ?",
        (record.body, record.edited_at, record.edit_seq, message_id),
    )
    add_event(
        conn,
        "message.edited",
        conversation_id=conversation_id,
        customer_id=customer_id,
        message_id=message_id,
        payload={"version_id": version_id, "text": body_changed, "files": files_changed},
        at=now,
    )
    return True


def versions(conn: sqlite3.Connection, message_id: int) -> list[dict]:
    """A message's replaced versions, oldest first: {"id", "body", "edited_at", "replaced_at",
    "files": [file names]} (times in epoch seconds; edited_at None for the original)."""
    out = []
    for vid, body, edited_at, replaced_at in conn.execute(
        "SELECT id, body, edited_at, replaced_at FROM message_versions WHERE message_id = ? ORDER BY id", (message_id,)
    ).fetchall():
        files = [r[0] for r in conn.execute("SELECT filename FROM attachments WHERE version_id = ? ORDER BY id", (vid,))]
        out.append({"id": vid, "body": body, "edited_at": edited_at, "replaced_at": replaced_at, "files": files})
    return out
