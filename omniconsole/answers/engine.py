"""The answers engine: one in-memory retrieval index over the library that the window's picker,
its suggestions and the bot all use.

Text is folded (case, ё -> е), cut into words and each word reduced to its Snowball stem
(Russian for Cyrillic words, English for the rest; PyStemmer, the C build of the Snowball
algorithms), so доставка / доставку / доставки and delivery / deliveries meet. Articles are
ranked by BM25 over their fields, weighted: shortcode, title, questions, tags, body. A word the
library does not hold, five letters or longer, also matches the library's words one edit away
(one wrong, missing, extra or swapped letter). In the picker the word being typed also matches
as a prefix ("дост" finds доставка).

Language variants of an article (one key, several languages) are one hit: the variant in the
wanted language is shown, the others ride along in `Hit.variants`.

    engine = Engine(await store.kb_articles())
    engine.search("доставку", language="ru", channel="telegram")      # the picker
    engine.suggest(["Курьер не приехал!"], channel="telegram")       # top 3 for a conversation
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import Stemmer

from omniconsole.answers.language import detect_messages
from omniconsole.store.answers import ArticleFigures, ArticleRecord

# Field weights: a word in the title or in an example question says more than one in the body.
FIELD_WEIGHTS = {"shortcode": 6.0, "title": 3.0, "questions": 2.0, "tags": 2.0, "body": 1.0}
K1, B = 1.2, 0.5
TYPO_FACTOR = 0.6  # a word matched one edit away counts this much
PREFIX_FACTOR = 0.8  # the word being typed, matched as a prefix
MIN_TYPO_LENGTH = 5
#: Article tags the bot never sends as an answer: conversational phrases for operators (here, not
#: in bot.py, so the journeys card reads it without compiling the bot's word patterns).
NOT_ANSWERS = frozenset({"greeting", "closing", "thanks", "checking", "wait"})
_WORD = re.compile(r"\w+", re.UNICODE)
_CYRILLIC = re.compile(r"[а-я]")


def fold(text: str) -> str:
    """Case-folded text with ё as е (Russian writers use either)."""
    return text.casefold().replace("ё", "е")


_RU = Stemmer.Stemmer("russian")
_EN = Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The Snowball stem of one folded word: Russian rules for Cyrillic, English otherwise."""
    return _RU.stemWord(word) if _CYRILLIC.search(word) else _EN.stemWord(word)


def words(text: str) -> list[str]:
    """The folded words of a text (letters and digits)."""
    return _WORD.findall(fold(text))


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _one_edit(a: str, b: str) -> bool:
    """Whether a and b differ by one substitution, insertion, deletion or adjacent swap."""
    if a == b:
        return False
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
        )
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


@dataclass(frozen=True, slots=True)
class Hit:
    """One article found: its `key`, the variant to show (`record`), the score, and every
    variant by language ('' = any)."""

    key: str
    record: ArticleRecord
    score: float
    variants: Mapping[str, ArticleRecord] = field(default_factory=dict)


