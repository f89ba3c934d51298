"""The CLI in the admin's language (issue #24): real commands run with `LANG=ru_RU.UTF-8` or
`[ui] language = "ru"` print Russian lines, help texts and argparse's own words included; with
neither they print the English they always did (the other CLI tests hold those byte for byte)."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir

from connectors.base import N_, PermanentError, Words
from omniconsole import i18n
from omniconsole.cli.language import decimal, figure, peek_config_language, words_text
from omniconsole.errors import StoreError
from omniconsole.store.database import describe_error
from tests.conftest import repo_root, subprocess_env
from tests.unit.test_cli import omniconsole
from tests.unit.test_i18n import KEYWORDS, catalog


def russian_locale(**extra: str) -> dict[str, str]:
    """The environment of an admin whose locale is Russian (LANGUAGE would outrank LANG)."""
    env = subprocess_env(LANG="ru_RU.UTF-8", **extra)
    env.pop("LANGUAGE", None)
    env.pop("LC_ALL", None)
    env.pop("LC_MESSAGES", None)
    return env


def c_locale() -> dict[str, str]:
    env = subprocess_env(LANG="C")
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        env.pop(name, None)
    return env


def russian_config(tmp_path: Path, body: str = "") -> Path:
    config = tmp_path / "ru.toml"
    config.write_text(f'[ui]\nlanguage = "ru"\n[store]\ndatabase = "{tmp_path / "o.db"}"\n{body}', encoding="utf-8")
    return config


def error_line(result) -> str:
    """The one error line in Russian, never a traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("omniconsole: ошибка: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_help_speaks_the_locales_and_the_configs_language(tmp_path: Path) -> None:
    result = omniconsole("--help", env=russian_locale())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("использование: omniconsole")
    assert "позиционные аргументы:" in result.stdout and "параметры:" in result.stdout
    assert "показать эту справку и выйти" in result.stdout
    assert "записать шаблон настроек с комментариями" in result.stdout  # init
    assert "сводка по каналам и статусам" in result.stdout  # stats
    # A sub-command's options, and one added by a capability package (report).
    stats = omniconsole("stats", "--help", env=russian_locale())
    assert "файл настроек (по умолчанию: $OMNICONSOLE_CONFIG или ./omniconsole.toml)" in " ".join(stats.stdout.split())
    report = omniconsole("report", "--help", env=russian_locale())
    assert "table — таблица (по умолчанию), csv или json" in " ".join(report.stdout.split())
    # The config's [ui] language wins over a C locale, from --config or ./omniconsole.toml.
    config = russian_config(tmp_path)
    assert "использование:" in omniconsole("--config", str(config), "stats", "--help", env=c_locale()).stdout
    (tmp_path / "omniconsole.toml").write_text(config.read_text(), encoding="utf-8")
    assert "записать шаблон настроек" in omniconsole("--help", cwd=tmp_path, env=c_locale()).stdout
    # Neither: English, as it always was.
    english = omniconsole("--help", env=c_locale())
    assert english.stdout.startswith("usage: omniconsole") and "write a commented config template" in english.stdout


def test_argparse_errors_are_russian_and_still_exit_2() -> None:
    result = omniconsole("stats", "--bogus", env=russian_locale())
    assert result.returncode == 2
    assert "omniconsole: ошибка: нераспознанные аргументы: --bogus" in result.stderr
    missing = omniconsole("export", env=russian_locale())
    assert missing.returncode == 2 and "не хватает обязательных аргументов: WHAT" in missing.stderr
    assert "использование: omniconsole export" in missing.stderr


def test_init_in_russian(tmp_path: Path) -> None:
    path = tmp_path / "new.toml"
    result = omniconsole("init", str(path), env=russian_locale())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"записан {path}; отредактируйте его, затем запустите `omniconsole serve --config {path}`"
    assert error_line(omniconsole("init", str(path), env=russian_locale())) == (
        f"omniconsole: ошибка: {path} уже есть; чтобы перезаписать, добавьте --force"
    )


def test_stats_in_russian_with_digit_groups_and_state_words(tmp_path: Path) -> None:
    db = str(tmp_path / "bench.db")
    assert omniconsole("bench", "ingest", "--messages", "1500", "--keep", db).returncode == 0
    result = omniconsole("stats", "--db", db, env=russian_locale())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"база данных: {db}"
    assert "клиенты: 150" in lines and "разговоры: открыты 150" in lines and "исходящие: нет" in lines
    assert any(re.fullmatch(r"  bench telegram +telegram +вх\. +1\xa0000", line) for line in lines), lines
    assert any(re.fullmatch(r"  bench vk +vk +неизвестно", line) for line in lines), lines
    english = omniconsole("stats", "--db", db)
    assert "conversations: open 150" in english.stdout and "outbound: none" in english.stdout
    assert any(re.fullmatch(r"  bench telegram +telegram +in +1000", line) for line in english.stdout.splitlines())


def test_stats_webhook_lines_in_russian(tmp_path: Path) -> None:
    config = russian_config(
        tmp_path,
        '[[webhooks]]\nname = "crm"\nurl = "http://127.0.0.1:9/hooks"\nevents = ["*"]\nsecret_env = "HOOK_SECRET"\n',
    )
    env = c_locale()
    env["HOOK_SECRET"] = "s" * 32
    assert omniconsole("--config", str(config), "operator", "add", "anna", env=env).returncode == 0
    result = omniconsole("--config", str(config), "stats", env=env)
    assert result.returncode == 0, result.stderr
    assert "вебхуки:" in result.stdout.splitlines()
    assert re.search(r"^  crm +http://127\.0\.0\.1:9 +ещё не запущен \(его запускает ядро\)$", result.stdout, re.M), result.stdout
    doctor = omniconsole("--config", str(config), "doctor", env=env)
    assert "ok    вебхук crm (http://127.0.0.1:9): ещё не запущен (его запускает ядро)" in doctor.stdout


def test_doctor_with_a_dead_channel_in_russian(tmp_path: Path) -> None:
    """A telephony channel without its token cannot work: doctor says so in Russian, and
    the channels that check out get their detail line in Russian too."""
    channels = (
        '[[channels]]\nkind = "telephony"\nname = "pbx"\n'
        '[[channels]]\nkind = "webchat"\nname = "site"\nsecret_env = "CHAT_SECRET"\nport = 0\n'
        '[[channels]]\nkind = "demo"\n'
        '[[channels]]\nkind = "webchat"\nname = "bare"\n'
        '[[channels]]\nkind = "api"\nname = "crm"\n'
    )
    config = russian_config(tmp_path, channels)
    env = c_locale()
    env["CHAT_SECRET"] = "c" * 32
    assert omniconsole("--config", str(config), "operator", "add", "anna", env=env).returncode == 0
    result = omniconsole("--config", str(config), "doctor", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"ok    база данных {tmp_path / 'o.db'}" in lines
    assert (
        "FAIL  pbx (telephony): не задан токен (token_env или token_file: секрет, который АТС передаёт как bearer-токен)" in lines
    )
    assert "ok    site (webchat): веб-чат для только своей демо-страницы (allowed_origins пуст); работает круглосуточно" in lines
    assert "ok    demo (demo): для этого канала проверки нет" in lines
    assert (
        "FAIL  bare (webchat): веб-чату нужен секрет не короче 16 символов для подписи сессий посетителей"
        " (secret_env или secret_file; например, вывод `openssl rand -hex 32`)" in lines
    )
    assert (
        "FAIL  crm (api): не задан токен (token_env или token_file: секрет, который интеграция передаёт как bearer-токен)"
        in lines
    )
    # The same config without [ui] and a C locale: the English lines of before.
    (tmp_path / "en.toml").write_text(config.read_text().replace('language = "ru"', ""), encoding="utf-8")
    english = omniconsole("--config", str(tmp_path / "en.toml"), "doctor", env=env).stdout.splitlines()
    assert "FAIL  pbx (telephony): missing token (token_env or token_file: the secret the PBX sends as a bearer token)" in english
    assert "ok    site (webchat): web chat for only its own demo page (allowed_origins is empty); always open" in english


def test_a_broken_config_is_reported_in_russian(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[store\ndatabase = ", encoding="utf-8")
    line = error_line(omniconsole("stats", "--config", str(bad), env=russian_locale()))
    assert line.startswith(f"omniconsole: ошибка: в файле настроек {bad} ошибка TOML: ")
    # Readable TOML whose [ui] asks for Russian: its own mistakes are told in Russian.
    config = russian_config(tmp_path, '[[channels]]\nkind = "fax"\n')
    line = error_line(omniconsole("serve", "--config", str(config), env=c_locale()))
    assert line.startswith(f"omniconsole: ошибка: {config}: канал №1: kind должен быть одним из: api, demo,")
    assert line.endswith("(указано 'fax')")
    missing = tmp_path / "nowhere.toml"
    assert error_line(omniconsole("stats", "--config", str(missing), env=russian_locale())) == (
        f"omniconsole: ошибка: файла настроек {missing} нет; создайте его командой `omniconsole init {missing}`"
    )


def test_database_errors_in_russian(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    assert error_line(omniconsole("stats", "--db", str(garbage), env=russian_locale())) == (
        f"omniconsole: ошибка: {garbage} — не база данных omniconsole (не SQLite)"
    )


def test_report_in_russian(tmp_path: Path) -> None:
    db = str(tmp_path / "o.db")
    assert omniconsole("operator", "add", "anna", "--db", db).returncode == 0
    assert error_line(omniconsole("report", "--db", db, "--from", "2026-13-01", env=russian_locale())) == (
        "omniconsole: ошибка: --from '2026-13-01' — не дата; пишите ГГГГ-ММ-ДД, например 2026-03-01"
    )
    assert error_line(omniconsole("report", "--db", db, "--from", "2026-03-02", "--to", "2026-03-01", env=russian_locale())) == (
        "omniconsole: ошибка: --to 2026-03-01 должна быть позже --from 2026-03-02 (день --to не входит)"
    )
    result = omniconsole("report", "--db", db, "--format", "json", env=russian_locale())
    assert result.returncode == 0 and result.stdout.lstrip().startswith("{")  # JSON keys stay English


def test_customer_lookup_errors_in_russian(tmp_path: Path) -> None:
    db = str(tmp_path / "o.db")
    from omniconsole.cli import current_user

    assert omniconsole("operator", "add", current_user(), "--admin", "--db", db).returncode == 0
    env = russian_locale()
    assert error_line(omniconsole("export", "customer", "77", "--db", db, env=env)) == "omniconsole: ошибка: клиента 77 нет"
    assert error_line(omniconsole("export", "customer", "nobody@example.com", "--db", db, env=env)) == (
        "omniconsole: ошибка: ни у одного клиента нет e-mail nobody@example.com"
    )


def test_words_keep_the_english_and_translate_later() -> None:
    words = Words(N_("web chat for {origins}; {hours}"), origins="https://shop.example", hours=Words(N_("always open")))
    assert words == "web chat for https://shop.example; always open"  # str: the English line
    assert words_text(words) == words
    i18n.set_language("ru")
    assert words_text(words) == "веб-чат для https://shop.example; работает круглосуточно"
    assert words_text("a plain line") == "a plain line"
    assert words_text(PermanentError(N_("no check available for this channel")).words) == "для этого канала проверки нет"
    # A template with braces but no values is shown as it is (never formatted).
    assert str(PermanentError("token {bad")) == "token {bad"
    assert figure(12345) == "12\xa0345" and decimal(4.5) == "4,5"
    i18n.set_language("en")
    assert figure(12345) == "12345" and decimal(4.5) == "4.5"


def test_database_errors_keep_their_template_for_the_reader() -> None:
    import sqlite3

    exc = sqlite3.DatabaseError("file is not a database")
    assert describe_error(exc, "/x.db") == "/x.db is not an omniconsole database (not SQLite)"
    error = StoreError("{path} is not an omniconsole database (not SQLite)", path="/x.db")
    i18n.set_language("ru")
    assert error.translated() == "/x.db — не база данных omniconsole (не SQLite)"


def test_peeking_at_the_config_never_raises(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_bytes(b"\xff\xfe[ui")
    assert peek_config_language(["--config", str(broken), "stats"]) is None
    assert peek_config_language(["--config", str(tmp_path / "missing.toml")]) is None
    assert peek_config_language(["--config"]) is None
    good = russian_config(tmp_path)
    assert peek_config_language(["stats", f"--config={good}"]) == "ru"


def test_connectors_marked_words_have_russian() -> None:
    """The completeness test of test_i18n.py reads omniconsole/; the connectors' `N_` lines
    (doctor's details) are in the same catalog and must be translated too."""
    ru = catalog("ru")
    missing = []
    for _file, _line, message, _comments, context in extract_from_dir(
        str(repo_root() / "connectors"), method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        entry = ru.get(message if isinstance(message, str) else message[0], context=context)
        if entry is None or not entry.string or "fuzzy" in entry.flags:
            missing.append(message)
    assert not missing, missing


def test_every_commands_help_formats_in_russian() -> None:
    """argparse %-formats each help text: a Russian one with a stray % (or a lost %(default)s)
    would break that command's --help. Every parser and sub-parser is formatted here."""
    import argparse

    from omniconsole.cli import build_parser
    from omniconsole.cli.language import speak_argparse

    i18n.set_language("ru")
    speak_argparse()
    pending, seen = [build_parser()], 0
    while pending:
        parser = pending.pop()
        text = parser.format_help()
        seen += 1
        assert text.startswith("использование: "), text
        for action in parser._actions:  # noqa: SLF001 - argparse keeps sub-parsers only here
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                pending.extend(action.choices.values())
    assert seen > 40
