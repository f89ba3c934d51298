"""What each web chat visitor sees of their conversation: their messages and our replies, kept
as an append-only JSON-lines file per visitor under `<data_dir>/webchat/<channel>/`, so a page
reload and a core restart both keep it. `forget_visitor` erases one (the CLI's `erase` uses it
without loading the connector)."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from connectors.webchat.sessions import VISITOR_ID


class VisitorLog:
    """One visitor's side of the conversation: their messages and our replies, numbered from
    1. Kept as JSON lines in one file, appended and fsynced entry by entry; a line torn by a
    crash is cut off when the file is next opened."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: list[dict[str, Any]] = []
        self.keys: dict[str, int] = {}  # idempotency key -> seq
        self.name = ""  # the name the visitor gave, carried on their later messages
        self.lock = asyncio.Lock()
        self.changed = asyncio.Event()
        self.taken = 0  # the highest entry a poll has handed out
        self.polls = 0  # long polls waiting now
        self.unconfirmed: dict[int, str] = {}  # seq -> external id of replies sent but not yet seen

    @property
    def last(self) -> int:
        return len(self.entries)

    def load(self) -> None:
        """Read the file (in a worker thread), repairing a torn last line."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        end = raw.rfind(b"\n") + 1
        if end < len(raw):
            with open(self.path, "r+b") as f:
                f.truncate(end)
        for line in raw[:end].splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("seq") == len(self.entries) + 1:
                self._index(entry)

    def _index(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)
        self.keys[entry["key"]] = entry["seq"]
        if entry.get("name"):
            self.name = entry["name"]

    def write(self, entry: dict[str, Any]) -> None:
        """Append one entry durably (in a worker thread)."""
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            try:
                view = memoryview(line)
                while view:  # a write may take less than all of it (a full disk, a signal)
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError:
                # Never leave half a line: the next entry would be glued to it and lost.
                os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)
        if new:  # the directory entry of a new file must be durable too
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    async def append(self, key: str, who: str, text: str, **extra: Any) -> tuple[dict[str, Any], bool]:
        """Add an entry unless one with `key` is there; (the entry, whether it is new).
        The caller holds `lock`."""
        if key in self.keys:
            return self.entries[self.keys[key] - 1], False
        entry = {"seq": self.last + 1, "key": key, "from": who, "text": text, "at": round(time.time(), 3), **extra}
        await asyncio.to_thread(self.write, entry)
        self._index(entry)
        self.notify()
        return entry, True

    def notify(self) -> None:
        """Wake every poll waiting on this visitor."""
        self.changed.set()
        self.changed = asyncio.Event()

    def view(self, after: int) -> list[dict[str, Any]]:
        """Entries after `after`, as the widget gets them."""
        return [
            {
                "seq": e["seq"],
                "from": e["from"],
                "text": e["text"],
                "at": e["at"],
                **({"id": e["id"]} if "id" in e else {}),
                **({"buttons": e["buttons"]} if e.get("buttons") else {}),
            }
            for e in self.entries[after:]
        ]


class VisitorLogs:
    """The logs of one channel's visitors, the recently used ones kept in memory."""

    KEEP = 2048

    def __init__(self, root: Path):
        self.root = root
        self._open: collections.OrderedDict[str, VisitorLog] = collections.OrderedDict()
        self._loading: dict[str, asyncio.Future[VisitorLog]] = {}

    async def get(self, visitor: str) -> VisitorLog:
        """The visitor's log, read from disk on first use."""
        log = self._open.get(visitor)
        if log is not None:
            self._open.move_to_end(visitor)
            return log
        pending = self._loading.get(visitor)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[VisitorLog] = asyncio.get_running_loop().create_future()
        self._loading[visitor] = future
        try:
            log = VisitorLog(self.root / visitor[:2] / f"{visitor}.jsonl")
            await asyncio.to_thread(log.load)
            future.set_result(log)
            self._open[visitor] = log
            self._forget_idle(keep=visitor)
            return log
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a waiter gets it too, nobody is told it went unseen
            raise
        finally:
            del self._loading[visitor]

    def cached(self, visitor: str) -> VisitorLog | None:
        return self._open.get(visitor)

    def all(self) -> Iterable[VisitorLog]:
        return list(self._open.values())

    def _forget_idle(self, keep: str) -> None:
        """Drop the least recently used logs nobody is using now, down to KEEP. The log just
        handed out (`keep`) always stays: two objects for one visitor's file would number two
        entries alike. A dropped log's replies not yet seen stay "sent" rather than becoming
        "delivered" (memory must not grow with every abandoned chat)."""
        for visitor in list(self._open):
            if len(self._open) <= self.KEEP:
                break
            log = self._open[visitor]
            if visitor != keep and not log.polls and not log.lock.locked():
                del self._open[visitor]


def forget_visitor(data_dir: Path, visitor: str) -> int:
    """Delete a visitor's conversation log in every web chat channel under `data_dir` (a
    personal-data erasure); returns how many files went."""
    if not VISITOR_ID.match(visitor):
        return 0
    removed = 0
    for path in (data_dir / "webchat").glob(f"*/{visitor[:2]}/{visitor}.jsonl"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
