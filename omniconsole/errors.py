"""Errors that reach a person: each carries one line saying what is wrong and what to do.

An error's words can be translated into the reader's language (issue #24): raise it with the
English template marked for extraction and its values as keywords,
`ActionError(N_("conversation {id} does not exist"), id=7)`; `str(exc)` is the English line
(logs, the events table, tests), `exc.translated()` the line in the language `omniconsole.i18n`
speaks now (the window, the CLI). An error raised with a ready-made string (no keywords) reads
the same in every language. `template` and `params` travel over the control socket, so the
window of a team setup translates an error the core raised.
"""

from __future__ import annotations

from typing import Any


class OmniError(Exception):
    """Base of errors shown to a person as one line, never as a traceback.

    `template` (str): the English words, with `{name}` fields when `params` is not empty;
    `params` (dict[str, str | int | float]): the values of those fields. Raises KeyError at
    construction when a field has no value (a programming error, caught by tests)."""

    def __init__(self, template: str = "", /, **params: Any) -> None:
        self.template = template
        self.params = params
        super().__init__(template.format(**params) if params else template)

    def translated(self) -> str:
        """The line in the current language; the English one when the catalog lacks it."""
        from omniconsole.i18n import _  # noqa: PLC0415 - errors.py sits below every module

        words = _(self.template) if self.template else str(self)
        if not self.params:
            return words if self.template else str(self)
        try:
            return words.format(**self.params)
        except (KeyError, IndexError, ValueError):
            return str(self)  # a translation that lost a field: English rather than nothing


class UsageError(OmniError):
    """A bad command line, config file or environment."""


class StoreError(OmniError):
    """The database cannot be opened or used (unreadable, too new, disk full)."""


def error_text(exc: BaseException) -> str:
    """What to show a person for `exc`: an OmniError's translated line, else `str(exc)`."""
    return exc.translated() if isinstance(exc, OmniError) else str(exc)
