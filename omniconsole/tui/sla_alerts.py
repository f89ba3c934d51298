"""SLA escalations as toasts (issue #19): an `sla.escalated` event whose ladder step notifies
this window's operator (the assignee, or the admins) is shown as a notification naming the
conversation, the target and how far it is; the timeline keeps the line for later."""

from __future__ import annotations

import json

from rich.text import Text

from omniconsole.i18n import N_, _, local_number
from omniconsole.routing.sla.settings import TARGET_WORDS


def sla_notices(events, login: str) -> list[tuple[Text, str]]:
    """`(text, severity)` for each `sla.escalated` event among `events` that notifies `login`."""
    notices = []
    for event in events:
        if event.kind != "sla.escalated" or not event.payload:
            continue
        try:
            payload = json.loads(event.payload)
        except ValueError:
            continue
        if not isinstance(payload, dict) or login not in (payload.get("to") or []):
            continue
        share = payload.get("share") or 0
        breach = isinstance(share, int | float) and share >= 1
        target = _(TARGET_WORDS.get(str(payload.get("target")), N_("target")))
        # Policy names come from the config, not from customers, yet are drawn as plain text.
        if breach:
            how = _("breached")
        elif isinstance(share, int | float):
            how = _("at {share}").format(share=local_number(share, f"{share:.0%}", percent=True))
        else:
            how = _("at risk")
        text = Text(
            _("Conversation #{id}: {target} {how} (SLA {policy})").format(
                id=event.conversation_id, target=target, how=how, policy=payload.get("policy", "")
            )
        )
        notices.append((text, "error" if breach else "warning"))
    return notices
