"""The dependency rules of docs/architecture.md, checked on the source so that breaking one fails a test.

- ``core/`` is layered packages; imports only go down the layers, and packages on one layer
  never import each other (``LAYERS``). Every import counts: at the top of a module, inside a
  function, or for type checking only.
- Only ``core/store/`` imports the storage SDKs (``azure.*``); ``core/`` never imports
  ``azure.functions``: it is tested without a host.
- No import cycle in ``core/``; no module at its root but ``__init__.py``; no module much over
  500 lines; subpackages' ``__init__.py`` are empty (importing a package loads nothing); every
  import made inside a function says it is there for cold start.
- ``devhost/`` never imports ``core``: it must serve any Functions app, not just this one.
- ``function_app.py`` only creates the app and registers blueprints from ``triggers/``.
- Tables are named by ``core.store.tables``; table queries are parameterised: every
  ``query_entities`` filter is a literal with ``@name`` placeholders, never a string built from
  values, and it names one partition.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core"

LAYERS: dict[str, int] = {
    "kernel": 0,
    "web": 1,
    "store": 1,
    "identity": 2,
    "process": 2,
    "traffic": 2,
    "scenarios": 3,
    "runs": 4,
    "apiops": 4,
    "app": 5,
}
"""Each package of ``core`` and its layer: a package imports only packages of lower layers."""
MAX_LINES = 525
"""About 500 lines, with a small allowance."""
STORAGE_SDKS = ("azure.",)


def _is_storage_sdk(name: str) -> bool:
    """``azure`` itself too: ``import azure`` then ``azure.data.tables`` would pass a prefix test."""
    return (name == "azure" or name.startswith(STORAGE_SDKS)) and not (name == "azure.functions" or name.startswith("azure.functions."))


def _from_module(path: Path, node: ast.ImportFrom) -> str | None:
    """The absolute module a ``from ... import`` names; relative ones resolved from ``path``, so
    ``from ..apiops import routes`` is held to the same rules as ``from core.apiops import routes``."""
    if node.level == 0:
        return node.module
    parts = path.relative_to(ROOT).with_suffix("").parts
    package = list(parts[:-1])  # a module's package; an __init__'s package is its folder, the same list
    if node.level - 1 > len(package):
        return None
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base) or None


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (module := _from_module(path, node)):
            names.add(module)
    return names


def _sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _core_targets(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of every module of ``core`` that ``path`` imports, wherever the import is."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "core" or alias.name.startswith("core."):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and (module := _from_module(path, node)) and (module == "core" or module.startswith("core.")):
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                yield node.lineno, submodule if _is_module(submodule) else module


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


CORE_SOURCES = _sources("core")


def _id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_core_is_packages_only() -> None:
    assert [p.name for p in CORE.glob("*.py")] == ["__init__.py"], "every module of core lives in a package of its layer"
    packages = {p.name for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(LAYERS), "a package of core is missing from LAYERS (or LAYERS names one that is gone)"


def test_relative_imports_are_held_to_the_same_rules() -> None:
    """A relative import names the same module as its absolute form, so no rule can be passed by
    writing ``from ..apiops import routes``; a bare ``import azure`` counts as the storage SDKs."""
    starter = ROOT / "core" / "runs" / "starter.py"
    tree = ast.parse("from ..apiops import routes\nfrom . import messages\nfrom .records import x\n")
    found = [_from_module(starter, node) for node in tree.body if isinstance(node, ast.ImportFrom)]
    assert found == ["core.apiops", "core.runs", "core.runs.records"]
    assert _is_storage_sdk("azure") and _is_storage_sdk("azure.data.tables") and not _is_storage_sdk("azure.functions")


def test_pyproject_installs_every_package() -> None:
    """pyproject.toml finds packages by pattern: every package of the app, new ones included."""
    import tomllib

    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]["find"]
    installed = set(find_packages(str(ROOT), include=config["include"]))
    expected = {_module_name(p) for folder in ("core", "cli", "devhost", "triggers") for p in _sources(folder) if p.name == "__init__.py"}
    assert expected and expected <= installed, sorted(expected - installed)


@pytest.mark.parametrize("path", CORE_SOURCES, ids=_id)
def test_imports_only_go_down_the_layers(path: Path) -> None:
    here = _package(_module_name(path))
    for line, target in _core_targets(path):
        there = _package(target)
        if here is None or there is None or there == here:
            continue
        assert LAYERS[there] < LAYERS[here], (
            f"{_id(path)}:{line}: core.{here} (layer {LAYERS[here]}) may not import {target} (layer {LAYERS[there]}): "
            "imports only go down, and packages of one layer do not import each other (docs/architecture.md)"
        )


@pytest.mark.parametrize("path", CORE_SOURCES, ids=_id)
def test_only_store_touches_the_storage_sdks(path: Path) -> None:
    sdk = {name for name in _imports(path) if _is_storage_sdk(name)}
    if _module_name(path).startswith("core.store"):
        return
    assert not sdk, f"{_id(path)} imports {sorted(sdk)}: only core/store/ talks to the storage SDKs (core.store.errors names their errors)"


@pytest.mark.parametrize("path", CORE_SOURCES, ids=_id)
def test_core_does_not_import_azure_functions(path: Path) -> None:
    assert not {name for name in _imports(path) if name == "azure.functions" or name.startswith("azure.functions.")}


def test_no_import_cycle_in_core() -> None:
    graph = {_module_name(p): {t for _, t in _core_targets(p) if t != _module_name(p)} for p in CORE_SOURCES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert cycles == []


@pytest.mark.parametrize("path", CORE_SOURCES, ids=_id)
def test_no_module_is_much_over_500_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{_id(path)} has {lines} lines: split it at a seam"


@pytest.mark.parametrize("path", sorted(CORE.glob("*/__init__.py")), ids=_id)
def test_subpackages_are_empty(path: Path) -> None:
    """Importing ``core.runs.records`` must load that module and nothing else (cold start)."""
    assert path.read_text(encoding="utf-8") == ""


@pytest.mark.parametrize("path", CORE_SOURCES, ids=_id)
def test_every_lazy_import_says_it_is_for_cold_start(path: Path) -> None:
    """An import inside a function delays loading a module until it is needed; the only reason
    for one in ``core`` is the app's cold start (docs/architecture.md, "Cold start"), never a
    cycle, so each says so: on its own line or in the comment or imports right above it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    tree = ast.parse("\n".join(lines))
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            said = "cold start" in lines[node.lineno - 1]
            number = node.lineno - 2
            while not said and number >= 0 and lines[number].strip().startswith(("#", "import ", "from ")):
                said = "cold start" in lines[number]
                number -= 1
            assert said, f"{_id(path)}:{node.lineno}: say why this import is inside a function (cold start)"


def test_tables_are_named_by_core_store_tables() -> None:
    """``storage.table(...)`` and ``storage.insert(...)`` name a table by its constant in
    ``core.store.tables``, so that module lists every table Junction has."""
    for path in CORE_SOURCES:
        if _module_name(path).startswith("core.store"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("table", "insert") and node.args:
                name = node.args[0]
                assert (
                    isinstance(name, ast.Attribute) and isinstance(name.value, ast.Name) and name.value.id == "tables"
                ), f"{_id(path)}:{node.lineno}: name the table as tables.<NAME>"


@pytest.mark.parametrize("path", _sources("devhost"), ids=_id)
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
