"""Ingest: what a connector received becomes history.

sanitise text -> normalise the identity -> keep attachments on disk -> store the batch and
its cursor in one transaction (the store then finds or creates the customer and threads the
message into the customer's open conversation, whatever its channel).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from connectors.base import InboundAttachment, InboundMessage, TransientError
from omniconsole.core.identity import mentioned_identities, normalize_address
from omniconsole.models import sanitize_text
from omniconsole.store import AttachmentRecord, InboundRecord, IngestResult, Store
from omniconsole.store.lease import pid_alive

log = logging.getLogger(__name__)

_UNSAFE_NAME = re.compile(r"[^\w.\- ()\[\]+,@]+", re.UNICODE)


def epoch(moment: datetime | None) -> float | None:
    """Seconds since the epoch; a naive datetime is taken as UTC (as channels mean it)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def safe_filename(name: str, fallback: str = "file") -> str:
    """A file name that cannot climb out of its directory or hide control characters."""
    name = sanitize_text(name).replace("/", "_").replace("\\", "_").strip(" .")
    name = _UNSAFE_NAME.sub("_", name)[:150]
    return name or fallback


class AttachmentStore:
    """Files under `<data_dir>/attachments/ab/abcdef.../name`, addressed by their SHA-256, so a
    message delivered twice (or a crash before commit) never leaves two copies.

    A file is written under `.incoming/` (as `<pid>-<random>.part`) and moved into place only
    when whole, so a full disk or a crash never leaves half a file where a message points; a
    failed write removes its `.part` at once, and `remove_leftovers` (at start) removes those of
    processes that died while writing."""

    def __init__(self, root: Path):
        self.root = root
        self.incoming = root / ".incoming"

    def save(self, attachment: InboundAttachment) -> AttachmentRecord:
        """Write the file's bytes (if the connector has them) and describe it for the store.

        Raises OSError (ENOSPC on a full disk) with nothing left behind."""
        filename = safe_filename(attachment.filename)
        mime = sanitize_text(attachment.mime_type) or "application/octet-stream"
        if attachment.data is None:
            return AttachmentRecord(filename, mime, attachment.size, None, None, sanitize_text(attachment.note))
        data = bytes(attachment.data)
        digest = hashlib.sha256(data).hexdigest()
        folder = self.root / digest[:2] / digest
        path = folder / filename
        if not path.exists():
            self.incoming.mkdir(parents=True, exist_ok=True)
            tmp = self.incoming / f"{os.getpid()}-{secrets.token_hex(8)}.part"
            try:
                with open(tmp, "xb") as file:
                    file.write(data)
                folder.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return AttachmentRecord(
            filename, mime, len(data), digest, str(path.relative_to(self.root)), sanitize_text(attachment.note)
        )

    def remove_leftovers(self) -> int:
        """Delete the `.part` files in `.incoming/` whose writer is gone (a crash, a kill during
        a write); returns how many went. Files of a live process (another command writing now)
        are left alone."""
        removed = 0
        try:
            leftovers = list(self.incoming.glob("*.part"))
        except OSError:
            return 0
        for part in leftovers:
            pid = part.name.split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid)):
                continue
            try:
                part.unlink()
                removed += 1
            except OSError as exc:
                log.warning("cannot remove the unfinished attachment %s: %s", part, exc.strerror or exc)
        if removed:
            log.info("removed %d unfinished attachment file(s) a stopped process left in %s", removed, self.incoming)
        return removed


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is a full disk: ENOSPC/EDQUOT, or SQLite's SQLITE_FULL."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(seen, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def free_space(path: Path) -> str:
    """The free space of the file system holding `path`, in words ("1.2 MB")."""
    for candidate in (path, *path.parents):
        try:
            free = shutil.disk_usage(candidate).free
        except OSError:
            continue
        for unit in ("bytes", "KB", "MB", "GB"):
            if free < 1024 or unit == "GB":
                return f"{free:.0f} {unit}" if unit == "bytes" else f"{free:.1f} {unit}"
            free /= 1024
    return "unknown"


class Ingestor:
    """Turns connector batches into stored history for one database."""

    def __init__(self, store: Store, data_dir: Path, default_region: str = "RU"):
        self.store = store
        self.attachments = AttachmentStore(data_dir / "attachments")
        self.attachments.remove_leftovers()
        self.default_region = default_region
        self._disk_full = False  # said once in the log until a batch is stored again

    def prepare(self, message: InboundMessage) -> InboundRecord:
        """Sanitise and normalise one message (attachments are saved separately)."""
        raw_address = sanitize_text(message.address)
        body = sanitize_text(message.body)
        record = InboundRecord(
            external_id=sanitize_text(message.external_id),
            identity_kind=str(message.identity_kind),
            address=normalize_address(message.identity_kind, raw_address, self.default_region),
            identity_display=raw_address,
            body=body,
            sent_at=epoch(message.sent_at) or time.time(),
            sender_name=sanitize_text(message.sender_name).strip(),
            subject=sanitize_text(message.subject).strip(),
            thread_key=message.thread_key,
            reply_to_keys=tuple(message.reply_to_keys),
            reply_to_external_id=message.reply_to_external_id,
            extra_identities=[
                (str(kind), normalize_address(kind, sanitize_text(addr), self.default_region))
                for kind, addr in message.extra_identities
            ],
            edited_at=epoch(message.edited_at),
            edit_seq=message.edit_seq,
            origin=sanitize_text(message.origin) if message.origin else None,
            flags=frozenset(message.flags),
            meta=json.dumps(dict(message.meta), ensure_ascii=False, default=str) if message.meta else None,
        )
        mentions = mentioned_identities(body, self.default_region)
        if mentions:  # rare: most messages name no e-mail or phone
            own = {(record.identity_kind, record.address), *record.extra_identities}
            record.mentions = [(str(kind), address) for kind, address in mentions if (str(kind), address) not in own]
        return record

    async def ingest(
        self, channel_id: int, channel_kind: str, messages: Sequence[InboundMessage], cursor: str | None
    ) -> IngestResult:
        """Store a connector's batch and the cursor that covers it, in one transaction.

        Raises TransientError (retry after 60 s) when the disk is full: nothing is stored, the
        condition is logged once with the free space, and the connector answers 503."""
        records = [self.prepare(m) for m in messages]
        with_files = [(r, m.attachments) for r, m in zip(records, messages) if m.attachments]
        try:
            if with_files:
                await asyncio.to_thread(self._save_files, with_files)
            result = await self.store.ingest(channel_id, channel_kind, records, cursor)
        except Exception as exc:
            if not disk_full(exc):
                raise
            where = self.attachments.root if isinstance(exc, OSError) else Path(self.store.path)
            if not self._disk_full:
                self._disk_full = True
                size = sum(len(f.data) for m in messages for f in m.attachments if f.data is not None)
                log.error(
                    "the disk holding %s is full (%s free%s): nothing is stored, channels that are pushed to "
                    "answer 503 with Retry-After, until space is freed",
                    where,
                    free_space(where),
                    f", {size / 1024:.1f} KB of files to store" if size else "",
                )
            raise TransientError(f"the disk holding {where} is full; nothing was stored", retry_after=60) from exc
        if self._disk_full:
            self._disk_full = False
            log.warning("there is room on the disk again (%s free); messages are stored again", free_space(self.attachments.root))
        return result

    def _save_files(self, pairs: list[tuple[InboundRecord, Sequence[InboundAttachment]]]) -> None:
        for record, files in pairs:
            record.attachments = [self.attachments.save(f) for f in files]
