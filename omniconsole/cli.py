"""`omniconsole` and its sub-commands.

Every failure a person can cause or fix (a bad config, an unreadable database, a missing
permission) ends in one line saying what to do, never a traceback.

Past 600 lines: the argument parser of every sub-command and their small glue functions; the
work itself lives in core/, store/ and bench/.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import time
from pathlib import Path

from omniconsole import config as config_module
from omniconsole.errors import OmniError, UsageError
from omniconsole.models import sanitize_text

log = logging.getLogger("omniconsole")


def _common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    # Sub-commands take the same options; SUPPRESS keeps a sub-command's unset option from
    # overwriting one given before it (`omniconsole --db X stats`).
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--config", metavar="FILE", default=default, help="config file (default: $OMNICONSOLE_CONFIG or ./omniconsole.toml)"
    )
    parser.add_argument("--db", metavar="FILE", default=default, help="database file (overrides the config)")
    parser.add_argument("-v", "--verbose", action="store_true", default=False if top else argparse.SUPPRESS, help="log more")


CUSTOMER_HELP = "the customer's id (shown on their card as `customer 123`), an e-mail address or a phone number"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omniconsole",
        description="A terminal-native omnichannel contact centre: every channel, one customer, one window.",
    )
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    parser.add_argument(
        "--as",
        dest="as_operator",
        metavar="LOGIN",
        default=None,
        help="open the window as this operator (root only: for support and tests)",
    )

    p = sub.add_parser("init", help="write a commented config template")
    p.add_argument("path", nargs="?", default=config_module.DEFAULT_CONFIG_NAME, help="where to write it")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")

    p = sub.add_parser("serve", help="run the core headless: channels and outbox (for a server)")
    _common(p)

    p = sub.add_parser("demo", help="build a demo shop's history and run it with live traffic")
    _common(p)
    p.add_argument("--dir", default="data/demo", help="where the demo database lives (default: data/demo)")
    p.add_argument("--rate", type=float, default=0.5, help="new customer messages per second (default: 0.5; 0: none)")
    p.add_argument("--conversations", type=int, default=2000, help="conversations of history to build (default: 2000)")
    p.add_argument("--fresh", action="store_true", help="throw away an existing demo database first")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")
    p.add_argument("--feed", action="store_true", help="print a live feed instead of opening the window")
    p.add_argument(
        "--as",
        dest="as_operator",
        metavar="LOGIN",
        default=argparse.SUPPRESS,
        help="open the window as this operator (root only)",
    )

    p = sub.add_parser("backup", help="copy the database to FILE, consistent while the core runs (as the service user)")
    _common(p)
    p.add_argument("file", metavar="FILE", help="where to write the copy (mode 0600; replaced if it exists)")

    p = sub.add_parser("stats", help="counts by channel and status")
    _common(p)

    p = sub.add_parser("doctor", help="check every configured channel and say what is wrong")
    _common(p)

    p = sub.add_parser("operator", help="manage operators (admins only)")
    _common(p)
    op = p.add_subparsers(dest="operator_command", metavar="ACTION", required=True)
    q = op.add_parser("add", help="allow a Unix user to work as an operator")
    _common(q)
    q.add_argument("login")
    q.add_argument("--name", default="", help="display name")
    q.add_argument("--admin", action="store_true", help="may do everything: operators and roles, exports, erasures, imports")
    q.add_argument(
        "--supervisor",
        action="store_true",
        help="every conversation, reports, the library and rules; no roles, exports, erasures or imports",
    )
    q.add_argument(
        "--extension",
        default=None,
        metavar="NUMBER",
        help="the operator's phone extension: a call ringing there pops the caller's card in their window",
    )
    q = op.add_parser("list", help="list operators")
    _common(q)
    q = op.add_parser("remove", help="remove an operator (their conversations become unassigned)")
    _common(q)
    q.add_argument("login")
    q = op.add_parser("set", help="set an operator's status, capacity, skills or teams (routing)")
    _common(q)
    q.add_argument("login")
    q.add_argument("--status", choices=None, metavar="S", help="online, away or offline")
    q.add_argument("--capacity", type=int, metavar="N", help="capacity units for automatic assignment (0: the [routing] default)")
    q.add_argument("--skills", metavar="LIST", help="comma-separated skills, such as ru,en,vip (empty: none)")
    q.add_argument("--teams", metavar="LIST", help="comma-separated teams, such as support,sales (empty: none)")
    q.add_argument(
        "--language", metavar="LANG", help="the language of their window and CLI: en or ru (empty: the config's or the locale's)"
    )

    p = sub.add_parser("import", help="bring an existing mailbox (Maildir or mbox) into the history")
    imports = p.add_subparsers(dest="import_command", metavar="FORMAT", required=True)
    for name, what in (("maildir", "a Maildir folder (cur/, new/ and Maildir++ subfolders)"), ("mbox", "an mbox file")):
        q = imports.add_parser(name, help=f"import {what}")
        _common(q)
        q.add_argument("path", metavar="PATH", help=what)
        q.add_argument(
            "--channel",
            default="import",
            metavar="NAME",
            help="e-mail channel to import into (default: import); give the live mailbox's name to share its duplicate check",
        )
        q.add_argument(
            "--own-address",
            action="append",
            metavar="ADDRESS",
            help="our own address: mail from it is skipped (configured mailbox addresses are known already); repeatable",
        )
        q.add_argument("--workers", type=int, default=None, metavar="N", help="parser processes (default: one per core; 0: none)")
        q.add_argument(
            "--open-days",
            type=float,
            default=14,
            metavar="DAYS",
            help="conversations whose last mail is older than this arrive resolved (default: 14; 0: all stay open)",
        )
        q.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    q = imports.add_parser("contacts", help="import customers from a CRM export (CSV)")
    _common(q)
    q.add_argument(
        "path", metavar="FILE.csv", help="CSV with a header row; comma, semicolon or tab separated; UTF-8 or Windows-1251"
    )
    q.add_argument(
        "--map",
        action="append",
        metavar="FIELD=COLUMN",
        help="which column holds a field (name, email, phone, telegram, vk, whatsapp, note, labels);"
        " known headers are found without it; other columns become attributes; repeatable",
    )
    q.add_argument("--dry-run", action="store_true", help="only say what each row would do (new, matched, conflicting, invalid)")
    q.add_argument("--json", action="store_true", help="print the counts as one JSON object on the last line")

    p = sub.add_parser("export", help="write everything held about a customer as JSON (admins only)")
    exports = p.add_subparsers(dest="export_command", metavar="WHAT", required=True)
    q = exports.add_parser("customer", help="one customer: identities, conversations, messages, attributes")
    _common(q)
    q.add_argument("customer_id", metavar="CUSTOMER", help=CUSTOMER_HELP)
    q.add_argument("-o", "--output", metavar="FILE", help="write to FILE (mode 0600) instead of standard output")

    p = sub.add_parser("erase", help="delete a customer's personal data, keeping anonymous counts (admins only)")
    erases = p.add_subparsers(dest="erase_command", metavar="WHAT", required=True)
    q = erases.add_parser("customer", help="one customer (and the customers merged into them)")
    _common(q)
    q.add_argument("customer_id", metavar="CUSTOMER", help=CUSTOMER_HELP)
    q.add_argument("--yes", action="store_true", help="do not ask for confirmation")

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

    p = sub.add_parser("bench", help="measure performance (see README for the budgets)")
    bench = p.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    q = bench.add_parser("ingest", help="messages per second through the whole ingest path")
    _common(q)
    q.add_argument("--messages", type=int, default=100_000)
    q.add_argument("--batch", type=int, default=1000, help="messages per transaction (default: 1000)")
    q.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    q.add_argument(
        "--keep",
        metavar="FILE",
        help="keep the benchmark database at FILE (for bench query and bench tui; --db FILE"
        " means the same); an existing file is replaced only if it is a benchmark database",
    )
    q = bench.add_parser("report", help="30-day and all-time report and wallboard refresh times on a kept database")
    _common(q)
    q.add_argument("--rounds", type=int, default=20, help="30-day reports and wallboard refreshes to time (default: 20)")
    q.add_argument("--all-time-rounds", type=int, default=3, help="all-time reports to time (default: 3)")
    q.add_argument(
        "--reference-rounds",
        type=int,
        default=1,
        help="30-day reports recounted from the whole history (the reference the stored facts must equal),"
        " timed and compared (default: 1; 0: skip, it takes seconds at 1M messages)",
    )
    q.add_argument(
        "--work",
        action="store_true",
        help="first give the database a team's replies and resolutions (once; the bench ingest writes only"
        " customers' messages), so reports have response and resolution times to fold",
    )
    q.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    q = bench.add_parser("journeys", help="journeys report and one customer's journey on a kept database")
    _common(q)
    q.add_argument("--rounds", type=int, default=5, help="journeys reports to time (default: 5)")
    q.add_argument("--customers", type=int, default=300, help="customers whose journey to time (default: 300)")
    q.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    q = bench.add_parser("query", help="p50/p95 of inbox page, timeline, profile and search")
    _common(q)
    q.add_argument("--messages", type=int, default=100_000, help="size of the database to build when --db is not given")
    q.add_argument("--rounds", type=int, default=200)
    q.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    q = bench.add_parser("mail", help="mailbox import speed, next to `notmuch new` on the same Maildir")
    _common(q)
    q.add_argument("--maildir", metavar="DIR", help="import this Maildir (default: build a synthetic one)")
    q.add_argument("--messages", type=int, default=5000, help="size of the synthetic Maildir (default: 5000)")
    q.add_argument("--workers", type=int, default=None, metavar="N", help="parser processes (default: one per core)")
    q.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    q = bench.add_parser("kb", help="answers engine: picker query and suggestion p95 on a generated library")
    _common(q)
    q.add_argument("--articles", type=int, default=1000, help="library size (default: 1000)")
    q.add_argument("--queries", type=int, default=500, help="picker queries to time (default: 500)")
    q.add_argument("--rounds", type=int, default=300, help="conversations to suggest for (default: 300)")
    q.add_argument(
        "--ingest-messages",
        type=int,
        default=20_000,
        metavar="N",
        help="messages for the stemming-at-ingest measurement (default: 20000; 0: skip)",
    )
    q.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    q = bench.add_parser("routing", help="routing decision p50/p95: 10,000 arrivals among 50 operators")
    _common(q)
    q.add_argument("--arrivals", type=int, default=10_000, help="conversations arriving (default: 10000)")
    q.add_argument("--operators", type=int, default=50, help="operators online (default: 50)")
    q.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    q = bench.add_parser("rules", help="automation rules: pipeline step and follower p50/p95 on a big history")
    _common(q)
    q.add_argument("--history", type=int, default=200_000, help="messages stored first, as an import (default: 200000)")
    q.add_argument("--arrivals", type=int, default=5_000, help="live messages through the rules' step (default: 5000)")
    q.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    q = bench.add_parser("sla", help="SLA clocks on 100,000 open conversations: scheduler wake-up p95, inbox pages")
    _common(q)
    q.add_argument("--conversations", type=int, default=100_000, help="open conversations (default: 100000)")
    q.add_argument("--wakeups", type=int, default=2000, help="schedule rows fired and timed (default: 2000)")
    q.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    q = bench.add_parser("tui", help="window start, keystroke-to-repaint and memory on a big database")
    _common(q)
    q.add_argument("--keys", type=int, default=300, help="keystrokes to time (default: 300)")
    q.add_argument("--runs", type=int, default=3, help="fresh processes per figure (default: 3)")
    q.add_argument(
        "--visible",
        type=int,
        default=20,
        metavar="N",
        help="messages another process stores per run, timed until this window shows them (default: 20;"
        " they stay in the database, on a channel named 'bench visibility'; 0: skip)",
    )
    q.add_argument(
        "--big-mail",
        type=int,
        default=0,
        metavar="MB",
        help="time the keys with an e-mail of MB megabytes in the open conversation (it stays in the database)",
    )
    q.add_argument(
        "--socket", action="store_true", help="a team setup: the window reads and writes through a core over its Unix socket"
    )
    q.add_argument("--language", metavar="LANG", help="the window's language: en or ru (default: the locale's, as a window)")
    q.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    return parser


def main(argv: list[str] | None = None) -> int:
    # Files we create (attachments, their folders) are shared with the other operators of the
    # team through the group; nobody outside it reads customer data.
    os.umask(0o007)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        for noisy in ("httpx", "aiosqlite", "telegram", "aioimaplib"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    command = args.command or "help"
    from omniconsole.i18n import _, choose_language, set_language

    # The locale's language until the config is read (`_settings` applies `[ui] language`).
    set_language(choose_language())
    try:
        if command == "help":
            return cmd_window(args)
        handler = globals()[f"cmd_{command.replace('-', '_')}"]
        return handler(args) or 0
    except OmniError as exc:
        print(_("omniconsole: error: {message}").format(message=exc.translated()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Whoever read our output went away (`omniconsole report ... | head`): stop without a
        # traceback, and keep the interpreter's last flush from raising again (Python docs,
        # "Note on SIGPIPE" in the signal module).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _settings(args: argparse.Namespace):
    """The config, and the CLI's language from it (`[ui] language`, else the locale)."""
    from omniconsole.i18n import choose_language, set_language

    settings = config_module.load_settings(args.config, args.db)
    set_language(choose_language(None, settings.language))
    return settings


