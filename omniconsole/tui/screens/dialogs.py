"""Small modal dialogs: confirm, choose one of a list, type a line. Each returns its answer
through `dismiss` (None when cancelled with Escape)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from omniconsole.errors import error_text
from omniconsole.i18n import N_, _
from omniconsole.tui.widgets.dialog_list import DialogList


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question: y or Enter confirms, n or Escape declines."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", N_("Yes"), id="confirm.yes"),
        Binding("n,escape", "answer(False)", N_("No"), id="confirm.no"),
    ]

    def __init__(self, question: Text | str) -> None:
        super().__init__()
        self.question = question if isinstance(question, Text) else Text(question)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, markup=False)
            yield Label(Text(_("y yes   n no"), style="grey62"), markup=False)

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class ChoiceDialog(ModalScreen[str | None]):
    """Pick one option; each option is (value, label as literal Text). j/k move as in the
    inbox (every dialog list is one of these or builds on it)."""

    BINDINGS = [
        Binding("escape", "cancel", N_("Cancel"), id="choice.cancel"),
        Binding("j", "move(1)", N_("Down"), show=False, id="choice.down"),
        Binding("k", "move(-1)", N_("Up"), show=False, id="choice.up"),
    ]

    def __init__(self, title: str, options: list[tuple[str, Text | str]]) -> None:
        super().__init__()
        self.title_text = title
        self.options = options

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text, style="bold"), markup=False)
            yield DialogList(
                *[Option(label if isinstance(label, Text) else Text(label), id=value) for value, label in self.options],
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        options.action_cursor_down() if step > 0 else options.action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)


class InputDialog(ModalScreen[str | None]):
    """Type one line (Enter accepts, Escape cancels)."""

    BINDINGS = [Binding("escape", "cancel", N_("Cancel"), id="input.cancel")]

    def __init__(self, title: str, value: str = "", placeholder: str = "", hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text, style="bold"), markup=False)
            yield Input(value=self.value, placeholder=self.placeholder)
            if self.hint:
                yield Label(Text(self.hint, style="grey62"), markup=False)

    def on_mount(self) -> None:
        line = self.query_one(Input)
        line.cursor_blink = False
        line.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextDialog(ModalScreen[str | None]):
    """Edit several lines (ctrl+s saves, Escape cancels): a customer's note."""

    BINDINGS = [
        Binding("ctrl+s", "save", N_("Save"), id="text.save"),
        Binding("escape", "cancel", N_("Cancel"), id="text.cancel"),
    ]

    def __init__(self, title: str, value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.value = value

    def compose(self) -> ComposeResult:
        from textual.widgets import TextArea

        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text, style="bold"), markup=False)
            yield TextArea(self.value, id="text")
            yield Label(Text(_("ctrl+s saves, Escape cancels"), style="grey62"), markup=False)

    def on_mount(self) -> None:
        from textual.widgets import TextArea

        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        from textual.widgets import TextArea

        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SnoozeDialog(ModalScreen[float | None]):
    """Until when to snooze: an hour, tomorrow morning, or a typed date (local time). Returns
    the moment in epoch seconds, None when cancelled. A typed date that cannot be used is
    refused in words (`omniconsole.core.snooze`) and can be corrected."""

    BINDINGS = [Binding("escape", "cancel", N_("Cancel"), id="snooze.cancel")]

    def __init__(self, now: float) -> None:
        super().__init__()
        self.now = now

    def compose(self) -> ComposeResult:
        from omniconsole.core.snooze import tomorrow_morning
        from omniconsole.tui.text import day_time

        morning = day_time(tomorrow_morning(self.now), weekday=True)
        with Vertical(classes="dialog"):
            yield Label(Text(_("Snooze until"), style="bold"), markup=False)
            yield DialogList(
                Option(Text(_("1 hour")), id="hour"),
                Option(Text(_("tomorrow morning ({moment})").format(moment=morning)), id="tomorrow"),
                Option(Text(_("a date…")), id="date"),
                markup=False,
            )
            line = Input(placeholder=_("YYYY-MM-DD HH:MM"), id="snooze-date")
            line.cursor_blink = False
            line.display = False
            yield line
            hint = Label(Text(_("local time; Enter snoozes, Esc cancels"), style="grey62"), markup=False, id="snooze-hint")
            hint.display = False
            yield hint

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        from omniconsole.core.snooze import in_an_hour, tomorrow_morning

        if event.option.id == "hour":
            self.dismiss(in_an_hour(self.now))
        elif event.option.id == "tomorrow":
            self.dismiss(tomorrow_morning(self.now))
        else:
            self.query_one(OptionList).display = False
            self.query_one("#snooze-hint").display = True
            line = self.query_one(Input)
            line.display = True
            line.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from omniconsole.core.snooze import SnoozeError, parse_until

        if not event.value.strip():
            self.dismiss(None)
            return
        try:
            self.dismiss(parse_until(event.value, self.now))
        except SnoozeError as exc:
            self.notify(error_text(exc), severity="error", markup=False)

    def action_cancel(self) -> None:
        self.dismiss(None)
