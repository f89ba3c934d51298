"""Reading e-mail as a person would: raw RFC 5322 bytes -> one `InboundMessage`.

Pure functions, no network and no disk writes, shared by the IMAP connector and the mailbox
import (`omniconsole import maildir|mbox`). `parse_mail` never raises for bad input: a message
that cannot be read at all becomes a message saying "could not be read: REASON", flagged
`unreadable`, with the raw bytes kept as `original.eml`.

What a person sees:
* the text/plain part when there is one, else the HTML turned into text with links kept as
  "text (https://...)";
* text in whatever charset it came in: declared charsets are trusted only as far as they
  decode, mislabelled and unknown ones are guessed (UTF-8, then the Cyrillic single-byte
  charsets by their letter statistics, then windows-1252 with replacement);
* `meta["fold_at"]`: where the quoted history or the signature starts, so the timeline can
  fold it away while the whole text stays one key away;
* auto-replies and bounces flagged (`auto_reply`, `bounce`), so nothing answers them
  automatically.
"""

from __future__ import annotations

import functools
import hashlib
import mimetypes
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.policy import EmailPolicy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from connectors.base import InboundAttachment, InboundMessage
from omniconsole.models import IdentityKind, sanitize_text



class _CachingPolicy(EmailPolicy):
    """`policy.default` that parses each distinct header value once.

    The stdlib re-parses a header on every access, and `get_content_type()` and friends
    access Content-Type again and again while walking a message: profiled, that was most of
    the time spent on a mail. Header objects are immutable, so sharing them is safe."""

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name"):
            return value
        return _parse_header(self, name, value)


@functools.lru_cache(maxsize=8192)
def _parse_header(policy_: EmailPolicy, name: str, value: str) -> Any:
    return EmailPolicy.header_fetch_parse(policy_, name, value)


_POLICY = _CachingPolicy()
_PARSER = BytesParser(policy=_POLICY)

