"""Ingest: what a connector received becomes history.

sanitise text -> normalise the identity -> keep attachments on disk -> store the batch and
its cursor in one transaction (the store then finds or creates the customer and threads the
message into the customer's open conversation, whatever its channel).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from connectors.base import InboundAttachment, InboundMessage
from omniconsole.core.identity import mentioned_identities, normalize_address
from omniconsole.models import sanitize_text
from omniconsole.store import AttachmentRecord, InboundRecord, IngestResult, Store

log = logging.getLogger(__name__)

_UNSAFE_NAME = re.compile(r"[^\w.\- ()\[\]+,@]+", re.UNICODE)


def epoch(moment: datetime | None) -> float | None:
    """Seconds since the epoch; a naive datetime is taken as UTC (as channels mean it)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def safe_filename(name: str, fallback: str = "file") -> str:
    """A file name that cannot climb out of its directory or hide control characters."""
    name = sanitize_text(name).replace("/", "_").replace("\\", "_").strip(" .")
    name = _UNSAFE_NAME.sub("_", name)[:150]
    return name or fallback


class AttachmentStore:
    """Files under `<data_dir>/attachments/ab/abcdef.../name`, addressed by their SHA-256, so a
    message delivered twice (or a crash before commit) never leaves two copies."""

    def __init__(self, root: Path):
        self.root = root

    def save(self, attachment: InboundAttachment) -> AttachmentRecord:
        """Write the file's bytes (if the connector has them) and describe it for the store."""
        filename = safe_filename(attachment.filename)
        mime = sanitize_text(attachment.mime_type) or "application/octet-stream"
        if attachment.data is None:
            return AttachmentRecord(filename, mime, attachment.size, None, None, sanitize_text(attachment.note))
        data = bytes(attachment.data)
        digest = hashlib.sha256(data).hexdigest()
        folder = self.root / digest[:2] / digest
        path = folder / filename
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{filename}.{os.getpid()}.part"
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return AttachmentRecord(filename, mime, len(data), digest, str(path.relative_to(self.root)), sanitize_text(attachment.note))


class Ingestor:
    """Turns connector batches into stored history for one database."""

    def __init__(self, store: Store, data_dir: Path, default_region: str = "RU"):
        self.store = store
        self.attachments = AttachmentStore(data_dir / "attachments")
        self.default_region = default_region

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
        """Store a connector's batch and the cursor that covers it, in one transaction."""
        records = [self.prepare(m) for m in messages]
        with_files = [(r, m.attachments) for r, m in zip(records, messages) if m.attachments]
        if with_files:
            await asyncio.to_thread(self._save_files, with_files)
        return await self.store.ingest(channel_id, channel_kind, records, cursor)

    def _save_files(self, pairs: list[tuple[InboundRecord, Sequence[InboundAttachment]]]) -> None:
        for record, files in pairs:
            record.attachments = [self.attachments.save(f) for f in files]
