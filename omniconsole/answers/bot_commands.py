"""`omniconsole bot eval | calibrate | figures`: measure and tune the bot from the command line.

    omniconsole bot eval data/bot-eval/demo.jsonl [--kb DIR] [--json]
    omniconsole bot calibrate [--json]
    omniconsole bot figures [--days N] [--json]

`eval` decides each line `{"text": ..., "expect": "<article id>" | null}` as the first customer
message of a new conversation on a channel without buttons, in `answer` mode; `null` means the
bot must not answer. An answer with the expected article in another language variant is
correct; `wrong` counts every answer that is not correct (on `null` lines too); a figure whose
denominator is zero is null. It exits 0 whenever it could evaluate: the figures decide.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from omniconsole.answers.bot import BotBrain, Thresholds
from omniconsole.answers.engine import Engine
from omniconsole.errors import UsageError
from omniconsole.i18n import N_, _
from omniconsole.models import preview_line, sanitize_text


def add_parser(sub: argparse._SubParsersAction, common) -> None:
    """The `bot` sub-command (`common` adds --config/--db/-v)."""
    p = sub.add_parser("bot", help=_("the bot: evaluate it on a labelled set, calibrate it on history, its figures"))
    bot = p.add_subparsers(dest="bot_command", metavar="ACTION", required=True)
    q = bot.add_parser("eval", help=_("precision, containment and false answers on a labelled JSONL file"))
    common(q)
    q.add_argument("file", metavar="FILE.jsonl", help=_('one {"text": ..., "expect": "<article id>" | null} per line'))
    q.add_argument("--kb", metavar="DIR", help=_("evaluate this folder of articles (imported into a scratch store)"))
    q.add_argument("--json", action="store_true", help=_("print the figures as one JSON object on the last line"))
    _threshold_options(q)
    q = bot.add_parser("calibrate", help=_("precision and coverage at each threshold, on the operators' own history"))
    common(q)
    q.add_argument("--json", action="store_true", help=_("one JSON object per threshold instead of the table"))
    q = bot.add_parser("figures", help=_("engaged, resolved (confirmed/assumed), withdrawn, handoffs by reason"))
    common(q)
    q.add_argument("--days", type=int, default=30, help=_("the period, in days back from now (default 30)"))
    q.add_argument("--json", action="store_true")


def _threshold_options(q: argparse.ArgumentParser) -> None:
    default = Thresholds()
    q.add_argument("--min-confidence", type=float, default=default.min_confidence, help=_("0..1 (default %(default)s)"))
    q.add_argument(
        "--min-score", type=float, default=default.min_score, help=_("best article's score at least (default %(default)s)")
    )


@dataclass
class EvalLine:
    """One labelled line and what the bot did with it."""

    number: int
    text: str
    expect: str | None
    action: str = ""
    answered: str | None = None
    reason: str = ""
    ms: float = 0.0

    @property
    def correct(self) -> bool:
        return self.answered is not None and self.answered == self.expect


def read_eval_file(path: Path) -> list[EvalLine]:
    """The labelled lines of FILE; UsageError naming the line for anything malformed."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            N_("cannot read {path}: {error}"), path=str(path), error=str(getattr(exc, "strerror", None) or exc)
        ) from None
    lines = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise UsageError(N_("{path}:{number}: not JSON ({error})"), path=str(path), number=number, error=exc.msg) from None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("text"), str)
            or not (item.get("expect") is None or isinstance(item.get("expect"), str))
        ):
            raise UsageError(
                N_('{path}:{number}: expected {{"text": "...", "expect": "<article id>" | null}}'), path=str(path), number=number
            )
        lines.append(EvalLine(number, item["text"], item["expect"]))
    if not lines:
        raise UsageError(N_("{path} has no lines to evaluate"), path=str(path))
    return lines


def evaluate(brain: BotBrain, lines: list[EvalLine]) -> dict:
    """Decide every line (as a first message, no buttons, `answer` mode) and compute the figures."""
    for line in lines:
        started = time.perf_counter()
        decision = brain.decide(line.text)
        line.ms = (time.perf_counter() - started) * 1000
        line.action = decision.action
        line.reason = decision.reason
        line.answered = decision.hit.key if decision.action == "answer" and decision.hit else None
    n = len(lines)
    answerable = sum(1 for x in lines if x.expect is not None)
    nulls = n - answerable
    answered = sum(1 for x in lines if x.answered is not None)
    correct = sum(1 for x in lines if x.correct)
    answered_nulls = sum(1 for x in lines if x.expect is None and x.answered is not None)
    times = sorted(x.ms for x in lines)
    p95 = times[max(0, math.ceil(0.95 * len(times)) - 1)]
    return {
        "n": n,
        "answerable": answerable,
        "answered": answered,
        "correct": correct,
        "wrong": answered - correct,
        "handed_off": sum(1 for x in lines if x.action == "handoff"),
        "precision": round(correct / answered, 4) if answered else None,
        "containment": round(correct / answerable, 4) if answerable else None,
        "false_answer_rate": round(answered_nulls / nulls, 4) if nulls else None,
        "p95_ms": round(p95, 2),
    }


