"""The role table (omniconsole/store/access.py), the core socket's frames, and calls through the
core's socket (omniconsole/core/control.py) as the user running the tests."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from omniconsole.core import frames
from omniconsole.core.control import ControlServer
from omniconsole.core.remote import CoreUnavailable, RemoteStore
from omniconsole.models import ConversationStatus, InboxView, OperatorRole
from omniconsole.store import Store, access
from omniconsole.store.rows import InboxCursor, Operator


def test_every_store_method_declares_the_role_it_needs():
    public = sorted(name for name, value in inspect.getmembers(Store) if not name.startswith("_") and callable(value))
    missing = [name for name in public if name not in access.ROLES]
    assert not missing, (
        "Store methods without a declared role: add each to ROLES in omniconsole/store/access.py, e.g. "
        + ", ".join(f'"{name}": READ (or AGENT, SUPERVISOR, ADMIN, CORE)' for name in missing)
    )
    stale = sorted(set(access.ROLES) - set(public))
    assert not stale, f"ROLES in omniconsole/store/access.py names methods Store no longer has: {stale}"


def test_levels_include_the_ones_below():
    access.check("inbox_page", "agent", "ann")
    access.check("kb_save", "supervisor", "sue")
    access.check("erase_customer", "admin", "root")
    for method, role in (
        ("kb_save", "agent"),
        ("export_customer", "supervisor"),
        ("add_operator", "supervisor"),
        ("ingest", "admin"),
        ("inbox_page", ""),
        ("not_declared", "admin"),
    ):
        with pytest.raises(access.RoleRefused):
            access.check(method, role, "x")


def test_rows_enums_and_keyed_maps_round_trip():
    values = [
        Operator("ann", "Ann", OperatorRole.SUPERVISOR, ("sales",), 3, "101"),
        {InboxView.ALL: 3, InboxView.MINE: 0},
        {("key", "en"): [1, 2.5, None]},
        InboxCursor(1.5, 7) if "InboxCursor" in dir() else None,
        {1, 2},
        (1, "a"),
        Path("/tmp/x"),
        b"\x00\xff",
        "[bold]\x1b]52;c;x\x07",
    ]
    for value in values:
        assert frames.decode(frames.encode(value)) == value
    assert type(frames.decode(frames.encode(ConversationStatus.OPEN))) is ConversationStatus


def test_frames_refuse_classes_outside_the_allowed_modules():
    with pytest.raises(frames.FrameError):
        frames.decode({"$dc": "os.system", "f": {}})
    with pytest.raises(frames.FrameError):
        frames.decode({"$dc": "rows.__class__", "f": {}})
    with pytest.raises(frames.FrameError):
        frames.encode(object())


async def test_calls_through_the_socket_run_as_the_peer_and_record_the_real_actor(store, tmp_path):
    async with ControlServer(store, tmp_path / "core.sock", group=None):
        remote = await RemoteStore.connect(tmp_path / "core.sock")
        try:
            who = await remote.whoami()
            assert who["role"] == "admin"  # the user running the tests owns the database here
            await remote.add_operator("ann", "Ann", OperatorRole.AGENT, actor="somebody-else")
            operators = await remote.operators()
            assert operators == await store.operators() and isinstance(operators[0], Operator)
            events = await store.events_since(0)
            assert events[-1].kind == "operator.added" and events[-1].actor == who["login"]
            assert await remote.inbox_counts() == await store.inbox_counts()
            with pytest.raises(access.RoleRefused, match="core's own work"):
                await remote.ingest(1, "telegram", [], None)
            with pytest.raises(access.RoleRefused):
                await remote.call("erase_customer", 1, "x", attachments_dir="/etc")
        finally:
            await remote.close()


async def test_pushes_reach_a_subscribed_client_when_anyone_writes(store, tmp_path):
    async with ControlServer(store, tmp_path / "core.sock", group=None):
        remote = await RemoteStore.connect(tmp_path / "core.sock")
        try:
            await remote.subscribe()
            remote.changed.clear()
            await store.add_operator("bob", "Bob", OperatorRole.AGENT, actor="root")  # not through the socket
            import asyncio

            await asyncio.wait_for(remote.changed.wait(), 2)
        finally:
            await remote.close()


async def test_a_stopped_core_is_said_in_words_and_the_next_call_reconnects(store, tmp_path):
    path = tmp_path / "core.sock"
    with pytest.raises(CoreUnavailable, match="core is not running"):
        await RemoteStore.connect(path)
    remote = RemoteStore(path)
    async with ControlServer(store, path, group=None):
        assert await remote.operators() == []
    with pytest.raises(CoreUnavailable):
        await remote.operators()
    async with ControlServer(store, path, group=None):
        assert await remote.operators() == []
    await remote.close()


def test_backup_is_a_consistent_copy(tmp_path):
    import asyncio
    import sqlite3

    from omniconsole.store.database import backup

    async def build():
        s = await Store.open(tmp_path / "live.db")
        await s.add_operator("ann", "Ann", OperatorRole.ADMIN, actor="root")
        await s.close()

    asyncio.run(build())
    size = backup(tmp_path / "live.db", tmp_path / "copy.db")
    assert size == (tmp_path / "copy.db").stat().st_size
    assert (tmp_path / "copy.db").stat().st_mode & 0o777 == 0o600
    conn = sqlite3.connect(tmp_path / "copy.db")
    assert conn.execute("SELECT login FROM operators").fetchall() == [("ann",)]
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_the_audit_trail_cannot_be_deleted_or_rewritten_only_emptied_by_an_erasure(store):
    import sqlite3

    from omniconsole.store.database import connect

    await store.add_operator("ann", "Ann", OperatorRole.ADMIN, actor="root")
    conn = connect(store.path)
    try:
        for statement in (
            "DELETE FROM events WHERE kind = 'operator.added'",
            "UPDATE events SET actor = 'someone' WHERE kind = 'operator.added'",
            "UPDATE events SET keep = 'live' WHERE kind = 'operator.added'",
            "UPDATE events SET payload = '{}' WHERE kind = 'operator.added'",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="audit"):
                conn.execute(statement)
        conn.execute("UPDATE events SET payload = NULL WHERE kind = 'operator.added'")  # what an erasure does
    finally:
        conn.close()
    event = (await store.events_since(0))[-1]
    assert (event.kind, event.actor, event.payload) == ("operator.added", "root", None)


async def test_a_bad_frame_ends_only_that_connection(store, tmp_path):
    import asyncio
    import struct

    async with ControlServer(store, tmp_path / "core.sock", group=None):
        good = await RemoteStore.connect(tmp_path / "core.sock")
        for junk in (
            struct.pack(">I", frames.MAX_REQUEST + 1),
            struct.pack(">I", 3) + b"[1]",
            struct.pack(">I", 2) + b"\xff\xfe",
        ):
            reader, writer = await asyncio.open_unix_connection(str(tmp_path / "core.sock"))
            writer.write(junk)
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 2) == b""  # the core hung up on it
            writer.close()
        assert await good.operators() == []
        with pytest.raises(access.RoleRefused, match="no declared role"):
            await good.call("__init__")
        await good.close()
