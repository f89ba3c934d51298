"""The command line as a person meets it: one-line errors, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import subprocess_env


def omniconsole(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "omniconsole.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env or subprocess_env(),
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("omniconsole: error:")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


def test_help_everywhere():
    for args in (
        ["--help"],
        ["serve", "--help"],
        ["demo", "--help"],
        ["stats", "--help"],
        ["bench", "ingest", "--help"],
        ["operator", "add", "--help"],
        ["doctor", "--help"],
        ["import", "maildir", "--help"],
        ["bench", "mail", "--help"],
        ["bench", "tui", "--help"],
        ["import", "contacts", "--help"],
        ["export", "customer", "--help"],
        ["erase", "customer", "--help"],
    ):
        result = omniconsole(*args)
        assert result.returncode == 0 and "usage:" in result.stdout


def test_init_writes_a_template_that_loads(tmp_path):
    path = tmp_path / "omniconsole.toml"
    assert omniconsole("init", str(path)).returncode == 0
    text = path.read_text()
    for kind in ("demo", "telegram", "email", "vk", "whatsapp", "webchat", "api", "telephony"):
        assert f'kind = "{kind}"' in text
    assert omniconsole("init", str(path)).returncode == 2  # no silent overwrite
    result = omniconsole("--config", str(path), "doctor", cwd=tmp_path)
    assert "no channels configured" in result.stdout


def test_bad_toml_is_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[store\ndatabase = ")
    assert_one_line_error(omniconsole("stats", "--config", str(path)), "not valid TOML")


def test_unknown_channel_kind_and_missing_secret(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[channels]]\nkind = "fax"\n')
    assert_one_line_error(omniconsole("serve", "--config", str(path)), "kind must be one of")
    path.write_text('[[channels]]\nkind = "telegram"\ntoken_env = "NO_SUCH_VARIABLE_X"\n')
    assert_one_line_error(omniconsole("serve", "--config", str(path)), "NO_SUCH_VARIABLE_X", "not set")


def test_secret_file_must_be_private(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("123:abc\n")
    secret.chmod(0o644)
    path = tmp_path / "c.toml"
    path.write_text(f'[[channels]]\nkind = "telegram"\ntoken_file = "{secret}"\n')
    assert_one_line_error(omniconsole("serve", "--config", str(path)), "chmod 600")
    secret.chmod(0o600)
    from omniconsole.config import load_settings

    assert load_settings(path).channels[0].options["token"] == "123:abc"


def test_missing_and_unreadable_database(tmp_path):
    assert_one_line_error(omniconsole("stats", "--db", str(tmp_path / "nope.db")), "does not exist")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"garbage" * 500)
    assert_one_line_error(omniconsole("stats", "--db", str(junk)), "not an omniconsole database")


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root ignores file permissions")
def test_read_only_database_directory(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    assert_one_line_error(omniconsole("serve", "--db", str(folder / "x.db")), "x.db")


def test_demo_builds_history_then_stats_and_operators(tmp_path):
    result = omniconsole("demo", "--dir", str(tmp_path / "demo"), "--conversations", "200", "--seconds", "3", "--rate", "5")
    assert result.returncode == 0, result.stderr
    assert "built" in result.stdout and "<- [" in result.stdout  # history, then live traffic
    db = str(tmp_path / "demo" / "omniconsole.db")
    stats = omniconsole("stats", "--db", db)
    assert stats.returncode == 0 and "resolved" in stats.stdout and "Telegram (demo)" in stats.stdout
    listing = omniconsole("operator", "list", "--db", db)
    assert "anna" in listing.stdout
    added = omniconsole("operator", "add", "carol", "--db", db)
    assert added.returncode == 0, added.stderr
    assert "carol" in omniconsole("operator", "list", "--db", db).stdout
    assert omniconsole("operator", "remove", "carol", "--db", db).returncode == 0
    assert_one_line_error(omniconsole("operator", "remove", "carol", "--db", db), "not an operator")


def test_bench_ingest_and_query_print_json(tmp_path):
    db = tmp_path / "bench.db"
    result = omniconsole("bench", "ingest", "--messages", "3000", "--json", "--keep", str(db))
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(figures) >= {"ingest_msgs_per_s", "ceiling_rows_per_s", "ratio"} and figures["ingest_msgs_per_s"] > 0
    result = omniconsole("bench", "query", "--db", str(db), "--rounds", "20", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(figures) >= {"inbox_p95_ms", "timeline_p95_ms", "profile_p95_ms", "search_p95_ms"}


def test_window_without_a_terminal_says_so(tmp_path):
    assert_one_line_error(omniconsole("--db", str(tmp_path / "x.db")), "needs a terminal")


def test_unknown_user_is_refused_in_one_line(tmp_path):
    import os
    import pty

    db = tmp_path / "x.db"
    assert omniconsole("operator", "add", "somebody-else", "--admin", "--db", str(db)).returncode == 0
    # A real terminal, so the refusal comes from the operator check, not the tty check.
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(sys.executable, [sys.executable, "-m", "omniconsole.cli", "--db", str(db)], subprocess_env())
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 2, text
    assert "is not an operator here" in text and "omniconsole operator add" in text and "Traceback" not in text


def test_output_into_a_closed_pipe_ends_without_a_traceback(tmp_path):
    """`omniconsole report conversations --format csv | head` closes the pipe early."""
    import asyncio
    import os

    from omniconsole.store import Store

    db = tmp_path / "pipe.db"

    async def make() -> None:
        await (await Store.open(db)).close()

    asyncio.run(make())
    read, write = os.pipe()
    os.close(read)  # the reader is gone before we write a line
    try:
        result = subprocess.run(
            [sys.executable, "-m", "omniconsole.cli", "report", "--db", str(db)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env=subprocess_env(),
        )
    finally:
        os.close(write)
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr
    assert result.returncode == 1
