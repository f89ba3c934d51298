"""The operator's language (omniconsole/i18n.py): the catalogs are complete for what the source
marks, compiled, Russian plurals come from the catalog, and the language is chosen in order."""

from __future__ import annotations

import gettext
import re
import time
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from omniconsole import i18n
from omniconsole.tui import text

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "omniconsole" / "locale" / "{lang}" / "LC_MESSAGES" / "omniconsole.po"
# The keywords `make i18n` passes to pybabel (Babel's defaults plus Nn_ for plural pairs).
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "N_": None,
    "Nn_": (1, 2),
    "Np_": ((1, "c"), 2),
}


@pytest.fixture
def russian():
    i18n.set_language("ru")
    try:
        yield
    finally:
        i18n.set_language("en")


def source_msgids() -> dict[tuple[str, str | None], tuple[str, ...]]:
    """Every string the source marks, extracted by Babel now (as `make i18n` does, with the
    method map of babel.cfg): (msgid, context) -> (msgid, plural) or (msgid,)."""
    found: dict[tuple[str, str | None], tuple[str, ...]] = {}
    for _file, _line, message, _comments, context in extract_from_dir(
        str(ROOT / "omniconsole"), method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        forms = message if isinstance(message, tuple) else (message,)
        found[(forms[0], context)] = forms
    return found


def catalog(lang: str):
    with open(str(PO).format(lang=lang), "rb") as handle:
        return read_po(handle, locale=lang)


def placeholders(s: str) -> set[str]:
    return set(re.findall(r"\{[^{}]*\}|%\w", s))


def test_every_marked_string_has_a_russian_translation():
    """Fails on a string wrapped in the source but missing (or empty, or fuzzy) in ru: run
    `make i18n` and translate it."""
    ru = catalog("ru")
    source = source_msgids()
    assert len(source) > 20
    missing = []
    for (msgid, context), forms in source.items():
        entry = ru.get(msgid, context=context)
        if entry is None or "fuzzy" in entry.flags:
            missing.append(msgid)
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if len(forms) == 2 and (not isinstance(entry.id, tuple) or len(strings) != 3):
            missing.append(f"{msgid} (needs its three Russian plural forms)")
        elif not all(s.strip() for s in strings):
            missing.append(msgid)
    assert not missing, "no Russian for: " + "; ".join(missing)


def test_russian_keeps_every_placeholder():
    """A translation that drops or renames `{n}` would raise (or lie) when formatted."""
    for entry in catalog("ru"):
        if not entry.id:
            continue
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        for s in strings:
            assert placeholders(s) == placeholders(ids[-1]), (entry.id, s)


def test_the_shipped_mo_matches_the_po():
    """The .mo the package ships is compiled from the current .po (else: `make i18n`)."""
    compiled = gettext.GNUTranslations(open(str(PO).format(lang="ru").replace(".po", ".mo"), "rb"))
    for entry in catalog("ru"):
        if not entry.id:
            continue
        if isinstance(entry.id, tuple):
            for n, form in ((1, 0), (2, 1), (5, 2)):
                assert compiled.ngettext(entry.id[0], entry.id[1], n) == entry.string[form], entry.id
        else:
            shown = compiled.pgettext(entry.context, entry.id) if entry.context else compiled.gettext(entry.id)
            assert shown == entry.string, entry.id
    assert (Path(str(PO).format(lang="en"))).exists()


def test_russian_plural_forms_come_from_the_catalog(russian):
    words = {n: text.counted(n, "conversation") for n in (0, 1, 2, 4, 5, 11, 12, 14, 21, 22, 25, 101, 111)}
    assert words == {
        0: "0 разговоров",
        1: "1 разговор",
        2: "2 разговора",
        4: "4 разговора",
        5: "5 разговоров",
        11: "11 разговоров",
        12: "12 разговоров",
        14: "14 разговоров",
        21: "21 разговор",
        22: "22 разговора",
        25: "25 разговоров",
        101: "101 разговор",
        111: "111 разговоров",
    }
    # Digit groups as Russian writes them (a no-break space, CLDR's).
    assert text.counted(12345, "message") == "12\xa0345 сообщений"
    assert text.counted(3, "customer") == "3 клиента"


def test_english_is_unchanged():
    assert i18n.current_language() == "en"
    assert text.counted(1, "conversation") == "1 conversation"
    assert text.counted(12345, "message") == "12,345 messages"
    assert text.counted(2, "bag") == "2 bags"
    assert text.ago(0, 45) == "45s" and text.ago(0, 12 * 60) == "12m" and text.ago(0, 3 * 86400) == "3d"
    assert text.countdown(100, 0) == "1m" and text.countdown(0, 30) == "-<1m"
    assert text.STATE["failed"] == "✗ failed"


def test_relative_times_in_russian(russian, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    now = 1_800_000_000.0  # 2027-01-15 08:00 UTC
    assert text.ago(now - 45, now) == "45 с"
    assert text.ago(now - 5 * 60, now) == "5 мин"
    assert text.ago(now - 3 * 3600, now) == "3 ч"
    assert text.countdown(now - 10 * 60, now) == "-10 мин"
    assert text.ago_words(now - 10, now) == "только что"
    assert text.ago_words(now - 5 * 60, now) == "5 мин назад"
    assert text.ago_words(now - 3 * 3600, now) == "3 ч назад"
    assert text.ago_words(now - 10 * 3600, now) == "вчера"  # 22:00 the day before
    assert text.ago_words(now - 2 * 86400, now) == "2 дня назад"
    assert text.ago_words(now - 5 * 86400, now) == "5 дней назад"
    assert text.ago_words(now - 21 * 86400, now) == "21 день назад"
    assert text.clock_time(now - 3 * 86400, now) == "12 янв. 08:00"
    assert text.clock_time(now - 60, now) == "07:59"


def test_relative_times_in_english(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    now = 1_800_000_000.0
    assert text.ago_words(now - 5 * 60, now) == "5 min ago"
    assert text.ago_words(now - 10 * 3600, now) == "yesterday"
    assert text.ago_words(now - 5 * 86400, now) == "5 days ago"
    assert text.clock_time(now - 3 * 86400, now) == "12 Jan 08:00"


def test_the_language_is_chosen_operator_then_config_then_locale_then_english():
    assert i18n.choose_language("ru", "en", {"LANG": "en_US.UTF-8"}) == "ru"
    assert i18n.choose_language(None, "ru", {"LANG": "en_US.UTF-8"}) == "ru"
    assert i18n.choose_language("", "en", {"LANG": "ru_RU.UTF-8"}) == "en"
    assert i18n.choose_language(None, None, {"LANG": "ru_RU.UTF-8"}) == "ru"
    assert i18n.choose_language(None, None, {"LANG": "en_US.UTF-8", "LC_MESSAGES": "ru_RU.UTF-8"}) == "ru"
    assert i18n.choose_language(None, None, {"LC_ALL": "C", "LANG": "ru_RU.UTF-8"}) == "en"
    assert i18n.choose_language(None, None, {"LANGUAGE": "de:ru", "LANG": "en_US.UTF-8"}) == "ru"
    assert i18n.choose_language(None, None, {"LANG": "ru_KZ.UTF-8"}) == "ru"
    assert i18n.choose_language(None, None, {"LANG": "de_DE.UTF-8"}) == "en"
    assert i18n.choose_language(None, None, {}) == "en"


def test_an_unknown_language_is_refused_in_words():
    with pytest.raises(i18n.LanguageError, match="unknown language 'de'; choose one of: en, ru"):
        i18n.set_language("de")
    assert i18n.current_language() == "en"
    assert i18n.check_language("ru_RU.UTF-8") == "ru"


def test_an_error_raised_with_a_template_is_translated_where_it_is_shown(russian):
    from omniconsole.errors import UsageError, error_text

    exc = UsageError(i18n.N_("{login} is not an operator"), login="bob")
    assert str(exc) == "bob is not an operator"  # logs and events keep English
    assert exc.translated() == "bob не оператор"
    assert error_text(exc) == "bob не оператор"
    plain = UsageError("no template here: {braces} stay")
    assert plain.translated() == "no template here: {braces} stay"
    assert error_text(ValueError("x")) == "x"


def test_the_russian_window_loads_babel_ahead_and_the_english_one_never(russian):
    import subprocess
    import sys

    code = (
        "import sys; from omniconsole import i18n; from omniconsole.tui import text; i18n.set_language('{lang}'); "
        "text.warm_up(); print('babel.dates' in sys.modules, 'babel.numbers' in sys.modules)"
    )
    runs = {
        lang: subprocess.run([sys.executable, "-c", code.format(lang=lang)], capture_output=True, text=True)
        for lang in ("ru", "en")
    }
    assert runs["ru"].stdout.split() == ["True", "True"], runs["ru"].stderr
    assert runs["en"].stdout.split() == ["False", "False"], runs["en"].stderr
