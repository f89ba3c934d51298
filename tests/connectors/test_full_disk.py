"""A full disk, for real: the data directory is a tiny tmpfs (mounted here, so the test needs
root and skips with the reason otherwise). A full disk once left `.part` attachment files
behind and wrote a traceback per refused request. Now: leftovers are removed at start, the
condition is logged once with the free space, clients get 503 with Retry-After and retry
later, and once there is room the same request is stored."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.models import InboxView
from omniconsole.store import Store
from tests.rig import free_port, running_core

TOKEN = "crm-token-5f1c2e"
TMPFS_KB = 512


@contextlib.contextmanager
def tiny_disk(path: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of `size_kb` mounted at `path` while the block runs."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root (and mount); a full disk cannot be simulated otherwise")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def message(key: str, size: int) -> dict:
    return {
        "idempotency_key": key,
        "customer": {"email": "ivan@shop.example"},
        "text": "the invoice",
        "attachments": [
            {
                "filename": "invoice.pdf",
                "mime_type": "application/pdf",
                "content_base64": base64.b64encode(os.urandom(size)).decode(),
            }
        ],
    }


def part_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.part"))


async def test_a_full_disk_is_503_with_retry_after_logged_once_and_leaves_no_part_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with tiny_disk(tmp_path / "data", TMPFS_KB) as data:
        incoming = data / "attachments" / ".incoming"
        incoming.mkdir(parents=True)
        # What a core killed while writing left behind (pid 4194305 is past Linux's pid_max).
        (incoming / "4194305-0a1b2c3d.part").write_bytes(b"x" * 1024)
        port = free_port()
        settings = Settings(
            database=tmp_path / "core.db",
            data_dir=data,
            channels=[ChannelSettings("api", "CRM", {"token": TOKEN})],
            listener=ListenerSettings(port=port),
        )
        store = await Store.open(settings.database)
        try:
            async with running_core(settings, store, until_up="all"):
                assert part_files(data) == []  # removed at start
                url = f"http://127.0.0.1:{port}/hooks/crm/messages"
                headers = {"Authorization": f"Bearer {TOKEN}"}
                async with httpx.AsyncClient(timeout=30) as client:
                    refused = [await client.post(url, json=message(f"big-{n}", 700 * 1024), headers=headers) for n in range(5)]
                    assert [r.status_code for r in refused] == [503] * 5, refused[0].text
                    assert all(int(r.headers["retry-after"]) > 0 for r in refused)
                    assert part_files(data) == []  # nothing half-written is left
                    assert await store.inbox_page(InboxView.ALL) == []

                    # Room enough for a small file: the sender's retry is stored.
                    taken = await client.post(url, json=message("small-1", 20 * 1024), headers=headers)
                    assert taken.status_code == 202, taken.text
            full = [r.getMessage() for r in caplog.records if "is full" in r.getMessage() and r.name.startswith("omniconsole")]
            assert len(full) == 1, full
            assert str(data / "attachments") in full[0] and "KB free, 700.0 KB of files to store" in full[0]
            assert any("room on the disk again" in r.getMessage() for r in caplog.records)
            assert "Traceback" not in caplog.text
            assert not any(r.exc_info for r in caplog.records if r.name.startswith(("omniconsole", "connectors")))
        finally:
            await store.close()


async def test_a_database_on_a_full_disk_is_503_too_and_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Text alone needs the database to grow: SQLite's "database or disk is full" is the same
    condition, said once, answered 503 with Retry-After."""
    caplog.set_level(logging.INFO)
    with tiny_disk(tmp_path / "disk", 4096) as disk:
        port = free_port()
        settings = Settings(
            database=disk / "core.db",
            data_dir=disk / "data",
            channels=[ChannelSettings("api", "CRM", {"token": TOKEN})],
            listener=ListenerSettings(port=port),
        )
        store = await Store.open(settings.database)
        filler = disk / "filler"
        try:
            async with running_core(settings, store, until_up="all"):
                with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):  # take every byte left
                    while True:
                        f.write(b"\0" * 4096)
                url = f"http://127.0.0.1:{port}/hooks/crm/messages"
                headers = {"Authorization": f"Bearer {TOKEN}"}
                async with httpx.AsyncClient(timeout=30) as client:
                    answers = {}
                    for n in range(16):  # distinct long texts, so the pages must grow (free pages and the WAL hold the first few)
                        body = {
                            "idempotency_key": f"text-{n}",
                            "customer": {"email": f"c{n}@shop.example"},
                            "text": os.urandom(20_000).hex(),
                        }
                        answers[n] = (body, await client.post(url, json=body, headers=headers))
                    refused = [(body, a) for body, a in answers.values() if a.status_code != 202]
                    assert len(refused) >= 6 and all(a.status_code == 503 for _, a in refused), [a.text for _, a in refused]
                    assert all(a.headers["retry-after"] == "60" for _, a in refused)
                    filler.unlink()
                    again = await client.post(url, json=refused[0][0], headers=headers)  # the sender's retry
                    assert again.status_code == 202, again.text
            full = [r.getMessage() for r in caplog.records if "is full (" in r.getMessage()]
            assert len(full) == 1 and str(disk / "core.db") in full[0], full
            assert "Traceback" not in caplog.text
        finally:
            await store.close()
