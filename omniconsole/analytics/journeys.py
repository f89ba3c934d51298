"""Customer journeys across channels, and which channel serves each kind of request best
(../shared/METRICS.md "Journeys"; readings it leaves open are in docs/metrics.md "Journeys").

An issue is one conversation with its reopenings. Its **topic** is the label an operator set
that names a topic (one of the library's tags), else the topic the bot detected, else the one
the answers engine detects from the customer's first three messages, else "other". Its
**path** is the channel of its first contact and of every switch. It is **judged** for
first-contact resolution once it was resolved 7 days ago or more (judging earlier those who
already came back would fill recent periods with repeats alone).

The outcome table crosses topic with the channel an issue was resolved on (the channel of the
customer's last contact before the first resolution). Each cell has n and an interval: Wilson
95 % intervals for rates (recontact-free resolution, CSAT), the order-statistic 95 % interval
for the median business time to resolution, mean +- 1.96 standard errors for operator
minutes. Small cells are shrunk toward the topic's rate with a beta prior (empirical Bayes:
the prior's mean is the topic's pooled rate, its weight `prior_issues` pseudo-issues), so a
channel with 3 lucky issues does not top the table. No advice below `min_n` issues in either
cell, nor unless the two channels' 99 % Wilson intervals are apart.

"Repeated themselves" compares texts by the engine's own words and Snowball stems (the same
folding and stemming the library search uses, so "возврат"/"вернуть" forms and "refund"/
"refunds" meet) and the cosine (Otsuka-Ochiai) measure of the two sets of stems: a standard
measure, symmetric, insensitive to one message being longer; no new dependency.

Times are epoch seconds, durations seconds. (Past 600 lines: issues, the outcome table and the
advice built on it are one computation read together; the advice's words are kept as a phrase,
omniconsole/i18n.py, so they are drawn in the operator's language.)
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from omniconsole.answers.engine import NOT_ANSWERS, stem, words
from omniconsole.i18n import N_, english, phrase, render
from omniconsole.store.journeys import IssueRow

OTHER = "other"
RECONTACT_WINDOW = 7 * 86400.0
REPEAT_WINDOW = 86400.0
Z95 = 1.96
ADVICE_Z = 2.576  # 99 %: what advice needs (see `_apart`)


@dataclass(frozen=True)
class JourneySettings:
    """`[journeys]`: `min_n` issues a cell needs before it may advise; `margin` how much better
    (0-1, in recontact-free resolution rate) another channel must be; `prior_issues` the beta
    prior's weight; `holdout` the share 0-1 of conversations that never get advice;
    `similarity` 0-1 the cosine above which two texts are the same request; `bot_offer`
    whether the bot offers the better channel to the customer."""

    min_n: int = 30
    margin: float = 0.15
    prior_issues: float = 20.0
    holdout: float = 0.1
    similarity: float = 0.5
    bot_offer: bool = False


def parse_settings(table) -> JourneySettings:
    """`[journeys]` as JourneySettings; ValueError naming the key when a value is wrong."""
    known = {"min_n", "margin", "prior_issues", "holdout", "similarity", "bot_offer"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; the keys are {', '.join(sorted(known))}")
    values: dict = {}
    if "min_n" in table:
        if isinstance(table["min_n"], bool) or not isinstance(table["min_n"], int) or table["min_n"] < 1:
            raise ValueError("min_n must be a whole number of issues, 1 or more")
        values["min_n"] = table["min_n"]
    for key in ("margin", "holdout", "similarity"):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{key} must be a share between 0 and 1, e.g. 0.1")
            values[key] = float(value)
    if "prior_issues" in table:
        value = table["prior_issues"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError("prior_issues must be a number of issues, 0 or more")
        values["prior_issues"] = float(value)
    if "bot_offer" in table:
        if not isinstance(table["bot_offer"], bool):
            raise ValueError("bot_offer must be true or false")
        values["bot_offer"] = table["bot_offer"]
    return JourneySettings(**values)


#: Library tags that say what a message is, not what it is about.
NOT_TOPICS = NOT_ANSWERS


def topic_of(row: IssueRow, topics: frozenset[str]) -> str:
    """The operator's label that names a topic, else the bot's topic, else the detected one,
    else "other"."""
    for label in row.labels:
        if label in topics:
            return label
    return row.bot_topic or row.topic or OTHER


# --- text similarity -----------------------------------------------------------------------


def stems(text: str) -> frozenset[str]:
    """The Snowball stems of a text's words (numbers kept: an order number is evidence)."""
    return frozenset(stem(w) for w in words(text) if len(w) > 2 or w.isdigit())


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Cosine of two stem sets as binary vectors: |A and B| / sqrt(|A| |B|); 0 when one is empty."""
    if not a or not b:
        return 0.0
    return len(a & b) / math.sqrt(len(a) * len(b))


def repeated_issues(texts: Iterable[tuple[int, float, str, str]], threshold: float) -> set[int]:
    """Conversations in which the customer sent substantially the same request (cosine of stems
    >= `threshold`) on a second channel within a day of sending it on another. `texts`: one
    customer's (conversation id, epoch seconds, channel kind, body), in time order."""
    found: set[int] = set()
    earlier: list[tuple[float, str, frozenset[str]]] = []
    for cid, at, channel, body in texts:
        mine = stems(body)
        earlier = [e for e in earlier if at - e[0] <= REPEAT_WINDOW]
        if any(kind != channel and similarity(mine, s) >= threshold for _, kind, s in earlier):
            found.add(cid)
        earlier.append((at, channel, mine))
    return found


