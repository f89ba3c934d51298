"""The store's shape: one writer of the events log, no import circles among its modules, the
search index kept by search.py alone, and no SQL in the core's demo or the benchmarks."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ROOT / "omniconsole"
STORE = PRODUCT / "store"


def _python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py") if ".venv" not in p.parts)


def test_only_the_events_writer_inserts_into_events():
    writers = [
        str(p.relative_to(ROOT))
        for p in _python_files(PRODUCT, ROOT / "connectors")
        if re.search(r"INSERT\s+INTO\s+events\b", p.read_text(encoding="utf-8"), re.IGNORECASE)
    ]
    assert writers == ["omniconsole/store/events.py"]


def test_only_search_writes_the_full_text_indexes():
    pattern = re.compile(r"(INSERT\s+INTO|DELETE\s+FROM|UPDATE)\s+(messages_fts|customers_fts)\b", re.IGNORECASE)
    writers = sorted(str(p.relative_to(ROOT)) for p in _python_files(PRODUCT) if pattern.search(p.read_text(encoding="utf-8")))
    assert writers == ["omniconsole/store/search.py"]


def _store_imports(path: Path) -> set[str]:
    """The sibling store modules `path` imports (at the top or inside functions)."""
    siblings = {p.stem for p in STORE.glob("*.py") if p.stem != "__init__"}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "omniconsole.store":
                found |= {alias.name for alias in node.names if alias.name in siblings}
            elif node.module.startswith("omniconsole.store."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("omniconsole.store."):
                    found.add(alias.name.split(".")[2])
    return found - {path.stem}


def test_store_modules_import_no_circle():
    graph = {p.stem: _store_imports(p) for p in STORE.glob("*.py") if p.stem != "__init__"}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    circles = sorted(module for module in graph if reaches(module, module, {module}))
    assert circles == [], {m: sorted(graph[m]) for m in circles}


def test_the_demo_and_the_benchmarks_run_no_sql_of_their_own():
    files = [PRODUCT / "core" / "demo.py", *[p for p in _python_files(PRODUCT / "bench") if p.name != "ingest.py"]]
    offenders = [str(p.relative_to(ROOT)) for p in files if re.search(r"\.execute(many)?\(", p.read_text(encoding="utf-8"))]
    assert offenders == []
    # The ingest bench's ceiling is a plain table in a scratch file, on purpose: everything else
    # it does to the benchmark database goes through the store.
    ingest = (PRODUCT / "bench" / "ingest.py").read_text(encoding="utf-8")
    assert "connect(" not in ingest.replace("sqlite3.connect(Path(tmp)", "")


def test_no_sql_outside_the_store():
    """All SQL lives in omniconsole/store/ (DESIGN.md): the capability packages (rules, SLA,
    routing, analytics...), the core and the window run none of their own."""
    files = [
        p
        for p in _python_files(PRODUCT)
        if STORE not in p.parents and p != PRODUCT / "bench" / "ingest.py"  # its scratch ceiling table, above
    ]
    offenders = [
        str(p.relative_to(ROOT)) for p in files if re.search(r"\.execute(many|script)?\(", p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
