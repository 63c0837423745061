"""Route matching per request with 10 and with 10,000 bound operations, in the same run.

The tables are built in memory through ``core.apiops.routes`` (no storage): the question is whether
finding the operation for a request costs more when many are bound. Target: the 10,000 case at
most 1.5 times the 10 case per request.

With a connection string (``run(connection_string)``), it also times ``prepare_call`` for a
bound anonymous operation against Azurite: the route marker's point read plus parameters, i.e.
the gateway's share of an API call's latency.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from bench.timing import best_per_call
from core.apiops.routes import BoundOperation, RouteTable

TARGET_RATIO = 1.5


def _operations(count: int) -> list[BoundOperation]:
    """``count`` operations of three shapes: integer parameter, literal beside it, string parameter."""
    ops: list[BoundOperation] = []
    shapes = (
        ("GET", "/api/svc{i}/items/{{id}}", {"id": "integer"}),
        ("GET", "/api/svc{i}/items/status", {}),
        ("POST", "/api/svc{i}/files/{{name}}", {"name": "string"}),
    )
    i = 0
    while len(ops) < count:
        method, template, types = shapes[len(ops) % 3]
        path = template.format(i=i)
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": t}} for n, t in types.items()]
        operation = {"operationId": f"op{len(ops)}", "method": method, "path": path, "parameters": params}
        ops.append(BoundOperation.from_parts("bench", operation, {"scenarioId": "bench"}))
        if len(ops) % 3 == 0:
            i += 1
    return ops


def _requests(ops: list[BoundOperation], n: int, rng: random.Random) -> list[tuple[str, str]]:
    out = []
    for _ in range(n):
        op = rng.choice(ops)
        path = op.path.replace("{id}", str(rng.randint(1, 10**6))).replace("{name}", f"file{rng.randint(1, 999)}.txt")
        out.append((op.method, path))
    return out


def _per_request(table: RouteTable, requests: list[tuple[str, str]], rounds: int) -> float:

    def match_all() -> None:
        for method, path in requests:
            table.match(method, path)

    return best_per_call(match_all, 1, rounds) / len(requests)


def run(connection_string: str | None = None, requests: int = 20_000, rounds: int = 7) -> dict[str, Any]:
    rng = random.Random(5)
    result: dict[str, Any] = {"target_ratio": TARGET_RATIO}
    for count in (10, 10_000):
        ops = _operations(count)
        start = time.perf_counter()
        table = RouteTable(ops)
        build = time.perf_counter() - start
        result[count] = {"build_s": build, "per_request_us": _per_request(table, _requests(ops, requests, rng), rounds) * 1e6}
    result["ratio"] = result[10_000]["per_request_us"] / result[10]["per_request_us"]
    if connection_string:
        result["prepare_call"] = _prepare_call(connection_string)
    return result


def _prepare_call(connection_string: str, calls: int = 300) -> dict[str, float]:
    import json

    from core.apiops import bindings as apis
    from core.apiops.gateway import prepare_call
    from core.kernel.settings import load_settings
    from core.scenarios import repository as scenarios
    from core.store.storage import Storage
    from core.web.exchange import Request

    settings = load_settings({"AzureWebJobsStorage": connection_string, "JUNCTION_TABLE_PREFIX": "benchroutes"})
    storage = Storage.from_settings(settings)
    sid = scenarios.create_scenario(storage, {"name": "bench", "process": {"steps": [{"type": "return", "value": "ok"}]}}).id
    document = {
        "openapi": "3.0.3",
        "info": {"title": "bench", "version": "1"},
        "servers": [{"url": "/api"}],
        "paths": {"/pet/{id}": {"get": {"operationId": "getPet", "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}], "responses": {"200": {"description": "ok"}}}}},
    }
    apis.import_api(storage, "bench", json.dumps(document).encode(), "application/json")
    apis.bind_operation(storage, settings, "bench", "getPet", {"scenarioId": sid})
    request = Request("GET", "http://localhost/api/pet/7", "/api/pet/7", headers={"accept": "application/json"})
    prepare_call(storage, settings, request)  # warm-up: loads the table
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        prepare_call(storage, settings, request)
        times.append(time.perf_counter() - start)
    times.sort()
    return {"median_ms": statistics.median(times) * 1e3, "p95_ms": times[int(len(times) * 0.95)] * 1e3}


def report(result: dict[str, Any]) -> str:
    small, large = result[10], result[10_000]
    verdict = "meets" if result["ratio"] <= result["target_ratio"] else "MISSES"
    lines = [
        "## API route matching (core.apiops.routes)",
        "",
        "| bound operations | per request | table build |",
        "|---:|---:|---:|",
        f"| 10 | {small['per_request_us']:.2f} µs | {small['build_s'] * 1e3:.2f} ms |",
        f"| 10,000 | {large['per_request_us']:.2f} µs | {large['build_s'] * 1e3:.0f} ms |",
        "",
        f"ratio 10,000 / 10: {result['ratio']:.2f} ({verdict} the target of at most {result['target_ratio']})",
    ]
    if "prepare_call" in result:
        pc = result["prepare_call"]
        lines += ["", f"prepare_call for a bound operation against Azurite (marker read + cast): median {pc['median_ms']:.2f} ms, p95 {pc['p95_ms']:.2f} ms"]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys
    import tempfile
    from pathlib import Path

    if "--azurite" in sys.argv:
        from devhost.azurite import Azurite

        with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as emulator:
            print(report(run(emulator.connection_string)))
    else:
        print(report(run()))
