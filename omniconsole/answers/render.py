"""An answer's Markdown body as each channel shows it.

* Telegram: the message's body is plain text (what the Telegram connector sends today), and
  `meta` carries the same answer in Telegram's HTML formatting (`parse_mode=HTML`: b, i, s,
  code, pre, a href; Bot API "Formatting options"), for a connector that honours it.
* E-mail: a plain text part (the body) and an HTML part in `meta["html"]`.
* WhatsApp: WhatsApp's own markup (*bold*, _italic_, ~strike~, ```code```).
* VK, phone, SMS, the web chat and anything else: plain text.

Links are kept everywhere: in plain text as "label (https://...)" unless the label is the
address itself. Lengths are the outbox's business: every connector cuts a long body with the
shared `split_text` (connectors/text.py) at its channel's limit, so rendering never truncates.
Markdown is parsed with markdown-it-py (CommonMark; the parser Rich itself uses).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("strikethrough")


@dataclass(frozen=True, slots=True)
class Rendered:
    """An answer ready for a channel: `text` is the message body to queue; `meta` what the
    channel may use besides it ({"parse_mode": "HTML", "formatted": ...} for Telegram,
    {"html": ...} for e-mail)."""

    text: str
    meta: dict = field(default_factory=dict)


_STYLES = {
    # token type -> (open, close) per style
    "plain": {"strong": ("", ""), "em": ("", ""), "s": ("", ""), "code": ("", "")},
    "whatsapp": {"strong": ("*", "*"), "em": ("_", "_"), "s": ("~", "~"), "code": ("```", "```")},
    "telegram": {"strong": ("<b>", "</b>"), "em": ("<i>", "</i>"), "s": ("<s>", "</s>"), "code": ("<code>", "</code>")},
}


def _inline(children: list[Token], style: str) -> str:
    marks = _STYLES[style]
    escape = html.escape if style == "telegram" else (lambda text, quote=False: text)
    out: list[str] = []
    links: list[str] = []
    label_start: list[int] = []
    for token in children:
        kind = token.type
        if kind == "text":
            out.append(escape(token.content, quote=False))
        elif kind == "code_inline":
            open_, close = marks["code"]
            out.append(f"{open_}{escape(token.content, quote=False)}{close}")
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind.endswith("_open") and kind[:-5] in ("strong", "em", "s"):
            out.append(marks[kind[:-5]][0])
        elif kind.endswith("_close") and kind[:-6] in ("strong", "em", "s"):
            out.append(marks[kind[:-6]][1])
        elif kind == "link_open":
            href = str(token.attrs.get("href", ""))
            links.append(href)
            label_start.append(len(out))
            if style == "telegram":
                out.append(f'<a href="{html.escape(href, quote=True)}">')
        elif kind == "link_close":
            href = links.pop()
            start = label_start.pop()
            if style == "telegram":
                out.append("</a>")
            else:
                label = "".join(out[start:])
                if label.strip() and label.strip() != href and href:
                    out.append(f" ({href})")
                elif not label.strip():
                    out.append(href)
        elif kind == "image":
            src = str(token.attrs.get("src", ""))
            out.append(escape(f"{token.content or 'image'} ({src})", quote=False))
        elif kind == "html_inline":
            out.append(escape(token.content, quote=False))
    return "".join(out)


def _blocks(markdown: str, style: str) -> str:
    tokens = _MD.parse(markdown)
    lines: list[str] = []
    lists: list[list[int | None]] = []  # per open list: [next number] or [None] for bullets
    for index, token in enumerate(tokens):
        kind = token.type
        if kind == "bullet_list_open":
            lists.append([None])
        elif kind == "ordered_list_open":
            lists.append([int(token.attrs.get("start", 1) or 1)])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                lines.append("")
        elif kind == "inline":
            text = _inline(token.children or [], style)
            parent = tokens[index - 1].type if index else ""
            if parent == "heading_open":
                marks = _STYLES[style]["strong"]
                lines.append(f"{marks[0]}{text}{marks[1]}")
                lines.append("")
            elif lists:
                counter = lists[-1]
                indent = "  " * (len(lists) - 1)
                if _first_in_item(tokens, index):
                    if counter[0] is None:
                        bullet = "•"
                    else:
                        bullet = f"{counter[0]}."
                        counter[0] += 1
                    lines.append(f"{indent}{bullet} {text}")
                else:
                    lines.append(f"{indent}  {text}")
            else:
                lines.append(text)
                lines.append("")
        elif kind in ("fence", "code_block"):
            content = token.content.rstrip("\n")
            if style == "telegram":
                lines.append(f"<pre>{html.escape(content, quote=False)}</pre>")
            elif style == "whatsapp":
                lines.append(f"```{content}```")
            else:
                lines.append(content)
            lines.append("")
        elif kind == "hr":
            lines.append("———")
            lines.append("")
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip()


def _first_in_item(tokens: list[Token], index: int) -> bool:
    return index >= 2 and tokens[index - 2].type == "list_item_open"


def to_plain(markdown: str) -> str:
    """Markdown as plain text: lists as • and 1., links as "label (address)"."""
    return _blocks(markdown, "plain")


def to_telegram_html(markdown: str) -> str:
    """Markdown in Telegram's HTML formatting (every text escaped, so an article's `<` or `&`
    cannot break the message)."""
    return _blocks(markdown, "telegram")


def to_whatsapp(markdown: str) -> str:
    """Markdown in WhatsApp's markup."""
    return _blocks(markdown, "whatsapp")


def to_email_html(markdown: str) -> str:
    """Markdown as an HTML fragment for an e-mail's HTML part (raw HTML in the article is
    escaped, not passed through)."""
    return _MD.render(markdown)


def render(markdown: str, channel_kind: str) -> Rendered:
    """The answer `markdown` (placeholders already filled) for a channel kind: telegram,
    email, whatsapp, vk, phone, sms, web, ... (unknown kinds get plain text)."""
    if channel_kind == "telegram":
        return Rendered(to_plain(markdown), {"parse_mode": "HTML", "formatted": to_telegram_html(markdown)})
    if channel_kind == "email":
        return Rendered(to_plain(markdown), {"html": to_email_html(markdown)})
    if channel_kind == "whatsapp":
        return Rendered(to_whatsapp(markdown))
    return Rendered(to_plain(markdown))
