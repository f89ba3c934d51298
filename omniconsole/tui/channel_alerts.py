"""Channel health changes as toasts in every window (issue #22): a channel that goes down is
announced with its reason, and announced again when it is back up. The status bar shows the
standing state; these say that it changed, for an operator who is not looking at the bar."""

from __future__ import annotations

import json

from rich.text import Text

from omniconsole.i18n import _
from omniconsole.store import Store
from omniconsole.tui.text import one_line, safe


class ChannelAlerts:
    """Remembers which channels this window saw go down, to say when they are back."""

    def __init__(self) -> None:
        self.down: set[int] = set()

    async def announce(self, screen, store: Store, events) -> None:
        """Toast the `channel.health` events among `events` (down, and back up after down).
        Raises the store's OmniError when it does not answer."""
        changes = []
        for event in events:
            if event.kind != "channel.health" or not event.payload:
                continue
            try:
                change = json.loads(event.payload)
            except ValueError:
                continue
            if isinstance(change, dict) and change.get("health") in ("down", "up"):
                changes.append(change)
        if not changes:
            return
        names = {c.id: c.name for c in await store.channels()}
        for change in changes:
            channel_id = change.get("channel_id")
            name = names.get(channel_id, f"#{channel_id}")
            if change["health"] == "down":
                self.down.add(channel_id)
                before, _name, after = _("Channel {name} is down").partition("{name}")
                text = Text(before).append_text(safe(one_line(name, 40))).append(after)
                if change.get("detail"):
                    text.append(": ").append_text(safe(one_line(str(change["detail"]), 120)))
                screen.notify(text, severity="error", timeout=10)
            elif channel_id in self.down:
                self.down.discard(channel_id)
                before, _name, after = _("Channel {name} is back up").partition("{name}")
                screen.notify(Text(before).append_text(safe(one_line(name, 40))).append(after), timeout=6)
