"""The customer pane: who this is across every channel, and what else they asked us."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from omniconsole.i18n import N_, _
from omniconsole.store import CustomerProfile
from omniconsole.tui.crm_card import CrmCardState, crm_text
from omniconsole.tui.journey_card import JourneyCardState, journey_text
from omniconsole.tui.text import badge, clock_time, one_line, safe, status_name
from omniconsole.tui.widgets.lines import CachedScrollbars, set_virtual_size, wrap_to_strips
from omniconsole.tui.widgets.pane_colours import PaneStyles


def no_style(name: str) -> str:
    return ""


def profile_text(
    profile: CustomerProfile,
    current_conversation: int | None = None,
    now: float | None = None,
    style: Callable[[str], Style | str] = no_style,
    crm: CrmCardState | None = None,
    journey: JourneyCardState | None = None,
) -> Text:
    """The customer's card as literal Text, coloured by `style` (a component name to a style:
    the pane's `customer-pane--<name>` classes; without one, no colours)."""
    now = now if now is not None else time.time()
    text = Text(end="")
    text.append_text(safe(profile.display_name or _("(no name)"), style("name")))
    if profile.name_source == "operator":
        text.append("  ✎", style=style("faint"))
    text.append("\n")
    # The id `omniconsole export customer` and `erase customer` take (an address works too).
    text.append(_("customer {id}").format(id=profile.id) + "\n", style=style("dim"))
    if profile.first_seen_at:
        text.append(_("first seen {moment}").format(moment=clock_time(profile.first_seen_at, now)) + "\n", style=style("dim"))
    if profile.do_not_contact:
        text.append(_("⛔ do not contact:") + " ", style=style("suggestion"))
        text.append_text(safe(one_line(profile.do_not_contact, 80), style("suggestion")))
        text.append("\n")
    if profile.origin:
        text.append(_("came from") + " ", style=style("dim"))
        text.append_text(safe(profile.origin, style("italic")))
        text.append("\n")
    text.append("\n" + _("Identities") + "\n", style=style("heading"))
    for identity in profile.identities:
        text.append_text(badge(identity.kind))
        text.append(" ")
        text.append_text(safe(identity.address))
        if identity.display and identity.display != identity.address:
            text.append(" (")
            text.append_text(safe(identity.display, style("dim")))
            text.append(")")
        text.append("\n")
    if profile.suggestions:
        # Evidence, never a merge: the operator decides (m).
        text.append("\n" + _("Possibly the same person  m: merge or dismiss") + "\n", style=style("suggestion-heading"))
        for suggestion in profile.suggestions:
            text.append("? ", style=style("suggestion"))
            text.append_text(safe(suggestion.other_name or _("(no name)"), style("name")))
            text.append(f" #{suggestion.other_id}\n", style=style("dim"))
            text.append("  ")
            text.append_text(safe(suggestion.reason, style("dim")))
            text.append("\n")
    if journey is not None:
        journey_text(text, journey, now, style)
    elif profile.journey:
        text.append("\n" + _("Journey") + "\n", style=style("heading"))
        for n, kind in enumerate(profile.journey):
            if n:
                text.append(" → ", style=style("dim"))
            text.append_text(badge(kind))
        text.append("\n")
    if profile.labels:
        text.append("\n" + _("Labels") + " ", style=style("heading"))
        text.append("\n")
        text.append_text(safe(", ".join(profile.labels), style("labels")))
        text.append("\n")
    if profile.attributes:
        text.append("\n" + _("Attributes") + "\n", style=style("heading"))
        for key, value in profile.attributes.items():
            text.append_text(safe(str(key), style("dim")))
            text.append(": ")
            text.append_text(safe(str(value)))
            text.append("\n")
    if profile.note:
        text.append("\n" + _("Note") + "\n", style=style("heading"))
        text.append_text(safe(profile.note, style("italic")))
        text.append("\n")
    merges = [m for m in profile.merges if m.undone_at is None]
    if merges:
        text.append("\n" + _("Merged in  m: undo") + "\n", style=style("heading"))
        for merge in merges:
            text.append_text(safe(merge.merged_name or _("(no name)")))
            text.append(" " + _("#{id}, by").format(id=merge.merged_id) + " ", style=style("dim"))
            text.append_text(safe(merge.actor, style("dim")))
            text.append(f" {clock_time(merge.at, now)}", style=style("dim"))
            if merge.reason:
                text.append(": ", style=style("dim"))
                text.append_text(safe(merge.reason, style("dim")))
            text.append("\n")
    if crm is not None:
        crm_text(text, crm, style)
    text.append("\n" + _("Conversations ({n})  h: open one").format(n=len(profile.conversations)) + "\n", style=style("heading"))
    for conversation in profile.conversations[:30]:
        marker = "▶ " if conversation.id == current_conversation else "  "
        text.append(marker, style=style("marker"))
        text.append(f"#{conversation.id} ", style=style("dim"))
        status = conversation.status
        text.append(
            f"{status_name(status):<8} ", style=style(status) if status in ("open", "pending", "snoozed", "resolved") else ""
        )
        text.append(one_line(conversation.subject, 40))
        text.append("\n")
    if len(profile.conversations) > 30:
        text.append("  " + _("… {n} more").format(n=len(profile.conversations) - 30) + "\n", style=style("faint"))
    return text


