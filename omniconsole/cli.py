"""`omniconsole` and its sub-commands.

Every failure a person can cause or fix (a bad config, an unreadable database, a missing
permission) ends in one line saying what to do, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
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
    parser.add_argument("--config", metavar="FILE", default=default, help="config file (default: $OMNICONSOLE_CONFIG or ./omniconsole.toml)")
    parser.add_argument("--db", metavar="FILE", default=default, help="database file (overrides the config)")
    parser.add_argument("-v", "--verbose", action="store_true", default=False if top else argparse.SUPPRESS, help="log more")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omniconsole",
        description="A terminal-native omnichannel contact centre: every channel, one customer, one window.",
    )
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    parser.add_argument("--as", dest="as_operator", metavar="LOGIN", default=None,
                        help="open the window as this operator (root only: for support and tests)")

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
    p.add_argument("--as", dest="as_operator", metavar="LOGIN", default=argparse.SUPPRESS,
                   help="open the window as this operator (root only)")

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
    q.add_argument("--admin", action="store_true", help="may manage operators")
    q.add_argument("--extension", default=None, metavar="NUMBER",
                   help="the operator's phone extension: a call ringing there pops the caller's card in their window")
    q = op.add_parser("list", help="list operators")
    _common(q)
    q = op.add_parser("remove", help="remove an operator (their conversations become unassigned)")
    _common(q)
    q.add_argument("login")

    p = sub.add_parser("import", help="bring an existing mailbox (Maildir or mbox) into the history")
    imports = p.add_subparsers(dest="import_command", metavar="FORMAT", required=True)
    for name, what in (("maildir", "a Maildir folder (cur/, new/ and Maildir++ subfolders)"), ("mbox", "an mbox file")):
        q = imports.add_parser(name, help=f"import {what}")
        _common(q)
        q.add_argument("path", metavar="PATH", help=what)
        q.add_argument("--channel", default="import", metavar="NAME",
                       help="e-mail channel to import into (default: import); give the live mailbox's name to share its duplicate check")
        q.add_argument("--own-address", action="append", metavar="ADDRESS",
                       help="our own address: mail from it is skipped (configured mailbox addresses are known already); repeatable")
        q.add_argument("--workers", type=int, default=None, metavar="N", help="parser processes (default: one per core; 0: none)")
        q.add_argument("--open-days", type=float, default=14, metavar="DAYS",
                       help="conversations whose last mail is older than this arrive resolved (default: 14; 0: all stay open)")
        q.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    q = imports.add_parser("contacts", help="import customers from a CRM export (CSV)")
    _common(q)
    q.add_argument("path", metavar="FILE.csv", help="CSV with a header row; comma, semicolon or tab separated; UTF-8 or Windows-1251")
    q.add_argument("--map", action="append", metavar="FIELD=COLUMN",
                   help="which column holds a field (name, email, phone, telegram, vk, whatsapp, note, labels);"
                        " known headers are found without it; other columns become attributes; repeatable")
    q.add_argument("--dry-run", action="store_true", help="only say what each row would do (new, matched, conflicting, invalid)")
    q.add_argument("--json", action="store_true", help="print the counts as one JSON object on the last line")

    p = sub.add_parser("export", help="write everything held about a customer as JSON (admins only)")
    exports = p.add_subparsers(dest="export_command", metavar="WHAT", required=True)
    q = exports.add_parser("customer", help="one customer: identities, conversations, messages, attributes")
    _common(q)
    q.add_argument("customer_id", type=int, metavar="ID")
    q.add_argument("-o", "--output", metavar="FILE", help="write to FILE (mode 0600) instead of standard output")

    p = sub.add_parser("erase", help="delete a customer's personal data, keeping anonymous counts (admins only)")
    erases = p.add_subparsers(dest="erase_command", metavar="WHAT", required=True)
    q = erases.add_parser("customer", help="one customer (and the customers merged into them)")
    _common(q)
    q.add_argument("customer_id", type=int, metavar="ID")
    q.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    from omniconsole.answers.commands import add_parser as add_kb_parser
    from omniconsole.integrations.commands import add_parsers as add_send_parsers

    add_kb_parser(sub, _common)
    add_send_parsers(sub, _common)

    p = sub.add_parser("bench", help="measure performance (see README for the budgets)")
    bench = p.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    q = bench.add_parser("ingest", help="messages per second through the whole ingest path")
    _common(q)
    q.add_argument("--messages", type=int, default=100_000)
    q.add_argument("--batch", type=int, default=1000, help="messages per transaction (default: 1000)")
    q.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    q.add_argument("--keep", metavar="FILE", help="keep the benchmark database at FILE (for bench query)")
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
    q.add_argument("--ingest-messages", type=int, default=20_000, metavar="N",
                   help="messages for the stemming-at-ingest measurement (default: 20000; 0: skip)")
    q.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    q = bench.add_parser("tui", help="window start, keystroke-to-repaint and memory on a big database")
    _common(q)
    q.add_argument("--keys", type=int, default=300, help="keystrokes to time (default: 300)")
    q.add_argument("--runs", type=int, default=3, help="fresh processes per figure (default: 3)")
    q.add_argument("--visible", type=int, default=20, metavar="N",
                   help="messages another process stores per run, timed until this window shows them (default: 20;"
                        " they stay in the database, on a channel named 'bench visibility'; 0: skip)")
    q.add_argument("--big-mail", type=int, default=0, metavar="MB",
                   help="time the keys with an e-mail of MB megabytes in the open conversation (it stays in the database)")
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
    try:
        if command == "help":
            return cmd_window(args)
        handler = globals()[f"cmd_{command.replace('-', '_')}"]
        return handler(args) or 0
    except OmniError as exc:
        print(f"omniconsole: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _settings(args: argparse.Namespace):
    return config_module.load_settings(args.config, args.db)


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
    """The operator's login: the Unix user running the window."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