# --- one issue -----------------------------------------------------------------------------


@dataclass(slots=True)
class Issue:
    """One issue's journey figures: `channels` the path of channel kinds (first contact, then each
    switch), `resolved` whether it is resolved now, `resolved_on` the channel it was resolved
    on, `repeat_contact` True / False / None (not judged yet), `ttr_s`/`ttr_business_s` first
    contact -> first resolution."""

    row: IssueRow
    topic: str
    channels: tuple[str, ...]
    resolved: bool
    resolved_on: str | None
    repeat_contact: bool | None
    next_contact_at: float | None
    ttr_s: float | None
    ttr_business_s: float | None
    repeated_themselves: bool = False
    #: How many alike issues this one stands for (open ones that stand alone are counted, not
    #: read one by one: store/journeys.py `issue_rows`).
    weight: int = 1

    @property
    def switched(self) -> bool:
        return len(self.channels) > 1

    @property
    def first_channel(self) -> str:
        return self.channels[0] if self.channels else "none"


def build_issues(
    rows: list[IssueRow],
    topics: Iterable[str],
    now: float,
    *,
    calendar=None,
    repeated: set[int] | None = None,
    bulk: Counter | None = None,
) -> list[Issue]:
    """Each row as an `Issue`, with repeat contacts found across the customer's issues; and one
    weighted `Issue` per (topic, channel kind) of `bulk` (open issues that stand alone)."""
    known = frozenset(topics) - NOT_TOPICS
    # Only the customers with a resolved issue need their other issues at hand.
    wanted = {row.customer_id for row in rows if row.status == "resolved"}
    by_customer: dict[int, list[IssueRow]] = defaultdict(list)
    for row in rows:
        if row.customer_id in wanted:
            by_customer[row.customer_id].append(row)
    repeated = repeated or set()
    issues: list[Issue] = []
    append = issues.append
    for row in rows:
        channels = (row.path[0][1],) if len(row.path) == 1 else tuple([kind for _, kind in row.path])
        topic = topic_of(row, known)
        resolved_at = row.resolved_at
        if resolved_at is None or row.status != "resolved":
            append(Issue(row, topic, channels, False, None, None, None, None, None, row.conversation_id in repeated))
            continue
        before = [kind for at, kind in row.path if at <= resolved_at]
        resolved_on = before[-1] if before else (row.path[-1][1] if row.path else None)
        candidates = [row.recontact_in] if row.recontact_in is not None else []
        for other in by_customer[row.customer_id]:
            if other is row or other.first_contact is None:
                continue
            if other.first_contact > resolved_at:
                candidates.append(other.first_contact)
            elif other.last_contact is not None and other.last_contact > resolved_at:
                candidates.append(other.last_contact)  # an issue running alongside went on
        next_at = min(candidates) if candidates else None
        # Judged only once the 7 days are over: judging early those who already came back
        # would fill recent periods with repeats alone.
        judged: bool | None = None
        if now - resolved_at >= RECONTACT_WINDOW:
            judged = next_at is not None and next_at - resolved_at <= RECONTACT_WINDOW
        start = row.first_contact if row.first_contact is not None else row.opened_at
        ttr = max(0.0, resolved_at - start)
        ttr_business = None
        if calendar is not None:
            ttr_business = calendar.business_seconds(start, resolved_at) if resolved_at > start else 0.0
        append(
            Issue(row, topic, channels, True, resolved_on, judged, next_at, ttr, ttr_business, row.conversation_id in repeated)
        )
    for (topic, kind), count in sorted((bulk or {}).items()):
        stand_in = IssueRow(0, 0, "open", 0.0, topic=topic)
        append(Issue(stand_in, topic or OTHER, (kind,), False, None, None, None, None, None, False, count))
    return issues


