"""Opening the unified history: connection settings, migrations, and how transactions run.

Every process (the core, each operator's window, the CLI) opens its own connection to the one
SQLite file in WAL mode. SQL runs in plain synchronous functions `fn(conn, ...)` executed on
aiosqlite's worker thread, one call per unit of work: a batch of a thousand messages costs
one hop between threads, not a thousand, and the event loop never waits on SQLite.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from omniconsole.errors import StoreError
from omniconsole.i18n import N_
from omniconsole.store.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
# After a checkpoint, the WAL file is cut back to this size so a burst does not leave a
# huge file behind (measured: two busy writers grew it to ~800 MB in 30 s without this).
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
_BUSY_RETRIES = 5
#: Called with the connection inside each `write_transaction`, just before COMMIT, and after a
#: failed one; store/facts.py registers itself (so this floor module imports nothing above it).
BEFORE_COMMIT: list[Callable[[sqlite3.Connection], None]] = []
AFTER_ROLLBACK: list[Callable[[sqlite3.Connection], None]] = []


def connect(path: Path | str, *, create: bool = True, migrate: bool = True) -> sqlite3.Connection:
    """Open a configured connection (WAL, foreign keys, busy timeout) and bring the schema up
    to date; raises StoreError with a sentence a person can act on."""
    path = Path(path)
    if not create and not path.exists():
        raise StoreError(
            N_("database {path} does not exist; start `omniconsole serve` or `omniconsole demo` to create it"), path=str(path)
        )
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                N_("cannot create the directory {path}: {reason}"), path=str(path.parent), reason=exc.strerror
            ) from None
    new = not path.exists()
    try:
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves (a deferred transaction
        # that reads then writes fails at once with "database is locked", busy timeout or not).
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        _configure(conn)
        if migrate:
            migrate_schema(conn, path)
    except sqlite3.DatabaseError as exc:
        raise _error(exc, path) from None
    if new:
        # Every operator of the team (the `omniconsole` group) writes this file; SQLite gives
        # the -wal and -shm files the same mode as the database.
        try:
            os.chmod(path, 0o660)
        except OSError:
            pass
    return conn


def channel_names_of(path: Path | str) -> list[str] | None:
    """The channel names of the omniconsole database at `path`, read without writing or
    migrating anything (a read-only open); None when `path` is not an omniconsole database
    (another SQLite file, or no database at all)."""
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        return [r[0] for r in conn.execute("SELECT name FROM channels ORDER BY id")]
    except sqlite3.Error:  # not SQLite ("file is not a database"), or no channels table
        return None
    finally:
        conn.close()


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise sqlite3.OperationalError(f"the database cannot use WAL mode (got {mode})")
    # NORMAL in WAL: an application crash loses nothing; only a power loss can drop the last
    # commits. The stdlib build here defaults to FULL, which costs an fsync per commit.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
    conn.execute("PRAGMA cache_size = -32000")
    conn.execute("PRAGMA temp_store = MEMORY")


def migrate_schema(conn: sqlite3.Connection, path: Path | str = "") -> int:
    """Apply the migrations the database lacks, each in its own transaction; refuse a database
    written by a newer omniconsole. Returns the version reached."""
    version = start = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            N_(
                "database {path} has schema version {version}, newer than this omniconsole understands "
                "({known}); upgrade omniconsole before opening it"
            ),
            path=str(path),
            version=version,
            known=SCHEMA_VERSION,
        )
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the write lock.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                for statement in _statements(MIGRATIONS[version]):
                    conn.execute(statement)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    # One line for the whole climb (a new database climbs every step), none when up to date.
    if version != start:
        if start == 0:
            log.info("database %s created (schema version %d)", path, version)
        else:
            log.info("database %s migrated from schema version %d to %d", path, start, version)
    return version


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def write_transaction(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn(conn, ...)` inside BEGIN IMMEDIATE ... COMMIT; roll back if it raises.

    BEGIN IMMEDIATE takes the write lock up front, so the busy timeout applies; if the lock
    is still contended after it, the whole transaction is retried a few times. Before COMMIT
    the `BEFORE_COMMIT` hooks run inside the transaction (store/facts.py rewrites the facts of
    conversations it changed); after a failure the `AFTER_ROLLBACK` hooks."""
    for attempt in range(_BUSY_RETRIES):
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_busy(exc) and attempt < _BUSY_RETRIES - 1:
                time.sleep(0.05 * (attempt + 1))
                continue
            raise
        try:
            result = fn(conn, *args, **kwargs)
            for hook in BEFORE_COMMIT:
                hook(conn)  # store/facts.py: the figures the transaction changed, in it
            conn.execute("COMMIT")
            return result
        except BaseException:
            for hook in AFTER_ROLLBACK:
                hook(conn)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    raise AssertionError("unreachable")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def describe_error(exc: BaseException, path: Path | str = "") -> str:
    """A sentence for a database failure: what went wrong and what to do (English)."""
    template, params = describe_error_parts(exc, path)
    return template.format(**params)


