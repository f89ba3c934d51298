"""The CRM's record on the customer card (`[crm]`, omniconsole/integrations/crm.py).

When a card opens, `CrmCard.request` shows "looking up…" at once and fetches the record in a
worker of the screen; the card is redrawn when it arrives. The window never waits on the CRM:
a slow or dead one ends in "CRM unavailable" after the configured timeout. Values are remote
text, drawn with `safe` (never markup).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text

from omniconsole.i18n import _
from omniconsole.integrations.crm import FOUND, UNAVAILABLE, CrmLookup, CrmRecord
from omniconsole.tui.text import one_line, safe


@dataclass(frozen=True)
class CrmCardState:
    """The CRM part of one customer's card: `record` None while it is being looked up."""

    customer_id: int
    record: CrmRecord | None


def crm_text(text: Text, state: CrmCardState, style: Callable[[str], Style | str]) -> None:
    """Append the CRM section to a card's text."""
    text.append("\nCRM\n", style=style("heading"))
    record = state.record
    if record is None:
        text.append(_("looking up…") + "\n", style=style("faint"))
        return
    if record.status == UNAVAILABLE:
        text.append(_("CRM unavailable"), style=style("suggestion"))
        if record.reason:
            text.append(": ", style=style("dim"))
            text.append_text(safe(one_line(record.reason, 120), style("dim")))
        text.append("\n")
        return
    if record.status != FOUND:
        text.append(_("not in the CRM") + "\n", style=style("dim"))
        return
    for label, value in record.fields:
        text.append_text(safe(label, style("dim")))
        text.append(": ")
        text.append_text(safe(value))
        text.append("\n")
    if record.url:
        text.append_text(safe(record.url, style("italic")))
        text.append("\n")


class CrmCard:
    """One window's CRM lookups (with their cache); inert when `[crm]` is not configured."""

    def __init__(self, settings) -> None:
        crm = getattr(settings, "crm", None)
        self.lookup = CrmLookup(crm) if crm is not None else None

    def request(self, screen, pane, profile) -> None:
        """Show the CRM record of `profile` on `pane`: from the cache at once, else "looking
        up…" and a worker of `screen` that fills it in."""
        if self.lookup is None or profile is None:
            return
        shown = pane.crm if pane.crm is not None and pane.crm.customer_id == profile.id else None
        if shown is not None and (shown.record is None or self.lookup.cached(profile.id) is shown.record):
            return  # being looked up, or drawn already and still fresh
        cached = self.lookup.cached(profile.id)
        if cached is not None:
            pane.show_crm(CrmCardState(profile.id, cached))
            return
        pane.show_crm(CrmCardState(profile.id, None))
        identities = [(str(i.kind), i.address) for i in profile.identities]

        async def fetch() -> None:
            record = await self.lookup.lookup(profile.id, identities)
            pane.show_crm(CrmCardState(profile.id, record))

        screen.run_worker(fetch, group="crm", exclusive=True, exit_on_error=False)  # see journey_card.request