def repeat_candidates(rows: list[IssueRow]) -> list[int]:
    """Conversations whose texts "repeated themselves" must look at: those with a channel switch,
    and those a customer began within a day of their previous issue on another channel (with
    that previous issue)."""
    wanted: set[int] = set()
    by_customer: dict[int, list[IssueRow]] = defaultdict(list)
    for row in rows:
        if len(row.path) > 1:
            wanted.add(row.conversation_id)
        if row.first_contact is not None:
            by_customer[row.customer_id].append(row)
    for own in by_customer.values():
        if len(own) < 2:
            continue
        own.sort(key=lambda r: r.first_contact)
        for before, after in zip(own, own[1:]):
            if (
                before.last_contact is not None
                and after.first_contact - before.last_contact <= REPEAT_WINDOW
                and before.path
                and after.path
                and before.path[-1][1] != after.path[0][1]
            ):
                wanted.update((before.conversation_id, after.conversation_id))
    return sorted(wanted)


def repeated_by_customer(texts: list[tuple[int, float, str, str]], rows: list[IssueRow], threshold: float) -> set[int]:
    """`repeated_issues` over each customer's texts."""
    owner = {r.conversation_id: r.customer_id for r in rows}
    per: dict[int, list] = defaultdict(list)
    for item in texts:
        per[owner.get(item[0], -1)].append(item)
    found: set[int] = set()
    for items in per.values():
        found |= repeated_issues(items, threshold)
    return found


