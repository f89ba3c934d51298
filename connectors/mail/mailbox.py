"""Mailbox files for the import (`omniconsole import maildir|mbox`): every mail they hold, as
raw bytes with its stable key and the time the mailbox says it was delivered, streamed (a
mailbox of gigabytes is never read whole), and whatever in them is not a mail, said in words.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import NamedTuple

from connectors.mail.keys import message_key


class MailboxEntry(NamedTuple):
    """One mail of a mailbox file.

    `key` is `message_key(raw)` (a re-run is idempotent); `delivered_at` is when the mailbox
    got it (a Maildir file name's time, an mbox "From " line's date), the fallback date of a
    mail whose headers carry none; `problem` is non-empty for bytes that are not a mail (kept
    and reported, never dropped)."""

    key: str
    raw: bytes
    delivered_at: datetime | None = None
    problem: str = ""


# --------------------------------------------------------------------------------------------
# Maildir
# --------------------------------------------------------------------------------------------


def maildir_folders(path: str | Path) -> list[Path]:
    """The Maildir and its Maildir++ subfolders (`.Sent`, `.Archive`...), inbox first."""
    root = Path(path)
    if not root.is_dir():
        return []
    return [root] + sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(".") and (p / "cur").is_dir())


def _maildir_time(directory: Path, name: str) -> datetime | None:
    # A Maildir file name starts with the delivery time in epoch seconds ("1700000000.M1P2.host").
    head = name.split(".", 1)[0]
    if head.isdigit() and 315532800 <= int(head) <= 4102444800:  # 1980 .. 2100
        return datetime.fromtimestamp(int(head), UTC)
    try:
        return datetime.fromtimestamp((directory / name).stat().st_mtime, UTC)
    except OSError:
        return None


def iter_maildir(path: str | Path) -> Iterator[MailboxEntry]:
    """Every message in a Maildir and its Maildir++ subfolders, in a stable order: folder by
    folder, `cur/` then `new/`, file names sorted (they begin with the delivery time)."""
    for folder in maildir_folders(path):
        for sub in ("cur", "new"):
            directory = folder / sub
            if not directory.is_dir():
                continue
            for name in sorted(os.listdir(directory)):
                if name.startswith("."):
                    continue
                try:
                    raw = (directory / name).read_bytes()
                except (IsADirectoryError, FileNotFoundError, PermissionError):
                    continue  # moved by a running mail program, or not a message
                yield MailboxEntry(message_key(raw), raw, _maildir_time(directory, name))


def count_maildir(path: str | Path) -> int:
    """How many mails `iter_maildir` will yield (for a progress bar): file names only."""
    total = 0
    for folder in maildir_folders(path):
        for sub in ("cur", "new"):
            directory = folder / sub
            if directory.is_dir():
                total += sum(1 for name in os.listdir(directory) if not name.startswith("."))
    return total


# --------------------------------------------------------------------------------------------
# mbox
# --------------------------------------------------------------------------------------------

_MONTH = rb"(?P<month>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_ZONE = rb"(?P<zone>[A-Z]{1,5}|[+-]\d{4})"
# The separator's shape (RFC 4155 and what writers really produce): "From", the envelope
# sender (one word, may be empty), then an asctime date ("Thu Nov  7 10:00:00 2024", a zone
# before or after the year as some writers put it), or an RFC 5322 date.
_SEPARATOR = (
    re.compile(
        rb"^From \S* +(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),? +)?"
        + _MONTH
        + rb" +(?P<day>\d{1,2}) +(?P<time>\d{1,2}:\d\d(?::\d\d)?) +(?:"
        + _ZONE
        + rb" +)?(?P<year>\d{4})\b"
    ),
    re.compile(
        rb"^From \S* +(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),? +)?(?P<day>\d{1,2}) +"
        + _MONTH
        + rb" +(?P<year>\d{4}) +(?P<time>\d{1,2}:\d\d(?::\d\d)?)(?: +"
        + _ZONE
        + rb")?"
    ),
)
# A header field line (RFC 5322 2.2: printable ASCII but ":" and space, then ":").
_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,200}:")
_QUOTED_FROM = re.compile(rb"^>+From ")


def _separator_date(line: bytes) -> datetime | None | bool:
    """The date of an mbox separator line, None when it has the shape but no usable date,
    False when the line is not of the separator's shape."""
    for pattern in _SEPARATOR:
        found = pattern.match(line)
        if found is None:
            continue
        time = found["time"].decode()
        if time.count(":") == 1:
            time += ":00"
        zone = (found["zone"] or b"+0000").decode()
        text = f"{int(found['day'])} {found['month'].decode()} {found['year'].decode()} {time} {zone}"
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        # Writers that do not know put a placeholder: "Thu Jan  1 00:00:00 1970".
        return moment if moment.year >= 1980 else None
    return False


def iter_mbox(path: str | Path) -> Iterator[MailboxEntry]:
    """Every message of an mbox file (mboxo, mboxrd, mboxcl), in file order, streamed.

    A message starts at a "From " line of the separator's shape (sender and date) after a
    blank line (RFC 4155), or followed by a header line where a writer left the blank line
    out; a body line "From the photos you can see..." (mboxo does not quote it) stays in its
    mail. mboxrd quoting (">From ") is undone. Text before the first separator, or a file
    with none, is yielded with a `problem` saying so."""
    lines: list[bytes] = []
    first_line = 1
    delivered: datetime | None = None
    separators = 0
    candidate: tuple[bytes, int, datetime | None] | None = None

    def entry() -> MailboxEntry | None:
        # The blank line before the next "From " belongs to the mbox format, not to the message.
        body = lines[:-1] if lines and lines[-1] in (b"\n", b"\r\n") else lines
        raw = b"".join(body)
        if not raw.strip():
            return None
        problem = ""
        if separators == 0:
            last = first_line + len(lines) - 1
            problem = (
                f'lines {first_line}-{last} come before the first "From " separator line, so they are not one of its mails'
                if candidate_seen
                else 'the file has no "From " separator line (sender and date), so it is not an mbox'
            )
        return MailboxEntry(message_key(raw), raw, delivered, problem)

    def separate(next_line: int, date: datetime | None) -> MailboxEntry | None:
        """A separator: the mail so far is complete; the next starts at `next_line`."""
        nonlocal lines, first_line, delivered, separators, candidate_seen
        candidate_seen = True
        found = entry()
        lines, first_line, delivered = [], next_line, date
        separators += 1
        return found

    candidate_seen = False
    previous_blank = True
    with open(path, "rb") as mbox:
        for number, line in enumerate(mbox, 1):
            if candidate is not None:
                held, held_number, held_date = candidate
                candidate = None
                if _HEADER_LINE.match(line):
                    found = separate(held_number + 1, held_date)
                    if found is not None:
                        yield found
                else:
                    lines.append(held)
            if line.startswith(b"From "):
                date = _separator_date(line)
                if date is not False and previous_blank:
                    # The standard separator: after a blank line (or first in the file).
                    found = separate(number + 1, date)
                    if found is not None:
                        yield found
                    previous_blank = False
                    continue
                if date is not False:
                    # Some writers leave out the blank line: then a header must follow.
                    candidate = (line, number, date)
                    previous_blank = False
                    continue
            previous_blank = line in (b"\n", b"\r\n")
            lines.append(line[1:] if line.startswith(b">") and _QUOTED_FROM.match(line) else line)
        if candidate is not None:
            lines.append(candidate[0])
        found = entry()
        if found is not None:
            yield found
