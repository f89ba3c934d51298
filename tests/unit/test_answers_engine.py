"""The answers engine on the demo shop's library: Russian and English word forms, ё, typos,
prefixes, shortcodes; variants by language; suggestions for what the demo customers write;
language detection; rendering per channel."""

from __future__ import annotations

import pytest

from connectors import demo as demo_channel
from connectors.text import split_text
from omniconsole.answers.engine import Engine
from omniconsole.answers.language import detect, detect_messages
from omniconsole.answers.library import DEMO_LIBRARY, read_folder
from omniconsole.answers.query_table import QUERY_TABLE
from omniconsole.answers.render import render, to_plain, to_telegram_html
from omniconsole.store.answers import ArticleRecord
from tests.conftest import HOSTILE_TEXTS


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(read_folder(DEMO_LIBRARY).records)


@pytest.mark.parametrize(("query", "language", "expected"), QUERY_TABLE, ids=[q for q, _, _ in QUERY_TABLE])
def test_query_finds_its_article_first(engine, query, language, expected):
    hits = engine.search(query, language=language)
    assert hits and hits[0].key == expected, [(h.key, round(h.score, 2)) for h in hits[:3]]


def test_word_forms_meet(engine):
    firsts = {engine.search(q, language="ru")[0].key for q in ("доставка", "доставку", "доставки", "доставкой")}
    assert len(firsts) == 1
    assert engine.search("xyzzy qwerty") == [] and engine.search("  ") == []


def test_variant_in_the_wanted_language_with_the_other_one_key_away(engine):
    hit = engine.search("/late", language="en")[0]
    assert hit.record.language == "en" and hit.record.title == "The courier did not come"
    assert set(hit.variants) == {"ru", "en"} and hit.variants["ru"].title == "Курьер не приехал"
    assert engine.search("/late", language="ru")[0].record.language == "ru"


def test_channels_and_internal_articles_are_respected():
    records = [
        ArticleRecord(key="tg-only", title="Refund via bot", body="refund", channels=("telegram",)),
        ArticleRecord(key="internal", title="Refund checklist", body="refund", internal=True),
        ArticleRecord(key="proposal", title="Refund", body="refund", status="proposed"),
    ]
    engine = Engine(records)
    assert {h.key for h in engine.search("refund", channel="email")} == {"internal"}
    assert {h.key for h in engine.search("refund", channel="telegram", include_internal=False)} == {"tg-only"}


def test_usage_nudges_the_rank():
    from omniconsole.store.answers import ArticleFigures

    records = [ArticleRecord(key="a", title="Refund", language="en"), ArticleRecord(key="b", title="Refund", language="en")]
    assert Engine(records).search("refund")[0].key == "a"  # a tie goes by key
    assert Engine(records, {("b", "en"): ArticleFigures(used=40)}).search("refund")[0].key == "b"


# Every topic the demo customers write about (connectors/demo.py) has an answer in the library.
_TOPIC_TAGS = {
    "orders": "orders",
    "delivery": "delivery",
    "refunds": "refunds",
    "account": "account",
    "cards": "cards",
    "appointments": "appointments",
}


@pytest.mark.parametrize("language", ["ru", "en"])
def test_suggestions_cover_every_line_the_demo_customers_write(engine, language):
    for topic, _, lines in demo_channel._DIALOGUES[language]:
        for line in lines:
            text = line.format(n="4711", d="12", c="1234")
            hits = engine.suggest([text])
            if not hits:
                # Only small talk may go without a suggestion.
                assert any(w in text.lower() for w in ("спасибо", "хорошо", "отлично", "thanks", "thank", "fine", "great")), text
                continue
            assert len(hits) <= 3
            assert all(h.record.language == language for h in hits), text
            if line == lines[0]:  # the opening line of a dialogue names its topic: that comes first
                assert _TOPIC_TAGS[topic] in hits[0].record.tags, (text, [h.key for h in hits])
            tags = {t for h in hits for t in h.record.tags}
            assert _TOPIC_TAGS[topic] in tags or {"closing", "thanks", "checking", "greeting"} & tags, (
                text,
                [h.key for h in hits],
            )


def test_suggestions_weigh_the_newest_message_and_ignore_noise(engine):
    hits = engine.suggest(["Где мой заказ?", "Списали деньги дважды с карты!"])
    assert hits[0].key == "double-charge"
    assert engine.suggest(["👍"]) == [] and engine.suggest([]) == []


