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
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.accept import _hammer
from bench.load import CLIENTS, LOAD_PROCESS, check_exactly_once, hammer, wait_until_settled
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


def measure_junction(connection_string: str, runs: int, clients: int = CLIENTS, prefix: str = "benchruns") -> dict[str, Any]:
    env = {"AzureWebJobsStorage": connection_string, "JUNCTION_TABLE_PREFIX": prefix}
    storage = Storage.from_settings(load_settings(env))
    document = {"name": "bench runs", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": LOAD_PROCESS}
    warm = scenarios.create_scenario(storage, document)
    scenario = scenarios.create_scenario(storage, document)
    with tempfile.TemporaryDirectory() as logs, DevhostProcess(ROOT, free_port(), env=env, log_path=Path(logs) / "devhost.log") as host:
        warm_result = hammer(f"{host.base_url}/ExternalData/Accept/{warm.id}", 200, clients=clients)
        wait_until_settled(storage, warm.id, len(warm_result.accepted), 120)
        url = f"{host.base_url}/ExternalData/Accept/{scenario.id}"
        started = time.time()
        result = hammer(url, runs, clients=clients)
        book = wait_until_settled(storage, scenario.id, len(result.accepted), 600)
        tracebacks = host.log_text().count("Traceback")
    problems = check_exactly_once(result, book)
    if tracebacks:
        problems.append(f"{tracebacks} tracebacks in the devhost log")
    times = ended_times(storage, scenario.id)
    seconds = (max(end for _, end in times.values()) - started) if times else float("inf")
    return {
        "runs": len(book.runs),
        "seconds": seconds,
        "runs_per_s": len(book.runs) / seconds,
        "accepts_per_s": result.rps,
        "problems": problems,
    }


def measure_floor(connection_string: str, runs: int, clients: int = CLIENTS, prefix: str = "benchrunsfloor") -> dict[str, Any]:
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
    sample = _hammer(runs, floor_worker)
    return {"runs": runs, "seconds": sample.seconds, "runs_per_s": sample.rps, "errors": sample.errors}


def run(connection_string: str, runs: int = 2000) -> dict[str, Any]:
    junction = measure_junction(connection_string, runs)
    floor = measure_floor(connection_string, runs)
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
    if j["problems"]:
        lines.append("    NOT EXACTLY ONCE: " + "; ".join(j["problems"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from devhost.azurite import Azurite

    parser = argparse.ArgumentParser(prog="python -m bench.runs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as emulator:
        result = run(emulator.connection_string, args.runs)
    print(report(result))
    return 1 if result["junction"]["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
