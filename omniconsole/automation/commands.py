"""`omniconsole rules check` (is the rules file right?) and `omniconsole rules test [--days 30]
[--rules FILE]` (a dry run over the stored history: which conversations each rule would have
matched and what it would have done, doing nothing), wired into cli.py."""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

from omniconsole.errors import UsageError
from omniconsole.i18n import N_, _, ngettext


def add_parser(sub: argparse._SubParsersAction, common) -> None:
    """The `rules` sub-command (`common` adds --config/--db/-v)."""
    p = sub.add_parser("rules", help=_("automation rules: check the rules file, or dry-run it over the history"))
    rules = p.add_subparsers(dest="rules_command", metavar="COMMAND", required=True)
    q = rules.add_parser("check", help=_("read and check the rules file; one line per problem"))
    common(q)
    q.add_argument("--rules", metavar="FILE", help=_("this rules file instead of the config's [automation] rules"))
    q = rules.add_parser("test", help=_("what the rules would have done over the stored history, without doing it"))
    common(q)
    q.add_argument("--rules", metavar="FILE", help=_("this rules file instead of the config's [automation] rules"))
    q.add_argument("--days", type=float, default=30, help=_("how far back to look (default 30)"))
    q.add_argument(
        "--show", type=int, default=SHOWN, metavar="N", help=_("matches listed per rule (default 20; 0: all), the rest counted")
    )


def _book(args: argparse.Namespace, settings):
    from omniconsole.automation.rules import RulesError, load_rules

    if args.rules:
        calendars = set(getattr(settings.routing, "calendars", {}) or {"default"})
        try:
            return load_rules(Path(args.rules), calendars)
        except RulesError as exc:
            raise UsageError(str(exc)) from None
    if settings.automation is None:
        raise UsageError(N_('no rules file: add [automation] rules = "rules.toml" to the config, or pass --rules FILE'))
    return settings.automation.book


def run(args: argparse.Namespace, settings) -> int:
    """Run `rules check` or `rules test`; prints to stdout, exit code 0."""
    book = _book(args, settings)
    if args.rules_command == "check":
        where = book.path or (settings.automation.rules_path if settings.automation else "")
        print(
            _("{where}: {rules} rules and {macros} macros are fine").format(
                where=where, rules=len(book.rules), macros=len(book.macros)
            )
        )
        for rule in book.rules:
            actions = "; ".join(a.describe() for a in rule.actions)
            print(
                "  " + _("rule {name}: when {trigger} -> {actions}").format(name=rule.name, trigger=rule.trigger, actions=actions)
            )
        for macro in book.macros:
            owner = _(" ({login}'s)").format(login=macro.owner) if macro.owner else ""
            print(
                "  "
                + _("macro {name}{owner}: {actions}").format(name=macro.name, owner=owner, actions="; ".join(macro.describe()))
            )
        return 0
    if args.days <= 0:
        raise UsageError(N_("--days must be more than 0"))
    for line in dry_run_lines(book, settings, args.days, shown=getattr(args, "show", SHOWN)):
        print(line)
    return 0


#: Matches the dry run lists per rule: a rule that would fire on every message of a month
#: matches thousands, and the count says as much as the list.
SHOWN = 20


def dry_run_lines(book, settings, days: float, now: float | None = None, *, shown: int = SHOWN) -> list[str]:
    """The dry run's report: per rule, how many conversations it would have matched, and the
    first `shown` of them (0: all) with what it would have done; the rest are counted."""
    import asyncio

    from omniconsole.answers.language import detect_messages
    from omniconsole.automation.engine import Engine, dry_run
    from omniconsole.store import Store

    now = time.time() if now is None else now
    engine = Engine(book, getattr(settings.routing, "calendars", None), settings, detect=detect_messages)

    async def main():
        store = await Store.open(settings.database, create=False)
        try:
            return await store.db.run(lambda conn: dry_run(engine, conn, now - days * 86400, now))
        finally:
            await store.close()

    planned = asyncio.run(main())
    lines = [_("dry run over the last {days} days: nothing was done").format(days=f"{days:g}")]
    for rule in book.rules:
        mine = [p for p in planned if p.rule.name == rule.name]
        matches = ngettext("rule {name} ({trigger}): {n} match", "rule {name} ({trigger}): {n} matches", len(mine))
        lines.append(matches.format(name=rule.name, trigger=rule.trigger, n=len(mine)))
        listed = mine if shown <= 0 else mine[:shown]
        for p in listed:
            when = datetime.fromtimestamp(p.trigger.at).strftime("%Y-%m-%d %H:%M")
            where = (
                _("conversation #{id}").format(id=p.trigger.conversation_id)
                if p.trigger.conversation_id
                else _("channel {name}").format(name=p.trigger.event.get("channel_id"))
            )
            lines.append("  " + _("{when} {where}: would {action}").format(when=when, where=where, action=p.words()))
        if len(listed) < len(mine):
            rest = len(mine) - len(listed)
            lines.append(
                "  " + ngettext("… and {n} more (--show 0 lists all)", "… and {n} more (--show 0 lists all)", rest).format(n=rest)
            )
    return lines
