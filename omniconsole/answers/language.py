"""Which language a customer writes in, offline: py3langid (langid.py's model, shipped inside
the package; nothing is downloaded) restricted to the library's languages.

The model takes about a second to load, once per process, on first use (or `warm_up()` in a
worker); each detection then takes well under a millisecond.
"""

from __future__ import annotations

import threading

#: The languages the library is written in (LANGUAGES of library.py).
SUPPORTED = ("ru", "en")
_lock = threading.Lock()
_identifier = None


def _model():
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            identifier.set_languages(list(SUPPORTED))
            _identifier = identifier
    return _identifier


def warm_up() -> None:
    """Load the model now (call it from a worker thread, not the UI's)."""
    _model()


def detect(text: str, *, min_confidence: float = 0.8) -> str | None:
    """'ru' or 'en' for a customer's text, or None when it has too few letters to tell (an
    emoji, "ok", an order number) or the model is unsure."""
    letters = sum(ch.isalpha() for ch in text)
    if letters < 3:
        return None
    cyrillic = sum("\u0400" <= ch <= "\u04ff" for ch in text)
    if cyrillic == 0 and letters < 6:
        return None  # "ok", "thx": too short to tell English from transliterated Russian
    language, confidence = _model().classify(text)
    return language if confidence >= min_confidence else None


def detect_messages(texts: list[str]) -> str | None:
    """The language of a customer's latest messages (newest last): the newest message that
    tells, else all of them together."""
    for text in reversed(texts):
        if (language := detect(text)) is not None:
            return language
    return detect(" ".join(texts)) if texts else None


def detect_by_script(texts: list[str]) -> str | None:
    """'ru' or 'en' from the alphabet of a customer's latest messages (newest last): the newest
    message with at least three letters that are mostly Cyrillic (ru) or mostly Latin (en); None
    when none tells. No model: the operator's window uses it because the model costs about 90 MB
    resident, most of the window's 100 MB budget (README "Benchmarks"); it cannot tell
    transliterated Russian from English, which the window's picker shows one key away (ctrl+l)."""
    for text in reversed(texts):
        cyrillic = sum("\u0400" <= ch <= "\u04ff" for ch in text)
        latin = sum(ch.isascii() and ch.isalpha() for ch in text)
        if cyrillic + latin >= 3:
            return "ru" if cyrillic >= latin else "en"
    return None
