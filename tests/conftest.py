"""Shared fixtures: a fresh database per test, and helpers to build inbound messages."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.base import InboundMessage
from omniconsole.models import IdentityKind
from omniconsole.store import Store

# Hostile customer text (STYLE.md): every renderer and parser is tried with each.
HOSTILE_TEXTS = [
    "[/]",
    "[bold",
    "[$accent]x",
    "[@click=app.quit]click me[/]",
    "\x1b]0;pwned title\x1b\\",
    "\x1b]52;c;ZWNobyBwd25lZA==\x07",
    "\x1b[31mred\x1b[0m",
    "\u202eRTL override\u202c and \u200f mark",
    "emoji 👩‍👩‍👧‍👦 🇷🇺",
    "x" * 4000,
    "",
]


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No test reads the developer's config or writes outside its temporary directory."""
    monkeypatch.delenv("OMNICONSOLE_CONFIG", raising=False)
    monkeypatch.delenv("OMNICONSOLE_DB", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    # English unless a test asks for Russian (the developer's locale must not change snapshots);
    # a test that switched the language leaves the next one in English again.
    monkeypatch.setenv("LANGUAGE", "en")
    yield
    from omniconsole.i18n import set_language

    set_language("en")


@pytest.fixture
async def store(tmp_path: Path):
    s = await Store.open(tmp_path / "omniconsole.db")
    yield s
    await s.close()


def inbound(
    external_id: str,
    body: str = "hello",
    *,
    kind: IdentityKind = IdentityKind.TELEGRAM,
    address: str = "1001",
    at: float | None = None,
    **fields,
) -> InboundMessage:
    """An inbound message as a connector would deliver it."""
    moment = datetime.fromtimestamp(at, UTC) if at is not None else datetime.now(UTC)
    return InboundMessage(external_id=external_id, identity_kind=kind, address=address, body=body, sent_at=moment, **fields)


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OMNICONSOLE_CONFIG", None)
    env.update(extra)
    return env
