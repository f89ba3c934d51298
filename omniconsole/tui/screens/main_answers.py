"""The main screen's part of the answers library (issue #16): the keys that act from anywhere
in the window (alt+1..3 take a suggestion, `K` the library, `S` saves the reply just sent as an
answer) and the script side pane beside the conversation. The reply box does the rest (picker,
suggestions, insertions, usage, rendering); this mixin only routes between it and the screen.
"""

from __future__ import annotations

from textual import work
from textual.binding import Binding
from textual.widgets import OptionList

from omniconsole.answers.language import detect_by_script
from omniconsole.i18n import N_, _
from omniconsole.tui.widgets.answer_suggestions import SUGGESTION_BINDINGS
from omniconsole.tui.widgets.customer_pane import CustomerPane
from omniconsole.tui.widgets.reply_box import ReplyBox
from omniconsole.tui.widgets.script_pane import ScriptPane

ANSWERS_BINDINGS = [
    Binding("K", "library", N_("Answers library"), id="answers.library"),
    Binding("ctrl+s", "save_answer", N_("Save the reply sent as an answer"), id="answers.save"),
    *SUGGESTION_BINDINGS,
]


class AnswersActions:
    """Mixed into MainScreen (which provides store, operator, conversation, reply_box, composer,
    `_may_reply`)."""

    async def on_reply_box_script_requested(self, message: ReplyBox.ScriptRequested) -> None:
        """An operator script opens in a side pane beside the conversation (one at a time)."""
        await self.query(ScriptPane).remove()
        pane = ScriptPane(message.record, id="script")
        await self.query_one("#main").mount(pane, before=self.query_one(CustomerPane))
        pane.query_one(OptionList).focus()

    def on_script_pane_insert_step(self, message: ScriptPane.InsertStep) -> None:
        self.reply_box.insert_text(message.step.text)

    async def on_script_pane_closed(self, message: ScriptPane.Closed) -> None:
        await self.query(ScriptPane).remove()
        self.composer.focus()

    def script_panes(self) -> list:
        """The script pane's step list, when one is open: a stop of Tab's cycle."""
        return list(self.query("#script OptionList"))

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_suggestion(self, index: int) -> None:
        """alt+1..3: take a suggestion into the reply (from the timeline too, as `r` would)."""
        if self.conversation is None or index >= len(self.reply_box.suggestions.hits):
            return
        if self.app.focused is not self.composer:
            if not await self._may_reply():
                return
            self.reply_box.start_reply()
        self.reply_box.action_suggestion(index)

    def action_library(self) -> None:
        from omniconsole.tui.screens.library import LibraryScreen

        self.app.push_screen(LibraryScreen(self.store, self.operator.login, str(self.operator.role)))

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_save_answer(self) -> None:
        """Save the last reply this window sent as a new answer (this key, then Enter)."""
        from omniconsole.tui.screens.library import SaveAnswerDialog

        sent = self.reply_box.last_sent
        if sent is None:
            self.app.notify(_("Send a reply first: the reply you send can then be saved as an answer"), severity="warning")
            return
        body = sent[1]
        dialog = SaveAnswerDialog(
            self.store, self.operator.login, str(self.operator.role), body, language=detect_by_script([body]) or ""
        )
        key = await self.app.push_screen_wait(dialog)
        if key:
            self.app.notify(_("Saved as the answer {key}").format(key=key), timeout=3, markup=False)