class CustomerPane(PaneStyles, CachedScrollbars, ScrollView, can_focus=True):
    """Scrollable customer card (Line API: a new card is wrapped once and drawn without a
    layout pass of the whole screen)."""

    BINDINGS = [
        Binding("j,down", "scroll_down", N_("Scroll down"), show=False, id="customer.down"),
        Binding("k,up", "scroll_up", N_("Scroll up"), show=False, id="customer.up"),
    ]

    DEFAULT_CSS = """
    CustomerPane { background: $surface; }
    """

    PANE = "customer-pane"

    def __init__(self, *, clock=time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.profile: CustomerProfile | None = None
        self.crm: CrmCardState | None = None  # the CRM's record of the customer shown, when `[crm]` is set
        self.journey: JourneyCardState | None = None  # the customer's journey, once read
        self._current: int | None = None
        self._text = Text("")
        self._lines: list[Strip] = []
        self._width = 0

    def show(self, profile: CustomerProfile | None, current_conversation: int | None = None) -> None:
        if self.crm is not None and (profile is None or self.crm.customer_id != profile.id):
            self.crm = None
        if self.journey is not None and (profile is None or self.journey.customer_id != profile.id):
            self.journey = None
        self.profile = profile
        self._current = current_conversation
        self._text = (
            profile_text(profile, current_conversation, self.clock(), self.pane_style, self.crm, self.journey)
            if profile
            else Text("")
        )
        self._layout()

    def show_crm(self, state: CrmCardState) -> None:
        """Draw the CRM's record (or "looking up", "unavailable") on the card of the customer
        it is for; ignored when another customer's card is shown by now."""
        if self.profile is None or self.profile.id != state.customer_id:
            return
        self.crm = state
        self.show(self.profile, self._current)

    def show_journey(self, state: JourneyCardState) -> None:
        """Draw the customer's journey (or "reading…") on the card of the customer it is for;
        ignored when another customer's card is shown by now."""
        if self.profile is None or self.profile.id != state.customer_id:
            return
        self.journey = state
        self.show(self.profile, self._current)

    def _layout(self) -> None:
        width = max(10, self.size.width - 1)
        self._width = width
        self._lines = wrap_to_strips(self._text, self.app.console, width)
        set_virtual_size(self, Size(width, len(self._lines)))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        return self._lines[index] if 0 <= index < len(self._lines) else Strip.blank(self.size.width)

    def on_resize(self) -> None:
        if self.size.width - 1 != self._width:
            self._layout()

    @property
    def card_text(self) -> str:
        """The card as plain text (for tests and copying)."""
        return self._text.plain
