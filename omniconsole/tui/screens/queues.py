"""The queue view (issue #18): each queue with how many conversations wait and the longest
wait, then the team with each operator's status, load (2/5) and skills. A list dialog (j/k
move, Escape closes); it reads the store once when opened."""

from __future__ import annotations

import time

from rich.text import Text

from omniconsole.routing.service import queue_overview, team_lines
from omniconsole.tui.screens.dialogs import ChoiceDialog
from omniconsole.tui.text import one_line, safe

STATUS_STYLE = {"online": "green", "away": "yellow", "offline": "grey50"}


def wait_words(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h 05 min`."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:02.0f} min"


def operator_line(login: str, status: str, load: str, skills: str) -> Text:
    """`anna  online  2/5  ru, en` with the status coloured; names drawn as data."""
    line = Text(end="")
    line.append_text(safe(one_line(login, 16)))
    line.append("  ")
    line.append(f"{status:<7}", style=STATUS_STYLE.get(status, ""))
    line.append(f"  {load:>6}")
    if skills:
        line.append("  ")
        line.append_text(safe(one_line(skills, 30)))
    return line


async def queue_dialog(store, settings, now: float | None = None) -> ChoiceDialog:
    """The dialog with the queues and the team as they are now."""
    now = time.time() if now is None else now
    options: list[tuple[str, Text | str]] = []
    for name, count, longest in await queue_overview(store, settings, now):
        line = Text(end="")
        line.append_text(safe(one_line(name, 20)))
        line.append(f"  {count} waiting" + (f", longest {wait_words(longest)}" if count else ""))
        options.append((f"queue:{name}", line))
    for login, status, load, skills in await team_lines(store, settings):
        options.append((f"operator:{login}", operator_line(login, status, load, skills)))
    return ChoiceDialog("Queues and team", options)
