"""Every figure of ../shared/METRICS.md from one conversation's history, as dated facts.

The one-pass computation lives in omniconsole/store/facts.py, because the store runs it in the
same transaction as the events that end a figure and keeps its result in `conversation_facts`
(a capability package may import the store, never the other way). This module is the name the
reports, the window and the tests use for it; `conversation_facts(history, now)` over a whole
history (store `report_histories`) is the reference the stored rows are tested against.
Readings METRICS.md leaves open are written in docs/metrics.md.
"""

from __future__ import annotations

from omniconsole.store.facts import (
    BOT_CONTAINED,
    BOT_HANDOFF,
    CSAT,
    CSAT_GOOD,
    FRT,
    FULL_RESOLUTION,
    NOT_CUSTOMER,
    NOT_HUMAN_AUTHORS,
    NOT_HUMAN_FLAGS,
    NPS,
    NPS_DETRACTOR,
    NPS_PROMOTER,
    NRT,
    OPENED,
    RESOLUTION,
    RESOLVED,
    UNATTENDED,
    WAITING_ON_CUSTOMER,
    Fact,
    business_seconds,
    conversation_facts,
    is_bot_answer,
    is_customer_message,
    is_human_reply,
)

__all__ = [
    "BOT_CONTAINED",
    "BOT_HANDOFF",
    "CSAT",
    "CSAT_GOOD",
    "FRT",
    "FULL_RESOLUTION",
    "NOT_CUSTOMER",
    "NOT_HUMAN_AUTHORS",
    "NOT_HUMAN_FLAGS",
    "NPS",
    "NPS_DETRACTOR",
    "NPS_PROMOTER",
    "NRT",
    "OPENED",
    "RESOLUTION",
    "RESOLVED",
    "UNATTENDED",
    "WAITING_ON_CUSTOMER",
    "Fact",
    "business_seconds",
    "conversation_facts",
    "is_bot_answer",
    "is_customer_message",
    "is_human_reply",
]
