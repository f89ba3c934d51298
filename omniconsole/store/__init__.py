"""The unified history: one SQLite database that every process shares, and its async API.

`Store` is what the core, the window and the CLI use. Each method is one hop to the database
thread; writes are one BEGIN IMMEDIATE transaction that also appends to the events log.
Times are float epoch seconds throughout; database failures raise `StoreError` with a sentence
a person can act on, refused operator actions `ActionError`.

The modules, from the floor up (a module imports only those below it):

    records, rows, schema, database, events  plain data, the schema, connections, the events writer
    search                                  the full-text indexes: queries and their upkeep
    suggestions, identities, conversations  who wrote, which customer, which conversation
    attachments, edits                      files of messages, edits and their earlier versions
    actions, outbox, lease                  operators' actions, the outbox's states, the core's lease
    spam                                    blocked senders and the Spam view (ingest asks it)
    calls, history                          call events; the ingest loop
    customers, queries, retention           merges and personal data; reads for the window; forgetting
    routing, schedule                       operators' status and queues (omniconsole/routing/ decides);
                                            the one schedule the core's scheduler wakes for
    answers, bot                            the answers library and its usage; the bot's handoff state
    analytics, facts                        reports' reads and surveys; every figure kept as dated rows
                                            (facts hooks itself into database's COMMIT)
    automation                              the rules' follower position, marks and firings
                                            (omniconsole/automation/ decides)

Past 600 lines on purpose: `Store` is the one facade of every statement (each method a line or
two around a unit function of a store module), and the role table checks it method by method.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from omniconsole.models import ConversationStatus, DeliveryState, Health, InboxOrder, InboxView, OperatorRole
from omniconsole.store import (
    actions,
    analytics,
    answers,
    automation,
    bot,
    calls,
    customers,
    edits,
    facts,
    history,
    integrations,
    journeys,
    lease,
    outbound,
    outbox,
    queries,
    reactions,
    retention,
    routing,
    search,
    spam,
)
from omniconsole.store.actions import ActionError
from omniconsole.store.database import Database, connect, storage_figures, write_transaction
from omniconsole.store.records import AttachmentRecord, InboundRecord, IngestResult
from omniconsole.store.rows import (
    Block,
    Channel,
    Conversation,
    CustomerProfile,
    Event,
    InboxCursor,
    InboxFilter,
    InboxRow,
    MergeRecord,
    MergeSuggestion,
    Operator,
    OutboxItem,
    Presence,
    ReplyOption,
    SearchResults,
    TimelineEntry,
)

__all__ = [
    "ActionError",
    "AttachmentRecord",
    "Block",
    "Channel",
    "Conversation",
    "CustomerProfile",
    "Event",
    "InboundRecord",
    "InboxCursor",
    "InboxFilter",
    "InboxRow",
    "IngestResult",
    "MergeRecord",
    "MergeSuggestion",
    "Operator",
    "OutboxItem",
    "SearchResults",
    "Store",
    "TimelineEntry",
    "connect",
    "write_transaction",
]


class Store:
    """Async access to the unified history for one process."""

    def __init__(self, db: Database):
        self.db = db
        self.path = db.path

    @classmethod
    async def open(cls, path: Path | str, *, create: bool = True) -> Store:
        """Open the database, creating and migrating it as needed."""
        return cls(await Database.open(path, create=create))

    async def close(self) -> None:
        """Close this process's connection (its thread stops; other processes are unaffected)."""
        await self.db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # --- reading ------------------------------------------------------------------------

    async def inbox_page(
        self,
        view: InboxView,
        operator: str | None = None,
        after: InboxCursor | None = None,
        limit: int = 100,
        offset: int = 0,
        order: InboxOrder = InboxOrder.PRIORITY,
        only: InboxFilter | None = None,
    ) -> list[InboxRow]:
        """One keyset-paginated page of an inbox view in `order` (models.InboxOrder), limited
        to what `only` names."""
        return await self.db.run(queries.inbox_page, view, operator, after, limit, offset, order, only)

    async def inbox_counts(self, operator: str | None = None, only: InboxFilter | None = None) -> dict[InboxView, int]:
        """The number of conversations in each view (limited to `only`)."""
        return await self.db.run(queries.inbox_counts, operator, only)

    async def inbox_order(self, operator: str) -> InboxOrder:
        """The order this operator last chose for the inbox (the default: priority)."""
        return await self.db.run(actions.inbox_order, operator)

    async def set_inbox_order(self, operator: str, order: InboxOrder) -> None:
        """Remember the operator's inbox order (their own preference: no event)."""
        await self.db.write(actions.set_inbox_order, operator, order)

    async def filter_choices(self) -> tuple[list[str], list[str]]:
        """(channel kinds, label names) an inbox filter can name, each sorted."""
        return await self.db.run(actions.filter_choices)

    async def block_sender(self, customer_id: int, identity_id: int | None, actor: str) -> list[int]:
        """Block a customer (identity None) or one identity of theirs: their conversations go to
        Spam and later messages land there (store/spam.py); returns the conversations moved.
        ActionError when already blocked or unknown."""
        return await self.db.write(spam.block, customer_id, identity_id, actor)

    async def unblock_customer(self, customer_id: int, actor: str) -> list[int]:
        """Lift a customer's blocks: their Spam conversations get back the status they had;
        returns them. ActionError when the customer is not blocked."""
        return await self.db.write(spam.unblock, customer_id, actor)

    async def blocks(self, customer_id: int) -> list[Block]:
        """The customer's blocks (none: not blocked)."""
        return await self.db.run(spam.blocks, customer_id)

    async def conversation(self, conversation_id: int) -> Conversation | None:
        """One conversation, or None."""
        return await self.db.run(queries.conversation, conversation_id)

    async def timeline(self, conversation_id: int, limit: int = 2000) -> list[TimelineEntry]:
        """A conversation's messages, notes and events across channels, in time order."""
        return await self.db.run(queries.timeline, conversation_id, limit)

    async def customer_profile(self, customer_id: int) -> CustomerProfile | None:
        """A customer with identities, conversations, labels and journey."""
        return await self.db.run(queries.customer_profile, customer_id)

    async def search(
        self,
        text: str,
        *,
        customer_id: int | None = None,
        limit: int = 50,
        before_id: int | None = None,
        phone_digits: tuple[str, ...] = (),
    ) -> SearchResults:
        """Messages (latest stored first, a page of `limit`, `more` when there are others) and
        customers matching whatever the user typed; `phone_digits` see `search.search`."""
        return await self.db.run(
            search.search, text, customer_id=customer_id, limit=limit, before_id=before_id, phone_digits=phone_digits
        )

    async def events_since(self, event_id: int, limit: int = 1000) -> list[Event]:
        """Events after `event_id`, oldest first: how every window learns what changed."""
        return await self.db.run(queries.events_since, event_id, limit)

    async def last_event_id(self) -> int:
        """The newest event id; a new follower starts from here."""
        return await self.db.run(queries.last_event_id)

    async def conversation_view(self, conversation_id: int, operator: str):
        """(conversation, timeline, profile, reply options, presence) in one read, or None."""
        return await self.db.run(queries.conversation_view, conversation_id, operator)

    async def next_waiting(
        self,
        operator: str,
        after_conversation: int | None = None,
        view: InboxView | None = None,
        only: InboxFilter | None = None,
    ) -> int | None:
        """The conversation whose customer has waited longest (mine or unassigned first; none
        the bot is answering); with `view`, only one that inbox view lists, limited to `only`."""
        return await self.db.run(queries.next_waiting, operator, after_conversation, view, only)

    async def conversation_index(
        self,
        view: InboxView,
        operator: str | None,
        conversation_id: int,
        order: InboxOrder = InboxOrder.PRIORITY,
        only: InboxFilter | None = None,
    ) -> int | None:
        """Where a conversation stands in an inbox view in `order`, or None if it is not in it."""
        return await self.db.run(queries.conversation_index, view, operator, conversation_id, order, only)

    async def reply_options(self, conversation_id: int) -> list[ReplyOption]:
        """The identities and channels a reply to this conversation can go by."""
        return await self.db.run(queries.reply_options, conversation_id)

    async def presence(self, conversation_id: int, exclude: str) -> list[Presence]:
        """Other operators viewing or typing in a conversation now."""
        return await self.db.run(queries.presence, conversation_id, exclude)

    async def typing_addresses(self, kind: str, max_age: float = 6.0) -> set[str]:
        """Addresses of `kind` whose customer an operator is typing to now (the web chat's
        "operator is typing")."""
        return await self.db.run(queries.typing_addresses, kind, max_age)

    async def set_presence(self, operator: str, conversation_id: int | None, typing: bool = False) -> None:
        """Where an operator is looking (None: nowhere) and whether they type; soft state, no event."""
        await self.db.write(actions.set_presence, operator, conversation_id, typing)

    async def mark_read(self, operator: str, conversation_id: int) -> None:
        """The operator has seen the conversation up to its latest message (a live event)."""
        await self.db.write(actions.mark_read, operator, conversation_id)

    async def channels(self) -> list[Channel]:
        """Every channel with its health."""
        return await self.db.run(queries.channels)

    async def operators(self) -> list[Operator]:
        """Every registered operator."""
        return await self.db.run(queries.operators)

    async def stats(self) -> dict:
        """Counts by channel, direction and status."""
        return await self.db.run(queries.stats)

    async def cursor(self, channel_id: int) -> str | None:
        """The last committed cursor of a channel's connector."""
        return await self.db.run(history.load_cursor, channel_id)

    # --- what arrives -------------------------------------------------------------------

    async def ingest(self, channel_id: int, channel_kind: str, records: list[InboundRecord], cursor: str | None) -> IngestResult:
        """Store a batch of inbound messages and the cursor covering them, atomically."""
        return await self.db.write(history.ingest_batch, channel_id, channel_kind, records, cursor)

    # --- what operators do --------------------------------------------------------------

    async def queue_reply(
        self,
        conversation_id: int,
        body: str,
        author: str,
        *,
        identity_id: int | None = None,
        channel_id: int | None = None,
        meta: dict | None = None,
    ) -> int:
        """Queue a reply for the outbox; returns the message id. `meta` travels to the channel
        (a WhatsApp template and its parameters)."""
        return await self.db.write(
            actions.queue_reply, conversation_id, body, author, identity_id=identity_id, channel_id=channel_id, meta=meta
        )

    async def last_inbound_at(self, identity_id: int, channel_id: int) -> float | None:
        """When this identity of a customer last wrote on this channel, or None."""
        return await self.db.run(outbox.last_inbound_at, identity_id, channel_id)

    async def add_note(self, conversation_id: int, body: str, author: str) -> int:
        """Add a private note to a conversation."""
        return await self.db.write(actions.add_note, conversation_id, body, author)

    async def assign(self, conversation_id: int, assignee: str | None, actor: str) -> None:
        """Assign (or with None unassign) a conversation."""
        await self.db.write(actions.assign, conversation_id, assignee, actor)

    async def set_status(
        self, conversation_id: int, status: ConversationStatus, actor: str, *, snoozed_until: float | None = None
    ) -> None:
        """Resolve, reopen, snooze or mark pending."""
        await self.db.write(actions.set_status, conversation_id, status, actor, snoozed_until=snoozed_until)

    async def set_priority(self, conversation_id: int, priority: int, actor: str) -> None:
        """0 normal, 1 high, 2 urgent; ActionError when the conversation does not exist."""
        await self.db.write(actions.set_priority, conversation_id, priority, actor)

    async def set_subject(self, conversation_id: int, subject: str, actor: str) -> str:
        """Rename a conversation (one line, at most 200 characters); returns the subject
        stored. ActionError when it does not exist or the subject is empty."""
        return await self.db.write(actions.set_subject, conversation_id, subject, actor)

    async def set_labels(self, conversation_id: int, labels: list[str], actor: str) -> None:
        """Replace a conversation's labels."""
        await self.db.write(actions.set_conversation_labels, conversation_id, labels, actor)

    async def note_on_call(self, message_id: int, text: str, author: str) -> None:
        """Keep an operator's note on a call's timeline entry."""
        await self.db.write(calls.note_on_call, message_id, text, author)

    async def retry_failed(self, message_id: int, actor: str) -> bool:
        """Queue a failed outbound message again."""
        return await self.db.write(outbox.retry_failed, message_id, actor)

    async def add_operator(
        self,
        login: str,
        display_name: str = "",
        role: OperatorRole = OperatorRole.AGENT,
        actor: str = "",
        extension: str | None = None,
    ) -> None:
        """Register or update an operator (with their phone extension, for screen pops)."""
        await self.db.write(actions.add_operator, login, display_name, role, actor, extension)

    async def remove_operator(self, login: str, actor: str = "") -> bool:
        """Remove an operator (their conversations become unassigned); False if unknown."""
        return await self.db.write(actions.remove_operator, login, actor)

    async def set_operator_language(self, login: str, language: str | None, *, actor: str) -> None:
        """An admin sets the language of `login`'s window and CLI ('en', 'ru'; None: not
        chosen). A window reads it when it opens; no core restart. ActionError in words for an
        unknown login or language."""
        await self.db.write(actions.set_operator_language, login, language, actor)

    async def set_own_language(self, operator: str, language: str | None) -> None:
        """The calling operator switches their own window's language (over the core's socket
        `operator` is the caller's login, whatever was sent). ActionError as above."""
        await self.db.write(actions.set_operator_language, operator, language, operator)

    # --- one customer across channels ---------------------------------------------------

    async def merge_customers(self, survivor_id: int, merged_id: int, actor: str, reason: str = "") -> int:
        """Merge one customer into another; returns the merge record's id (for an unmerge)."""
        return await self.db.write(customers.merge_customers, survivor_id, merged_id, actor, reason)

    async def unmerge(self, merge_id: int, actor: str) -> None:
        """Undo a merge exactly: what it moved goes back."""
        await self.db.write(customers.unmerge, merge_id, actor)

    async def dismiss_suggestion(self, suggestion_id: int, actor: str) -> None:
        """Say two suggested customers are different people; never suggested again."""
        await self.db.write(customers.dismiss_suggestion, suggestion_id, actor)

    async def update_customer(self, customer_id: int, actor: str, **changes) -> list[str]:
        """Edit a customer's name, note, attributes or labels; returns what changed."""
        return await self.db.write(customers.update_customer, customer_id, actor, **changes)

    async def add_identity(self, customer_id: int, kind: str, address: str, actor: str) -> bool:
        """Give a customer one more normalised identity (StoreError if someone else has it)."""
        return await self.db.write(customers.add_identity, customer_id, kind, address, actor)

    async def identity_owner(self, kind: str, address: str) -> int | None:
        """The customer (following merges) holding a normalised identity (`kind`, `address`);
        a phone is looked up under every phone-like kind. None when nobody has it."""
        return await self.db.run(customers.customer_with_identity, kind, address)

    async def live_customer(self, customer_id: int) -> int:
        """Who a customer id names now (following merges)."""
        return await self.db.run(customers.live_customer, customer_id)

    async def export_customer(self, customer_id: int, actor: str) -> dict:
        """Everything held about one person (recorded in the events log)."""
        return await self.db.write(customers.export_customer, customer_id, actor)

    async def erase_customer(self, customer_id: int, actor: str, attachments_dir: Path | None = None) -> dict:
        """Delete a person's data, keeping anonymous counts; their files go after the commit."""
        result = await self.db.write(customers.erase_customer, customer_id, actor)
        await self.db.write(customers.compact_search_indexes)
        # Old copies of the erased pages sit in the write-ahead log until it is reset: fold it
        # back and truncate it. (With another process reading at this moment the truncation can
        # wait; the log is then overwritten as the history goes on.)
        result["log_truncated"] = await self.db.run(
            lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        )
        removed = 0
        if attachments_dir is not None:
            for relative in result.pop("files_to_delete"):
                path = attachments_dir / relative
                try:
                    path.unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
                try:
                    path.parent.rmdir()
                except OSError:
                    pass
        result["files_deleted"] = removed
        result.pop("files_to_delete", None)
        return result

    # --- what the core does -------------------------------------------------------------

    async def ensure_channel(self, kind: str, name: str) -> int:
        """The id of a configured channel, creating its row on first use."""
        return await self.db.write(actions.ensure_channel, kind, name)

    async def set_channel_health(self, channel_id: int, health: Health, detail: str = "") -> bool:
        """Record a channel's health with its detail in words; True when it changed."""
        return await self.db.write(actions.set_channel_health, channel_id, health, detail)

    async def wake_snoozed(self) -> list[int]:
        """Reopen snoozed conversations whose time has come; returns their ids."""
        return await self.db.write(actions.wake_snoozed)

    async def recover_sending(self) -> int:
        """Requeue replies a crash left in `sending` (at start); returns how many."""
        return await self.db.write(outbox.recover_sending)

    async def claim_outbox(self, channel_ids: list[int], limit: int = 20) -> list[OutboxItem]:
        """Mark up to `limit` due replies of these channels `sending` and return them."""
        return await self.db.write(outbox.claim_due, channel_ids, limit)

    async def next_outbox_due(self, channel_ids: list[int]) -> float | None:
        """When (epoch seconds) the next queued reply of these channels falls due; None: none."""
        return await self.db.run(outbox.next_due, channel_ids)

    async def mark_sent(self, message_id: int, external_id: str, state: DeliveryState, thread_key: str | None) -> None:
        """Record a send with the channel's id for the message (and apply early delivery words)."""
        await self.db.write(outbox.mark_sent, message_id, external_id, state, thread_key)

    async def mark_retry(self, message_id: int, reason: str, retry_at: float) -> None:
        """A transient failure: queued again until `retry_at` (epoch seconds), reason shown."""
        await self.db.write(outbox.mark_retry, message_id, reason, retry_at)

    async def mark_failed(self, message_id: int, reason: str) -> None:
        """A permanent failure with its reason in words; the operator may retry by hand."""
        await self.db.write(outbox.mark_failed, message_id, reason)

    async def apply_delivery_updates(self, channel_id: int, updates: list[tuple[str, DeliveryState, str]]) -> int:
        """Apply (external id, state, error) updates; returns how many changed a message.
        States only move forward and `failed` is final (store/outbox.py)."""

        def apply(conn) -> int:
            return sum(outbox.apply_delivery_update(conn, channel_id, *u) for u in updates)

        return await self.db.write(apply)

    async def try_acquire_lease(self, me: str, pid: int, host: str, ttl: float) -> bool:
        """Take the core's lease for `ttl` seconds if it is free, stale or ours; True if held."""
        return await self.db.write(lease.try_acquire, me, pid, host, ttl)

    async def renew_lease(self, me: str, ttl: float) -> bool:
        """Extend our lease by `ttl` seconds; False when another core holds it now."""
        return await self.db.write(lease.renew, me, ttl)

    async def release_lease(self, me: str) -> None:
        """Give up our lease (a stopping core), so another may take over at once."""
        await self.db.write(lease.release, me)

    async def lease_holder(self) -> lease.LeaseHolder | None:
        """Who holds the core's lease (any age), or None."""
        return await self.db.run(lease.holder)

    async def checkpoint(self) -> None:
        """Fold the WAL back into the database without waiting for readers."""
        await self.db.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())

    async def reactions(self, conversation_id: int) -> dict[int, list[reactions.Reaction]]:
        """The customers' current reactions on a conversation's messages, by message id
        (omniconsole/store/reactions.py)."""
        return await self.db.run(reactions.reactions_in_conversation, conversation_id)

    # --- the answers library ------------------------------------------------------------

    async def kb_articles(self, *, include_proposed: bool = False) -> list[answers.ArticleRecord]:
        """Every article variant of the answers library (see store/answers.py)."""
        return await self.db.run(answers.articles, include_proposed=include_proposed)

    async def kb_sync(
        self,
        records: list[answers.ArticleRecord],
        actor: str,
        *,
        prune: bool = False,
        dry_run: bool = False,
        keep_paths: set[str] = frozenset(),
    ) -> list[answers.SyncLine]:
        """Sync articles read from a folder into the library (`kb import`); dry runs write nothing."""
        if dry_run:
            return await self.db.run(answers.sync_articles, records, actor, prune=prune, dry_run=True, keep_paths=keep_paths)
        return await self.db.write(answers.sync_articles, records, actor, prune=prune, keep_paths=keep_paths)

    async def kb_save(self, record: answers.ArticleRecord, actor: str) -> str:
        """Write one article variant from the window: 'new', 'updated' or 'unchanged'."""
        return await self.db.write(answers.save_article, record, actor)

    async def kb_propose(self, record: answers.ArticleRecord, actor: str) -> str:
        """Keep an agent's proposed article for an admin to publish; returns its key."""
        return await self.db.write(answers.propose_article, record, actor)

    async def kb_delete(self, key: str, language: str, actor: str) -> bool:
        """Remove one article variant."""
        return await self.db.write(answers.delete_article, key, language, actor)

    async def kb_figures(self) -> dict[tuple[str, str], answers.ArticleFigures]:
        """Usage per (article key, language): shown, used, edited share, last used."""
        return await self.db.run(answers.article_figures)

    async def kb_record_shown(self, shown: list[tuple[str, str]], operator: str, conversation_id: int | None) -> None:
        """Record suggestions shown to an operator."""
        await self.db.write(answers.record_shown, shown, operator, conversation_id)

    async def kb_record_insertion(
        self, key: str, language: str, operator: str, conversation_id: int | None, *, suggested: bool = False
    ) -> int:
        """Record an article inserted into a reply; returns the id for kb_record_sent."""
        return await self.db.write(answers.record_insertion, key, language, operator, conversation_id, suggested=suggested)

    async def kb_record_sent(self, insertion_ids: list[int], message_id: int | None, edited: bool) -> None:
        """Record that the reply holding these insertions went out, edited or not."""
        await self.db.write(answers.record_sent, insertion_ids, message_id, edited)

    # --- figures and surveys (store/analytics.py, omniconsole/analytics/) ------------------

    async def report_histories(
        self, start: float | None, end: float | None, conversation_ids: list[int] | None = None
    ) -> tuple[list[analytics.ConversationHistory], dict[str, int], dict[int, str]]:
        """In one snapshot: the conversations a figure of [start, end) may come from (epoch
        seconds, None: unbounded), surveys sent in the period by kind, and customers' names."""

        def read(conn):
            histories = analytics.report_histories(conn, start, end, conversation_ids)
            sent = analytics.surveys_sent_between(conn, start, end)
            names = analytics.customer_names(conn, sorted({h.customer_id for h in histories}))
            return histories, sent, names

        return await self.db.run(read)

    async def backfill_facts(self) -> int:
        """Compute the `conversation_facts` of conversations still queued by the migration, in
        transactions of 2,000 conversations; returns how many were done (store/facts.py)."""
        done = 0
        while await self.db.run(facts.backfill_pending):
            done += await self.db.write(facts.backfill)
        return done

    async def report_figures(
        self, start: float | None, end: float | None, operator: str | None = None
    ) -> tuple[facts.PeriodFigures, dict[str, int]]:
        """In one snapshot: counts and values of every figure ended in [start, end) (epoch
        seconds, None: unbounded; `unattended` as of now) from `conversation_facts`, only those
        credited to `operator` when given, and surveys sent in the period by kind. Runs the
        migration's backfill first when one is pending."""
        await self.backfill_facts()

        def read(conn):
            return facts.period_figures(conn, start, end, operator), analytics.surveys_sent_between(conn, start, end)

        return await self.db.run(read)

    async def report_facts(self, start: float | None, end: float | None, now: float) -> tuple[list[facts.Fact], dict[str, int]]:
        """In one snapshot: every fact ended in [start, end) and the unattended ones dated `now`
        (for grouping and charts), and surveys sent in the period by kind."""
        await self.backfill_facts()

        def read(conn):
            return facts.period_facts(conn, start, end, now), analytics.surveys_sent_between(conn, start, end)

        return await self.db.run(read)

    async def own_figures(
        self, start: float | None, end: float | None, me: str
    ) -> tuple[facts.PeriodFigures, facts.PeriodFigures]:
        """An agent's own figures of [start, end) beside the team's totals: (team, own), where
        own holds the facts credited to `me` (in a team setup the core sets `me` to the
        caller's login). Totals only: no other operator's figures."""
        await self.backfill_facts()

        def read(conn):
            return facts.period_figures(conn, start, end), facts.period_figures(conn, start, end, me)

        return await self.db.run(read)

    # --- journeys and channel advice (store/journeys.py, omniconsole/analytics/journeys.py) --

    async def journey_rows(
        self, period: tuple[float | None, float | None] = (None, None)
    ) -> tuple[list[journeys.IssueRow], Counter, list[str], dict[int, set[str]]]:
        """In one snapshot: the conversations as journeys `IssueRow`s, the open ones that stand
        alone and began in `period` counted by (topic, channel kind) instead (store/journeys.py
        `issue_rows`), the library's tags (the topics), and the identity kinds of each live
        customer with a resolved issue."""

        def read(conn):
            bulk: Counter = Counter()
            rows = journeys.issue_rows(conn, bulk=bulk, bulk_period=period)
            # Advice is weighed for resolved issues only: their customers' channels are enough.
            customers_resolved = sorted({r.customer_id for r in rows if r.status == "resolved"})
            return rows, bulk, journeys.library_tags(conn), journeys.identity_kinds(conn, customers_resolved)

        return await self.db.run(read)

    async def customer_journey(
        self, customer_id: int
    ) -> tuple[list[journeys.IssueRow], list[tuple[int, float, str, str]], list[str], set[str]]:
        """One customer's issues across every customer merged into them, the customer's message
        texts in those issues (conversation id, epoch seconds, channel kind, body), the
        library's tags and the customer's identity kinds. StoreError when there is no such
        customer."""

        def read(conn):
            top = customers.live_customer(conn, customer_id)
            family = customers.merge_tree(conn, top)
            live = {member: top for member in family}
            rows = journeys.issue_rows(conn, customer_ids=family, live=live)
            texts = journeys.contact_texts(conn, [r.conversation_id for r in rows])
            kinds = set().union(*journeys.identity_kinds(conn, family, live).values())
            return rows, texts, journeys.library_tags(conn), kinds

        return await self.db.run(read)

    async def journey_texts(self, conversation_ids: list[int]) -> list[tuple[int, float, str, str]]:
        """The customer's message texts of these conversations (conversation id, epoch seconds,
        channel kind, body), in time order."""
        return await self.db.run(journeys.contact_texts, conversation_ids)

    async def undetected_topics(self, limit: int = 2000) -> list[tuple[int, list[str]]]:
        """Conversations with no topic looked for yet, with their first customer messages."""
        return await self.db.run(journeys.undetected_topics, limit)

    async def set_topics(self, topics: list[tuple[int, str]]) -> int:
        """Record topics the engine detected (conversation id, library tag or ''); returns how
        many conversations got one."""
        return await self.db.write(journeys.set_topics, topics)

    async def journey_outcomes(self) -> tuple[float | None, str, list[dict]]:
        """The outcome table the core saved (store/journeys.py `saved_outcomes`): when it was
        computed (epoch seconds; None: never, and then no cells), the key of the settings it
        was computed with, and its cells as dicts of JSON values (analytics/journeys.py
        `Cell.from_json` reads one)."""
        return await self.db.run(journeys.saved_outcomes)

    async def save_journey_outcomes(self, computed_at: float, settings_key: str, cells: list[dict]) -> int:
        """Replace the saved outcome table in one transaction (store/journeys.py
        `replace_outcomes`); returns how many cells were saved. The core's own work."""
        return await self.db.write(journeys.replace_outcomes, computed_at, settings_key, cells)

    async def wallboard_rows(self, day_start: float) -> analytics.WallboardRows:
        """The wallboard's live numbers in one snapshot (store/analytics.py)."""
        return await self.db.run(analytics.wallboard_rows, day_start)

    async def survey_target(self, conversation_id: int) -> analytics.SurveyTarget | None:
        """What decides whether a conversation gets a survey, or None if it does not exist."""
        return await self.db.run(analytics.survey_target, conversation_id)

    async def record_survey(
        self, kind: str, target: analytics.SurveyTarget, language: str, body: str, meta: dict | None = None
    ) -> tuple[int, str]:
        """Queue a survey question (flagged `survey`) over the target's route; (id, token)."""
        channel_id, _, identity_id, _ = target.route
        return await self.db.write(
            analytics.record_survey,
            kind,
            target.conversation_id,
            target.customer_id,
            channel_id,
            identity_id,
            target.handled_by,
            language,
            body,
            meta,
        )

    async def pending_survey(self, **lookup) -> analytics.PendingSurvey | None:
        """An unanswered survey by `token=`, or the newest to an identity (`identity_kind=`,
        `address=`, sent after `since=`)."""
        return await self.db.run(lambda conn: analytics.pending_survey(conn, **lookup))

    async def record_survey_answer(self, survey_id: int, score: int, **details) -> bool:
        """Keep a survey's first answer (store/analytics.py `record_survey_answer`)."""
        return await self.db.write(lambda conn: analytics.record_survey_answer(conn, survey_id, score, **details))

    # --- operators' status and the queues (issue #18; store/routing.py) -------------------

    async def set_operator_routing(
        self,
        login: str,
        *,
        actor: str,
        status: str | None = None,
        capacity: int | None = None,
        skills: list[str] | None = None,
        teams: list[str] | None = None,
    ) -> None:
        """An admin changes an operator's routing fields (None keeps one): status, capacity
        (conversations, >= 0), skills, teams; `operator.updated` / `operator.status` events by
        `actor`. What a status change sets off (grace, serving the queues) is the core routing
        follower's. ActionError in words for an unknown login or status, a negative capacity."""
        now = time.time()
        await self.db.write(
            routing.update_operator,
            login,
            actor=actor,
            now=now,
            status=status,
            capacity=capacity,
            skills=skills,
            teams=teams,
            reason=f"set by {actor}",
        )

    async def operator_states(self, load_statuses: list[str] | None = None) -> list[routing.OperatorState]:
        """Every operator as routing sees them (status, capacity, skills, teams), with their
        assigned conversations in `load_statuses` (default open and pending) counted per
        channel kind: the window's status bar, `A` and the queue view weigh them."""
        statuses = ("open", "pending") if load_statuses is None else tuple(load_statuses)
        return list((await self.db.run(routing.operator_states, statuses)).values())

    async def queue_figures(self) -> dict[str, tuple[int, float | None]]:
        """Per queue: `(conversations waiting for a person, since when the longest has waited,
        epoch seconds)`; conversations the bot holds do not wait."""
        return await self.db.run(routing.queue_figures)

    async def set_own_status(
        self, operator: str, status: str, reason: str = "", window: str = "", pid: int = 0, host: str = ""
    ) -> str:
        """The calling operator's window sets their status (online, away, offline) and beats
        for its slot `window`. Over the core's socket `operator` is the caller's login,
        whatever was sent: an agent sets only their own. Returns the status ('' for someone
        who is not an operator); ActionError for an unknown status."""
        return await self.db.write(routing.set_own_status, operator, status, reason, window, pid, host, time.time())

    async def window_beat(self, operator: str, window: str, pid: int = 0, host: str = "") -> None:
        """The calling operator's window `window` is alive (its own heartbeat slot)."""
        await self.db.write(routing.beat_own_window, operator, window, pid, host, time.time())

    async def close_own_window(self, operator: str, window: str, reason: str = "their window closed") -> str:
        """The calling operator's window closed: offline only when it was their last. Returns
        their status now ('' for someone who is not an operator)."""
        return await self.db.write(routing.close_own_window, operator, window, reason, time.time())

    async def bot_report(self, conversation_id: int) -> bot.BotReport | None:
        """What the bot did in a conversation (store/bot.py `BotReport`), for the block at the
        top of the operator's timeline; None when the bot did nothing there."""
        return await self.db.run(bot.report, conversation_id)

    # --- what the history forgets (`[retention]`, store/retention.py) ---------------------

    async def prune_live_events(self, before: float, batch: int = 50_000) -> int:
        """Delete live events older than `before` (epoch seconds), a batch per transaction;
        returns how many. History and audit events stay."""
        total = 0
        while True:
            n = await self.db.write(retention.prune_live, before, batch)
            total += n
            if n < batch:
                return total

    async def erase_texts_before(self, before: float, batch: int = 2000) -> int:
        """Erase the text of messages written before `before` (epoch seconds), a batch per
        transaction, keeping the rows (counts); returns how many. Records one audit event and
        compacts the full-text index when anything was erased."""
        total = 0
        while True:
            n = await self.db.write(retention.erase_texts_before, before, batch)
            total += n
            if n < batch:
                break
        if total:
            await self.db.write(retention.record_erasure, before, total)
            await self.db.write(search.compact_indexes)
        return total

    async def storage_figures(self) -> dict:
        """{"bytes": pages in use x page size, "messages": rows, "events": rows by class}."""
        return await self.db.run(storage_figures)

    async def message_versions(self, message_id: int) -> list[dict]:
        """The versions edits replaced, oldest first (see store/edits.py)."""
        return await self.db.run(edits.versions, message_id)

    # --- integrations (issue #22): do not contact, webhook cursors ------------------------

    async def set_do_not_contact(self, customer_id: int, reason: str | None, actor: str) -> bool:
        """Bar (reason in words) or allow again (None) contacting a customer first; True when
        it changed. StoreError when there is no such customer."""
        return await self.db.write(integrations.set_do_not_contact, customer_id, reason, actor)

    async def do_not_contact(self, customer_id: int) -> tuple[str, float] | None:
        """(reason, since epoch seconds) when the customer must not be contacted first, else None."""
        return await self.db.run(integrations.do_not_contact, customer_id)

    async def start_webhook(self, endpoint: str) -> integrations.WebhookState:
        """The endpoint's cursor row, created at the newest event on its first start."""
        return await self.db.write(integrations.start_webhook, endpoint)

    async def webhook_sources(self, after: int, kinds: tuple[str, ...], limit: int = 200):
        """(events of `kinds` after `after` with their context, last event id looked at)."""
        return await self.db.run(integrations.webhook_sources, after, kinds, limit)

    async def webhook_delivered(self, endpoint: str, last_event_id: int, count: int) -> None:
        """Move an endpoint's cursor after its events were accepted."""
        await self.db.write(integrations.webhook_delivered, endpoint, last_event_id, count)

    async def webhook_failed(self, endpoint: str, error: str, next_attempt_at: float) -> None:
        """Record a failed delivery attempt (the cursor stays)."""
        await self.db.write(integrations.webhook_failed, endpoint, error, next_attempt_at)

    async def webhook_states(self) -> list[tuple[integrations.WebhookState, int]]:
        """Every endpoint's state with its backlog (events it has yet to see)."""

        def read(conn):
            return [(s, integrations.webhook_backlog(conn, s.last_event_id)) for s in integrations.webhook_states(conn)]

        return await self.db.run(read)

    # --- automation: what rules and macros do besides operators' actions (issue #19) -------

    async def move_to_queue(self, conversation_id: int, queue: str, actor: str) -> None:
        """Put a conversation in routing's queue `queue`; ActionError when it does not exist."""
        await self.db.write(automation.move_to_queue, conversation_id, queue, actor, time.time())

    async def call_webhook(self, conversation_id: int | None, endpoint: str, actor: str, macro: str = "") -> int:
        """Have the `[[webhooks]]` endpoint `endpoint` called about a conversation (signed and
        retried by its sender); returns the event id."""
        return await self.db.write(automation.call_webhook, conversation_id, endpoint, actor, time.time(), macro=macro)

    async def notify_operators(self, conversation_id: int | None, text: str, operators: list[str], actor: str) -> int:
        """Show `text` in the windows of `operators` (logins); returns the event id."""
        return await self.db.write(automation.notify_operators, conversation_id, text, operators, actor, time.time())

    async def record_macro(self, conversation_id: int, name: str, did: list[str], actor: str) -> None:
        """Keep that `actor` ran macro `name` and what it did (timeline line, `macro.ran` event)."""
        await self.db.write(automation.record_macro, conversation_id, name, did, actor, time.time())

    # --- conversations the company starts (issue #22) -------------------------------------

    async def queue_first_message(
        self,
        kind: str,
        address: str,
        channel_id: int,
        body: str,
        author: str,
        *,
        subject: str = "",
        meta: dict | None = None,
        idempotency_key: str | None = None,
    ) -> outbound.StartedMessage:
        """Queue a message the company starts to a normalised identity (creating the customer
        if new); the earlier message for a known idempotency key. ActionError when the
        customer is marked "do not contact"."""
        return await self.db.write(
            outbound.queue_first_message,
            kind,
            address,
            channel_id,
            body,
            author,
            subject=subject,
            meta=meta,
            idempotency_key=idempotency_key,
        )

    async def started_message(self, *, message_id: int | None = None, idempotency_key: str | None = None):
        """An outbound message's state by its id or its idempotency key; None when unknown."""
        if idempotency_key:
            return await self.db.run(outbound.by_idempotency_key, idempotency_key)
        return await self.db.run(outbound.message_state, message_id)

    async def last_inbound_from(self, kind: str, address: str, channel_id: int) -> float | None:
        """When identity (kind, address) last wrote on this channel (epoch seconds), or None."""
        return await self.db.run(outbound.last_inbound, kind, address, channel_id)
