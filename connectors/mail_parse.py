"""Reading e-mail as a person would: raw RFC 5322 bytes -> one `InboundMessage`.

Pure functions, no network and no disk writes, shared by the IMAP connector and the mailbox
import (`omniconsole import maildir|mbox`). `parse_mail` never raises for bad input: a message
that cannot be read at all becomes a message saying "could not be read: REASON", flagged
`unreadable`, with the raw bytes kept as `original.eml`.

What a person sees:
* the text/plain part when there is one, else the HTML turned into text with links kept as
  "text (https://...)" (`connectors/mail/html.py`);
* text, names, subjects and file names in whatever charset they came in, guessed where the
  label is missing or lies (`connectors/mail/charset.py`, `headers.py`);
* a multipart whose boundary is missing or wrong read as far as it goes: split at the
  boundary its body does use, or read as the text it is; files inside Outlook's
  `winmail.dat` (TNEF) as attachments (`connectors/mail/tnef.py`);
* the person behind a list's or group's rewritten From as the sender
  (`connectors/mail/automation.py`);
* `meta["fold_at"]`: where the quoted history or the signature starts, so the timeline can
  fold it away while the whole text stays one key away (`connectors/mail/fold.py`);
* auto-replies and bounces flagged (`auto_reply`, `bounce`), so nothing answers them
  automatically and nobody waits for them;
* the date the mail was written, from the best date it carries (`headers.mail_date`).

The mailbox files the import reads are in `connectors/mail/mailbox.py`.
"""

from __future__ import annotations

import mimetypes
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import Any

from connectors.base import InboundAttachment, InboundMessage
from connectors.mail.automation import automation_flags, bounce_details, list_author, list_info
from connectors.mail.charset import decode_text
from connectors.mail.fold import fold_position
from connectors.mail.headers import PARSER, addresses, filename, header_text, mail_date, parse_addresses
from connectors.mail.html import html_to_text
from connectors.mail.keys import message_ids, message_key, normalize_message_id, synthetic_message_id
from connectors.mail.tnef import is_tnef, unpack_tnef
from omniconsole.models import IdentityKind, sanitize_text

__all__ = [
    "decode_text",
    "fold_position",
    "html_to_text",
    "message_ids",
    "message_key",
    "normalize_message_id",
    "parse_mail",
    "synthetic_message_id",
    "unreadable_mail",
]

# The first boundary line of a multipart body whose header names none (or another one): a
# "--" line followed by a header line.
_FROM_LINE = re.compile(rb"^from:[ \t]*([^\r\n]{1,998}(?:\r?\n[ \t][^\r\n]{0,998}){0,20})", re.IGNORECASE | re.MULTILINE)
_BOUNDARY_LINE = re.compile(rb"^--([^\s]{1,200}?)[ \t]*\r?\n(?=[!-9;-~]{1,200}:)", re.MULTILINE)


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
        return filename(part)
    except Exception:  # a parameter too broken to read  # noqa: BLE001
        return ""


def _part_bytes(part: EmailMessage) -> bytes:
    if part.get_content_type() in {"message/rfc822", "message/global"} or part.get_content_maintype() == "multipart":
        try:
            if part.get_content_maintype() == "multipart":
                return part.as_bytes()
            return part.get_payload(0).as_bytes(policy=policy.SMTP)
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


def _is_broken_multipart(part: EmailMessage) -> bool:
    # A multipart the parser could not split (no boundary=, or one its body never uses) is
    # left as one string payload with a defect; get_body() then finds nothing in it.
    return part.get_content_maintype() == "multipart" and not part.is_multipart()


def _rescue_multipart(part: EmailMessage) -> EmailMessage:
    """A multipart the parser could not split, read as far as it goes: split at the boundary
    its body does use, else read as the text it is (a mail program that wrote
    `multipart/alternative` and then only the customer's text)."""
    payload = part.get_payload()
    data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    found = _BOUNDARY_LINE.search(data)
    if found is not None:
        boundary = found.group(1).decode("ascii", "replace").replace('"', "")
        head = f'Content-Type: {part.get_content_type()}; boundary="{boundary}"\r\n\r\n'.encode()
        rescued: EmailMessage = PARSER.parsebytes(head + data)  # type: ignore[assignment]
        if rescued.is_multipart():
            return rescued
    looks_html = data.lstrip()[:1] == b"<" and b"</" in data
    charset = part.get_param("charset")
    head_lines = [f"Content-Type: text/{'html' if looks_html else 'plain'}"]
    if isinstance(charset, str) and charset.isascii():
        head_lines[0] += f'; charset="{charset.strip(chr(34))}"'
    encoding = str(part.get("Content-Transfer-Encoding", "") or "").strip()
    if encoding.isascii() and encoding.lower() in {"base64", "quoted-printable"}:
        head_lines.append(f"Content-Transfer-Encoding: {encoding}")
    rescued = PARSER.parsebytes(("\r\n".join(head_lines) + "\r\n\r\n").encode() + data)  # type: ignore[assignment]
    return rescued


