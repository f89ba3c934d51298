"""`omniconsole bench tui`: how fast the window starts and answers keys on a big database,
next to an empty Textual app (the floor).

Each figure comes from a fresh child process (imports included, as an operator would wait):
the child runs the app headless and reports when the inbox is interactive, then presses keys
(moving through the inbox, opening conversations) and times each until the screen is repainted,
and reports its peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _probe_empty(started: float) -> None:
    from textual.app import App

    class Empty(App):
        def on_mount(self) -> None:
            self.call_after_refresh(self.done)

        def done(self) -> None:
            self.ready_at = time.time()
            self.exit()

    app = Empty()
    app.run(headless=True, size=(160, 48))
    print(json.dumps({"start_s": app.ready_at - started, "rss_mb": _peak_rss_mb()}))


def _write_messages(db: str, count: int) -> None:
    """The other side of the visibility figure: store customer messages one by one, as the
    core does (each its own transaction), a quarter of a second apart."""
    import random
    import uuid

    from omniconsole.store import history
    from omniconsole.store.actions import ensure_channel
    from omniconsole.store.database import connect, write_transaction

    conn = connect(db)
    channel_id = write_transaction(conn, ensure_channel, "telegram", "bench visibility")
    run = uuid.uuid4().hex[:8]
    for n in range(count):
        record = history.InboundRecord(
            f"bench-{run}-{n}",
            "telegram",
            str(9_000_000 + random.randrange(1000)),
            f"bench message {n}",
            time.time(),
            sender_name="Bench Visitor",
        )
        write_transaction(conn, history.ingest_batch, channel_id, "telegram", [record], None)
        time.sleep(0.2 + random.random() * 0.1)
    conn.close()


BIG_MAIL_ADDRESS = "bench-big-mail@example.com"


def _write_big_mail(db: str, megabytes: int) -> None:
    """A customer's e-mail thread of three messages whose middle one has a `megabytes` MB body
    (log lines, as a pasted log or a forwarded archive is), stored as the core stores mail.
    Kept in the database; a second run with the same size finds it there."""
    from omniconsole.store import history
    from omniconsole.store.actions import ensure_channel
    from omniconsole.store.database import connect, write_transaction

    line = "2026-11-30 09:00:00 INFO order 4711: payment gateway answered 200 in 153 ms, retry 0 of 3\n"
    body = line * (megabytes * 1024 * 1024 // len(line))
    conn = connect(db)
    channel_id = write_transaction(conn, ensure_channel, "email", "bench big mail")
    now = time.time()
    records = [
        history.InboundRecord(
            f"<bench-big-{megabytes}-{n}@example.com>",
            "email",
            BIG_MAIL_ADDRESS,
            text,
            now - 60 + n,
            sender_name="Big Mail",
            subject="Logs of order 4711",
            thread_key="<bench-big@example.com>",
        )
        for n, text in enumerate(("The log follows.", body, "Did you get it?"))
    ]
    for record in records:
        write_transaction(conn, history.ingest_batch, channel_id, "email", [record], None)
    conn.close()


def _serve_core(db: str, socket_path: str) -> None:
    """The core of a team setup for `--socket`: the store behind its Unix socket (no channels),
    until terminated."""
    import signal

    from omniconsole.core.control import ControlServer
    from omniconsole.store import Store

    async def serve() -> None:
        store = await Store.open(db)
        server = ControlServer(store, Path(socket_path))
        await server.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print("ready", flush=True)
        await stop.wait()
        await server.close()
        await store.close()

    asyncio.run(serve())


def _probe_window(
    started: float, db: str, keys: int, visible: int = 0, big_mail: int = 0, socket_path: str = "", language: str = ""
) -> None:
    import gc

    gc.disable()  # as `omniconsole window` starts (cli.open_window); the window turns it back on
    from omniconsole.config import Settings, TeamSettings
    from omniconsole.store import Operator
    from omniconsole.tui.app import OmniApp
    from omniconsole.tui.screens.main import MainScreen

    path = Path(db)
    settings = Settings(database=path, data_dir=path.parent, team=TeamSettings(socket=Path(socket_path) if socket_path else None))
    result: dict = {}

    class Probe(OmniApp):
        def on_mount(self) -> None:
            # Textual calls the Mount handler of every class in the MRO, OmniApp's too, after
            # this one: calling `super().on_mount()` here opened a second main screen (and the
            # figures timed two). Start timing once OmniApp's handler has pushed the screen.
            self.call_later(lambda: self.run_worker(self.wait_ready()))

        async def wait_ready(self) -> None:
            await self.main.inbox_ready.wait()  # the first page is loaded and drawn next
            self.call_after_refresh(self.ready)

        def ready(self) -> None:
            result["start_s"] = time.time() - started
            # One window, one main screen: the figures are of what an operator runs.
            result["main_screens"] = sum(1 for screen in self.screen_stack if isinstance(screen, MainScreen))
            self.run_worker(self.press_keys())

        async def open_big_mail(self) -> None:
            """Open the big mail's conversation and put the inbox cursor on it."""
            from omniconsole.models import InboxView

            screen = self.main
            found = await screen.store.search(BIG_MAIL_ADDRESS, limit=1)
            conversation = found.customers and (await screen.store.customer_profile(found.customers[0].customer_id))
            if not conversation or not conversation.conversations:
                raise RuntimeError("the big mail is not in the database")
            big = conversation.conversations[0].id
            await screen.inbox.load(InboxView.ALL, keep=big)
            await screen.open_conversation(big)

        async def press_keys(self) -> None:
            from textual import events

            samples = []
            screen = self.main
            if big_mail:
                await self.open_big_mail()
            for n in range(keys):
                if big_mail:
                    # With the big mail's conversation open: previewing the next conversation and
                    # back (the big one is read and drawn again), opening it, moving between its
                    # messages (over the big one), and back to the inbox.
                    key = ["j", "k", "enter", "k", "k", "j", "j", "escape", "j", "k"][n % 10]
                else:
                    # Move down and up through the inbox; every tenth key opens the conversation
                    # (focus goes to its timeline) and the next one goes back to the inbox.
                    key = {8: "enter", 9: "escape"}.get(n % 10, "k" if n % 30 > 24 else "j")
                cursor = screen.inbox.cursor
                entry = screen.timeline.cursor
                in_timeline = self.focused is screen.timeline
                began = time.perf_counter()
                # The same path as a key from the terminal: driver -> app -> bindings.
                event = events.Key(key, key if len(key) == 1 else None)
                event.set_sender(self)
                self._driver.send_message(event)
                # Wait until the key took effect: j/k moved the highlight (the conversation
                # under it loads once the cursor rests, see MainScreen.PREVIEW_DELAY), Enter
                # opened the conversation with its timeline and customer drawn, Escape went back.
                for _ in range(4000):
                    await asyncio.sleep(0.0005)
                    selected = screen.inbox.selected
                    if key == "enter":
                        if self.focused is screen.timeline and selected and screen.opened == selected.conversation_id:
                            break
                    elif key == "escape":
                        if self.focused is screen.inbox:
                            break
                    elif in_timeline:
                        if screen.timeline.cursor != entry:
                            break
                    elif screen.inbox.cursor != cursor:
                        break
                done = asyncio.get_running_loop().create_future()
                self.call_after_refresh(lambda: done.done() or done.set_result(None))  # noqa: B023
                await done
                samples.append(time.perf_counter() - began)
            ordered = sorted(samples)
            result["key_p50_ms"] = statistics.median(ordered) * 1000
            result["key_p95_ms"] = ordered[int(len(ordered) * 0.95) - 1] * 1000
            result["conversations"] = screen.inbox.count
            if visible:
                await self.measure_visibility(visible)
            self.exit()

        async def measure_visibility(self, count: int) -> None:
            """Another process (as the core would) stores `count` customer messages, one at a
            time; each is timed from its commit to this window's repaint showing it."""
            screen = self.main
            store = screen.store
            events_since = store.events_since
            latencies: dict[int, float] = {}  # event id -> commit to repaint

            async def drawn(seen: list) -> None:
                # The window's follow-up (reloading the inbox) ends, then the next repaint.
                while screen.follower.busy:
                    await asyncio.sleep(0.001)
                self.call_after_refresh(lambda: [latencies.setdefault(e.id, time.time() - e.at) for e in seen])

            async def spying(event_id: int, limit: int = 1000):
                events = await events_since(event_id, limit)
                seen = [e for e in events if e.kind == "message.received"]
                if seen:
                    asyncio.get_running_loop().create_task(drawn(seen))
                return events

            store.events_since = spying
            writer = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "omniconsole.bench.tui",
                "writer",
                "0",
                db,
                str(count),
                stdout=asyncio.subprocess.DEVNULL,
            )
            await writer.wait()
            for _ in range(200):
                if len(latencies) >= count:
                    break
                await asyncio.sleep(0.01)
            ordered = sorted(latencies.values())
            result["visible_p50_ms"] = statistics.median(ordered) * 1000 if ordered else None
            result["visible_p95_ms"] = ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000 if ordered else None
            result["visible_seen"] = len(ordered)

    # The operator's language (omniconsole/i18n.py): "" leaves the choice to the locale, as a window does.
    app = Probe(settings, Operator("bench", "Bench", "agent", language=language or None), run_core=False)
    app.run(headless=True, size=(160, 48))
    result["rss_mb"] = _peak_rss_mb()
    result["language"] = app.language
    print(json.dumps(result))


