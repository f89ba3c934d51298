"""Drawing untrusted text: everything a customer or a channel sent becomes `rich.text.Text`
built from plain strings (never parsed as markup), with control characters removed again in
case a row predates ingest's sanitising."""

from __future__ import annotations

import time

from rich.text import Text

from omniconsole.models import sanitize_text

BADGES = {
    "telegram": ("TG", "bold white on #229ED9"),
    "email": ("EM", "bold white on #B5541C"),
    "phone": ("PH", "bold white on #4E7D34"),
    "vk": ("VK", "bold white on #0077FF"),
    "whatsapp": ("WA", "bold white on #1E8E55"),
    "web": ("WEB", "bold white on #6B4FBB"),
    "webchat": ("WEB", "bold white on #6B4FBB"),
    # A phone line's calls (the telephony channel) look like the phone they are.
    "telephony": ("PH", "bold white on #4E7D34"),
    "api": ("API", "bold white on #5A6270"),
    "external": ("API", "bold white on #5A6270"),
    "demo": ("DE", "bold white on grey35"),
}
#: A channel's health as a symbol (its colour is the status bar's `status-bar--<health>`).
HEALTH = {"up": "●", "degraded": "▲", "down": "✖", "unknown": "○"}
#: What we sent, by delivery state (coloured by the timeline's `timeline--state-<state>`).
STATE = {
    "queued": "◷ queued",
    "sending": "◷ sending",
    "sent": "✓ sent",
    "delivered": "✓✓ delivered",
    "read": "✓✓ read",
    "failed": "✗ failed",
}
PRIORITY = {0: "", 1: "high", 2: "urgent"}


def safe(text: str | None, style: str = "") -> Text:
    """Untrusted text as literal Text: no markup, no control sequences."""
    return Text(sanitize_text(text or ""), style=style, end="")


def one_line(text: str | None, width: int | None = None) -> str:
    """Untrusted text folded to one line (for lists), optionally cut to `width` cells. Only the
    start of a long text is read (a 20 MB body must not cost a list row 100 ms)."""
    text = text or ""
    if width is not None and len(text) > 8 * width + 256:
        text = text[: 8 * width + 256]
    line = " ".join(sanitize_text(text).split())
    if width is not None and len(line) > width:
        line = line[: max(0, width - 1)] + "…"
    return line


def badge(kind: str | None) -> Text:
    label, style = BADGES.get(kind or "", ((kind or "?")[:3].upper(), "bold white on grey35"))
    return Text(f"{label}", style=style, end="")


def countdown(due: float, now: float) -> str:
    """Time left until `due` (epoch seconds), shortly: <1m, 12m, 3h, 2d; negative once past
    ("-5m", "-<1m"): the SLA countdown of an inbox row. Minutes at the finest, as the inbox
    redraws its rows once a minute."""
    left = int(due - now)
    sign, seconds = ("-", -left) if left < 0 else ("", left)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{sign}{seconds // size}{unit}"
    return f"{sign}<1m"


def sla_urgency(due: float, stage: int, now: float) -> str:
    """`ok` (green), `warning` (amber: a warning share was recorded) or `breach` (red: past due)."""
    if stage >= 2 or due <= now:
        return "breach"
    return "warning" if stage == 1 else "ok"


def ago(moment: float | None, now: float | None = None) -> str:
    """How long ago, shortly: 45s, 12m, 3h, 5d."""
    if moment is None:
        return ""
    seconds = max(0, int((now if now is not None else time.time()) - moment))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def clock_time(moment: float, now: float | None = None) -> str:
    """HH:MM today, else 'D Mon HH:MM'."""
    local = time.localtime(moment)
    today = time.localtime(now if now is not None else time.time())
    if local[:3] == today[:3]:
        return time.strftime("%H:%M", local)
    return time.strftime("%d %b %H:%M", local)


def counted(n: int, word: str, plural: str | None = None) -> str:
    """`1 customer`, `2 customers`, `0 messages` (English plurals: `plural` when not word+s)."""
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"