def _run(coro):
    """Run a coroutine and return its value; SIGTERM stops it as Ctrl-C does, so `finally`
    blocks still run (a stopped run returns None)."""

    async def wrapper():
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await coro
        except asyncio.CancelledError:
            return None

    return asyncio.run(wrapper())


def current_user() -> str:
    """The operator's login: the Unix user of this process's real uid, from the password
    database. Never LOGNAME or USER: anyone can set those (issue #13)."""
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def team_socket(settings) -> Path | None:
    """The core's socket when the config describes a team setup (`[team] socket`), else None."""
    return settings.team.socket


async def open_store(settings, *, create: bool = True):
    """The store this command works on: in a team setup a client of the core's socket (which
    decides who we are and what we may do), alone the database itself."""
    if team_socket(settings) is not None:
        from omniconsole.core.remote import RemoteStore

        return await RemoteStore.connect(team_socket(settings))
    from omniconsole.store import Store

    return await Store.open(settings.database, create=create)


# --- commands -------------------------------------------------------------------------------


def resolve_operator(store_path: Path, requested: str | None, socket_path: Path | None = None):
    """The operator this window works as: the Unix user (root may name another with --as).
    In a team setup the core says who we are, from the socket's peer credentials (`--as` is
    refused there: the core acts for the uid that connects).
    An unknown user is refused in one line saying who can let them in."""
    from omniconsole.store import Store

    me = current_user()
    if requested and requested != me:
        if os.geteuid() != 0:
            raise UsageError("only root may open the window as another operator (--as)")
        if socket_path is not None:
            raise UsageError("in a team setup the core knows operators by their Unix user; run the window as that user")
        me = requested

    async def lookup():
        if socket_path is not None:
            from omniconsole.core.remote import RemoteStore

            async with await RemoteStore.connect(socket_path) as remote:
                return await remote.operators()
        store = await Store.open(store_path)
        try:
            return await store.operators()
        finally:
            await store.close()

    operators = asyncio.run(lookup())
    for op in operators:
        if op.login == me:
            return op
    if not operators:
        raise UsageError(f"no operators are registered yet; run `omniconsole operator add {me} --admin` first")
    raise UsageError(f"{me} is not an operator here; an admin can add you with `omniconsole operator add {me}`")


