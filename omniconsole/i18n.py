"""The operator's language: every string an operator or admin reads goes through `_()` (or
`ngettext()` for counts) of this module, on the standard `gettext` module.

Catalogs: `omniconsole/locale/<lang>/LC_MESSAGES/omniconsole.po`, compiled to `.mo` and shipped
as package data (`make i18n` extracts the source's strings with Babel's `pybabel extract`,
updates both catalogs and compiles them). The msgids are the English texts, so English needs no
translation; Russian plural forms come from the `Plural-Forms` header of the `ru` catalog
(1 разговор, 2 разговора, 5 разговоров).

The language is one per process (one operator per window, one admin per CLI command), chosen
by `choose_language`: the operator's own setting, else `[ui] language` of the config, else the
locale (`LC_ALL`, `LC_MESSAGES`, `LANG`, as gettext reads them), else English. Texts customers
read (the bot, surveys, auto-replies, web chat) follow the customer's language and never pass
through here.

Strings that are defined before a language is known (a `Binding`'s description at class
definition) are marked with `N_()` (`Np_()` with a context, `Nn_()` a plural pair) and
translated where they are shown (`tui/keys.py`
help rows, the palette, the worker failure words).
"""

from __future__ import annotations

import gettext
import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

DOMAIN = "omniconsole"
#: The languages the window and the CLI speak; the first is the default.
LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).with_name("locale")

_current = DEFAULT_LANGUAGE


class LanguageError(ValueError):
    """A language this program has no catalog for."""


def normalise_language(value: str | None) -> str | None:
    """`ru`, `ru_RU.UTF-8`, `RU-ru`, `ru_KZ` -> `ru`; `en_GB` -> `en`; None for empty, `C`,
    `POSIX` or a language without a catalog."""
    if not value:
        return None
    code = value.strip().split(":")[0].split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    return code if code in LANGUAGES else None


def check_language(value: str) -> str:
    """`value` as a supported language code; raises LanguageError naming the choices."""
    code = normalise_language(value)
    if code is None:
        raise LanguageError(f"unknown language {value!r}; choose one of: {', '.join(LANGUAGES)}")
    return code


def locale_language(environ: Mapping[str, str] | None = None) -> str | None:
    """The language of the locale, read as gettext does: the first set of `LANGUAGE`, `LC_ALL`,
    `LC_MESSAGES`, `LANG` (POSIX precedence; `LANGUAGE` may list several, `ru:en`)."""
    environ = os.environ if environ is None else environ
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            for part in value.split(":"):
                code = normalise_language(part)
                if code:
                    return code
            if name != "LANGUAGE":
                return None  # set, but C/POSIX or a language we lack: English, not a lower variable
    return None


def choose_language(operator: str | None = None, config: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The operator's setting (`operators.language`), else `[ui] language` of the config, else
    the locale, else English."""
    return normalise_language(operator) or normalise_language(config) or locale_language(environ) or DEFAULT_LANGUAGE


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of `language`; English is the msgids themselves. Raises
    LanguageError when a supported language's `.mo` is missing (run `make i18n`)."""
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    try:
        return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])
    except OSError:
        raise LanguageError(f"no compiled catalog for {language!r} under {LOCALE_DIR}; run `make i18n`") from None


def set_language(language: str) -> str:
    """Make `language` the one `_()` speaks from now on (no restart: strings are translated
    when drawn). Returns the code set; raises LanguageError for an unsupported one."""
    global _current
    code = check_language(language)
    translations(code)
    _current = code
    return code


def current_language() -> str:
    """The code `_()` translates into now: `en` or `ru`."""
    return _current


