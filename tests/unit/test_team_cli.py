"""The command line of a team setup: identity from the uid, `[team]` in the config, `backup`,
and operator commands that go through the core's socket."""

from __future__ import annotations

import asyncio
import os
import pwd
import sqlite3
import subprocess
import sys
import threading

import pytest

from omniconsole.config import load_settings
from omniconsole.errors import UsageError
from tests.conftest import subprocess_env


def omniconsole(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "omniconsole.cli", *args], capture_output=True, text=True, timeout=120, env=env or subprocess_env()
    )


def test_the_login_comes_from_the_uid_not_from_logname_or_user(monkeypatch):
    from omniconsole.cli import current_user

    monkeypatch.setenv("LOGNAME", "the-admin")
    monkeypatch.setenv("USER", "the-admin")
    assert current_user() == pwd.getpwuid(os.getuid()).pw_name


def test_team_table_in_the_config(tmp_path):
    config = tmp_path / "team.toml"
    config.write_text('[team]\nsocket = "run/core.sock"\n', encoding="utf-8")
    settings = load_settings(config)
    assert settings.team.socket == (tmp_path / "run" / "core.sock").resolve() and settings.team.group == "omniconsole"
    config.write_text('[team]\nsockets = "x"\n', encoding="utf-8")
    with pytest.raises(UsageError, match="unknown key 'sockets'"):
        load_settings(config)
    config.write_text("[team]\nsocket = 5\n", encoding="utf-8")
    with pytest.raises(UsageError, match="socket must be a path"):
        load_settings(config)


def test_backup_while_another_process_writes(tmp_path):
    db = tmp_path / "live.db"
    assert omniconsole("--db", str(db), "operator", "add", "ann", "--admin").returncode == 0
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a write in progress does not stop the copy, nor leak into it
    writer.execute("DELETE FROM operators")
    result = omniconsole("--db", str(db), "backup", str(tmp_path / "copy.db"))
    writer.execute("ROLLBACK")
    writer.close()
    assert result.returncode == 0, result.stderr
    assert "backed up" in result.stdout
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("SELECT login, role FROM operators").fetchall() == [("ann", "admin")]
    bad = omniconsole("--db", str(tmp_path / "missing.db"), "backup", str(tmp_path / "x.db"))
    assert bad.returncode == 2 and "no database" in bad.stderr and "Traceback" not in bad.stderr


def test_operator_commands_go_through_the_core_and_a_stopped_core_is_said(tmp_path):
    from omniconsole.core.control import ControlServer
    from omniconsole.store import Store

    sock = tmp_path / "core.sock"
    config = tmp_path / "team.toml"
    config.write_text(f'[team]\nsocket = "{sock}"\n', encoding="utf-8")
    down = omniconsole("--config", str(config), "operator", "add", "bob")
    assert down.returncode == 2 and "core is not running" in down.stderr and "Traceback" not in down.stderr

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder = {}

    async def core():
        store = await Store.open(tmp_path / "core.db")
        async with ControlServer(store, sock, group=None):
            holder["stop"] = asyncio.Event()
            ready.set()
            await holder["stop"].wait()
        await store.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(core(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(10)
        added = omniconsole("--config", str(config), "operator", "add", "bob", "--supervisor")
        assert added.returncode == 0, added.stderr
        listed = omniconsole("--config", str(config), "operator", "list")
        assert "bob" in listed.stdout and "supervisor" in listed.stdout
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(10)
    conn = sqlite3.connect(tmp_path / "core.db")
    me = pwd.getpwuid(os.getuid()).pw_name
    assert conn.execute("SELECT actor FROM events WHERE kind = 'operator.added'").fetchall() == [(me,)]
