"""Journeys at work: topic detection with the answers engine, the journeys report (table, CSV,
JSON), one customer's journey, and channel advice for an open conversation
(figures in omniconsole/analytics/journeys.py)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import time
from dataclasses import dataclass

from omniconsole.analytics import journeys as j
from omniconsole.analytics.report import human_duration, spreadsheet_safe
from omniconsole.core.scheduler import CoreExtension
from omniconsole.i18n import Np_, _, pgettext
from omniconsole.store.actions import ActionError

log = logging.getLogger(__name__)

#: How often the core computes the outcome table again, and how long a window reuses the one it
#: read before reading the saved one again (seconds).
TABLE_TTL = 600.0


def detected_topic(engine, texts: list[str]) -> str:
    """The library tag the engine's best article for these customer messages carries ('' : none)."""
    for hit in engine.suggest(texts, limit=3):
        tags = [t for t in hit.record.tags if t not in j.NOT_TOPICS]
        if tags:
            return tags[0]
    return ""


async def detect_topics(store, engine=None, batch: int = 2000) -> int:
    """Detect and record the topic of every conversation not looked at yet; returns how many
    were looked at. Without the right to record (an operator's window in a team setup) nothing
    is recorded and 0 is returned: the figures then use what the core recorded."""
    done = 0
    while True:
        try:
            pending = await store.undetected_topics(batch)
        except ActionError:  # an agent's window in a team setup: the figures use what is recorded
            return done
        if not pending:
            return done
        if engine is None:
            from omniconsole.answers.engine import Engine

            engine = await Engine.from_store(store)
        topics = [(cid, detected_topic(engine, texts) if texts else "") for cid, texts in pending]
        try:
            await store.set_topics(topics)
        except ActionError:
            return done
        done += len(topics)


def default_calendar(settings):
    """The default business calendar of `[[calendars]]` (open around the clock without one)."""
    routing = getattr(settings, "routing", None)
    if routing is not None and getattr(routing, "calendars", None):
        return routing.calendars.get("default")
    from omniconsole.calendar import Calendar

    return Calendar()


def journey_settings(settings) -> j.JourneySettings:
    return getattr(settings, "journeys", None) or j.JourneySettings()


async def journey_data(
    store,
    config: j.JourneySettings,
    now: float,
    calendar=None,
    *,
    detect: bool = True,
    period: tuple[float | None, float | None] = (None, None),
) -> j.JourneyData:
    """Every issue's journey and the outcome table, from the raw history; open issues that stand
    alone are counted only when they began in `period` (epoch seconds, None: open)."""
    if detect:
        await detect_topics(store)
    rows, bulk, tags, kinds = await store.journey_rows(period)
    candidates = j.repeat_candidates(rows)
    texts = await store.journey_texts(candidates) if candidates else []

    def compute() -> j.JourneyData:
        repeated = j.repeated_by_customer(texts, rows, config.similarity)
        issues = j.build_issues(rows, tags, now, calendar=calendar, repeated=repeated, bulk=bulk)
        return j.JourneyData(issues, j.outcome_table(issues, config.prior_issues), kinds)

    # Seconds of pure Python over a big history: in a thread, so the window's event loop (which
    # reads the outcome table for its advice) keeps answering keys meanwhile.
    return await asyncio.to_thread(compute)


@dataclass(slots=True)
class CustomerJourney:
    """One customer's issues (oldest first) and the channel kinds they can be reached on."""

    issues: list[j.Issue]
    reachable: set[str]


async def customer_journey(store, customer_id: int, now: float, config: j.JourneySettings, calendar=None) -> CustomerJourney:
    """The journey of a customer across every customer merged into them."""
    rows, texts, tags, kinds = await store.customer_journey(customer_id)
    repeated = j.repeated_by_customer(texts, rows, config.similarity)
    return CustomerJourney(j.build_issues(rows, tags, now, calendar=calendar, repeated=repeated), j.reachable_kinds(kinds))


def settings_key(config: j.JourneySettings) -> str:
    """The `[journeys]` settings an outcome table depends on, as a JSON text key (`min_n`,
    `margin` and `holdout` only weigh advice, so the same table serves any of them)."""
    return json.dumps({"prior_issues": config.prior_issues, "similarity": config.similarity}, sort_keys=True)


