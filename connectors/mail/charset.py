"""Text in whatever charset it came in: declared charsets are trusted only as far as they
decode, mislabelled and unknown ones (`unknown-8bit`, no label at all) are guessed: UTF-8,
then the Cyrillic single-byte charsets by their letter statistics, then windows-1252 with
replacement characters. Header values get the same guessing (`decode_header_text`) before the
email package would turn their bytes into U+FFFD.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re

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
        return codecs.lookup(label).name
    except (LookupError, UnicodeError, ValueError):  # unknown, or 8-bit junk in the label
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


# RFC 2047 encoded words; the charset may carry an RFC 2231 language ("utf-8*ru").
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,75})\?([QqBb])\?([^?\s]*)\?=")
_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def _word_bytes(encoding: str, text: str) -> bytes:
    """The bytes an encoded word carries; lenient about padding and stray characters."""
    data = text.encode("ascii", "replace")
    if encoding in "Qq":
        return binascii.a2b_qp(data, header=True)
    data = _BASE64_JUNK.sub(b"", data)
    data += b"=" * (-len(data) % 4)
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        return data


def _plain_header_text(text: str) -> str:
    # The parser keeps undeclared 8-bit header bytes as surrogates (surrogateescape).
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        return decode_text(text.encode("utf-8", "surrogateescape"))[0]
    return text


#: Longer values are decoded without the cache, so hostile headers cannot fill memory.
CACHED_VALUE_CHARS = 2000


def decode_header_text(value: str) -> str:
    """A raw header or parameter value as a person reads it. Never raises.

    RFC 2047 encoded words are decoded with `decode_text`, so a label that says nothing
    (`unknown-8bit`, `x-unknown`) or lies gets the charset guessing a body gets; adjacent words
    of one charset are joined before decoding (a letter may be split between two words) and
    the whitespace between encoded words is dropped (RFC 2047 6.2). Raw 8-bit bytes outside
    encoded words (kept by the parser as surrogates) are guessed the same way. Whitespace and
    folding collapse to single spaces. Cached: a mailbox repeats its names and subjects."""
    return _decode_cached(value) if len(value) <= CACHED_VALUE_CHARS else _decode_header_text(value)


@functools.lru_cache(maxsize=4096)
def _decode_cached(value: str) -> str:
    return _decode_header_text(value)


def _decode_header_text(value: str) -> str:
    if "=?" not in value:
        return " ".join(_plain_header_text(value).split())
    out: list[str] = []
    pending: bytearray = bytearray()
    pending_charset: str | None = None
    position = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(decode_text(bytes(pending), pending_charset)[0])
            pending.clear()
            pending_charset = None

    for word in _ENCODED_WORD.finditer(value):
        between = value[position : word.start()]
        position = word.end()
        if between and not (pending_charset is not None and not between.strip()):
            flush()
            out.append(_plain_header_text(between))
        charset = word.group(1).split("*", 1)[0].lower()
        if pending_charset is not None and charset != pending_charset:
            flush()
        pending_charset = charset
        pending.extend(_word_bytes(word.group(2), word.group(3)))
    flush()
    out.append(_plain_header_text(value[position:]))
    return " ".join("".join(out).split())
