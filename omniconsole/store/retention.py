"""What the history forgets with time (`[retention]` in the config, applied by the core).

* Live events (store/events.py: what only drove live updates) older than `live_days` are
  deleted; history and audit events are kept whatever their age.
* With `messages_days` set, the text of messages older than that is erased as `erase` does for
  one person (store/customers.py): the rows stay with their channel, direction and times, so
  every count and figure is unchanged; bodies, subjects, earlier versions and their full-text
  entries go. Files, the meta a channel needs to answer (chat ids) and timeline system lines
  (direction 'event': assignments, calls) stay; a note's meta goes with its text (the bot's
  handoff note keeps its words there as a phrase to draw, the customer's last words among
  them). One audit event records each run.

Each function is one short unit of work inside the caller's write transaction; the `Store`
methods repeat them until nothing is left, so a big first run never holds the write lock long.
"""

from __future__ import annotations

import sqlite3

from omniconsole.store import search
from omniconsole.store.events import add_event, prune_live

__all__ = ["erase_texts_before", "prune_live", "record_erasure"]  # prune_live lives with the events writer

_IN_CHUNK = 500  # ids per IN (...) list


def erase_texts_before(conn: sqlite3.Connection, before: float, limit: int = 2000) -> int:
    """Erase the text of up to `limit` messages written before `before` (epoch seconds) that
    still have text; returns how many were erased (less than `limit`: nothing is left)."""
    rows = conn.execute(
        "SELECT id, subject, body, customer_id FROM messages"
        " WHERE created_at < ? AND direction IN ('in', 'out', 'note') AND (body != '' OR subject != '') ORDER BY id LIMIT ?",
        (before, limit),
    ).fetchall()
    for message_id, subject, body, customer_id in rows:
        search.unindex_message(conn, message_id, search.fts_text(subject, body), customer_id)
    ids = [r[0] for r in rows]
    for start in range(0, len(ids), _IN_CHUNK):
        part = ids[start : start + _IN_CHUNK]
        marks = ", ".join("?" * len(part))
        conn.execute(
            f"UPDATE messages SET body = '', subject = '', meta = CASE WHEN direction = 'note' THEN NULL ELSE meta END"
            f" WHERE id IN ({marks})",
            part,
        )
        conn.execute(f"DELETE FROM message_versions WHERE message_id IN ({marks})", part)
    return len(ids)


def record_erasure(conn: sqlite3.Connection, before: float, messages: int, actor: str = "retention") -> None:
    """Close one retention run that erased `messages` texts older than `before`: conversations
    untouched since then show no old words in the inbox either (preview, subject), and the
    run is recorded as an audit event."""
    conn.execute(
        "UPDATE conversations SET preview = '', subject = '' WHERE last_activity_at < ? AND (preview != '' OR subject != '')",
        (before,),
    )
    add_event(conn, "messages.expired", actor=actor, payload={"before": before, "messages": messages})