# --- commands -------------------------------------------------------------------------------


def resolve_operator(store_path: Path, requested: str | None):
    """The operator this window works as: the Unix user (root may name another with --as).
    An unknown user is refused in one line saying who can let them in."""
    from omniconsole.store import Store

    me = current_user()
    if requested and requested != me:
        if os.geteuid() != 0:
            raise UsageError("only root may open the window as another operator (--as)")
        me = requested

    async def lookup():
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
    operator = resolve_operator(settings.database, login)
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
    from omniconsole.core.hub import Hub
    from omniconsole.store import Store

    settings = _settings(args)
    if not settings.channels:
        log.warning("no channels are configured; the core will only send what operators queue (see `omniconsole init`)")

    async def serve():
        store = await Store.open(settings.database)
        try:
            from omniconsole.integrations.webhooks import core_services

            hub = Hub(settings, store, services=core_services(settings, store))
            holder = await store.lease_holder()
            if holder is not None:
                log.info("waiting for the core lease held by pid %s on %s", holder.pid, holder.host)
            await hub.run()
        finally:
            await store.close()

    return _run(serve()) or 0


def cmd_demo(args: argparse.Namespace) -> int:
    from omniconsole.core.demo import build_demo_history, demo_settings
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
            # The demo shop's answers library (shipped in the package), synced on every start.
            from omniconsole.answers.library import DEMO_LIBRARY, import_folder

            library = await import_folder(store, DEMO_LIBRARY, "demo")
            if fresh or library.counts["new"] or library.counts["updated"]:
                print(f"answers library: {len(library.lines)} articles from {DEMO_LIBRARY}")
            if not args.feed:
                return "window"
            from omniconsole.integrations.webhooks import core_services

            hub = Hub(settings, store, services=core_services(settings, store))
            # Without the lease (another demo runs the core) this window only follows.
            core = asyncio.create_task(hub.run(wait=False))
            feed = asyncio.create_task(live_feed(store))
            try:
                await asyncio.wait_for(asyncio.shield(feed), args.seconds)
            except asyncio.TimeoutError:
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
    from omniconsole.store import Store

    settings = _settings(args)
    failures = 0

    async def doctor():
        nonlocal failures
        try:
            store = await Store.open(settings.database, create=False)
            await store.close()
            print(f"ok    database {settings.database}")
        except OmniError as exc:
            failures += 1
            print(f"FAIL  database: {exc}")
        if settings.webhooks:
            from omniconsole.integrations.webhooks import doctor_lines

            for ok, line in await doctor_lines(settings):
                failures += 0 if ok else 1
                print(("ok    " if ok else "FAIL  ") + line)
        if not settings.channels:
            print("      no channels configured (see `omniconsole init`)")
        for number, channel in enumerate(settings.channels, start=1):
            context = ChannelContext(number, channel.name, channel.options, settings.data_dir, logging.getLogger("doctor"))
            try:
                connector = connector_class(channel.kind)(context)
                try:
                    detail = await asyncio.wait_for(connector.check(), 30)
                finally:
                    await connector.close()
                print(f"ok    {channel.name} ({channel.kind}): {detail}")
            except ConnectorError as exc:
                failures += 1
                print(f"FAIL  {channel.name} ({channel.kind}): {exc.reason}")
            except asyncio.TimeoutError:
                failures += 1
                print(f"FAIL  {channel.name} ({channel.kind}): no answer within 30 s")
            except Exception as exc:  # a doctor reports every channel, whatever breaks one
                failures += 1
                print(f"FAIL  {channel.name} ({channel.kind}): {type(exc).__name__}: {exc}")

    _run(doctor())
    return 1 if failures else 0


