"""The argument parser of `omniconsole` and every sub-command (the capability packages add
their own sub-commands through `add_parser(sub, common)`)."""

from __future__ import annotations

import argparse

from omniconsole import config as config_module
from omniconsole.i18n import N_, _


def _common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    # Sub-commands take the same options; SUPPRESS keeps a sub-command's unset option from
    # overwriting one given before it (`omniconsole --db X stats`).
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--config", metavar="FILE", default=default, help=_("config file (default: $OMNICONSOLE_CONFIG or ./omniconsole.toml)")
    )
    parser.add_argument("--db", metavar="FILE", default=default, help=_("database file (overrides the config)"))
    parser.add_argument("-v", "--verbose", action="store_true", default=False if top else argparse.SUPPRESS, help=_("log more"))


CUSTOMER_HELP = N_("the customer's id (shown on their card as `customer 123`), an e-mail address or a phone number")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omniconsole",
        description=_("A terminal-native omnichannel contact centre: every channel, one customer, one window."),
    )
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    parser.add_argument(
        "--as",
        dest="as_operator",
        metavar="LOGIN",
        default=None,
        help=_("open the window as this operator (root only: for support and tests)"),
    )

    p = sub.add_parser("init", help=_("write a commented config template"))
    p.add_argument("path", nargs="?", default=config_module.DEFAULT_CONFIG_NAME, help=_("where to write it"))
    p.add_argument("--force", action="store_true", help=_("overwrite an existing file"))

    p = sub.add_parser("serve", help=_("run the core headless: channels and outbox (for a server)"))
    _common(p)

    p = sub.add_parser("demo", help=_("build a demo shop's history and run it with live traffic"))
    _common(p)
    p.add_argument("--dir", default="data/demo", help=_("where the demo database lives (default: data/demo)"))
    p.add_argument("--rate", type=float, default=0.5, help=_("new customer messages per second (default: 0.5; 0: none)"))
    p.add_argument("--conversations", type=int, default=2000, help=_("conversations of history to build (default: 2000)"))
    p.add_argument("--fresh", action="store_true", help=_("throw away an existing demo database first"))
    p.add_argument("--seconds", type=float, default=None, help=_("stop after this long (default: until Ctrl-C)"))
    p.add_argument("--feed", action="store_true", help=_("print a live feed instead of opening the window"))
    p.add_argument(
        "--as",
        dest="as_operator",
        metavar="LOGIN",
        default=argparse.SUPPRESS,
        help=_("open the window as this operator (root only)"),
    )

    p = sub.add_parser("backup", help=_("copy the database to FILE, consistent while the core runs (as the service user)"))
    _common(p)
    p.add_argument("file", metavar="FILE", help=_("where to write the copy (mode 0600; replaced if it exists)"))

    p = sub.add_parser("stats", help=_("counts by channel and status"))
    _common(p)

    p = sub.add_parser("doctor", help=_("check every configured channel and say what is wrong"))
    _common(p)

    p = sub.add_parser("operator", help=_("manage operators (admins only)"))
    _common(p)
    op = p.add_subparsers(dest="operator_command", metavar="ACTION", required=True)
    q = op.add_parser("add", help=_("allow a Unix user to work as an operator"))
    _common(q)
    q.add_argument("login")
    q.add_argument("--name", default="", help=_("display name"))
    q.add_argument("--admin", action="store_true", help=_("may do everything: operators and roles, exports, erasures, imports"))
    q.add_argument(
        "--supervisor",
        action="store_true",
        help=_("every conversation, reports, the library and rules; no roles, exports, erasures or imports"),
    )
    q.add_argument(
        "--extension",
        default=None,
        metavar="NUMBER",
        help=_("the operator's phone extension: a call ringing there pops the caller's card in their window"),
    )
    q = op.add_parser("list", help=_("list operators"))
    _common(q)
    q = op.add_parser("remove", help=_("remove an operator (their conversations become unassigned)"))
    _common(q)
    q.add_argument("login")
    q = op.add_parser("set", help=_("set an operator's status, capacity, skills or teams (routing)"))
    _common(q)
    q.add_argument("login")
    q.add_argument("--status", choices=None, metavar="S", help=_("online, away or offline"))
    q.add_argument(
        "--capacity", type=int, metavar="N", help=_("capacity units for automatic assignment (0: the [routing] default)")
    )
    q.add_argument("--skills", metavar="LIST", help=_("comma-separated skills, such as ru,en,vip (empty: none)"))
    q.add_argument("--teams", metavar="LIST", help=_("comma-separated teams, such as support,sales (empty: none)"))
    q.add_argument(
        "--language",
        metavar="LANG",
        help=_("the language of their window and CLI: en or ru (empty: the config's or the locale's)"),
    )

    p = sub.add_parser("import", help=_("bring an existing mailbox (Maildir or mbox) into the history"))
    imports = p.add_subparsers(dest="import_command", metavar="FORMAT", required=True)
    for name, what in (
        ("maildir", N_("a Maildir folder (cur/, new/ and Maildir++ subfolders)")),
        ("mbox", N_("an mbox file")),
    ):
        q = imports.add_parser(name, help=_("import {what}").format(what=_(what)))
        _common(q)
        q.add_argument("path", metavar="PATH", help=_(what))
        q.add_argument(
            "--channel",
            default="import",
            metavar="NAME",
            help=_("e-mail channel to import into (default: import); give the live mailbox's name to share its duplicate check"),
        )
        q.add_argument(
            "--own-address",
            action="append",
            metavar="ADDRESS",
            help=_("our own address: mail from it is skipped (configured mailbox addresses are known already); repeatable"),
        )
        q.add_argument(
            "--workers", type=int, default=None, metavar="N", help=_("parser processes (default: one per core; 0: none)")
        )
        q.add_argument(
            "--open-days",
            type=float,
            default=14,
            metavar="DAYS",
            help=_("conversations whose last mail is older than this arrive resolved (default: 14; 0: all stay open)"),
        )
        q.add_argument("--json", action="store_true", help=_("print the figures as one JSON object on the last line"))
    q = imports.add_parser("contacts", help=_("import customers from a CRM export (CSV)"))
    _common(q)
    q.add_argument(
        "path", metavar="FILE.csv", help=_("CSV with a header row; comma, semicolon or tab separated; UTF-8 or Windows-1251")
    )
    q.add_argument(
        "--map",
        action="append",
        metavar="FIELD=COLUMN",
        help=_(
            "which column holds a field (name, email, phone, telegram, vk, whatsapp, note, labels);"
            " known headers are found without it; other columns become attributes; repeatable"
        ),
    )
    q.add_argument(
        "--dry-run", action="store_true", help=_("only say what each row would do (new, matched, conflicting, invalid)")
    )
    q.add_argument("--json", action="store_true", help=_("print the counts as one JSON object on the last line"))

    p = sub.add_parser("export", help=_("write everything held about a customer as JSON (admins only)"))
    exports = p.add_subparsers(dest="export_command", metavar="WHAT", required=True)
    q = exports.add_parser("customer", help=_("one customer: identities, conversations, messages, attributes"))
    _common(q)
    q.add_argument("customer_id", metavar="CUSTOMER", help=_(CUSTOMER_HELP))
    q.add_argument("-o", "--output", metavar="FILE", help=_("write to FILE (mode 0600) instead of standard output"))

    p = sub.add_parser("erase", help=_("delete a customer's personal data, keeping anonymous counts (admins only)"))
    erases = p.add_subparsers(dest="erase_command", metavar="WHAT", required=True)
    q = erases.add_parser("customer", help=_("one customer (and the customers merged into them)"))
    _common(q)
    q.add_argument("customer_id", metavar="CUSTOMER", help=_(CUSTOMER_HELP))
    q.add_argument("--yes", action="store_true", help=_("do not ask for confirmation"))

    from omniconsole.answers.commands import add_parser as add_kb_parser
    from omniconsole.integrations.commands import add_parsers as add_send_parsers

    add_kb_parser(sub, _common)
    from omniconsole.answers.bot_commands import add_parser as add_bot_parser

    add_bot_parser(sub, _common)

    from omniconsole.analytics.commands import add_parser as add_report_parser

    add_report_parser(sub, _common)
    from omniconsole.automation.commands import add_parser as add_rules_parser

    add_rules_parser(sub, _common)
    add_send_parsers(sub, _common)

    p = sub.add_parser("bench", help=_("measure performance (see README for the budgets)"))
    bench = p.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    q = bench.add_parser("ingest", help=_("messages per second through the whole ingest path"))
    _common(q)
    q.add_argument("--messages", type=int, default=100_000)
    q.add_argument("--batch", type=int, default=1000, help=_("messages per transaction (default: 1000)"))
    q.add_argument("--json", action="store_true", help=_("print the figures as one JSON object on the last line"))
    q.add_argument(
        "--keep",
        metavar="FILE",
        help=_(
            "keep the benchmark database at FILE (for bench query and bench tui; --db FILE"
            " means the same); an existing file is replaced only if it is a benchmark database"
        ),
    )
    q = bench.add_parser("report", help=_("30-day and all-time report and wallboard refresh times on a kept database"))
    _common(q)
    q.add_argument("--rounds", type=int, default=20, help=_("30-day reports and wallboard refreshes to time (default: 20)"))
    q.add_argument("--all-time-rounds", type=int, default=3, help=_("all-time reports to time (default: 3)"))
    q.add_argument(
        "--reference-rounds",
        type=int,
        default=1,
        help=_(
            "30-day reports recounted from the whole history (the reference the stored facts must equal),"
            " timed and compared (default: 1; 0: skip, it takes seconds at 1M messages)"
        ),
    )
    q.add_argument(
        "--work",
        action="store_true",
        help=_(
            "first give the database a team's replies and resolutions (once; the bench ingest writes only"
            " customers' messages), so reports have response and resolution times to fold"
        ),
    )
    q.add_argument("--json", action="store_true", help=_("print the figures as one JSON object on the last line"))
    q = bench.add_parser("journeys", help=_("journeys report and one customer's journey on a kept database"))
    _common(q)
    q.add_argument("--rounds", type=int, default=5, help=_("journeys reports to time (default: 5)"))
    q.add_argument("--customers", type=int, default=300, help=_("customers whose journey to time (default: 300)"))
    q.add_argument("--json", action="store_true", help=_("print the figures as one JSON object on the last line"))
    q = bench.add_parser("query", help=_("p50/p95 of inbox page, timeline, profile and search"))
    _common(q)
    q.add_argument("--messages", type=int, default=100_000, help=_("size of the database to build when --db is not given"))
    q.add_argument("--rounds", type=int, default=200)
    q.add_argument("--json", action="store_true", help=_("print the figures as one JSON object on the last line"))
    q = bench.add_parser("mail", help=_("mailbox import speed, next to `notmuch new` on the same Maildir"))
    _common(q)
    q.add_argument("--maildir", metavar="DIR", help=_("import this Maildir (default: build a synthetic one)"))
    q.add_argument("--messages", type=int, default=5000, help=_("size of the synthetic Maildir (default: 5000)"))
    q.add_argument("--workers", type=int, default=None, metavar="N", help=_("parser processes (default: one per core)"))
    q.add_argument("--json", action="store_true", help=_("print the figures as one JSON object on the last line"))
    q = bench.add_parser("kb", help=_("answers engine: picker query and suggestion p95 on a generated library"))
    _common(q)
    q.add_argument("--articles", type=int, default=1000, help=_("library size (default: 1000)"))
    q.add_argument("--queries", type=int, default=500, help=_("picker queries to time (default: 500)"))
    q.add_argument("--rounds", type=int, default=300, help=_("conversations to suggest for (default: 300)"))
    q.add_argument(
        "--ingest-messages",
        type=int,
        default=20_000,
        metavar="N",
        help=_("messages for the stemming-at-ingest measurement (default: 20000; 0: skip)"),
    )
    q.add_argument("--json", action="store_true", help=_("print the figures as one JSON object on the last line"))
    q = bench.add_parser("routing", help=_("routing decision p50/p95: 10,000 arrivals among 50 operators"))
    _common(q)
    q.add_argument("--arrivals", type=int, default=10_000, help=_("conversations arriving (default: 10000)"))
    q.add_argument("--operators", type=int, default=50, help=_("operators online (default: 50)"))
    q.add_argument("--json", action="store_true", help=_("print the figures as one JSON object on the last line"))
    q = bench.add_parser("rules", help=_("automation rules: pipeline step and follower p50/p95 on a big history"))
    _common(q)
    q.add_argument("--history", type=int, default=200_000, help=_("messages stored first, as an import (default: 200000)"))
    q.add_argument("--arrivals", type=int, default=5_000, help=_("live messages through the rules' step (default: 5000)"))
    q.add_argument("--json", action="store_true", help=_("print the figures as one JSON object on the last line"))
    q = bench.add_parser("sla", help=_("SLA clocks on 100,000 open conversations: scheduler wake-up p95, inbox pages"))
    _common(q)
    q.add_argument("--conversations", type=int, default=100_000, help=_("open conversations (default: 100000)"))
    q.add_argument("--wakeups", type=int, default=2000, help=_("schedule rows fired and timed (default: 2000)"))
    q.add_argument("--json", action="store_true", help=_("print the figures as one JSON object on the last line"))
    q = bench.add_parser("tui", help=_("window start, keystroke-to-repaint and memory on a big database"))
    _common(q)
    q.add_argument("--keys", type=int, default=300, help=_("keystrokes to time (default: 300)"))
    q.add_argument("--runs", type=int, default=3, help=_("fresh processes per figure (default: 3)"))
    q.add_argument(
        "--visible",
        type=int,
        default=20,
        metavar="N",
        help=_(
            "messages another process stores per run, timed until this window shows them (default: 20;"
            " they stay in the database, on a channel named 'bench visibility'; 0: skip)"
        ),
    )
    q.add_argument(
        "--big-mail",
        type=int,
        default=0,
        metavar="MB",
        help=_("time the keys with an e-mail of MB megabytes in the open conversation (it stays in the database)"),
    )
    q.add_argument(
        "--socket", action="store_true", help=_("a team setup: the window reads and writes through a core over its Unix socket")
    )
    q.add_argument("--language", metavar="LANG", help=_("the window's language: en or ru (default: the locale's, as a window)"))
    q.add_argument("--json", action="store_true", help=_("print the figures as one JSON object on the last line"))
    return parser
