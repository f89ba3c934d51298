"""The queue view (issue #18): each queue with how many conversations wait and the longest
wait, then the team with each operator's status, load (2/5) and skills. A list dialog (j/k
move, Escape closes), redrawn whenever the events log grows while it is open."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from omniconsole.i18n import _
from omniconsole.routing.service import queue_overview, team_lines
from omniconsole.tui.screens.dialogs import ChoiceDialog
from omniconsole.tui.text import one_line, safe
from omniconsole.tui.widgets.status_bar import PRESENCE

STATUS_STYLE = {"online": "green", "away": "yellow", "offline": "grey50"}


def wait_words(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h 05 min` (Russian: `45 с`, `12 мин`, `3 ч 05 мин`)."""
    if seconds < 60:
        return _("{n} s").format(n=f"{seconds:.0f}")
    if seconds < 3600:
        return _("{n} min").format(n=f"{seconds // 60:.0f}")
    return _("{h} h {m} min").format(h=f"{seconds // 3600:.0f}", m=f"{seconds % 3600 // 60:02.0f}")


def operator_line(login: str, status: str, load: str, skills: str) -> Text:
    """`anna  online  2/5  ru, en` with the status coloured; names drawn as data."""
    line = Text(end="")
    line.append_text(safe(one_line(login, 16)))
    line.append("  ")
    width = max(len(_(word)) for word in PRESENCE.values())
    line.append(f"{_(PRESENCE[status]) if status in PRESENCE else status:<{width}}", style=STATUS_STYLE.get(status, ""))
    line.append(f"  {load:>6}")
    if skills:
        line.append("  ")
        line.append_text(safe(one_line(skills, 30)))
    return line


async def queue_options(store, settings, now: float) -> list[tuple[str, Text | str]]:
    """The dialog's lines as they are now: the queues, then the team."""
    options: list[tuple[str, Text | str]] = []
    for name, count, longest in await queue_overview(store, settings, now):
        line = Text(end="")
        line.append_text(safe(one_line(name, 20)))
        line.append(
            "  "
            + _("{n} waiting").format(n=count)
            + (", " + _("longest {wait}").format(wait=wait_words(longest)) if count else "")
        )
        options.append((f"queue:{name}", line))
    for login, status, load, skills in await team_lines(store, settings):
        options.append((f"operator:{login}", operator_line(login, status, load, skills)))
    return options


class QueueDialog(ChoiceDialog):
    """The queue view. It stays live: the main screen hands it each batch of the follower's
    changes (`reload_queues`), in-process or through the core's socket alike."""

    def __init__(self, store, settings, options: list[tuple[str, Text | str]]) -> None:
        super().__init__(_("Queues and team"), options)
        self.store = store
        self.settings = settings

    async def reload_queues(self, now: float) -> None:
        """Read the queues and the team again and redraw, keeping the highlighted line."""
        self.options = await queue_options(self.store, self.settings, now)
        options = self.query_one(OptionList)
        keep = options.highlighted
        options.clear_options()
        options.add_options(
            [Option(label if isinstance(label, Text) else Text(label), id=value) for value, label in self.options]
        )
        if keep is not None and self.options:
            options.highlighted = min(keep, len(self.options) - 1)


async def queue_dialog(store, settings, now: float | None = None) -> QueueDialog:
    """The dialog with the queues and the team as they are now (then kept live)."""
    now = time.time() if now is None else now
    return QueueDialog(store, settings, await queue_options(store, settings, now))
