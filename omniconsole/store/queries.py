"""Reading the unified history for the operator's window: inbox pages, timelines, profiles,
the events log. Plain synchronous functions of a connection; `Store` runs them off the loop."""

from __future__ import annotations

import json
import sqlite3
import time

from omniconsole.models import InboxOrder, InboxView
from omniconsole.store import customers
from omniconsole.store.rows import (
    Attachment,
    Channel,
    Conversation,
    CustomerProfile,
    Event,
    Identity,
    InboxCursor,
    InboxFilter,
    InboxRow,
    Operator,
    Presence,
    ReplyOption,
    TimelineEntry,
)

_BUCKET = {
    InboxView.MINE: "active",
    InboxView.UNASSIGNED: "active",
    InboxView.ALL: "active",
    InboxView.SNOOZED: "snoozed",
    InboxView.RESOLVED: "resolved",
    InboxView.AT_RISK: "active",
    InboxView.SPAM: "spam",
}

#: A conversation the bot is answering (store/bot.py, state `bot`): nobody waits for a person
#: there until the handoff, so the views where operators pick up work (Mine, Unassigned) and
#: "next waiting" leave it out; All and the Bot view list it (issue #17).
_BOT = "EXISTS (SELECT 1 FROM bot_conversations b WHERE b.conversation_id = c.id AND b.state = 'bot')"
_PICK_UP_VIEWS = (InboxView.MINE, InboxView.UNASSIGNED)

_ACTIVITY = "c.last_activity_at DESC, c.id DESC"


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _only_filter(only: InboxFilter | None) -> tuple[list[str], list]:
    where: list[str] = []
    params: list = []
    if not only:
        return where, params
    if only.channel is not None:
        where.append("(' ' || c.channel_kinds || ' ') LIKE ? ESCAPE '\\'")
        params.append(f"% {_like_literal(only.channel)} %")
    if only.label is not None:
        where.append(
            "c.id IN (SELECT cl.conversation_id FROM conversation_labels cl JOIN labels l ON l.id = cl.label_id WHERE l.name = ?)"
        )
        params.append(only.label)
    if only.priority is not None:
        # The literal term lets high/urgent use the partial index of the priority order.
        where.append("c.priority = ?" + (" AND c.priority > 0" if only.priority > 0 else ""))
        params.append(only.priority)
    if only.assignee is not None:
        where.append("c.assignee = ?")
        params.append(only.assignee)
    return where, params


def _view_filter(view: InboxView, operator: str | None, only: InboxFilter | None = None) -> tuple[str, list]:
    if view is InboxView.AT_RISK:  # a running SLA clock, whatever the status (see inbox_page)
        more, more_params = _only_filter(only)
        where = ["c.id IN (SELECT s.conversation_id FROM sla_conversations s WHERE s.due_at IS NOT NULL)", *more]
        return " AND ".join(where), more_params
    where, params = ["c.bucket = ?"], [_BUCKET[view]]
    if view is InboxView.MINE:
        where.insert(0, "c.assignee = ?")
        params.insert(0, operator or "")
    elif view is InboxView.UNASSIGNED:
        where.insert(0, "c.assignee IS NULL")
    if view in _PICK_UP_VIEWS:
        where.append(f"NOT {_BOT}")
    more, more_params = _only_filter(only)
    return " AND ".join(where + more), params + more_params


def _parts(order: InboxOrder, after: InboxCursor | None) -> list[tuple[str, list, str]]:
    """The order as consecutive parts, each one index range: (extra WHERE, its parameters,
    ORDER BY), from just after `after` on. Priority: high/urgent rows (a small partial index),
    then the rest by activity; waiting: waiting rows oldest first (a partial index), then the
    rest by activity. Each part keeps its own keyset, so every page costs the same."""
    la = [after.last_activity_at, after.conversation_id] if after is not None else []
    by_activity = " AND (c.last_activity_at, c.id) < (?, ?)" if after is not None else ""
    if order is InboxOrder.PRIORITY:
        first = " AND c.priority > 0"
        rest = (" AND c.priority <= 0" + by_activity, la, _ACTIVITY)
        if after is None:
            return [(first, [], "c.priority DESC, " + _ACTIVITY), (" AND c.priority <= 0", [], _ACTIVITY)]
        if after.lead is not None and after.lead > 0:
            return [
                (
                    first + " AND (c.priority, c.last_activity_at, c.id) < (?, ?, ?)",
                    [after.lead, *la],
                    "c.priority DESC, " + _ACTIVITY,
                ),
                (" AND c.priority <= 0", [], _ACTIVITY),
            ]
        return [rest]
    if order is InboxOrder.WAITING:
        first = " AND c.waiting_since IS NOT NULL"
        if after is None:
            return [(first, [], "c.waiting_since, c.id"), (" AND c.waiting_since IS NULL", [], _ACTIVITY)]
        if after.lead is not None:
            return [
                (first + " AND (c.waiting_since, c.id) > (?, ?)", [after.lead, after.conversation_id], "c.waiting_since, c.id"),
                (" AND c.waiting_since IS NULL", [], _ACTIVITY),
            ]
        return [(" AND c.waiting_since IS NULL" + by_activity, la, _ACTIVITY)]
    return [(by_activity, la, _ACTIVITY)]


