"""Outlook's `winmail.dat` (TNEF, `application/ms-tnef`): the files and the text inside it.

Outlook and Exchange wrap attachments (and sometimes the whole body) in one TNEF part that
other mail programs show as a useless `winmail.dat`. It is unpacked with `tnefparse` (pure
Python, no dependencies; Microsoft's format, [MS-OXTNEF]), so the customer's files become
attachments of their message and, when the mail has no text of its own, TNEF's body is its
body.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field

from connectors.base import InboundAttachment
from connectors.mail.charset import decode_text

TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
#: Files inside one winmail.dat, at most (an embedded message may hold more TNEF).
_MAX_FILES = 500
_MAX_DEPTH = 5


@dataclass(slots=True)
class TnefContent:
    """What a TNEF part held: its files, its text body or HTML body ("" when none), and
    whether anything was left that could not be turned into either (an RTF-only body, an
    embedded message's text): then the caller keeps the `winmail.dat` itself too."""

    attachments: list[InboundAttachment] = field(default_factory=list)
    body: str = ""
    html: str = ""
    complete: bool = True


def is_tnef(content_type: str, filename: str) -> bool:
    """True for a TNEF part: by its type, or by Outlook's name for it under a generic type."""
    return content_type in TNEF_TYPES or (
        filename.lower() in {"winmail.dat", "win.dat"} and content_type in {"application/octet-stream", "text/plain"}
    )


def _text(value: object, codepage: str | None = None) -> str:
    if isinstance(value, bytes):
        return decode_text(value.rstrip(b"\x00"), codepage)[0]
    return str(value or "").rstrip("\x00")


def unpack_tnef(data: bytes) -> TnefContent:
    """The files and text of TNEF bytes. Raises ValueError when the bytes are not TNEF (the
    signature is wrong) or are cut short; the caller then keeps the part as it came."""
    from tnefparse import TNEF  # imported on first use: most mail has no TNEF

    content = TnefContent()
    _unpack(TNEF(data), content, 0)
    return content


def _unpack(tnef: object, content: TnefContent, depth: int) -> None:
    codepage = getattr(tnef, "codepage", None)
    if depth == 0 and getattr(tnef, "body", None):
        content.body = _text(tnef.body, codepage).replace("\r\n", "\n").strip()
    if depth == 0 and getattr(tnef, "htmlbody", None):
        content.html = _text(tnef.htmlbody, codepage)
    if depth == 0 and getattr(tnef, "_rtfbody", None) and not (content.body or content.html):
        content.complete = False  # an RTF-only body: kept in winmail.dat for who can read it
    for attachment in getattr(tnef, "attachments", ()):
        embedded = getattr(attachment, "embed", None)
        if embedded is not None:
            content.complete = False  # the embedded message's own text stays in winmail.dat
            if depth < _MAX_DEPTH:
                _unpack(embedded, content, depth + 1)
            continue
        if len(content.attachments) >= _MAX_FILES:
            content.complete = False
            break
        data = attachment.data if isinstance(attachment.data, bytes) else _text(attachment.data).encode()
        name = _text(attachment.long_filename(), codepage) or _text(attachment.name, codepage)
        mime_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        content.attachments.append(InboundAttachment(filename=name, mime_type=mime_type, data=data, size=len(data)))
