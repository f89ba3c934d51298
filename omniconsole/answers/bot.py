"""The bot's decision for one customer message: answer from the library, stay silent, or hand
the conversation to a person, with the reason in words. Pure and offline: no store, no clock.

    brain = BotBrain(Engine(await store.kb_articles()), Thresholds())
    decision = brain.decide("сколько стоит доставка?")
    decision.action      # "answer" | "handoff" | "silent"

Order of the checks (the first that fires decides; wrong answers are worse than handoffs):
1. nothing to read (no letters: emoji, "???", an order number alone): silent;
2. wants a person (оператор, человек, живой, менеджер, позовите, specialist, human, agent,
   person, representative; "0" alone, the keypad habit): handoff;
3. sensitive: anger, a complaint, legal words, a refund dispute, a personal-data request, an
   account-specific request (an order or card number, an e-mail, "cancel"): handoff;
4. not a question (greetings, thanks, "ok", goodbyes): silent;
5. a language the bot does not speak: handoff;
6. retrieval (the Answers engine, Snowball stems, typos one edit away; Latin text is also tried
   transliterated into Cyrillic, "gde moi zakaz"): the best article the bot may send (published,
   not internal, not a greeting/closing phrase) with a confidence from its score and its margin
   over the second candidate, where
   margin = (first - second) / first, times the share of the question's content words the
   article covers: `confidence = (1 - exp(-score / score_scale)) * margin^0.35 * coverage^0.75`.
   An internal article or a script on top means the question needs a person: handoff. At or
   over `min_confidence` (and `min_score`): answer; under: handoff for low confidence.

Thresholds were tuned on `tests/fixtures/bot/tune.jsonl` (phrasings written separately from
the evaluation set `data/bot-eval/demo.jsonl`, which was written first and never tuned on).
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field

from omniconsole.answers.engine import NOT_ANSWERS, Engine, Hit, fold, words
from omniconsole.answers.language import SUPPORTED, detect
from omniconsole.i18n import N_, english, phrase


@dataclass(frozen=True)
class Thresholds:
    """When the bot may answer. `min_confidence` 0..1 (see the module docstring), `min_score`
    the BM25 score the best article needs at least, `score_scale` how fast the score saturates."""

    min_confidence: float = 0.38
    min_score: float = 6.0
    score_scale: float = 8.0


@dataclass(frozen=True)
class Decision:
    """What the bot makes of a message. `action` is answer | handoff | silent; `reason` says
    why in words (for the operator and the handoff figures); `category` is the handoff reason's
    kind (person, sensitive, unreadable, language, low_confidence, ...) ; `hit` the article for
    an answer (also the best candidate of a low-confidence handoff); `candidates` the top
    articles (suggest mode offers them); `confidence` 0..1."""

    action: str
    reason: str = ""
    category: str = ""
    language: str | None = None
    hit: Hit | None = None
    confidence: float = 0.0
    candidates: tuple[Hit, ...] = field(default_factory=tuple)
    #: `reason` as a phrase (omniconsole.i18n) when it has values; see `reason_phrase`.
    why: dict | None = None

    @property
    def reason_phrase(self) -> dict:
        """The reason as a phrase for the operator's note, drawn in their language (the fixed
        reasons are marked N_ where written; `reason` stays the English for figures and logs)."""
        return self.why or {"t": self.reason}

    @property
    def topic(self) -> str:
        """The detected topic: the first tag of the best candidate ('' when none)."""
        best = self.hit or (self.candidates[0] if self.candidates else None)
        return best.record.tags[0] if best and best.record.tags else ""


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


# Matched on folded text (lower case, ё as е). Russian words are given as stems with \w* so
# every case ending matches (оператора, живого, менеджеру).
WANTS_PERSON = _any(
    r"\bоператор\w*",
    r"\bчеловек\w*",
    r"\bживо(й|го|му|м)\b",
    r"\bживым\b",
    r"\bменеджер\w*",
    r"\bпозови\w*",
    r"\bпозвать\b",
    r"\bсоедини\w*",
    r"\bспециалист\w*",
    r"\bсотрудник\w*",
    r"\bhuman\b",
    r"\bagent\b",
    r"\bperson\b",
    r"\brepresentative\b",
    r"\boperator\b",
    r"\breal people\b",
    r"\bsomeone real\b",
    r"\bspecialist\b",
    r"\bmanager\b",
    r"\bsupervisor\b",
)
ANGER = _any(
    r"\bбезобраз\w*",
    r"\bобнагле\w*",
    r"\bотврат\w*",
    r"\bкошмар\w*",
    r"\bужасн\w*",
    r"\bдостали\b",
    r"\bворы\b",
    r"\bворюг\w*",
    r"\bразвод\w*",
    r"\bхамств\w*",
    r"\bидиот\w*",
    r"\bпозор\w*",
    r"\boutrageous\b",
    r"\bfurious\b",
    r"\bworst\b",
    r"\bthieves\b",
    r"\bscam\w*",
    r"\bdisgust\w*",
    r"\bterrible\b",
    r"\bridiculous\b",
    r"\bidiot\w*",
    r"\bwtf\b",
    r"\bangry\b",
    r"\bunacceptable\b",
    r"\bpathetic\b",
)
COMPLAINT = _any(r"\bжалоб\w*", r"\bжаловат\w*", r"\bпретензи\w*", r"\bcomplain\w*", r"\bcomplaint\w*")
LEGAL = _any(
    r"\bсуд\w*",
    r"\bюрист\w*",
    r"\bадвокат\w*",
    r"\bроспотребнадзор\w*",
    r"\bпрокуратур\w*",
    r"\bполици\w*",
    r"\bзащите прав потребител\w*",
    r"\bмошенни\w*",
    r"\bиск\b",
    r"\bsue\b",
    r"\blawyer\w*",
    r"\bcourt\b",
    r"\blegal\b",
    r"\bpolice\b",
    r"\bfraud\w*",
    r"\blawsuit\b",
    r"\battorney\b",
)
REFUND_WORDS = _any(
    r"\bвозврат\w*", r"\bверн\w*", r"\bденьг\w*", r"\bсписан\w*", r"\brefund\w*", r"\bmoney back\b", r"\bcharge\w*"
)
DISPUTE_WORDS = _any(
    r"\bотказал\w*",
    r"\bотказ\b",
    r"\bоспари\w*",
    r"\bоспорит\w*",
    r"\bне согласен\b",
    r"\bне согласна\b",
    r"\bтребую\b",
    r"\bнемедленно\b",
    r"\bdispute\w*",
    r"\brefused\b",
    r"\bdenied\b",
    r"\brejected\b",
    r"\bnever refunded\b",
    r"\bchargeback\w*",
    r"\bdemand\b",
)
PERSONAL_DATA = _any(
    r"\bперсональн\w* данн\w*",
    r"\b152-?фз\b",
    r"\bмои данные\b",
    r"\bудалите мой аккаунт\b",
    r"\bpersonal data\b",
    r"\bgdpr\b",
    r"\bmy data\b",
    r"\berase my\b",
    r"\bdelete my (account|data)\b",
)
ACCOUNT_SPECIFIC = _any(
    r"\d{4,}",
    r"[\w.+-]+@[\w-]+\.\w+",
    r"\bотмен\w*",
    r"\bcancel\w*",
    r"\bбаланс\w*",
    r"\bбонус\w*",
    r"\bскидк\w*",
    r"\bdiscount\w*",
    r"\binvoice\w*",
    r"\b(change|update|измени\w*|помен\w*)\b.*\b(phone|телефон\w*|e-?mail|почт\w*)",
)
_SMALL_TALK = {
    "hello",
    "hi",
    "hey",
    "hi there",
    "hello there",
    "good morning",
    "good afternoon",
    "good evening",
    "thanks",
    "thank you",
    "thank you so much",
    "thanks a lot",
    "many thanks",
    "thx",
    "ty",
    "ok",
    "okay",
    "k",
    "got it",
    "cool",
    "great",
    "fine",
    "bye",
    "good bye",
    "goodbye",
    "see you",
    "yes",
    "no",
    "understood",
    "alright",
    "all right",
    "nice",
    "здравствуйте",
    "здрасте",
    "привет",
    "добрый день",
    "добрый вечер",
    "доброе утро",
    "доброй ночи",
    "спасибо",
    "спасибо большое",
    "большое спасибо",
    "благодарю",
    "спс",
    "ок",
    "окей",
    "хорошо",
    "понятно",
    "ясно",
    "ага",
    "ага ясно",
    "понял",
    "поняла",
    "отлично",
    "до свидания",
    "пока",
    "всего доброго",
    "да",
    "нет",
    "ладно",
    "privet",
    "zdravstvuyte",
    "spasibo",
    "poka",
}
_LATIN_TO_CYRILLIC = [
    ("shch", "щ"),
    ("sch", "щ"),
    ("zh", "ж"),
    ("kh", "х"),
    ("ch", "ч"),
    ("sh", "ш"),
    ("ts", "ц"),
    ("yu", "ю"),
    ("ya", "я"),
    ("yo", "е"),
    ("ye", "е"),
    ("a", "а"),
    ("b", "б"),
    ("v", "в"),
    ("g", "г"),
    ("d", "д"),
    ("e", "е"),
    ("z", "з"),
    ("i", "и"),
    ("y", "ы"),
    ("k", "к"),
    ("l", "л"),
    ("m", "м"),
    ("n", "н"),
    ("o", "о"),
    ("p", "п"),
    ("r", "р"),
    ("s", "с"),
    ("t", "т"),
    ("u", "у"),
    ("f", "ф"),
    ("h", "х"),
    ("c", "ц"),
    ("w", "в"),
    ("x", "кс"),
    ("j", "й"),
    ("q", "к"),
]
_TRANSLIT = re.compile("|".join(latin for latin, _ in _LATIN_TO_CYRILLIC))
_TRANSLIT_MAP = dict(_LATIN_TO_CYRILLIC)
_NON_ENGLISH_LATIN = re.compile(r"[à-ÿąćęłńśźżčřšžőűåøæß¿¡]", re.IGNORECASE)


def transliterate(text: str) -> str:
    """Russian written in Latin letters ("gde moi zakaz") back in Cyrillic ("где мои заказ")."""
    return _TRANSLIT.sub(lambda m: _TRANSLIT_MAP[m.group(0)], fold(text))


# Function words a customer's question is full of and an article's body too ("the", "my",
# "как", "у"): left out of the bot's query so they do not make unrelated articles look close.
STOPWORDS = frozenset(
    """
