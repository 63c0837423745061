"""Completed runs per second, worker running, next to the storage floor of a run measured in the same run.

Junction: devhost on Azurite with the queue worker on, ``CLIENTS`` threads POST 1 KiB JSON
Accepts to a transform -> cache -> return scenario (``bench.load.LOAD_PROCESS``); the clock runs
from the first Accept sent to the last run's ``endedAt`` (written by the worker, same machine).
Every run is then checked complete and exactly once (``bench.load.check_exactly_once``).

Floor: the storage calls one complete run cannot avoid, made directly with the SDK by the same
number of threads against the same Azurite: Accept's three (scenario read, run insert, queue
send), the process's own cache write, the final run record and the message delete. The ratio is
Junction's time per completed run over the floor's.

``python -m bench.runs [--runs 2000]``; ``make bench`` runs it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.accept import _hammer
from bench.load import CLIENTS, LOAD_PROCESS, check_exactly_once, hammer, ledger, wait_until_settled
from bench.timing import cpu_seconds
from core.kernel.ids import new_run_id
from core.kernel.settings import load_settings
from core.scenarios import repository as scenarios
from core.store.storage import Storage
from devhost.azurite import free_port
from devhost.testing import DevhostProcess

ROOT = Path(__file__).resolve().parent.parent


def ended_times(storage: Storage, scenario_id: str) -> dict[str, tuple[float, float]]:
    """Each run's ``CreatedAt`` and ``EndedAt`` as POSIX times (both written by the app)."""

    def posix(text: Any) -> float:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()

    entities = storage.table("runs").query_entities(
        "PartitionKey eq @pk", parameters={"pk": scenario_id}, select=["RowKey", "CreatedAt", "EndedAt"]
    )
    return {str(e["RowKey"]): (posix(e["CreatedAt"]), posix(e["EndedAt"])) for e in entities if e.get("EndedAt")}


def machine_ceiling(cpu_ms_per_run: dict[str, float]) -> float:
    """Runs per second with every core busy with nothing but this work: the most the machine could complete."""
    return (os.cpu_count() or 1) * 1000 / sum(cpu_ms_per_run.values())


