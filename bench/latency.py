"""Latency from Accept answered to run succeeded: at 1 client, at 16 clients, and after an idle queue.

devhost on Azurite with the queue worker on, a transform -> cache -> return scenario
(``bench.load.LOAD_PROCESS``). For each run: the run record's ``endedAt`` (written by the worker)
minus the moment the client had Accept's answer (same machine, same clock; ``endedAt`` has
millisecond precision). host.json decides the figures (README, "Throughput, latency and cost"):
``maxPollingInterval`` the wait after an idle spell, ``batchSize`` and ``newBatchThreshold`` how
many runs one instance executes at once under load.

- *1 client*: Accepts one after another, each sent once the previous run has ended;
- *16 clients*: 16 threads sending Accepts as fast as they are answered, so runs queue up when
  Accepts come faster than one instance executes them;
- *after idle*: the queue empty for 3 s plus a random 0–2 s before one Accept, so that the
  poller's back-off has reached ``maxPollingInterval`` and the Accept lands anywhere in its cycle.

``python -m bench.latency [--runs 1000] [--idle-samples 10]``; ``make bench`` runs it.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.load import CLIENTS, LOAD_PROCESS, Outcome, body, hammer, wait_until_settled
from bench.runs import ended_times
from core.kernel.settings import load_settings
from core.scenarios import repository as scenarios
from core.store.storage import Storage
from devhost.azurite import free_port
from devhost.testing import DevhostProcess

ROOT = Path(__file__).resolve().parent.parent


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))] * 1000


def _latencies(storage: Storage, scenario_id: str, answered: dict[str, float]) -> list[float]:
    ended = ended_times(storage, scenario_id)
    return [ended[run_id][1] - at for run_id, at in answered.items() if run_id in ended]


def _wait_ended(storage: Storage, scenario_id: str, run_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    table = storage.table("runs")
    while time.monotonic() < deadline:
        if table.get_entity(scenario_id, run_id).get("EndedAt"):
            return
        time.sleep(0.01)
    raise TimeoutError(f"run {run_id} did not end within {timeout} s")


def _sequential(storage: Storage, url: str, scenario_id: str, count: int, pause: tuple[float, float] = (0.0, 0.0)) -> list[float]:
    answered: dict[str, float] = {}
    with httpx.Client(timeout=30) as client:
        for n in range(count):
            if pause[1]:
                time.sleep(random.uniform(*pause))
            response = client.post(url, content=body(n), headers={"Content-Type": "application/json"})
            at = time.time()
            run_id = response.headers["X-Run-Id"]
            answered[run_id] = at
            _wait_ended(storage, scenario_id, run_id)
    return _latencies(storage, scenario_id, answered)


def run(connection_string: str, runs: int = 1000, idle_samples: int = 10, idle: float = 3.0) -> dict[str, Any]:
    env = {"AzureWebJobsStorage": connection_string, "JUNCTION_TABLE_PREFIX": "benchlatency"}
    storage = Storage.from_settings(load_settings(env))
    document = {"name": "bench latency", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": LOAD_PROCESS}
    ids = {name: scenarios.create_scenario(storage, document).id for name in ("warm", "1 client", "16 clients", "after idle")}
    result: dict[str, Any] = {"clients": CLIENTS}
    with tempfile.TemporaryDirectory() as logs, DevhostProcess(ROOT, free_port(), env=env, log_path=Path(logs) / "devhost.log") as host:

        def url(name: str) -> str:
            return f"{host.base_url}/ExternalData/Accept/{ids[name]}"

        _sequential(storage, url("warm"), ids["warm"], 20)
        result["1 client"] = _sequential(storage, url("1 client"), ids["1 client"], min(runs, 200))
        answered: dict[str, float] = {}
        lock = threading.Lock()

        def note(outcome: Outcome) -> None:
            if outcome.run_id:
                with lock:
                    answered[outcome.run_id] = time.time()

        sent = hammer(url("16 clients"), runs, clients=CLIENTS, on_outcome=note)
        wait_until_settled(storage, ids["16 clients"], len(sent.accepted), 600)
        result["16 clients"] = _latencies(storage, ids["16 clients"], answered)
        result["after idle"] = _sequential(storage, url("after idle"), ids["after idle"], idle_samples, (idle, idle + 2.0))
    return result


def report(result: dict[str, Any]) -> str:
    lines = ["Latency, Accept answered -> run succeeded (transform -> cache -> return, worker on):"]
    for name in ("1 client", "16 clients", "after idle"):
        values = result[name]
        lines.append(f"    {name:10}: {len(values)} runs, p50 {_percentile(values, 0.5):.0f} ms, p99 {_percentile(values, 0.99):.0f} ms, max {_percentile(values, 1.0):.0f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from devhost.azurite import Azurite

    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--idle-samples", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as emulator:
        print(report(run(emulator.connection_string, args.runs, args.idle_samples)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