def _collect(msg: EmailMessage) -> tuple[str, list[InboundAttachment]]:
    """The readable body and the attachments of a parsed message."""
    if _is_broken_multipart(msg):
        msg = _rescue_multipart(msg)
    try:
        body_part = msg.get_body(preferencelist=("plain", "html"))
    except Exception:  # noqa: BLE001
        body_part = None
    texts: list[str] = []
    attachments: list[InboundAttachment] = []
    tnef_texts: list[str] = []
    if body_part is not None:
        texts.append(_part_text(body_part))

    def add_file(name: str, content_type: str, data: bytes) -> None:
        attachments.append(
            InboundAttachment(
                filename=_safe_filename(name, content_type, len(attachments) + 1),
                mime_type=content_type,
                data=data,
                size=len(data),
            )
        )

    def visit(part: EmailMessage, parent_type: str) -> None:
        if _is_broken_multipart(part):
            part = _rescue_multipart(part)
        content_type = part.get_content_type()
        if part is body_part:
            return
        if part.is_multipart() and content_type not in {"message/rfc822", "message/global"}:
            for child in part.iter_parts():
                visit(child, content_type)
            return
        name = _filename(part)
        if content_type in {"text/plain", "text/html"} and not _is_attachment(part) and not name:
            # An alternative rendering of the body; a second inline text in a mixed
            # message (text around an inline image) continues the body instead.
            plain_body = body_part is not None and body_part.get_content_type() == "text/plain"
            if content_type == "text/plain" and parent_type == "multipart/mixed" and plain_body:
                texts.append(_part_text(part))
            elif body_part is None:
                texts.append(_part_text(part))
            return
        data = _part_bytes(part)
        if is_tnef(content_type, name):
            try:
                content = unpack_tnef(data)
            except Exception:  # not TNEF after all, or cut short: keep the part as it came  # noqa: BLE001
                content = None
            if content is not None:
                for inner in content.attachments:
                    add_file(inner.filename, inner.mime_type, inner.data or b"")
                text = content.body or (html_to_text(content.html) if content.html else "")
                if text.strip():
                    tnef_texts.append(text)
                if content.complete:
                    return
        add_file(name, content_type, data)

    if msg.is_multipart():
        for child in msg.iter_parts():
            visit(child, msg.get_content_type())
    elif body_part is None:
        visit(msg, "")
    if not any(text.strip() for text in texts):
        texts = tnef_texts  # Outlook put the whole body in winmail.dat
    return "\n\n".join(text.strip("\n") for text in texts if text.strip()), attachments


def _wrapped_original(msg: EmailMessage, author: str) -> EmailMessage | None:
    """The person's own mail when a list sent it wrapped (Mailman's DMARC mitigation
    `from_is_list = wrap_message`: the list's mail carries the original as its one
    message/rfc822 part), else None."""
    if not msg.is_multipart():
        return None
    inner = [part for part in msg.iter_parts() if part.get_content_type() == "message/rfc822"]
    if len(inner) != 1:
        return None
    try:
        original = inner[0].get_payload(0)
    except (IndexError, TypeError):
        return None
    found = addresses(original, "From")
    return original if found and found[0][1].lower() == author.lower() else None


def unreadable_mail(raw: bytes, external_id: str | None, reason: str, delivered_at: datetime | None = None) -> InboundMessage:
    """A mail (or bytes of a mailbox) that cannot be read: "could not be read: REASON",
    flagged `unreadable`, the raw bytes kept whole as `original.eml`."""
    thread_key = message_key(raw) if raw else synthetic_message_id(raw)
    name, address = _visible_sender(raw)
    return InboundMessage(
        external_id=external_id or thread_key,
        identity_kind=IdentityKind.EMAIL,
        address=address,
        sender_name=sanitize_text(name),
        body=f"could not be read: {reason}",
        sent_at=delivered_at or datetime.now(UTC),
        thread_key=thread_key,
        attachments=(InboundAttachment("original.eml", "message/rfc822", raw, len(raw)),),
        flags=frozenset({"unreadable"}),
        meta={"raw_size": len(raw)},
    )


def _visible_sender(raw: bytes) -> tuple[str, str]:
    """(name, address) of a From line an unreadable mail still shows, so it lands with its
    sender rather than with a nameless "customer"; ("", "") when there is none."""
    found = _FROM_LINE.search(raw[:65536])
    if found is None:
        return "", ""
    try:
        pairs = parse_addresses(found.group(1).decode("ascii", "surrogateescape"))
    except Exception:  # noqa: BLE001 - the mail is unreadable already; no sender then
        return "", ""
    return pairs[0] if pairs else ("", "")


