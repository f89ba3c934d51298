"""At the top of the timeline, what the bot did in the open conversation (issue #17): the
customer's question, the answers it sent with their confidence, and why it handed off, so the
operator who takes over never makes the customer repeat themselves. Hidden where the bot took
no part. The question and the answers are the customer's and the library's text: drawn as data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from omniconsole.i18n import _, local_number
from omniconsole.tui.text import one_line, safe

if TYPE_CHECKING:
    from omniconsole.store.bot import BotReport

#: Lines of the block at most (the timeline keeps the rest of the pane).
MAX_LINES = 7


def _confidence(value: float | None) -> str:
    if value is None:
        return _("confidence not measured")
    return _("confidence {value}").format(value=local_number(value, f"{value:.2f}", "0.00"))


def report_text(report: BotReport, width: int = 100) -> Text:
    """The block's lines: what happened, the question, each answer, language and topic."""
    text = Text(end="")
    if report.state == "bot":
        text.append("🤖 " + _("The bot is answering this conversation"), style="bold")
    elif report.handed_off_at is not None or report.handoff_reason:
        text.append("🤖 " + _("The bot handed off:") + " ", style="bold")
        text.append_text(safe(one_line(report.handoff_reason, width)))
        if report.handoff_category != "taken_over":
            text.append(f" ({_confidence(report.confidence)})", style="dim")
    else:
        text.append("🤖 " + _("The bot resolved this conversation"), style="bold")
    if report.question:
        text.append("\n" + _("Question:") + " ", style="dim")
        text.append_text(safe("«" + one_line(report.question, width) + "»"))
    for article, confidence, excerpt in report.answers[-3:]:
        text.append("\n" + _("Answered") + " ", style="dim")
        text.append_text(safe(one_line(article, 40), "bold"))
        text.append(f" ({_confidence(confidence)}): ", style="dim")
        text.append_text(safe(one_line(excerpt, width)))
    if not report.answers:
        text.append("\n" + _("Answers sent: none"), style="dim")
    details = [
        _("language {language}").format(language=report.language) if report.language else "",
        _("topic {topic}").format(topic=report.topic) if report.topic else "",
    ]
    if any(details):
        text.append("\n")
        text.append_text(safe(" · ".join(d for d in details if d), "dim"))
    return text


class BotReportBlock(Static):
    """The block (see the module docstring); `show(None)` hides it."""

    DEFAULT_CSS = """
    BotReportBlock {
        height: auto;
        max-height: 7;
        padding: 0 1;
        border-left: thick $accent;
        background: $boost;
        display: none;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.report: BotReport | None = None

    def show(self, report: BotReport | None) -> None:
        """Draw what the bot did, or hide the block when it did nothing here."""
        self.report = report
        self.display = report is not None
        if report is not None:
            self.update(report_text(report, max(40, self.size.width - 20 if self.size.width else 100)))
