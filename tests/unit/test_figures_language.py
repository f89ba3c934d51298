"""Report figures shown in the reader's language (issue #24): Russian digit groups, decimal
comma, CLDR's percent and duration words; English byte for byte as before; machine-readable
formats (CSV, JSON) unchanged in any language."""

from __future__ import annotations

import json

import pytest

from omniconsole import i18n
from omniconsole.analytics import report as rp
from omniconsole.tui.screens.wallboard import load_share

NBSP = "\xa0"


@pytest.fixture
def russian():
    i18n.set_language("ru")
    try:
        yield
    finally:
        i18n.set_language("en")


def sample() -> dict:
    report = rp.summarise([], rp.Period(None, None), 0.0)
    report.update(
        conversations=12345, resolved=4.5, csat=0.456, nps=-12.0, frt_median_s=245.0, resolution_median_s=2 * 86400 + 4 * 3600
    )
    report["rows"] = [{"key": "telegram", **report}]
    return report


def test_a_report_figure_in_russian(russian):
    assert rp.cell("conversations", 12345) == f"12{NBSP}345"
    assert rp.cell("resolved", 4.5) == "4,5"
    assert rp.cell("csat", 0.456) == f"46{NBSP}%"
    assert rp.cell("nps", 12.0) == "+12" and rp.cell("nps", -12.0) == "-12"
    assert rp.cell("frt_median_s", None) == "-"
    assert rp.human_duration(12) == "12 с"
    assert rp.human_duration(245) == "4 мин 05 с"
    assert rp.human_duration(3 * 3600 + 20 * 60) == "3 ч 20 мин"
    assert rp.human_duration(2 * 86400 + 4 * 3600) == "2 дн 4 ч"
    assert load_share(0.4) == f"40{NBSP}%"


def test_a_report_figure_in_english_is_unchanged():
    assert i18n.current_language() == "en"
    assert rp.cell("conversations", 12345) == "12345"
    assert rp.cell("resolved", 4.5) == "4.5"
    assert rp.cell("csat", 0.456) == "46%"
    assert rp.cell("nps", 12.0) == "+12" and rp.cell("nps", -12.0) == "-12"
    assert [rp.human_duration(s) for s in (12, 245, 3 * 3600 + 20 * 60, 2 * 86400 + 4 * 3600)] == [
        "12s",
        "4m 05s",
        "3h 20m",
        "2d 4h",
    ]
    assert load_share(0.4) == "40%" and load_share(None) == "-"


def test_the_report_table_in_russian_and_english(russian):
    report = sample()
    table = rp.render(report, "table").splitlines()
    assert table[0].split()[:3] == ["открыто", "решено", "FRT"]
    assert table[-1].startswith("итого") and f"12{NBSP}345" in table[-1] and "4,5" in table[-1] and "4 мин 05 с" in table[-1]
    i18n.set_language("en")
    table = rp.render(report, "table").splitlines()
    assert table[0].split()[:3] == ["opened", "resolved", "FRT"]
    assert table[-1].startswith("total") and "12345" in table[-1] and "4m 05s" in table[-1] and "46%" in table[-1]


def test_csv_and_json_stay_machine_readable_in_russian(russian):
    report = sample()
    assert rp.render(report, "csv").splitlines()[0].startswith("key,conversations,resolved,")
    assert "12345" in rp.render(report, "csv").splitlines()[1]
    assert json.loads(rp.render(report, "json"))["conversations"] == 12345


def test_an_sla_notice_in_russian_and_english(russian):
    """The toast of an `sla.escalated` event: the target's words (routing's, marked for the
    catalog), how far and the policy; English as it was."""
    from omniconsole.store.rows import Event
    from omniconsole.tui.sla_alerts import sla_notices

    def event(share) -> Event:
        payload = {"to": ["alice"], "share": share, "target": "first_response", "policy": "vip"}
        return Event(1, 0.0, "sla.escalated", "sla", 7, None, None, json.dumps(payload))

    assert [(str(t), s) for t, s in sla_notices([event(0.8), event(1)], "alice")] == [
        (f"Разговор #7: первый ответ — уже 80{NBSP}% (SLA vip)", "warning"),
        ("Разговор #7: первый ответ — нарушен (SLA vip)", "error"),
    ]
    i18n.set_language("en")
    assert [str(t) for t, _s in sla_notices([event(0.8), event(1)], "alice")] == [
        "Conversation #7: first response at 80% (SLA vip)",
        "Conversation #7: first response breached (SLA vip)",
    ]


def test_the_bot_block_in_russian(russian):
    from omniconsole.store.bot import BotReport
    from omniconsole.tui.widgets.bot_report import report_text

    report = BotReport(
        7,
        "handed_off",
        "ru",
        "delivery",
        "Где мой заказ?",
        (("delivery-late", 0.5, "Курьер"),),
        "low confidence",
        "low_confidence",
        0.25,
        100.0,
    )
    lines = str(report_text(report)).splitlines()
    assert lines[0] == "🤖 Бот передал разговор оператору: low confidence (уверенность 0,25)"
    assert lines[1] == "Вопрос: «Где мой заказ?»"
    assert lines[2] == "Ответил статьёй delivery-late (уверенность 0,50): Курьер"
    assert lines[3] == "язык ru · тема delivery"
    i18n.set_language("en")
    assert str(report_text(report)).splitlines()[0] == "🤖 The bot handed off: low confidence (confidence 0.25)"
