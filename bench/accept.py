"""Accept throughput and latency through devhost, next to the storage floor measured in the same run.

Junction: POST /ExternalData/Accept/{id} with a 1 KiB JSON body, 16 concurrent clients (each
with a keep-alive connection), against devhost on Azurite. Floor: the three storage calls one
Accept cannot avoid — scenario read, run insert, queue send — made directly with the SDK against
the same Azurite by 16 threads. devhost runs with ``--no-queues`` so the worker does not compete
for the two cores with the calls being timed.

``ROUNDS`` rounds, each timing Junction and then the floor, so that both see the same load on a
shared machine; the ratio reported is the median of the rounds' ratios (time per request).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.client import KeepAliveClient
from core.kernel.ids import new_run_id
from core.kernel.settings import load_settings
from core.scenarios import repository as scenarios
from core.store.storage import Storage
from devhost.azurite import free_port
from devhost.testing import DevhostProcess

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 16
ROUNDS = 5
BODY = json.dumps({"payload": "x" * 1000}).encode()[:1024]
PROCESS = {"steps": [{"type": "return", "value": "#trigger.data.body"}]}


@dataclasses.dataclass
class Sample:
    latencies: list[float]
    seconds: float
    errors: int

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _hammer(count: int, make_worker: Callable[[], Callable[[], bool]]) -> Sample:
    """Run ``count`` calls over CLIENTS threads; each thread gets its own worker (connection)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    remaining = [count]

    def loop() -> None:
        nonlocal errors
        call = make_worker()
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            started = time.perf_counter()
            ok = call()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                errors += 0 if ok else 1

    threads = [threading.Thread(target=loop) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Sample(latencies, time.perf_counter() - started, errors)


def run(connection_string: str, requests: int = 2000, rounds: int = ROUNDS) -> dict[str, Any]:
    env = {"AzureWebJobsStorage": connection_string, "JUNCTION_TABLE_PREFIX": "benchaccept"}
    settings = load_settings(env)
    storage = Storage.from_settings(settings)
    document = {"name": "bench", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": PROCESS}
    scenario = scenarios.create_scenario(storage, document)
    floor_storage = Storage.from_settings(settings)
    table, runs_table, queue = floor_storage.table("scenarios"), floor_storage.table("runs"), floor_storage.queue()

    def floor_worker() -> Callable[[], bool]:
        def call() -> bool:
            table.get_entity("scenario", scenario.id)
            runs_table.create_entity({"PartitionKey": scenario.id, "RowKey": new_run_id(), "Status": "queued", "Trigger": str(uuid.uuid4())})
            queue.send_message(BODY.decode())
            return True

        return call

    port = free_port()
    samples: list[tuple[Sample, Sample]] = []
    with DevhostProcess(ROOT, port, env=env, args=["--no-queues"]) as server:
        url = f"{server.base_url}/ExternalData/Accept/{scenario.id}"

        def junction_worker() -> Callable[[], bool]:
            client = KeepAliveClient(url)  # bench.client: a client that leaves the cores to what is measured
            headers = {"Content-Type": "application/json"}
            return lambda: client.post(url, BODY, headers).status == 200

        _hammer(200, junction_worker)  # warm-up: connections, tables, queue, caches
        _hammer(200, floor_worker)
        for _ in range(rounds):
            samples.append((_hammer(requests, junction_worker), _hammer(requests, floor_worker)))
    ratios = [floor.rps / junction.rps for junction, floor in samples]
    median_round = sorted(range(rounds), key=lambda i: ratios[i])[rounds // 2]
    junction, floor = samples[median_round]
    return {
        "requests": requests,
        "clients": CLIENTS,
        "rounds": rounds,
        "ratios": ratios,
        "junction": {"rps": junction.rps, "p50_ms": junction.percentile(0.5), "p99_ms": junction.percentile(0.99), "errors": junction.errors},
        "floor": {"rps": floor.rps, "p50_ms": floor.percentile(0.5), "p99_ms": floor.percentile(0.99), "errors": floor.errors},
        "ratio_time_per_request": statistics.median(ratios),
        "ratio_p50": junction.percentile(0.5) / floor.percentile(0.5),
        "median_ms": statistics.median(junction.latencies) * 1000,
    }


def report(result: dict[str, Any]) -> str:
    j, f = result["junction"], result["floor"]
    return "\n".join(
        [
            f"Accept, POST 1 KiB JSON, {result['clients']} clients, {result['requests']} requests a round, the median of {result['rounds']} rounds:",
            f"    Junction via devhost: {j['rps']:.0f} req/s, p50 {j['p50_ms']:.1f} ms, p99 {j['p99_ms']:.1f} ms, errors {j['errors']}",
            f"    floor (3 SDK calls):  {f['rps']:.0f} req/s, p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, errors {f['errors']}",
            f"    ratio Junction/floor: time per request {result['ratio_time_per_request']:.2f} (target <= 1.2; rounds "
            + ", ".join(f"{r:.2f}" for r in result["ratios"])
            + f"), p50 {result['ratio_p50']:.2f}",
        ]
    )


if __name__ == "__main__":
    import sys
    import tempfile

    from devhost.azurite import Azurite

    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as emulator:
        print(report(run(emulator.connection_string, int(sys.argv[1]) if len(sys.argv) > 1 else 2000)))