def _child(kind: str, *extra: str) -> dict:
    """Run one probe in a fresh interpreter; its figures as a dict."""
    started = time.time()
    out = subprocess.run(
        [sys.executable, "-m", "omniconsole.bench.tui", kind, repr(started), *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "the probe failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _byte_compile() -> None:
    """Compile our packages to bytecode first, as installing them does.

    Textual comes compiled from its wheel; our sources, in a development checkout (an
    editable install, or with PYTHONDONTWRITEBYTECODE set), would otherwise be compiled again
    at every start: ~0.1 s that an installed window never pays, charged to one side only."""
    import compileall

    import connectors
    import omniconsole

    for package in (omniconsole, connectors):
        compileall.compile_dir(list(package.__path__)[0], quiet=2)


def main(args: argparse.Namespace) -> int:
    from omniconsole.errors import UsageError

    db = getattr(args, "db", None)
    if not db:
        raise UsageError("bench tui needs --db: build one with `omniconsole bench ingest --messages 1000000 --keep FILE`")
    if not Path(db).exists():
        raise UsageError(f"database {db} does not exist")
    runs = max(1, args.runs)
    language = getattr(args, "language", None) or ""
    if language:
        from omniconsole.i18n import LanguageError, check_language

        try:
            language = check_language(language)
        except LanguageError as exc:
            raise UsageError(str(exc)) from None
    _byte_compile()
    empty = [_child("empty") for _ in range(runs)]
    big_mail = max(0, getattr(args, "big_mail", 0) or 0)
    if big_mail:
        _write_big_mail(str(db), big_mail)
    core = None
    socket_path = ""
    if getattr(args, "socket", False):
        # A team setup: the window reads and writes through a core over its Unix socket.
        import tempfile

        socket_path = str(Path(tempfile.mkdtemp(prefix="omniconsole-bench-")) / "core.sock")
        core = subprocess.Popen(
            [sys.executable, "-m", "omniconsole.bench.tui", "core", "0", str(db), socket_path], stdout=subprocess.PIPE, text=True
        )
        if core.stdout.readline().strip() != "ready":
            core.kill()
            raise UsageError("the benchmark's core did not start")
    try:
        window = [
            _child("window", str(db), str(args.keys), str(args.visible), str(big_mail), socket_path, language)
            for _ in range(runs)
        ]
    finally:
        if core is not None:
            core.terminate()
            core.wait(10)
    result = {
        "conversations": window[0]["conversations"],
        "language": window[0]["language"],
        "start_s": round(statistics.median(w["start_s"] for w in window), 3),
        "empty_app_start_s": round(statistics.median(e["start_s"] for e in empty), 3),
        "key_p50_ms": round(statistics.median(w["key_p50_ms"] for w in window), 2),
        "key_p95_ms": round(max(w["key_p95_ms"] for w in window), 2),
        "rss_mb": round(max(w["rss_mb"] for w in window), 1),
        "main_screens": max(w["main_screens"] for w in window),
        "empty_app_rss_mb": round(max(e["rss_mb"] for e in empty), 1),
    }
    seen = [w for w in window if w.get("visible_p95_ms") is not None]
    if seen:
        result["visible_p50_ms"] = round(statistics.median(w["visible_p50_ms"] for w in seen), 1)
        result["visible_p95_ms"] = round(max(w["visible_p95_ms"] for w in seen), 1)
    result["start_ratio"] = round(result["start_s"] / result["empty_app_start_s"], 2)
    if big_mail:
        result["big_mail_mb"] = big_mail
    if socket_path:
        result["through_socket"] = True
    print(
        f"database: {db} ({result['conversations']:,} conversations in All)"
        + ("; the window talks to a core over its Unix socket" if socket_path else "")
        + (f"; keys timed with a {big_mail} MB mail in the open conversation" if big_mail else "")
        + f"; the window in {result['language']}"
    )
    print(
        f"start to interactive inbox: {result['start_s']:.3f} s   empty Textual app: {result['empty_app_start_s']:.3f} s"
        f"   ratio {result['start_ratio']}"
    )
    print(f"keystroke to repaint:       p50 {result['key_p50_ms']:.1f} ms   p95 {result['key_p95_ms']:.1f} ms")
    print(f"memory (peak RSS):          {result['rss_mb']:.1f} MB   empty app {result['empty_app_rss_mb']:.1f} MB")
    if "visible_p95_ms" in result:
        print(
            f"another process's message visible: p50 {result['visible_p50_ms']:.0f} ms   p95 {result['visible_p95_ms']:.0f} ms"
            f"   ({args.visible} messages a run, from commit to repaint)"
        )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    kind, started = sys.argv[1], float(sys.argv[2])
    if kind == "empty":
        _probe_empty(started)
    elif kind == "writer":
        _write_messages(sys.argv[3], int(sys.argv[4]))
    elif kind == "core":
        _serve_core(sys.argv[3], sys.argv[4])
    else:
        _probe_window(
            started,
            sys.argv[3],
            int(sys.argv[4]),
            int(sys.argv[5]) if len(sys.argv) > 5 else 0,
            int(sys.argv[6]) if len(sys.argv) > 6 else 0,
            sys.argv[7] if len(sys.argv) > 7 else "",
            sys.argv[8] if len(sys.argv) > 8 else "",
        )