def _(message: str) -> str:
    """`message` (English, the msgid) in the current language."""
    if _current == DEFAULT_LANGUAGE or not message:
        return message
    return translations(_current).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of `singular`/`plural` for the count `n` (Russian has three, chosen by the
    catalog's Plural-Forms). The result usually holds `{n}` to format."""
    if _current == DEFAULT_LANGUAGE:
        return singular if n == 1 else plural
    return translations(_current).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """`message` in the current language where the same English word needs another one by
    its `context` ("Resolved" the view is "Решённые", "Resolved" the notification "Решено")."""
    if _current == DEFAULT_LANGUAGE or not message:
        return message
    return translations(_current).pgettext(context, message)


def Np_(context: str, message: str) -> str:
    """Marks `message` in `context` for extraction (`pybabel extract -k Np_:1c,2`), to be
    translated later by `pgettext(context, message)`."""
    return message


def Nn_(singular: str, plural: str) -> tuple[str, str]:
    """Marks a singular/plural pair for extraction (`pybabel extract -k Nn_:1,2`), to be
    passed to `ngettext()` later."""
    return singular, plural


def N_(message: str) -> str:
    """Marks `message` for extraction without translating it now (it is translated by `_()`
    where it is drawn, in the language of that moment)."""
    return message


def local_number(value: float, english: str, pattern: str | None = None, *, percent: bool = False) -> str:
    """A number shown to a person: `english` (the caller's own English rendering, kept byte
    for byte) in English, else `value` by Babel with CLDR's signs for the current language:
    Russian 12 345 (a no-break space groups digits), 4,5, 46 %. `pattern` (LDML: `#,##0.0`
    one decimal, `+#,##0;-#,##0` signed) replaces the language's own; `percent`: `value` is a
    share 0-1, shown with the language's percent pattern (no decimals)."""
    if _current == DEFAULT_LANGUAGE:
        return english
    from babel.numbers import format_decimal, format_percent

    if percent:
        return format_percent(value, format=pattern, locale=_current)
    return format_decimal(value, format=pattern, locale=_current)


def translated_template(template: str, values: Mapping[str, object], english: str) -> str:
    """`template` (an English msgid with `{name}` fields, `str.format` rules) in the current
    language with `values` filled in; `english`, the line as first made, when the translation
    lost or renamed a field (English rather than nothing). Errors (`OmniError.translated`) and
    connectors' lines (`cli/language.words_text`) are drawn with it."""
    try:
        return _(template).format(**values)
    except (KeyError, IndexError, ValueError):
        return english


# --- sentences kept as data -------------------------------------------------------------------
#
# A sentence made in one process and read in another (a timeline line the core writes, an
# error a team's core raises, a journey's advice) is kept as a *phrase*: its English template
# and its values, plain JSON data, so it can be stored (`messages.meta`) or sent over the core's
# socket and drawn in the reader's language later. A value is a string, a number, or itself a
# phrase (a routing reason inside "assigned to bob: {reason}"); a word of ours that has another
# meaning elsewhere ("open" the status) is a phrase with a context, made by `word()`.


def phrase(template: str, /, **params: object) -> dict:
    """`{"t": template, "p": params}`: a sentence to draw later with `render()`. `template` is
    English with `{name}` fields, marked for extraction where it is written (`N_()`); `params`
    are str, int, float or phrases. Raises KeyError when a field has no value (a programming
    error, caught by tests), as `str.format` does."""
    made = {"t": template, "p": dict(params)} if params else {"t": template}
    _fill(template, {k: english(v) for k, v in params.items()})  # every field has its value
    return made


def word(context: str, message: str) -> dict:
    """One word of ours inside a phrase, translated with `pgettext(context, message)` where drawn
    (mark it with `Np_(context, message)` or list the choices with `Np_` where they are defined)."""
    return {"c": context, "t": message}


def joined(values: list, separator: str = "; ") -> dict | str:
    """Several values (strings or phrases) as one phrase, each translated where drawn: the
    lines of a rule's or a macro's run, joined by `separator`."""
    if not values:
        return ""
    fields = {f"v{i}": value for i, value in enumerate(values)}
    return phrase(separator.join("{" + name + "}" for name in fields), **fields)


def is_phrase(value: object) -> bool:
    """True for what `phrase()` or `word()` made (also after a JSON round trip)."""
    return isinstance(value, dict) and isinstance(value.get("t"), str)


def _render(value: object, translate: bool) -> str:
    if not is_phrase(value):
        return "" if value is None else str(value)
    template = value["t"]
    if translate:
        context = value.get("c")
        template = pgettext(str(context), template) if context else _(template)
    params = value.get("p") or {}
    if not isinstance(params, dict) or not params:
        return template
    values = {str(k): _render(v, translate) for k, v in params.items()}
    try:
        return _fill(template, values)
    except KeyError:
        if translate:  # a translation that lost a field: the English line rather than nothing
            return _render(value, False)
        raise


_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _fill(template: str, values: Mapping[str, str]) -> str:
    # Only plain `{name}` fields, in one pass: a phrase may come from another process (a
    # window's macro run), so no format specs, attribute lookups or values expanded again.
    return _FIELD.sub(lambda m: values[m.group(1)], template)


def english(value: object) -> str:
    """The phrase's English line (what `messages.body`, logs and the events table keep)."""
    return _render(value, False)


def render(value: object) -> str:
    """The phrase in the current language; a plain string or number as it is."""
    return _render(value, True)
