"""Rows of the files messages carry (the bytes live under `<data_dir>/attachments`).

A file replaced by an edit (a Telegram photo swapped for another) keeps its row, marked with
`replaced_at` (epoch seconds) and the `message_versions` row it belonged to: the timeline shows
the current files only, while an erase still finds and deletes every file a person sent.
Runs inside the caller's write transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from omniconsole.store.records import AttachmentRecord


def add_attachments(conn: sqlite3.Connection, message_id: int, files: Iterable[AttachmentRecord]) -> None:
    """Record a message's files."""
    conn.executemany(
        "INSERT INTO attachments (message_id, filename, mime_type, size, sha256, path, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(message_id, a.filename, a.mime_type, a.size, a.sha256, a.path, a.note) for a in files],
    )


def current_signature(conn: sqlite3.Connection, message_id: int) -> list[tuple]:
    """What identifies a message's current files, in order: (sha256 or None, filename, size)."""
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT sha256, filename, size FROM attachments WHERE message_id = ? AND replaced_at IS NULL ORDER BY id",
            (message_id,),
        )
    ]


def signature(files: Iterable[AttachmentRecord]) -> list[tuple]:
    """`current_signature` of files not stored yet."""
    return [(a.sha256, a.filename, a.size) for a in files]


def replace_attachments(
    conn: sqlite3.Connection, message_id: int, files: Iterable[AttachmentRecord], version_id: int, now: float
) -> None:
    """An edit brought new files: the current ones become part of version `version_id`."""
    conn.execute(
        "UPDATE attachments SET replaced_at = ?, version_id = ? WHERE message_id = ? AND replaced_at IS NULL",
        (now, version_id, message_id),
    )
    add_attachments(conn, message_id, files)
