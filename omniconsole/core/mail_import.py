"""Bringing an existing support mailbox into the unified history.

    omniconsole import maildir ~/Maildir
    omniconsole import mbox support-2023.mbox --channel "support mailbox"

Every mail goes through the same path as live mail (`parse_mail`, then the `Ingestor`), so the
import finds or creates customers, threads replies into their conversation and keeps
attachments under the data directory. A mail's external id is its Message-ID (a hash of the
bytes when it has none), the same key the IMAP connector uses: a re-run, or an import into the
live mailbox's channel, stores nothing twice.

How the work is spread over the machine: the main process reads the mailbox and stores
batches (SQLite runs on aiosqlite's thread), worker processes parse the mail, which is most of
the cost, while the previous batch is being stored.

Order: the store threads a reply by finding the mail it answers among the stored ones, so a
reply stored before its parent starts a conversation of its own. Mailboxes are mostly in
delivery order, but not everywhere (an archived folder read after the inbox, `new/` after
`cur/`). Rather than sorting the whole mailbox by its Date headers (which needs the whole
mailbox in memory and trusts clocks of strangers), `ThreadOrder` holds back a reply whose
parents have not been seen yet and stores it right after the first of them arrives; replies
whose parents never come are stored at the end, or earlier when too many are held.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from connectors.base import InboundMessage
from connectors.mail.mailbox import MailboxEntry, count_maildir, iter_maildir, iter_mbox
from connectors.mail_parse import parse_mail, unreadable_mail
from omniconsole.config import Settings
from omniconsole.core.identity import normalize_email
from omniconsole.core.ingest import Ingestor
from omniconsole.i18n import N_
from omniconsole.store import Store
from omniconsole.store.mail_import import known_external_ids

#: Messages per transaction: big enough that the commit is cheap, small enough that a
#: concurrent operator's write never waits long for the lock.
BATCH_SIZE = 500
#: Messages handed to a parser process at a time (the pickling cost is per task).
PARSE_CHUNK = 100
#: How many replies may wait for their parent (and how many bytes of mail they may hold).
HOLD_MESSAGES = 20_000
HOLD_BYTES = 128 * 1024 * 1024

_UNREADABLE_PREFIX = "could not be read: "


@dataclass(slots=True)
class ImportSummary:
    """What an import did: mail read from the source and where each went."""

    #: Mails read from the source (every copy counts).
    messages: int = 0
    #: Mails stored now (unreadable ones included: they are stored as "could not be read").
    imported: int = 0
    #: Mails already in the channel's history (an earlier run, the live mailbox, a second copy).
    duplicates: int = 0
    #: Mails sent from one of our own addresses: not a customer writing, so not imported.
    own: int = 0
    #: (external id, reason) of every mail that could not be read.
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    #: Replies stored after their parent although the mailbox had them the other way round.
    reordered: int = 0
    #: Conversations the stored mail went into.
    conversations: int = 0
    #: Of those, the ones resolved because their last mail is older than `open_days`.
    resolved: int = 0
    #: Senders who answered mail of many different senders, with how many: most likely our own
    #: address (a support mailbox's replies), stored as a customer for want of `--own-address`.
    answering: list[tuple[str, int]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Mails read per second."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        """The figures as plain JSON-ready data."""
        return {
            "messages": self.messages,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "own": self.own,
            "unreadable": [{"id": key, "reason": reason} for key, reason in self.unreadable],
            "reordered": self.reordered,
            "conversations": self.conversations,
            "resolved": self.resolved,
            "answering": [{"address": address, "senders": count} for address, count in self.answering],
            "seconds": round(self.seconds, 3),
            "msgs_per_s": round(self.rate),
        }


class AnsweringSenders:
    """Who answers whom, from the threading headers: a sender whose mails reply to mail of
    many different senders is a mailbox answering customers (our own, when `--own-address`
    was not given), not a customer."""

    #: Different senders answered before a sender is named in the summary.
    THRESHOLD = 3

    def __init__(self) -> None:
        self._sender_of: dict[str, str] = {}
        self._answered: dict[str, set[str]] = {}

    def see(self, message: InboundMessage) -> None:
        sender = message.address
        if message.thread_key:
            self._sender_of[message.thread_key] = sender
        for key in message.reply_to_keys:
            parent = self._sender_of.get(key)
            if parent is not None and parent != sender:
                self._answered.setdefault(sender, set()).add(parent)

    def found(self) -> list[tuple[str, int]]:
        """(address, different senders answered) for senders at or above THRESHOLD, most first."""
        counts = [(sender, len(others)) for sender, others in self._answered.items() if len(others) >= self.THRESHOLD]
        return sorted(counts, key=lambda item: (-item[1], item[0]))


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Where a running import stands: `read` from the source (and its bytes), `done` stored or
    skipped for good."""

    read: int
    bytes_read: int
    done: int
    imported: int
    duplicates: int