def parse_mail(raw: bytes, *, external_id: str | None = None, delivered_at: datetime | None = None) -> InboundMessage:
    """One raw mail as an `InboundMessage` a person can read. Never raises for bad input.

    `external_id` defaults to `message_key(raw)` (the Message-ID, else a hash of the bytes).
    `delivered_at` is when the mailbox got the mail (IMAP INTERNALDATE, a Maildir file name's
    time, an mbox "From " line): the date of a mail whose headers carry none.
    `meta` carries `message_id`, `raw_size`, `fold_at` (where quoted history or the signature
    starts in `body`, when it does), `reply_to`, `to`, `cc`, `list` (the list or group it
    came through), `via` (that list's address when it rewrote From), `date_from` (where
    `sent_at` came from when not the Date header), `bounce` details and the parser's
    `defects`. Flags: `auto_reply` (never answer automatically), `bounce` (also
    `auto_reply`), `unreadable`."""
    if not isinstance(raw, bytes | bytearray) or not raw.strip():
        return unreadable_mail(bytes(raw or b""), external_id, "the message is empty", delivered_at)
    raw = bytes(raw)
    try:
        return _parse(raw, external_id, delivered_at)
    except RecursionError:
        return unreadable_mail(raw, external_id, "the MIME structure is nested too deeply", delivered_at)
    except Exception as exc:  # anything a hostile mail can trigger in the stdlib parser  # noqa: BLE001
        return unreadable_mail(raw, external_id, f"{type(exc).__name__}: {exc}"[:300], delivered_at)


def _parse(raw: bytes, external_id: str | None, delivered_at: datetime | None) -> InboundMessage:
    msg: EmailMessage = PARSER.parsebytes(raw)  # type: ignore[assignment]
    headers = {key.lower(): str(value) for key, value in msg.raw_items()}
    if not headers:
        return unreadable_mail(raw, external_id, "no mail headers found", delivered_at)
    message_id = normalize_message_id(headers.get("message-id")) or synthetic_message_id(raw)
    senders = addresses(msg, "From") or addresses(msg, "Sender") or addresses(msg, "Reply-To")
    sender_name, address = senders[0] if senders else ("", "")
    subject = sanitize_text(header_text(msg, "Subject"))
    reply_to_keys: list[str] = []
    for key in message_ids(headers.get("in-reply-to")) + message_ids(headers.get("references")):
        if key not in reply_to_keys and key != message_id:
            reply_to_keys.append(key)

    body, attachments = _collect(msg)
    # Sanitised here, before `fold_at` is computed, so the index stays true when the core
    # sanitises again (the function is idempotent).
    body = sanitize_text(body).strip("\n")
    flags = automation_flags(msg, headers, address, subject)
    meta: dict[str, Any] = {"message_id": message_id, "raw_size": len(raw)}
    listed = list_info(headers)
    if listed:
        meta["list"] = listed
        author = list_author(msg, headers, sender_name, address)
        if author is not None:
            meta["via"] = address
            sender_name, address = author
            wrapped = _wrapped_original(msg, address)
            if wrapped is not None:
                # Mailman's "wrap message" (DMARC): the person's own mail is the attachment.
                body, attachments = _collect(wrapped)
                body = sanitize_text(body).strip("\n")
    fold_at = fold_position(body)
    if fold_at is not None:
        meta["fold_at"] = fold_at
    reply_to = addresses(msg, "Reply-To")
    if reply_to and reply_to[0][1].lower() != address.lower():
        meta["reply_to"] = reply_to[0][1]
    for name in ("To", "Cc"):
        found = [a for _, a in addresses(msg, name)]
        if found:
            meta[name.lower()] = found[:50]
    if "bounce" in flags:
        details, original_ids = bounce_details(msg)
        if details:
            meta["bounce"] = details
        for key in original_ids:
            if key not in reply_to_keys:
                reply_to_keys.append(key)
    sent_at, date_from = mail_date(msg, delivered_at)
    if date_from != "date":
        meta["date_from"] = date_from
    defects = {type(d).__name__ for part in msg.walk() for d in part.defects}
    if defects:
        meta["defects"] = sorted(defects)[:10]
    return InboundMessage(
        external_id=external_id or message_id,
        identity_kind=IdentityKind.EMAIL,
        address=address,
        body=body,
        sent_at=sent_at,
        sender_name=sanitize_text(sender_name),
        subject=subject,
        thread_key=message_id,
        reply_to_keys=tuple(reply_to_keys),
        attachments=tuple(attachments),
        flags=frozenset(flags),
        meta=meta,
    )
