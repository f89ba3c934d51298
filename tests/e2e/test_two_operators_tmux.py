"""Two operators' windows on one demo database, the real binary under tmux: one assigns and
replies, the other sees the reply and the assignment appear."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")

BIN = str(Path(sys.executable).with_name("omniconsole"))


@pytest.mark.skipif(os.geteuid() != 0, reason="--as (acting as two operators) needs root")
def test_two_operators_see_each_other(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state"), TERM="xterm-256color")
    env.pop("OMNICONSOLE_CONFIG", None)
    demo = tmp_path / "demo"
    subprocess.run(
        [BIN, "demo", "--dir", str(demo), "--conversations", "150", "--seconds", "0.5", "--feed"],
        check=True,
        env=env,
        capture_output=True,
        timeout=120,
    )
    db = str(demo / "omniconsole.db")
    for login in ("alice", "bob"):
        subprocess.run([BIN, "operator", "add", login, "--db", db], check=True, env=env, capture_output=True)
    server = f"omni-e2e-{os.getpid()}"
    tmux_env = [f"{k}={v}" for k, v in env.items() if k in ("HOME", "XDG_STATE_HOME", "TERM", "PATH")]
    try:
        for login in ("alice", "bob"):
            command = f"env {' '.join(tmux_env)} {BIN} demo --dir {demo} --rate 0 --as {login}"
            subprocess.run(["tmux", "-L", server, "new-session", "-d", "-s", login, "-x", "120", "-y", "40", command], check=True)
        for login in ("alice", "bob"):
            wait_for_text_on(server, login, "3 All", login)
        # Both open the conversation at the top of All.
        for login in ("alice", "bob"):
            send(server, login, "3")
            time.sleep(0.3)
            send(server, login, "Enter")
        wait_for_text_on(server, "bob", "reply via")
        send(server, "alice", "a")
        time.sleep(0.3)
        send(server, "alice", "r")
        time.sleep(0.3)
        send(server, "alice", "-l", "Hello from alice")
        send(server, "alice", "Enter")
        started = time.monotonic()
        text = wait_for_text_on(server, "bob", "Hello from alice", "alice assigned to alice", "@alice", timeout=10)
        assert time.monotonic() - started < 10
        assert "alice is viewing" in text or "alice is typing" in text
        # The embedded core in one of the windows sends the reply (the demo channel).
        wait_for_text_on(server, "alice", "sent", timeout=15)
    finally:
        subprocess.run(["tmux", "-L", server, "kill-server"], capture_output=True)


def send(server: str, session: str, *keys: str) -> None:
    subprocess.run(["tmux", "-L", server, "send-keys", "-t", session, *keys], check=True)


def wait_for_text_on(server: str, session: str, *needles: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = subprocess.run(["tmux", "-L", server, "capture-pane", "-t", session, "-p"], capture_output=True, text=True).stdout
        if all(n in text for n in needles):
            return text
        time.sleep(0.1)
    raise AssertionError(f"{needles} never appeared on {session}'s screen:\n{text}")