# --------------------------------------------------------------------------------------------
# Order: parents before replies
# --------------------------------------------------------------------------------------------


class ThreadOrder:
    """Releases mail so that a reply comes after the mail it answers when both are in the
    mailbox, whatever order the mailbox holds them in.

    `offer(message)` returns the messages that may be stored now, in order. A reply none of
    whose parents has been seen is held; when one of them arrives, it is released right after
    it. At most `max_messages` (or `max_bytes` of mail) wait; beyond that the oldest is
    released as it is (it then joins its customer's open conversation or starts one)."""

    def __init__(self, max_messages: int = HOLD_MESSAGES, max_bytes: int = HOLD_BYTES):
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.reordered = 0
        self._seen: set[str] = set()
        self._held: dict[str, InboundMessage] = {}  # by external id, oldest first
        self._held_bytes = 0
        self._waiting: dict[str, list[str]] = {}  # a key not seen yet -> external ids held for it

    def seen(self, key: str) -> list[InboundMessage]:
        """Note a mail that is stored already (or will never be): replies to it may go."""
        released: list[InboundMessage] = []
        self._mark(key, released)
        return released

    def offer(self, message: InboundMessage) -> list[InboundMessage]:
        """The messages to store now, given one more from the mailbox."""
        keys = message.reply_to_keys
        if keys and not any(key in self._seen for key in keys):
            self._held[message.external_id] = message
            self._held_bytes += _size(message)
            for key in keys:
                self._waiting.setdefault(key, []).append(message.external_id)
            released: list[InboundMessage] = []
            while self._held and (len(self._held) > self.max_messages or self._held_bytes > self.max_bytes):
                self._release(next(iter(self._held)), released, early=False)
            return released
        released = [message]
        self._mark_message(message, released)
        return released

    def flush(self) -> list[InboundMessage]:
        """Everything still held (their parents are not in the mailbox), oldest first."""
        released: list[InboundMessage] = []
        while self._held:
            self._release(next(iter(self._held)), released, early=False)
        self._waiting.clear()
        return released

    def _release(self, external_id: str, out: list[InboundMessage], *, early: bool) -> None:
        message = self._held.pop(external_id, None)
        if message is None:
            return
        self._held_bytes -= _size(message)
        if early:
            self.reordered += 1
        out.append(message)
        self._mark_message(message, out)

    def _mark_message(self, message: InboundMessage, out: list[InboundMessage]) -> None:
        if message.thread_key:
            self._mark(message.thread_key, out)
        if message.external_id != message.thread_key:
            self._mark(message.external_id, out)

    def _mark(self, key: str, out: list[InboundMessage]) -> None:
        self._seen.add(key)
        for external_id in self._waiting.pop(key, ()):
            self._release(external_id, out, early=True)


def _size(message: InboundMessage) -> int:
    return int(message.meta.get("raw_size", 0) or 0) + len(message.body)


# --------------------------------------------------------------------------------------------
# The import
# --------------------------------------------------------------------------------------------


def parse_chunk(chunk: list[MailboxEntry]) -> list[InboundMessage]:
    """Parse raw mails (in a worker process); `parse_mail` never raises. Bytes the mailbox
    reader found not to be a mail are kept as "could not be read" with its reason."""
    return [
        unreadable_mail(entry.raw, entry.key, entry.problem, entry.delivered_at)
        if entry.problem
        else parse_mail(entry.raw, external_id=entry.key, delivered_at=entry.delivered_at)
        for entry in chunk
    ]


def _parser_process() -> None:
    # Ctrl-C reaches the whole process group: the import stops and shuts the pool down, the
    # parsers need not print a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


