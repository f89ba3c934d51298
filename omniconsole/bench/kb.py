"""`omniconsole bench kb`: the answers engine against its budgets (DESIGN.md: picker query
<= 10 ms p95, suggestions for a conversation <= 20 ms p95, with 1,000 articles), the stemmers
compared on the demo library's query table, and what the same stemming would cost the message
search's ingest.

    omniconsole bench kb [--articles 1000] [--queries 500] [--json]

The library is generated (seeded): the demo shop's articles plus articles whose titles,
example questions and bodies draw on the demo's Russian and English vocabulary and a long
tail of rare words, so picker queries hit many articles as real ones do. Picker queries are
1-3 words with the last one cut short (as typed) and one in eight with a wrong letter;
conversations are 1-3 customer messages whose language is detected as in the window.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from omniconsole.answers import engine as engine_module
from omniconsole.answers.engine import Engine, stem, words
from omniconsole.answers.language import warm_up
from omniconsole.answers.library import DEMO_LIBRARY, read_folder
from omniconsole.answers.query_table import QUERY_TABLE
from omniconsole.store.answers import ArticleRecord


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def generate_library(count: int, seed: int = 3) -> list[ArticleRecord]:
    """`count` articles: the demo library, then generated ones in both languages."""
    rng = random.Random(seed)
    demo = read_folder(DEMO_LIBRARY).records
    vocabulary = {"ru": [], "en": []}
    for record in demo:
        text = " ".join([record.title, *record.questions, record.body])
        vocabulary[record.language or "en"].extend(w for w in words(text) if len(w) > 2 and not w.isdigit())
    for language, alphabet in (("ru", "абвгдежзиклмнопрстуфхцчшщэюя"), ("en", "abcdefghijklmnopqrstuvwxyz")):
        vocabulary[language].extend("".join(rng.choice(alphabet) for _ in range(rng.randint(5, 10))) for _ in range(3000))
    records = list(demo)
    number = 0
    while len(records) < count:
        number += 1
        language = "ru" if number % 3 else "en"
        pool = vocabulary[language]

        def phrase(low: int, high: int) -> str:
            return " ".join(rng.choice(pool) for _ in range(rng.randint(low, high)))  # noqa: B023

        records.append(
            ArticleRecord(
                key=f"generated-{number}",
                title=phrase(2, 6),
                body=phrase(40, 160),
                language=language,
                kind=rng.choice(("answer", "answer", "article")),
                shortcode=f"g{number}" if number % 4 == 0 else None,
                tags=tuple(phrase(1, 1) for _ in range(rng.randint(0, 3))),
                questions=tuple(phrase(3, 9) for _ in range(rng.randint(0, 4))),
            )
        )
    return records[:count]


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def picker_queries(records: list[ArticleRecord], count: int, seed: int = 5) -> list[str]:
    """What operators type after `/`: 1-3 words of an article, the last cut short."""
    rng = random.Random(seed)
    queries = []
    for _ in range(count):
        record = rng.choice(records)
        pool = words(" ".join([record.title, *record.questions, record.body])) or ["x"]
        chosen = [rng.choice(pool) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.125:
            chosen[0] = _typo(rng, chosen[0])
        last = chosen[-1]
        chosen[-1] = last[: max(2, rng.randint(len(last) // 2, len(last)))]
        queries.append(" ".join(chosen))
    return queries


def conversations(records: list[ArticleRecord], count: int, seed: int = 9) -> list[list[str]]:
    """A customer's latest 1-3 messages, worded from the library's own vocabulary."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        record = rng.choice(records)
        pool = words(" ".join([record.title, *record.questions, record.body])) or ["x"]
        out.append([" ".join(rng.choice(pool) for _ in range(rng.randint(6, 25))) for _ in range(rng.randint(1, 3))])
    return out