def open_window(settings, login: str | None, *, run_core: bool = True) -> int:
    """Open the operator's window on the configured database."""
    if not sys.stdout.isatty() or not sys.stdin.isatty():
        raise UsageError("the window needs a terminal; use `omniconsole serve` for a headless core")
    socket_path = team_socket(settings)
    operator = resolve_operator(settings.database, login, socket_path)
    # In a team setup systemd keeps the core running: the window never starts one of its own.
    run_core = run_core and socket_path is None
    # No garbage collection until the first inbox page is drawn (MainScreen.on_mount freezes
    # what exists then and turns it back on): its passes over Textual's start-up objects cost
    # ~50 ms of the window's start.
    gc.disable()
    from omniconsole.tui.app import OmniApp

    # The window owns the terminal (Textual draws on stderr): logs go to a file instead.
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "omniconsole"
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    try:
        state.mkdir(parents=True, exist_ok=True)
        root.addHandler(logging.FileHandler(state / "window.log", encoding="utf-8"))
    except OSError:
        root.addHandler(logging.NullHandler())

    OmniApp(settings, operator, run_core=run_core).run()
    return 0


def cmd_window(args: argparse.Namespace) -> int:
    return open_window(_settings(args), args.as_operator)


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.exists() and not args.force:
        raise UsageError(f"{path} already exists; use --force to overwrite it")
    try:
        path.write_text(config_module.template(), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    print(f"wrote {path}; edit it, then run `omniconsole serve --config {path}`")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from omniconsole.capabilities import hub_parts
    from omniconsole.core.hub import Hub
    from omniconsole.store import Store

    settings = _settings(args)
    if not settings.channels:
        log.warning("no channels are configured; the core will only send what operators queue (see `omniconsole init`)")
    if settings.team.socket is not None:
        # A team server: the database and data directory are the service user's alone (the
        # group reaches the core through its socket, never the files).
        os.umask(0o077)

    async def serve():
        store = await Store.open(settings.database)
        control = None
        try:
            if settings.team.socket is not None:
                from omniconsole.core.control import ControlServer

                # Operators act through this socket; the database is the service user's alone.
                control = ControlServer(
                    store, settings.team.socket, group=settings.team.group, attachments_dir=settings.attachments_dir
                )
                await control.start()
            hub = Hub(settings, store, **hub_parts(settings, store))
            holder = await store.lease_holder()
            if holder is not None:
                log.info("waiting for the core lease held by pid %s on %s", holder.pid, holder.host)
            await hub.run()
        finally:
            if control is not None:
                await control.close()
            await store.close()

    return _run(serve()) or 0


def cmd_demo(args: argparse.Namespace) -> int:
    from omniconsole.capabilities import hub_parts
    from omniconsole.core.demo import (
        DEMO_CONFIG_NAME,
        DEMO_RULES,
        DEMO_RULES_NAME,
        build_demo_history,
        demo_config_text,
        demo_settings,
    )
    from omniconsole.core.hub import Hub
    from omniconsole.models import OperatorRole
    from omniconsole.store import Store

    directory = Path(args.dir).resolve()
    settings = demo_settings(directory, rate=args.rate)
    if args.db:
        settings = config_module.Settings(Path(args.db).resolve(), directory, channels=settings.channels)
    if args.fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{settings.database}{suffix}").unlink(missing_ok=True)
    me = current_user()
    # Beside the database, so `stats`, `doctor`, `export` ... see the demo's database and
    # channels: --config names it (a config of one's own is left alone).
    demo_config = settings.database.parent / DEMO_CONFIG_NAME
    try:
        demo_config.parent.mkdir(parents=True, exist_ok=True)
        demo_config.write_text(demo_config_text(settings), encoding="utf-8")
        (demo_config.parent / DEMO_RULES_NAME).write_text(DEMO_RULES, encoding="utf-8")
        print(f"demo config: {demo_config} (other commands: `omniconsole --config {demo_config} stats`)")
    except OSError as exc:
        raise UsageError(f"cannot write the demo's config {demo_config}: {exc.strerror}") from None
    if not args.db:
        # The demo runs what its config says (its SLA policy, rules and macros included).
        settings = config_module.load_settings(demo_config)

    async def demo():
        fresh = not settings.database.exists()
        store = await Store.open(settings.database)
        try:
            if fresh:
                started = time.perf_counter()
                print(f"building a demo shop with {args.conversations} conversations in {settings.database} ...")
                count = await build_demo_history(store, settings, conversations=args.conversations, admin=me)
                print(f"built {count} messages in {time.perf_counter() - started:.1f} s")
            else:
                await store.add_operator(me, me, OperatorRole.ADMIN, actor=me)
            # The demo phone channel rings this extension: the window pops the caller's card.
            from connectors.demo import DEMO_EXTENSION

            if not any(op.extension == DEMO_EXTENSION and op.login != me for op in await store.operators()):
                await store.add_operator(me, me, OperatorRole.ADMIN, actor=me, extension=DEMO_EXTENSION)
            # The demo shop's answers library (shipped in the package), synced on every start.
            from omniconsole.answers.library import DEMO_LIBRARY, import_folder

            library = await import_folder(store, DEMO_LIBRARY, "demo")
            if fresh or library.counts["new"] or library.counts["updated"]:
                print(f"answers library: {len(library.lines)} articles from {DEMO_LIBRARY}")
            if not args.feed:
                return "window"
            hub = Hub(settings, store, **hub_parts(settings, store))
            # Without the lease (another demo runs the core) this window only follows.
            core = asyncio.create_task(hub.run(wait=False))
            feed = asyncio.create_task(live_feed(store))
            try:
                async with asyncio.timeout(args.seconds):
                    await asyncio.shield(feed)
            except TimeoutError:
                pass
            finally:
                feed.cancel()
                core.cancel()
                await asyncio.gather(core, feed, return_exceptions=True)
        finally:
            await store.close()

    feed_only = args.feed or not (sys.stdout.isatty() and sys.stdin.isatty())
    args.feed = feed_only
    if _run(demo()) == "window":
        return open_window(settings, getattr(args, "as_operator", None))
    return 0


async def live_feed(store, out=None) -> None:
    """Print what arrives and what is sent, as it happens (the demo's window until the TUI)."""
    out = out or sys.stdout
    last = await store.last_event_id()
    print("live: customers write, the core stores and sends; Ctrl-C stops.", file=out, flush=True)
    while True:
        for event in await store.events_since(last):
            last = event.id
            line = await _describe(store, event)
            if line:
                print(line, file=out, flush=True)
        await asyncio.sleep(0.15)


async def _describe(store, event) -> str | None:
    stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
    if event.kind in ("message.received", "message.sent", "message.failed", "message.retrying") and event.message_id:
        entries = [e for e in await store.timeline(event.conversation_id, limit=200) if e.id == event.message_id]
        if not entries:
            return None
        entry = entries[0]
        text = " ".join(entry.body.split())[:100]
        badge = entry.channel_kind or "-"
        if event.kind == "message.received":
            return f"{stamp} <- [{badge}] {entry.author or 'customer'} (#{entry.conversation_id}): {text}"
        if event.kind == "message.sent":
            return f"{stamp} -> [{badge}] {entry.author} (#{entry.conversation_id}): {text}"
        return f"{stamp} !! [{badge}] #{entry.conversation_id} {event.kind.split('.')[1]}: {sanitize_text(entry.error)}"
    if event.kind == "channel.health":
        return f"{stamp} channel: {event.payload}"
    return None


def cmd_backup(args: argparse.Namespace) -> int:
    from omniconsole.store.database import backup

    settings = _settings(args)
    if not os.access(settings.database, os.R_OK) and settings.database.exists():
        raise UsageError(
            f"cannot read {settings.database}; run the backup as the core's service user"
            " (`sudo -u omniconsole omniconsole backup FILE`)"
        )
    started = time.perf_counter()
    size = backup(settings.database, Path(args.file))
    print(f"backed up {settings.database} to {args.file}: {size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from omniconsole.store import Store

    settings = _settings(args)

    async def stats():
        store = await Store.open(settings.database, create=False)
        try:
            figures = await store.stats()
            channels = await store.channels()
            hooks = await store.webhook_states()
        finally:
            await store.close()
        print(f"database: {settings.database}")
        print(f"customers: {figures['customers']}")
        print("conversations: " + (", ".join(f"{k} {v}" for k, v in sorted(figures["conversations"].items())) or "none"))
        print("messages:")
        for name, kind, direction, count in figures["messages"]:
            print(f"  {name:<24} {kind:<10} {direction:<6} {count:>10}")
        print("outbound: " + (", ".join(f"{k} {v}" for k, v in sorted(figures["outbound"].items())) or "none"))
        print("channels:")
        for ch in channels:
            detail = f": {sanitize_text(ch.health_detail)}" if ch.health_detail else ""
            print(f"  {ch.name:<24} {ch.kind:<10} {ch.health}{detail}")
        from omniconsole.integrations.webhooks import describe_states

        for line in describe_states(settings, hooks):
            print(line)

    return _run(stats()) or 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from connectors import connector_class
    from connectors.base import ChannelContext, ConnectorError
    from omniconsole.i18n import _
    from omniconsole.store import Store

    settings = _settings(args)
    failures = 0

    async def doctor():
        nonlocal failures
        try:
            store = await Store.open(settings.database, create=False)
            await store.close()
            print("ok    " + _("database {path}").format(path=settings.database))
        except OmniError as exc:
            failures += 1
            print("FAIL  " + _("database: {error}").format(error=exc.translated()))
        if settings.webhooks:
            from omniconsole.integrations.webhooks import doctor_lines

            for ok, line in await doctor_lines(settings):
                failures += 0 if ok else 1
                print(("ok    " if ok else "FAIL  ") + line)
        if not settings.channels:
            print("      " + _("no channels configured (see `omniconsole init`)"))
        if settings.keymap:
            from omniconsole.tui.keys import known_binding_ids, unknown_keymap_ids

            for line in unknown_keymap_ids(settings.keymap, known_binding_ids()):
                print(f"warn  {line}")
        for number, channel in enumerate(settings.channels, start=1):
            context = ChannelContext(number, channel.name, channel.options, settings.data_dir, logging.getLogger("doctor"))
            try:
                connector = connector_class(channel.kind)(context)
                try:
                    async with asyncio.timeout(30):
                        detail = await connector.check()
                finally:
                    await connector.close()
                print(f"ok    {channel.name} ({channel.kind}): {detail}")
            except ConnectorError as exc:
                failures += 1
                print(f"FAIL  {channel.name} ({channel.kind}): {exc.reason}")
            except TimeoutError:
                failures += 1
                print(f"FAIL  {channel.name} ({channel.kind}): " + _("no answer within 30 s"))
            except Exception as exc:  # a doctor reports every channel, whatever breaks one
                failures += 1
                print(f"FAIL  {channel.name} ({channel.kind}): {type(exc).__name__}: {exc}")

    _run(doctor())
    return 1 if failures else 0


def cmd_operator(args: argparse.Namespace) -> int:
    from omniconsole.i18n import _
    from omniconsole.models import OperatorRole
    from omniconsole.store import ActionError

    settings = _settings(args)
    me = current_user()

    async def operator():
        store = await open_store(settings)
        try:
            operators = await store.operators()
            if args.operator_command == "list":
                from omniconsole.routing.service import team_lines

                routing = {line[0]: line for line in await team_lines(store, settings)}
                for op in operators:
                    extension = _("ext {number}").format(number=op.extension) if op.extension else ""
                    _login, status, load, _skills = routing.get(op.login, (op.login, "", "", ""))
                    print(f"{op.login:<16} {op.role:<6} {extension:<10} {status:<8} {load:<7} {op.display_name}".rstrip())
                if not operators:
                    print(_("no operators yet; `omniconsole operator add LOGIN --admin` registers the first admin"))
                return
            admins = {op.login for op in operators if op.role == OperatorRole.ADMIN}
            # The first admin may be registered by whoever can write the database; in a team
            # setup the core decides (root and its service user count as admins there).
            if admins and me not in admins and team_socket(settings) is None:
                raise UsageError(_("only an admin may manage operators, and {login} is not one").format(login=me))
            if args.operator_command == "add":
                role = OperatorRole.ADMIN if args.admin else OperatorRole.SUPERVISOR if args.supervisor else OperatorRole.AGENT
                extension = args.extension.strip() if args.extension is not None else None
                if extension is not None and not extension:
                    raise UsageError(_("--extension needs a number such as 101"))
                try:
                    await store.add_operator(args.login, args.name, role, actor=me, extension=extension)
                except ActionError as exc:
                    raise UsageError(str(exc)) from None
                print(
                    _("{login} is now an operator ({role})").format(login=args.login, role=role)
                    + (_(", extension {number}").format(number=extension) if extension else "")
                )
            elif args.operator_command == "set":
                from omniconsole.routing.service import set_operator

                if args.language is not None:
                    await set_language_of(store, args.login, args.language, actor=me)
                    if (args.status, args.capacity, args.skills, args.teams) == (None, None, None, None):
                        return
                split = lambda text: None if text is None else [p for p in text.split(",") if p.strip()]  # noqa: E731
                try:
                    line = await set_operator(
                        store,
                        settings,
                        args.login,
                        actor=me,
                        status=args.status,
                        capacity=args.capacity,
                        skills=split(args.skills),
                        teams=split(args.teams),
                    )
                except ActionError as exc:
                    raise UsageError(str(exc)) from None
                print(line)
            elif args.operator_command == "remove":
                if not await store.remove_operator(args.login, actor=me):
                    raise UsageError(_("{login} is not an operator").format(login=args.login))
                print(_("{login} is no longer an operator").format(login=args.login))
        finally:
            await store.close()

    return _run(operator()) or 0


async def set_language_of(store, login: str, language: str, *, actor: str) -> None:
    """`operator set LOGIN --language ru`: through `Store.set_operator_language` (an admin's;
    in a team setup the core checks the caller). Prints the result; UsageError in words."""
    from omniconsole.i18n import LanguageError, check_language
    from omniconsole.store import ActionError

    try:
        code = check_language(language) if language.strip() else None
        await store.set_operator_language(login, code, actor=actor)
    except (LanguageError, ActionError) as exc:
        raise UsageError(str(exc)) from None
    from omniconsole.i18n import _

    if code:
        print(_("{login}: language {code}").format(login=login, code=code))
    else:
        print(_("{login}: language from the config or the locale").format(login=login))


def cmd_import(args: argparse.Namespace) -> int:
    if args.import_command == "contacts":
        from omniconsole.core import contacts_import

        settings = _settings(args)
        _require_admin(settings.database, current_user(), "import contacts", service_work=team_socket(settings) is not None)
        return contacts_import.cmd_import_contacts(args, settings, current_user())
    from omniconsole.core import mail_import

    return mail_import.cmd_import(args)


def _require_admin(database: Path, me: str, what: str, socket_path: Path | None = None, *, service_work: bool = False) -> None:
    """Personal-data work is for admins (once any admin is registered). In a team setup the
    core checks it for each call instead (omniconsole/store/access.py)."""
    from omniconsole.models import OperatorRole
    from omniconsole.store import Store

    if socket_path is not None:
        return
    # In a team setup bulk work such as imports runs as the owner of the database (the core's
    # service user), who could write it anyway.
    try:
        if service_work and os.geteuid() == Path(database).stat().st_uid:
            return
    except OSError:
        pass

    async def admins():
        store = await Store.open(database)
        try:
            return {op.login for op in await store.operators() if op.role == OperatorRole.ADMIN}
        finally:
            await store.close()

    found = asyncio.run(admins())
    if found and me not in found:
        raise UsageError(f"only an admin may {what}, and {me} is not one")


async def find_customer(store, given: str, region: str) -> int:
    """The customer `given` names: an id (`123`, `#123`), or an e-mail address or phone number
    one of their identities holds (read as identities are stored, phones in `region`).
    Raises UsageError in words when it names nobody."""
    from omniconsole.core.identity import parse_typed_identity

    text = str(given).strip()
    if text.lstrip("#").isdigit() and len(text.lstrip("#")) < 9:  # ids are small; a long run of digits is a phone
        customer_id = int(text.lstrip("#"))
        if await store.customer_profile(customer_id) is None:
            raise UsageError(f"there is no customer {customer_id}")
        return await store.live_customer(customer_id)
    identity = parse_typed_identity(text, region)
    if identity is None:
        raise UsageError(f"{text!r} is neither a customer id nor an e-mail address or valid phone number")
    kind, address = identity
    owner = await store.identity_owner(kind.value, address)
    if owner is None:
        raise UsageError(f"no customer has the {'e-mail address' if kind.value == 'email' else 'phone number'} {address}")
    return owner


def cmd_export(args: argparse.Namespace) -> int:
    import json

    settings = _settings(args)
    me = current_user()
    _require_admin(settings.database, me, "export a customer's data", team_socket(settings))

    async def export():
        store = await open_store(settings, create=False)
        try:
            customer_id = await find_customer(store, args.customer_id, settings.default_region)
            return await store.export_customer(customer_id, me)
        finally:
            await store.close()

    data = _run(export())
    if data is None:
        return 130
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if args.output:
        out = Path(args.output)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        print(f"customer {data['customer']['id']}: {len(data['conversations'])} conversations written to {out}", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_rules(args: argparse.Namespace) -> int:
    from omniconsole.automation.commands import run

    return run(args, _settings(args))


def cmd_send(args: argparse.Namespace) -> int:
    from omniconsole.integrations.commands import run_send

    return run_send(args, _settings(args), current_user())


def cmd_send_status(args: argparse.Namespace) -> int:
    from omniconsole.integrations.commands import run_status

    return run_status(args, _settings(args))


def cmd_erase(args: argparse.Namespace) -> int:

    settings = _settings(args)
    me = current_user()
    _require_admin(settings.database, me, "erase a customer's data", team_socket(settings))

    async def erase(confirmed: bool):
        store = await open_store(settings, create=False)
        try:
            customer_id = await find_customer(store, args.customer_id, settings.default_region)
            profile = await store.customer_profile(customer_id)
            if profile is None:
                raise UsageError(f"there is no customer {customer_id}")
            if not confirmed:
                return profile
            if team_socket(settings) is not None:
                result = await store.erase_customer(customer_id, me)  # the core deletes the files
            else:
                result = await store.erase_customer(customer_id, me, attachments_dir=settings.attachments_dir)
            from connectors.webchat.visitors import forget_visitor

            result["files_deleted"] += sum(forget_visitor(settings.data_dir, v) for v in result.pop("web_visitors", []))
            return result
        finally:
            await store.close()

    if not args.yes:
        profile = _run(erase(False))
        if profile is None:
            return 130
        if not sys.stdin.isatty():
            raise UsageError("erasing cannot be undone; add --yes to confirm when not at a terminal")
        from omniconsole.models import sanitize_text

        who = " ".join(sanitize_text(profile.display_name).split()) or "(no name)"
        answer = input(
            f"Erase customer {profile.id} «{who}»: {len(profile.identities)} identities, {len(profile.conversations)} conversations?"
            " This cannot be undone. Type yes: "
        )
        if answer.strip().lower() != "yes":
            print("nothing erased")
            return 1
    result = _run(erase(True))
    if result is None:
        return 130
    print(
        f"erased customer {result['customer_id']}: {result['messages']} messages emptied, "
        f"{sum(result['identities'].values())} identities and {result['files_deleted']} files deleted; counts kept for statistics"
    )
    if not result.get("log_truncated", True):
        print(
            "note: another process was reading the database, so its write-ahead log still holds old pages;"
            " they are overwritten as work goes on (or run `omniconsole erase` again when the team is off)"
        )
    return 0


def cmd_kb(args: argparse.Namespace) -> int:
    from omniconsole.answers.commands import run

    return run(args, _settings(args), current_user())


def cmd_report(args: argparse.Namespace) -> int:
    from omniconsole.analytics.commands import run

    return run(args, _settings(args))


def cmd_bot(args: argparse.Namespace) -> int:
    from omniconsole.answers.bot_commands import run

    return run(args, _settings(args), current_user())


def cmd_bench(args: argparse.Namespace) -> int:
    from omniconsole import bench

    return bench.main(args)


if __name__ == "__main__":
    sys.exit(main())
