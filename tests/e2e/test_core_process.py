"""The core as a real process: SIGKILL in the middle of a burst, lease takeover, and operator
processes writing while it ingests."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from connectors.demo import SIMULATED_KINDS
from omniconsole.config import load_settings
from omniconsole.core.hub import Hub, HubTiming
from omniconsole.core.ingest import Ingestor
from omniconsole.models import InboxView
from omniconsole.store import Store
from tests.conftest import inbound, subprocess_env

BURST = 5000
REPLIES = 500
NAMES = {k.value: f"{k.value} (demo)" for k in SIMULATED_KINDS}


def write_config(tmp_path: Path, *, limit: int = BURST, batch: int = 250, send_delay: float = 0.0) -> Path:
    tables = []
    for kind, name in NAMES.items():
        tables.append(
            textwrap.dedent(f"""
            [[channels]]
            kind = "demo"
            name = "{name}"
            simulate = "{kind}"
            rate = 0
            limit = {limit}
            batch = {batch}
            send_delay = {send_delay}
            failure_rate = 0.0
            answer_rate = 0.0
            sent_log_file = "{tmp_path / "sent.log"}"
        """)
        )
    path = tmp_path / "omniconsole.toml"
    path.write_text(
        f'[store]\ndatabase = "{tmp_path / "core.db"}"\ndata_dir = "{tmp_path / "data"}"\n' + "".join(tables), encoding="utf-8"
    )
    return path


def start_core(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "omniconsole.cli", "serve", "--config", str(config)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=subprocess_env(),
    )


def count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # the core is still creating the schema
            return 0
        raise
    finally:
        conn.close()


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def queue_replies(config: Path, replies: int) -> None:
    """50 customers wrote once on the Telegram demo channel; operators answer each 10 times."""
    settings = load_settings(config)
    store = await Store.open(settings.database)
    try:
        channel = await store.ensure_channel("telegram", NAMES["telegram"])
        await Ingestor(store, settings.data_dir).ingest(
            channel, "telegram", [inbound(f"setup-{n}", "hello", address=str(500_000 + n)) for n in range(50)], None
        )
        conversations = [r.conversation_id for r in await store.inbox_page(InboxView.ALL)]
        for n in range(replies):
            await store.queue_reply(conversations[n % len(conversations)], f"reply {n}", "alice")
    finally:
        await store.close()


@pytest.mark.slow
def test_sigkill_in_a_burst_loses_and_doubles_nothing(tmp_path):
    config = write_config(tmp_path, send_delay=0.002)
    db = tmp_path / "core.db"
    asyncio.run(queue_replies(config, REPLIES))
    log = tmp_path / "core.log"
    core = start_core(config, log)
    inbound_sql = "SELECT count(*) FROM messages WHERE direction = 'in' AND external_id LIKE 'demo-%'"
    try:
        wait_for(
            lambda: db.exists() and count(db, inbound_sql) >= 1500 and (tmp_path / "sent.log").exists(), 60, "the burst to start"
        )
        core.send_signal(signal.SIGKILL)
        core.wait(10)
    finally:
        if core.poll() is None:
            core.kill()
    at_kill = count(db, inbound_sql)
    assert at_kill < BURST, "the burst finished before the kill; the test proved nothing"
    core = start_core(config, log)
    try:
        wait_for(
            lambda: (
                count(db, inbound_sql) >= BURST
                and count(db, "SELECT count(*) FROM messages WHERE state IN ('queued', 'sending')") == 0
            ),
            120,
            "the restarted core to finish",
        )
        time.sleep(0.5)  # anything doubled would arrive now
    finally:
        core.send_signal(signal.SIGTERM)
        core.wait(20)
    assert count(db, inbound_sql) == BURST
    assert (
        count(db, "SELECT count(DISTINCT external_id) FROM messages WHERE direction = 'in' AND external_id LIKE 'demo-%'")
        == BURST
    )
    sent_ids = {int(x) for x in (tmp_path / "sent.log").read_text().split()}
    queued_ids = {r for (r,) in sqlite3.connect(db).execute("SELECT id FROM messages WHERE direction = 'out'")}
    assert len(queued_ids) == REPLIES and queued_ids <= sent_ids  # every reply sent at least once
    # Sent, or further on: the demo channel reports its replies delivered (and read) afterwards.
    assert count(db, "SELECT count(*) FROM messages WHERE direction = 'out' AND state NOT IN ('sent', 'delivered', 'read')") == 0
    assert core.returncode == 0, log.read_text()[-2000:]
    assert "Traceback" not in log.read_text()


@pytest.mark.slow
async def test_a_killed_core_is_replaced_within_ten_seconds(tmp_path):
    config = write_config(tmp_path, limit=0)
    log = tmp_path / "core.log"
    core = start_core(config, log)
    settings = load_settings(config)
    try:
        wait_for(
            lambda: settings.database.exists() and count(settings.database, "SELECT count(*) FROM leases") == 1,
            30,
            "the first core",
        )
        store = await Store.open(settings.database)
        hub = Hub(settings, store)  # default timing: the production figures
        waiting = asyncio.create_task(hub.run())
        await asyncio.sleep(1.5)
        assert not hub.holding_lease.is_set()
        core.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await asyncio.wait_for(hub.holding_lease.wait(), 10)
        took_over = time.monotonic() - killed_at
        assert took_over < 10
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await store.close()
    finally:
        if core.poll() is None:
            core.kill()
        core.wait(10)


async def test_an_expired_lease_of_another_host_is_taken_over(tmp_path, store):
    conn = sqlite3.connect(store.path)
    now = time.time()
    conn.execute("INSERT INTO leases VALUES ('core', 'elsewhere:1:x', 1, 'other-host', ?, ?, ?)", (now, now, now + 1.0))
    conn.commit()
    conn.close()
    settings = load_settings(write_config(tmp_path, limit=0))
    hub = Hub(settings, store, timing=HubTiming(lease_poll=0.1), connector_factory=lambda c, ctx: _Idle(ctx))
    task = asyncio.create_task(hub.run())
    try:
        await asyncio.sleep(0.5)
        assert not hub.holding_lease.is_set()  # alive elsewhere until it expires
        await asyncio.wait_for(hub.holding_lease.wait(), 3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class _Idle:
    def __init__(self, ctx):
        pass

    async def run(self, sink):
        await asyncio.Event().wait()

    async def close(self):
        pass


WRITER = textwrap.dedent("""
    import asyncio, random, sys
    from omniconsole.store import Store
    from omniconsole.models import InboxView

    async def main(db, name, actions):
        store = await Store.open(db)
        await store.add_operator(name)
        rng = random.Random(name)
        done = 0
        while done < actions:
            rows = await store.inbox_page(InboxView.ALL, limit=50)
            if not rows:
                await asyncio.sleep(0.01)
                continue
            conversation = rng.choice(rows).conversation_id
            step = done % 3
            if step == 0:
                await store.add_note(conversation, f"note {done} by {name}", name)
            elif step == 1:
                await store.assign(conversation, name, name)
            else:
                await store.set_priority(conversation, done % 3, name)
            done += 1
        await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
