"""Time and memory per run on one core: the inputs of docs/deploy.md's cost per million runs.

Runs are queued first (straight through ``core.runs.starter``, as Accept queues them); then
devhost starts with only its queue worker working, pinned to one CPU as a 2,048 MB Flex
Consumption instance has one core, and executes them. Measured: runs per second of that one
core (from the first run's ``startedAt`` to the last one's ``endedAt``, both written by the
worker) and the process's peak resident memory. Two processes:

- *demo*: transform -> cache -> return (``bench.load.LOAD_PROCESS``);
- *http step*: transform -> ``http`` POST to a local upstream stand-in that answers at once ->
  return. An upstream on a network answers later; the wait is billed but shared by the runs an
  instance executes at once (docs/deploy.md, "Cost per million runs").

``python -m bench.run_cost [--runs 1000]`` (Linux, for the CPU pinning); ``make bench`` runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.load import LOAD_PROCESS, wait_until_settled
from bench.runs import ended_times
from bench.timing import cpu_seconds
from core.kernel.settings import load_settings
from core.runs.starter import start_run
from core.scenarios import repository as scenarios
from core.store.storage import Storage
from devhost.azurite import free_port
from devhost.testing import DevhostProcess

ROOT = Path(__file__).resolve().parent.parent


def http_process(url: str) -> dict[str, Any]:
    return {
        "steps": [
            {"type": "transform", "id": "got", "expression": "data[0].Body"},
            {"type": "http", "id": "erp", "method": "POST", "url": url, "body": "#steps.got", "bodyType": "json", "timeout": 10, "retries": 0},
            {"type": "return", "value": {"jmespath": "{n: steps.got.n, erp: steps.erp.status}"}},
        ]
    }


class _Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - the standard library's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"accepted": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the standard library's name
        pass


@contextlib.contextmanager
def upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _queue(storage: Storage, scenario: Any, runs: int) -> None:
    def one(n: int) -> None:
        body = {"n": n, "pad": "x" * 1000}
        trigger = {"type": "accept", "method": "POST", "contentType": "application/json", "bodyBytes": 1024, "caller": {"kind": "anonymous"}}
        start_run(storage, scenario.id, trigger, body=body, has_body=True, principal=None, scenario_etag=scenario.etag)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(runs)))


def _execute_on_one_cpu(env: dict[str, str], storage: Storage, scenario_id: str, runs: int) -> dict[str, Any]:
    cpus = set(os.sched_getaffinity(0))
    mine = min(cpus)
    os.sched_setaffinity(0, {mine})  # devhost inherits it
    try:
        with tempfile.TemporaryDirectory() as logs, DevhostProcess(ROOT, free_port(), env=env, args=["--no-timers"], log_path=Path(logs) / "devhost.log") as host:
            os.sched_setaffinity(0, cpus - {mine} or cpus)
            assert host.process is not None
            cpu_before = cpu_seconds(host.process.pid)
            book = wait_until_settled(storage, scenario_id, runs, 600)
            cpu = cpu_seconds(host.process.pid) - cpu_before
            peak = _peak_rss_mb(host.process.pid)
    finally:
        os.sched_setaffinity(0, cpus)
    times = ended_times(storage, scenario_id)
    started = min(_started(storage, scenario_id).values())
    seconds = max(end for _, end in times.values()) - started
    statuses = book.statuses()
    return {
        "runs": len(times),
        "seconds": seconds,
        "runs_per_s": len(times) / seconds,
        "cpu_ms_per_run": cpu / len(times) * 1000,
        "peak_rss_mb": peak,
        "statuses": statuses,
    }


def _started(storage: Storage, scenario_id: str) -> dict[str, float]:
    from datetime import datetime

    entities = storage.table("runs").query_entities("PartitionKey eq @pk", parameters={"pk": scenario_id}, select=["RowKey", "StartedAt"])
    return {str(e["RowKey"]): datetime.fromisoformat(str(e["StartedAt"]).replace("Z", "+00:00")).timestamp() for e in entities}


def run(connection_string: str, runs: int = 1000) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with upstream() as port:
        env = {
            "AzureWebJobsStorage": connection_string,
            "JUNCTION_TABLE_PREFIX": "benchcost",
            "JUNCTION_OUTBOUND_ALLOWED_HOSTS": f"127.0.0.1:{port}",
        }
        settings = load_settings(env)
        storage = Storage.from_settings(settings)
        processes = {"demo": LOAD_PROCESS, "http step": http_process(f"http://127.0.0.1:{port}/orders")}
        for name, process in processes.items():
            document = {"name": f"cost {name}", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": process}
            scenario = scenarios.create_scenario(storage, document, settings.outbound_allowed_hosts)
            _queue(storage, scenario, runs)
            result[name] = _execute_on_one_cpu(env, storage, scenario.id, runs)
    return result


def report(result: dict[str, Any]) -> str:
    lines = ["Time and memory per run, the worker alone on one CPU (docs/deploy.md, Cost per million runs):"]
    for name, r in result.items():
        lines.append(
            f"    {name:9}: {r['runs']} runs in {r['seconds']:.1f} s = {r['runs_per_s']:.0f} runs/s ({1000 / r['runs_per_s']:.1f} ms of one core a run;"
            f" the process's own CPU {r['cpu_ms_per_run']:.1f} ms a run),"
            f" peak RSS {r['peak_rss_mb']:.0f} MB, {json.dumps(r['statuses'])}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from devhost.azurite import Azurite

    parser = argparse.ArgumentParser(prog="python -m bench.run_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as emulator:
        print(report(run(emulator.connection_string, args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
