"""Drawing untrusted text: everything a customer or a channel sent becomes `rich.text.Text`
built from plain strings (never parsed as markup), with control characters removed again in
case a row predates ingest's sanitising."""

from __future__ import annotations

import time

from rich.text import Text

from omniconsole.i18n import N_, Nn_, _, current_language, local_number, ngettext
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
#: What we sent, by delivery state (coloured by the timeline's `timeline--state-<state>`);
#: marked for the catalog, drawn through `_()`.
STATE = {
    "queued": N_("◷ queued"),
    "sending": N_("◷ sending"),
    "sent": N_("✓ sent"),
    "delivered": N_("✓✓ delivered"),
    "read": N_("✓✓ read"),
    "failed": N_("✗ failed"),
}
PRIORITY = {0: "", 1: N_("high"), 2: N_("urgent")}
#: A conversation's status as the operator reads it.
STATUS = {"open": N_("open"), "pending": N_("pending"), "snoozed": N_("snoozed"), "resolved": N_("resolved")}
#: Short units of `ago()` and `countdown()`, biggest first: (seconds, format of the count).
UNITS = ((86400, N_("{n}d")), (3600, N_("{n}h")), (60, N_("{n}m")))


def status_name(status: str) -> str:
    """A conversation's status in the operator's language (an unknown one as it is)."""
    return _(STATUS[status]) if status in STATUS else status


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
    for size, unit in UNITS:
        if seconds >= size:
            return sign + _(unit).format(n=seconds // size)
    return sign + _("<1m")


def sla_urgency(due: float, stage: int, now: float) -> str:
    """`ok` (green), `warning` (amber: a warning share was recorded) or `breach` (red: past due)."""
    if stage >= 2 or due <= now:
        return "breach"
    return "warning" if stage == 1 else "ok"


def ago(moment: float | None, now: float | None = None) -> str:
    """How long ago, shortly, for a list's column: 45s, 12m, 3h, 5d (Russian: 45 с, 12 мин, 3 ч,
    5 дн)."""
    if moment is None:
        return ""
    seconds = max(0, int((now if now is not None else time.time()) - moment))
    for size, unit in UNITS:
        if seconds >= size:
            return _(unit).format(n=seconds // size)
    return _("{n}s").format(n=seconds)


def ago_words(moment: float, now: float | None = None) -> str:
    """How long ago in words, for a sentence: "just now", "5 min ago", "3 h ago", "yesterday",
    "4 days ago" (Russian: "только что", "5 мин назад", "3 ч назад", "вчера", "4 дня назад").
    "Yesterday" is the calendar day before `now`'s, in local time."""
    now = now if now is not None else time.time()
    seconds = max(0, int(now - moment))
    if seconds < 60:
        return _("just now")
    if seconds < 3600:
        return _("{n} min ago").format(n=seconds // 60)
    local, today = time.localtime(moment), time.localtime(now)
    if local[:3] == today[:3]:
        return _("{n} h ago").format(n=seconds // 3600)
    if local[:3] == time.localtime(now - 86400)[:3]:
        return _("yesterday")
    days = max(2, seconds // 86400)
    return ngettext("{n} day ago", "{n} days ago", days).format(n=days)


def clock_time(moment: float, now: float | None = None) -> str:
    """HH:MM today, else 'D Mon HH:MM' (Russian: '15 янв. 08:00', CLDR's month names by Babel)."""
    local = time.localtime(moment)
    today = time.localtime(now if now is not None else time.time())
    if local[:3] == today[:3]:
        return time.strftime("%H:%M", local)
    return day_time(moment)


def day_time(moment: float, *, weekday: bool = False) -> str:
    """'15 Jan 08:00' in local time, 'Fri 15 Jan 08:00' with `weekday` (Russian: '15 янв.
    08:00', 'пт 15 янв. 08:00': CLDR's names by Babel, imported on first use so an English
    window does not pay for it)."""
    local = time.localtime(moment)
    if current_language() != "en":
        from datetime import datetime

        from babel.dates import format_datetime

        pattern = "EEE dd MMM HH:mm" if weekday else "dd MMM HH:mm"
        return format_datetime(datetime(*local[:6]), pattern, locale=current_language())
    return time.strftime("%a %d %b %H:%M" if weekday else "%d %b %H:%M", local)


def day_month(moment: float) -> str:
    """'15 Jan' in local time (Russian: '15 янв.', CLDR's by Babel)."""
    local = time.localtime(moment)
    if current_language() != "en":
        from datetime import datetime

        from babel.dates import format_datetime

        return format_datetime(datetime(*local[:6]), "dd MMM", locale=current_language())
    return time.strftime("%d %b", local)


def warm_up() -> None:
    """Load what Russian dates and numbers need (Babel's modules and its CLDR data for the
    language, ~40 ms CPU) ahead of the first row that shows one; run in a thread while the
    window starts, it uses the moments the start waits on the database and the terminal."""
    if current_language() != "en":
        day_time(0.0, weekday=True)
        number(12345)


def number(n: int | float) -> str:
    """A count with the language's digit groups: 12,345 (Russian: 12 345, CLDR's by Babel)."""
    return local_number(n, f"{n:,}")


def counted(n: int, word: str, plural: str | None = None) -> str:
    """`1 customer`, `2 customers`, `0 messages`: `word` and `plural` (default word+s) are
    English msgids; in Russian the catalog's forms for "{n} <word>" give 1 клиент, 2 клиента,
    5 клиентов (so each `word` used needs its "{n} word" / "{n} words" entry, see `COUNTED`)."""
    forms = COUNTED.get(word)
    if forms is None:
        return f"{number(n)} {word if n == 1 else (plural or word + 's')}"
    return ngettext(*forms, n).format(n=number(n))


#: The words `counted()` is called with, as catalog entries with their plural.
COUNTED = {
    "customer": Nn_("{n} customer", "{n} customers"),
    "message": Nn_("{n} message", "{n} messages"),
    "conversation": Nn_("{n} conversation", "{n} conversations"),
}
