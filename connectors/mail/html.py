"""HTML mail as readable text: blocks become lines, links keep their target ("text (URL)"),
`<blockquote>` lines get "> " so the quoted history folds like plain mail. Pure functions on
the stdlib's lenient `html.parser`.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

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
