"""Messages that more than one pane posts, named for what happened. A pane's own messages live
beside it (InboxList.ConversationSelected, ReplyBox.ReplyQueued, Follower.StoreChanged)."""

from __future__ import annotations

from textual.message import Message

from omniconsole.errors import OmniError


class StoreUnavailable(Message):
    """A pane's read or write found the database not answering (locked by a long import, disk
    full); the screen says so once and the pane tries again on its next tick."""

    def __init__(self, error: OmniError) -> None:
        super().__init__()
        self.error = error