async def import_mailbox(
    store: Store,
    settings: Settings,
    source: Iterable[MailboxEntry | tuple[str, bytes]],
    *,
    channel_name: str = "import",
    progress: Callable[[ImportProgress], None] | None = None,
    own_addresses: Collection[str] = (),
    workers: int | None = None,
    batch_size: int = BATCH_SIZE,
    order: ThreadOrder | None = None,
    open_days: float | None = 14,
) -> ImportSummary:
    """Store every mail of `source` (`MailboxEntry`s as `iter_maildir` and `iter_mbox` yield
    them, or plain (external id, raw bytes) pairs) in the e-mail channel `channel_name`
    (created when new).

    Mail already in that channel is counted as a duplicate and left alone, so a re-run
    imports nothing twice. Mail from `own_addresses` (our replies in a Sent folder) is not a
    customer writing and is skipped. `workers` parser processes (default: one per core; 0
    parses in this process) work while the previous batch is stored. The channel's cursor is
    never touched: the live IMAP connector of the same channel keeps its position.

    Conversations whose last mail is older than `open_days` are resolved afterwards: a
    mailbox's old threads are history, and would otherwise bury the inbox (None: leave them)."""
    started = time.perf_counter()
    summary = ImportSummary()
    own = {normalize_email(address) for address in own_addresses if address}
    channel_id = await store.ensure_channel("email", channel_name)
    ingestor = Ingestor(store, settings.data_dir, settings.default_region)
    order = order or ThreadOrder()
    workers = _default_workers() if workers is None else workers
    loop = asyncio.get_running_loop()
    pool: Executor | None = None
    in_flight: deque[asyncio.Future[list[InboundMessage]]] = deque()
    submitted: set[str] = set()
    conversations: set[int] = set()
    ready: list[InboundMessage] = []
    storing: asyncio.Task[None] | None = None
    bytes_read = 0
    answering = AnsweringSenders()

    def report() -> None:
        if progress is not None:
            done = summary.imported + summary.duplicates + summary.own
            progress(ImportProgress(summary.messages, bytes_read, done, summary.imported, summary.duplicates))

    async def store_batch(batch: list[InboundMessage]) -> None:
        # No cursor: the channel's cursor belongs to its live connector, if it has one.
        result = await ingestor.ingest(channel_id, "email", batch, None)
        summary.imported += len(result.stored)
        summary.duplicates += result.duplicates
        conversations.update(result.conversations)
        report()

    async def flush_ready(everything: bool = False) -> None:
        nonlocal storing, ready
        while len(ready) >= batch_size or (everything and ready):
            batch, ready = ready[:batch_size], ready[batch_size:]
            # Batches are stored one after another: a reply's parent must be committed (or
            # earlier in the same batch) when the reply is threaded.
            if storing is not None:
                await storing
            storing = asyncio.create_task(store_batch(batch))

    def take(messages: list[InboundMessage]) -> None:
        for message in messages:
            if "unreadable" in message.flags:
                summary.unreadable.append((message.external_id, message.body.removeprefix(_UNREADABLE_PREFIX)))
            elif own and normalize_email(message.address) in own:
                summary.own += 1
                answering.see(message)
                # Replies to our own mail may go: their parent will never be stored.
                ready.extend(order.seen(message.thread_key or message.external_id))
                continue
            answering.see(message)
            ready.extend(order.offer(message))

    try:
        chunks = _chunks((item if isinstance(item, MailboxEntry) else MailboxEntry(*item) for item in source), PARSE_CHUNK)
        for number, chunk in enumerate(chunks):
            summary.messages += len(chunk)
            bytes_read += sum(len(entry.raw) for entry in chunk)
            known = await store.db.run(known_external_ids, channel_id, [entry.key for entry in chunk])
            fresh: list[MailboxEntry] = []
            for entry in chunk:
                if entry.key in known or entry.key in submitted:
                    summary.duplicates += 1
                    ready.extend(order.seen(entry.key))
                else:
                    submitted.add(entry.key)
                    fresh.append(entry)
            # A mailbox of one chunk is parsed here: starting processes would cost more.
            if pool is None and workers > 0 and number == 1:
                # "spawn", not "fork": this process already runs the database thread.
                pool = ProcessPoolExecutor(
                    max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_parser_process
                )
            if pool is not None:
                in_flight.append(loop.run_in_executor(pool, parse_chunk, fresh))
            else:
                done: asyncio.Future[list[InboundMessage]] = loop.create_future()
                done.set_result(parse_chunk(fresh))
                in_flight.append(done)
            # Keep every worker busy with one chunk and one more queued behind it.
            while len(in_flight) > max(1, 2 * workers):
                take(await in_flight.popleft())
                await flush_ready()
            report()
        while in_flight:
            take(await in_flight.popleft())
            await flush_ready()
        ready.extend(order.flush())
        await flush_ready(everything=True)
        if storing is not None:
            await storing
    finally:
        for future in in_flight:
            future.cancel()
        if storing is not None and not storing.done():
            # Let a batch already handed to the database finish: it is one transaction.
            await asyncio.gather(storing, return_exceptions=True)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    if open_days is not None and conversations:
        from omniconsole.store.actions import resolve_stale

        summary.resolved = await store.db.write(
            resolve_stale,
            sorted(conversations),
            time.time() - open_days * 86400,
            "import",
            f"imported mail older than {open_days:g} days",
        )
    summary.reordered = order.reordered
    summary.answering = [(address, count) for address, count in answering.found() if normalize_email(address) not in own]
    summary.conversations = len(conversations)
    summary.seconds = time.perf_counter() - started
    report()
    return summary


