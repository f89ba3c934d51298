"""Above the timeline, who and what the open conversation is; below it, which other operators
are viewing it or typing in it (the presence line reads the store itself every second)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from omniconsole.errors import OmniError
from omniconsole.i18n import _
from omniconsole.store import Conversation, Presence, Store
from omniconsole.tui.messages import StoreUnavailable
from omniconsole.tui.text import PRIORITY, badge, day_time, one_line, safe, status_name
from omniconsole.tui.widgets.pane_colours import PaneStyles


class ConversationHeader(PaneStyles, Static):
    """Two fixed lines whatever the width: a long subject is cut, never wrapped. Colours are the
    stylesheet's `conversation-header--*` component classes (one per status among them)."""

    PANE = "conversation-header"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)

    def show(self, conversation: Conversation, customer_name: str) -> None:
        c = conversation
        text = Text(end="", no_wrap=True, overflow="ellipsis")
        style = self.pane_style
        text.append(f"#{c.id} ", style=style("dim"))
        text.append_text(safe(one_line(customer_name, 40), style("name")))
        text.append("  ")
        text.append_text(safe(one_line(c.subject, 60), style("subject")))
        status = c.status if c.status in ("open", "pending", "snoozed") else "closed"
        text.append(f"\n{status_name(c.status)}", style=style(status))
        if c.snoozed_until:
            text.append(" " + _("until {moment}").format(moment=day_time(c.snoozed_until)), style=style("snoozed"))
        text.append("  " + _("assignee") + " ", style=style("dim"))
        text.append(c.assignee or _("nobody"), style=style("assignee" if c.assignee else "nobody"))
        if c.priority:
            text.append(f"  {_(PRIORITY.get(c.priority, ''))}", style=style("priority"))
        if c.labels:
            text.append("  ")
            text.append_text(safe(", ".join(c.labels), style("labels")))
        for kind in c.channel_kinds:
            text.append(" ")
            text.append_text(badge(kind))
        self.update(text, layout=False)


class PresenceLine(PaneStyles, Static):
    """Other operators in the open conversation: viewing, or typing (a reply may cross theirs).
    Colours: `presence-line--typing`, `presence-line--viewing`."""

    PANE = "presence-line"

    INTERVAL = 1.0

    def __init__(self, store: Store, login: str, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.store = store
        self.login = login
        self.conversation_id: int | None = None

    def follow(self) -> None:
        self.set_interval(self.INTERVAL, self.reload)

    async def reload(self) -> None:
        if self.conversation_id is None:
            return
        try:
            self.show(await self.store.presence(self.conversation_id, self.login))
        except OmniError as exc:
            self.post_message(StoreUnavailable(exc))

    def show(self, others: list[Presence]) -> None:
        text = Text(end="")
        for other in others:
            if other.typing:
                text.append(" " + _("✎ {login} is typing").format(login=other.operator) + " ", style=self.pane_style("typing"))
            else:
                text.append(" " + _("👁 {login} is viewing").format(login=other.operator) + " ", style=self.pane_style("viewing"))
        self.update(text, layout=False)