async def save_outcome_table(store, settings, now: float | None = None) -> int:
    """Compute the outcome table from the raw history (`journey_data`, no topic detection) and
    save it with `now` (epoch seconds) and the settings' key; returns how many cells were saved.
    The core's work (`Store.save_journey_outcomes` is refused over the socket)."""
    now = time.time() if now is None else now
    config = journey_settings(settings)
    data = await journey_data(store, config, now, default_calendar(settings), detect=False)
    return await store.save_journey_outcomes(now, settings_key(config), [cell.to_json() for cell in data.table.values()])


def outcome_table_extension(settings, every: float = TABLE_TTL, clock=time.time) -> CoreExtension:
    """The core's background task that saves the outcome table at start and then every `every`
    seconds, so windows read it (`OutcomeTable`) instead of the whole history each. A failed
    round is logged and the next one tried; cancellation ends it at once (the thread of a
    round in progress finishes its computation, its result unused)."""

    async def background(store, scheduler) -> None:
        # Imported here: only the core runs this, and a window imports no connector package.
        from connectors.base import raise_if_cancelled

        # A table saved less than `every` ago with these settings (the core restarted, or a
        # window that runs the core opened) is not computed again at once: the first round
        # waits for it to age, so a window's start does not share its CPU with the history walk.
        try:
            saved_at, key, _cells = await store.journey_outcomes()
        except Exception:
            saved_at, key = None, ""
        if saved_at is not None and key == settings_key(journey_settings(settings)):
            await asyncio.sleep(max(0.0, min(every, saved_at + every - clock())))
        while True:
            raise_if_cancelled()
            try:
                cells = await save_outcome_table(store, settings, clock())
                log.info("journeys outcome table saved: %d cells", cells)
            except Exception:
                log.exception("computing the journeys outcome table failed; trying again in %.0f s", every)
            raise_if_cancelled()
            await asyncio.sleep(every)

    return CoreExtension("journeys outcome table", background=background)


class OutcomeTable:
    """The outcome table a window advises from, read again after `TABLE_TTL` seconds.

    It is the table the core saved (`outcome_table_extension`), read through the store: cheap,
    and over the core's socket in a team setup. Only when no core has saved one yet (or saved it
    with other `[journeys]` settings) and the store is this process's own database is it
    computed here from the raw history, in a thread as before; a window on a `RemoteStore`
    never pulls the journey rows and has no advice until the core saved a table (it looks again
    after `MISSING_RETRY` seconds). A saved table older than `2 * TABLE_TTL` is still used
    (better than none), with a log line."""

    #: Seconds before a window without a saved table (team setup) looks for one again.
    MISSING_RETRY = 60.0

    def __init__(self, store, config: j.JourneySettings, calendar=None, clock=time.time):
        self.store, self.config, self.calendar, self.clock = store, config, calendar, clock
        self.table: dict | None = None
        self.read_at = 0.0
        self.ttl = TABLE_TTL

    async def get(self) -> dict:
        now = self.clock()
        if self.table is None or now - self.read_at > self.ttl:
            self.ttl = TABLE_TTL
            self.table, self.read_at = await self._read(now), now
        return self.table

    async def _read(self, now: float) -> dict:
        remote = getattr(self.store, "remote", False)
        computed_at, key, cells = await self.store.journey_outcomes()
        same = key == settings_key(self.config)
        if computed_at is not None and (same or remote):
            if now - computed_at > 2 * TABLE_TTL:
                log.info("the saved journeys outcome table is %.0f s old (is the core running?)", now - computed_at)
            if not same:
                log.info("the saved journeys outcome table was computed with other [journeys] settings: %s", key)
            table = {}
            for data in cells:
                try:
                    cell = j.Cell.from_json(data)
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("a saved journeys outcome cell is unreadable (%s): %r", exc, data)
                    continue
                table[(cell.topic, cell.channel)] = cell
            return table
        if remote:
            self.ttl = self.MISSING_RETRY
            return {}
        data = await journey_data(self.store, self.config, now, self.calendar, detect=False)
        return data.table


def advice_for(journey: CustomerJourney, conversation_id: int, table: dict, config: j.JourneySettings) -> j.Advice | None:
    """Advice for an open conversation: its topic, the channel of its latest contact, the
    customer's other channels; None for the holdout, a resolved one, or no clear better channel."""
    if j.in_holdout(conversation_id, config.holdout):
        return None
    issue = next((i for i in journey.issues if i.row.conversation_id == conversation_id), None)
    if issue is None or issue.row.status == "resolved" or not issue.channels:
        return None
    return j.advise(table, issue.topic, issue.channels[-1], journey.reachable, config)