def run(args: argparse.Namespace, settings, me: str) -> int:
    """Run one `bot` action; returns the exit code."""
    from omniconsole.store import Store
    from omniconsole.store.bot import BotStore

    async def engine_of(store) -> Engine:
        return Engine(await store.kb_articles())

    async def main() -> int:
        if args.bot_command == "eval":
            lines = read_eval_file(Path(args.file))
            thresholds = Thresholds(min_confidence=args.min_confidence, min_score=args.min_score)
            if args.kb:
                from omniconsole.answers.library import ArticleError, import_folder

                with tempfile.TemporaryDirectory(prefix="omniconsole-bot-eval-") as scratch:
                    store = await Store.open(Path(scratch) / "scratch.db")
                    try:
                        try:
                            report = await import_folder(store, Path(args.kb), me)
                        except ArticleError as exc:
                            raise UsageError(str(exc)) from None
                        if report.refused:
                            print(
                                _("note: {n} file(s) of {path} were refused (see `omniconsole kb import --dry-run`)").format(
                                    n=report.refused, path=args.kb
                                )
                            )
                        engine = await engine_of(store)
                    finally:
                        await store.close()
            else:
                store = await Store.open(settings.database)
                try:
                    engine = await engine_of(store)
                finally:
                    await store.close()
            if not engine.records:
                raise UsageError(N_("the library is empty: import one with `omniconsole kb import DIR` or pass --kb DIR"))
            brain = BotBrain(engine, thresholds)
            brain.decide("warm up the language model")  # its load is not a decision
            figures = evaluate(brain, lines)
            _print_mistakes(lines)
            print(" ".join(f"{k}={v}" for k, v in figures.items()))
            if args.json:
                print(json.dumps(figures))
            return 0
        store = await Store.open(settings.database)
        try:
            if args.bot_command == "figures":
                result = await BotStore(store).figures(time.time() - args.days * 86400)
                print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
                return 0
            pairs = await BotStore(store).calibration_pairs()
            engine = await engine_of(store)
        finally:
            await store.close()
        return _calibrate(engine, pairs, args.json)

    return asyncio.run(main())


def _print_mistakes(lines: list[EvalLine]) -> None:
    mistakes = [x for x in lines if (x.answered is not None and not x.correct) or (x.expect is not None and x.answered is None)]
    if not mistakes:
        print(_("no mistakes"))
        return
    print(f"{_('line'):>4}  {_('expected'):<20} {_('bot'):<20} {_('text / reason')}")
    for x in mistakes:
        got = x.answered or x.action
        print(
            sanitize_text(
                f"{x.number:>4}  {x.expect or _('(must not answer)'):<20} {got:<20} {preview_line(x.text, 60)}  [{x.reason}]"
            )
        )


def _calibrate(engine: Engine, pairs: list[tuple[str, str]], as_json: bool) -> int:
    """Precision and coverage at each confidence threshold over (question, article) pairs."""
    if not pairs:
        print(_("no history to calibrate on yet: it needs replies in which operators inserted an answer from the library"))
        return 0
    brain = BotBrain(engine, Thresholds(min_confidence=0.0, min_score=0.0))
    scored = []
    for question, key in pairs:
        decision = brain.decide(question)
        best = decision.hit or (decision.candidates[0] if decision.candidates else None)
        eligible = decision.action == "answer" or decision.category == "low_confidence"
        scored.append((decision.confidence if eligible and best else -1.0, best.key if best else None, key))
    if not as_json:
        print(_("{n} questions operators answered from the library").format(n=len(pairs)))
        print(f"{'threshold':>9} {'answered':>8} {'precision':>9} {'coverage':>8}")
    for step in range(0, 20):
        threshold = step / 20
        answered = [(got, want) for conf, got, want in scored if conf >= threshold and got is not None]
        correct = sum(1 for got, want in answered if got == want)
        precision = correct / len(answered) if answered else None
        coverage = correct / len(scored)
        if as_json:
            print(
                json.dumps(
                    {"threshold": threshold, "answered": len(answered), "precision": precision, "coverage": round(coverage, 4)}
                )
            )
        else:
            shown = f"{precision:.3f}" if precision is not None else "-"
            print(f"{threshold:>9.2f} {len(answered):>8} {shown:>9} {coverage:>8.3f}")
    return 0
