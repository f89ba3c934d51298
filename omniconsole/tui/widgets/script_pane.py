"""An operator script in a side pane while the operator works: its numbered steps, each
insertable into the reply (Enter posts `ScriptPane.InsertStep`), the step reached marked ▶ and
the steps done marked ✓. After a step with one unconditional `→ N` the pane moves to step N;
after a branching step it waits on the first branch's target and shows the branches, so the
operator picks with j/k.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from omniconsole.answers.scripts import Step, parse_script
from omniconsole.i18n import N_, _
from omniconsole.models import sanitize_text
from omniconsole.store.answers import ArticleRecord
from omniconsole.tui.widgets.dialog_list import DialogList


class ScriptPane(Vertical):
    """One script's steps; see the module's docstring."""

    DEFAULT_CSS = """
    ScriptPane { width: 40; border-left: solid $accent; padding: 0 1; }
    ScriptPane #script-title { text-style: bold; }
    ScriptPane OptionList { border: none; height: 1fr; }
    """

    BINDINGS = [
        Binding("j", "cursor_down", N_("Next step"), show=False, id="script.down"),
        Binding("k", "cursor_up", N_("Previous step"), show=False, id="script.up"),
        Binding("escape", "close", N_("Close script"), id="script.close"),
    ]

    class InsertStep(Message):
        """Insert this step's text into the reply."""

        def __init__(self, step: Step) -> None:
            super().__init__()
            self.step = step

    class Closed(Message):
        """The operator closed the script."""

    def __init__(self, record: ArticleRecord, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.record = record
        self.steps = parse_script(record.body)
        self.reached: int | None = self.steps[0].number if self.steps else None
        self.done: set[int] = set()

    def compose(self) -> ComposeResult:
        yield Label(Text(sanitize_text(self.record.title)), id="script-title", markup=False)
        yield DialogList(*[Option(self._label(step), id=str(step.number)) for step in self.steps], markup=False)

    def on_mount(self) -> None:
        self._refresh(focus_reached=True)

    def _label(self, step: Step) -> Text:
        mark = "▶ " if step.number == self.reached else ("✓ " if step.number in self.done else "  ")
        label = Text(mark, style="bold green" if step.number == self.reached else "grey62", end="")
        label.append(f"{step.number}. ", style="bold")
        label.append(sanitize_text(step.text), style="grey62" if step.number in self.done else "")
        for branch in step.branches:
            condition = _("if {condition}:").format(condition=sanitize_text(branch.condition)) + " " if branch.condition else ""
            label.append(f"  {condition}→ {branch.target}", style="cyan")
        return label

    def _refresh(self, *, focus_reached: bool = False) -> None:
        options = self.query_one(OptionList)
        for index, step in enumerate(self.steps):
            options.replace_option_prompt_at_index(index, self._label(step))
        if focus_reached and self.reached is not None:
            options.highlighted = self._index(self.reached)

    def _index(self, number: int) -> int:
        return next((i for i, s in enumerate(self.steps) if s.number == number), 0)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        step = self.steps[event.option_index]
        self.post_message(self.InsertStep(step))
        self.done.add(step.number)
        if step.branches:
            self.reached = step.branches[0].target
        else:
            following = [s.number for s in self.steps if s.number > step.number]
            self.reached = following[0] if following else None
        self._refresh(focus_reached=True)

    def action_cursor_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()

    def action_close(self) -> None:
        self.post_message(self.Closed())
