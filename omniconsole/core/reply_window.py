"""WhatsApp's customer-service window: free-form text may go to a customer only within 24 hours
of the last message they sent us on that number; after that only an approved template may
(https://developers.facebook.com/docs/whatsapp/cloud-api/guides/send-messages#customer-service-windows).

The rule is decided here; the window only turns the answer into words.
"""

from __future__ import annotations

from dataclasses import dataclass

from omniconsole.store import ReplyOption, Store

#: WhatsApp's customer-service window, in seconds after the customer's last message.
WINDOW_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class ReplyWindow:
    """Whether free text may go by a route now. `last_inbound_at` (epoch seconds, None when the
    customer never wrote by it) says why when it may not."""

    free_text: bool
    last_inbound_at: float | None = None


FREE = ReplyWindow(True)


def whatsapp_window(last_inbound_at: float | None, now: float) -> ReplyWindow:
    """The window for a customer who last wrote at `last_inbound_at` (epoch seconds, or None),
    seen at `now` (epoch seconds)."""
    if last_inbound_at is not None and now - last_inbound_at < WINDOW_SECONDS:
        return ReplyWindow(True, last_inbound_at)
    return ReplyWindow(False, last_inbound_at)


async def reply_window(store: Store, route: ReplyOption | None, now: float) -> ReplyWindow:
    """The window of a reply route: only WhatsApp routes have one; every other channel (or no
    route at all) is free. Raises the store's `OmniError` when the database does not answer."""
    if route is None or route.kind != "whatsapp":
        return FREE
    return whatsapp_window(await store.last_inbound_at(route.identity_id, route.channel_id), now)