#: What the bot says when it offers a better channel (`[journeys] bot_offer`), by language.
OFFER_TEXTS = {
    "ru": "Кстати, такие вопросы быстрее всего решаются {channel}: так обычно хватает одного обращения.",
    "en": "By the way, requests like this are usually settled in one contact {channel}.",
}
OFFER_CHANNELS_RU = {
    "phone": "по телефону",
    "sms": "по SMS",
    "email": "по почте",
    "telegram": "в Telegram",
    "whatsapp": "в WhatsApp",
    "vk": "во ВКонтакте",
    "web": "в чате на сайте",
}


class ChannelOffer:
    """The bot's offer of the channel that serves a conversation's topic much better (the same
    advice the operator's window shows; none for the holdout or without a clear winner)."""

    def __init__(self, store, settings=None, clock=time.time):
        self.store = store
        self.config = journey_settings(settings)
        self.calendar = default_calendar(settings)
        self.clock = clock
        self.table = OutcomeTable(store, self.config, self.calendar, clock)

    async def words(self, conversation_id: int, customer_id: int, language: str | None) -> str:
        """One sentence for the customer in their language ('' : nothing to offer)."""
        journey = await customer_journey(self.store, customer_id, self.clock(), self.config, self.calendar)
        advice = advice_for(journey, conversation_id, await self.table.get(), self.config)
        if advice is None:
            return ""
        kind = advice.better.channel
        if language == "ru":
            return OFFER_TEXTS["ru"].format(channel=OFFER_CHANNELS_RU.get(kind, kind))
        return OFFER_TEXTS["en"].format(channel=j.channel_words(kind))


def channel_offer(settings, store):
    """A `ChannelOffer` when `[journeys] bot_offer` is on, else None."""
    return ChannelOffer(store, settings) if journey_settings(settings).bot_offer else None


# --- words ---------------------------------------------------------------------------------


def outcome_words(issue: j.Issue) -> str:
    """An issue's outcome in a few words, in the operator's language (omniconsole/i18n.py)."""
    if not issue.resolved:
        return _("open") if issue.row.status in ("open", "pending") else issue.row.status
    took = human_duration(issue.ttr_s)
    back = issue.next_contact_at is not None and issue.next_contact_at - issue.row.resolved_at <= j.RECONTACT_WINDOW
    if back:
        return _("resolved in {took}, came back within 7 days").format(took=took)
    return _("resolved in {took}").format(took=took) + (
        ", " + _("no contact for 7 days") if issue.repeat_contact is False else ""
    )


def path_words(channels: tuple[str, ...] | list[str]) -> str:
    return " → ".join(channels) if channels else "-"


def _percent(x) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def render(report: dict, fmt: str) -> str:
    """The journeys report as `json` (one object), `csv` (one section per table, each with its
    header) or `table` (for people)."""
    if fmt == "json":
        return json.dumps(report, ensure_ascii=False)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        figure_keys = [k for k in report if not isinstance(report[k], (list, dict))]
        writer.writerow(["section", "key", *figure_keys])
        writer.writerow(["total", "", *["" if report[k] is None else report[k] for k in figure_keys]])
        for section in ("by_topic", "by_channel"):
            for row in report[section]:
                writer.writerow(
                    [section, spreadsheet_safe(row["key"]), *["" if row.get(k) is None else row.get(k) for k in figure_keys]]
                )
        writer.writerow([])
        writer.writerow(["transition_from", "transition_to", "switches"])
        for t in report["transitions"]:
            writer.writerow([t["from"], t["to"], t["switches"]])
        writer.writerow([])
        cols = [
            "topic",
            "channel",
            "n",
            "rate",
            "rate_shrunk",
            "rate_interval",
            "ttr_business_median_s",
            "csat",
            "csat_n",
            "operator_minutes",
        ]
        writer.writerow(cols)
        for c in report["outcomes"]:
            writer.writerow(
                ["" if c[k] is None else (" ".join(map(str, c[k])) if isinstance(c[k], list) else c[k]) for k in cols]
            )
        return buffer.getvalue().rstrip("\n")
    return "\n".join(table_lines(report))


