"""The answers library's tables: articles (canned answers, knowledge-base articles, operator
scripts, each in language variants) and what operators did with them (suggestions shown,
insertions, edited before sending or not).

An article is one row per (article key, language); language '' means "any language". Rows
that `kb import` wrote have `source = 'file'` and are the only ones `--prune` removes; rows
written in the window have `source = 'window'`. Every change to the library appends an event
(`kb.article_created`, `kb.article_updated`, `kb.article_deleted`, `kb.article_proposed`) with
who and when, in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass, field

from omniconsole.store.actions import add_event

KINDS = ("answer", "article", "script")


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    """One language variant of one article, as stored and as written to a file.

    `key` is the article's id (shared by its variants), `language` 'ru', 'en' or '' (any);
    `tags`, `questions`, `channels` (channel kinds where it may be used; empty = all) and
    `attachments` (file names beside the article's file) are tuples of strings; `extra` holds
    front-matter keys this version does not know, kept as they were."""

    key: str
    title: str
    body: str = ""
    language: str = ""
    kind: str = "article"
    shortcode: str | None = None
    tags: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    internal: bool = False
    attachments: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)
    source: str = "window"
    source_path: str | None = None
    status: str = "published"
    updated_at: float = 0.0
    updated_by: str = ""

    @property
    def content_hash(self) -> str:
        """A digest of what the article says (not where it came from): equal hashes mean an
        import has nothing to change."""
        canonical = json.dumps(
            [
                self.key,
                self.title,
                self.body,
                self.language,
                self.kind,
                self.shortcode,
                list(self.tags),
                list(self.questions),
                list(self.channels),
                self.internal,
                list(self.attachments),
                self.extra,
            ],
            ensure_ascii=False,
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SyncLine:
    """What a sync did (or, dry, would do) to one article: `action` is 'new', 'updated',
    'unchanged' or 'removed'."""

    key: str
    language: str
    action: str
    path: str | None


@dataclass(frozen=True, slots=True)
class ArticleFigures:
    """Usage of one article variant: suggestions shown, insertions, insertions sent edited
    (of those whose reply was sent), and the last insertion (epoch seconds, or None)."""

    shown: int = 0
    used: int = 0
    sent: int = 0
    edited: int = 0
    last_used: float | None = None

    @property
    def share_edited(self) -> float | None:
        """Edited ÷ sent insertions; None before any was sent."""
        return self.edited / self.sent if self.sent else None


_COLUMNS = (
    "article_key, language, kind, title, shortcode, tags, questions, channels, internal, attachments, extra,"
    " body, source, source_path, content_hash, status, created_at, updated_at, updated_by"
)


def _row_values(record: ArticleRecord, now: float, actor: str) -> tuple:
    return (
        record.key,
        record.language,
        record.kind,
        record.title,
        record.shortcode,
        json.dumps(list(record.tags), ensure_ascii=False),
        json.dumps(list(record.questions), ensure_ascii=False),
        json.dumps(list(record.channels), ensure_ascii=False),
        int(record.internal),
        json.dumps(list(record.attachments), ensure_ascii=False),
        json.dumps(record.extra, ensure_ascii=False, default=str),
        record.body,
        record.source,
        record.source_path,
        record.content_hash,
        record.status,
        now,
        now,
        actor,
    )


def _record(row: sqlite3.Row) -> ArticleRecord:
    return ArticleRecord(
        key=row["article_key"],
        title=row["title"],
        body=row["body"],
        language=row["language"],
        kind=row["kind"],
        shortcode=row["shortcode"],
        tags=tuple(json.loads(row["tags"])),
        questions=tuple(json.loads(row["questions"])),
        channels=tuple(json.loads(row["channels"])),
        internal=bool(row["internal"]),
        attachments=tuple(json.loads(row["attachments"])),
        extra=json.loads(row["extra"]),
        source=row["source"],
        source_path=row["source_path"],
        status=row["status"],
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )


def articles(conn: sqlite3.Connection, *, include_proposed: bool = False) -> list[ArticleRecord]:
    """Every article variant, by key then language; proposals (an agent's suggested change)
    only when asked."""
    sql = f"SELECT {_COLUMNS} FROM kb_articles"
    if not include_proposed:
        sql += " WHERE status = 'published'"
    return [_record(row) for row in conn.execute(sql + " ORDER BY article_key, language")]


def article(conn: sqlite3.Connection, key: str, language: str = "") -> ArticleRecord | None:
    """One article variant, or None."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM kb_articles WHERE article_key = ? AND language = ?", (key, language)).fetchone()
    return _record(row) if row else None


def _insert(conn: sqlite3.Connection, record: ArticleRecord, actor: str, now: float) -> None:
    marks = ", ".join("?" * len(_COLUMNS.split(",")))
    conn.execute(f"INSERT INTO kb_articles ({_COLUMNS}) VALUES ({marks})", _row_values(record, now, actor))


def _update(conn: sqlite3.Connection, record: ArticleRecord, actor: str, now: float) -> None:
    values = _row_values(record, now, actor)
    conn.execute(
        "UPDATE kb_articles SET kind = ?, title = ?, shortcode = ?, tags = ?, questions = ?, channels = ?, internal = ?,"
        " attachments = ?, extra = ?, body = ?, source = ?, source_path = ?, content_hash = ?, status = ?,"
        " updated_at = ?, updated_by = ? WHERE article_key = ? AND language = ?",
        (*values[2:16], now, actor, record.key, record.language),
    )


def _event(conn: sqlite3.Connection, kind: str, record_key: str, language: str, actor: str, now: float, **more) -> None:
    add_event(conn, kind, actor=actor, payload={"article": record_key, "language": language, **more}, at=now)


def sync_articles(
    conn: sqlite3.Connection,
    records: list[ArticleRecord],
    actor: str,
    *,
    prune: bool = False,
    dry_run: bool = False,
    keep_paths: frozenset[str] | set[str] = frozenset(),
    now: float | None = None,
) -> list[SyncLine]:
    """Bring the library in line with the articles read from a folder (`records`, all with
    source 'file'): new ones are added, changed ones updated, equal ones left alone; with
    `prune`, file-sourced articles absent from `records` are removed (window-written ones never).
    Articles whose file is in `keep_paths` (files that are there but were refused this time)
    are never pruned: a typo in a file does not delete its article. With `dry_run` nothing is written (run it outside a transaction) and the lines say what
    would happen. Returns one line per article, removals last."""
    now = now or time.time()
    existing = {
        (row["article_key"], row["language"]): (row["content_hash"], row["source"], row["source_path"])
        for row in conn.execute("SELECT article_key, language, content_hash, source, source_path FROM kb_articles")
    }
    lines: list[SyncLine] = []
    seen = set()
    for record in records:
        ident = (record.key, record.language)
        seen.add(ident)
        old = existing.get(ident)
        if old is None:
            action = "new"
            if not dry_run:
                _insert(conn, record, actor, now)
                _event(
                    conn, "kb.article_created", record.key, record.language, actor, now, source="file", path=record.source_path
                )
        elif old[0] == record.content_hash and old[1] == "file" and old[2] == record.source_path:
            action = "unchanged"
        else:
            action = "updated"
            if not dry_run:
                _update(conn, record, actor, now)
                _event(
                    conn, "kb.article_updated", record.key, record.language, actor, now, source="file", path=record.source_path
                )
        lines.append(SyncLine(record.key, record.language, action, record.source_path))
    if prune:
        for (key, language), (_, source, path) in sorted(existing.items()):
            if source == "file" and (key, language) not in seen and path not in keep_paths:
                if not dry_run:
                    _delete(conn, key, language, actor, now)
                lines.append(SyncLine(key, language, "removed", path))
    return lines


def save_article(conn: sqlite3.Connection, record: ArticleRecord, actor: str, *, now: float | None = None) -> str:
    """Write one article variant from the window (an admin or supervisor): 'new', 'updated' or
    'unchanged'. An article that came from a file keeps that origin (the next import may
    overwrite the edit from the file; export first to keep it)."""
    now = now or time.time()
    old = conn.execute(
        "SELECT content_hash, source, source_path FROM kb_articles WHERE article_key = ? AND language = ?",
        (record.key, record.language),
    ).fetchone()
    if old is None:
        _insert(conn, _with(record, source="window", source_path=None, status="published"), actor, now)
        _event(conn, "kb.article_created", record.key, record.language, actor, now, source="window")
        return "new"
    if old["content_hash"] == record.content_hash:
        return "unchanged"
    _update(conn, _with(record, source=old["source"], source_path=old["source_path"], status="published"), actor, now)
    _event(conn, "kb.article_updated", record.key, record.language, actor, now, source="window")
    return "updated"


def propose_article(conn: sqlite3.Connection, record: ArticleRecord, actor: str, *, now: float | None = None) -> str:
    """An agent's proposal: kept under the key `proposal/<actor>/<key>` with status
    'proposed' until an admin or supervisor publishes it (save_article) and deletes it.
    Returns the key the proposal was stored under."""
    now = now or time.time()
    key = f"proposal/{actor}/{record.key}"
    proposal = _with(record, key=key, source="window", source_path=None, status="proposed")
    conn.execute("DELETE FROM kb_articles WHERE article_key = ? AND language = ?", (key, record.language))
    _insert(conn, proposal, actor, now)
    _event(conn, "kb.article_proposed", key, record.language, actor, now, proposes=record.key)
    return key


def _with(record: ArticleRecord, **changes) -> ArticleRecord:
    values = {name: getattr(record, name) for name in record.__slots__}
    values.update(changes)
    return ArticleRecord(**values)


def _delete(conn: sqlite3.Connection, key: str, language: str, actor: str, now: float) -> bool:
    gone = conn.execute("DELETE FROM kb_articles WHERE article_key = ? AND language = ?", (key, language)).rowcount
    if gone:
        _event(conn, "kb.article_deleted", key, language, actor, now)
    return bool(gone)


def delete_article(conn: sqlite3.Connection, key: str, language: str, actor: str, *, now: float | None = None) -> bool:
    """Remove one article variant; False if there was none."""
    return _delete(conn, key, language, actor, now or time.time())


# --- usage ------------------------------------------------------------------------------------


def record_shown(
    conn: sqlite3.Connection,
    shown: list[tuple[str, str]],
    operator: str,
    conversation_id: int | None,
    *,
    now: float | None = None,
) -> None:
    """Record that these (article key, language) suggestions were shown to an operator for a
    conversation (the denominator of assist acceptance)."""
    now = now or time.time()
    for key, language in shown:
        conn.execute(
            "INSERT INTO kb_usage (article_key, language, action, operator, conversation_id, at) VALUES (?, ?, 'shown', ?, ?, ?)",
            (key, language, operator, conversation_id, now),
        )


def record_insertion(
    conn: sqlite3.Connection,
    key: str,
    language: str,
    operator: str,
    conversation_id: int | None,
    *,
    suggested: bool = False,
    now: float | None = None,
) -> int:
    """Record that an operator inserted an article into a reply (`suggested`: from the
    suggestions strip, else from the picker); returns the insertion's id for record_sent."""
    return conn.execute(
        "INSERT INTO kb_usage (article_key, language, action, operator, conversation_id, at) VALUES (?, ?, ?, ?, ?, ?)"
        " RETURNING id",
        (key, language, "accepted" if suggested else "inserted", operator, conversation_id, now or time.time()),
    ).fetchone()[0]


def record_sent(conn: sqlite3.Connection, insertion_ids: list[int], message_id: int | None, edited: bool) -> None:
    """The reply holding these insertions was sent: whether the operator changed the inserted
    text before sending, and which message it became."""
    for insertion_id in insertion_ids:
        conn.execute("UPDATE kb_usage SET message_id = ?, edited = ? WHERE id = ?", (message_id, int(edited), insertion_id))


def article_figures(conn: sqlite3.Connection) -> dict[tuple[str, str], ArticleFigures]:
    """Usage per (article key, language): suggestions shown, times used (picker and suggestion
    insertions), how many of the sent ones were edited, and when last used."""
    figures: dict[tuple[str, str], ArticleFigures] = {}
    for row in conn.execute(
        "SELECT article_key, language,"
        " sum(CASE WHEN action = 'shown' THEN 1 ELSE 0 END) AS shown,"
        " sum(CASE WHEN action <> 'shown' THEN 1 ELSE 0 END) AS used,"
        " sum(CASE WHEN action <> 'shown' AND edited IS NOT NULL THEN 1 ELSE 0 END) AS sent,"
        " sum(CASE WHEN action <> 'shown' AND edited = 1 THEN 1 ELSE 0 END) AS edited,"
        " max(CASE WHEN action <> 'shown' THEN at END) AS last_used"
        " FROM kb_usage GROUP BY article_key, language"
    ):
        figures[(row["article_key"], row["language"])] = ArticleFigures(
            row["shown"], row["used"], row["sent"], row["edited"], row["last_used"]
        )
    return figures


def assist_acceptance(conn: sqlite3.Connection, since: float = 0.0) -> tuple[int, int]:
    """(suggestions shown, suggestions inserted) since a moment: METRICS.md's assist acceptance
    is the second over the first."""
    row = conn.execute(
        "SELECT sum(CASE WHEN action = 'shown' THEN 1 ELSE 0 END), sum(CASE WHEN action = 'accepted' THEN 1 ELSE 0 END)"
        " FROM kb_usage WHERE at >= ?",
        (since,),
    ).fetchone()
    return row[0] or 0, row[1] or 0
