"""The unified history's schema as numbered migrations (`PRAGMA user_version`).

Migration N turns a database at version N-1 into version N. Never edit a migration that has
shipped: add the next one. (Past 600 lines by nature: the whole schema's history, one
migration after another, each with the reason it was added.)
"""

from __future__ import annotations

from omniconsole.store.search import INDEX_OLD_HANDOFF_NOTES

MIGRATIONS: list[str] = [
    # 1: the first cut of DESIGN.md's data model.
    """
    CREATE TABLE customers (
        id            INTEGER PRIMARY KEY,
        display_name  TEXT NOT NULL DEFAULT '',
        -- 'channel' while the name is what a channel told us, 'operator' once a person edited
        -- it: a channel never overwrites an operator's name.
        name_source   TEXT NOT NULL DEFAULT 'channel',
        note          TEXT NOT NULL DEFAULT '',
        attributes    TEXT NOT NULL DEFAULT '{}',
        origin        TEXT,
        merged_into   INTEGER REFERENCES customers(id),
        created_at    REAL NOT NULL
    );

    CREATE TABLE identities (
        id           INTEGER PRIMARY KEY,
        customer_id  INTEGER NOT NULL REFERENCES customers(id),
        kind         TEXT NOT NULL,
        address      TEXT NOT NULL,
        display      TEXT NOT NULL DEFAULT '',
        created_at   REAL NOT NULL,
        UNIQUE (kind, address)
    );
    CREATE INDEX identities_customer ON identities(customer_id);

    CREATE TABLE channels (
        id            INTEGER PRIMARY KEY,
        kind          TEXT NOT NULL,
        name          TEXT NOT NULL UNIQUE,
        health        TEXT NOT NULL DEFAULT 'unknown',
        health_detail TEXT NOT NULL DEFAULT '',
        health_at     REAL,
        created_at    REAL NOT NULL
    );

    CREATE TABLE conversations (
        id                INTEGER PRIMARY KEY,
        customer_id       INTEGER NOT NULL REFERENCES customers(id),
        status            TEXT NOT NULL DEFAULT 'open',
        -- The inbox lists active work (open or pending) together; one indexed column keeps
        -- the "All" view a single index range instead of a merge of two.
        bucket            TEXT GENERATED ALWAYS AS
                          (CASE WHEN status IN ('open', 'pending') THEN 'active' ELSE status END) VIRTUAL,
        assignee          TEXT,
        team              TEXT,
        priority          INTEGER NOT NULL DEFAULT 0,
        subject           TEXT NOT NULL DEFAULT '',
        opened_at         REAL NOT NULL,
        last_activity_at  REAL NOT NULL,
        last_inbound_at   REAL,
        first_response_at REAL,
        resolved_at       REAL,
        snoozed_until     REAL,
        -- Since when the customer waits for us (their first unanswered message), or NULL.
        waiting_since     REAL,
        last_message_id   INTEGER,
        preview           TEXT NOT NULL DEFAULT '',
        message_count     INTEGER NOT NULL DEFAULT 0,
        -- Channel kinds used in this conversation, space separated, in order of first use.
        channel_kinds     TEXT NOT NULL DEFAULT '',
        last_channel_id   INTEGER
    );
    CREATE INDEX conversations_bucket ON conversations(bucket, last_activity_at DESC, id DESC);
    CREATE INDEX conversations_assignee ON conversations(assignee, bucket, last_activity_at DESC, id DESC);
    CREATE INDEX conversations_customer ON conversations(customer_id, id);
    CREATE INDEX conversations_snoozed ON conversations(snoozed_until) WHERE status = 'snoozed';

    CREATE TABLE messages (
        id               INTEGER PRIMARY KEY,
        conversation_id  INTEGER NOT NULL REFERENCES conversations(id),
        customer_id      INTEGER NOT NULL REFERENCES customers(id),
        channel_id       INTEGER REFERENCES channels(id),
        identity_id      INTEGER REFERENCES identities(id),
        direction        TEXT NOT NULL,
        author           TEXT NOT NULL DEFAULT '',
        body             TEXT NOT NULL DEFAULT '',
        subject          TEXT NOT NULL DEFAULT '',
        external_id      TEXT,
        thread_key       TEXT,
        reply_to_keys    TEXT,
        reply_to_external_id TEXT,
        created_at       REAL NOT NULL,
        edited_at        REAL,
        state            TEXT,
        error            TEXT NOT NULL DEFAULT '',
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  REAL,
        flags            TEXT NOT NULL DEFAULT '',
        meta             TEXT
    );
    CREATE UNIQUE INDEX messages_external ON messages(channel_id, external_id) WHERE external_id IS NOT NULL;
    CREATE INDEX messages_conversation ON messages(conversation_id, id);
    CREATE INDEX messages_thread ON messages(thread_key) WHERE thread_key IS NOT NULL;
    CREATE INDEX messages_outbox ON messages(next_attempt_at) WHERE state IN ('queued', 'sending');

    CREATE TABLE attachments (
        id          INTEGER PRIMARY KEY,
        message_id  INTEGER NOT NULL REFERENCES messages(id),
        filename    TEXT NOT NULL,
        mime_type   TEXT NOT NULL DEFAULT 'application/octet-stream',
        size        INTEGER,
        sha256      TEXT,
        path        TEXT,
        note        TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX attachments_message ON attachments(message_id);

    CREATE TABLE labels (
        id    INTEGER PRIMARY KEY,
        name  TEXT NOT NULL UNIQUE,
        color TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE conversation_labels (
        conversation_id INTEGER NOT NULL REFERENCES conversations(id),
        label_id        INTEGER NOT NULL REFERENCES labels(id),
        PRIMARY KEY (conversation_id, label_id)
    ) WITHOUT ROWID;
    CREATE TABLE customer_labels (
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        label_id    INTEGER NOT NULL REFERENCES labels(id),
        PRIMARY KEY (customer_id, label_id)
    ) WITHOUT ROWID;

    CREATE TABLE operators (
        login        TEXT PRIMARY KEY,
        display_name TEXT NOT NULL DEFAULT '',
        role         TEXT NOT NULL DEFAULT 'agent',
        teams        TEXT NOT NULL DEFAULT '[]',
        capacity     INTEGER NOT NULL DEFAULT 0,
        created_at   REAL NOT NULL
    );

    CREATE TABLE connector_state (
        channel_id INTEGER NOT NULL REFERENCES channels(id),
        key        TEXT NOT NULL,
        value      TEXT,
        updated_at REAL NOT NULL,
        PRIMARY KEY (channel_id, key)
    ) WITHOUT ROWID;

    -- Who runs the connectors: one row per database, renewed by the holder's heartbeat.
    CREATE TABLE leases (
        name         TEXT PRIMARY KEY,
        holder       TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        host         TEXT NOT NULL,
        acquired_at  REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        expires_at   REAL NOT NULL
    ) WITHOUT ROWID;

    -- Append-only; AUTOINCREMENT so an id is never reused and followers can trust `id > ?`.
    CREATE TABLE events (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        at              REAL NOT NULL,
        kind            TEXT NOT NULL,
        actor           TEXT NOT NULL DEFAULT '',
        conversation_id INTEGER,
        customer_id     INTEGER,
        message_id      INTEGER,
        payload         TEXT
    );

    -- Full-text index of message bodies. External content (the text lives once, in messages);
    -- the customer id is an indexed column so a one-customer search is an FTS intersection
    -- instead of a scan of every match of a common word. Only 3-character prefixes are
    -- indexed: each prefix length costs about a quarter of the ingest rate (measured).
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        body, customer_id, content='messages', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2', prefix='3'
    );
    -- Customers by name and every identity address; rowid = customer id.
    CREATE VIRTUAL TABLE customers_fts USING fts5(
        name, identities, tokenize='unicode61 remove_diacritics 2', prefix='2 3'
    );
    """,
    # 2: what each operator has read, and who is looking at or typing in which conversation.
    """
    CREATE TABLE reads (
        operator        TEXT NOT NULL,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id),
        last_message_id INTEGER NOT NULL,
        PRIMARY KEY (operator, conversation_id)
    ) WITHOUT ROWID;

    -- Presence is soft state: rows older than a few seconds mean nothing, so it is kept out
    -- of the events log (it would flood it) and polled for the open conversation only.
    CREATE TABLE presence (
        operator        TEXT PRIMARY KEY,
        conversation_id INTEGER,
        typing          INTEGER NOT NULL DEFAULT 0,
        updated_at      REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 3: one customer across channels: "possibly the same person" suggestions, merges that can
    # be undone exactly, and erasure of a person's data (their counts stay for statistics).
    """
    -- One row per unordered pair of customers (customer_id < other_id). A dismissed pair
    -- stays dismissed: the same evidence never suggests it again.
    CREATE TABLE merge_suggestions (
        id           INTEGER PRIMARY KEY,
        customer_id  INTEGER NOT NULL REFERENCES customers(id),
        other_id     INTEGER NOT NULL REFERENCES customers(id),
        reason       TEXT NOT NULL,
        status       TEXT NOT NULL DEFAULT 'open',
        created_at   REAL NOT NULL,
        decided_by   TEXT,
        decided_at   REAL,
        UNIQUE (customer_id, other_id)
    );
    CREATE INDEX merge_suggestions_other ON merge_suggestions(other_id);

    -- A merge moves rows from `merged_id` to `survivor_id`; `moved` (JSON) lists exactly
    -- which, so an unmerge puts back those rows and no others.
    CREATE TABLE merges (
        id           INTEGER PRIMARY KEY,
        survivor_id  INTEGER NOT NULL REFERENCES customers(id),
        merged_id    INTEGER NOT NULL REFERENCES customers(id),
        actor        TEXT NOT NULL,
        reason       TEXT NOT NULL DEFAULT '',
        at           REAL NOT NULL,
        moved        TEXT NOT NULL,
        undone_by    TEXT,
        undone_at    REAL
    );
    CREATE INDEX merges_survivor ON merges(survivor_id);
    CREATE INDEX merges_merged ON merges(merged_id);

    ALTER TABLE customers ADD COLUMN erased_at REAL;
    """,
    # 4: an operator's phone extension, so a ringing call pops the caller's card in the window
    # of the operator whose phone rings. One extension rings one operator.
    """
    ALTER TABLE operators ADD COLUMN extension TEXT;
    CREATE UNIQUE INDEX operators_extension ON operators(extension) WHERE extension IS NOT NULL;
    """,
    # 5: a channel's word about a message we sent that arrived before our own record of the
    # send (a WhatsApp status webhook can overtake the answer to the send itself). Kept here
    # and applied when the send is recorded; forgotten after a day.
    """
    CREATE TABLE early_deliveries (
        channel_id  INTEGER NOT NULL,
        external_id TEXT NOT NULL,
        state       TEXT NOT NULL,
        error       TEXT NOT NULL DEFAULT '',
        at          REAL NOT NULL,
        PRIMARY KEY (channel_id, external_id, state)
    ) WITHOUT ROWID;
    """,
    # 6: how many conversations each view holds, kept by triggers. Counting them at every
    # window start and every refresh cost ~30 ms per 100,000 conversations; a conversation
    # changes bucket or assignee rarely, so the triggers cost next to nothing.
    """
    CREATE TABLE conversation_counts (
        bucket   TEXT NOT NULL,
        assignee TEXT NOT NULL DEFAULT '',  -- '' for unassigned
        n        INTEGER NOT NULL,
        PRIMARY KEY (bucket, assignee)
    ) WITHOUT ROWID;
    INSERT INTO conversation_counts (bucket, assignee, n)
        SELECT bucket, coalesce(assignee, ''), count(*) FROM conversations GROUP BY 1, 2;

    CREATE TRIGGER conversation_counts_insert AFTER INSERT ON conversations BEGIN
        INSERT INTO conversation_counts (bucket, assignee, n) VALUES (new.bucket, coalesce(new.assignee, ''), 1)
            ON CONFLICT (bucket, assignee) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER conversation_counts_update AFTER UPDATE OF status, assignee ON conversations
    WHEN old.bucket IS NOT new.bucket OR old.assignee IS NOT new.assignee BEGIN
        UPDATE conversation_counts SET n = n - 1 WHERE bucket = old.bucket AND assignee = coalesce(old.assignee, '');
        INSERT INTO conversation_counts (bucket, assignee, n) VALUES (new.bucket, coalesce(new.assignee, ''), 1)
            ON CONFLICT (bucket, assignee) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER conversation_counts_delete AFTER DELETE ON conversations BEGIN
        UPDATE conversation_counts SET n = n - 1 WHERE bucket = old.bucket AND assignee = coalesce(old.assignee, '');
    END;
    """,
    # reactions: an emoji on a message, kept on the message it is on (one row per person and
    # message: their current reaction), never as a customer message (store/reactions.py).
    """
    CREATE TABLE reactions (
        id                 INTEGER PRIMARY KEY,
        channel_id         INTEGER NOT NULL REFERENCES channels(id),
        -- The channel's id of the message reacted to; message_id is ours, NULL when unknown.
        target_external_id TEXT NOT NULL,
        message_id         INTEGER REFERENCES messages(id),
        identity_kind      TEXT NOT NULL,
        address            TEXT NOT NULL,
        customer_id        INTEGER REFERENCES customers(id),
        sender_name        TEXT NOT NULL DEFAULT '',
        emoji              TEXT NOT NULL DEFAULT '',  -- '' once taken off
        external_id        TEXT,                      -- the reaction's own id, where the channel gives one
        reacted_at         REAL NOT NULL,
        recorded_at        REAL NOT NULL,
        UNIQUE (channel_id, target_external_id, identity_kind, address)
    );
    CREATE INDEX reactions_message ON reactions(message_id) WHERE message_id IS NOT NULL;
    CREATE INDEX reactions_identity ON reactions(identity_kind, address);
    -- A reaction belongs to whoever holds the identity that made it: a merge or an unmerge
    -- moves it along, and erasing the person (their identities go) erases their reactions.
    CREATE TRIGGER reactions_identity_moved AFTER UPDATE OF customer_id ON identities BEGIN
        UPDATE reactions SET customer_id = new.customer_id WHERE identity_kind = new.kind AND address = new.address;
    END;
    CREATE TRIGGER reactions_identity_deleted AFTER DELETE ON identities BEGIN
        DELETE FROM reactions WHERE identity_kind = old.kind AND address = old.address;
    END;
    """,
    # N: the answers library (canned answers, knowledge-base articles, operator scripts) and
    # what operators did with it. One row per (article key, language variant); '' = no language.
    # `source` is 'file' for articles synced by `kb import` (only those are pruned) and
    # 'window' for articles written in the window. Lists and unknown front-matter keys are
    # JSON text, read and written by Python only.
    """
    CREATE TABLE kb_articles (
        id           INTEGER PRIMARY KEY,
        article_key  TEXT NOT NULL,
        language     TEXT NOT NULL DEFAULT '',
        kind         TEXT NOT NULL DEFAULT 'article',
        title        TEXT NOT NULL,
        shortcode    TEXT,
        tags         TEXT NOT NULL DEFAULT '[]',
        questions    TEXT NOT NULL DEFAULT '[]',
        channels     TEXT NOT NULL DEFAULT '[]',
        internal     INTEGER NOT NULL DEFAULT 0,
        attachments  TEXT NOT NULL DEFAULT '[]',
        extra        TEXT NOT NULL DEFAULT '{}',
        body         TEXT NOT NULL DEFAULT '',
        source       TEXT NOT NULL DEFAULT 'window',
        source_path  TEXT,
        content_hash TEXT NOT NULL,
        status       TEXT NOT NULL DEFAULT 'published',
        created_at   REAL NOT NULL,
        updated_at   REAL NOT NULL,
        updated_by   TEXT NOT NULL DEFAULT '',
        UNIQUE (article_key, language)
    );

    -- Assist acceptance (METRICS.md): each suggestion shown and each insertion, with whether
    -- the text was edited before sending (NULL until the reply is sent).
    CREATE TABLE kb_usage (
        id              INTEGER PRIMARY KEY,
        article_key     TEXT NOT NULL,
        language        TEXT NOT NULL DEFAULT '',
        action          TEXT NOT NULL,
        operator        TEXT NOT NULL,
        conversation_id INTEGER,
        message_id      INTEGER,
        edited          INTEGER,
        at              REAL NOT NULL
    );
    CREATE INDEX kb_usage_article ON kb_usage(article_key, action);
    CREATE INDEX kb_usage_conversation ON kb_usage(conversation_id);
    """,
    # 7 (issue #14 "The events log"): each event's retention class (`keep`: live events are
    # pruned after `[retention] live_days`, history and audit are kept; see store/events.py);
    # edits' previous versions in their own table instead of the events' payloads; the order of
    # edits made within one second (`edit_seq`); files an edit replaced stay, marked.
    """
    ALTER TABLE events ADD COLUMN keep TEXT NOT NULL DEFAULT 'history';
    UPDATE events SET keep = 'live' WHERE kind IN ('message.received', 'message.queued', 'message.sent',
        'message.delivery', 'message.retrying', 'message.failed', 'message.edited', 'note.added',
        'conversation.read', 'channel.health', 'call.ringing');
    UPDATE events SET keep = 'audit' WHERE kind IN ('customer.exported', 'customer.erased', 'customer.merged',
        'customer.merged_away', 'customer.unmerged', 'operator.added', 'operator.removed');
    -- No index for pruning (it would cost every ingest): events are appended in time order,
    -- so store/events.py finds the age boundary by bisecting ids.

    ALTER TABLE messages ADD COLUMN edit_seq INTEGER;
    -- One row per version an edit replaced: its text, and when it was written (edited_at, NULL
    -- for the original) and replaced (replaced_at), epoch seconds.
    CREATE TABLE message_versions (
        id          INTEGER PRIMARY KEY,
        message_id  INTEGER NOT NULL REFERENCES messages(id),
        body        TEXT NOT NULL DEFAULT '',
        edited_at   REAL,
        edit_seq    INTEGER,
        replaced_at REAL NOT NULL
    );
    CREATE INDEX message_versions_message ON message_versions(message_id);
    INSERT INTO message_versions (message_id, body, replaced_at)
        SELECT message_id, json_extract(payload, '$.previous'), at FROM events
        WHERE kind = 'message.edited' AND message_id IN (SELECT id FROM messages) AND json_valid(payload)
        AND json_type(payload, '$.previous') = 'text' ORDER BY id;
    UPDATE events SET payload = NULL WHERE kind = 'message.edited';

    ALTER TABLE attachments ADD COLUMN replaced_at REAL;
    ALTER TABLE attachments ADD COLUMN version_id INTEGER REFERENCES message_versions(id);
    CREATE INDEX attachments_version ON attachments(version_id) WHERE version_id IS NOT NULL;
    """,
    # (issue #13 "Roles that hold"): the audit part of the events log cannot be deleted or
    # rewritten by any statement; an erasure may only empty an audit event's payload (the
    # person's data), so that an erasure happened, by whom and when stays.
    """
    CREATE TRIGGER events_audit_kept BEFORE DELETE ON events WHEN OLD.keep = 'audit'
    BEGIN
        SELECT RAISE(ABORT, 'the audit trail cannot be deleted');
    END;
    CREATE TRIGGER events_audit_fixed BEFORE UPDATE OF id, at, kind, actor, conversation_id, customer_id, message_id, keep
        ON events WHEN OLD.keep = 'audit'
    BEGIN
        SELECT RAISE(ABORT, 'the audit trail cannot be rewritten');
    END;
    CREATE TRIGGER events_audit_payload BEFORE UPDATE OF payload ON events
        WHEN OLD.keep = 'audit' AND NEW.payload IS NOT NULL
    BEGIN
        SELECT RAISE(ABORT, 'an audit event''s payload may only be emptied (by an erasure)');
    END;
    """,
    # surveys (issue #20): each CSAT or NPS question sent, with who handled the conversation
    # when it was sent (an operator's login or 'bot'), and its answer. `token` names the survey
    # in the e-mail link page; the score is NULL until answered. Figures: store/analytics.py.
    """
    CREATE TABLE surveys (
        id              INTEGER PRIMARY KEY,
        kind            TEXT NOT NULL,             -- 'csat' (1-5) or 'nps' (0-10)
        conversation_id INTEGER NOT NULL REFERENCES conversations(id),
        customer_id     INTEGER NOT NULL REFERENCES customers(id),
        channel_id      INTEGER REFERENCES channels(id),
        identity_id     INTEGER REFERENCES identities(id),
        message_id      INTEGER REFERENCES messages(id),
        handled_by      TEXT NOT NULL DEFAULT '',
        language        TEXT NOT NULL DEFAULT 'en',
        token           TEXT NOT NULL UNIQUE,
        sent_at         REAL NOT NULL,
        score           INTEGER,
        comment         TEXT NOT NULL DEFAULT '',
        answered_at     REAL,
        answer_message_id INTEGER REFERENCES messages(id)
    );
    CREATE INDEX surveys_customer ON surveys(customer_id, kind, sent_at);
    -- CSAT at most once per conversation, as a constraint (two cores or a restart cannot double it).
    CREATE UNIQUE INDEX surveys_csat_once ON surveys(conversation_id) WHERE kind = 'csat';
    CREATE INDEX surveys_conversation ON surveys(conversation_id);
    CREATE INDEX surveys_answered ON surveys(answered_at) WHERE answered_at IS NOT NULL;
    -- Status changes of a conversation, for figures: a partial index, so ingest (which writes
    -- none of these kinds on its hot path) pays nothing for it.
    CREATE INDEX events_status ON events(conversation_id, id) WHERE kind IN ('conversation.resolved',
        'conversation.open', 'conversation.reopened', 'conversation.snoozed', 'conversation.woke',
        'conversation.pending', 'bot.handoff');
    CREATE INDEX conversations_opened ON conversations(opened_at);
    -- The wallboard's unattended count and longest wait without reading every open conversation.
    CREATE INDEX conversations_waiting ON conversations(waiting_since) WHERE status = 'open' AND waiting_since IS NOT NULL;
    CREATE INDEX conversations_resolved ON conversations(resolved_at) WHERE resolved_at IS NOT NULL;
    """,
    # Routing (issue #18): operator status with the window that keeps it (pid, host, heartbeat,
    # so a window that died is detected), skills and the moment of their last automatic
    # assignment (round robin, "idle longest"); the queue that holds a conversation and since
    # when it waits there; and the one schedule the core's scheduler wakes for (return timers,
    # offline grace now; SLA, snooze and rule timers later). A schedule row is deleted in the
    # transaction that acts on it, so a restart fires nothing twice.
    """
    ALTER TABLE operators ADD COLUMN status TEXT NOT NULL DEFAULT 'offline';
    ALTER TABLE operators ADD COLUMN status_at REAL;
    ALTER TABLE operators ADD COLUMN skills TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE operators ADD COLUMN last_assigned_at REAL;
    ALTER TABLE operators ADD COLUMN window_pid INTEGER;
    ALTER TABLE operators ADD COLUMN window_host TEXT;
    ALTER TABLE operators ADD COLUMN heartbeat_at REAL;

    ALTER TABLE conversations ADD COLUMN queue TEXT;
    ALTER TABLE conversations ADD COLUMN queued_at REAL;
    ALTER TABLE conversations ADD COLUMN assigned_at REAL;
    -- The skills a queued conversation needs (JSON list), decided when it was queued.
    ALTER TABLE conversations ADD COLUMN needs TEXT NOT NULL DEFAULT '[]';
    CREATE INDEX conversations_queue ON conversations(queue, priority DESC, queued_at, id)
        WHERE queue IS NOT NULL AND assignee IS NULL;

    CREATE TABLE schedule (
        id              INTEGER PRIMARY KEY,
        kind            TEXT NOT NULL,
        conversation_id INTEGER,
        subject         TEXT NOT NULL DEFAULT '',
        due_at          REAL NOT NULL,
        payload         TEXT,
        created_at      REAL NOT NULL
    );
    CREATE UNIQUE INDEX schedule_one ON schedule(kind, coalesce(conversation_id, 0), subject);
    CREATE INDEX schedule_due ON schedule(due_at);
    """,
    # issue #17 "A bot that answers typical requests": one row per conversation the bot took
    # part in. `state` is bot (the bot answers) | human (handed off: the bot is silent until the
    # conversation is resolved) | done (resolved). `answered` holds the article keys sent, space
    # separated; `offered` the buttons last offered as JSON text (a numbered reply maps back);
    # `outcome` confirmed | assumed | withdrawn, `repeat_contact` 1 when a customer came back
    # within 7 days of a confirmed resolution (METRICS.md "Bot"). Times are epoch seconds.
    """
    CREATE TABLE bot_conversations (
        conversation_id  INTEGER PRIMARY KEY REFERENCES conversations(id),
        customer_id      INTEGER NOT NULL,
        state            TEXT NOT NULL DEFAULT 'bot',
        language         TEXT NOT NULL DEFAULT '',
        topic            TEXT NOT NULL DEFAULT '',
        unconfirmed      INTEGER NOT NULL DEFAULT 0,
        answered         TEXT NOT NULL DEFAULT '',
        last_question    TEXT NOT NULL DEFAULT '',
        awaiting         TEXT NOT NULL DEFAULT '',
        offered          TEXT NOT NULL DEFAULT '',
        handoff_reason   TEXT NOT NULL DEFAULT '',
        outcome          TEXT NOT NULL DEFAULT '',
        repeat_contact   INTEGER NOT NULL DEFAULT 0,
        started_at       REAL NOT NULL,
        updated_at       REAL NOT NULL,
        resolved_at      REAL
    );
    CREATE INDEX bot_conversations_customer ON bot_conversations(customer_id, resolved_at);
    CREATE INDEX bot_conversations_state ON bot_conversations(state, updated_at);
    """,
    # 8 (issue #22 "CRM integration"): "do not contact" on the customer (why, in words, and when,
    # epoch seconds; NULL: the company may write first), and each `[[webhooks]]` endpoint's
    # position in the events log with its delivery state (store/webhooks.py).
    """
    ALTER TABLE customers ADD COLUMN do_not_contact TEXT;
    ALTER TABLE customers ADD COLUMN do_not_contact_at REAL;
    CREATE TABLE webhook_cursors (
        endpoint        TEXT PRIMARY KEY,
        last_event_id   INTEGER NOT NULL,
        delivered       INTEGER NOT NULL DEFAULT 0,
        failures        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT NOT NULL DEFAULT '',
        last_success_at REAL,
        next_attempt_at REAL,
        updated_at      REAL NOT NULL
    );
    -- Conversations the company started ('company'; NULL: the customer did): figures measure
    -- them from the customer's first reply (METRICS.md). A script's idempotency key names the
    -- message it queued, so a retried request queues nothing twice.
    ALTER TABLE conversations ADD COLUMN started_by TEXT;
    CREATE TABLE outbound_requests (
        idempotency_key  TEXT PRIMARY KEY,
        message_id       INTEGER NOT NULL REFERENCES messages(id),
        created_at       REAL NOT NULL
    );
    """,
    # (issue #19 "Automation rules"): where the rules' follower of the events log stands, the
    # last event of each conversation the rules' pipeline step has looked at, and each firing of
    # a rule: on which conversation, how many actions (the hourly budget), the events its
    # actions appended (first..last id) and the chain of rules that led to it (no rule fires
    # twice in one chain: loops end).
    """
    CREATE TABLE rule_cursor (
        name            TEXT PRIMARY KEY,
        last_event_id   INTEGER NOT NULL,
        updated_at      REAL NOT NULL
    );
    CREATE TABLE rule_marks (
        conversation_id INTEGER PRIMARY KEY REFERENCES conversations(id),
        last_event_id   INTEGER NOT NULL
    );
    CREATE TABLE rule_firings (
        id              INTEGER PRIMARY KEY,
        rule            TEXT NOT NULL,
        conversation_id INTEGER,
        actions         INTEGER NOT NULL,
        first_event_id  INTEGER,
        last_event_id   INTEGER,
        chain           TEXT NOT NULL DEFAULT '',
        at              REAL NOT NULL
    );
    CREATE INDEX rule_firings_conversation ON rule_firings(conversation_id, at);
    CREATE INDEX rule_firings_events ON rule_firings(last_event_id);
    """,
    # (issue #18, two windows of one operator): each window an operator has open keeps its own
    # heartbeat slot (`window` is the id the window chose when it opened; pid and host where it
    # runs; epoch seconds), so closing one leaves the operator online while another lives. The
    # operators' window_pid/window_host/heartbeat_at columns are no longer written.
    """
    CREATE TABLE operator_windows (
        login         TEXT NOT NULL,
        window        TEXT NOT NULL,
        pid           INTEGER NOT NULL,
        host          TEXT NOT NULL,
        opened_at     REAL NOT NULL,
        heartbeat_at  REAL NOT NULL,
        PRIMARY KEY (login, window)
    );
    -- (issue #17) What the bot did in a conversation, step by step (a JSON list of objects:
    -- answers with their article and confidence, the handoff with its reason and the
    -- customer's question), for the block at the top of the operator's timeline.
    ALTER TABLE bot_conversations ADD COLUMN report TEXT NOT NULL DEFAULT '';
    """,
    # issue #19 "SLA policies" (store/sla.py): a conversation gets SLA clocks when it first passes
    # the conversation pipeline (`armed_at`; imports never do), with the policy that applies, the
    # nearest due moment of its running targets and how urgent that is (0 on time, 1 warned,
    # 2 breached: the inbox's countdown and the "At risk" view, read in the page query). Each
    # target's current instance (its start is its identity), state, due time and the highest
    # share already recorded, so a warning or breach is recorded once. Epoch seconds.
    """
    CREATE TABLE sla_conversations (
        conversation_id  INTEGER PRIMARY KEY REFERENCES conversations(id),
        policy           TEXT NOT NULL DEFAULT '',
        armed_at         REAL NOT NULL,
        due_at           REAL,
        stage            INTEGER NOT NULL DEFAULT 0,
        updated_at       REAL NOT NULL
    );
    CREATE INDEX sla_conversations_due ON sla_conversations(due_at, conversation_id) WHERE due_at IS NOT NULL;
    CREATE TABLE sla_targets (
        conversation_id  INTEGER NOT NULL REFERENCES conversations(id),
        target           TEXT NOT NULL,
        policy           TEXT NOT NULL,
        started_at       REAL NOT NULL,
        state            TEXT NOT NULL,
        due_at           REAL,
        fired            REAL NOT NULL DEFAULT 0,
        updated_at       REAL NOT NULL,
        PRIMARY KEY (conversation_id, target)
    );
    -- The scheduler's earliest row of each kind it handles, without reading every row of the kind
    -- (one SLA row per running target: 100,000s of them).
    CREATE INDEX schedule_kind_due ON schedule(kind, due_at);
    """,
    # issue #15 (the inbox): blocked senders (a whole customer, or one identity of theirs) and
    # the conversations their block moved to Spam with the status each had, so an unblock puts
    # back exactly that (store/spam.py); each operator's remembered inbox order; partial indexes
    # for the priority and waiting orders (only high/urgent rows, only waiting rows, so ingest
    # pays for them only where they hold something); labels by label for the label filter.
    """
    CREATE TABLE blocks (
        id          INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        identity_id INTEGER REFERENCES identities(id),  -- NULL: every identity of the customer
        blocked_by  TEXT NOT NULL,
        blocked_at  REAL NOT NULL
    );
    CREATE UNIQUE INDEX blocks_one ON blocks(customer_id, coalesce(identity_id, 0));
    CREATE INDEX blocks_identity ON blocks(identity_id) WHERE identity_id IS NOT NULL;
    CREATE TABLE spam_conversations (
        conversation_id INTEGER PRIMARY KEY REFERENCES conversations(id),
        block_id        INTEGER NOT NULL REFERENCES blocks(id),
        previous_status TEXT NOT NULL,
        moved_at        REAL NOT NULL
    );
    CREATE INDEX spam_conversations_block ON spam_conversations(block_id);
    CREATE TABLE operator_preferences (
        operator   TEXT NOT NULL,
        name       TEXT NOT NULL,
        value      TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (operator, name)
    ) WITHOUT ROWID;
    CREATE INDEX conversations_priority ON conversations(bucket, priority DESC, last_activity_at DESC, id DESC)
        WHERE priority > 0;
    CREATE INDEX conversations_assignee_priority
        ON conversations(assignee, bucket, priority DESC, last_activity_at DESC, id DESC) WHERE priority > 0;
    CREATE INDEX conversations_waiting_order ON conversations(bucket, waiting_since, id) WHERE waiting_since IS NOT NULL;
    CREATE INDEX conversations_assignee_waiting ON conversations(assignee, bucket, waiting_since, id)
        WHERE waiting_since IS NOT NULL;
    CREATE INDEX conversation_labels_label ON conversation_labels(label_id, conversation_id);
    """,
    # (issue #20 "Surveys and analytics", speed budgets): every figure of every conversation as
    # dated rows, rewritten in the transaction that changes them (store/facts.py documents the
    # columns); reports fold the rows of a period through (figure, ended_at, value). Existing
    # conversations are queued for `facts.backfill`, which reports run first.
    """
    CREATE TABLE conversation_facts (
        id               INTEGER PRIMARY KEY,
        conversation_id  INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        figure           TEXT NOT NULL,
        ended_at         REAL NOT NULL,
        value            REAL,
        operator         TEXT NOT NULL,
        channel          TEXT NOT NULL,
        labels           TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX conversation_facts_figure ON conversation_facts(figure, ended_at, value);
    -- In value order: a report of most of the history reads its medians' ranks by skipping.
    CREATE INDEX conversation_facts_value ON conversation_facts(figure, value, ended_at);
    CREATE INDEX conversation_facts_conversation ON conversation_facts(conversation_id);
    CREATE TABLE conversation_facts_backfill (
        conversation_id  INTEGER PRIMARY KEY
    );
    INSERT INTO conversation_facts_backfill (conversation_id) SELECT id FROM conversations;
    -- Open conversations waiting for a reply now (`waiting_since` set), kept by triggers so the
    -- wallboard reads one row instead of counting the `conversations_waiting` index.
    CREATE TABLE live_counts (
        name  TEXT PRIMARY KEY,
        n     INTEGER NOT NULL
    );
    INSERT INTO live_counts (name, n)
        SELECT 'waiting', count(*) FROM conversations WHERE status = 'open' AND waiting_since IS NOT NULL;
    CREATE TRIGGER live_counts_waiting_insert AFTER INSERT ON conversations
    WHEN new.status = 'open' AND new.waiting_since IS NOT NULL BEGIN
        UPDATE live_counts SET n = n + 1 WHERE name = 'waiting';
    END;
    CREATE TRIGGER live_counts_waiting_update AFTER UPDATE OF status, waiting_since ON conversations
    WHEN (old.status = 'open' AND old.waiting_since IS NOT NULL) IS NOT (new.status = 'open' AND new.waiting_since IS NOT NULL)
    BEGIN
        UPDATE live_counts SET n = n + CASE WHEN new.status = 'open' AND new.waiting_since IS NOT NULL THEN 1 ELSE -1 END
        WHERE name = 'waiting';
    END;
    CREATE TRIGGER live_counts_waiting_delete AFTER DELETE ON conversations
    WHEN old.status = 'open' AND old.waiting_since IS NOT NULL BEGIN
        UPDATE live_counts SET n = n - 1 WHERE name = 'waiting';
    END;
    """,
    # Snooze ends are rows of the one schedule (the core's scheduler wakes at the earliest, no
    # poll): a row for each conversation snoozed before this version.
    """
    INSERT INTO schedule (kind, conversation_id, subject, due_at, payload, created_at)
    SELECT 'snooze.end', id, '', snoozed_until, '{}', 0 FROM conversations
    WHERE status = 'snoozed' AND snoozed_until IS NOT NULL;
    """,
    # (issue #21 "Journeys"): a conversation's topic as detected from the customer's first
    # messages by the answers engine (a library tag; '' when none was found; NULL: not looked
    # at yet; an operator's label that names a topic wins over it, store/journeys.py), and
    # where the customer came from when it began (a Telegram deep-link payload, a web chat
    # page, an ad's URL); and an index for walking merge trees.
    """
    ALTER TABLE conversations ADD COLUMN topic TEXT;
    ALTER TABLE conversations ADD COLUMN origin TEXT;
    CREATE INDEX conversations_topic_unknown ON conversations(id) WHERE topic IS NULL;
    -- A customer's merge tree is walked downwards (who was merged into them): one customer's
    -- journey reads it, and without this every step scanned all customers (42 ms at 100k).
    CREATE INDEX customers_merged_into ON customers(merged_into) WHERE merged_into IS NOT NULL;
    """,
    # (issue #24 "The operator's language"): the language of an operator's window and CLI
    # ('en', 'ru'; NULL: not chosen, the config's `[ui] language` or the locale decides).
    """
    ALTER TABLE operators ADD COLUMN language TEXT;
    """,
    # The bot's handoff notes written before they were indexed (store/search.py, where every
    # statement on the full-text indexes lives).
    INDEX_OLD_HANDOFF_NOTES,
    # Journeys' outcome table as the core computed it (omniconsole/analytics/journey_service.py
    # `outcome_table_extension`): one row per (topic, resolving channel kind) cell with its
    # figures as JSON text, and one row saying when it was computed (float epoch seconds) and
    # with which settings (a JSON text key), so every window reads it instead of the history.
    """
    CREATE TABLE journey_outcomes (
        topic   TEXT NOT NULL,
        channel TEXT NOT NULL,
        figures TEXT NOT NULL,
        PRIMARY KEY (topic, channel)
    );
    CREATE TABLE journey_outcomes_computed (
        id           INTEGER PRIMARY KEY CHECK (id = 1),
        computed_at  REAL NOT NULL,
        settings_key TEXT NOT NULL
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
