"""The answers library in the window: every article with its usage (times used, share edited
before sending, last used), unused and stale ones one key away; admins and supervisors edit
(in `$EDITOR`, the article as its file) and delete, agents propose. And the dialog that saves a
sent reply as a new answer (two keys: the host's binding, then Enter).

Every change goes through the store, which appends the event (who, when).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Input, Label

from omniconsole.answers.commands import EDITOR_ROLES
from omniconsole.answers.library import ArticleError, article_text, file_name, parse_article
from omniconsole.errors import OmniError, error_text
from omniconsole.i18n import N_, Np_, _, local_number, pgettext
from omniconsole.models import sanitize_text
from omniconsole.store import Store
from omniconsole.store.answers import ArticleFigures, ArticleRecord
from omniconsole.tui.widgets.footer import Footer

#: An article nobody used for this long counts as stale in the library view (seconds).
STALE_AFTER = 90 * 86400

Editor = Callable[[str], Awaitable[str]]

#: What `Store.kb_save` did, as the notification says it.
SAVED_WORDS = {"new": N_("new"), "unchanged": N_("unchanged"), "updated": N_("updated")}
#: The library's columns, in the context "library".
COLUMNS = (
    Np_("library", "id"),
    Np_("library", "lang"),
    Np_("library", "kind"),
    Np_("library", "used"),
    Np_("library", "edited"),
    Np_("library", "last used"),
    Np_("library", "title"),
)
#: An article's kind as the library names it (an unknown one as it is).
KIND_WORDS = {"answer": N_("answer"), "article": N_("article"), "script": N_("script")}


def may_edit(role: str) -> bool:
    """Admins and supervisors edit the library; agents propose (issue #16)."""
    return str(role) in EDITOR_ROLES


def slug(title: str) -> str:
    """An article id from a title: lower case, words joined by '-' (Cyrillic kept)."""
    return re.sub(r"[^\w]+", "-", title.casefold()).strip("-_")[:60] or "answer"


class LibraryScreen(Screen):
    """The library with usage figures; see the module's docstring."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", N_("Back"), id="library.back"),
        Binding("u", "toggle_order", N_("Unused first"), id="library.unused"),
        Binding("e", "edit", N_("Edit ($EDITOR)"), id="library.edit"),
        Binding("n", "new", N_("New"), id="library.new"),
        Binding("d", "delete", N_("Delete"), id="library.delete"),
    ]

    DEFAULT_CSS = """
    LibraryScreen DataTable { height: 1fr; }
    LibraryScreen #library-hint { color: $text-muted; padding: 0 1; }
    """

    def __init__(
        self, store: Store, login: str, role: str, *, editor: Editor | None = None, now: Callable[[], float] = time.time
    ):
        super().__init__()
        self.store = store
        self.login = login
        self.role = str(role)
        self.editor = editor or self._run_editor
        self.now = now
        self.records: list[ArticleRecord] = []
        self.figures: dict[tuple[str, str], ArticleFigures] = {}
        self.unused_first = False

    def compose(self) -> ComposeResult:
        hint = (
            _("e edits in $EDITOR · n new · d delete · u unused first")
            if may_edit(self.role)
            else _("e proposes a change (an admin or supervisor publishes it) · n proposes a new answer · u unused first")
        )
        yield Label(Text(hint), id="library-hint", markup=False)
        table = DataTable(cursor_type="row", zebra_stripes=True)
        table.add_columns(*(Text(pgettext("library", title)) for title in COLUMNS))
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(exclusive=True, group="library")
    async def load(self) -> None:
        """Read the library and its figures (a worker: the UI never waits on SQLite)."""
        self.records = await self.store.kb_articles(include_proposed=True)
        self.figures = await self.store.kb_figures()
        self.redraw()

    def _last_used(self, record: ArticleRecord) -> float:
        f = self.figures.get((record.key, record.language))
        return f.last_used if f and f.last_used else 0.0

    def ordered(self) -> list[ArticleRecord]:
        """The rows in display order: by id, or least recently used first (never used on top)."""
        if self.unused_first:
            return sorted(self.records, key=lambda r: (self._last_used(r), r.key, r.language))
        return sorted(self.records, key=lambda r: (r.key, r.language))

    def redraw(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        now = self.now()
        for record in self.ordered():
            f = self.figures.get((record.key, record.language)) or ArticleFigures()
            last = f.last_used
            if last is None:
                when = Text(_("never"), style="yellow")
            else:
                days = (now - last) / 86400
                when = Text(_("{n}d ago").format(n=f"{days:.0f}"), style="yellow" if now - last > STALE_AFTER else "")
            share = f.share_edited
            kind = _(KIND_WORDS[record.kind]) if record.kind in KIND_WORDS else record.kind
            if record.status == "proposed":
                kind = _("{kind} (proposed)").format(kind=kind)
            table.add_row(
                Text(sanitize_text(record.key)),
                Text(record.language or "*"),
                Text(kind),
                Text(local_number(f.used, str(f.used))),
                Text(local_number(share, f"{share:.0%}", percent=True) if share is not None else "-"),
                when,
                Text(sanitize_text(record.title)),
                key=f"{record.key}\x00{record.language}",
            )

    def selected(self) -> ArticleRecord | None:
        table = self.query_one(DataTable)
        rows = self.ordered()
        if not rows or table.cursor_row is None or table.cursor_row >= len(rows):
            return None
        return rows[table.cursor_row]

    def action_toggle_order(self) -> None:
        self.unused_first = not self.unused_first
        self.redraw()

    async def action_edit(self) -> None:
        record = self.selected()
        if record is not None:
            await self._edit(record)

    async def action_new(self) -> None:
        taken = {r.key for r in self.records}
        key, number = "new-answer", 2
        while key in taken:
            key, number = f"new-answer-{number}", number + 1
        template = ArticleRecord(key=key, title=_("New answer"), kind="answer", body="Hello {customer.first_name|there}!")
        await self._edit(template, creating=True)

    async def action_delete(self) -> None:
        record = self.selected()
        if record is None:
            return
        if not may_edit(self.role):
            self.notify(_("only an admin or a supervisor may delete an article"), severity="warning", markup=False)
            return
        await self.store.kb_delete(record.key, record.language, self.login)
        self.notify(_("deleted {id}").format(id=sanitize_text(record.key)), timeout=2, markup=False)
        self.load()

    async def _edit(self, record: ArticleRecord, *, creating: bool = False) -> None:
        """Edit an article as its file; a changed `id` or `language` saves a new article (the
        old one stays until deleted). A text that cannot be taken is kept in a file, named."""
        original = article_text(record)
        edited = await self.editor(original)
        if edited.strip() == original.strip() and not creating:
            return
        try:
            changed, _problems = parse_article(edited, Path(file_name(record)))
            renamed = (changed.key, changed.language) != (record.key, record.language)
            if (creating or renamed) and any((r.key, r.language) == (changed.key, changed.language) for r in self.records):
                raise ArticleError(
                    _("id {id} ({language}) is taken by another article").format(
                        id=repr(changed.key), language=changed.language or _("any language")
                    )
                )
        except ArticleError as exc:
            kept = self._keep(edited)
            self.notify(
                _("not saved: {error}; your text is kept in {file}").format(error=error_text(exc), file=kept),
                severity="error",
                timeout=10,
                markup=False,
            )
            return
        try:
            if may_edit(self.role):
                outcome = await self.store.kb_save(changed, self.login)
                words = _(SAVED_WORDS[outcome]) if outcome in SAVED_WORDS else outcome
                self.notify(f"{sanitize_text(changed.key)}: {words}", timeout=2, markup=False)
            else:
                key = await self.store.kb_propose(changed, self.login)
                self.notify(
                    _("proposed as {id}; an admin or supervisor publishes it").format(id=sanitize_text(key)),
                    timeout=3,
                    markup=False,
                )
        except OmniError as exc:
            self.notify(error_text(exc), severity="error", markup=False)
            return
        self.load()

    @staticmethod
    def _keep(text: str) -> str:
        with tempfile.NamedTemporaryFile("w", suffix=".md", prefix="omniconsole-article-", delete=False, encoding="utf-8") as f:
            f.write(text)
            return f.name

    async def _run_editor(self, text: str) -> str:
        """Edit `text` in $VISUAL/$EDITOR (the terminal is handed over; headless, beside)."""
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        with tempfile.NamedTemporaryFile("w+", suffix=".md", delete=False, encoding="utf-8") as f:
            f.write(text)
            path = f.name
        try:
            suspended = contextlib.nullcontext() if self.app.is_headless else self.app.suspend()
            with suspended:
                process = await asyncio.create_subprocess_exec(*shlex.split(editor), path)
                await process.wait()
            return Path(path).read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:
            self.notify(
                _("could not run the editor {editor}: {error}").format(editor=repr(editor), error=error_text(exc)),
                severity="error",
                markup=False,
            )
            return text
        finally:
            Path(path).unlink(missing_ok=True)


class SaveAnswerDialog(ModalScreen[str | None]):
    """Save a sent reply as a new canned answer: the title is prefilled from the reply, Enter
    saves (an agent's becomes a proposal). Dismisses with the key it was stored under."""

    BINDINGS = [Binding("escape", "cancel", N_("Cancel"), id="save_answer.cancel")]

    DEFAULT_CSS = """
    SaveAnswerDialog { align: center middle; }
    SaveAnswerDialog > Vertical { width: 70; height: auto; border: round $accent; padding: 0 1; background: $surface; }
    """

    def __init__(self, store: Store, login: str, role: str, reply: str, *, language: str = "") -> None:
        super().__init__()
        self.store = store
        self.login = login
        self.role = str(role)
        self.reply = reply
        self.language = language

    def compose(self) -> ComposeResult:
        first = " ".join(sanitize_text(self.reply).split())[:60]
        with Vertical():
            yield Label(Text(_("Save this reply as an answer"), style="bold"), markup=False)
            yield Label(Text(sanitize_text(self.reply)[:300], style="italic grey62"), markup=False)
            title = Input(value=first, placeholder=_("title"), id="save-title")
            title.cursor_blink = False
            yield title
            code = Input(placeholder=_("shortcode (optional, typed as /code)"), id="save-shortcode")
            code.cursor_blink = False
            yield code
            yield Label(Text(_("Enter saves · Escape cancels"), style="grey62"), markup=False)

    def on_mount(self) -> None:
        self.query_one("#save-title", Input).focus()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        title = self.query_one("#save-title", Input).value.strip()
        shortcode = self.query_one("#save-shortcode", Input).value.strip().lstrip("/") or None
        if not title:
            self.notify(_("an answer needs a title"), severity="warning", markup=False)
            return
        if shortcode and any(ch.isspace() for ch in shortcode):
            self.notify(_("a shortcode is one word"), severity="warning", markup=False)
            return
        taken = {(r.key, r.language) for r in await self.store.kb_articles(include_proposed=True)}
        key, number = slug(shortcode or title), 2
        base = key
        while (key, self.language) in taken:
            key, number = f"{base}-{number}", number + 1
        record = ArticleRecord(
            key=key, title=title, body=self.reply.strip(), language=self.language, kind="answer", shortcode=shortcode
        )
        try:
            if may_edit(self.role):
                await self.store.kb_save(record, self.login)
                stored = key
            else:
                stored = await self.store.kb_propose(record, self.login)
        except OmniError as exc:
            self.notify(error_text(exc), severity="error", markup=False)
            return
        self.dismiss(stored)

    def action_cancel(self) -> None:
        self.dismiss(None)