def _error(exc: BaseException, path: Path | str) -> StoreError:
    """The StoreError for `exc`, keeping the template so the reader's language can be shown."""
    template, params = describe_error_parts(exc, path)
    return StoreError(template, **params)


def describe_error_parts(exc: BaseException, path: Path | str = "") -> tuple[str, dict[str, str]]:
    """`describe_error` as an English template marked for the catalog (issue #24) and its
    values: (`"database {path} is read-only for user {user}; ..."`, {"path": ..., "user": ...})."""
    text = str(exc)
    where = str(path)
    if isinstance(exc, sqlite3.DatabaseError):
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL or "database or disk is full" in text:
            if not where:
                return N_("the disk holding the database is full; free space, nothing was lost"), {}
            return N_("the disk holding {path} is full; free space, nothing was lost"), {"path": where}
        if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM) or "readonly" in text:
            return N_("database {path} is read-only for user {user}; see the README on the omniconsole group"), {
                "path": where,
                "user": _user(),
            }
        if code == sqlite3.SQLITE_CANTOPEN or "unable to open" in text:
            return N_("cannot open database {path}: check that the directory exists and user {user} may write it"), {
                "path": where,
                "user": _user(),
            }
        if code == sqlite3.SQLITE_NOTADB or "not a database" in text:
            return N_("{path} is not an omniconsole database (not SQLite)"), {"path": where}
        if code == sqlite3.SQLITE_CORRUPT or "malformed" in text:
            return N_("database {path} is damaged: {error}; restore it from a backup"), {"path": where, "error": text}
        if _is_busy(exc):  # type: ignore[arg-type]
            return N_("database {path} stayed locked by another process for more than {seconds} s"), {
                "path": where,
                "seconds": str(BUSY_TIMEOUT_MS // 1000),
            }
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        if not where:
            return N_("the disk holding the data directory is full; free space, nothing was lost"), {}
        return N_("the disk holding {path} is full; free space, nothing was lost"), {"path": where}
    return N_("database {path}: {error}"), {"path": where, "error": text}


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


class Database:
    """An open connection to the unified history, run on aiosqlite's worker thread."""

    def __init__(self, path: Path, aconn: aiosqlite.Connection):
        self.path = path
        self._aconn = aconn

    @classmethod
    async def open(cls, path: Path | str, *, create: bool = True) -> Database:
        """Open (creating and migrating if needed) the database at `path`."""
        path = Path(path)
        # aiosqlite runs the connector on its worker thread: our own factory, so every
        # connection gets the same settings and migrations. (A failed connect stops the thread.)
        aconn = aiosqlite.Connection(lambda: connect(path, create=create), iter_chunk_size=64)
        try:
            await aconn
        except BaseException:
            # aiosqlite stops its thread after a failed connect and answers that stop through
            # this event loop: wait for the thread while the loop still runs, or it reports
            # "Event loop is closed" over our one-line error.
            await asyncio.to_thread(aconn._thread.join, 5)  # noqa: SLF001
            raise
        return cls(path, aconn)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, ...)` on the database thread and return its result."""
        try:
            return await self._aconn._execute(fn, self._aconn._conn, *args, **kwargs)  # noqa: SLF001
        except sqlite3.DatabaseError as exc:
            raise _error(exc, self.path) from exc

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, ...)` in one BEGIN IMMEDIATE transaction on the database thread."""
        return await self.run(write_transaction, fn, *args, **kwargs)

    async def close(self) -> None:
        """Close the connection and stop its thread."""
        await self._aconn.close()


def storage_figures(conn: sqlite3.Connection) -> dict[str, Any]:
    """How big the history is: {"bytes": bytes of database pages in use (free pages not
    counted), "messages": rows, "events": {"live": rows, "history": rows, "audit": rows}}."""
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
    events = {"live": 0, "history": 0, "audit": 0}
    for keep, n in conn.execute("SELECT keep, count(*) FROM events GROUP BY keep"):
        events[keep] = n
    return {"bytes": pages * page_size, "messages": conn.execute("SELECT count(*) FROM messages").fetchone()[0], "events": events}


def backup(source: Path | str, target: Path | str) -> int:
    """Copy the database at `source` to `target` with SQLite's online backup API
    (https://www.sqlite.org/backup.html) in one step, so the copy is one consistent snapshot
    even while the core writes; returns the copy's size in bytes. The copy is written to a
    temporary name beside `target` (mode 0600) and renamed into place, so a failed backup never
    leaves a half file under the target's name. Raises StoreError in words."""
    source, target = Path(source), Path(target)
    if not source.exists():
        raise StoreError(N_("there is no database at {path}"), path=str(source))
    partial = target.with_name(f".{target.name}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst, pages=-1)
                # A backup that can be opened anywhere: no write-ahead log beside it.
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(partial, target)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(N_("cannot back up {path}: {reason}"), path=str(source), reason=describe_error(exc, source)) from None
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(N_("cannot write the backup {path}: {reason}"), path=str(target), reason=exc.strerror) from None
    return target.stat().st_size
