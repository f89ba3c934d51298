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
        from omniconsole.i18n import english  # noqa: PLC0415 - errors.py sits below every module

        self.template = template
        self.params = params
        super().__init__(template.format(**{k: english(v) for k, v in params.items()}) if params else template)

    def translated(self) -> str:
        """The line in the current language; the English one when the catalog lacks it. A value
        that is itself a phrase (`omniconsole.i18n.phrase`, `word`) is translated too."""
        from omniconsole.i18n import _, render, translated_template  # noqa: PLC0415 - errors.py sits below every module

        if not self.template:
            return str(self)
        if not self.params:
            return _(self.template)
        return translated_template(self.template, {k: render(v) for k, v in self.params.items()}, str(self))

    @classmethod
    def rebuilt(cls, message: str, template: object = None, params: object = None) -> OmniError:
        """The error another process raised, from what its core socket answer carried: the
        English `message`, and `template`/`params` when that process sent them (older cores do
        not; then the error reads `message` in every language)."""
        error = cls.__new__(cls)
        if isinstance(template, str) and template and isinstance(params, (dict, type(None))):
            try:
                OmniError.__init__(error, template, **{str(k): v for k, v in (params or {}).items()})
            except (KeyError, IndexError, ValueError, AttributeError):
                pass
            else:
                if str(error) == message:  # template and values say what the sender said
                    return error
        OmniError.__init__(error, message)
        return error

    def carried(self) -> dict:
        """`{"template", "params"}` as JSON data for the core socket's answer (values that are
        not text, numbers or phrases travel as their text)."""
        from omniconsole.i18n import is_phrase  # noqa: PLC0415 - errors.py sits below every module

        def plain(value: Any) -> Any:
            if isinstance(value, (str, int, float)) or value is None or is_phrase(value):
                return value
            return str(value)

        return {"template": self.template, "params": {k: plain(v) for k, v in self.params.items()}}


class UsageError(OmniError):
    """A bad command line, config file or environment."""


class StoreError(OmniError):
    """The database cannot be opened or used (unreadable, too new, disk full)."""


def error_text(exc: BaseException) -> str:
    """What to show a person for `exc`: an OmniError's translated line, else `str(exc)`."""
    return exc.translated() if isinstance(exc, OmniError) else str(exc)


def error_phrase(exc: BaseException) -> dict | str:
    """`exc` as a value of a phrase (`omniconsole.i18n.phrase`), so a line that quotes an error
    ("could not assign to bob: …") is drawn in the reader's language: an OmniError with a
    template as its template and values, anything else as its English text."""
    if isinstance(exc, OmniError) and exc.template:
        params = exc.carried()["params"]
        return {"t": exc.template, "p": params} if params else {"t": exc.template}
    return str(exc)