def stemmer_table() -> list[dict]:
    """Each available stemmer on the query table: found first (of all rows) and µs per word."""
    records = read_folder(DEMO_LIBRARY).records
    sample = [w for r in records for w in words(" ".join([r.title, *r.questions, r.body]))] * 20
    candidates: list[tuple[str, object]] = [("PyStemmer (Snowball, C)", stem)]
    try:
        # The pure-Python classes themselves: `snowballstemmer.stemmer()` hands out PyStemmer's
        # when that is installed, which would measure the same C code twice.
        from snowballstemmer.english_stemmer import EnglishStemmer
        from snowballstemmer.russian_stemmer import RussianStemmer

        ru, en = RussianStemmer(), EnglishStemmer()
        candidates.append(
            (
                "snowballstemmer (Snowball, pure Python)",
                lru_cache(maxsize=200_000)(lambda w: ru.stemWord(w) if engine_module._CYRILLIC.search(w) else en.stemWord(w)),
            )
        )
    except ImportError:
        pass
    try:
        import pymorphy3

        morph = pymorphy3.MorphAnalyzer()
        candidates.append(
            (
                "pymorphy3 lemmas (Russian) + Snowball (English)",
                lru_cache(maxsize=200_000)(
                    lambda w: morph.parse(w)[0].normal_form if engine_module._CYRILLIC.search(w) else stem(w)
                ),
            )
        )
    except ImportError:
        pass
    rows = []
    for name, function in candidates:
        engine = Engine(records, stemmer=function)
        first = sum(1 for q, language, key in QUERY_TABLE if (h := engine.search(q, language=language)) and h[0].key == key)
        uncached = getattr(function, "__wrapped__", function)
        started = time.perf_counter()
        for word in sample:
            uncached(word)
        per_word = (time.perf_counter() - started) / len(sample) * 1e6
        rows.append(
            {"stemmer": name, "found_first": first, "queries": len(QUERY_TABLE), "us_per_word_uncached": round(per_word, 2)}
        )
    return rows


def ingest_cost(messages: int) -> dict:
    """What folding and stemming every inbound message (as the library's index does) would
    add to ingest: µs per message on the ingest benchmark's own synthetic bodies, and the
    ingest rate measured here with it added."""
    import asyncio

    from omniconsole.bench import SyntheticTraffic, ingest_benchmark

    traffic = SyntheticTraffic(messages)
    bodies = [m.body for chunk, _ in traffic.batches(1000) for m in chunk]
    stem.cache_clear()
    started = time.perf_counter()
    for body in bodies:
        " ".join(stem(w) for w in words(body))
    per_message = (time.perf_counter() - started) / len(bodies)
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(ingest_benchmark(messages, 1000, Path(tmp) / "ingest.db"))
    rate = figures["ingest_msgs_per_s"]
    return {
        "ingest_messages": messages,
        "stem_us_per_message": round(per_message * 1e6, 2),
        "ingest_msgs_per_s": rate,
        "ingest_with_stemming_msgs_per_s": round(1 / (1 / rate + per_message)),
        "stemming_share_of_ingest": round(per_message * rate, 3),
    }


def run(articles: int, queries: int, rounds: int, ingest_messages: int) -> dict:
    records = generate_library(articles)
    started = time.perf_counter()
    engine = Engine(records)
    build = time.perf_counter() - started
    warm_up()  # the language model loads once per process, before the first suggestion
    picker = []
    for text in picker_queries(records, queries):
        started = time.perf_counter()
        engine.search(text, language="ru", channel="telegram")
        picker.append(time.perf_counter() - started)
    suggest = []
    for messages in conversations(records, rounds):
        started = time.perf_counter()
        engine.suggest(messages, channel="telegram")
        suggest.append(time.perf_counter() - started)
    figures = {
        "articles": len(records),
        "build_ms": round(build * 1000, 1),
        "picker_p50_ms": round(statistics.median(picker) * 1000, 3),
        "picker_p95_ms": round(_p(picker, 0.95), 3),
        "suggest_p50_ms": round(statistics.median(suggest) * 1000, 3),
        "suggest_p95_ms": round(_p(suggest, 0.95), 3),
        "stemmers": stemmer_table(),
    }
    if ingest_messages:
        figures.update(ingest_cost(ingest_messages))
    return figures


def main(args: argparse.Namespace) -> int:
    figures = run(args.articles, args.queries, args.rounds, args.ingest_messages)
    print(f"library: {figures['articles']} articles, index built in {figures['build_ms']} ms")
    print(
        f"picker query:            p50 {figures['picker_p50_ms']:.2f} ms  p95 {figures['picker_p95_ms']:.2f} ms  (budget p95 <= 10 ms)"
    )
    print(
        f"suggestions (3 for a conversation): p50 {figures['suggest_p50_ms']:.2f} ms  p95 {figures['suggest_p95_ms']:.2f} ms  (budget p95 <= 20 ms)"
    )
    print("stemmers on the query table (found first / queries, µs per word without cache):")
    for row in figures["stemmers"]:
        print(f"  {row['stemmer']:<48} {row['found_first']}/{row['queries']}  {row['us_per_word_uncached']} µs")
    if "stem_us_per_message" in figures:
        print(
            f"message search with the same stemming: +{figures['stem_us_per_message']} µs per message;"
            f" ingest {figures['ingest_msgs_per_s']:,}/s -> {figures['ingest_with_stemming_msgs_per_s']:,}/s"
            f" on {figures['ingest_messages']:,} messages (floor: 10,000/s at 1M)"
        )
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    return 0
