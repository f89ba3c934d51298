"""The keys of a mail: its Message-ID, the ids it answers (In-Reply-To, References) and the
stable external id the channel stores it under.

RFC 5322 3.6.4 writes ids as `<left@right>`, but trackers, scripts and old mailers write them
bare (`88120.1731049872@tracker.example.org`); ids are read both ways everywhere and always
kept in the bracketed form, so a reply finds its thread whichever way either side wrote it.
"""

from __future__ import annotations

import hashlib
import re

# Message-IDs are `<left@right>`; a bounded, linear pattern (no nested quantifiers).
_MSGID = re.compile(r"<[^<>\s]{1,998}>")
# A bracketed id, or a bare word holding an "@" (In-Reply-To of RFC 822 days may also hold
# phrases such as "Your message of ...", whose words have no "@" and are skipped).
_ID_TOKEN = re.compile(r"<[^<>\s]{1,998}>|[^<>\s,;()\"]{1,998}@[^<>\s,;()\"]{1,998}")
_COMMENT = re.compile(r"\([^()]{0,500}\)")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID_LINE = re.compile(rb"^message-id:[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE)

SYNTHETIC_ID_DOMAIN = "omniconsole.invalid"


def normalize_message_id(value: str | None) -> str | None:
    """`<left@right>` from a Message-ID header value as mailers write it (angle brackets
    missing, comments, folding); None when there is nothing usable."""
    if not value:
        return None
    found = _MSGID.search(value)
    if found:
        return found.group(0)
    bare = "".join(_COMMENT.sub(" ", value).split()).strip("<>")
    if not bare or len(bare) > 998:
        return None
    return f"<{bare}>"


def message_ids(value: str | None) -> list[str]:
    """Every Message-ID in an In-Reply-To or References value, in order, each as `<id>`.
    Bracketed ids when the value has any (then bare words are a phrase such as "message from
    ivan@example.org"), else the bare `left@right` words; comments skipped."""
    if not value:
        return []
    value = _COMMENT.sub(" ", value)
    tokens = _MSGID.findall(value) or _ID_TOKEN.findall(value)
    found: list[str] = []
    for token in tokens:
        key = token if token.startswith("<") else f"<{token}>"
        if key not in found:
            found.append(key)
    return found


def synthetic_message_id(raw: bytes) -> str:
    """A stable Message-ID for a mail that has none: the same bytes always give the same id."""
    return f"<{hashlib.sha256(raw).hexdigest()[:40]}@{SYNTHETIC_ID_DOMAIN}>"


def message_key(raw: bytes) -> str:
    """The stable external id of a raw mail: its normalised Message-ID, or a hash of the bytes
    when it has none. Cheap: reads only the header block, without a full parse."""
    end = _HEADER_END.search(raw)
    head = raw[: end.start()] if end else raw[:65536]
    found = _MESSAGE_ID_LINE.search(head)
    if found:
        normalised = normalize_message_id(found.group(1).decode("ascii", "replace"))
        if normalised:
            return normalised
    return synthetic_message_id(raw)
