"""What an SMS is made of: the alphabet a text needs, the parts a long text goes out in, the
parts of a long inbound text put back together, delivery receipts and SMPP errors in words.

Alphabets (3GPP TS 23.038; SMPP 3.4 section 5.2.19 `data_coding`): a text that the GSM 7-bit
default alphabet can write goes as GSM (data_coding 0): 160 septets in one SMS, 153 per part
of a concatenated one, and the extension characters (`{ } [ ] ~ \\ | ^ €`) take two septets.
Anything else (Cyrillic, emoji) goes as UCS-2 (data_coding 8): 70 UTF-16 code units in one SMS,
67 per part. A part never ends inside an escape sequence or a surrogate pair.

Concatenation (3GPP TS 23.040 9.2.3.24.1): each part starts with a User Data Header
`05 00 03 <ref> <total> <seq>` (or `06 08 04 <ref16> <total> <seq>`) and `esm_class` has the
UDHI bit (0x40). The GSM codec is aiosmpplib's (septets unpacked, one per octet, as SMPP
carries them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from aiosmpplib.codec import find_codec_info

from omniconsole.models import DeliveryState

_GSM = find_codec_info("gsm0338")
GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
DATA_CODING_GSM, DATA_CODING_LATIN1, DATA_CODING_UCS2 = 0, 3, 8
UDHI = 0x40
#: esm_class message type bits (SMPP 3.4 5.2.12): 0b0001 SMSC delivery receipt, 0b1000
#: intermediate notification; 0b0010 / 0b0100 are SME acknowledgements.
_RECEIPT_TYPES = {0b0001, 0b0010, 0b0100, 0b1000}


@dataclass(frozen=True, slots=True)
class Part:
    """One SMS of an outbound text: its user data (UDH included) and data_coding."""

    data: bytes
    data_coding: int
    esm_class: int


def is_gsm(text: str) -> bool:
    """Whether the GSM 7-bit default alphabet (with its extension table) can write `text`."""
    try:
        _GSM.encode(text)
    except UnicodeEncodeError:
        return False
    return True


def encode_parts(text: str, reference: int) -> list[Part]:
    """The SMS parts `text` goes out in: one part without a header when it fits, else
    concatenated parts with an 8-bit reference (`reference` modulo 256). ValueError when
    the text needs more than 255 parts (about 38,000 GSM characters)."""
    gsm = is_gsm(text)
    single, per_part = (GSM_SINGLE, GSM_PART) if gsm else (UCS2_SINGLE, UCS2_PART)
    coding = DATA_CODING_GSM if gsm else DATA_CODING_UCS2
    units = [_GSM.encode(ch)[0] if gsm else ch.encode("utf-16-be") for ch in text]
    size = sum(len(u) for u in units) // (1 if gsm else 2)
    if size <= single:
        return [Part(b"".join(units), coding, 0)]
    chunks: list[bytes] = []
    current, used = bytearray(), 0
    for unit in units:
        weight = len(unit) // (1 if gsm else 2)
        if used + weight > per_part:
            chunks.append(bytes(current))
            current, used = bytearray(), 0
        current += unit
        used += weight
    chunks.append(bytes(current))
    if len(chunks) > 255:
        raise ValueError(f"the text needs {len(chunks)} SMS parts; at most 255 can be joined into one message")
    ref = reference % 256
    return [Part(bytes([5, 0, 3, ref, len(chunks), seq]) + chunk, coding, UDHI) for seq, chunk in enumerate(chunks, start=1)]


def decode_text(data: bytes, data_coding: int) -> str:
    """User data (without its header) as text, by `data_coding`: 0 GSM 7-bit, 1 ASCII,
    3 Latin-1, 8 UCS-2/UTF-16; other codings are read as Latin-1 so nothing is lost."""
    coding = data_coding
    if data_coding & 0xF0 == 0xF0:  # message class coding (TS 23.038 4): bit 2 says 8-bit data, else GSM
        coding = 4 if data_coding & 0x04 else 0
    if coding == DATA_CODING_GSM:
        try:
            return _GSM.decode(data)[0]
        except (UnicodeDecodeError, ValueError):
            return data.decode("latin-1")
    if coding == DATA_CODING_UCS2:
        return data.decode("utf-16-be", errors="replace")
    if coding == 1:
        return data.decode("ascii", errors="replace")
    return data.decode("latin-1")


@dataclass(frozen=True, slots=True)
class Segment:
    """Where one inbound part belongs: reference, total parts and its number (1-based)."""

    reference: int
    total: int
    number: int


def split_udh(data: bytes, esm_class: int) -> tuple[Segment | None, bytes]:
    """Take the User Data Header off an inbound part (when esm_class has UDHI): the
    concatenation it names (8- or 16-bit reference) and the text's bytes."""
    if not esm_class & UDHI or not data:
        return None, data
    length = data[0]
    header, rest = data[1 : 1 + length], data[1 + length :]
    segment = None
    index = 0
    while index + 2 <= len(header):
        ie, size = header[index], header[index + 1]
        value = header[index + 2 : index + 2 + size]
        if ie == 0x00 and size == 3 and len(value) == 3:
            segment = Segment(value[0], value[1], value[2])
        elif ie == 0x08 and size == 4 and len(value) == 4:
            segment = Segment(int.from_bytes(value[:2], "big"), value[2], value[3])
        index += 2 + size
    if segment is not None and not (1 <= segment.number <= segment.total):
        segment = None
    return segment, rest


