"""Junction's own HTTP routes under the Functions host's route order.

The host tries routes in the order of the function names (case-insensitive ordinal) and the first
route whose template and methods match wins; a catch-all whose name sorts early takes the requests
of every route after it (issue 21 A1: ``apiOperations`` answered for ``getCacheData`` and the whole
management API on Azure). devhost builds its route table the same way, so these checks use it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devhost.config import load_host_config
from devhost.routing import Route, RouteTable, overlap_example

ROOT = Path(__file__).resolve().parents[2]

# The app reads its settings when it is imported; a child process keeps them out of this one.
LIST_HTTP_FUNCTIONS = """
import ast
import json
from devhost.functions import index_functions
from function_app import app
print(json.dumps([[f.name, f.trigger.get("route") or f.name, f.trigger.get("methods")]
                  for f in index_functions(app) if f.trigger_type == "httpTrigger"]))
"""


@pytest.fixture(scope="module")
def routes() -> RouteTable[str]:
    env = {**os.environ, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    listed = subprocess.run(
        [sys.executable, "-c", LIST_HTTP_FUNCTIONS], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    table: RouteTable[str] = RouteTable(load_host_config(ROOT).route_prefix)
    for name, route, methods in json.loads(listed.stdout):
        table.add(route, methods, name, name=name)
    return table


def test_no_route_of_junction_is_shadowed(routes: RouteTable[str]) -> None:
    assert [s.describe() for s in routes.shadowed()] == []


def test_the_catch_all_is_tried_last(routes: RouteTable[str]) -> None:
    last = routes.routes[-1]
    assert last.template.text == "{*path}"
    assert len(routes.routes) > 10


def _methods(route: Route[str]) -> list[str]:
    return sorted(route.methods) if route.methods else ["GET"]


def test_every_route_answers_its_own_requests(routes: RouteTable[str]) -> None:
    for route in routes.routes:
        example = overlap_example(route.template, route.template)
        assert example is not None, route.template.text
        if route.name == "zzApiOperations":
            example = "/any/path"  # its simplest example, "/", is the console's for GET (consoleHome), by design
        for method in _methods(route):
            found = routes.find(method, example)
            assert found is not None and found.route.name == route.name, (method, example, route.name)


@pytest.mark.parametrize(
    ("method", "path", "function"),
    [
        ("GET", "/ExternalData/GetCacheData/s1", "getCacheData"),
        ("POST", "/ExternalData/Accept/s1", "accept"),
        ("GET", "/management/scenarios", "managementScenarios"),
        ("GET", "/management/openapi.json", "managementOpenApi"),
        ("GET", "/health", "health"),
        ("GET", "/management/health", "managementHealth"),
        ("POST", "/health", "zzApiOperations"),  # the health check is GET only
        ("DELETE", "/management/users/alice", "managementUser"),
        ("PUT", "/management/scenarios", "zzApiOperations"),  # no management route allows PUT there
        ("GET", "/api/pet/1", "zzApiOperations"),
        ("GET", "/", "consoleHome"),
        ("GET", "/console/", "console"),
        ("GET", "/console/scenarios/s1/runs", "console"),
        ("GET", "/console/assets/0123456789abcdef/app.js", "console"),
        ("POST", "/", "zzApiOperations"),  # the console is GET only; other methods stay the API's
        ("GET", "/consoles", "zzApiOperations"),
    ],
)
def test_requests_reach_the_intended_function(routes: RouteTable[str], method: str, path: str, function: str) -> None:
    found = routes.find(method, path)
    assert found is not None and found.route.name == function


def _decorator_name(node: ast.expr) -> tuple[str, str | None]:
    """(``bp.route``-style name, its first argument as source) of a decorator."""
    call = node if isinstance(node, ast.Call) else None
    target = call.func if call else node
    name = ast.unparse(target)
    return name, ast.unparse(call.args[0]) if call and call.args else None


def test_every_http_function_handles_errors_under_its_own_name() -> None:
    """``handles_errors(name)`` names the function's span and its refusals (docs/operations.md,
    "Telemetry names"): it must wrap every HTTP function, with the name the host knows it by."""
    checked = 0
    for path in sorted((ROOT / "triggers").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef):
                continue
            decorators = dict(_decorator_name(d) for d in node.decorator_list)
            if "bp.route" not in decorators:
                continue
            checked += 1
            assert "handles_errors" in decorators, f"{path.name}: {node.name} is not wrapped by handles_errors(name)"
            assert decorators["handles_errors"] == decorators["bp.function_name"], f"{path.name}: {node.name}"
    assert checked > 10