def _chunks(items: Iterator[MailboxEntry], size: int) -> Iterator[list[MailboxEntry]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def own_addresses(settings: Settings) -> list[str]:
    """The addresses of every configured mailbox: mail from them is ours, not a customer's."""
    return [str(c.options["address"]) for c in settings.channels if c.kind == "email" and c.options.get("address")]


# --------------------------------------------------------------------------------------------
# The command line: `omniconsole import maildir|mbox PATH`
# --------------------------------------------------------------------------------------------


def cmd_import(args: argparse.Namespace) -> int:
    """`omniconsole import maildir|mbox PATH`: import with a progress bar on stderr, then a
    summary (and with `--json` the figures as one JSON object on the last line)."""
    import json

    from omniconsole.config import load_settings
    from omniconsole.errors import UsageError

    settings = load_settings(args.config, args.db)
    path = Path(args.path).expanduser()
    if args.import_command == "maildir":
        if not path.is_dir():
            raise UsageError(N_("{path} is not a directory; give the Maildir (the folder holding cur/ and new/)"), path=str(path))
        if not ((path / "cur").is_dir() or (path / "new").is_dir()):
            raise UsageError(N_("{path} is not a Maildir: it has no cur/ or new/ folder"), path=str(path))
        try:
            total = count_maildir(path)
        except PermissionError:
            raise UsageError(N_("cannot read {path}: permission denied"), path=str(path)) from None
        source, unit_total = iter_maildir(path), total
    else:
        if not path.is_file():
            raise UsageError(N_("{path} is not a file; give an mbox file"), path=str(path))
        if not os.access(path, os.R_OK):
            raise UsageError(N_("cannot read {path}: permission denied"), path=str(path))
        source, unit_total = iter_mbox(path), path.stat().st_size
    addresses = own_addresses(settings) + list(args.own_address or [])

    async def run() -> ImportSummary:
        store = await Store.open(settings.database)
        try:
            with _ProgressBar(args.import_command == "maildir", unit_total) as bar:
                return await import_mailbox(
                    store,
                    settings,
                    source,
                    channel_name=args.channel,
                    progress=bar.update,
                    own_addresses=addresses,
                    workers=args.workers,
                    open_days=args.open_days if args.open_days > 0 else None,
                )
        finally:
            await store.close()

    try:
        summary = asyncio.run(run())
    except OSError as exc:
        raise UsageError(N_("cannot read {path}: {reason}"), path=str(exc.filename or path), reason=exc.strerror) from None
    print_summary(summary, args.channel)
    if args.json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
    return 0


def print_summary(summary: ImportSummary, channel_name: str, out=None) -> None:
    """The summary a person reads after an import."""
    out = out or sys.stdout
    print(
        f"imported {summary.imported:,} of {summary.messages:,} mails into channel {channel_name!r}"
        f" ({summary.conversations:,} conversations) in {summary.seconds:.1f} s, {summary.rate:,.0f} mails/s",
        file=out,
    )
    print(f"skipped as duplicates (already in the history): {summary.duplicates:,}", file=out)
    if summary.resolved:
        print(f"resolved as history (last mail older than the --open-days limit): {summary.resolved:,} conversations", file=out)
    if summary.own:
        print(f"skipped as our own mail (from a configured mailbox address): {summary.own:,}", file=out)
    if summary.reordered:
        print(f"replies stored after the mail they answer (found later in the mailbox): {summary.reordered:,}", file=out)
    for address, count in summary.answering:
        print(
            f"{_printable(address)} answered mail from {count:,} different senders: if it is your own address, its"
            f" mails were stored as a customer's; import with --own-address {_printable(address)} to skip them",
            file=out,
        )
    print(f'unreadable (stored as "could not be read"): {len(summary.unreadable):,}', file=out)
    for key, reason in summary.unreadable[:50]:
        # Ids and reasons come from the mail itself: keep them on one printable line.
        print(f"  {_printable(key)}: {_printable(reason)}", file=out)
    if len(summary.unreadable) > 50:
        print(f"  ... and {len(summary.unreadable) - 50:,} more", file=out)


def _printable(text: str) -> str:
    from omniconsole.models import sanitize_text

    return " ".join(sanitize_text(text).split())[:200]


class _ProgressBar:
    """A `rich` progress bar on stderr: mails of a Maildir, bytes of an mbox (whose number of
    mails is unknown until it has been read)."""

    def __init__(self, by_messages: bool, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.by_messages = by_messages
        columns = [
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn() if by_messages else DownloadColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
        ]
        self.progress = Progress(*columns, console=Console(stderr=True), transient=True)
        self.task = self.progress.add_task("import", total=total, detail="")

    def __enter__(self) -> _ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def update(self, state: ImportProgress) -> None:
        detail = f"{state.imported:,} new, {state.duplicates:,} duplicates"
        if not self.by_messages:
            detail = f"{state.read:,} mails read, " + detail
        completed = state.done if self.by_messages else state.bytes_read
        self.progress.update(self.task, completed=completed, detail=detail)
