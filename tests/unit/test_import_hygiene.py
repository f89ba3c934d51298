"""Dependencies point one way (DESIGN.md): the store, the core and the connectors never import
the window (Textual); connectors import nothing of the store or the core; the window never
imports a connector. Each module is imported alone in a fresh interpreter and `sys.modules`
is inspected (as harlequin's test does). The module lists are built from the tree, so a new
module is checked the day it is added."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def modules_under(package: str) -> list[str]:
    """Every importable module of `package` (a dotted name), found from the files."""
    folder = ROOT.joinpath(*package.split("."))
    names = []
    for path in sorted(folder.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts))
    return names


CONNECTORS = modules_under("connectors")
STORE = modules_under("omniconsole.store")
CORE = modules_under("omniconsole.core")
TUI = modules_under("omniconsole.tui")
# Models-level modules every layer may import (connectors included).
SHARED = ["omniconsole.models", "omniconsole.errors", "omniconsole.message_templates", "omniconsole.calendar"]


def imported_by(module: str, forbidden: tuple[str, ...]) -> list[str]:
    """Modules matching `forbidden` (exact names or dotted prefixes) that importing `module`
    alone pulls in."""
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        f"forbidden = {forbidden!r}; "
        "print([m for m in sys.modules if any(m == f or m.startswith(f + '.') for f in forbidden)])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, f"importing {module} failed:\n{result.stderr}"
    return eval(result.stdout.strip().splitlines()[-1])  # noqa: S307 - a list of names we printed


def test_the_lists_are_built_from_the_tree() -> None:
    assert "connectors.whatsapp" in CONNECTORS and "connectors.base" in CONNECTORS
    assert "omniconsole.store" in STORE and "omniconsole.core.identity" in CORE
    assert "omniconsole.tui.screens.main" in TUI and "omniconsole.tui.app" in TUI


@pytest.mark.parametrize("module", [*CONNECTORS, *STORE, *CORE, *SHARED, "omniconsole.cli", "omniconsole.config"])
def test_store_core_and_connectors_do_not_import_the_window(module: str) -> None:
    assert imported_by(module, ("textual", "omniconsole.tui")) == []


@pytest.mark.parametrize("module", [*CONNECTORS, *SHARED])
def test_connectors_do_not_import_store_or_core(module: str) -> None:
    assert imported_by(module, ("omniconsole.store", "omniconsole.core", "aiosqlite", "sqlite3")) == []


@pytest.mark.parametrize("module", TUI)
def test_the_window_imports_no_connector(module: str) -> None:
    assert imported_by(module, ("connectors",)) == []