def _inbox_row(r: sqlite3.Row | tuple) -> InboxRow:
    """An InboxRow from the inbox page's columns (unread, bot, SLA due moment and stage last)."""
    return InboxRow(
        *r[:8],
        channel_kinds=tuple(r[8].split()),
        last_activity_at=r[9],
        waiting_since=r[10],
        last_message_id=r[11],
        message_count=r[12],
        unread=bool(r[13]),
        bot=bool(r[14]),
        sla_due_at=r[15],
        sla_stage=r[16],
    )


def inbox_page(
    conn: sqlite3.Connection,
    view: InboxView,
    operator: str | None,
    after: InboxCursor | None = None,
    limit: int = 100,
    offset: int = 0,
    order: InboxOrder = InboxOrder.PRIORITY,
    only: InboxFilter | None = None,
) -> list[InboxRow]:
    """One page of an inbox view in `order`, limited to what `only` names; pass the position
    after the last row (`InboxCursor.after_row`) as `after` for the next page (keyset
    pagination: every page costs the same). `offset` is for a jump into the middle of a long
    list, where no previous page is at hand.

    The rows carry the SLA countdown (the nearest due moment and its urgency) from the same
    query. The At risk view lists conversations whose SLA clock runs (a due moment is kept
    only while a target counts down), nearest due first, whatever `order` says."""
    if view is InboxView.AT_RISK:
        # Driven by the due-time index of the SLA table: the page costs the same at any depth.
        more, more_params = _only_filter(only)
        where, params = " AND ".join(["s.due_at IS NOT NULL", *more]), list(more_params)
        if after is not None:
            where += (
                " AND (s.due_at, s.conversation_id) > ((SELECT x.due_at FROM sla_conversations x WHERE x.conversation_id = ?), ?)"
            )
            params += [after.conversation_id, after.conversation_id]
        rows = conn.execute(
            "SELECT c.id, c.customer_id, cu.display_name, c.status, c.assignee, c.priority, c.subject, c.preview,"
            " c.channel_kinds, c.last_activity_at, c.waiting_since, c.last_message_id, c.message_count,"
            f" c.last_message_id > coalesce(r.last_message_id, 0), {_BOT}, s.due_at, coalesce(s.stage, 0)"
            " FROM conversations c JOIN customers cu ON cu.id = c.customer_id JOIN sla_conversations s ON s.conversation_id = c.id"
            " LEFT JOIN reads r ON r.operator = ? AND r.conversation_id = c.id"
            f" WHERE {where} ORDER BY s.due_at, s.conversation_id LIMIT ?{' OFFSET ?' if offset else ''}",
            (operator or "", *params, limit, *((offset,) if offset else ())),
        ).fetchall()
        return [_inbox_row(r) for r in rows]
    where, params = _view_filter(view, operator, only)
    rows: list = []
    parts = _parts(InboxOrder(order), after)
    skip = offset
    for number, (extra, extra_params, order_by) in enumerate(parts):
        if skip and number < len(parts) - 1:
            held = conn.execute(
                f"SELECT count(*) FROM conversations c WHERE {where}{extra}", (*params, *extra_params)
            ).fetchone()[0]
            if held <= skip:
                skip -= held
                continue
        rows += conn.execute(
            "SELECT c.id, c.customer_id, cu.display_name, c.status, c.assignee, c.priority, c.subject, c.preview,"
            " c.channel_kinds, c.last_activity_at, c.waiting_since, c.last_message_id, c.message_count,"
            f" c.last_message_id > coalesce(r.last_message_id, 0), {_BOT}, s.due_at, coalesce(s.stage, 0)"
            " FROM conversations c JOIN customers cu ON cu.id = c.customer_id"
            " LEFT JOIN sla_conversations s ON s.conversation_id = c.id"
            " LEFT JOIN reads r ON r.operator = ? AND r.conversation_id = c.id"
            f" WHERE {where}{extra} ORDER BY {order_by} LIMIT ?{' OFFSET ?' if skip else ''}",
            (operator or "", *params, *extra_params, limit - len(rows), *((skip,) if skip else ())),
        ).fetchall()
        skip = 0
        if len(rows) >= limit:
            break
    return [_inbox_row(r) for r in rows]


