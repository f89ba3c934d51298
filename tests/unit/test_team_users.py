"""A team setup with real Unix users (issue #13): the core knows operators by their uid.

Users and a group are created and removed by the test; it needs root (skipped otherwise). The
core runs as root in this process (it owns the database, as the service user does on a server);
each operator is a forked child that drops to that user's uid and gids before it does anything,
so the kernel's peer credentials and file permissions are the real ones. (Forking keeps the
already-loaded interpreter: the venv's under /root is not executable by other users.)
"""

from __future__ import annotations

import asyncio
import grp
import json
import os
import pickle
import pwd
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from omniconsole.core.control import ControlServer
from omniconsole.core.remote import RemoteStore
from omniconsole.models import OperatorRole
from omniconsole.store import Store, access

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating Unix users and changing uid needs root")


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


class Team:
    """A group, four users (admin, supervisor, agent in the group; an outsider not), a database
    owned by root in a private directory, and the core's socket open to the group."""

    def __init__(self, base: Path) -> None:
        tag = secrets.token_hex(3)
        self.group = f"oc13g{tag}"
        self.users = {role: f"oc13{role[:3]}{tag}" for role in ("admin", "supervisor", "agent", "outsider")}
        _run("groupadd", self.group)
        for role, name in self.users.items():
            extra = [] if role == "outsider" else ["--groups", self.group]
            _run("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", *extra, name)
        self.base = base
        self.data = base / "data"
        self.data.mkdir(mode=0o700)
        self.database = self.data / "omniconsole.db"
        run_dir = base / "run"
        run_dir.mkdir()
        os.chmod(base, 0o755)
        os.chown(run_dir, 0, grp.getgrnam(self.group).gr_gid)
        os.chmod(run_dir, 0o750)
        self.socket = run_dir / "core.sock"

    def remove(self) -> None:
        for name in self.users.values():
            subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", self.group], capture_output=True)

    def as_user(self, role: str, fn, env: dict | None = None):
        """Run `fn()` in a child process that is the Unix user of `role`; returns its value
        (or raises RuntimeError with the child's error)."""
        user = pwd.getpwnam(self.users[role])
        read, write = os.pipe()
        # Fork only while the core's thread is held and its database thread is idle: a fork
        # while that thread is inside SQLite leaves the child with SQLite's mutex held, and the
        # child's own sqlite3.connect() then waited forever (a test hung 300 s under load).
        held, release = threading.Event(), threading.Event()
        self.loop.call_soon_threadsafe(lambda: (held.set(), release.wait(10)))
        held.wait(5)
        time.sleep(0.05)  # a query already handed to the database thread ends
        try:
            pid = os.fork()
        finally:
            release.set()
        if pid == 0:  # the child: become the user, do one thing, report, exit
            try:
                os.close(read)
                groups = [g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem]
                os.setgroups(groups)
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
                os.environ.update(env or {})
                outcome = ("ok", fn())
            except BaseException as exc:  # reported to the parent, never raised in a fork
                outcome = ("error", f"{type(exc).__name__}: {exc}")
            try:
                os.write(write, pickle.dumps(outcome))
            finally:
                os._exit(0)
        os.close(write)
        chunks = []
        while chunk := os.read(read, 65536):
            chunks.append(chunk)
        os.close(read)
        os.waitpid(pid, 0)
        kind, value = pickle.loads(b"".join(chunks))
        if kind == "error":
            raise RuntimeError(value)
        return value

    def remote(self, *calls):
        """In the child: run (method, args, kwargs) calls through the socket; each result is
        ("ok", value) or (error class name, message)."""
        socket_path = self.socket

        def work():
            async def go():
                results = []
                async with await RemoteStore.connect(socket_path) as remote:
                    for method, args, kwargs in calls:
                        try:
                            results.append(("ok", await remote.call(method, *args, **kwargs)))
                        except Exception as exc:
                            results.append((type(exc).__name__, str(exc)))
                return results

            return asyncio.run(go())

        return work


@pytest.fixture
def team():
    # Not under pytest's tmp root: that is private to root, and the users must reach the socket.
    base = Path(tempfile.mkdtemp(prefix="omniconsole-team-"))
    team = Team(base)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict = {}

    async def core():
        store = await Store.open(team.database)
        await store.add_operator(team.users["admin"], "Ada", OperatorRole.ADMIN, actor="root")
        await store.add_operator(team.users["supervisor"], "Sue", OperatorRole.SUPERVISOR, actor="root")
        await store.add_operator(team.users["agent"], "Al", OperatorRole.AGENT, actor="root")
        server = ControlServer(store, team.socket, group=team.group, attachments_dir=team.data / "attachments")
        await server.start()
        holder.update(store=store, server=server, stop=asyncio.Event())
        started.set()
        await holder["stop"].wait()
        await server.close()
        await store.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(core(),), daemon=True)
    thread.start()
    try:
        assert started.wait(10), "the core did not start"
        team.loop, team.store = loop, holder["store"]
        yield team
    finally:
        if "stop" in holder:
            loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(10)
        team.remove()
        shutil.rmtree(base, ignore_errors=True)


def _in_core(team, coro):
    return asyncio.run_coroutine_threadsafe(coro, team.loop).result(10)