# --- intervals -----------------------------------------------------------------------------


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of k successes in n (Wilson 1927); None when n is 0."""
    if n <= 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def median_interval(values: list[float], z: float = Z95) -> tuple[float, float] | None:
    """The distribution-free 95 % interval of a median: the order statistics n/2 -+ z sqrt(n)/2."""
    n = len(values)
    if n == 0:
        return None
    ordered = sorted(values)
    lo = max(0, math.floor(n / 2 - z * math.sqrt(n) / 2))
    hi = min(n - 1, math.ceil(n / 2 + z * math.sqrt(n) / 2) - 1)
    return ordered[lo], ordered[max(lo, hi)]


def mean_interval(values: list[float], z: float = Z95) -> tuple[float, float] | None:
    """Mean -+ z standard errors; None under two values."""
    if len(values) < 2:
        return None
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    half = z * sd / math.sqrt(len(values))
    return max(0.0, mean - half), mean + half


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def _pair(p: tuple[float, float] | None, digits: int = 3) -> list[float] | None:
    return None if p is None else [round(p[0], digits), round(p[1], digits)]


# --- figures -------------------------------------------------------------------------------


def figures(issues: list[Issue]) -> dict:
    """METRICS.md "Journeys" over these issues: counts, cross-channel FCR and the repeat-contact
    rate (over judged resolved issues), switch and "repeated themselves" rates (over issues with
    a contact), median time to resolution (seconds, wall clock and business)."""
    total = contacted = switched = repeated = 0
    for i in issues:
        total += i.weight
        if i.channels:
            contacted += i.weight
            if len(i.channels) > 1:
                switched += i.weight
            if i.repeated_themselves:
                repeated += i.weight
    resolved = [i for i in issues if i.resolved]  # resolved issues are never weighted
    judged = [i for i in resolved if i.repeat_contact is not None]
    repeats = sum(1 for i in judged if i.repeat_contact)
    ttr = [i.ttr_s for i in resolved if i.ttr_s is not None]
    ttr_b = [i.ttr_business_s for i in resolved if i.ttr_business_s is not None]
    return {
        "issues": total,
        "resolved": len(resolved),
        "judged": len(judged),
        "fcr": _r((len(judged) - repeats) / len(judged)) if judged else None,
        "repeat_contact_rate": _r(repeats / len(judged)) if judged else None,
        "switch_rate": _r(switched / contacted) if contacted else None,
        "switched": switched,
        "repeated_themselves_rate": _r(repeated / contacted) if contacted else None,
        "repeated_themselves": repeated,
        "ttr_median_s": _r(statistics.median(ttr)) if ttr else None,
        "ttr_median_s_business": _r(statistics.median(ttr_b)) if ttr_b else None,
    }


def transitions(issues: list[Issue]) -> list[dict]:
    """Counts of (from channel -> to channel) over every switch, most frequent first."""
    counts: Counter = Counter()
    for issue in issues:
        for a, b in zip(issue.channels, issue.channels[1:]):
            counts[(a, b)] += 1
    return [{"from": a, "to": b, "switches": n} for (a, b), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def common_paths(issues: list[Issue], limit: int = 10) -> list[dict]:
    """The most common channel paths (e.g. web -> phone -> email) with their outcomes."""
    groups: dict[tuple[str, ...], list[Issue]] = defaultdict(list)
    for issue in issues:
        if issue.channels:
            groups[issue.channels].append(issue)
    ranked = sorted(groups.items(), key=lambda kv: (-sum(i.weight for i in kv[1]), kv[0]))[:limit]
    return [{"path": list(path), **figures(members)} for path, members in ranked]


# --- the outcome table and advice ----------------------------------------------------------


@dataclass(slots=True)
class Cell:
    """Outcomes of the issues of one topic resolved on one channel (see the module docstring)."""

    topic: str
    channel: str
    n: int
    recontact_free: int
    rate: float
    shrunk: float
    interval: tuple[float, float] | None
    ttr_business_median_s: float | None = None
    ttr_business_interval: tuple[float, float] | None = None
    csat: float | None = None
    csat_n: int = 0
    csat_interval: tuple[float, float] | None = None
    operator_minutes: float | None = None
    operator_minutes_interval: tuple[float, float] | None = None

    def as_dict(self) -> dict:
        return {
            "topic": self.topic,
            "channel": self.channel,
            "n": self.n,
            "recontact_free": self.recontact_free,
            "rate": _r(self.rate),
            "rate_shrunk": _r(self.shrunk),
            "rate_interval": _pair(self.interval),
            "ttr_business_median_s": _r(self.ttr_business_median_s),
            "ttr_business_interval_s": _pair(self.ttr_business_interval),
            "csat": _r(self.csat),
            "csat_n": self.csat_n,
            "csat_interval": _pair(self.csat_interval),
            "operator_minutes": _r(self.operator_minutes, 1),
            "operator_minutes_interval": _pair(self.operator_minutes_interval, 1),
        }

    def to_json(self) -> dict:
        """Every field unrounded as JSON values (intervals as two-item lists): what the core
        saves (store/journeys.py `replace_outcomes`); `from_json` gives back an equal Cell."""
        return {name: list(value) if isinstance(value, tuple) else value for name, value in _cell_items(self)}

    @classmethod
    def from_json(cls, data: dict) -> Cell:
        """The Cell `to_json` gave (intervals back as tuples); KeyError/TypeError when a field
        is missing or unknown."""
        return cls(**{name: tuple(value) if isinstance(value, list) else value for name, value in data.items()})


def _cell_items(cell: Cell) -> list[tuple[str, object]]:
    return [(f.name, getattr(cell, f.name)) for f in fields(Cell)]


def outcome_table(issues: list[Issue], prior_issues: float = 20.0) -> dict[tuple[str, str], Cell]:
    """Topic x resolving channel over judged resolved issues (module docstring)."""
    cells: dict[tuple[str, str], list[Issue]] = defaultdict(list)
    by_topic: dict[str, list[Issue]] = defaultdict(list)
    for issue in issues:
        if issue.resolved and issue.repeat_contact is not None and issue.resolved_on:
            cells[(issue.topic, issue.resolved_on)].append(issue)
            by_topic[issue.topic].append(issue)
    topic_rate = {t: sum(1 for i in members if not i.repeat_contact) / len(members) for t, members in by_topic.items()}
    table: dict[tuple[str, str], Cell] = {}
    for (topic, channel), members in sorted(cells.items()):
        n = len(members)
        k = sum(1 for i in members if not i.repeat_contact)
        p0 = topic_rate[topic]
        ttr = [i.ttr_business_s if i.ttr_business_s is not None else i.ttr_s for i in members if i.ttr_s is not None]
        scores = [i.row.csat for i in members if i.row.csat is not None]
        good = sum(1 for s in scores if s >= 4)
        minutes = [i.row.operator_seconds / 60 for i in members]
        table[(topic, channel)] = Cell(
            topic,
            channel,
            n,
            k,
            k / n,
            (k + prior_issues * p0) / (n + prior_issues),
            wilson(k, n),
            statistics.median(ttr) if ttr else None,
            median_interval(ttr),
            good / len(scores) if scores else None,
            len(scores),
            wilson(good, len(scores)),
            statistics.fmean(minutes) if minutes else None,
            mean_interval(minutes),
        )
    return table


#: Channel kinds an identity kind can be reached on (a phone number also takes SMS).
REACHABLE = {"phone": ("phone", "sms"), "whatsapp": ("whatsapp",)}
#: How the advice names a channel (English; marked for the operator's catalog, translated where
#: the advice is drawn; the bot's offer to a customer uses the English and its own texts).
CHANNEL_WORDS = {
    "phone": N_("by phone"),
    "sms": N_("by SMS"),
    "email": N_("by e-mail"),
    "telegram": N_("in Telegram"),
    "whatsapp": N_("in WhatsApp"),
    "vk": N_("in VK"),
    "web": N_("in the web chat"),
    "api": N_("through the API"),
}


@dataclass(frozen=True, slots=True)
class Advice:
    """Another channel that serves this topic much better: the two cells and the sentence,
    kept as a phrase (omniconsole.i18n) so it is drawn in the operator's language."""

    topic: str
    current: Cell
    better: Cell
    line: dict

    @property
    def words(self) -> str:
        """The advice sentence in the current language (English: "Refunds: by phone 80%
        resolved in one contact, in Telegram 40% (n=50/60)")."""
        return render(self.line)


