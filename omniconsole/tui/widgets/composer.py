"""The composer under the timeline: the reply (or note) being written. It owns typing: while
it has focus, single-key bindings of the lists do nothing."""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from omniconsole.i18n import N_


class Composer(TextArea):
    """A multi-line editor: Enter sends, Alt+Enter (or Ctrl+J) starts a new line."""

    BINDINGS = [
        Binding("escape", "cancel", N_("Cancel"), id="composer.cancel"),
        Binding("ctrl+t", "next_route", N_("Channel"), id="composer.channel"),
        Binding("ctrl+e", "external_editor", N_("$EDITOR"), id="composer.editor"),
        Binding("ctrl+g", "templates", N_("Template"), id="composer.templates"),
    ]

    class Submitted(Message):
        """Enter with something written: `text` is to be sent (or saved as a note)."""

        def __init__(self, composer: Composer, text: str) -> None:
            super().__init__()
            self.composer = composer
            self.text = text

    class Cancelled(Message):
        """Escape: the operator leaves the composer."""

    class Typed(Message):
        """A printable key went into the composer (others see "typing")."""

    class RouteChangeRequested(Message):
        """ctrl+t: the reply should go by the customer's next identity."""

    class EditorRequested(Message):
        """ctrl+e: the operator wants to write in $EDITOR."""

    class TemplatesRequested(Message):
        """ctrl+g: the operator asks for the channel's message templates (WhatsApp's 24-hour rule)."""

    def __init__(self, *, id: str | None = None) -> None:
        # No blinking: steadier over slow SSH links, and snapshot tests stay deterministic.
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        self.cursor_blink = False
        self.mode = "reply"

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            if self.text.strip():
                self.post_message(self.Submitted(self, self.text))
            return
        if event.key in ("alt+enter", "shift+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if event.is_printable:
            self.post_message(self.Typed())
        await super()._on_key(event)

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())

    def action_next_route(self) -> None:
        self.post_message(self.RouteChangeRequested())

    def action_external_editor(self) -> None:
        self.post_message(self.EditorRequested())

    def action_templates(self) -> None:
        self.post_message(self.TemplatesRequested())
