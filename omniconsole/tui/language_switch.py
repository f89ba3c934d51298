"""Switching the window's language while it runs: a command palette entry ("Language:
English" / "Язык: русский") saves the operator's choice (`Store.set_own_language`, through the
core's socket in a team setup) and redraws the main screen in the new language, with no
restart of the window or the core. Each language is named in its own words, so an operator
who does not read the current one still finds theirs."""

from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits, Provider

from omniconsole.errors import OmniError, error_text
from omniconsole.i18n import LANGUAGES, _, current_language, set_language

#: Each language's palette entry, in that language.
COMMAND_WORDS = {"en": "Language: English", "ru": "Язык: русский"}


async def switch_language(screen, language: str) -> bool:
    """Save `language` as the operator's own and redraw `screen` (the main screen) in it:
    status bar, view bar, inbox rows, the open conversation, the composer's line. Help and
    the palette read the bindings afresh when opened. False (and said in words) when the
    store refused; the window then keeps its language."""
    try:
        await screen.store.set_own_language(screen.operator.login, language)
    except OmniError as exc:
        screen.app.notify(error_text(exc), severity="error", markup=False)
        return False
    screen.app.language = set_language(language)
    from omniconsole.tui.widgets.status_bar import StatusBar

    screen.query_one(StatusBar).draw()
    screen.reply_box.draw()
    try:
        if screen.conversation is not None:
            await screen.open_conversation(screen.conversation.id, keep_position=True, mark_read=False)
        await screen.inbox.load(keep=screen.conversation.id if screen.conversation else None)
    except OmniError as exc:
        screen._store_trouble(exc)  # noqa: SLF001 - the screen's one way to say the store did not answer
    screen.app.notify(_("The window speaks English now"), timeout=3)
    return True


class LanguageCommands(Provider):
    """The palette's entries for the languages other than the current one."""

    def _choices(self):
        for language in LANGUAGES:
            if language != current_language():
                yield COMMAND_WORDS[language], language

    def _run(self, language: str):
        async def run() -> None:
            await switch_language(self.screen, language)

        return lambda: self.app.run_worker(run(), group="language", exclusive=True, exit_on_error=False)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for words, language in self._choices():
            score = matcher.match(words)
            if score > 0:
                yield Hit(score, matcher.highlight(words), self._run(language))

    async def discover(self) -> Hits:
        for words, language in self._choices():
            yield DiscoveryHit(words, self._run(language))