a an the i me my we our you your he she it its they them their is are was were be been am do does did
to of in on at by for with from into so too very just or and but if this that these those
please hi hello thanks thank im i'm it's
и в во с со а то же за бы по ее мне от меня еще о из ему ли или ни быть был него до вас уж вам ведь там
себя ей они тут для мы тебя их себе под ж тот эти нас этой эту
пожалуйста подскажите скажите здравствуйте привет спасибо добрый день
""".split()
)


# Words customers use for what the shop's library words otherwise (a shop's vocabulary, not a
# library's: "shipping" for delivery, "привоз" for доставка). Each adds the library's word to
# the query; the customer's own word stays.
SYNONYMS = {
    "shipping": "delivery",
    "ship": "delivery",
    "shipped": "delivery",
    "shipment": "delivery",
    "deliver": "delivery",
    "package": "order parcel",
    "parcel": "order parcel",
    "purchase": "order",
    "fee": "price",
    "cost": "price",
    "charge": "price",
    "postpone": "reschedule",
    "move": "reschedule",
    "fix": "change",
    "correct": "change",
    "update": "change",
    "sign": "log",
    "signin": "log",
    "login": "log",
    "visa": "card",
    "mastercard": "card",
    "declined": "declined card",
    "rejected": "declined",
    "twice": "twice charged",
    "boots": "item",
    "shoes": "item",
    "jacket": "item",
    "dress": "item",
    "coat": "item",
    "try": "fitting",
    "привоз": "доставка",
    "привезти": "доставка",
    "привезут": "доставка",
    "посылка": "заказ",
    "покупка": "заказ",
    "покупку": "заказ",
    "поправьте": "изменить",
    "исправить": "изменить",
    "поменять": "изменить",
    "сдать": "вернуть",
    "примерить": "примерка",
    "дважды": "дважды списали",
    "отклоняет": "отклонена",
    "опаздывает": "задерживается",
}


def content_words(text: str) -> str:
    """The bot's retrieval query for a text: its words without function words (STOPWORDS),
    with the library's word added for a customer's synonym (SYNONYMS); the text itself when
    nothing would be left."""
    kept = [w for w in words(text) if w not in STOPWORDS]
    if not kept:
        return text
    return " ".join(kept + [extra for w in kept if w in SYNONYMS for extra in SYNONYMS[w].split()])


_full_lock = threading.Lock()
_full_identifier = None


def foreign_language(text: str) -> str | None:
    """The language of `text` when it is clearly neither Russian nor English (py3langid over
    all its 97 languages), else None. Short texts (under 12 letters) are never called foreign."""
    global _full_identifier
    if sum(ch.isalpha() for ch in text) < 12 or re.search("[а-яё]", fold(text)):
        return None
    if _NON_ENGLISH_LATIN.search(text):
        return "a language other than Russian or English"
    with _full_lock:
        if _full_identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _full_identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    language, probability = _full_identifier.classify(text)
    return language if language not in SUPPORTED and probability >= 0.9 else None


def small_talk(text: str) -> bool:
    """A greeting, thanks, "ok" or goodbye, with nothing asked."""
    phrase = " ".join(words(text))
    if phrase in _SMALL_TALK:
        return True
    parts = [p for p in re.split(r"[,.!;]+", phrase) if p.strip()]
    return bool(parts) and all(" ".join(p.split()) in _SMALL_TALK for p in parts)


def sensitive(text: str) -> tuple[str, str] | None:
    """(category, reason) when the message must go to a person whatever the library says."""
    folded = fold(text)
    if WANTS_PERSON.search(folded) or folded.strip() == "0":
        return "person", N_("the customer asked for a person")
    if PERSONAL_DATA.search(folded):
        return "sensitive", N_("a personal-data request")
    if LEGAL.search(folded):
        return "sensitive", N_("legal words")
    if COMPLAINT.search(folded):
        return "sensitive", N_("a complaint")
    if REFUND_WORDS.search(folded) and DISPUTE_WORDS.search(folded):
        return "sensitive", N_("a refund dispute")
    letters = [ch for ch in text if ch.isalpha()]
    shouting = len(letters) >= 12 and sum(ch.isupper() for ch in letters) / len(letters) > 0.7
    if ANGER.search(folded) or shouting or "!!!" in text:
        return "sensitive", N_("an angry message")
    if ACCOUNT_SPECIFIC.search(folded):
        return "account", N_("a request about the customer's own account or order")
    return None


class BotBrain:
    """Decides for one message at a time over one library (an `Engine`)."""

    def __init__(self, engine: Engine, thresholds: Thresholds | None = None):
        self.engine = engine
        self.thresholds = thresholds or Thresholds()
        # The stems each article (all its variants) holds, for the share of a question's
        # words an article covers.
        self.article_stems: dict[str, set[str]] = {}
        docs_of: dict[int, str] = {doc: record.key for doc, record in enumerate(engine.records)}
        for stem_, postings in engine.postings.items():
            for doc, _ in postings:
                self.article_stems.setdefault(docs_of[doc], set()).add(stem_)

    def coverage(self, text: str, key: str) -> float:
        """The share of the question's content words (typos one edit away included) that the
        article `key` holds: an out-of-scope question shares a word or two by chance."""
        query = [w for w in words(text) if w not in STOPWORDS] or words(text)
        if not query:
            return 0.0
        held = self.article_stems.get(key, set())

        def holds(word: str) -> bool:
            forms = [word, *SYNONYMS.get(word, "").split()]
            return any(s in held for form in forms for s, _ in self.engine._expand(form, prefix=False))  # noqa: SLF001

        return sum(1 for w in query if holds(w)) / len(query)

    def candidates(self, text: str, *, language: str | None, channel: str | None, limit: int = 3) -> list[Hit]:
        """The articles the bot may send for `text`, best first (internal and conversational
        ones left out)."""
        hits = self.engine.suggest(
            [content_words(text)], language=language, channel=channel, limit=limit + 6, include_internal=True, min_score=0.0
        )
        return [h for h in hits if not (set(h.record.tags) & NOT_ANSWERS)][:limit]

    def confidence(self, hits: list[Hit], text: str) -> float:
        """0..1 from the best score, its margin over the second and the share of the
        question's words it covers: saturation(score) * margin^0.35 * coverage^0.75."""
        if not hits:
            return 0.0
        first = hits[0].score
        second = hits[1].score if len(hits) > 1 else 0.0
        margin = (first - second) / first if first > 0 else 0.0
        saturation = 1 - math.exp(-first / self.thresholds.score_scale)
        return saturation * margin**0.35 * self.coverage(text, hits[0].key) ** 0.75

    def decide(self, text: str, *, channel: str | None = None) -> Decision:
        """The decision for one customer message (see the module docstring for the order)."""
        text = text.strip()
        if not any(ch.isalpha() for ch in text) and text != "0":
            return Decision("silent", "nothing to read")
        language = detect(text)
        found = sensitive(text)
        if found is not None:
            category, reason = found
            return Decision("handoff", reason, category, language)
        if small_talk(text):
            return Decision("silent", "a greeting or thanks", "small_talk", language)
        hits = self.candidates(text, language=language, channel=channel)
        confidence = self.confidence(hits, text)
        if not re.search("[а-яё]", fold(text)):
            translit = transliterate(text)
            other = self.candidates(translit, language="ru", channel=channel)
            other_confidence = self.confidence(other, translit)
            if other_confidence > confidence and (not hits or other[0].score > hits[0].score):
                hits, confidence, language = other, other_confidence, "ru"
        foreign = foreign_language(text)
        if foreign is not None and confidence < self.thresholds.min_confidence * 1.5:
            why = phrase(N_("written in {language}"), language=foreign)
            return Decision("handoff", english(why), "language", None, candidates=tuple(hits), why=why)
        if hits and (hits[0].record.internal or hits[0].record.kind == "script"):
            why = phrase(N_("the best article ({key}) is for operators only"), key=hits[0].key)
            return Decision("handoff", english(why), "internal", language, None, confidence, tuple(hits), why=why)
        if hits and hits[0].score >= self.thresholds.min_score and confidence >= self.thresholds.min_confidence:
            hit = hits[0]
            if language and language in hit.variants:
                hit = Hit(hit.key, hit.variants[language], hit.score, hit.variants)
            return Decision(
                "answer",
                f"article {hit.key} (confidence {confidence:.2f})",
                "",
                language or hit.record.language or None,
                hit,
                confidence,
                tuple(hits),
            )
        if hits:
            best = phrase(N_("best {key} at {confidence}"), key=hits[0].key, confidence=f"{confidence:.2f}")
        else:
            best = phrase(N_("nothing in the library matched"))
        why = phrase(N_("low confidence ({best})"), best=best)
        return Decision("handoff", english(why), "low_confidence", language, None, confidence, tuple(hits), why=why)