def inbox_counts(conn: sqlite3.Connection, operator: str | None, only: InboxFilter | None = None) -> dict[InboxView, int]:
    """How many conversations each view holds: from the counts the triggers keep, less the
    conversations the bot is answering in Mine and Unassigned; limited to `only`, counted."""
    by_bucket: dict[str, int] = {}
    mine = unassigned = 0
    if only:
        more, more_params = _only_filter(only)
        rows = conn.execute(
            "SELECT c.bucket, coalesce(c.assignee, '') AS who, count(*) FROM conversations c"
            f" WHERE {' AND '.join(more)} GROUP BY c.bucket, coalesce(c.assignee, '')",
            more_params,
        ).fetchall()
    else:
        more, more_params = [], []
        rows = conn.execute("SELECT bucket, assignee, n FROM conversation_counts").fetchall()
    for bucket, assignee, n in rows:
        by_bucket[bucket] = by_bucket.get(bucket, 0) + n
        if bucket == "active" and operator and assignee == operator:
            mine += n
        if bucket == "active" and assignee == "":
            unassigned += n
    for assignee, n in conn.execute(
        "SELECT coalesce(c.assignee, '') AS who, count(*) FROM bot_conversations b JOIN conversations c ON c.id = b.conversation_id"
        f" WHERE b.state = 'bot' AND c.bucket = 'active'{''.join(' AND ' + w for w in more)} GROUP BY coalesce(c.assignee, '')",
        more_params,
    ):
        if assignee == "":
            unassigned -= n
        elif operator and assignee == operator:
            mine -= n
    counts = {view: by_bucket.get(_BUCKET[view], 0) for view in InboxView}
    counts[InboxView.MINE] = mine
    counts[InboxView.UNASSIGNED] = unassigned
    # Counted on the partial index of due moments (only running clocks have one).
    if more:
        counts[InboxView.AT_RISK] = conn.execute(
            "SELECT count(*) FROM sla_conversations s JOIN conversations c ON c.id = s.conversation_id"
            f" WHERE s.due_at IS NOT NULL{''.join(' AND ' + w for w in more)}",
            more_params,
        ).fetchone()[0]
    else:
        counts[InboxView.AT_RISK] = conn.execute("SELECT count(*) FROM sla_conversations WHERE due_at IS NOT NULL").fetchone()[0]
    return counts


_CONVERSATION_COLUMNS = (
    "c.id, c.customer_id, c.status, c.assignee, c.team, c.priority, c.subject, c.opened_at, c.last_activity_at,"
    " c.last_inbound_at, c.first_response_at, c.resolved_at, c.snoozed_until, c.waiting_since, c.message_count,"
    " c.channel_kinds"
)


def _conversation(conn: sqlite3.Connection, r: sqlite3.Row) -> Conversation:
    labels = tuple(
        x[0]
        for x in conn.execute(
            "SELECT l.name FROM conversation_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.conversation_id = ? ORDER BY l.name",
            (r[0],),
        )
    )
    return Conversation(*r[:15], tuple(r[15].split()), labels)


def conversation(conn: sqlite3.Connection, conversation_id: int) -> Conversation | None:
    """One conversation with its labels, or None."""
    r = conn.execute(f"SELECT {_CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ?", (conversation_id,)).fetchone()
    return _conversation(conn, r) if r else None


