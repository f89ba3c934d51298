"""The core lease: which process runs the connectors of this database.

A lease row names its holder and expires unless its heartbeat renews it. A holder on this
host whose process is gone is stale at once; one elsewhere (or a hung one) when it expires.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass

CORE_LEASE = "core"


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds a lease: the holder's id, pid and host; heartbeat and expiry in epoch seconds."""

    holder: str
    pid: int
    host: str
    heartbeat_at: float
    expires_at: float


def holder(conn: sqlite3.Connection, name: str = CORE_LEASE) -> LeaseHolder | None:
    """Who holds the lease now (even if it has expired), or None."""
    row = conn.execute("SELECT holder, pid, host, heartbeat_at, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
    return LeaseHolder(*row) if row else None


def is_live(lease: LeaseHolder | None, host: str, now: float | None = None) -> bool:
    """Whether a lease still counts: not expired, and its process alive if it is on this host."""
    if lease is None:
        return False
    now = now or time.time()
    if lease.expires_at <= now:
        return False
    if lease.host == host and not pid_alive(lease.pid):
        return False
    return True


def try_acquire(conn: sqlite3.Connection, me: str, pid: int, host: str, ttl: float, name: str = CORE_LEASE) -> bool:
    """Take the lease if it is free, stale or already ours (inside a write transaction)."""
    now = time.time()
    current = holder(conn, name)
    if current is not None and current.holder != me and is_live(current, host, now):
        return False
    conn.execute(
        "INSERT INTO leases (name, holder, pid, host, acquired_at, heartbeat_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, host = excluded.host,"
        " acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at",
        (name, me, pid, host, now, now, now + ttl),
    )
    return True


def renew(conn: sqlite3.Connection, me: str, ttl: float, name: str = CORE_LEASE) -> bool:
    """Extend our lease; False if another process has taken it over."""
    now = time.time()
    return bool(
        conn.execute(
            "UPDATE leases SET heartbeat_at = ?, expires_at = ? WHERE name = ? AND holder = ?", (now, now + ttl, name, me)
        ).rowcount
    )


def release(conn: sqlite3.Connection, me: str, name: str = CORE_LEASE) -> None:
    """Give the lease up so the next core can start at once."""
    conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, me))


def pid_alive(pid: int) -> bool:
    """Whether process `pid` on this host still runs (another user's counts; a zombie does not):
    the lease, unfinished attachment files and operators' windows ask it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user (another operator's embedded core)
    # A zombie (killed, not yet reaped by its parent) is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True
