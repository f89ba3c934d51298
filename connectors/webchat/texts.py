"""What a web chat visitor reads from the server, in their language (issue #24: customer-facing
texts follow the customer's language; they are this small catalog and the channel's settings,
never the operator's gettext catalog in omniconsole/locale/).

The widget says its language with every request as the query parameter `lang` ("ru", "en",
or a browser tag such as "ru-RU"); without it the `Accept-Language` header decides; else
English. The settings `title`, `greeting` and `offline_text` are each either a string (every
language, as before) or a table by language (`{ en = "...", ru = "..." }`); a language the
table leaves out gets the built-in default of that language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The languages the widget and the server speak to visitors (the first is the fallback).
LANGUAGES = ("en", "ru")
FALLBACK = "en"

#: The settings a visitor reads, with their built-in texts ("" shows nothing).
SETTING_DEFAULTS: dict[str, dict[str, str]] = {
    "title": {"en": "Chat with us", "ru": "Напишите нам"},
    "greeting": {"en": "", "ru": ""},
    "offline_text": {
        "en": "We're offline; leave your e-mail and we'll answer by e-mail.",
        "ru": "Сейчас мы не в сети. Оставьте e-mail — мы ответим вам на почту.",
    },
}

#: Sentences of the server a visitor reads: the line stored for a contact they left (shown in
#: their chat and to the operator) and refusals of what they typed. Refusals only a broken or
#: foreign client can cause (a malformed id, bad JSON) stay English: they are for developers.
SENTENCES: dict[str, dict[str, str]] = {
    "en": {
        "my_email": "e-mail {address}",
        "my_phone": "phone {address}",
        "my_contact": "My {items}",
        "and": " and ",
        "name": " (name: {name})",
        "empty": "the message is empty",
        "too_long": "the message is over {limit} characters; split it in parts",
        "bad_email": "that does not look like an e-mail address",
        "bad_phone": "that does not look like a phone number",
        "no_contact": "leave an e-mail or a phone number",
    },
    "ru": {
        "my_email": "e-mail {address}",
        "my_phone": "телефон {address}",
        "my_contact": "Мой {items}",
        "and": " и ",
        "name": " (имя: {name})",
        "empty": "сообщение пустое",
        "too_long": "сообщение длиннее {limit} символов; разделите его на части",
        "bad_email": "это не похоже на адрес e-mail",
        "bad_phone": "это не похоже на номер телефона",
        "no_contact": "оставьте e-mail или номер телефона",
    },
}


@dataclass(frozen=True, slots=True)
class Localized:
    """One visitor-facing setting in every language the chat speaks."""

    texts: Mapping[str, str]

    def get(self, language: str) -> str:
        """The text for `language` (one of LANGUAGES; anything else gets English)."""
        return self.texts.get(language, self.texts[FALLBACK])


def localized(settings: Mapping[str, Any], key: str) -> Localized:
    """The setting `key` of SETTING_DEFAULTS for every language: a string applies to all of
    them, a table names its languages (those it leaves out keep the built-in text). Raises
    ValueError in words for any other shape or an unknown language."""
    defaults = SETTING_DEFAULTS[key]
    raw = settings.get(key)
    if raw is None or raw == "":
        return Localized(dict(defaults))
    if isinstance(raw, str):
        return Localized({language: raw for language in LANGUAGES})
    if not isinstance(raw, Mapping):
        raise ValueError(f'{key} must be text, or a table by language such as {{ en = "...", ru = "..." }}')
    unknown = sorted(str(k) for k in raw if k not in LANGUAGES)
    if unknown:
        raise ValueError(f"{key}: the chat speaks {' and '.join(LANGUAGES)}, not {', '.join(map(repr, unknown))}")
    for language, text in raw.items():
        if not isinstance(text, str):
            raise ValueError(f"{key}.{language} must be text")
    return Localized({language: str(raw.get(language) or defaults[language]) for language in LANGUAGES})


def sentence(language: str, key: str, **values: Any) -> str:
    """A server sentence of SENTENCES in `language` (English for any other)."""
    return SENTENCES.get(language, SENTENCES[FALLBACK])[key].format(**values)


def pick_language(tags: str) -> str | None:
    """The first of LANGUAGES among comma-separated language tags ("ru-RU", "en;q=0.8",
    RFC 9110 section 12.5.4 Accept-Language, ordered by their q weights), by primary subtag;
    None when none matches (so "*" and "de" say nothing)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(tags.split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        primary = tag.strip().lower().replace("_", "-").split("-")[0]
        if primary in LANGUAGES and weight > 0:
            ranked.append((-weight, position, primary))
    return min(ranked)[2] if ranked else None


def visitor_language(query: Mapping[str, str], accept_language: str) -> tuple[str, bool]:
    """The language to answer a request in and whether the visitor said it: (language, True)
    from the widget's `lang` parameter, else from the Accept-Language header; (English, False)
    when neither names a language the chat speaks."""
    for tags in (query.get("lang", ""), accept_language):
        language = pick_language(tags[:500]) if tags else None
        if language is not None:
            return language, True
    return FALLBACK, False