""")


@pytest.mark.slow
def test_four_operator_processes_write_while_the_core_ingests(tmp_path):
    long_burst = 2_000_000  # more than the core can ingest while the writers run: it never runs out
    config = write_config(tmp_path, limit=long_burst, batch=50, send_delay=0.0)
    db = tmp_path / "core.db"
    log = tmp_path / "core.log"
    core = start_core(config, log)
    actions = 150
    try:
        wait_for(lambda: db.exists() and count(db, "SELECT count(*) FROM conversations") > 10, 60, "the core to ingest")
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(db), f"op{n}", str(actions)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=subprocess_env(),
            )
            for n in range(4)
        ]
        outputs = [w.communicate(timeout=120) for w in writers]
        ingesting = count(db, "SELECT count(*) FROM messages WHERE direction = 'in'") < long_burst
    finally:
        core.send_signal(signal.SIGTERM)
        core.wait(20)
    for writer, (_out, err) in zip(writers, outputs):
        assert writer.returncode == 0, err.decode()[-2000:]
        assert b"locked" not in err
    assert b"locked" not in log.read_bytes()
    notes = count(db, "SELECT count(*) FROM messages WHERE direction = 'note'")
    assert notes == 4 * len(range(0, actions, 3))
    # The writers finished while the core was still ingesting (else the test proved nothing).
    assert ingesting