def timeline(conn: sqlite3.Connection, conversation_id: int, limit: int = 2000) -> list[TimelineEntry]:
    """The newest `limit` entries of a conversation in time order, with channels and files."""
    rows = conn.execute(
        "SELECT * FROM (SELECT m.id, m.conversation_id, m.customer_id, m.direction, m.author, m.body, m.subject,"
        " m.channel_id, ch.kind, ch.name, m.created_at, m.edited_at, m.state, m.error, m.attempts, m.external_id,"
        " m.reply_to_external_id, m.flags, m.meta FROM messages m LEFT JOIN channels ch ON ch.id = m.channel_id"
        " WHERE m.conversation_id = ? ORDER BY m.id DESC LIMIT ?) ORDER BY created_at, id",
        (conversation_id, limit),
    ).fetchall()
    files: dict[int, list[Attachment]] = {}
    if rows:
        for a in conn.execute(
            "SELECT a.id, a.message_id, a.filename, a.mime_type, a.size, a.path, a.note FROM attachments a"
            " JOIN messages m ON m.id = a.message_id WHERE m.conversation_id = ? AND a.replaced_at IS NULL ORDER BY a.id",
            (conversation_id,),
        ):
            files.setdefault(a[1], []).append(Attachment(*a))
    return [TimelineEntry(*r[:17], tuple(r[17].split()), r[18], tuple(files.get(r[0], ()))) for r in rows]


def customer_profile(conn: sqlite3.Connection, customer_id: int) -> CustomerProfile | None:
    """A customer with identities, every conversation (newest first), labels and journey."""
    c = conn.execute(
        "SELECT id, display_name, name_source, note, attributes, origin, created_at, merged_into FROM customers WHERE id = ?",
        (customer_id,),
    ).fetchone()
    if c is None:
        return None
    if c[7] is not None:
        return customer_profile(conn, c[7])
    identities = tuple(
        Identity(*r)
        for r in conn.execute(
            "SELECT id, kind, address, display FROM identities WHERE customer_id = ? ORDER BY id", (customer_id,)
        )
    )
    conversations = tuple(
        _conversation(conn, r)
        for r in conn.execute(
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations c WHERE c.customer_id = ? ORDER BY c.id DESC", (customer_id,)
        )
    )
    labels = tuple(
        r[0]
        for r in conn.execute(
            "SELECT l.name FROM customer_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.customer_id = ? ORDER BY l.name",
            (customer_id,),
        )
    )
    journey: list[str] = []
    first_seen = None
    for kind, at in conn.execute(
        "SELECT ch.kind, m.created_at FROM conversations c JOIN messages m ON m.conversation_id = c.id"
        " JOIN channels ch ON ch.id = m.channel_id"
        # A call the customer made is a channel they used, though it is stored as an event.
        " WHERE c.customer_id = ? AND (m.direction = 'in' OR (m.direction = 'event' AND m.flags = 'call'"
        " AND json_extract(m.meta, '$.call.direction') = 'in')) ORDER BY m.created_at, m.id",
        (customer_id,),
    ):
        first_seen = at if first_seen is None else first_seen
        if kind not in journey:
            journey.append(kind)
    try:
        attributes = json.loads(c[4]) if c[4] else {}
    except ValueError:
        attributes = {}
    return CustomerProfile(
        c[0],
        c[1],
        c[2],
        c[3],
        attributes,
        c[5],
        c[6],
        identities,
        conversations,
        labels,
        tuple(journey),
        first_seen,
        tuple(customers.suggestions(conn, customer_id)),
        tuple(customers.merges(conn, customer_id)),
        *conn.execute("SELECT do_not_contact, do_not_contact_at FROM customers WHERE id = ?", (customer_id,)).fetchone(),
    )


def events_since(conn: sqlite3.Connection, event_id: int, limit: int = 1000) -> list[Event]:
    """Events after `event_id`, oldest first."""
    return [
        Event(*r)
        for r in conn.execute(
            "SELECT id, at, kind, actor, conversation_id, customer_id, message_id, payload FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (event_id, limit),
        )
    ]


def last_event_id(conn: sqlite3.Connection) -> int:
    """The newest event's id (0 for an empty log): where a new follower starts."""
    return conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]


def channels(conn: sqlite3.Connection) -> list[Channel]:
    """Every configured channel with its health."""
    return [
        Channel(*r) for r in conn.execute("SELECT id, kind, name, health, health_detail, health_at FROM channels ORDER BY id")
    ]


def operators(conn: sqlite3.Connection) -> list[Operator]:
    """Every registered operator."""
    return [
        Operator(r[0], r[1], r[2], tuple(json.loads(r[3])), r[4], r[5], r[6])
        for r in conn.execute(
            "SELECT login, display_name, role, teams, capacity, extension, language FROM operators ORDER BY login"
        )
    ]


