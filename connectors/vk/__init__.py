"""The VK channel: one community's messages over VK's HTTP API (httpx).

`api` is the client (calls, errors in words, uploads, the interruptible long poll), `content`
reads VK's message objects into words and files, `recovery` reads back from the history what
the long poll lost, and `connector` ties them to the core's contract.
"""

from __future__ import annotations

from connectors.vk.connector import (
    _RECOVERY_CHUNK,
    ATTACHMENTS_PER_MESSAGE,
    CHAT_PEER_BASE,
    DEFAULT_API_URL,
    DEFAULT_API_VERSION,
    TEXT_LIMIT,
    TOO_LARGE,
    VkConnector,
    _time,
    random_id,
    split_text,
)

__all__ = [
    "ATTACHMENTS_PER_MESSAGE",
    "CHAT_PEER_BASE",
    "DEFAULT_API_URL",
    "DEFAULT_API_VERSION",
    "TEXT_LIMIT",
    "TOO_LARGE",
    "VkConnector",
    "_RECOVERY_CHUNK",
    "_time",
    "random_id",
    "split_text",
]
