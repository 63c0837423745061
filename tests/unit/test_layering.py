"""The dependency rules of DESIGN 1, checked on the source so that breaking one fails a test.

- ``core/`` never imports ``azure.functions``: it is tested without a host.
- ``devhost/`` never imports ``core``: it must serve any Functions app, not just this one.
- ``function_app.py`` only creates the app and registers blueprints from ``triggers/``.
- Table queries are parameterised: every ``query_entities`` filter is a literal with ``@name``
  placeholders, never a string built from values, and it names one partition.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _sources("core"), ids=lambda p: p.name)
def test_core_does_not_import_azure_functions(path: Path) -> None:
    assert not {name for name in _imports(path) if name == "azure.functions" or name.startswith("azure.functions.")}


@pytest.mark.parametrize("path", _sources("devhost"), ids=lambda p: p.name)
def test_devhost_does_not_import_core(path: Path) -> None:
    assert not {name for name in _imports(path) if name == "core" or name.startswith("core.")}


def test_function_app_only_registers_blueprints() -> None:
    imports = _imports(ROOT / "function_app.py")
    assert imports - {"__future__"} <= {"azure.functions"} | {name for name in imports if name.startswith("triggers")}
    tree = ast.parse((ROOT / "function_app.py").read_text(encoding="utf-8"))
    defined = [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    assert defined == []


def _query_filters() -> list[tuple[str, ast.expr]]:
    found = []
    for folder in ("core", "cli", "bench"):
        for path in _sources(folder):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "query_entities":
                    query = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "query_filter"), None)
                    assert query is not None, f"{path.name}:{node.lineno}: query_entities without a filter"
                    found.append((f"{path.name}:{node.lineno}", query))
    return found


def test_every_table_query_is_a_literal_with_parameters() -> None:
    filters = _query_filters()
    assert filters, "no query_entities call found: the check would pass vacuously"
    for where, query in filters:
        assert isinstance(query, ast.Constant) and isinstance(query.value, str), f"{where}: the filter is built, not a literal"
        assert "'" not in query.value and '"' not in query.value, f"{where}: a quoted value inside the filter"


def test_every_table_query_stays_in_one_partition() -> None:
    """A filter without ``PartitionKey eq`` makes Azure scan every partition of the table: its
    cost grows with the table, not with what it finds (docs/storage.md, "Queries")."""
    for where, query in _query_filters():
        assert isinstance(query, ast.Constant) and str(query.value).startswith("PartitionKey eq @"), f"{where}: {query.value!r} spans partitions"
    sources = "\n".join(p.read_text(encoding="utf-8") for folder in ("core", "cli", "bench") for p in _sources(folder))
    assert ".list_entities(" not in sources, "list_entities reads every partition of a table"