def is_receipt(esm_class: int) -> bool:
    """Whether a deliver_sm is a delivery receipt rather than a customer's message."""
    return (esm_class >> 2) & 0x0F in _RECEIPT_TYPES


# -- delivery receipts --------------------------------------------------------------------

# The receipt text of SMPP 3.4 Appendix B; SMSCs vary the case and the spacing.
_RECEIPT_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err|text)\s*:\s*", re.IGNORECASE)
#: `stat` words (Appendix B) and the message_state TLV (5.2.28) in our delivery states.
_STAT_STATES = {
    "DELIVRD": DeliveryState.DELIVERED,
    "ACCEPTD": DeliveryState.SENT,
    "ENROUTE": DeliveryState.SENT,
    "EXPIRED": DeliveryState.FAILED,
    "DELETED": DeliveryState.FAILED,
    "UNDELIV": DeliveryState.FAILED,
    "REJECTD": DeliveryState.FAILED,
    "UNKNOWN": DeliveryState.FAILED,
}
_MESSAGE_STATES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD"}
_STAT_WORDS = {
    "EXPIRED": "the SMS expired before the phone could take it (switched off or out of coverage too long)",
    "DELETED": "the SMS centre deleted the SMS",
    "UNDELIV": "the SMS could not be delivered to the phone",
    "REJECTD": "the operator's network rejected the SMS",
    "UNKNOWN": "the SMS centre does not know what happened to the SMS",
}


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt: the SMSC's message id as it wrote it, the stat word, the err code."""

    message_id: str
    stat: str
    error: str = ""

    @property
    def state(self) -> DeliveryState | None:
        return _STAT_STATES.get(self.stat.upper())

    def reason(self) -> str:
        """Why a failed SMS failed, in words."""
        words = _STAT_WORDS.get(self.stat.upper(), f"the SMS centre reported {self.stat or 'a failure'}")
        return (
            f"{words} (stat {self.stat}, err {self.error})"
            if self.error and self.error.strip("0")
            else f"{words} (stat {self.stat})"
        )


def parse_receipt(text: str, receipted_message_id: str = "", message_state: int | None = None) -> Receipt | None:
    """A receipt from its TLVs (receipted_message_id, message_state: SMPP 3.4 5.3.2.12 and
    5.3.2.35) or, where they are missing, from its text (`id:... stat:DELIVRD err:000 ...`)."""
    fields: dict[str, str] = {}
    matches = list(_RECEIPT_FIELD.finditer(text))
    for match, following in zip(matches, matches[1:] + [None]):
        end = following.start() if following is not None else len(text)
        fields.setdefault(match.group(1).lower(), text[match.end() : end].strip())
    message_id = receipted_message_id.strip() or fields.get("id", "")
    stat = _MESSAGE_STATES.get(message_state or 0, "") or fields.get("stat", "").upper()
    if not message_id or not stat:
        return None
    return Receipt(message_id, stat, fields.get("err", ""))


