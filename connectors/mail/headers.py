"""Reading a mail's header block as a person would: the parser, header and parameter values
decoded through the charset guessing (`decode_header_text`), address lists, and the date a
mail was written (with the fallbacks when its Date header is missing or wrong).

Values are always taken from the raw header (what came over the wire, undeclared 8-bit bytes
kept as surrogates) and decoded here, never from the email package's decoded form, which
turns bytes it cannot place into U+FFFD before anybody could guess their charset.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from connectors.mail.charset import CACHED_VALUE_CHARS, decode_header_text, decode_text


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


POLICY = _CachingPolicy()
#: The one parser of raw mail bytes (RFC 5322 + MIME), with `POLICY`.
PARSER = BytesParser(policy=POLICY)

_BRACKETED_ADDRESS = re.compile(r"<([^<>\s@]{1,200}@[^<>\s@]{1,255})>")
_BARE_ADDRESS = re.compile(r"[^\s<>(),;:\"]{1,200}@[^\s<>(),;:\"]{1,255}")
# One mailbox written plainly: a name without specials or a quoted name without escapes,
# then <addr>; or a bare addr. Anything else (groups, comments, lists) takes the full parser.
_SIMPLE_ADDRESS = re.compile(
    r'^(?:(?P<name>[^"<>(),;:\\@\[\]]*?) ?|"(?P<quoted>[^"\\]*)" ?)<(?P<bracketed>[^<>\s@(),;:"]{1,200}@[^<>\s@(),;:"]{1,255})>$'
    r'|^(?P<bare>[^<>\s@(),;:"]{1,200}@[^<>\s@(),;:"]{1,255})$'
)


def raw_header(msg: Message, name: str) -> str | None:
    """The first `name` header exactly as it came (folding and 8-bit bytes included), or None."""
    lowered = name.lower()
    for key, raw in msg.raw_items():
        if key.lower() == lowered:
            return str(raw)
    return None


def raw_headers(msg: Message, name: str) -> list[str]:
    """Every `name` header as it came, top to bottom (for Received, the newest hop first)."""
    lowered = name.lower()
    return [str(raw) for key, raw in msg.raw_items() if key.lower() == lowered]


def header_text(msg: Message, name: str) -> str:
    """A header's value as a person reads it ("" when absent); never raises."""
    raw = raw_header(msg, name)
    return decode_header_text(raw) if raw is not None else ""


def addresses(msg: Message, name: str) -> tuple[tuple[str, str], ...]:
    """(display name, address) pairs of an address header, names decoded; never raises.
    A header too broken for the address parser still gives the addresses it visibly holds."""
    raw = raw_header(msg, name)
    if raw is None:
        return ()
    return parse_addresses(raw)


def parse_addresses(raw: str) -> tuple[tuple[str, str], ...]:
    """(display name, address) pairs of a raw address-list value (RFC 5322 3.4). Cached:
    the same To and From values come again and again in a mailbox (short values only, so a
    hostile header cannot fill memory)."""
    return _addresses_cached(raw) if len(raw) <= CACHED_VALUE_CHARS else _parse_addresses(raw)


@functools.lru_cache(maxsize=4096)
def _addresses_cached(raw: str) -> tuple[tuple[str, str], ...]:
    return _parse_addresses(raw)


def _parse_addresses(raw: str) -> tuple[tuple[str, str], ...]:
    flat = " ".join(raw.split())
    simple = _SIMPLE_ADDRESS.match(flat)
    if simple is not None:  # "Name <a@b>", "\"Name\" <a@b>", "a@b": most mail, without the full parser
        pairs = [(simple["name"] or simple["quoted"] or "", simple["bracketed"] or simple["bare"])]
    else:
        try:
            pairs = [(n, a) for n, a in getaddresses([flat]) if "@" in a]
        except Exception:  # noqa: BLE001 - fall back to what looks like an address
            pairs = []
        if not pairs:
            found = _BRACKETED_ADDRESS.findall(flat) or _BARE_ADDRESS.findall(flat)
            pairs = [("", a) for a in found]
    return tuple((decode_header_text(n).strip(), decode_header_text(a).strip("<>")) for n, a in pairs)


