"""Macros in the window (issue #19), kept out of screens/main.py: `M` (or the palette's "Run a
macro", or a macro's own `key`) opens `MacroDialog` — pick a macro, read what it will do in
words, run it and stay (Enter) or run it and go to the next waiting conversation (ctrl+n).
The macro runs through Store methods (omniconsole/automation/macros.py). Also: notices that
rules send to this operator (`notify`) appear as toasts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from omniconsole.i18n import N_, _
from omniconsole.tui.text import safe
from omniconsole.tui.widgets.dialog_list import DialogList

if TYPE_CHECKING:  # the rules module is read when macros are first listed
    from omniconsole.automation.rules import Macro


class MacroDialog(ModalScreen[tuple[str, bool] | None]):
    """Pick a macro with its preview; returns (macro name, go to the next conversation) or
    None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", N_("Cancel"), id="macro.cancel"),
        Binding("ctrl+n", "run(True)", N_("Run and go to the next"), id="macro.run_next"),
        Binding("j", "move(1)", N_("Down"), show=False, id="macro.down"),
        Binding("k", "move(-1)", N_("Up"), show=False, id="macro.up"),
    ]

    def __init__(self, macros: list[Macro], conversation_id: int) -> None:
        super().__init__()
        self.macros = macros
        self.conversation_id = conversation_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(_("Run a macro on conversation #{id}").format(id=self.conversation_id), style="bold"), markup=False)
            yield DialogList(
                *[Option(safe(m.name + (f"  [{m.key}]" if m.key else "")), id=str(n)) for n, m in enumerate(self.macros)],
                markup=False,
                id="macro-list",
            )
            yield Static(Text(""), id="macro-preview", markup=False)
            yield Label(Text(_("Enter run and stay   ctrl+n run and go to the next   Esc cancel"), style="grey62"), markup=False)

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        if self.macros:
            options.highlighted = 0
            self._show(0)

    @property
    def chosen(self) -> Macro | None:
        index = self.query_one(OptionList).highlighted
        return self.macros[index] if index is not None and 0 <= index < len(self.macros) else None

    def _show(self, index: int) -> None:
        macro = self.macros[index]
        lines = Text(_("It will:") + "\n", style="bold")
        for line in macro.describe():
            lines.append_text(safe(f"  • {line}\n"))
        self.query_one("#macro-preview", Static).update(lines)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None:
            self._show(int(event.option.id))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss((self.macros[int(event.option.id)].name, False))

    def action_run(self, go_next: bool) -> None:
        if self.chosen is not None:
            self.dismiss((self.chosen.name, go_next))

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        options.action_cursor_down() if step > 0 else options.action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)


class MacroActions:
    """Mixed into MainScreen (which has `store`, `operator`, `conversation`, `_do`,
    `_need_conversation`, `action_next_waiting`)."""

    def macros(self) -> list[Macro]:
        automation = getattr(getattr(self.app, "settings", None), "automation", None)
        return automation.book.macros_for(self.operator.login) if automation is not None else []

    def on_mount(self) -> None:
        # Each macro's own key, if it has one; the palette lists it by its name.
        for macro in self.macros():
            if macro.key:
                self._bindings.bind(macro.key, f"run_macro({macro.name!r})", _("Macro: {name}").format(name=macro.name))

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_macros(self) -> None:
        if (c := self._need_conversation()) is None:
            return
        macros = self.macros()
        if not macros:
            self.app.notify(
                _("No macros: add [[macros]] to the rules file ([automation] rules in the config)"),
                severity="warning",
                markup=False,  # the brackets are TOML, not markup
            )
            return
        choice = await self.app.push_screen_wait(MacroDialog(macros, c.id))
        if choice is not None:
            await self._run_macro(*choice)

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_run_macro(self, name: str) -> None:
        if self._need_conversation() is not None:
            await self._run_macro(name, False)

    async def _run_macro(self, name: str, go_next: bool) -> None:
        from omniconsole.automation.macros import run_macro

        macro = next((m for m in self.macros() if m.name == name), None)
        conversation = self.conversation
        if macro is None or conversation is None:
            return
        profile = getattr(self.query_one("CustomerPane"), "profile", None)
        name_of = getattr(profile, "display_name", "") or ""
        did: list[str] = []

        async def run() -> None:
            did.extend(await run_macro(self.store, macro, conversation.id, self.operator.login, customer_name=name_of))

        if await self._do(run()):
            self.app.notify(safe(_("Macro {name}:").format(name=macro.name) + " " + "; ".join(did)), timeout=4, markup=False)
            if go_next:
                await self.action_next_waiting()

    def on_follower_store_changed(self, message) -> None:
        """A rule's notice addressed to this operator is shown once, as a toast."""
        for event in message.events:
            if event.kind != "rule.notify":
                continue
            try:
                payload = json.loads(event.payload or "{}")
            except ValueError:
                continue
            if self.operator.login in payload.get("operators", []):
                where = f" (#{event.conversation_id})" if event.conversation_id else ""
                rule = event.actor.removeprefix("rule:")
                self.app.notify(safe(f"{rule}{where}: {payload.get('text', '')}"), timeout=8, markup=False)
