"""Dependencies point one way: connectors, store and core never import the window (Textual)."""

from __future__ import annotations

import subprocess
import sys

import pytest

MODULES = [
    "connectors.base", "connectors.demo", "connectors.telegram", "connectors.email", "connectors.vk",
    "connectors.whatsapp", "connectors.webchat", "omniconsole.core.listener", "omniconsole.core.contacts_import", "omniconsole.store", "omniconsole.core.hub", "omniconsole.core.ingest", "omniconsole.core.demo", "omniconsole.core.mail_import", "omniconsole.cli",
]


@pytest.mark.parametrize("module", MODULES)
def test_core_layers_do_not_import_the_tui(module):
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        "bad = [m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'omniconsole.tui'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "module", ["connectors.base", "connectors.demo", "connectors.telegram", "connectors.email", "connectors.vk", "connectors.whatsapp",
               "connectors.webchat"]
)
def test_connectors_do_not_import_store_or_core(module):
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        "bad = [m for m in sys.modules if m.startswith(('omniconsole.store', 'omniconsole.core', 'aiosqlite', 'sqlite3'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
