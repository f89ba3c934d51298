"""May the company write to a customer first? The one question every capability asks before a
message the customer did not ask for: an outbound-first message, a survey, a rule's message, a
bulk send. Replies to the customer's own messages never ask it.

A customer is barred by "do not contact" (store/integrations.py), set by an operator on the
card, by an SMS opt-out word (the SMS channel, via its sink), or by an import column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from omniconsole.store import Store


@dataclass(frozen=True, slots=True)
class ContactDecision:
    """`allowed`, or why not in words an operator or a script's log can show."""

    allowed: bool
    reason: str = ""


async def may_contact_first(store: Store, customer_id: int) -> ContactDecision:
    """Whether the company may start a message to `customer_id` (merges followed).

    Raises StoreError when there is no such customer."""
    barred = await store.do_not_contact(customer_id)
    if barred is None:
        return ContactDecision(True)
    reason, since = barred
    day = datetime.fromtimestamp(since).strftime("%Y-%m-%d") if since else "an unknown date"
    return ContactDecision(False, f'customer {customer_id} is marked "do not contact" since {day} ({reason})')