def channel_words(kind: str) -> str:
    """The channel as English words ("by phone", "on fax" for a kind without its own)."""
    return english(channel_phrase(kind))


def channel_phrase(kind: str) -> dict:
    """The channel's words as a phrase, translated where drawn."""
    return phrase(CHANNEL_WORDS[kind]) if kind in CHANNEL_WORDS else phrase(N_("on {kind}"), kind=kind)


def _apart(better: Cell, worse: Cell) -> bool:
    """Whether the 99 % Wilson intervals of two cells' rates do not overlap: a strict test, as a
    table of topics x channels makes many comparisons and advice must not chase noise."""
    high = wilson(better.recontact_free, better.n, ADVICE_Z)
    low = wilson(worse.recontact_free, worse.n, ADVICE_Z)
    return high is not None and low is not None and high[0] > low[1]


def advise(
    table: dict[tuple[str, str], Cell], topic: str, current: str, reachable: Iterable[str], settings: JourneySettings
) -> Advice | None:
    """Advice for an issue of `topic` on channel `current` when a channel the customer can be
    reached on (`reachable` channel kinds) resolves it without a recontact at least
    `settings.margin` more often (shrunk rates), the two 99 % Wilson intervals do not overlap,
    and both cells hold `settings.min_n` issues; else None."""
    if topic == OTHER:
        return None
    here = table.get((topic, current))
    if here is None or here.n < settings.min_n:
        return None
    best: Cell | None = None
    for kind in set(reachable) - {current}:
        cell = table.get((topic, kind))
        if cell is None or cell.n < settings.min_n or cell.interval is None:
            continue
        if cell.shrunk - here.shrunk >= settings.margin and _apart(cell, here):
            if best is None or cell.shrunk > best.shrunk:
                best = cell
    if best is None:
        return None
    line = phrase(
        N_("{topic}: {better} {better_rate} resolved in one contact, {current} {current_rate} (n={better_n}/{current_n})"),
        topic=topic.capitalize(),
        better=channel_phrase(best.channel),
        better_rate=f"{best.rate:.0%}",
        current=channel_phrase(here.channel),
        current_rate=f"{here.rate:.0%}",
        better_n=best.n,
        current_n=here.n,
    )
    return Advice(topic, here, best, line)


