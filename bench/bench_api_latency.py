"""A bound API operation's end-to-end latency next to an Accept call, in the same run.

Both go through devhost on Azurite from one client, one call at a time. The operation runs a
one-step process while the caller waits (run insert, running, result: its storage work is the
run record plus the route marker read); Accept records the run and enqueues it. devhost runs
with ``--no-queues`` so queued work does not compete for the cores.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from core.apiops import bindings as apis
from core.kernel.settings import load_settings
from core.scenarios import repository as scenarios
from core.store.storage import Storage
from devhost.azurite import free_port
from devhost.testing import DevhostProcess

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = (
    b'{"openapi": "3.0.3", "info": {"title": "bench", "version": "1"}, "servers": [{"url": "/bench"}],'
    b' "paths": {"/orders/{id}": {"get": {"operationId": "getOrder", "parameters": [{"name": "id", "in": "path",'
    b' "required": true, "schema": {"type": "integer"}}], "responses": {"200": {"description": "ok"}}}}}}'
)


def _latencies(client: httpx.Client, method: str, url: str, calls: int, **kwargs: Any) -> list[float]:
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        response = client.request(method, url, **kwargs)
        out.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return out


def run(connection_string: str, calls: int = 300) -> dict[str, Any]:
    env = {"AzureWebJobsStorage": connection_string, "JUNCTION_TABLE_PREFIX": "benchapi"}
    settings = load_settings(env)
    storage = Storage.from_settings(settings)
    document = {"name": "bench", "externalTriggers": {"enabled": True, "allowAnonymous": True},
                "process": {"steps": [{"type": "return", "value": {"jmespath": "{id: trigger.data.path.id}"}}]}}  # fmt: skip
    scenario = scenarios.create_scenario(storage, document)
    apis.import_api(storage, "bench", DOCUMENT, "application/json")
    apis.bind_operation(storage, settings, "bench", "getOrder", {"scenarioId": scenario.id, "authentication": {"type": "none"}})
    with DevhostProcess(ROOT, free_port(), env=env, args=["--no-queues", "--no-timers"]) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        accept_url = f"/ExternalData/Accept/{scenario.id}"
        body = {"content": b'{"id": 42}', "headers": {"Content-Type": "application/json"}}
        _latencies(client, "GET", "/bench/orders/42", 30)
        _latencies(client, "POST", accept_url, 30, **body)
        operation = _latencies(client, "GET", "/bench/orders/42", calls)
        accept = _latencies(client, "POST", accept_url, calls, **body)
    op_p50, accept_p50 = statistics.median(operation) * 1000, statistics.median(accept) * 1000
    return {"calls": calls, "operation_p50_ms": op_p50, "accept_p50_ms": accept_p50, "ratio": op_p50 / accept_p50}


def report(result: dict[str, Any]) -> str:
    return (
        f"Bound API operation vs Accept, one client, {result['calls']} calls each through devhost:\n"
        f"    operation (runs its process while the caller waits) p50 {result['operation_p50_ms']:.1f} ms, "
        f"Accept (records and enqueues) p50 {result['accept_p50_ms']:.1f} ms, ratio {result['ratio']:.2f}"
    )
