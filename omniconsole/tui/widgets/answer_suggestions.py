"""Agent assist near the reply box: the engine's top 3 articles for the customer's latest
messages, one line each, taken with alt+1..3.

The strip never has focus (the composer owns typing), so its keys are the host's: add
`SUGGESTION_BINDINGS` to the reply box (or its screen) and forward `action_suggestion(n)` to
`strip.choose(n)`. The strip posts `SuggestionStrip.Shown` when it shows new suggestions (record
them with `store.kb_record_shown`) and `SuggestionStrip.Chosen` when one is taken: hand it to
`AnswerPicker.take(hit.record, values=...)`, which asks its `{ask:}` values and posts the same
`AnswerPicker.Chosen` as a pick (record with `kb_record_insertion(..., suggested=True)`).
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Static

from omniconsole.answers.engine import Engine, Hit
from omniconsole.i18n import N_, _
from omniconsole.models import sanitize_text

SUGGESTION_BINDINGS = [
    Binding(f"alt+{n}", f"suggestion({n - 1})", words, show=False, id=f"suggestions.take{n}")
    for n, words in ((1, N_("Suggestion 1")), (2, N_("Suggestion 2")), (3, N_("Suggestion 3")))
]


class SuggestionStrip(Static):
    """Up to three suggested answers; see the module's docstring for the messages."""

    DEFAULT_CSS = """
    SuggestionStrip { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    """

    class Shown(Message):
        """New suggestions are on screen: `hits` in order."""

        def __init__(self, hits: list[Hit]) -> None:
            super().__init__()
            self.hits = hits

    class Chosen(Message):
        """Suggestion `index` (0-based) was taken: `hit.record` is the variant shown."""

        def __init__(self, index: int, hit: Hit) -> None:
            super().__init__()
            self.index = index
            self.hit = hit

    def __init__(self, engine: Engine, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.engine = engine
        self.hits: list[Hit] = []

    def suggest(self, messages: list[str], *, language: str | None = None, channel: str | None = None) -> list[Hit]:
        """Rank the library for a customer's latest messages (oldest first) and show the top
        3; returns them. The first call in a process loads the language model (about a second):
        call it from a worker, or warm up with `answers.language.warm_up()` in one."""
        self.show(self.engine.suggest(messages, language=language, channel=channel, limit=3))
        return self.hits

    def show(self, hits: list[Hit]) -> None:
        """Show these hits (already ranked)."""
        changed = [h.key for h in hits] != [h.key for h in self.hits]
        self.hits = list(hits[:3])
        self.update(self._render_hits())
        self.display = bool(self.hits)
        if changed and self.hits:
            self.post_message(self.Shown(self.hits))

    def _render_hits(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        for index, hit in enumerate(self.hits):
            if index:
                text.append("   ")
            text.append(f"alt+{index + 1} ", style="bold cyan")
            text.append(sanitize_text(hit.record.title)[:60], style="bold")
            if hit.record.kind == "script":
                text.append(" (" + _("script") + ")", style="grey62")
        return text

    def choose(self, index: int) -> Hit | None:
        """Take suggestion `index` (0-based): posts Chosen; None when there is no such one."""
        if 0 <= index < len(self.hits):
            hit = self.hits[index]
            self.post_message(self.Chosen(index, hit))
            return hit
        return None
