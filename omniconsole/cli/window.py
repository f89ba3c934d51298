"""The window, and the commands that run the core: `init`, `serve`, `demo` (and its live feed)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
import time
from pathlib import Path

from omniconsole import config as config_module
from omniconsole.cli.common import _run, _settings, current_user, team_socket
from omniconsole.cli.language import decimal
from omniconsole.errors import UsageError
from omniconsole.i18n import N_, _
from omniconsole.models import sanitize_text

log = logging.getLogger("omniconsole")


def resolve_operator(store_path: Path, requested: str | None, socket_path: Path | None = None):
    """The operator this window works as: the Unix user (root may name another with --as).
    In a team setup the core says who we are, from the socket's peer credentials (`--as` is
    refused there: the core acts for the uid that connects).
    An unknown user is refused in one line saying who can let them in."""
    from omniconsole.store import Store

    me = current_user()
    if requested and requested != me:
        if os.geteuid() != 0:
            raise UsageError(N_("only root may open the window as another operator (--as)"))
        if socket_path is not None:
            raise UsageError(N_("in a team setup the core knows operators by their Unix user; run the window as that user"))
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
        raise UsageError(N_("no operators are registered yet; run `omniconsole operator add {login} --admin` first"), login=me)
    raise UsageError(
        N_("{login} is not an operator here; an admin can add you with `omniconsole operator add {login}`"), login=me
    )


def open_window(settings, login: str | None, *, run_core: bool = True) -> int:
    """Open the operator's window on the configured database."""
    if not sys.stdout.isatty() or not sys.stdin.isatty():
        raise UsageError(N_("the window needs a terminal; use `omniconsole serve` for a headless core"))
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
        raise UsageError(N_("{path} already exists; use --force to overwrite it"), path=str(path))
    try:
        path.write_text(config_module.template(), encoding="utf-8")
    except OSError as exc:
        raise UsageError(N_("cannot write {path}: {error}"), path=str(path), error=exc.strerror) from None
    print(_("wrote {path}; edit it, then run `omniconsole serve --config {path}`").format(path=path))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from omniconsole.capabilities import hub_parts
    from omniconsole.core.hub import Hub
    from omniconsole.store import Store

    settings = _settings(args)
    if not settings.channels:
        log.warning(_("no channels are configured; the core will only send what operators queue (see `omniconsole init`)"))
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
                log.info(_("waiting for the core lease held by pid {pid} on {host}").format(pid=holder.pid, host=holder.host))
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
        print(_("demo config: {path} (other commands: `omniconsole --config {path} stats`)").format(path=demo_config))
    except OSError as exc:
        raise UsageError(
            N_("cannot write the demo's config {path}: {error}"), path=str(demo_config), error=exc.strerror
        ) from None
    if not args.db:
        # The demo runs what its config says (its SLA policy, rules and macros included).
        settings = config_module.load_settings(demo_config)

    async def demo():
        fresh = not settings.database.exists()
        store = await Store.open(settings.database)
        try:
            if fresh:
                started = time.perf_counter()
                print(
                    _("building a demo shop with {n} conversations in {path} ...").format(
                        n=args.conversations, path=settings.database
                    )
                )
                count = await build_demo_history(store, settings, conversations=args.conversations, admin=me)
                print(_("built {n} messages in {seconds} s").format(n=count, seconds=decimal(time.perf_counter() - started)))
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
                print(_("answers library: {n} articles from {path}").format(n=len(library.lines), path=DEMO_LIBRARY))
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
    print(_("live: customers write, the core stores and sends; Ctrl-C stops."), file=out, flush=True)
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
            return f"{stamp} <- [{badge}] {entry.author or _('customer')} (#{entry.conversation_id}): {text}"
        if event.kind == "message.sent":
            return f"{stamp} -> [{badge}] {entry.author} (#{entry.conversation_id}): {text}"
        return f"{stamp} !! [{badge}] #{entry.conversation_id} {event.kind.split('.')[1]}: {sanitize_text(entry.error)}"
    if event.kind == "channel.health":
        return f"{stamp} " + _("channel: {state}").format(state=event.payload)
    return None
