"""What SMS are made of, on inputs the SMSC peer does not produce: receipts as various SMSCs
write them, 16-bit concatenation references, message-class codings, parts that must not cut
a character in two."""

from __future__ import annotations

import pytest

from connectors.sms.parts import ReceiptIds, decode_text, encode_parts, is_receipt, parse_receipt, smpp_time, split_udh
from omniconsole.models import DeliveryState
from tests.peers.smsc import decode


@pytest.mark.parametrize(
    "text, message_id, state",
    [
        (
            "id:2A3B4C5D sub:001 dlvrd:001 submit date:2611301015 done date:2611301016 stat:DELIVRD err:000 text:Hello",
            "2A3B4C5D",
            DeliveryState.DELIVERED,
        ),
        # Seconds in the dates, upper-case field names, and the text field holding a colon.
        (
            "ID:0000123456 SUB:001 DLVRD:000 SUBMIT DATE:261130101500 DONE DATE:261130101600 STAT:UNDELIV ERR:001 TEXT:id: stat:x",
            "0000123456",
            DeliveryState.FAILED,
        ),
        ("id:77 stat:EXPIRED err:0", "77", DeliveryState.FAILED),
        ("id:abc stat:ACCEPTD", "abc", DeliveryState.SENT),
    ],
)
def test_receipt_texts_as_smscs_write_them(text: str, message_id: str, state: DeliveryState) -> None:
    receipt = parse_receipt(text)
    assert receipt is not None and (receipt.message_id, receipt.state) == (message_id, state)


def test_receipt_tlvs_win_over_the_text_and_a_failure_is_worded() -> None:
    receipt = parse_receipt("", receipted_message_id="5f", message_state=5)
    assert (receipt.message_id, receipt.state) == ("5f", DeliveryState.FAILED)
    assert "could not be delivered" in receipt.reason()
    assert parse_receipt("no receipt here") is None


def test_receipt_ids_match_across_hex_and_decimal_and_padding() -> None:
    ids = ReceiptIds()
    stored = ids.remember("00A1B2")
    assert stored == "00a1b2"
    assert ids.match(str(0xA1B2)) == ["00a1b2"] and ids.convention == ReceiptIds.DECIMAL_RECEIPT
    # After a restart nothing is remembered, but the learnt convention still translates.
    fresh = ReceiptIds(ids.convention, ids.width)
    assert fresh.match(str(0xFFEE)) == ["00ffee"]
    decimal = ReceiptIds()
    decimal.remember("1234")
    assert decimal.match("4d2") == ["1234"] and decimal.convention == ReceiptIds.HEX_RECEIPT
    # Parts of a long message are found under its first part's id.
    decimal.remember("1235", "1234")
    assert decimal.match("1235") == ["1234"]


def test_esm_class_tells_receipts_from_customer_messages() -> None:
    assert is_receipt(0x04) and is_receipt(0x20) and not is_receipt(0x00) and not is_receipt(0x40)


def test_a_16_bit_reference_and_message_class_codings() -> None:
    segment, rest = split_udh(bytes([6, 8, 4, 0x12, 0x34, 3, 2]) + "ab".encode("utf-16-be"), 0x40)
    assert (segment.reference, segment.total, segment.number, rest) == (0x1234, 3, 2, "ab".encode("utf-16-be"))
    assert split_udh(bytes([5, 0, 3, 1, 2, 3]) + b"x", 0x40)[0] is None  # part 3 of 2: not a concatenation
    assert decode_text(b"Hello", 0xF0) == "Hello" and decode_text(b"\xe9t\xe9", 0xF4) == "été"
    assert decode_text(b"\x1b\x65 5", 0) == "€ 5" and decode_text(b"\xff\xfe", 0) == "ÿþ"  # not GSM: kept as Latin-1


@pytest.mark.parametrize(
    "text, parts, coding",
    [
        ("a" * 160, 1, 0),
        ("a" * 161, 2, 0),
        ("€" * 80, 1, 0),
        ("€" * 81, 2, 0),
        ("я" * 70, 1, 8),
        ("я" * 71, 2, 8),
        ("😀" * 35, 1, 8),
        ("😀" * 36, 2, 8),
    ],
)
def test_part_counts_at_the_limits(text: str, parts: int, coding: int) -> None:
    encoded = encode_parts(text, 1)
    assert len(encoded) == parts and {p.data_coding for p in encoded} == {coding}


def test_a_part_never_cuts_an_escape_or_a_surrogate_pair() -> None:
    for text in ("x" + "€" * 100, "я" + "😀" * 50):
        encoded = encode_parts(text, 9)
        joined = "".join(decode(p.data[6:], p.data_coding) for p in encoded)
        assert joined == text
    with pytest.raises(ValueError, match="at most 255"):
        encode_parts("я" * 67 * 256, 1)


def test_smpp_absolute_times_with_their_quarter_hour_offsets() -> None:
    assert smpp_time("261130101500012+").isoformat() == "2026-11-30T07:15:00+00:00"
    assert smpp_time("000012000000000R") is None and smpp_time("") is None