def stats(conn: sqlite3.Connection) -> dict:
    """Counts for `omniconsole stats`: messages by channel and direction, conversations by status."""
    by_channel = [
        tuple(r)
        for r in conn.execute(
            "SELECT coalesce(ch.name, '(internal)'), coalesce(ch.kind, ''), m.direction, count(*) FROM messages m"
            " LEFT JOIN channels ch ON ch.id = m.channel_id GROUP BY m.channel_id, m.direction ORDER BY 1, 3"
        )
    ]
    by_status = {r[0]: r[1] for r in conn.execute("SELECT status, count(*) FROM conversations GROUP BY status")}
    by_state = {r[0]: r[1] for r in conn.execute("SELECT state, count(*) FROM messages WHERE direction = 'out' GROUP BY state")}
    return {
        "customers": conn.execute("SELECT count(*) FROM customers WHERE merged_into IS NULL").fetchone()[0],
        "conversations": by_status,
        "messages": by_channel,
        "outbound": by_state,
    }


def reply_options(conn: sqlite3.Connection, conversation_id: int) -> list[ReplyOption]:
    """Every identity of the conversation's customer we can answer on, with its channel; the
    default is the channel of their latest inbound message."""
    from omniconsole.store.actions import reply_route

    customer_id = conn.execute("SELECT customer_id FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    if customer_id is None:
        return []
    route = reply_route(conn, conversation_id)
    options = []
    for identity_id, kind, address in conn.execute(
        "SELECT id, kind, address FROM identities WHERE customer_id = ? ORDER BY id", (customer_id[0],)
    ):
        # The channel this identity last wrote on, else any channel of that kind.
        row = (
            conn.execute(
                "SELECT m.channel_id, ch.name FROM conversations c JOIN messages m ON m.conversation_id = c.id"
                " JOIN channels ch ON ch.id = m.channel_id WHERE c.customer_id = ? AND m.identity_id = ? AND m.direction = 'in'"
                " ORDER BY m.id DESC LIMIT 1",
                (customer_id[0], identity_id),
            ).fetchone()
            or conn.execute("SELECT id, name FROM channels WHERE kind = ? ORDER BY id LIMIT 1", (kind,)).fetchone()
        )
        if row is None:
            continue
        is_default = route is not None and route == (row[0], identity_id)
        options.append(ReplyOption(identity_id, kind, address, row[0], row[1], is_default))
        if kind == "phone":
            # A number known from a call (or one SMS channel) can also be texted on every
            # other SMS channel: a call-back by SMS is the common case.
            for channel_id, name in conn.execute(
                "SELECT id, name FROM channels WHERE kind = 'sms' AND id != ? ORDER BY id", (row[0],)
            ):
                options.append(
                    ReplyOption(
                        identity_id, kind, address, channel_id, name, route is not None and route == (channel_id, identity_id)
                    )
                )
    if options and not any(o.default for o in options):
        first = options[0]
        options[0] = ReplyOption(first.identity_id, first.kind, first.address, first.channel_id, first.channel_name, True)
    return options


def presence(conn: sqlite3.Connection, conversation_id: int, exclude: str, max_age: float = 10.0) -> list[Presence]:
    """Other operators who looked at (or typed in) this conversation in the last `max_age` s."""
    return [
        Presence(r[0], bool(r[1]), r[2])
        for r in conn.execute(
            "SELECT operator, typing, updated_at FROM presence WHERE conversation_id = ? AND operator != ? AND updated_at > ?"
            " ORDER BY operator",
            (conversation_id, exclude, time.time() - max_age),
        )
    ]


def typing_addresses(conn: sqlite3.Connection, kind: str, max_age: float = 6.0) -> set[str]:
    """Identity addresses of `kind` whose customer an operator is typing to now: a presence
    row marked typing in the last `max_age` s (the window refreshes it every ~2 s while the
    operator types) in one of the customer's conversations that is not resolved."""
    return {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT i.address FROM presence p JOIN conversations c ON c.id = p.conversation_id"
            " JOIN identities i ON i.customer_id = c.customer_id"
            " WHERE p.typing = 1 AND p.updated_at > ? AND c.status != 'resolved' AND i.kind = ?",
            (time.time() - max_age, kind),
        )
    }


