"""Readers of Telegram messages that show what the Bot API hides in its structure: who wrote a
forwarded message (`forward_origin`, Bot API 7.0: a user, a hidden user, a chat or a channel)
and the URLs and users behind entities (`text_link`, `text_mention`). Offsets of entities are
UTF-16 code units, as the Bot API counts them (https://core.telegram.org/bots/api#messageentity).
"""

from __future__ import annotations

from collections.abc import Mapping

from telegram import (
    Message,
    MessageEntity,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginHiddenUser,
    MessageOriginUser,
    User,
)


def display_name(person: User) -> str:
    """ "First Last (@username)", as much of it as Telegram gave."""
    name = " ".join(part for part in (person.first_name, person.last_name) if part)
    if person.username:
        return f"{name} (@{person.username})" if name else f"@{person.username}"
    return name or str(person.id)


def forward_origin(message: Message) -> str:
    """Who wrote a forwarded message, in words ("" when it is the customer's own): a user by
    name, a hidden user by the name they show, a chat or channel by title (and signature)."""
    origin = message.forward_origin
    if origin is None:
        return ""
    if isinstance(origin, MessageOriginUser):
        return display_name(origin.sender_user)
    if isinstance(origin, MessageOriginHiddenUser):
        return f"{origin.sender_user_name} (hidden account)"
    if isinstance(origin, MessageOriginChannel):
        title = origin.chat.title or origin.chat.username or str(origin.chat.id)
        return f"channel {title}" + (f" ({origin.author_signature})" if origin.author_signature else "")
    if isinstance(origin, MessageOriginChat):
        title = origin.sender_chat.title or origin.sender_chat.username or str(origin.sender_chat.id)
        return f"chat {title}" + (f" ({origin.author_signature})" if origin.author_signature else "")
    return "someone"


def with_links(text: str, entities: Mapping[MessageEntity, str]) -> str:
    """`text` with what its entities hide written out: a `text_link`'s URL after its words
    ("Track parcel (https://...)"), a `text_mention`'s user id. Other entity kinds (bold,
    code, a plain URL, a mention) already show everything in the text itself."""
    hidden = [
        (entity, words)
        for entity, words in entities.items()
        if (entity.type == MessageEntity.TEXT_LINK and entity.url and entity.url != words)
        or (entity.type == MessageEntity.TEXT_MENTION and entity.user is not None)
    ]
    if not hidden:
        return text
    # Offsets are UTF-16 code units: rebuild from the encoded text, last entity first.
    encoded = text.encode("utf-16-le")
    for entity, _words in sorted(hidden, key=lambda pair: pair[0].offset, reverse=True):
        note = f" ({entity.url})" if entity.type == MessageEntity.TEXT_LINK else f" (Telegram user {entity.user.id})"
        end = (entity.offset + entity.length) * 2
        encoded = encoded[:end] + note.encode("utf-16-le") + encoded[end:]
    return encoded.decode("utf-16-le", "surrogatepass")
