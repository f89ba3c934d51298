"""Who wrote a mail: a person, a robot answering for one (auto-reply, bounce), or a person
whose mail a list or group passed on under its own address.

Auto-replies and bounces are flagged so that nothing answers them and nobody waits for them.
Only signals that robots set and people's mail programs do not count (reviewed against what
Outlook/Exchange, Gmail, Thunderbird, Apple Mail, Google Groups and Mailman put on a person's
mail):

* `Auto-Submitted` other than `no` (RFC 3834 5): the reliable signal;
* `X-Autoreply`, `X-Autorespond`, `X-Autoreply-From` and `Precedence: auto_reply`, which
  vacation programs that predate RFC 3834 set (and only they);
* a null return path (`Return-Path: <>`): DSNs, MDNs and RFC 3834 responders send with an
  empty MAIL FROM (RFC 3834 3.3, RFC 3464 2), a person's mail always has a return address;
* a read receipt (`multipart/report; report-type=disposition-notification`, RFC 8098);
* bounces: `report-type=delivery-status` (RFC 3464), `X-Failed-Recipients` (Exim's bounces),
  or a mailer-daemon sender with a "could not deliver" subject.

Not signals: `X-Auto-Response-Suppress` asks *others* not to answer automatically, and
Outlook and Exchange put it on a person's own mail (to a distribution list, from many add-ins);
`Precedence: list/bulk/junk`, `List-Id`, `List-Unsubscribe`, `Mailing-List` mark mail that
came through a list or a group, which people write every day. They are kept as `meta["list"]`.

List and group rewrites: when a person's domain publishes a strict DMARC policy, Google
Groups and Mailman send the mail from the list's own address (`'Ivan' via Shop Help
<help@shop.example>`) and put the person in `X-Original-From` / `X-Original-Sender` (Google)
or `Reply-To` / `Cc` (Mailman's `from_is_list = munge_from`; with `wrap_message` the person's
own mail is also attached whole, and the parser reads that). `list_author` finds the person
so that they, not the list, are the customer.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import Any

from connectors.mail.headers import PARSER, addresses, parse_addresses, raw_headers
from connectors.mail.keys import normalize_message_id

_BOUNCE_SENDERS = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification|delivery failure|returned mail|mail delivery failed"
    r"|failure notice|не доставлено|недоставленное|не удалось доставить",
    re.IGNORECASE,
)
_AUTOREPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoreply-from")
_NO = {"no", "false", "0", "off"}
# "'Ivan Testov' via Shop Help" (Google Groups), "Ivan Testov via shop-help" (Mailman).
_VIA = re.compile(r"^\s*['\"]?(?P<name>.*?)['\"]?\s+via\s+(?P<list>.+?)\s*$", re.IGNORECASE)
_LIST_HEADERS = ("list-id", "mailing-list", "list-post", "list-unsubscribe", "x-google-group-id", "x-mailman-version")
_LIST_ADDRESS = re.compile(r"<?mailto:([^>\s?]+)|list\s+([^\s;]+@[^\s;]+)", re.IGNORECASE)


def _report_type(msg: Message) -> str:
    if msg.get_content_type() != "multipart/report":
        return ""
    value = msg.get_param("report-type") or ""
    if isinstance(value, tuple):
        value = value[2]
    return str(value).strip().lower()


def automation_flags(msg: Message, headers: dict[str, str], sender: str, subject: str) -> set[str]:
    """`{"auto_reply"}`, `{"bounce", "auto_reply"}` or nothing, by the signals in the module
    docstring. `headers` maps lower-case header names to raw values."""
    flags: set[str] = set()
    report_type = _report_type(msg)
    if (
        report_type == "delivery-status"
        or "x-failed-recipients" in headers
        or (_BOUNCE_SENDERS.match(sender) and _BOUNCE_SUBJECT.search(subject))
    ):
        flags.add("bounce")
    # Every Auto-Submitted counts: a robot's own mark is not undone by a "no" beside it.
    auto_submitted = [value.strip().lower() for value in raw_headers(msg, "auto-submitted")]
    if (
        any(value and not value.startswith("no") for value in auto_submitted)
        or any(name in headers and headers[name].strip().lower() not in _NO for name in _AUTOREPLY_HEADERS)
        or headers.get("precedence", "").strip().lower() == "auto_reply"
        or headers.get("return-path", "").strip() == "<>"
        or report_type == "disposition-notification"
        or "bounce" in flags
    ):
        # A bounce is an automatic message too: nothing may answer it automatically.
        flags.add("auto_reply")
    return flags


def list_info(headers: dict[str, str]) -> dict[str, str]:
    """What says a mail came through a list or group (for `meta["list"]`): its List-Id,
    address and Precedence; empty for a direct mail."""
    info: dict[str, str] = {}
    list_id = headers.get("list-id", "").strip()
    if list_id:
        info["id"] = " ".join(list_id.split())[:200]
    for name in ("list-post", "mailing-list"):
        found = _LIST_ADDRESS.search(headers.get(name, ""))
        if found:
            info["address"] = (found.group(1) or found.group(2)).strip().lower()
            break
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in {"list", "bulk", "junk"}:
        info["precedence"] = precedence
    if not info and any(name in headers for name in _LIST_HEADERS):
        info["id"] = "unnamed list"
    return info


def list_author(msg: Message, headers: dict[str, str], sender_name: str, address: str) -> tuple[str, str] | None:
    """(name, address) of the person behind a list's or group's rewritten From, or None when
    From is the author (or the mail did not come through a list).

    A rewrite is recognised only on list mail (a list header or Precedence: list/bulk) whose
    From is the list's own address or says "NAME via LIST"; the person is then taken from
    `X-Original-From`, `X-Original-Sender`, else `Reply-To`, else a `Cc` entry of that name."""
    info = list_info(headers)
    if not info:
        return None
    via = _VIA.match(sender_name or "")
    from_is_list = via is not None or (info.get("address") and info.get("address") == address.lower())
    if not from_is_list:
        return None
    name = via.group("name").strip(" '\"") if via else ""
    for header in ("x-original-from", "x-original-sender"):
        if header in headers:
            found = parse_addresses(headers[header])
            if found and found[0][1].lower() != address.lower():
                return found[0][0] or name, found[0][1]
    for header in ("Reply-To", "Cc"):
        for found_name, found_address in addresses(msg, header):
            if found_address.lower() == address.lower() or found_address.lower() == info.get("address"):
                continue
            if header == "Cc" and (not name or found_name.lower() != name.lower()):
                continue
            return found_name or name, found_address
    return None


def bounce_details(msg: Message) -> tuple[dict[str, Any], list[str]]:
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
                    value = PARSER.parsebytes(data, headersonly=True).get("Message-ID", "")
                found = normalize_message_id(str(value))
                if found:
                    original_ids.append(found)
            except Exception:  # noqa: BLE001
                pass
    return details, original_ids
