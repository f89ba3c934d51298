"""Where the customer's own words end: the quoted history and the signature of a mail body
(the timeline folds them away; the whole text stays one key away)."""

from __future__ import annotations

import re

_ATTRIBUTION = re.compile(
    r"^(?:On|Am|Le|El|Il|Op)\s.{0,300}(?:wrote|schrieb|a écrit|escribió|ha scritto|schreef)\s?:\s*$"
    r"|^.{0,300}(?:писал|писала|написал|написала|пишет|писал\(а\)|написал\(а\))\s?:\s*$",
    re.IGNORECASE,
)
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(?:Original Message|Исходное сообщение|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_HEADER_FROM = re.compile(r"^\s*\*?(?:From|От|Von|De)\s?:\*?\s", re.IGNORECASE)
_HEADER_SENT = re.compile(r"^\s*\*?(?:Sent|Date|Отправлено|Дата|Gesendet|Envoyé)\s?:\*?\s", re.IGNORECASE)
_MOBILE_SIGNATURE = re.compile(
    r"^(?:Sent from my |Sent from Mail for |Get Outlook for |Отправлено с |Отправлено из |Sent with )", re.IGNORECASE
)


_WRAPPED_ATTRIBUTION = re.compile(
    r"^\s*(?:wrote|schrieb|a écrit|escribió|писал|писала|написал|написала|пишет)\S*\s?:\s*$", re.IGNORECASE
)
_ATTRIBUTION_START = re.compile(r"^(?:On|Am|Le|El|Il|Op|В)\s|\d|@", re.IGNORECASE)


def fold_position(body: str) -> int | None:
    """Where the customer's own words end and the quoted history or the signature begins:
    `body[:fold]` is what the timeline shows, `body[fold:]` is folded away. None when there
    is nothing to fold. Linear, and the patterns only look at short lines, so a mail of
    4,000-character lines costs nothing."""
    lines = body.split("\n")
    # From this line on, everything is blank or quoted: a trailing quote is history, while
    # quotes with answers between them (an inline reply) stay visible.
    tail_quote = len(lines)
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if line.startswith(">"):
            tail_quote = index
        elif line.strip():
            break

    def next_text(index: int) -> str:
        for line in lines[index + 1 : index + 6]:
            if line.strip():
                return line
        return ""

    fold_line: int | None = None
    for index, line in enumerate(lines):
        if index >= tail_quote and line.startswith(">"):
            fold_line = index
            break
        stripped = line.rstrip()
        if not stripped or len(stripped) > 400:
            continue
        if stripped == "--" or line == "-- ":
            fold_line = index
        elif _ORIGINAL_MESSAGE.match(stripped):
            fold_line = index
        elif _HEADER_FROM.match(stripped) and any(_HEADER_SENT.match(later) for later in lines[index + 1 : index + 5]):
            fold_line = index - 1 if index > 0 and set(lines[index - 1].strip()) == {"_"} else index
        elif _WRAPPED_ATTRIBUTION.match(stripped) and index > 0 and _ATTRIBUTION_START.search(lines[index - 1]):
            # "On Mon, ... Ivan <ivan@x.org>\nwrote:": many mailers wrap the attribution.
            fold_line = index - 1
        elif _ATTRIBUTION.match(stripped) and (next_text(index).startswith(">") or _ATTRIBUTION_START.search(stripped)):
            fold_line = index
        elif _MOBILE_SIGNATURE.match(stripped):
            rest = [later for later in lines[index + 1 :] if later.strip()]
            if len(rest) <= 2 or rest[0].startswith(">"):
                fold_line = index
        if fold_line is not None:
            break
    if fold_line is None:
        return None
    visible = "\n".join(lines[:fold_line]).rstrip()
    return len(visible) if visible.strip() else None