class Engine:
    """A retrieval index over the library's published articles. Build it once from
    `Store.kb_articles()` (a thousand articles take about 0.1 s) and rebuild it when a `kb.*`
    event says the library changed; queries never touch the database."""

    def __init__(
        self,
        records: Iterable[ArticleRecord],
        figures: Mapping[tuple[str, str], ArticleFigures] | None = None,
        *,
        stemmer: Callable[[str], str] = stem,
    ):
        # `stemmer` is for measuring alternatives (bench kb compares pymorphy3); keep the default.
        self.stem = stemmer
        self.records: list[ArticleRecord] = [r for r in records if r.status == "published"]
        self.by_key: dict[str, dict[str, ArticleRecord]] = defaultdict(dict)
        for record in self.records:
            self.by_key[record.key][record.language] = record
        self.by_shortcode: dict[str, str] = {}
        self.postings: dict[str, list[tuple[int, float]]] = {}
        self.lengths: list[float] = []
        self.surface: dict[str, str] = {}  # folded word -> its stem, for typo look-ups
        self.delete_index: dict[str, list[str]] = defaultdict(list)
        self.popularity: list[float] = [1.0] * len(self.records)
        postings: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for doc, record in enumerate(self.records):
            if record.shortcode:
                self.by_shortcode.setdefault(fold(record.shortcode), record.key)
            fields = {
                "shortcode": record.shortcode or "",
                "title": record.title,
                "questions": "\n".join(record.questions),
                "tags": " ".join(record.tags),
                "body": record.body,
            }
            length = 0.0
            for name, text in fields.items():
                weight = FIELD_WEIGHTS[name]
                for word in words(text):
                    s = self.stem(word)
                    postings[s][doc] += weight
                    length += weight
                    if word not in self.surface and len(word) >= MIN_TYPO_LENGTH - 1:
                        self.surface[word] = s
            self.lengths.append(length)
        for word in self.surface:
            if len(word) >= MIN_TYPO_LENGTH - 1:
                for deleted in _deletes(word):
                    self.delete_index[deleted].append(word)
        self.postings = {s: list(docs.items()) for s, docs in postings.items()}
        self.stems = sorted(self.postings)
        self.surface_words = sorted(self.surface)
        self.average_length = (sum(self.lengths) / len(self.lengths)) if self.lengths else 1.0
        n = len(self.records)
        self.idf = {s: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for s, p in self.postings.items()}
        if figures:
            self.set_usage(figures)

    @classmethod
    async def from_store(cls, store) -> Engine:
        """An engine over the store's published library, ranked with its usage figures."""
        return cls(await store.kb_articles(), await store.kb_figures())

    def set_usage(self, figures: Mapping[tuple[str, str], ArticleFigures]) -> None:
        """Let how often operators used an article nudge its rank (at most about +25%)."""
        for doc, record in enumerate(self.records):
            f = figures.get((record.key, record.language))
            self.popularity[doc] = 1.0 + (0.05 * math.log1p(f.used) if f else 0.0)

    # --- matching ------------------------------------------------------------------------

    def _expand(self, word: str, *, prefix: bool) -> list[tuple[str, float]]:
        """The index stems a query word stands for, each with how much a match counts."""
        s = self.stem(word)
        found: dict[str, float] = {}
        if s in self.postings:
            found[s] = 1.0
        if prefix and len(word) >= 2:
            start = bisect_left(self.stems, word)
            for candidate in self.stems[start : start + 40]:
                if not candidate.startswith(word):
                    break
                found.setdefault(candidate, PREFIX_FACTOR)
            # A stem can be shorter than what was typed ("fitt" -> fitting -> "fit"): the
            # library's own words are tried as prefixes too.
            start = bisect_left(self.surface_words, word)
            for candidate in self.surface_words[start : start + 40]:
                if not candidate.startswith(word):
                    break
                found.setdefault(self.surface[candidate], PREFIX_FACTOR)
        if not found and len(word) >= MIN_TYPO_LENGTH:
            candidates = set(self.delete_index.get(word, ()))
            for deleted in _deletes(word):
                if deleted in self.surface:
                    candidates.add(deleted)
                candidates.update(self.delete_index.get(deleted, ()))
            for candidate in candidates:
                if _one_edit(word, candidate):
                    found.setdefault(self.surface[candidate], TYPO_FACTOR)
        return list(found.items())

    def _score(self, query: Mapping[str, float], *, prefix_word: str | None = None) -> dict[int, float]:
        scores: dict[int, float] = defaultdict(float)
        average = self.average_length
        for word, weight in query.items():
            for s, factor in self._expand(word, prefix=word == prefix_word):
                idf = self.idf[s] * weight * factor
                for doc, tf in self.postings[s]:
                    norm = K1 * (1 - B + B * self.lengths[doc] / average)
                    scores[doc] += idf * tf * (K1 + 1) / (tf + norm)
        return scores

    def _hits(
        self,
        scores: Mapping[int, float],
        *,
        language: str | None,
        channel: str | None,
        include_internal: bool,
        kinds: Iterable[str] | None,
        limit: int,
        min_score: float = 0.0,
    ) -> list[Hit]:
        best: dict[str, float] = {}
        for doc, score in scores.items():
            record = self.records[doc]
            if not include_internal and record.internal:
                continue
            if channel and record.channels and channel not in record.channels:
                continue
            if kinds is not None and record.kind not in kinds:
                continue
            score *= self.popularity[doc]
            if language and record.language == language:
                score *= 1.15
            if score > best.get(record.key, 0.0):
                best[record.key] = score
        ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
        return [
            Hit(key, self.variant(key, language), score, self.by_key[key]) for key, score in ranked[:limit] if score >= min_score
        ]

    def variant(self, key: str, language: str | None) -> ArticleRecord:
        """The variant of an article to show for a language: that language, else the
        any-language one, else the first there is."""
        variants = self.by_key[key]
        if language and language in variants:
            return variants[language]
        if "" in variants:
            return variants[""]
        return next(iter(variants.values()))

    # --- what callers ask -----------------------------------------------------------------

    def search(
        self,
        text: str,
        *,
        language: str | None = None,
        channel: str | None = None,
        limit: int = 10,
        include_internal: bool = True,
        kinds: Iterable[str] | None = None,
    ) -> list[Hit]:
        """The picker: articles for what the operator typed, best first. `/code` or a bare word
        equal to a shortcode puts that article first; the last word also matches as a prefix
        (it is still being typed). `language` prefers that variant; `channel` (a channel kind)
        leaves out articles restricted to other channels."""
        text = text.strip()
        query_words = words(text.lstrip("/"))
        if not query_words:
            return []
        query = {word: 1.0 for word in query_words}
        scores = self._score(query, prefix_word=query_words[-1])
        first = self.by_shortcode.get(fold(text.lstrip("/")))
        hits = self._hits(
            scores, language=language, channel=channel, include_internal=include_internal, kinds=kinds, limit=limit + 1
        )
        if first is not None:
            top = max((h.score for h in hits), default=1.0)
            hits = [Hit(first, self.variant(first, language), top + 1.0, self.by_key[first])] + [
                h for h in hits if h.key != first
            ]
        return hits[:limit]

    def suggest(
        self,
        messages: list[str],
        *,
        language: str | None = None,
        channel: str | None = None,
        limit: int = 3,
        include_internal: bool = True,
        min_score: float = 1.0,
    ) -> list[Hit]:
        """Agent assist (and the bot's retrieval): the top articles for a customer's latest
        messages (oldest first; the newest counts most), each in the customer's language
        (`language`, else detected from the messages). Articles scoring under `min_score` are
        left out, so a "thanks" or an emoji suggests nothing rather than noise."""
        if language is None:
            language = detect_messages(messages[-3:])
        query: dict[str, float] = defaultdict(float)
        weight = 1.0
        for message in reversed(messages[-3:]):
            for word in words(message):
                query[word] = max(query[word], weight)
            weight /= 2
        if not query:
            return []
        scores = self._score(query)
        return self._hits(
            scores,
            language=language,
            channel=channel,
            include_internal=include_internal,
            kinds=None,
            limit=limit,
            min_score=min_score,
        )