def test_language_detection_offline():
    assert detect("Где мой заказ? Оплатил неделю назад.") == "ru"
    assert detect("Where is my order? I paid a week ago.") == "en"
    assert detect("ok") is None and detect("👍👍") is None and detect("4711") is None
    assert detect_messages(["Здравствуйте!", "ok"]) == "ru"


# --- rendering per channel ---------------------------------------------------------------------

ARTICLE = "## Доставка\n\n- По Москве: **бесплатно** от 3000 ₽.\n- Подробнее: [условия](https://shop.example/delivery)\n\n1. Раз\n2. Два `<b>` & _курсив_\n"


def test_telegram_gets_its_formatting_and_plain_text_keeps_links():
    rendered = render(ARTICLE, "telegram")
    assert "<b>Доставка</b>" in rendered.meta["formatted"]
    assert '<a href="https://shop.example/delivery">условия</a>' in rendered.meta["formatted"]
    assert "<code>&lt;b&gt;</code> &amp; <i>курсив</i>" in rendered.meta["formatted"]
    assert rendered.meta["parse_mode"] == "HTML"
    assert "условия (https://shop.example/delivery)" in rendered.text and "**" not in rendered.text
    assert "• По Москве: бесплатно от 3000 ₽." in rendered.text and "2. Два <b> & курсив" in rendered.text


def test_email_gets_html_and_text_and_raw_html_is_escaped():
    rendered = render("Hi <script>alert(1)</script> **you**", "email")
    assert "<strong>you</strong>" in rendered.meta["html"] and "<script>" not in rendered.meta["html"]
    assert rendered.text == "Hi <script>alert(1)</script> you"


def test_plain_channels_and_whatsapp():
    assert render(ARTICLE, "vk").text == render(ARTICLE, "phone").text == to_plain(ARTICLE)
    assert render(ARTICLE, "vk").meta == {}
    assert "*бесплатно*" in render(ARTICLE, "whatsapp").text


@pytest.mark.parametrize("hostile", HOSTILE_TEXTS)
def test_hostile_article_text_stays_text_in_telegram_html(hostile):
    html = to_telegram_html(f"**{hostile}** [x]({hostile or 'https://a'})")
    assert "<script" not in html and html.count("<b>") <= 1
    assert "\x1b" not in html or "\x1b" in hostile  # text is escaped for HTML, not altered otherwise


def test_a_long_answer_is_cut_by_the_channels_own_splitting():
    long = "\n\n".join(f"Абзац {i}: " + "доставка " * 60 for i in range(40))
    text = render(long, "telegram").text
    parts = split_text(text, 4096)
    assert len(parts) > 1 and all(len(p) <= 4096 for p in parts)
    assert "".join(parts).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")


@pytest.mark.parametrize(
    "module",
    [
        "omniconsole.answers.engine",
        "omniconsole.answers.library",
        "omniconsole.answers.render",
        "omniconsole.answers.commands",
        "omniconsole.store.answers",
    ],
)
def test_the_answers_package_imports_neither_the_window_nor_a_connector(module):
    import subprocess
    import sys

    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        "bad = [m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'omniconsole.tui', 'connectors'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_was_edited():
    from omniconsole.answers.usage import was_edited

    answer = "Возврат оформлен, деньги придут за 3–5 рабочих дней.\nСрок зависит от банка."
    assert not was_edited([answer], "Иван, добрый день!\n\n" + answer.replace("\n", " ") + "\nАнна")
    assert was_edited([answer], answer.replace("3–5", "5–7"))
    assert was_edited(["Hello!", answer], "Hello! and more")


def test_the_windows_language_by_alphabet():
    from omniconsole.answers.language import detect_by_script

    assert detect_by_script(["Где мой заказ?"]) == "ru"
    assert detect_by_script(["Где мой заказ?", "My card was charged twice"]) == "en"  # the newest that tells
    assert detect_by_script(["Заказ 4711 не пришёл", "👍", "ok"]) == "ru"  # too few letters: the one before
    assert detect_by_script(["Заказ order №4711 ещё не пришёл"]) == "ru"
    assert detect_by_script(["👍", "12345"]) is None and detect_by_script([]) is None
