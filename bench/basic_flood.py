"""Other callers' latency while a flood of Basic sign-ins hashes passwords (issue 13, point 13).

Every Basic sign-in costs one scrypt (about 16 MiB and tens of milliseconds of a core), whether
the user exists or not. Before scrypt was limited to ``SCRYPT_SLOTS`` threads, a flood of wrong
passwords raised an anonymous operation's p50 from 13 ms to 220 ms on this kind of machine. The
floor is the same anonymous operation, one caller at a time, with no flood, measured in the same
run; the flood sends wrong passwords for ever-new user names from ever-new loopback addresses,
so that no throttle stops it before scrypt runs (the throttles are what an attacker avoids).
"""

from __future__ import annotations

import base64
import itertools
import statistics
import threading
import time
from collections import Counter
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
    b'{"openapi": "3.0.3", "info": {"title": "flood", "version": "1"}, "servers": [{"url": "/flood"}], "paths": {'
    b'"/open": {"get": {"operationId": "open", "responses": {"200": {"description": "ok"}}}},'
    b'"/secured": {"get": {"operationId": "secured", "responses": {"200": {"description": "ok"}}}}}}'
)
FLOODERS = 8


def _latencies(client: httpx.Client, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        response = client.get("/flood/open")
        out.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return out


def _flood(base_url: str, stop: threading.Event, names: itertools.count, statuses: Counter[int], lock: threading.Lock) -> None:
    while not stop.is_set():
        n = next(names)
        address = f"127.{1 + n // 65025 % 254}.{n // 255 % 255}.{1 + n % 254}"
        credentials = base64.b64encode(f"flood-{n}:wrong".encode()).decode()
        with httpx.Client(base_url=base_url, timeout=30, transport=httpx.HTTPTransport(local_address=address)) as client:
            status = client.get("/flood/secured", headers={"Authorization": f"Basic {credentials}"}).status_code
        with lock:
            statuses[status] += 1


def run(connection_string: str, calls: int = 200) -> dict[str, Any]:
    env = {"AzureWebJobsStorage": connection_string, "JUNCTION_TABLE_PREFIX": "benchflood"}
    settings = load_settings(env)
    storage = Storage.from_settings(settings)
    document = {"name": "flood", "process": {"steps": [{"type": "return", "value": "ok"}]}}
    scenario = scenarios.create_scenario(storage, document)
    apis.import_api(storage, "flood", DOCUMENT, "application/json")
    apis.bind_operation(storage, settings, "flood", "open", {"scenarioId": scenario.id, "authentication": {"type": "none"}})
    apis.bind_operation(storage, settings, "flood", "secured", {"scenarioId": scenario.id, "authentication": {"type": "basic"}})
    statuses: Counter[int] = Counter()
    with DevhostProcess(ROOT, free_port(), env=env, args=["--no-queues", "--no-timers"]) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        _latencies(client, 30)
        alone = _latencies(client, calls)
        stop, lock, names = threading.Event(), threading.Lock(), itertools.count()
        flooders = [threading.Thread(target=_flood, args=(server.base_url, stop, names, statuses, lock)) for _ in range(FLOODERS)]
        for thread in flooders:
            thread.start()
        try:
            time.sleep(1.0)  # let the flood fill the scrypt slots first
            flooded = _latencies(client, calls)
        finally:
            stop.set()
            for thread in flooders:
                thread.join()
    alone_p50, flooded_p50 = statistics.median(alone) * 1000, statistics.median(flooded) * 1000
    return {"calls": calls, "alone_p50_ms": alone_p50, "flooded_p50_ms": flooded_p50, "ratio": flooded_p50 / alone_p50, "flood_statuses": dict(sorted(statuses.items()))}


def report(result: dict[str, Any]) -> str:
    statuses = ", ".join(f"{status}: {count}" for status, count in result["flood_statuses"].items())
    return (
        f"Basic sign-in flood ({FLOODERS} clients, wrong passwords, new names and addresses) vs one anonymous caller, {result['calls']} calls:\n"
        f"    anonymous operation p50 alone {result['alone_p50_ms']:.1f} ms, during the flood {result['flooded_p50_ms']:.1f} ms, "
        f"ratio {result['ratio']:.2f}; flood answered {statuses}"
    )
