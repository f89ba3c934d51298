"""Text helpers every connector needs: cutting a long reply into the parts a channel accepts."""

from __future__ import annotations

import html
import re
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


_MARKUP_TOKEN = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^<>]*>|&(?:#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);|[^<&]+|[<&]")


def split_html(markup: str, limit: int) -> list[str]:
    """Cut HTML-formatted text (Telegram's `parse_mode=HTML`) into parts whose *shown* text fits
    `limit` UTF-16 code units, as Telegram counts after parsing entities. The cuts fall where
    `split_text` would cut the shown text; no tag or entity is cut, and a part that starts or
    ends inside an element gets it reopened or closed (`<b>…</b>` then `<b>…</b>`), so every
    part is well-formed on its own."""
    # The markup as a sequence of tags and shown characters, each character with its source
    # (an entity such as &lt; counts as the one character it shows).
    items: list[tuple[str, str, str]] = []  # ("tag", raw, name) / ("end", raw, name) / ("char", shown, raw)
    for match in _MARKUP_TOKEN.finditer(markup):
        raw = match.group(0)
        if match.group(2):
            items.append(("end" if match.group(1) else "tag", raw, match.group(2).lower()))
        elif raw.startswith("&") and raw.endswith(";"):
            items.append(("char", html.unescape(raw), raw))
        else:
            items.extend(("char", char, html.escape(char, quote=False)) for char in raw)
    shown = "".join(item[1] for item in items if item[0] == "char")
    ranges: list[tuple[int, int]] = []
    cursor = 0
    for part in split_text(shown, limit):
        start = shown.find(part, cursor)
        ranges.append((start, start + len(part)))
        cursor = start + len(part)
    parts: list[str] = []
    stack: list[tuple[str, str]] = []  # open elements: (name, opening tag)
    index = -1  # shown characters passed
    position = 0
    for start, end in ranges:
        out: list[str] = []
        # Elements opened before the part's first character (and not yet closed) are reopened.
        while position < len(items) and not (items[position][0] == "char" and index + 1 >= start):
            kind, raw, name = items[position]
            if kind == "char":
                index += 1
            elif kind == "tag":
                stack.append((name, raw))
            elif stack and stack[-1][0] == name:
                stack.pop()
            position += 1
        out.extend(opening for _, opening in stack)
        while position < len(items):
            kind, raw, name = items[position]
            if kind == "char":
                if index + 1 >= end:
                    break
                index += 1
                out.append(name)
            elif kind == "tag":
                stack.append((name, raw))
                out.append(raw)
            else:
                if stack and stack[-1][0] == name:
                    stack.pop()
                out.append(raw)
            position += 1
        # Elements still open at the part's end are closed here and reopened in the next.
        while position < len(items) and items[position][0] == "end" and stack and stack[-1][0] == items[position][2]:
            out.append(items[position][1])
            stack.pop()
            position += 1
        out.extend(f"</{name}>" for name, _ in reversed(stack))
        parts.append("".join(out))
    return parts


def html_to_text(markup: str) -> str:
    """The text HTML-formatted markup shows: tags dropped, entities resolved."""
    return "".join(
        html.unescape(raw) if not match.group(2) else "" for match in _MARKUP_TOKEN.finditer(markup) for raw in [match.group(0)]
    )
