"""Reading JSON bodies from outside (connectors/json_body.py): what RFC 8259 does not call JSON
is refused in words, lone surrogates are repaired, nesting is bounded."""

from __future__ import annotations

import json

import pytest

from connectors.json_body import MAX_DEPTH, JsonRefused, read_json, repair_text


def test_lone_surrogates_become_the_replacement_character_and_pairs_stay_whole() -> None:
    value = read_json(b'{"text": "a\\ud83d b \\ud83d\\ude00 c\\udc00", "\\ud800key": ["\\udfff"]}')
    assert value == {"text": "a\ufffd b 😀 c\ufffd", "\ufffdkey": ["\ufffd"]}
    assert json.dumps(value, ensure_ascii=False).encode("utf-8")  # it can be stored and logged now
    assert repair_text("plain") == "plain" and repair_text("ж\ud83d") == "ж\ufffd"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"duration": NaN}', "NaN is not a JSON number"),
        (b'{"duration": Infinity}', "Infinity is not a JSON number"),
        (b'{"duration": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"duration": 1e999}', "1e999 is too large"),
        (b'{"id": 9223372036854775808}', "at most 64 bits"),
        (b'{"id": ' + b"9" * 5000 + b"}", "at most 64 bits"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested too deeply"),
        (b"\xff", "not UTF-8"),
        (b"{", "not valid JSON"),
        (b"", "not valid JSON"),
    ],
)
def test_what_is_not_json_is_refused_in_words(body: bytes, words: str) -> None:
    with pytest.raises(JsonRefused, match=words):
        read_json(body)


def test_what_json_allows_is_read() -> None:
    assert read_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    assert read_json(b'{"id": -9223372036854775808, "x": 1.5e300, "y": null}') == {"id": -(2**63), "x": 1.5e300, "y": None}
