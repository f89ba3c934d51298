"""The CLI's language (issue #24): chosen before the parser is built, so `--help`, argparse's
own words and every line a command prints speak it.

Order (omniconsole/i18n.py `choose_language`): `[ui] language` of the config the command will
read (`--config`, else $OMNICONSOLE_CONFIG, else ./omniconsole.toml), else the locale (`LANGUAGE`,
`LC_ALL`, `LC_MESSAGES`, `LANG`), else English. The config is only peeked at here, leniently: a
broken one is reported later by `config.load_settings` — in the language its `[ui]` names when
it can be read at all.

argparse translates its words ("usage: ", "the following arguments are required: %s") with
`gettext.gettext` of the global domain, bound in the `argparse` module as `_` and `ngettext`
(CPython's Lib/argparse.py). `speak_argparse` points those two names at this program's catalog,
whose entries for them are the `N_` markers of `ARGPARSE_WORDS` below.
"""

from __future__ import annotations

import argparse
import os
import tomllib

from omniconsole.i18n import (
    N_,
    Nn_,
    _,
    choose_language,
    current_language,
    local_number,
    ngettext,
    set_language,
    translated_template,
)

#: argparse's msgids (Python 3.11) that an operator or admin can meet, marked for extraction
#: so the catalog carries their Russian; the rest (programming errors) stay English.
ARGPARSE_WORDS = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("%(prog)s: error: %(message)s\n"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("invalid %(type)s value: %(value)r"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("not allowed with argument %s"),
    N_("ignored explicit argument %r"),
    N_("one of the arguments %s is required"),
    N_("unexpected option string: %s"),
    N_("can't open '%(filename)s': %(error)s"),
    Nn_("expected %s argument", "expected %s arguments"),
)


def peek_config_language(argv: list[str] | None) -> str | None:
    """`[ui] language` of the config `argv` (or the environment) names, or None when there is
    none or it cannot be read (never raises: `load_settings` reports a broken config)."""
    from omniconsole import config as config_module

    early = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    early.add_argument("--config")
    try:
        known, _rest = early.parse_known_args(argv)
        path = config_module.find_config(known.config)
        if path is None:
            return None
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, SystemExit):
        return None
    ui = raw.get("ui")
    value = ui.get("language") if isinstance(ui, dict) else None
    return value if isinstance(value, str) else None


def choose_cli_language(argv: list[str] | None, environ: dict[str, str] | None = None) -> str:
    """Set and return the language of this command (config's `[ui] language`, else the locale)."""
    code = set_language(choose_language(None, peek_config_language(argv), os.environ if environ is None else environ))
    speak_argparse()
    return code


def speak_argparse() -> None:
    """Make argparse's own words ("usage: ", "error:") follow `omniconsole.i18n`'s language."""
    argparse._ = _  # type: ignore[attr-defined]  # argparse looks `_` up at each call
    argparse.ngettext = ngettext  # type: ignore[attr-defined]


def figure(n: int) -> str:
    """A count as the CLI prints it: `12345` in English (as it always was), `12 345` in Russian
    (CLDR's digit groups, by Babel)."""
    return local_number(n, str(n))


def decimal(x: float, places: int = 1) -> str:
    """`x` with `places` decimals: `4.5` in English, `4,5` in Russian (the decimal comma)."""
    text = f"{x:.{places}f}"
    return text if current_language() == "en" else text.replace(".", ",")


def words_text(words: object) -> str:
    """A line a connector or the calendar made as `connectors.base.Words` (an English str that
    keeps its template and values) in the current language; values that are Words themselves
    are translated too. Any other object is shown as its `str` (English when no catalog has it)."""
    template = getattr(words, "template", None)
    if template is None:
        return str(words)
    params = {key: words_text(value) if hasattr(value, "template") else value for key, value in words.params.items()}
    return translated_template(template, params, str(words))
