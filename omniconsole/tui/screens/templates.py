"""WhatsApp's 24-hour rule in the window: when a reply would go outside the customer-service
window (decided by `omniconsole.core.reply_window`, put in words by the reply box), offer the
channel's approved templates, asking for each parameter.

    choice = await app.push_screen_wait(TemplateDialog(templates, note))
    await store.queue_reply(..., choice.rendered, meta=choice.meta)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from omniconsole.config import Settings
from omniconsole.i18n import N_, _
from omniconsole.message_templates import Template, parse_templates
from omniconsole.store import ReplyOption
from omniconsole.tui.widgets.dialog_list import DialogList


@dataclass(frozen=True, slots=True)
class TemplateChoice:
    """The template an operator filled in: what to store as the body and what the channel needs."""

    name: str
    language: str
    params: tuple[str, ...]
    rendered: str

    @property
    def meta(self) -> dict[str, Any]:
        """The outbound message's meta: the channel sends this template with these parameters."""
        return {"template": {"name": self.name, "language": self.language, "params": list(self.params)}}


def channel_templates(settings: Settings, route: ReplyOption) -> list[Template]:
    """The approved templates configured for the route's WhatsApp channel (empty elsewhere, or
    when the config's list is malformed: the channel itself reports that)."""
    for channel in settings.channels:
        # The demo's WhatsApp channel carries templates too, so ctrl+g can be tried there.
        whatsapp = channel.kind == "whatsapp" or (channel.kind == "demo" and channel.options.get("simulate") == "whatsapp")
        if channel.name == route.channel_name and whatsapp:
            try:
                return parse_templates(channel.options.get("templates"))
            except ValueError:
                return []
    return []


class TemplateDialog(ModalScreen[TemplateChoice | None]):
    """Pick an approved template, then fill in its parameters one line each; Enter on the last
    one queues it, Escape goes back (or cancels)."""

    BINDINGS = [Binding("escape", "back", N_("Back"), id="templates.back")]

    def __init__(self, templates: Sequence[Template], note: str = "") -> None:
        super().__init__()
        self.templates = list(templates)
        self.note = note
        self.chosen: Template | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="templates"):
            if self.note:
                yield Label(Text(self.note[0].upper() + self.note[1:], style="yellow"), markup=False)
            if not self.templates:
                yield Label(
                    Text(
                        _(
                            "This channel has no templates configured: add them as `templates` to its "
                            "[[channels]] table (see the README). Escape closes."
                        ),
                        style="bold",
                    ),
                    markup=False,
                )
                return
            yield Label(Text(_("Approved templates"), style="bold"), markup=False, id="templates-title")
            yield DialogList(*[Option(self._label(t), id=str(n)) for n, t in enumerate(self.templates)], markup=False)
            with Vertical(id="template-form"):
                pass
            yield Label(Text(_("Enter chooses · Escape goes back"), style="grey62"), markup=False, id="templates-hint")

    @staticmethod
    def _label(template: Template) -> Text:
        label = Text(f"{template.name} ", style="bold", end="")
        label.append(f"({template.language})", style="grey62")
        if template.text:
            label.append("\n  ")
            label.append(template.text, style="italic")  # from the config: still drawn literally
        return label

    def on_mount(self) -> None:
        if self.templates:
            self.query_one(OptionList).focus()

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.chosen = self.templates[int(event.option.id or 0)]
        if not self.chosen.params:
            self._finish()
            return
        form = self.query_one("#template-form", Vertical)
        await form.remove_children()
        fields = [Label(Text(_("Parameters of {name}").format(name=self.chosen.name), style="bold"), markup=False)]
        for number, name in enumerate(self.chosen.params, start=1):
            field = Input(placeholder=f"{{{number}}} {name}", id=f"param-{number}")
            field.cursor_blink = False
            fields.append(field)
        fields.append(Label("", markup=False, id="template-preview"))
        await form.mount(*fields)
        self.query_one(OptionList).display = False
        self.query_one("#param-1", Input).focus()
        self._preview()

    def _values(self) -> list[str]:
        return [field.value for field in self.query("#template-form Input").results(Input)]

    def _preview(self) -> None:
        if self.chosen is None:
            return
        preview = Text(_("The customer will read:") + " ", style="grey62", end="")
        preview.append(self.chosen.render(self._values()))
        self.query_one("#template-preview", Label).update(preview)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._preview()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        fields = list(self.query("#template-form Input").results(Input))
        empty = next((f for f in fields if not f.value.strip()), None)
        if empty is not None:
            # WhatsApp refuses a template with an empty parameter: ask for it here instead.
            self.notify(_("Fill in {field}").format(field=empty.placeholder), severity="warning", markup=False)
            empty.focus()
            return
        self._finish()

    def _finish(self) -> None:
        values = tuple(v.strip() for v in self._values())
        template = self.chosen
        self.dismiss(TemplateChoice(template.name, template.language, values, template.render(values)))

    async def action_back(self) -> None:
        if self.chosen is not None and self.chosen.params:
            self.chosen = None
            await self.query_one("#template-form", Vertical).remove_children()
            options = self.query_one(OptionList)
            options.display = True
            options.focus()
            return
        self.dismiss(None)