def measure_junction(
    connection_string: str, runs: int, clients: int = CLIENTS, prefix: str = "benchruns", azurite_pid: int | None = None
) -> dict[str, Any]:
    env = {"AzureWebJobsStorage": connection_string, "JUNCTION_TABLE_PREFIX": prefix}
    storage = Storage.from_settings(load_settings(env))
    document = {"name": "bench runs", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": LOAD_PROCESS}
    warm = scenarios.create_scenario(storage, document)
    scenario = scenarios.create_scenario(storage, document)
    with tempfile.TemporaryDirectory() as logs, DevhostProcess(ROOT, free_port(), env=env, log_path=Path(logs) / "devhost.log") as host:
        warm_result = hammer(f"{host.base_url}/ExternalData/Accept/{warm.id}", 200, clients=clients)
        wait_until_settled(storage, warm.id, len(warm_result.accepted), 120)
        url = f"{host.base_url}/ExternalData/Accept/{scenario.id}"
        assert host.process is not None
        devhost_cpu = cpu_seconds(host.process.pid)
        azurite_cpu = cpu_seconds(azurite_pid) if azurite_pid else 0.0
        client_cpu = time.process_time()
        started = time.time()
        result = hammer(url, runs, clients=clients)
        client_cpu = time.process_time() - client_cpu
        book = wait_until_settled(storage, scenario.id, len(result.accepted), 600)
        devhost_cpu = cpu_seconds(host.process.pid) - devhost_cpu
        azurite_cpu = (cpu_seconds(azurite_pid) - azurite_cpu) if azurite_pid else float("nan")
        if azurite_pid:  # the check's own queries of every run and cache entry are not the runs' work
            before = cpu_seconds(azurite_pid)
            ledger(storage, scenario.id)
            azurite_cpu -= cpu_seconds(azurite_pid) - before
        tracebacks = host.log_text().count("Traceback")
    problems = check_exactly_once(result, book)
    if tracebacks:
        problems.append(f"{tracebacks} tracebacks in the devhost log")
    times = ended_times(storage, scenario.id)
    seconds = (max(end for _, end in times.values()) - started) if times else float("inf")
    done = max(len(book.runs), 1)
    cpu_ms = {"devhost": devhost_cpu / done * 1000, "azurite": azurite_cpu / done * 1000, "client": client_cpu / done * 1000}
    return {
        "runs": len(book.runs),
        "seconds": seconds,
        "runs_per_s": len(book.runs) / seconds,
        "accepts_per_s": result.rps,
        "problems": problems,
        "cpu_ms_per_run": cpu_ms,
        "machine_ceiling_runs_per_s": machine_ceiling(cpu_ms),
    }


def measure_floor(
    connection_string: str, runs: int, clients: int = CLIENTS, prefix: str = "benchrunsfloor", azurite_pid: int | None = None
) -> dict[str, Any]:
    storage = Storage.from_settings(load_settings({"AzureWebJobsStorage": connection_string, "JUNCTION_TABLE_PREFIX": prefix}))
    document = {"name": "bench floor", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": LOAD_PROCESS}
    scenario = scenarios.create_scenario(storage, document)
    table, runs_table, cache, queue = storage.table("scenarios"), storage.table("runs"), storage.table("cache"), storage.queue()
    text = "x" * 1400  # about the size of a run message carrying a 1 KiB body

    def floor_worker() -> Callable[[], bool]:
        def call() -> bool:
            table.get_entity("scenario", scenario.id)
            run_id = new_run_id()
            runs_table.create_entity({"PartitionKey": scenario.id, "RowKey": run_id, "Status": "queued", "Trigger": str(uuid.uuid4())})
            sent = queue.send_message(text)
            cache.upsert_entity({"PartitionKey": scenario.id, "RowKey": uuid.uuid4().hex, "Key": "1", "Value": b"1"})
            runs_table.update_entity({"PartitionKey": scenario.id, "RowKey": run_id, "Status": "succeeded", "Output": b"1"}, mode="merge")
            queue.delete_message(sent.id, sent.pop_receipt)
            return True

        return call

    _hammer(100, floor_worker)
    python_cpu, azurite_cpu = time.process_time(), cpu_seconds(azurite_pid) if azurite_pid else 0.0
    sample = _hammer(runs, floor_worker)
    python_cpu = time.process_time() - python_cpu
    azurite_cpu = (cpu_seconds(azurite_pid) - azurite_cpu) if azurite_pid else float("nan")
    cpu_ms = {"sdk": python_cpu / runs * 1000, "azurite": azurite_cpu / runs * 1000}
    return {
        "runs": runs,
        "seconds": sample.seconds,
        "runs_per_s": sample.rps,
        "errors": sample.errors,
        "cpu_ms_per_run": cpu_ms,
        "machine_ceiling_runs_per_s": machine_ceiling(cpu_ms),
    }


def run(connection_string: str, runs: int = 2000, azurite_pid: int | None = None) -> dict[str, Any]:
    junction = measure_junction(connection_string, runs, azurite_pid=azurite_pid)
    floor = measure_floor(connection_string, runs, azurite_pid=azurite_pid)
    return {"clients": CLIENTS, "junction": junction, "floor": floor, "ratio": floor["runs_per_s"] / junction["runs_per_s"]}


def report(result: dict[str, Any]) -> str:
    j, f = result["junction"], result["floor"]
    lines = [
        f"Completed runs, transform -> cache -> return, {result['clients']} clients, worker on, {j['runs']} runs:",
        f"    Junction via devhost: {j['runs_per_s']:.0f} runs/s ({j['seconds']:.1f} s from first Accept to last run ended;"
        f" Accepts at {j['accepts_per_s']:.0f}/s)",
        f"    floor (6 SDK calls):  {f['runs_per_s']:.0f} runs/s",
        f"    ratio Junction/floor: time per run {result['ratio']:.2f} (target <= 1.5; goal >= 150 runs/s)",
    ]
    cpu = j.get("cpu_ms_per_run")
    if cpu:
        lines.append(
            f"    CPU per completed run: devhost {cpu['devhost']:.2f} ms, Azurite {cpu['azurite']:.2f} ms, client {cpu['client']:.2f} ms;"
            f" {os.cpu_count()} cores busy with nothing else would complete at most {j['machine_ceiling_runs_per_s']:.0f} runs/s"
        )
    cpu = f.get("cpu_ms_per_run")
    if cpu:
        lines.append(
            f"    CPU per floor run: SDK threads {cpu['sdk']:.2f} ms, Azurite {cpu['azurite']:.2f} ms;"
            f" at most {f['machine_ceiling_runs_per_s']:.0f} runs/s on {os.cpu_count()} cores"
        )
    if j["problems"]:
        lines.append("    NOT EXACTLY ONCE: " + "; ".join(j["problems"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from devhost.azurite import Azurite

    parser = argparse.ArgumentParser(prog="python -m bench.runs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as emulator:
        result = run(emulator.connection_string, args.runs, emulator.process.pid if emulator.process else None)
    print(report(result))
    return 1 if result["junction"]["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