# Message-IDs are `<left@right>`; a bounded, linear pattern (no nested quantifiers).
_MSGID = re.compile(r"<[^<>\s]{1,998}>")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID_LINE = re.compile(rb"^message-id:[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE)

SYNTHETIC_ID_DOMAIN = "omniconsole.invalid"


# --------------------------------------------------------------------------------------------
# Keys: Message-ID and the stable external id
# --------------------------------------------------------------------------------------------


def normalize_message_id(value: str | None) -> str | None:
    """`<left@right>` from a Message-ID header value as mailers write it (angle brackets
    missing, comments, folding); None when there is nothing usable."""
    if not value:
        return None
    found = _MSGID.search(value)
    if found:
        return found.group(0)
    bare = "".join(value.split()).strip("<>")
    if not bare or len(bare) > 998:
        return None
    return f"<{bare}>"


def message_ids(value: str | None) -> list[str]:
    """Every Message-ID in an In-Reply-To or References value, in order."""
    return _MSGID.findall(value) if value else []


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


# --------------------------------------------------------------------------------------------
# Charsets
# --------------------------------------------------------------------------------------------

_CHARSET_ALIASES = {
    "win-1251": "cp1251",
    "windows1251": "cp1251",
    "cp-1251": "cp1251",
    "win1251": "cp1251",
    "koi8r": "koi8-r",
    "koi8": "koi8-r",
    "unicode-1-1-utf-8": "utf-8",
    "utf8": "utf-8",
    "ansi_x3.4-1968": "ascii",
    "us-ascii": "ascii",
}
# Labels that say "somebody did not know": treat like a missing charset.
_NO_CHARSET = {"", "unknown", "unknown-8bit", "x-unknown", "default", "x-user-defined", "charset"}
_CYRILLIC_SINGLE_BYTE = ("cp1251", "koi8-r", "iso8859-5", "cp866")
_LOWER_CYRILLIC = re.compile("[а-яё]")
_ASCII_BYTES = bytes(range(128))
# Latin letters glued to 8-bit bytes ("Grüße") mean a Western charset; Cyrillic words are
# made of 8-bit bytes only.
_LATIN_NEXT_TO_HIGH = re.compile(rb"[A-Za-z][\x80-\xff]|[\x80-\xff][A-Za-z]")


def _codec_name(label: str | None) -> str | None:
    """A Python codec for a MIME charset label, or None when unknown or absent."""
    if not label:
        return None
    label = label.strip().strip('"').lower()
    if label in _NO_CHARSET:
        return None
    label = _CHARSET_ALIASES.get(label, label)
    if label.startswith("x-") and label not in {"x-mac-cyrillic"}:
        label = _CHARSET_ALIASES.get(label[2:], label[2:])
    try:
        import codecs

        return codecs.lookup(label).name
    except LookupError:
        return None


def _cyrillic_guess(data: bytes) -> tuple[str, float]:
    """The Cyrillic single-byte charset under which `data` reads as the most lower-case
    Russian letters (running text is mostly lower case; KOI8-R and windows-1251 swap the
    cases), and the share of non-ASCII bytes that became such letters."""
    sample = data[:16384]
    high = sample.translate(None, _ASCII_BYTES)
    if not high:
        return "ascii", 1.0
    if len(_LATIN_NEXT_TO_HIGH.findall(sample)) > 0.3 * len(high):
        return "cp1252", 0.0
    best, best_score = "cp1251", -1
    for codec in _CYRILLIC_SINGLE_BYTE:
        score = len(_LOWER_CYRILLIC.findall(high.decode(codec, "replace")))
        if score > best_score:
            best, best_score = codec, score
    return best, best_score / len(high)


def decode_text(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode a text part, returning (text, charset used). Never raises.

    The declared charset wins when it decodes cleanly, except that a declared Cyrillic
    single-byte charset is checked against the letter statistics (KOI8-R labelled as
    windows-1251 is a classic). Otherwise: UTF-8, a Cyrillic guess, windows-1252 with
    replacement characters."""
    codec = _codec_name(declared)
    if codec is not None and codec not in {"ascii"}:
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            text = None
        except Exception:  # some codecs raise odd errors on odd input  # noqa: BLE001
            text = None
        if text is not None:
            if codec in _CYRILLIC_SINGLE_BYTE:
                guess, share = _cyrillic_guess(data)
                if guess != codec and share > 0.7:
                    own = len(_LOWER_CYRILLIC.findall(text[:8192]))
                    alternative = data.decode(guess, "replace")
                    if len(_LOWER_CYRILLIC.findall(alternative[:8192])) > 1.5 * own:
                        return alternative, guess
            return text, codec
    if not data.translate(None, _ASCII_BYTES):
        return data.decode("ascii"), "ascii"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    guess, share = _cyrillic_guess(data)
    if share >= 0.5:
        return data.decode(guess, "replace"), guess
    return data.decode("cp1252", "replace"), "cp1252"


def _unmangle_header(value: str) -> str:
    """Header text as a person would read it: RFC 2047 words decoded, raw 8-bit bytes (the
    parser keeps them as surrogates) decoded by guessing, whitespace unfolded."""
    if "=?" in value:
        try:
            value = str(make_header(decode_header(value)))
        except Exception:  # malformed encoded words: keep what we have  # noqa: BLE001
            pass
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        value = decode_text(value.encode("utf-8", "surrogateescape"))[0]
    return " ".join(value.split())


# --------------------------------------------------------------------------------------------
# HTML -> readable text
# --------------------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    "address article aside blockquote center dd div dl dt fieldset figcaption figure footer form "
    "h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section table tbody thead tfoot tr ul".split()
)
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "template", "noscript", "svg"})
_SPACES = re.compile(r"\s+")


class _HtmlText(HTMLParser):
    """Collects the readable text of an HTML mail: blocks become lines, links keep their
    target, `<blockquote>` lines get "> " so the quoted history can be folded like plain mail."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.skip = 0
        self.pre = 0
        self.quote = 0
        self.links: list[tuple[str, int, int]] = []  # href, line count, position in line

    def _flush(self, blank: bool = False) -> None:
        """End the current line; `blank` also leaves an empty line (between paragraphs)."""
        text = "".join(self.line).strip(" ")
        self.line = []
        if text:
            self.lines.append("> " * self.quote + text)
        if blank and self.lines and self.lines[-1] != "":
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
            return
        if tag == "br":
            text = "".join(self.line).rstrip()
            self.line = []
            self.lines.append(("> " * self.quote if self.quote else "") + text.lstrip(" "))
        elif tag in _BLOCK_TAGS:
            self._flush(blank=tag in {"p", "blockquote", "h1", "h2", "h3", "table", "ul", "ol"})
            if tag == "li":
                self.line.append("• ")
            elif tag == "hr":
                self.lines.append("———")
        elif tag in {"td", "th"}:
            if self.line and "".join(self.line).strip():
                self.line.append("  ")
        if tag == "pre":
            self.pre += 1
        elif tag == "blockquote":
            self.quote += 1
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.links.append((href.strip(), len(self.lines), len(self.line)))
        elif tag == "img":
            alt = (dict(attrs).get("alt") or "").strip()
            if alt:
                self.line.append(f"[{alt}]")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
            return
        if tag == "a" and self.links:
            href, line_count, position = self.links.pop()
            if line_count == len(self.lines):
                label = "".join(self.line[position:]).strip()
            else:
                label = "…"
            shown = href[7:] if href.lower().startswith("mailto:") else href
            if href and not href.startswith("#") and shown and shown not in label and not href.lower().startswith("javascript:"):
                self.line.append(f" ({shown})")
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in _BLOCK_TAGS:
            self._flush(blank=tag in {"p", "blockquote", "h1", "h2", "h3", "table", "ul", "ol"})
        if tag == "blockquote":
            self.quote = max(0, self.quote - 1)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            first, *rest = data.split("\n")
            self.line.append(first)
            for piece in rest:
                self.lines.append(("> " * self.quote if self.quote else "") + "".join(self.line))
                self.line = [piece]
            return
        text = _SPACES.sub(" ", data)
        if not self.line and text.startswith(" "):
            text = text[1:]
        if text:
            self.line.append(text)

    def text(self) -> str:
        self._flush()
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        while self.lines and not self.lines[0]:
            self.lines.pop(0)
        return "\n".join(line.rstrip() for line in self.lines)


def html_to_text(html: str) -> str:
    """Readable text of an HTML mail: paragraphs and line breaks kept, scripts and styles
    dropped, links as "text (https://...)", quoted blocks prefixed with "> "."""
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is lenient; keep what it collected  # noqa: BLE001
        pass
    return parser.text()


# --------------------------------------------------------------------------------------------
# Quoted history and signature
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Auto-replies and bounces
# --------------------------------------------------------------------------------------------

_BOUNCE_SENDERS = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification|delivery failure|returned mail|mail delivery failed"
    r"|failure notice|не доставлено|недоставленное|не удалось доставить",
    re.IGNORECASE,
)


def _automation_flags(msg: EmailMessage, headers: dict[str, str], sender: str, subject: str) -> set[str]:
    flags: set[str] = set()
    content_type = msg.get_content_type()
    report_type = (msg.get_param("report-type") or "") if content_type == "multipart/report" else ""
    if isinstance(report_type, tuple):
        report_type = report_type[2]
    report_type = str(report_type).lower()
    if (
        report_type == "delivery-status"
        or "x-failed-recipients" in headers
        or (_BOUNCE_SENDERS.match(sender) and _BOUNCE_SUBJECT.search(subject))
    ):
        flags.add("bounce")
    auto_submitted = headers.get("auto-submitted", "").strip().lower()
    precedence = headers.get("precedence", "").strip().lower()
    suppress = headers.get("x-auto-response-suppress", "").lower()
    if (
        (auto_submitted and not auto_submitted.startswith("no"))
        or "x-autoreply" in headers
        or "x-autorespond" in headers
        or "x-autoreply-from" in headers
        or precedence in {"bulk", "list", "junk", "auto_reply"}
        or any(word in suppress for word in ("all", "oof", "autoreply"))
        or headers.get("return-path", "").strip() == "<>"
        or report_type == "disposition-notification"
        or "bounce" in flags
    ):
        # A bounce is an automatic message too: nothing may answer it automatically.
        flags.add("auto_reply")
    return flags


def _bounce_details(msg: EmailMessage) -> tuple[dict[str, Any], list[str]]:
    """What a delivery status notification says (recipients, status, diagnostic) and the
    Message-IDs of the mail that bounced, so the core can tie the bounce to its conversation."""
    details: dict[str, Any] = {}
    original_ids: list[str] = []
    for part in msg.walk():
        content_type = part.get_content_type()
        if content_type in {"message/delivery-status", "message/global-delivery-status"}:
            recipients, statuses, diagnostics = [], [], []
            payload = part.get_payload()
            blocks = payload if isinstance(payload, list) else []
            for block in blocks:
                recipient = block.get("Final-Recipient") or block.get("Original-Recipient")
                if recipient:
                    recipients.append(str(recipient).split(";", 1)[-1].strip())
                if block.get("Status"):
                    statuses.append(str(block.get("Status")).strip())
                if block.get("Diagnostic-Code"):
                    diagnostics.append(" ".join(str(block.get("Diagnostic-Code")).split(";", 1)[-1].split()))
            details = {"recipients": recipients, "status": statuses, "diagnostic": diagnostics}
        elif content_type in {"message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers"}:
            try:
                if content_type == "message/rfc822":
                    inner = part.get_payload(0)
                    value = str(inner.get("Message-ID", ""))
                else:
                    data = part.get_payload(decode=True) or b""
                    value = _PARSER.parsebytes(data, headersonly=True).get("Message-ID", "")
                found = normalize_message_id(str(value))
                if found:
                    original_ids.append(found)
            except Exception:  # noqa: BLE001
                pass
    return details, original_ids


# --------------------------------------------------------------------------------------------
# The message
# --------------------------------------------------------------------------------------------


def _raw_header(msg: EmailMessage, name: str) -> str | None:
    lowered = name.lower()
    for key, raw in msg.raw_items():
        if key.lower() == lowered:
            return str(raw)
    return None


def _has_raw_8bit(value: str | None) -> bool:
    # The parser keeps undeclared 8-bit header bytes as surrogates; policy.default would turn
    # them into U+FFFD, so such headers are decoded from the raw value instead.
    return bool(value) and any("\udc80" <= ch <= "\udcff" for ch in value)


def _header(msg: EmailMessage, name: str) -> str:
    """A header as text; a header the parser chokes on is decoded from its raw value."""
    raw = _raw_header(msg, name)
    if raw is None:
        return ""
    if _has_raw_8bit(raw):
        return _unmangle_header(raw)
    try:
        return _unmangle_header(str(msg.get(name)))
    except Exception:  # noqa: BLE001
        return _unmangle_header(raw)


def _addresses(msg: EmailMessage, name: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header, decoded; never raises."""
    raw = _raw_header(msg, name)
    if raw is None:
        return []
    text = raw
    if not _has_raw_8bit(raw):
        try:
            header = msg.get(name)
            pairs = [
                (_unmangle_header(a.display_name or ""), a.addr_spec)
                for a in header.addresses
                if a.addr_spec and "@" in a.addr_spec
            ]
            if pairs:
                return pairs
        except Exception:  # noqa: BLE001 - fall back to the lenient stdlib splitter
            pass
    else:
        text = _unmangle_header(raw)
    return [(_unmangle_header(n), a) for n, a in getaddresses([" ".join(text.split())]) if "@" in a]


def _sent_at(msg: EmailMessage) -> datetime:
    try:
        header = msg.get("Date")
        moment = header.datetime if header is not None else None
    except Exception:  # noqa: BLE001
        moment = None
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None:  # "-0000": the sender did not know its zone; RFC 5322 says UTC
        moment = moment.replace(tzinfo=UTC)
    return moment


def _safe_filename(name: str, mime_type: str, number: int) -> str:
    name = sanitize_text(name).replace("/", "_").replace("\\", "_").strip().strip(".")
    if not name:
        extension = mimetypes.guess_extension(mime_type) or ".bin"
        if mime_type == "message/rfc822":
            extension = ".eml"
        name = f"attachment-{number}{extension}"
    return name[:200]


def _filename(part: EmailMessage) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:  # a broken RFC 2231 parameter  # noqa: BLE001
        name = ""
    return _unmangle_header(str(name)) if name else ""


def _part_bytes(part: EmailMessage) -> bytes:
    if part.get_content_type() in {"message/rfc822", "message/global"} or part.get_content_maintype() == "multipart":
        try:
            return part.as_bytes() if part.get_content_maintype() == "multipart" else part.get_payload(0).as_bytes(policy=policy.SMTP)
        except Exception:  # noqa: BLE001
            return str(part.get_payload()).encode("utf-8", "surrogateescape")
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        data = None
    if data is None:
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    return data


def _part_text(part: EmailMessage) -> str:
    charset = None
    try:
        charset = part.get_param("charset")
        if isinstance(charset, tuple):  # RFC 2231 form
            charset = charset[2]
    except Exception:  # noqa: BLE001
        pass
    text = decode_text(_part_bytes(part), str(charset) if charset else None)[0]
    if part.get_content_type() == "text/html":
        return html_to_text(text)
    if str(part.get_param("format") or "").lower() == "flowed":
        return _unflow(text, str(part.get_param("delsp") or "").lower() == "yes")
    return text


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: a line ending in a space continues on the next line."""
    out: list[str] = []
    pending = ""
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if line.endswith(" ") and line != "-- ":
            pending += line[:-1] if delsp else line
        else:
            out.append(pending + line)
            pending = ""
    if pending:
        out.append(pending)
    return "\n".join(out)


def _is_attachment(part: EmailMessage) -> bool:
    try:
        disposition = part.get_content_disposition()
    except Exception:  # noqa: BLE001
        disposition = None
    return disposition == "attachment"


def _collect(msg: EmailMessage) -> tuple[str, list[InboundAttachment]]:
    """The readable body and the attachments of a parsed message."""
    try:
        body_part = msg.get_body(preferencelist=("plain", "html"))
    except Exception:  # noqa: BLE001
        body_part = None
    texts: list[str] = []
    attachments: list[InboundAttachment] = []
    if body_part is not None:
        texts.append(_part_text(body_part))

    def visit(part: EmailMessage, parent_type: str) -> None:
        content_type = part.get_content_type()
        if part is body_part:
            return
        if part.is_multipart() and content_type not in {"message/rfc822", "message/global"}:
            for child in part.iter_parts():
                visit(child, content_type)
            return
        if content_type in {"text/plain", "text/html"} and not _is_attachment(part) and not _filename(part):
            # An alternative rendering of the body; a second inline text in a mixed
            # message (text around an inline image) continues the body instead.
            if content_type == "text/plain" and parent_type == "multipart/mixed" and body_part is not None and body_part.get_content_type() == "text/plain":
                texts.append(_part_text(part))
            elif body_part is None:
                texts.append(_part_text(part))
            return
        data = _part_bytes(part)
        attachments.append(
            InboundAttachment(
                filename=_safe_filename(_filename(part), content_type, len(attachments) + 1),
                mime_type=content_type,
                data=data,
                size=len(data),
            )
        )

    if msg.is_multipart():
        for child in msg.iter_parts():
            visit(child, msg.get_content_type())
    elif body_part is None:
        visit(msg, "")
    return "\n\n".join(text.strip("\n") for text in texts if text.strip()), attachments


def _unreadable(raw: bytes, external_id: str | None, reason: str) -> InboundMessage:
    thread_key = message_key(raw) if raw else synthetic_message_id(raw)
    return InboundMessage(
        external_id=external_id or thread_key,
        identity_kind=IdentityKind.EMAIL,
        address="",
        body=f"could not be read: {reason}",
        sent_at=datetime.now(UTC),
        thread_key=thread_key,
        attachments=(InboundAttachment("original.eml", "message/rfc822", raw, len(raw)),),
        flags=frozenset({"unreadable"}),
        meta={"raw_size": len(raw)},
    )


def parse_mail(raw: bytes, *, external_id: str | None = None) -> InboundMessage:
    """One raw mail as an `InboundMessage` a person can read. Never raises for bad input.

    `external_id` defaults to `message_key(raw)` (the Message-ID, else a hash of the bytes).
    `meta` carries `message_id`, `raw_size`, `fold_at` (where quoted history or the signature
    starts in `body`, when it does), `reply_to`, `to`, `cc`, `bounce` details and the
    parser's `defects`. Flags: `auto_reply` (never answer automatically), `bounce` (also
    `auto_reply`), `unreadable`."""
    if not isinstance(raw, bytes | bytearray) or not raw.strip():
        return _unreadable(bytes(raw or b""), external_id, "the message is empty")
    raw = bytes(raw)
    try:
        return _parse(raw, external_id)
    except RecursionError:
        return _unreadable(raw, external_id, "the MIME structure is nested too deeply")
    except Exception as exc:  # anything a hostile mail can trigger in the stdlib parser  # noqa: BLE001
        return _unreadable(raw, external_id, f"{type(exc).__name__}: {exc}"[:300])


def _parse(raw: bytes, external_id: str | None) -> InboundMessage:
    msg: EmailMessage = _PARSER.parsebytes(raw)  # type: ignore[assignment]
    headers = {key.lower(): str(value) for key, value in msg.raw_items()}
    if not headers:
        return _unreadable(raw, external_id, "no mail headers found")
    message_id = normalize_message_id(headers.get("message-id")) or synthetic_message_id(raw)
    senders = _addresses(msg, "From") or _addresses(msg, "Sender") or _addresses(msg, "Reply-To")
    sender_name, address = senders[0] if senders else ("", "")
    subject = sanitize_text(_header(msg, "Subject"))
    reply_to_keys: list[str] = []
    for key in message_ids(headers.get("in-reply-to")) + message_ids(headers.get("references")):
        if key not in reply_to_keys and key != message_id:
            reply_to_keys.append(key)

    body, attachments = _collect(msg)
    # Sanitised here, before `fold_at` is computed, so the index stays true when the core
    # sanitises again (the function is idempotent).
    body = sanitize_text(body).strip("\n")
    flags = _automation_flags(msg, headers, address, subject)
    meta: dict[str, Any] = {"message_id": message_id, "raw_size": len(raw)}
    fold_at = fold_position(body)
    if fold_at is not None:
        meta["fold_at"] = fold_at
    reply_to = _addresses(msg, "Reply-To")
    if reply_to and reply_to[0][1].lower() != address.lower():
        meta["reply_to"] = reply_to[0][1]
    for name in ("To", "Cc"):
        found = [a for _, a in _addresses(msg, name)]
        if found:
            meta[name.lower()] = found[:50]
    if "bounce" in flags:
        details, original_ids = _bounce_details(msg)
        if details:
            meta["bounce"] = details
        for key in original_ids:
            if key not in reply_to_keys:
                reply_to_keys.append(key)
    defects = {type(d).__name__ for part in msg.walk() for d in part.defects}
    if defects:
        meta["defects"] = sorted(defects)[:10]
    return InboundMessage(
        external_id=external_id or message_id,
        identity_kind=IdentityKind.EMAIL,
        address=address,
        body=body,
        sent_at=_sent_at(msg),
        sender_name=sanitize_text(sender_name),
        subject=subject,
        thread_key=message_id,
        reply_to_keys=tuple(reply_to_keys),
        attachments=tuple(attachments),
        flags=frozenset(flags),
        meta=meta,
    )


# --------------------------------------------------------------------------------------------
# Mailbox files for the import
# --------------------------------------------------------------------------------------------


def iter_maildir(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """(external id, raw bytes) of every message in a Maildir and its Maildir++ subfolders
    (`.Sent`, `.Archive`...), in a stable order: folder by folder, file names sorted (they
    begin with the delivery time). The external id is `message_key`, so a re-run is
    idempotent."""
    root = Path(path)
    folders = [root] + sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(".") and (p / "cur").is_dir()) if root.is_dir() else []
    for folder in folders:
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
                yield message_key(raw), raw


_FROM_LINE = re.compile(rb"^>+From ")


def iter_mbox(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """(external id, raw bytes) of every message in an mbox file, in file order, streamed
    (a mailbox of gigabytes is never read whole). Messages start at a "From " line after a
    blank line; mboxrd quoting (">From ") is undone."""
    with open(path, "rb") as mbox:
        lines: list[bytes] = []
        previous_blank = True
        for line in mbox:
            if line.startswith(b"From ") and previous_blank:
                if lines:
                    raw = _mbox_message(lines)
                    if raw.strip():
                        yield message_key(raw), raw
                lines = []
                previous_blank = False
                continue
            previous_blank = line in (b"\n", b"\r\n")
            lines.append(line[1:] if line.startswith(b">") and _FROM_LINE.match(line) else line)
        if lines:
            raw = _mbox_message(lines)
            if raw.strip():
                yield message_key(raw), raw


def _mbox_message(lines: list[bytes]) -> bytes:
    # The blank line before the next "From " belongs to the mbox format, not to the message.
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)