def param(part: Message, name: str, header: str = "content-type") -> str:
    """A MIME parameter (`filename`, `name`, ...) as a person reads it; "" when absent.

    RFC 2231 values (`filename*=charset'lang'%XX..`, continuations included) and RFC 2047
    encoded words inside quotes (which Outlook and Gmail write, though RFC 2047 5 forbids
    it) are both decoded, and an unknown or missing charset is guessed like a body's. The
    raw header is read with the compat32 parameter parser, which keeps the bytes as they came."""
    raw = raw_header(part, header)
    if raw is None or name.lower() not in raw.lower():
        return ""
    # compat32 would turn the parser's surrogates (raw 8-bit bytes) into U+FFFD: hand it the
    # bytes as Latin-1 letters instead, and take them back as bytes afterwards.
    probe = Message()
    probe[header] = raw.encode("utf-8", "surrogateescape").decode("latin-1")
    try:
        value = probe.get_param(name, header=header)
    except Exception:  # noqa: BLE001 - a parameter too broken to split
        return ""
    if value is None:
        return ""
    if isinstance(value, tuple):  # RFC 2231: (charset, language, percent-decoded text)
        charset, _, text = value
        data = str(text).encode("latin-1", "replace") if text else b""
        return " ".join(decode_text(data, charset or None)[0].split())
    return decode_header_text(str(value).encode("latin-1", "replace").decode("ascii", "surrogateescape"))


def filename(part: Message) -> str:
    """The file name a part carries: Content-Disposition `filename`, else Content-Type `name`."""
    return param(part, "filename", "content-disposition") or param(part, "name", "content-type")


# --------------------------------------------------------------------------------------------
# When the mail was written
# --------------------------------------------------------------------------------------------

#: A Date before this is a clock that was never set (1970, epoch zero) or a two-digit year
#: read wrong, not a mail's age.
_EARLIEST = datetime(1980, 1, 1, tzinfo=UTC)
#: A Date this far after the mail's own delivery evidence is a sender's clock set wrong.
_CLOCK_SLACK = timedelta(days=1)
#: Where a mail carries a date besides its Date header, best first (see `mail_date`).
_TRANSPORT_DATES = ("received", "x-received", "delivery-date", "resent-date")


def _parse_date(text: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(" ".join(text.split()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:  # "-0000": the sender did not know its zone; RFC 5322 says UTC
        moment = moment.replace(tzinfo=UTC)
    return moment if moment >= _EARLIEST else None


def _transport_date(msg: Message, name: str) -> datetime | None:
    for raw in raw_headers(msg, name):
        # A trace header's date follows its last ";" (RFC 5321 4.4); the others are all date.
        text = raw.rpartition(";")[2] if name in {"received", "x-received"} else raw
        moment = _parse_date(text)
        if moment is not None:
            return moment
    return None


def mail_date(msg: Message, delivered_at: datetime | None = None, now: datetime | None = None) -> tuple[datetime, str]:
    """(when the mail was written, where that came from): never the time of reading by accident.

    Order, best first:
    1. `date`: the Date header (RFC 5322 3.6.1), unless it is missing, unreadable, before 1980
       or more than a day after the newest trace date below (or now, without one): a
       sender's clock set wrong;
    2. `received`: the newest Received header's date, written by the server that delivered
       the mail to our mailbox: a clock of ours or our provider's, seconds after sending,
       while older hops are strangers' (and a sender can forge them);
    3. `x-received`, `delivery-date`, `resent-date`: other trace dates the mail carries
       (Gmail's internal hops, Exim's local delivery, a resend);
    4. `mailbox`: `delivered_at`, when the mailbox stored it (IMAP INTERNALDATE, a Maildir
       file name's time, an mbox "From " line);
    5. `arrival`: `now`, only for a mail that carries no date at all and no mailbox time."""
    now = now or datetime.now(UTC)
    trace, source = None, ""
    for name in _TRANSPORT_DATES:
        trace = _transport_date(msg, name)
        if trace is not None:
            source = name
            break
    raw = raw_header(msg, "date")
    written = _parse_date(raw) if raw else None
    # The mailbox's own time is not held against the Date header: tools that build mailboxes
    # write placeholders there (a fixed "From " line date, a restore's file names).
    if written is not None and written <= (trace or now) + _CLOCK_SLACK:
        return written, "date"
    if trace is not None:
        return trace, source
    if delivered_at is not None:
        delivered_at = delivered_at if delivered_at.tzinfo else delivered_at.replace(tzinfo=UTC)
        if delivered_at >= _EARLIEST:  # a server's file time of 0 is no date either
            return delivered_at, "mailbox"
    return now, "arrival"