def next_waiting(
    conn: sqlite3.Connection,
    operator: str,
    after_conversation: int | None = None,
    view: InboxView | None = None,
    only: InboxFilter | None = None,
) -> int | None:
    """The active conversation whose customer has waited longest, mine or unassigned first;
    with `view` (Mine, Unassigned or All) only one that view lists, limited to `only`. One the
    bot is answering waits for nobody yet (its wait starts at the handoff)."""
    where, params = "c.bucket = 'active'", []
    if view in (InboxView.MINE, InboxView.UNASSIGNED, InboxView.ALL):
        where, params = _view_filter(view, operator, only)
    row = conn.execute(
        f"SELECT c.id FROM conversations c WHERE {where} AND c.waiting_since IS NOT NULL AND c.id <> ? AND NOT {_BOT}"
        " ORDER BY (c.assignee IS NULL OR c.assignee = ?) DESC, c.waiting_since LIMIT 1",
        (*params, after_conversation or 0, operator),
    ).fetchone()
    return row[0] if row else None


def conversation_index(
    conn: sqlite3.Connection,
    view: InboxView,
    operator: str | None,
    conversation_id: int,
    order: InboxOrder = InboxOrder.PRIORITY,
    only: InboxFilter | None = None,
) -> int | None:
    """The position of a conversation in an inbox view (to keep it selected as the list moves)."""
    if view is InboxView.AT_RISK:
        due = conn.execute("SELECT due_at FROM sla_conversations WHERE conversation_id = ?", (conversation_id,)).fetchone()
        if due is None or due[0] is None:
            return None
        return conn.execute(
            "SELECT count(*) FROM sla_conversations WHERE due_at IS NOT NULL AND (due_at, conversation_id) < (?, ?)",
            (due[0], conversation_id),
        ).fetchone()[0]
    row = conn.execute(
        "SELECT last_activity_at, priority, waiting_since FROM conversations WHERE id = ?", (conversation_id,)
    ).fetchone()
    if row is None:
        return None
    where, params = _view_filter(view, operator, only)
    inside = conn.execute(f"SELECT 1 FROM conversations c WHERE c.id = ? AND {where}", (conversation_id, *params)).fetchone()
    if inside is None:
        return None
    la, priority, waiting = row
    order = InboxOrder(order)
    if order is InboxOrder.PRIORITY and priority > 0:
        before, more = (
            "(c.priority > ? OR (c.priority = ? AND (c.last_activity_at, c.id) > (?, ?)))",
            [priority, priority, la, conversation_id],
        )
    elif order is InboxOrder.PRIORITY:
        before, more = "(c.priority > 0 OR (c.last_activity_at, c.id) > (?, ?))", [la, conversation_id]
    elif order is InboxOrder.WAITING and waiting is not None:
        before, more = "(c.waiting_since < ? OR (c.waiting_since = ? AND c.id < ?))", [waiting, waiting, conversation_id]
    elif order is InboxOrder.WAITING:
        before, more = "(c.waiting_since IS NOT NULL OR (c.last_activity_at, c.id) > (?, ?))", [la, conversation_id]
    else:
        before, more = "(c.last_activity_at, c.id) > (?, ?)", [la, conversation_id]
    return conn.execute(f"SELECT count(*) FROM conversations c WHERE {where} AND {before}", (*params, *more)).fetchone()[0]


def conversation_view(conn: sqlite3.Connection, conversation_id: int, operator: str):
    """Everything the window shows for one conversation, read in one go (one hop to the
    database thread, one repaint): the conversation, its timeline, the customer's profile,
    the ways to reply, and who else is here."""
    found = conversation(conn, conversation_id)
    if found is None:
        return None
    return (
        found,
        timeline(conn, conversation_id),
        customer_profile(conn, found.customer_id),
        reply_options(conn, conversation_id),
        presence(conn, conversation_id, operator),
    )


def bench_sample(conn: sqlite3.Connection, rounds: int) -> tuple[int, int, list[InboxCursor]]:
    """For `omniconsole bench query`: (highest customer id, highest conversation id, up to
    `rounds` random keyset positions in the active inbox) of a benchmark database."""
    max_customer = conn.execute("SELECT max(id) FROM customers").fetchone()[0] or 1
    max_conversation = conn.execute("SELECT max(id) FROM conversations").fetchone()[0] or 1
    positions = [
        InboxCursor(r[0], r[1])
        for r in conn.execute(
            "SELECT last_activity_at, id FROM conversations WHERE bucket = 'active' ORDER BY random() LIMIT ?", (rounds,)
        )
    ]
    return max_customer, max_conversation, positions
