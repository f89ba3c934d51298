"""An InboundSink for webhook connector tests (WhatsApp, web chat): it stands in for the core."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from connectors.base import DeliveryUpdate, InboundMessage


class CommitFailed(Exception):
    """What a core's failed transaction looks like to the connector."""


class RecordingSink:
    """An InboundSink that commits each batch at once, like the core; it can fail a commit."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.updates: list[DeliveryUpdate] = []
        self.connected_details: list[str] = []
        self.fail_commits = 0

    @property
    def cursor(self) -> str | None:
        return None

    async def deliver(self, messages: Sequence[InboundMessage], cursor: str | None) -> None:
        await asyncio.sleep(0)  # a commit takes time; a cancel can land before it is durable
        if self.fail_commits:
            self.fail_commits -= 1
            raise CommitFailed("disk I/O error")
        # The core keeps (channel, external_id) once: a redelivery adds nothing.
        known = {m.external_id for m in self.messages}
        self.messages.extend(m for m in messages if m.external_id not in known)

    async def delivery_updates(self, updates: Sequence[DeliveryUpdate]) -> None:
        self.updates.extend(updates)

    def connected(self, detail: str = "") -> None:
        self.connected_details.append(detail)