async def _customer(store: Store, data: Path, address: str) -> int:
    from omniconsole.core.ingest import Ingestor
    from tests.conftest import inbound

    channel = await store.ensure_channel("telegram", "tg")
    result = await Ingestor(store, data).ingest(channel, "telegram", [inbound(f"m-{address}", "hi", address=address)], None)
    conversation = await store.conversation(sorted(result.conversations)[0])
    return conversation.customer_id


def test_an_agent_posing_as_an_admin_by_logname_is_still_the_agent(team):
    admin = team.users["admin"]
    env = {"LOGNAME": admin, "USER": admin}

    def who():
        from omniconsole.cli import current_user

        return current_user()

    assert team.as_user("agent", who, env) == team.users["agent"]
    results = team.as_user(
        "agent", team.remote(("whoami", (), {}), ("add_operator", (team.users["agent"], "", OperatorRole.ADMIN), {})), env
    )
    assert results[0][1]["login"] == team.users["agent"] and results[0][1]["role"] == "agent"
    assert results[1][0] == "RoleRefused" and "only an admin" in results[1][1]
    roles = {op.login: op.role for op in _in_core(team, team.store.operators())}
    assert roles[team.users["agent"]] == "agent"


def test_an_agent_cannot_open_the_database_for_writing(team):
    database = team.database

    def write():
        conn = sqlite3.connect(database, timeout=1)
        conn.execute("UPDATE operators SET role = 'admin'")
        conn.commit()

    with pytest.raises(RuntimeError, match="unable to open database|Permission|readonly|OperationalError"):
        team.as_user("agent", write)
    assert {op.role for op in _in_core(team, team.store.operators())} == {"admin", "supervisor", "agent"}


def test_a_non_member_can_neither_connect_nor_read_the_files(team):
    socket_path, database = team.socket, team.database

    def connect():
        async def go():
            await RemoteStore.connect(socket_path)

        asyncio.run(go())

    with pytest.raises(RuntimeError, match="CoreUnavailable"):
        team.as_user("outsider", connect)
    with pytest.raises(RuntimeError, match="PermissionError"):
        team.as_user("outsider", lambda: database.read_bytes()[:16])
    # An operator of the group reaches the core but not the files either.
    with pytest.raises(RuntimeError, match="PermissionError"):
        team.as_user("agent", lambda: database.read_bytes()[:16])


def test_an_admins_export_and_erase_are_recorded_with_the_admins_name(team):
    customer = _in_core(team, _customer(team.store, team.data, "5551"))
    admin = team.users["admin"]
    results = team.as_user(
        "admin",
        team.remote(
            ("export_customer", (customer, "somebody"), {}),
            ("erase_customer", (customer, "somebody"), {}),
        ),
        {"LOGNAME": "root", "USER": "root"},
    )
    assert results[0][0] == "ok" and results[0][1]["customer"]["id"] == customer
    assert results[1][0] == "ok", results[1]
    events = _in_core(team, team.store.events_since(0, limit=10_000))
    audit = [(e.kind, e.actor) for e in events if e.kind in ("customer.exported", "customer.erased")]
    assert audit == [("customer.exported", admin), ("customer.erased", admin)]


def _probe_args(method: str) -> tuple:
    """Arguments that pass binding for each write method (ids that do not exist: the role is
    checked before anything is read, and a refused call must never reach the store)."""
    params = [
        p
        for name, p in __import__("inspect").signature(getattr(Store, method)).parameters.items()
        if name != "self" and p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return tuple(_DUMMY.get(p.name, 999_999) for p in params)


_DUMMY = {
    "body": "x",
    "author": "x",
    "actor": "x",
    "operator": "x",
    "text": "x",
    "reason": "x",
    "kind": "telegram",
    "address": "x",
    "login": "nobody-here",
    "key": "x",
    "language": "en",
    "records": [],
    "shown": [],
    "insertion_ids": [],
    "channel_ids": [],
    "updates": [],
    "labels": [],
    "status": "open",
    "assignee": None,
    "me": "x",
    "host": "x",
    "name": "x",
    "detail": "",
    "channel_kind": "telegram",
    "cursor": None,
    "external_id": "x",
    "state": "sent",
    "thread_key": None,
    "record": None,
    "conversation_id": None,
}


def test_every_write_method_through_the_socket_is_allowed_or_refused_as_declared(team):
    writes = sorted(m for m, level in access.ROLES.items() if level != access.READ and m not in ("open", "close"))
    calls = [(m, _probe_args(m), {}) for m in writes]
    for role in ("agent", "supervisor", "admin"):
        results = team.as_user(role, team.remote(*calls))
        for method, (kind, message) in zip(writes, results):
            level = access.ROLES[method]
            allowed = level != access.CORE and access.LEVELS[level] <= access.LEVELS[role]
            if allowed:
                assert kind != "RoleRefused", f"{role} was refused {method}: {message}"
            else:
                assert kind == "RoleRefused", f"{role} was allowed {method} ({level}): {kind} {message}"
    # The supervisor reached the library, the agent did not: nothing the agent sent was written
    # (but their own window's language, `set_own_language`, which is theirs to choose).
    events = _in_core(team, team.store.events_since(0, limit=10_000))
    own_language = json.dumps({"login": team.users["agent"], "language": "en"})
    assert not [
        e
        for e in events
        if e.actor == team.users["agent"]
        and e.kind.startswith(("operator.", "customer.erased", "customer.exported"))
        and e.payload != own_language
    ]