class ReceiptIds:
    """Which of our sent messages a receipt names. SMSCs answer submit_sm with an id in one
    form and name it in the receipt in another: hex in the answer and decimal in the receipt
    is common (SMPP 3.4 leaves the format to the SMSC; Appendix B only says "id: the message
    ID allocated to the message by the SMSC"), sometimes zero-padded or upper-case.

    `remember` the ids we were given; `match` a receipt's id to one of them: as written
    first, else read as decimal against ids read as hex, else read as hex against ids read
    as decimal. The way that matched is learnt (`convention`), so receipts for messages sent
    before a restart (not remembered) are still translated."""

    SAME, DECIMAL_RECEIPT, HEX_RECEIPT = "same", "hex id, decimal receipt", "decimal id, hex receipt"

    def __init__(self, convention: str = "", width: int = 0, capacity: int = 200_000):
        self.convention = convention
        self.width = width  # the length of zero-padded ids the SMSC gives (0: not padded)
        self._ids: dict[tuple[str, object], str] = {}
        self._capacity = capacity

    def remember(self, message_id: str, stored_as: str | None = None) -> str:
        """Keep an id from a submit_sm_resp; returns it as we store it (lower-case). The
        later parts of a long message are kept `stored_as` the first part's id, so any
        part's receipt names the message."""
        stored = stored_as or message_id.strip().lower()
        message_id = message_id.strip().lower()
        if len(self._ids) > self._capacity:
            for key in list(self._ids)[: self._capacity // 2]:
                del self._ids[key]
        self._ids[(self.SAME, message_id.lstrip("0") or "0")] = stored
        if re.fullmatch(r"[0-9a-f]+", message_id):
            self._ids[(self.DECIMAL_RECEIPT, int(message_id, 16))] = stored
        if message_id.isdigit():
            self._ids[(self.HEX_RECEIPT, int(message_id))] = stored
        return stored

    def match(self, receipt_id: str) -> list[str]:
        """Our stored ids the receipt may name (the first is the best; usually just one)."""
        text = receipt_id.strip().lower()
        tries: list[tuple[str, object]] = [(self.SAME, text.lstrip("0") or "0")]
        if text.isdigit():
            tries.append((self.DECIMAL_RECEIPT, int(text)))
        if re.fullmatch(r"(0x)?[0-9a-f]+", text):
            tries.append((self.HEX_RECEIPT, int(text, 16)))
        for way, key in tries:
            stored = self._ids.get((way, key))
            if stored is not None:
                if way != self.SAME or not self.convention:
                    self.convention = way
                    self.width = len(stored) if stored.startswith("0") else 0
                return [stored]
        # Sent before a restart: translate by what this SMSC did before.
        if self.convention == self.DECIMAL_RECEIPT and text.isdigit():
            return [format(int(text), "x").zfill(self.width)]
        if self.convention == self.HEX_RECEIPT and re.fullmatch(r"(0x)?[0-9a-f]+", text):
            return [str(int(text, 16)).zfill(self.width)]
        return [text]


def smpp_time(text: str) -> datetime | None:
    """An SMPP absolute time `YYMMDDhhmmsstnnp` (5.2.20) as an aware datetime; None when
    empty, relative (`R`) or unreadable."""
    text = text.strip()
    if len(text) != 16 or text[15] not in "+-" or not text[:15].isdigit():
        return None
    try:
        moment = datetime.strptime(text[:12], "%y%m%d%H%M%S")
    except ValueError:
        return None
    quarters = int(text[13:15]) * (1 if text[15] == "+" else -1)
    return datetime.fromtimestamp(moment.replace(tzinfo=UTC).timestamp() - quarters * 900, UTC)
