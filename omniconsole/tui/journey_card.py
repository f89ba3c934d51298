"""The journey section of the customer card: every issue of the customer across channels (and
across customers merged into them), with its topic, origin, channel path, switches and outcome,
and channel advice for the open conversation (omniconsole/analytics/journeys.py). Loaded by a
worker after the card is drawn, like the CRM record."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text

if TYPE_CHECKING:  # imported when a journey is first read, not at the window's start
    from omniconsole.analytics import journey_service as js
    from omniconsole.analytics.journeys import Advice, JourneySettings

from omniconsole.errors import OmniError
from omniconsole.i18n import _, ngettext
from omniconsole.tui.text import badge, clock_time, one_line, safe

log = logging.getLogger(__name__)
#: Issues drawn on the card (the newest); the journeys screen (J) shows the team's figures.
SHOWN_ISSUES = 8


@dataclass(frozen=True, slots=True)
class JourneyCardState:
    """The journey part of one customer's card; `journey` None while it is being read."""

    customer_id: int
    journey: js.CustomerJourney | None
    advice: Advice | None = None


def journey_text(text: Text, state: JourneyCardState, now: float, style: Callable[[str], Style | str]) -> None:
    from omniconsole.analytics import journey_service as js

    """Append the journey section (customer text drawn as literal Text) to a card's text."""
    text.append("\n" + _("Journey") + "\n", style=style("heading"))
    if state.advice is not None:
        text.append("➜ ", style=style("suggestion"))
        text.append_text(safe(state.advice.words, style("suggestion")))
        text.append("\n")
    journey = state.journey
    if journey is None:
        text.append(_("reading…") + "\n", style=style("faint"))
        return
    if not journey.issues:
        text.append(_("no contacts yet") + "\n", style=style("faint"))
        return
    issues = journey.issues[-SHOWN_ISSUES:]
    if len(journey.issues) > len(issues):
        earlier = len(journey.issues) - len(issues)
        text.append(
            ngettext("… {n} earlier issue", "… {n} earlier issues", earlier).format(n=earlier) + "\n", style=style("faint")
        )
    for issue in issues:
        row = issue.row
        start = row.first_contact if row.first_contact is not None else row.opened_at
        text.append(f"{clock_time(start, now)} ", style=style("dim"))
        text.append_text(safe(issue.topic, style("labels")))
        text.append(f" #{row.conversation_id}\n", style=style("dim"))
        text.append("  ")
        for n, kind in enumerate(issue.channels):
            if n:
                text.append(" ⇄ ", style=style("suggestion"))
            text.append_text(badge(kind))
        if issue.repeated_themselves:
            text.append("  " + _("repeated themselves"), style=style("suggestion"))
        text.append("\n  ")
        text.append(js.outcome_words(issue), style=style(row.status) if row.status in ("open", "resolved") else "")
        text.append("\n")
        if row.origin:
            text.append("  " + _("from") + " ", style=style("dim"))
            text.append_text(safe(one_line(row.origin, 60), style("italic")))
            text.append("\n")
        elif row.started_by == "company":
            text.append("  " + _("we wrote first (campaign)") + "\n", style=style("dim"))


class JourneyCard:
    """Reads journeys for the window, and the outcome table the advice comes from."""

    def __init__(self, store, settings=None, clock=None):
        import time

        from omniconsole.analytics import journey_service as js

        self.store = store
        self.clock = clock or time.time
        self.config: JourneySettings = js.journey_settings(settings)
        self.calendar = js.default_calendar(settings)
        self.table = js.OutcomeTable(store, self.config, self.calendar, self.clock)

    def request(self, screen, pane, profile, conversation_id: int | None) -> None:
        """Draw "reading…" on the card of `profile` (unless its journey is drawn already: a
        conversation is opened again at each change), and a worker of `screen` that fills in the
        journey and the advice for `conversation_id`."""
        if profile is None:
            return
        if pane.journey is None or pane.journey.customer_id != profile.id:
            pane.show_journey(JourneyCardState(profile.id, None))  # a refresh keeps what is drawn

        async def fetch() -> None:
            from omniconsole.analytics import journey_service as js

            journey = await js.customer_journey(self.store, profile.id, self.clock(), self.config, self.calendar)
            advice = None
            if conversation_id is not None:
                try:
                    advice = js.advice_for(journey, conversation_id, await self.table.get(), self.config)
                except OmniError:  # the figures may be a supervisor's: no advice, the journey still shows
                    log.info("no channel advice: the outcome table could not be read", exc_info=True)
            pane.show_journey(JourneyCardState(profile.id, journey, advice))

        # The function, not a coroutine object: a worker cancelled before it starts (the next j
        # came first) then leaves no coroutine that was never awaited.
        screen.run_worker(fetch, group="journey", exclusive=True, exit_on_error=False)
