"""Text helpers every connector needs: cutting a long reply into the parts a channel accepts."""

from __future__ import annotations

import unicodedata


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram and VK count their limits (an emoji outside
    the BMP is two)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, *, utf16: bool = True) -> list[str]:
    """Cut text into parts of at most `limit` (UTF-16 code units, or characters with
    `utf16=False`), in order: at a line break in the second half of a part if there is one,
    else at a space, else between two characters that do not form one symbol (never inside an
    emoji sequence or after a base letter's accent). Whitespace-only parts are dropped."""
    fitting = _fitting_prefix if utf16 else _fitting_chars
    parts: list[str] = []
    rest = text
    while (cut := fitting(rest, limit)) < len(rest):
        window = rest[:cut]
        boundary = window.rfind("\n")
        if boundary < cut // 2:
            boundary = max(window.rfind(" "), window.rfind("\t"))
        if boundary >= cut // 2 and boundary > 0:
            part, rest = rest[:boundary], rest[boundary + 1 :]
        else:
            while cut > limit // 2 and _continues_symbol(rest, cut):
                cut -= 1
            part, rest = rest[:cut], rest[cut:]
        if part.strip():
            parts.append(part)
    if rest.strip():
        parts.append(rest)
    return parts


def _fitting_prefix(text: str, limit: int) -> int:
    """The number of characters of `text` that fit in `limit` UTF-16 code units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _fitting_chars(text: str, limit: int) -> int:
    return min(len(text), limit)


def _continues_symbol(text: str, index: int) -> bool:
    """Whether text[index] belongs to the symbol before it (a combining mark, a variation
    selector, a skin tone, either side of a zero-width joiner, a subdivision flag's tags)."""
    char, before = text[index], text[index - 1]
    return (
        unicodedata.combining(char) != 0
        or char in "\u200d\ufe0e\ufe0f"
        or before == "\u200d"
        or 0x1F3FB <= ord(char) <= 0x1F3FF
        or 0xE0020 <= ord(char) <= 0xE007F
    )
