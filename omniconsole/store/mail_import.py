"""What the mailbox import (`omniconsole/core/mail_import.py`) asks of the store besides
ingest: which mails of a chunk a channel holds already, so a re-run skips them before paying
for their parse. Read-only; the store would count them as duplicates anyway.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


def known_external_ids(conn: sqlite3.Connection, channel_id: int, keys: Iterable[str]) -> set[str]:
    """The `keys` (message external ids: a mail's normalised Message-ID or its hash id) that
    channel `channel_id` has stored already. One indexed point look-up per key
    (`UNIQUE (channel_id, external_id)`): no list of placeholders, and as fast for the
    hundred keys of an import chunk."""
    known: set[str] = set()
    for key in keys:
        row = conn.execute("SELECT 1 FROM messages WHERE channel_id = ? AND external_id = ?", (channel_id, key)).fetchone()
        if row is not None:
            known.add(key)
    return known
