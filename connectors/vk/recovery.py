"""Gap recovery: what VK's long poll lost, read back from the message history.

VK does not remember what we confirmed, so our position is the cursor (`Position`): the
long-poll `ts` and the newest inbound message id already delivered. When VK cannot serve our
`ts` any more (`failed: 1`, or `failed: 3` with a new key) the events in between are gone from
the long poll; `history_since` reads every inbound message newer than the last id from
`messages.getConversations` + `messages.getHistory`, and says in words what it could not read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.payload import as_dict, as_int, as_list
from connectors.vk.api import VkApi

#: Peer ids from this number up are group chats, not a customer's private conversation.
CHAT_PEER_BASE = 2_000_000_000
# How much history a gap recovery reads before it says what it could not recover.
RECOVERY_PAGE = 200
RECOVERY_CONVERSATION_PAGES = 5
RECOVERY_HISTORY_PAGES = 5
#: Recovered messages per delivery: a long gap must not hold every file in memory at once.
RECOVERY_CHUNK = 100


@dataclass(frozen=True, slots=True)
class Position:
    """Where we are in the community's events: the long-poll `ts` and the newest inbound
    message id already delivered (what a gap recovery reads from). Serialised as the cursor."""

    ts: str
    last_id: int

    def dump(self) -> str:
        return json.dumps({"ts": self.ts, "last_id": self.last_id}, separators=(",", ":"))

    @classmethod
    def parse(cls, cursor: str | None) -> Position | None:
        if not cursor:
            return None
        try:
            raw = json.loads(cursor)
            return cls(ts=str(raw["ts"]), last_id=int(raw["last_id"]))
        except (ValueError, TypeError, KeyError):
            return None


def items(answer: Any) -> list[dict[str, Any]]:
    """The `items` of a list answer that are objects."""
    found = answer.get("items") if isinstance(answer, dict) else None
    return [item for item in as_list(found) if isinstance(item, dict)]


def last_message_id(conversation: Mapping[str, Any]) -> int:
    """The newest message id of a `messages.getConversations` item (0 when it names none)."""
    last = conversation.get("last_message")
    if isinstance(last, dict) and as_int(last.get("id")):
        return int(last["id"])
    inner = conversation.get("conversation")
    return (as_int(inner.get("last_message_id")) or 0) if isinstance(inner, dict) else 0


async def newest_message_id(api: VkApi) -> int:
    """The id of the newest message in the community's conversations (0 when none)."""
    answer = await api.call("messages.getConversations", {"count": 1, "filter": "all"}, "reading the conversations")
    for item in items(answer):
        return last_message_id(item)
    return 0


async def history_since(api: VkApi, last_id: int) -> tuple[list[dict[str, Any]], str]:
    """Every message newer than `last_id` in the private conversations with newer messages,
    and a sentence about what was left unread ("" when nothing was)."""
    peers: list[int] = []
    complete = False
    for page in range(RECOVERY_CONVERSATION_PAGES):
        answer = await api.call(
            "messages.getConversations",
            {"offset": page * RECOVERY_PAGE, "count": RECOVERY_PAGE, "filter": "all"},
            "reading the conversations",
        )
        found = items(answer)
        for item in found:
            # Conversations come newest first: the first one without news ends the search.
            if last_message_id(item) <= last_id:
                complete = True
                break
            peer = as_int(as_dict(as_dict(item.get("conversation")).get("peer")).get("id"))
            if peer and 0 < peer < CHAT_PEER_BASE:
                peers.append(peer)
        if complete or len(found) < RECOVERY_PAGE:
            complete = True
            break
    missing: list[str] = []
    if not complete:
        missing.append(f"more than {len(peers)} conversations had news, older ones were not read")
    messages: list[dict[str, Any]] = []
    for peer in peers:
        done = False
        for page in range(RECOVERY_HISTORY_PAGES):
            answer = await api.call(
                "messages.getHistory",
                {"peer_id": peer, "offset": page * RECOVERY_PAGE, "count": RECOVERY_PAGE},
                "reading the message history",
            )
            found = items(answer)
            for message in found:  # newest first
                number = as_int(message.get("id"))
                if number is None or number <= last_id:
                    done = True
                    break
                messages.append(message)
            if done or len(found) < RECOVERY_PAGE:
                done = True
                break
        if not done:
            missing.append(
                f"id{peer} wrote more than {RECOVERY_PAGE * RECOVERY_HISTORY_PAGES} messages, older ones were not read"
            )
    return messages, "; ".join(missing)