def cmd_operator(args: argparse.Namespace) -> int:
    from omniconsole.models import OperatorRole
    from omniconsole.store import ActionError, Store

    settings = _settings(args)
    me = current_user()

    async def operator():
        store = await Store.open(settings.database)
        try:
            operators = await store.operators()
            if args.operator_command == "list":
                for op in operators:
                    extension = f"ext {op.extension}" if op.extension else ""
                    print(f"{op.login:<16} {op.role:<6} {extension:<10} {op.display_name}".rstrip())
                if not operators:
                    print("no operators yet; `omniconsole operator add LOGIN --admin` registers the first admin")
                return
            admins = {op.login for op in operators if op.role == OperatorRole.ADMIN}
            # The first admin may be registered by whoever can write the database.
            if admins and me not in admins:
                raise UsageError(f"only an admin may manage operators, and {me} is not one")
            if args.operator_command == "add":
                role = OperatorRole.ADMIN if args.admin else OperatorRole.AGENT
                extension = args.extension.strip() if args.extension is not None else None
                if extension is not None and not extension:
                    raise UsageError("--extension needs a number such as 101")
                try:
                    await store.add_operator(args.login, args.name, role, actor=me, extension=extension)
                except ActionError as exc:
                    raise UsageError(str(exc)) from None
                print(f"{args.login} is now an operator ({role})" + (f", extension {extension}" if extension else ""))
            elif args.operator_command == "remove":
                if not await store.remove_operator(args.login, actor=me):
                    raise UsageError(f"{args.login} is not an operator")
                print(f"{args.login} is no longer an operator")
        finally:
            await store.close()

    return _run(operator()) or 0


def cmd_import(args: argparse.Namespace) -> int:
    if args.import_command == "contacts":
        from omniconsole.core import contacts_import

        settings = _settings(args)
        _require_admin(settings.database, current_user(), "import contacts")
        return contacts_import.cmd_import_contacts(args, settings, current_user())
    from omniconsole.core import mail_import

    return mail_import.cmd_import(args)


def _require_admin(database: Path, me: str, what: str) -> None:
    """Personal-data work is for admins (once any admin is registered)."""
    from omniconsole.models import OperatorRole
    from omniconsole.store import Store

    async def admins():
        store = await Store.open(database)
        try:
            return {op.login for op in await store.operators() if op.role == OperatorRole.ADMIN}
        finally:
            await store.close()

    found = asyncio.run(admins())
    if found and me not in found:
        raise UsageError(f"only an admin may {what}, and {me} is not one")


def cmd_export(args: argparse.Namespace) -> int:
    import json

    from omniconsole.store import Store

    settings = _settings(args)
    me = current_user()
    _require_admin(settings.database, me, "export a customer's data")

    async def export():
        store = await Store.open(settings.database, create=False)
        try:
            return await store.export_customer(args.customer_id, me)
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


def cmd_send(args: argparse.Namespace) -> int:
    from omniconsole.integrations.commands import run_send

    return run_send(args, _settings(args), current_user())


def cmd_send_status(args: argparse.Namespace) -> int:
    from omniconsole.integrations.commands import run_status

    return run_status(args, _settings(args))


def cmd_erase(args: argparse.Namespace) -> int:
    from omniconsole.store import Store

    settings = _settings(args)
    me = current_user()
    _require_admin(settings.database, me, "erase a customer's data")

    async def erase(confirmed: bool):
        store = await Store.open(settings.database, create=False)
        try:
            profile = await store.customer_profile(args.customer_id)
            if profile is None:
                raise UsageError(f"there is no customer {args.customer_id}")
            if not confirmed:
                return profile
            result = await store.erase_customer(args.customer_id, me, attachments_dir=settings.attachments_dir)
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
        print("note: another process was reading the database, so its write-ahead log still holds old pages;"
              " they are overwritten as work goes on (or run `omniconsole erase` again when the team is off)")
    return 0


def cmd_kb(args: argparse.Namespace) -> int:
    from omniconsole.answers.commands import run

    return run(args, _settings(args), current_user())


def cmd_bench(args: argparse.Namespace) -> int:
    from omniconsole import bench

    return bench.main(args)


if __name__ == "__main__":
    sys.exit(main())