def _columns(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    out += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    return out


#: The figures' column heads (English; translated where the table is written).
FIGURE_COLUMNS = [
    Np_("journeys column", "issues"),
    Np_("journeys column", "resolved"),
    Np_("journeys column", "FCR"),
    Np_("journeys column", "repeat 7d"),
    Np_("journeys column", "switched"),
    Np_("journeys column", "repeated"),
    Np_("journeys column", "TTR median"),
    Np_("journeys column", "TTR business"),
]


def figure_cells(row: dict) -> list[str]:
    return [
        str(row["issues"]),
        str(row["resolved"]),
        _percent(row["fcr"]),
        _percent(row["repeat_contact_rate"]),
        _percent(row["switch_rate"]),
        _percent(row["repeated_themselves_rate"]),
        human_duration(row["ttr_median_s"]),
        human_duration(row["ttr_median_s_business"]),
    ]


def table_lines(report: dict) -> list[str]:
    """The report for people, in the reader's language: totals by topic and by channel,
    transitions, paths, outcomes (topics and channel kinds are data and stay as they are)."""
    lines: list[str] = []
    figures = [pgettext("journeys column", c) for c in FIGURE_COLUMNS]
    rows = [[str(r["key"]), *figure_cells(r)] for r in report["by_topic"]] + [[_("total"), *figure_cells(report)]]
    lines += [_("By topic"), *_columns([pgettext("journeys column", "topic"), *figures], rows), ""]
    rows = [[str(r["key"]), *figure_cells(r)] for r in report["by_channel"]]
    lines += [_("By channel of first contact"), *_columns([pgettext("journeys column", "channel"), *figures], rows), ""]
    rows = [[t["from"], t["to"], str(t["switches"])] for t in report["transitions"]] or [["-", "-", "0"]]
    lines += [
        _("Channel switches"),
        *_columns(
            [pgettext("journeys column", "from"), pgettext("journeys column", "to"), pgettext("journeys column", "switches")],
            rows,
        ),
        "",
    ]
    rows = [
        [path_words(p["path"]), str(p["issues"]), _percent(p["fcr"]), human_duration(p["ttr_median_s"])] for p in report["paths"]
    ]
    heads = [
        pgettext("journeys column", "path"),
        pgettext("journeys column", "issues"),
        pgettext("journeys column", "FCR"),
        pgettext("journeys column", "TTR median"),
    ]
    lines += [_("Most common paths"), *_columns(heads, rows or [["-", "0", "-", "-"]]), ""]
    rows = [
        [
            c["topic"],
            c["channel"],
            str(c["n"]),
            _percent(c["rate"]),
            _percent(c["rate_shrunk"]),
            "-" if c["rate_interval"] is None else f"{_percent(c['rate_interval'][0])}-{_percent(c['rate_interval'][1])}",
            human_duration(c["ttr_business_median_s"]),
            f"{_percent(c['csat'])} (n={c['csat_n']})",
            "-" if c["operator_minutes"] is None else f"{c['operator_minutes']:.1f}",
        ]
        for c in report["outcomes"]
    ]
    heads = [
        pgettext("journeys column", "topic"),
        pgettext("journeys column", "channel"),
        "n",
        pgettext("journeys column", "rate"),
        pgettext("journeys column", "shrunk"),
        "95% " + pgettext("journeys column", "interval"),  # a "%" in a msgid reads as a %-format
        pgettext("journeys column", "TTR business"),
        "CSAT",
        pgettext("journeys column", "op. min"),
    ]
    lines += [
        _("Outcomes by topic and channel resolved on (recontact-free resolution)"),
        *_columns(heads, rows or [["-"] * 9]),
        "",
    ]
    advice = report["advice"]
    lines.append(
        _(
            "Advice (holdout {holdout}, min n {min_n}): advised {advised} issues, FCR {advised_fcr};"
            " holdout {held} issues, FCR {held_fcr}"
        ).format(
            holdout=f"{advice['holdout_share']:.0%}",
            min_n=advice["min_n"],
            advised=advice["advised"]["issues"],
            advised_fcr=_percent(advice["advised"]["fcr"]),
            held=advice["holdout"]["issues"],
            held_fcr=_percent(advice["holdout"]["fcr"]),
        )
    )
    return lines


async def journeys_report(
    store, settings, now: float | None = None, start: float | None = None, end: float | None = None
) -> dict:
    """The journeys report of a period (issues by their first contact) from the raw history."""
    now = time.time() if now is None else now
    config = journey_settings(settings)
    data = await journey_data(store, config, now, default_calendar(settings), period=(start, end))
    return j.build_report(data, config, start, end)
