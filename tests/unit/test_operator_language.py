"""The operator's language setting (issue #24): stored on the operator (`operators.language`),
set by an admin (`omniconsole operator set LOGIN --language ru`) or by the operator for
themselves, through the core's socket in a team setup; `[ui] language` of the config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omniconsole.config import load_settings
from omniconsole.core.control import ControlServer
from omniconsole.core.remote import RemoteStore
from omniconsole.errors import OmniError, UsageError
from omniconsole.models import OperatorRole
from omniconsole.store import ActionError, Store
from tests.conftest import subprocess_env
from tests.unit.test_cli import assert_one_line_error, omniconsole


def languages(operators) -> dict[str, str | None]:
    return {op.login: op.language for op in operators}


async def test_language_is_stored_on_the_operator_and_refused_in_words(store: Store) -> None:
    await store.add_operator("anna", "Anna")
    assert languages(await store.operators()) == {"anna": None}
    await store.set_operator_language("anna", "ru", actor="root")
    assert languages(await store.operators()) == {"anna": "ru"}
    event = [e for e in await store.events_since(0) if e.kind == "operator.updated"][-1]
    assert event.actor == "root" and json.loads(event.payload) == {"login": "anna", "language": "ru"}
    # Registering again (a new display name) keeps the language.
    await store.add_operator("anna", "Anna K.")
    assert languages(await store.operators()) == {"anna": "ru"}
    with pytest.raises(ActionError, match="language must be one of en, ru"):
        await store.set_operator_language("anna", "de", actor="root")
    with pytest.raises(ActionError, match="boris is not an operator"):
        await store.set_operator_language("boris", "ru", actor="root")
    await store.set_own_language("anna", None)
    assert languages(await store.operators()) == {"anna": None}


async def test_through_the_core_an_admin_sets_anyones_and_an_agent_only_their_own(tmp_path: Path, store: Store) -> None:
    await store.add_operator("root", "Root", OperatorRole.ADMIN, actor="root")
    await store.add_operator("anna", "Anna", actor="root")
    servers = {
        login: ControlServer(store, tmp_path / f"{login}.sock", logins=lambda uid, login=login: login)
        for login in ("root", "anna")
    }
    for server in servers.values():
        await server.start()
    admin = await RemoteStore.connect(servers["root"].path)
    agent = await RemoteStore.connect(servers["anna"].path)
    try:
        await admin.set_operator_language("anna", "ru", actor="someone else")
        assert languages(await agent.operators()) == {"anna": "ru", "root": None}
        assert [e.actor for e in await store.events_since(0) if e.kind == "operator.updated"] == ["root"]
        with pytest.raises(OmniError):
            await agent.set_operator_language("root", "ru", actor="anna")
        # An agent's own switch names them, whoever they send.
        await agent.set_own_language("root", "en")
        assert languages(await store.operators()) == {"anna": "en", "root": None}
    finally:
        await admin.close()
        await agent.close()
        for server in servers.values():
            await server.close()


def test_operator_set_language_on_the_command_line(tmp_path: Path) -> None:
    db = str(tmp_path / "o.db")
    assert omniconsole("operator", "add", "anna", "--db", db).returncode == 0
    result = omniconsole("operator", "set", "anna", "--language", "ru", "--db", db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "anna: language ru"
    assert_one_line_error(
        omniconsole("operator", "set", "anna", "--language", "klingon", "--db", db), "unknown language 'klingon'", "en, ru"
    )
    assert_one_line_error(omniconsole("operator", "set", "nobody", "--language", "ru", "--db", db), "nobody is not an operator")
    result = omniconsole("operator", "set", "anna", "--language", "", "--db", db)
    assert result.returncode == 0 and "config or the locale" in result.stdout


def test_ui_language_in_the_config(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[ui]\nlanguage = "ru_RU.UTF-8"\n')
    assert load_settings(path).language == "ru"
    path.write_text("[store]\n")
    assert load_settings(path).language is None
    path.write_text('[ui]\nlanguage = "fr"\n')
    with pytest.raises(UsageError, match=r"\[ui\] unknown language 'fr'; choose one of: en, ru"):
        load_settings(path)
    path.write_text('[ui]\nlangauge = "ru"\n')
    with pytest.raises(UsageError, match="no setting 'langauge'"):
        load_settings(path)


def test_the_cli_speaks_the_configs_language(tmp_path: Path) -> None:
    """The CLI's own messages follow `[ui] language` (else the locale)."""
    config = tmp_path / "c.toml"
    config.write_text(f'[ui]\nlanguage = "ru"\n[store]\ndatabase = "{tmp_path / "o.db"}"\n')
    env = subprocess_env()
    env.pop("LANGUAGE", None)
    assert omniconsole("operator", "add", "anna", "--config", str(config), env=env).returncode == 0
    result = omniconsole("operator", "set", "anna", "--language", "en", "--config", str(config), env=env)
    assert result.stdout.strip() == "anna: язык en"
    # No config: the locale decides.
    env["LANG"] = "ru_RU.UTF-8"
    result = omniconsole("operator", "set", "anna", "--language", "", "--db", str(tmp_path / "o.db"), env=env)
    assert result.stdout.strip() == "anna: язык из настроек или локали", result.stderr


def test_bench_tui_runs_the_window_in_russian(tmp_path: Path) -> None:
    """`omniconsole bench tui --language ru` times the window in Russian (and says so)."""
    db = str(tmp_path / "bench.db")
    assert omniconsole("bench", "ingest", "--messages", "2000", "--keep", db).returncode == 0
    result = omniconsole(
        "bench", "tui", "--db", db, "--language", "ru", "--runs", "1", "--keys", "10", "--visible", "0", "--json"
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["language"] == "ru" and figures["key_p95_ms"] > 0
    # The probe times one window: it opened a second main screen once (Textual runs OmniApp's
    # Mount handler itself; the probe called it again), and timed both.
    assert figures["main_screens"] == 1
    assert "the window in ru" in result.stdout
    assert_one_line_error(omniconsole("bench", "tui", "--db", db, "--language", "xx"), "unknown language 'xx'")


def test_cli_errors_and_doctor_speak_russian(tmp_path: Path) -> None:
    db = str(tmp_path / "o.db")
    env = subprocess_env(LANGUAGE="ru")
    assert omniconsole("operator", "add", "anna", "--db", db, env=env).stdout.strip() == "anna теперь оператор (agent)"
    result = omniconsole("operator", "remove", "boris", "--db", db, env=env)
    assert result.returncode == 2 and result.stderr.strip() == "omniconsole: ошибка: boris не оператор"
    doctor = omniconsole("doctor", "--db", db, env=env)
    assert f"ok    база данных {db}" in doctor.stdout and "каналы не настроены" in doctor.stdout
