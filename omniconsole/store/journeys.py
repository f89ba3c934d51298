"""What customer journeys and opti-channel advice read and write (omniconsole/analytics/journeys.py
computes the figures of ../shared/METRICS.md "Journeys" from these rows).

Everything is read from the raw history (conversations, messages, status events, surveys), not
from a report's cache, in one connection (one snapshot). A conversation with its reopenings is
one issue (METRICS.md "Issue"). Times are float epoch seconds; durations seconds.

A customer contact is a customer message (METRICS.md "Customer message": inbound, not an
auto-reply, bounce, reaction or survey answer) or a phone call (a `call` timeline entry).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field

#: A customer's contact, as SQL over `messages m` (METRICS.md "Customer message", plus calls).
CONTACT = (
    "((m.direction = 'in' AND (m.flags = '' OR (m.flags NOT LIKE '%auto_reply%' AND m.flags NOT LIKE '%bounce%'"
    " AND m.flags NOT LIKE '%reaction%' AND m.flags NOT LIKE '%survey_answer%')))"
    " OR (m.direction = 'event' AND m.flags LIKE '%call%'))"
)
#: A human reply (METRICS.md "Human reply"): public, outbound, written by an operator.
HUMAN_REPLY = (
    "(m.direction = 'out' AND m.author NOT IN ('', 'bot', 'survey', 'system', 'automation')"
    " AND (m.flags = '' OR (m.flags NOT LIKE '%bot%' AND m.flags NOT LIKE '%auto_reply%'"
    " AND m.flags NOT LIKE '%automation%' AND m.flags NOT LIKE '%survey%' AND m.flags NOT LIKE '%system%')))"
)
#: Operator time credited to one human reply at most (seconds): the gap since the message
#: before it, capped, is what writing it took (docs/metrics.md "Operator minutes").
REPLY_WORK_CAP = 900.0


@dataclass(slots=True)
class IssueRow:
    """One conversation (one issue) as journeys need it.

    `customer_id` is the live customer (merges followed); `first_contact`/`last_contact` the
    customer's first and last contact; `resolved_at` the first resolution (None: never
    resolved); `status` the conversation's status now; `topic` what was detected or set on the
    conversation ('' : nothing yet), `bot_topic` the bot's detected topic (''), `labels` the
    conversation's labels; `origin` where the customer came from (a Telegram deep-link payload,
    a web chat page, an ad; None), `started_by` 'company' for a conversation we started
    (a campaign); `path`: (epoch seconds, channel kind) of the first contact and of each
    contact on a different channel than the one before (each later entry is a channel switch);
    `contacts` the number of customer contacts; `human_replies` their count;
    `operator_seconds` the operator time credited to the replies; `recontact_in` the first
    contact after the first resolution in this same conversation (None); `csat` the 1-5 score
    (None)."""

    conversation_id: int
    customer_id: int
    status: str
    opened_at: float
    first_contact: float | None = None
    last_contact: float | None = None
    resolved_at: float | None = None
    topic: str = ""
    bot_topic: str = ""
    labels: tuple[str, ...] = ()
    origin: str | None = None
    started_by: str | None = None
    subject: str = ""
    path: list[tuple[float, str]] = field(default_factory=list)
    contacts: int = 0
    human_replies: int = 0
    operator_seconds: float = 0.0
    recontact_in: float | None = None
    csat: int | None = None


def _id_list(ids: list[int]) -> tuple[str, dict]:
    """`IN (...)` marks and parameters for a list of ids (one helper, never f-strings of `?`)."""
    params = {f"i{n}": v for n, v in enumerate(ids)}
    return ", ".join(":" + k for k in params) or "NULL", params


def live_customers(conn: sqlite3.Connection) -> dict[int, int]:
    """Merged customer id -> the live customer they were merged into (however deep)."""
    parent = dict(conn.execute("SELECT id, merged_into FROM customers WHERE merged_into IS NOT NULL").fetchall())
    live: dict[int, int] = {}
    for cid in parent:
        seen, top = {cid}, parent[cid]
        while top in parent and top not in seen:
            seen.add(top)
            top = parent[top]
        live[cid] = top
    return live


def issue_rows(
    conn: sqlite3.Connection,
    *,
    customer_ids: list[int] | None = None,
    opened_before: float | None = None,
    live: dict[int, int] | None = None,
    bulk: Counter | None = None,
    bulk_period: tuple[float | None, float | None] = (None, None),
) -> list[IssueRow]:
    """Every conversation (or those of `customer_ids`, a customer's merge tree) as `IssueRow`s,
    in order of first contact. `opened_before` (epoch seconds) leaves out later conversations;
    `live` maps merged customers to the live one (default: every merge, `live_customers`).
    With `bulk` (over every conversation), a conversation that stands alone is not returned but
    counted there under (topic or '', channel kind): open, begun by the customer on one channel
    kind, its customer's only conversation (no merge either way), no labels and no topic from
    the bot; and only when opened in `bulk_period` [start, end) (epoch seconds, None: open).
    Nothing about it can change another issue's figures, and most of a big history is such
    conversations.

    Over every conversation the messages are not all read again: a conversation the customer
    began whose inbound messages came by one channel kind (`channel_kinds`) has its first
    contact at `opened_at`, its last at `last_inbound_at` and no switch; only the others (several
    kinds, calls, started by us) are read message by message, and the operator time only of
    resolved ones. For one customer everything is read message by message."""
    if customer_ids is not None:
        marks, params = _id_list(customer_ids)
        cond = f"c.customer_id IN ({marks})"
    else:
        cond, params = "1 = 1", {}
    if opened_before is not None:
        cond += " AND c.opened_at < :opened_before"
        params["opened_before"] = opened_before
    exact = customer_ids is not None
    live = live_customers(conn) if live is None else live
    kinds = dict(conn.execute("SELECT id, kind FROM channels").fetchall())
    rows: dict[int, IssueRow] = {}
    detailed: list[int] = []
    resolved: list[int] = []
    alone = (
        "c.status <> 'resolved' AND c.started_by IS NULL AND c.channel_kinds <> '' AND c.channel_kinds NOT LIKE '% %'"
        " AND NOT EXISTS (SELECT 1 FROM conversations o WHERE o.customer_id = c.customer_id AND o.id <> c.id)"
        " AND NOT EXISTS (SELECT 1 FROM customers m WHERE m.merged_into = c.customer_id)"
        " AND NOT EXISTS (SELECT 1 FROM customers s WHERE s.id = c.customer_id AND s.merged_into IS NOT NULL)"
        " AND NOT EXISTS (SELECT 1 FROM conversation_labels cl WHERE cl.conversation_id = c.id)"
        " AND NOT EXISTS (SELECT 1 FROM bot_conversations b WHERE b.conversation_id = c.id AND b.topic <> '')"
    )
    counted = bulk is not None
    lo, hi = bulk_period
    for cid, customer, status, opened, topic, origin, started_by, subject, channel_kinds, last_inbound, single in conn.execute(
        "SELECT c.id, c.customer_id, c.status, c.opened_at, c.topic, c.origin, c.started_by, c.subject, c.channel_kinds,"
        f" c.last_inbound_at, {f'CASE WHEN {alone} THEN 1 ELSE 0 END' if counted else '0'} FROM conversations c WHERE {cond}",
        params,
    ):
        if single:
            if (lo is None or opened >= lo) and (hi is None or opened < hi):
                bulk[(topic or "", channel_kinds)] += 1
            continue
        row = IssueRow(
            cid,
            live.get(customer, customer),
            status,
            opened,
            topic=topic or "",
            origin=origin,
            started_by=started_by,
            subject=subject,
        )
        if not exact and started_by is None and channel_kinds and " " not in channel_kinds:
            row.first_contact, row.last_contact = opened, last_inbound if last_inbound is not None else opened
            row.path.append((opened, channel_kinds))
        else:
            detailed.append(cid)
        if status == "resolved":
            resolved.append(cid)
        rows[cid] = row
    if not rows:
        return []

    def each(ids: list[int], sql: str, extra: dict | None = None):
        """Rows of `sql` (its `{ids}` the marks of a slice of `ids`), slice by slice."""
        for start in range(0, len(ids), 500):
            marks, slice_params = _id_list(ids[start : start + 500])
            yield from conn.execute(sql.format(ids=marks), {**slice_params, **(extra or {})})

    for cid, first, last, count in each(
        detailed,
        "SELECT m.conversation_id, min(m.created_at), max(m.created_at), count(*) FROM messages m"
        f" WHERE m.conversation_id IN ({{ids}}) AND {CONTACT} GROUP BY m.conversation_id",
    ):
        row = rows[cid]
        row.first_contact, row.last_contact, row.contacts = first, last, count
    # The first contact and every switch: the contacts whose channel differs from the one before.
    for cid, at, channel in each(
        detailed,
        "SELECT s.conversation_id, s.created_at, s.channel_id FROM (SELECT m.conversation_id, m.created_at,"
        " m.channel_id, lag(m.channel_id) OVER (PARTITION BY m.conversation_id ORDER BY m.created_at, m.id) AS before,"
        " row_number() OVER (PARTITION BY m.conversation_id ORDER BY m.created_at, m.id) AS n"
        f" FROM messages m WHERE m.conversation_id IN ({{ids}}) AND {CONTACT}) s"
        " WHERE s.n = 1 OR s.channel_id <> s.before ORDER BY s.conversation_id, s.created_at",
    ):
        rows[cid].path.append((at, kinds.get(channel, "none")))
    # Human replies and the operator time each took: the gap since the message before, capped.
    for cid, replies, work in each(
        list(rows) if exact else resolved,
        "SELECT r.conversation_id, count(*), sum(CASE WHEN r.gap IS NULL THEN 0 WHEN r.gap > :cap THEN :cap"
        " ELSE r.gap END) FROM (SELECT m.conversation_id, m.direction, m.author, m.flags,"
        " m.created_at - lag(m.created_at) OVER (PARTITION BY m.conversation_id ORDER BY m.created_at, m.id) AS gap"
        " FROM messages m WHERE m.conversation_id IN ({ids}) AND m.direction IN ('in', 'out')) r"
        " WHERE r.direction = 'out' AND r.author NOT IN ('', 'bot', 'survey', 'system', 'automation')"
        " AND (r.flags = '' OR (r.flags NOT LIKE '%bot%' AND r.flags NOT LIKE '%auto_reply%'"
        " AND r.flags NOT LIKE '%automation%' AND r.flags NOT LIKE '%survey%' AND r.flags NOT LIKE '%system%'))"
        " GROUP BY r.conversation_id",
        {"cap": REPLY_WORK_CAP},
    ):
        rows[cid].human_replies, rows[cid].operator_seconds = replies, float(work or 0.0)
    for cid, at in each(
        resolved,
        "SELECT e.conversation_id, min(e.at) FROM events e WHERE e.conversation_id IN ({ids})"
        " AND e.kind = 'conversation.resolved' GROUP BY e.conversation_id",
    ):
        rows[cid].resolved_at = at
    for cid, back in each(
        resolved,
        "SELECT r.conversation_id, min(m.created_at) FROM (SELECT e.conversation_id, min(e.at) AS at FROM events e"
        " WHERE e.conversation_id IN ({ids}) AND e.kind = 'conversation.resolved' GROUP BY e.conversation_id) r"
        f" JOIN messages m ON m.conversation_id = r.conversation_id WHERE m.created_at > r.at AND {CONTACT}"
        " GROUP BY r.conversation_id",
    ):
        rows[cid].recontact_in = back
    for cid, name in conn.execute(
        "SELECT cl.conversation_id, l.name FROM conversations c JOIN conversation_labels cl ON cl.conversation_id = c.id"
        f" JOIN labels l ON l.id = cl.label_id WHERE {cond} ORDER BY cl.conversation_id, l.name",
        params,
    ):
        rows[cid].labels += (name,)
    for cid, topic in conn.execute(
        "SELECT b.conversation_id, b.topic FROM conversations c JOIN bot_conversations b ON b.conversation_id = c.id"
        f" WHERE {cond} AND b.topic <> ''",
        params,
    ):
        rows[cid].bot_topic = topic
    for cid, score in conn.execute(
        "SELECT s.conversation_id, s.score FROM conversations c JOIN surveys s ON s.conversation_id = c.id"
        f" WHERE {cond} AND s.kind = 'csat' AND s.score IS NOT NULL ORDER BY s.conversation_id, s.id",
        params,
    ):
        rows[cid].csat = score
    return sorted(
        rows.values(), key=lambda r: (r.first_contact if r.first_contact is not None else r.opened_at, r.conversation_id)
    )


def identity_kinds(
    conn: sqlite3.Connection, customer_ids: list[int] | None = None, live: dict[int, int] | None = None
) -> dict[int, set[str]]:
    """Live customer id -> the kinds of identity they hold (merged customers' included); `live`
    as for `issue_rows`."""
    live = live_customers(conn) if live is None else live
    out: dict[int, set[str]] = {}
    if customer_ids is None:
        rows = conn.execute("SELECT customer_id, kind FROM identities").fetchall()
    else:
        rows = []
        for start in range(0, len(customer_ids), 500):
            marks, params = _id_list(customer_ids[start : start + 500])
            rows += conn.execute(f"SELECT customer_id, kind FROM identities WHERE customer_id IN ({marks})", params).fetchall()
    for customer, kind in rows:
        out.setdefault(live.get(customer, customer), set()).add(kind)
    return out


def live_customer_ids(conn: sqlite3.Connection) -> list[int]:
    """Ids of every customer not merged into another (the benchmark picks journeys among them)."""
    return [r[0] for r in conn.execute("SELECT id FROM customers WHERE merged_into IS NULL ORDER BY id")]


def contact_texts(conn: sqlite3.Connection, conversation_ids: list[int]) -> list[tuple[int, float, str, str]]:
    """(conversation id, epoch seconds, channel kind, body) of the customer's messages in these
    conversations, in time order: what "repeated themselves" compares."""
    out: list[tuple[int, float, str, str]] = []
    for start in range(0, len(conversation_ids), 500):
        marks, params = _id_list(conversation_ids[start : start + 500])
        out.extend(
            conn.execute(
                "SELECT m.conversation_id, m.created_at, ch.kind, m.body FROM messages m JOIN channels ch ON ch.id = m.channel_id"
                f" WHERE m.conversation_id IN ({marks}) AND {CONTACT} AND m.body <> '' ORDER BY m.created_at, m.id",
                params,
            ).fetchall()
        )
    out.sort(key=lambda r: r[1])
    return out


def undetected_topics(conn: sqlite3.Connection, limit: int, messages: int = 3) -> list[tuple[int, list[str]]]:
    """Up to `limit` conversations that have customer text but no topic yet, each with the
    text of its first `messages` customer messages (what the engine detects a topic from)."""
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT c.id FROM conversations c WHERE c.topic IS NULL AND c.message_count > 0 ORDER BY c.id LIMIT ?",
            (limit,),
        )
    ]
    if not ids:
        return []
    texts: dict[int, list[str]] = {cid: [] for cid in ids}
    marks, params = _id_list(ids)
    for cid, body in conn.execute(
        "SELECT s.conversation_id, s.body FROM (SELECT m.conversation_id, m.body, row_number() OVER"
        " (PARTITION BY m.conversation_id ORDER BY m.created_at, m.id) AS n FROM messages m"
        f" WHERE m.conversation_id IN ({marks}) AND {CONTACT} AND m.body <> '') s WHERE s.n <= :messages"
        " ORDER BY s.conversation_id, s.n",
        {**params, "messages": messages},
    ):
        texts[cid].append(body)
    return list(texts.items())


def set_topics(conn: sqlite3.Connection, topics: list[tuple[int, str]]) -> int:
    """Record detected topics ('' : the engine found none, so it is not asked again) on
    conversations that have none yet; returns how many were set. Runs in the caller's write."""
    changed = 0
    for conversation_id, topic in topics:
        changed += conn.execute(
            "UPDATE conversations SET topic = ? WHERE id = ? AND topic IS NULL", (topic, conversation_id)
        ).rowcount
    return changed


def record_origin(conn: sqlite3.Connection, conversation_id: int, origin: str) -> None:
    """Where the customer came from when this conversation began (the first origin wins)."""
    conn.execute("UPDATE conversations SET origin = ? WHERE id = ? AND origin IS NULL", (origin, conversation_id))


def library_tags(conn: sqlite3.Connection) -> list[str]:
    """Every tag of the published library (JSON text lists, read here as text), the topics."""
    import json

    tags: set[str] = set()
    for (text,) in conn.execute("SELECT tags FROM kb_articles WHERE status = 'published'"):
        try:
            tags.update(str(t) for t in json.loads(text or "[]"))
        except ValueError:
            continue
    return sorted(tags)


def replace_outcomes(conn: sqlite3.Connection, computed_at: float, settings_key: str, cells: list[dict]) -> int:
    """Replace the saved outcome table with `cells` (each a dict of JSON values holding at least
    `topic` and `channel`; stored whole as JSON text), computed at `computed_at` (epoch seconds)
    with the settings `settings_key` names; returns how many cells were saved. Runs in the
    caller's write transaction, so readers see the old table or the new one, never a mix."""
    import json

    conn.execute("DELETE FROM journey_outcomes")
    for cell in cells:
        conn.execute(
            "INSERT INTO journey_outcomes (topic, channel, figures) VALUES (?, ?, ?)",
            (cell["topic"], cell["channel"], json.dumps(cell, ensure_ascii=False)),
        )
    conn.execute(
        "INSERT INTO journey_outcomes_computed (id, computed_at, settings_key) VALUES (1, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET computed_at = excluded.computed_at, settings_key = excluded.settings_key",
        (computed_at, settings_key),
    )
    return len(cells)


def saved_outcomes(conn: sqlite3.Connection) -> tuple[float | None, str, list[dict]]:
    """The saved outcome table: (computed_at epoch seconds, settings key, cells as the dicts
    `replace_outcomes` was given, by topic then channel); (None, '', []) when none was saved."""
    import json

    head = conn.execute("SELECT computed_at, settings_key FROM journey_outcomes_computed WHERE id = 1").fetchone()
    if head is None:
        return None, "", []
    cells = [json.loads(text) for (text,) in conn.execute("SELECT figures FROM journey_outcomes ORDER BY topic, channel")]
    return head[0], head[1], cells