def reachable_kinds(identity_kinds: Iterable[str]) -> set[str]:
    """The channel kinds a customer with these identity kinds can be reached on."""
    out: set[str] = set()
    for kind in identity_kinds:
        out.update(REACHABLE.get(kind, (kind,)))
    return out


def in_holdout(conversation_id: int, share: float) -> bool:
    """Whether a conversation belongs to the holdout that never gets advice: a fixed hash of its
    id (Knuth's multiplicative hash), so every window and report agrees without storing it."""
    return ((conversation_id * 2654435761) % 2**32) / 2**32 < share


def advice_effect(
    issues: list[Issue], table: dict[tuple[str, str], Cell], kinds: dict[int, set[str]], settings: JourneySettings
) -> dict:
    """Outcomes of the resolved issues that qualified for advice when they began (topic known,
    channel of the first contact, the customer's channels), split into those advised and the
    holdout: an intention-to-treat comparison, with the table as it stands now."""
    groups: dict[str, list[Issue]] = {"advised": [], "holdout": []}
    # Only (topic, channel) pairs with a cell big enough can advise: the rest are skipped unread.
    may = {key for key, cell in table.items() if cell.n >= settings.min_n}
    decided: dict[tuple, bool] = {}
    for issue in issues:
        if not issue.resolved or (issue.topic, issue.channels[0]) not in may:
            continue
        reach = frozenset(reachable_kinds(kinds.get(issue.row.customer_id, ())))
        key = (issue.topic, issue.channels[0], reach)
        if key not in decided:
            decided[key] = advise(table, issue.topic, issue.channels[0], reach, settings) is not None
        if decided[key]:
            groups["holdout" if in_holdout(issue.row.conversation_id, settings.holdout) else "advised"].append(issue)
    out: dict = {"holdout_share": settings.holdout, "min_n": settings.min_n}
    for name, members in groups.items():
        fig = figures(members)
        judged = [i for i in members if i.resolved and i.repeat_contact is not None]
        good = sum(1 for i in judged if not i.repeat_contact)
        out[name] = {
            "issues": fig["issues"],
            "judged": fig["judged"],
            "fcr": fig["fcr"],
            "fcr_interval": _pair(wilson(good, len(judged))),
        }
    return out


# --- the report ----------------------------------------------------------------------------


@dataclass(slots=True)
class JourneyData:
    """Everything the report and the screen draw, computed once."""

    issues: list[Issue]
    table: dict[tuple[str, str], Cell]
    kinds: dict[int, set[str]] = field(default_factory=dict)


def grouped(issues: list[Issue], key) -> list[dict]:
    groups: dict[str, list[Issue]] = defaultdict(list)
    for issue in issues:
        groups[key(issue)].append(issue)
    return [{"key": k, **figures(v)} for k, v in sorted(groups.items())]


def build_report(
    data: JourneyData, settings: JourneySettings, period_start: float | None = None, period_end: float | None = None
) -> dict:
    """The journeys report: totals, by topic, by channel (of the first contact), transitions,
    the most common paths, the outcome table and the advice's effect. An issue belongs to the
    period its first contact falls in."""
    issues = [
        i
        for i in data.issues
        if (lambda at: (period_start is None or at >= period_start) and (period_end is None or at < period_end))(
            i.row.first_contact if i.row.first_contact is not None else i.row.opened_at
        )
    ]
    report = figures(issues)
    report["from"], report["to"] = period_start, period_end
    report["by_topic"] = grouped(issues, lambda i: i.topic)
    report["by_channel"] = grouped([i for i in issues if i.channels], lambda i: i.first_channel)
    report["transitions"] = transitions(issues)
    report["paths"] = common_paths(issues)
    report["outcomes"] = [cell.as_dict() for cell in data.table.values()]
    report["advice"] = advice_effect(issues, data.table, data.kinds, settings)
    return report
