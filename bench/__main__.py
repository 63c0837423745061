"""``make bench``: every benchmark, each next to a floor measured in the same run.

Prints a report and writes it to bench/results/latest.md; the README quotes a run of it.
"""

from __future__ import annotations

import platform
import sys
import tempfile
from pathlib import Path

from bench import (
    accept,
    basic_flood,
    bench_aad,
    bench_api_latency,
    bench_engine,
    bench_routes,
    coldstart,
    http_concurrency,
    latency,
    partition_model,
    run_cost,
    runs,
    schedule_start,
    signed_accept,
    storage_calls,
    traffic,
)
from devhost.azurite import Azurite

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    sections: list[str] = [f"machine: {platform.machine()}, Python {platform.python_version()}"]
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as emulator:
        counted = storage_calls.run(emulator.connection_string)
        sections.append(storage_calls.report(counted))
        print(sections[-1], flush=True)
        sections.append(partition_model.report(partition_model.model(counted["run"])))
        print(sections[-1], flush=True)
        sections.append(accept.report(accept.run(emulator.connection_string)))
        print(sections[-1], flush=True)
        sections.append(signed_accept.report(signed_accept.run(emulator.connection_string)))
        print(sections[-1], flush=True)
        sections.append(runs.report(runs.run(emulator.connection_string, azurite_pid=emulator.process.pid if emulator.process else None)))
        print(sections[-1], flush=True)
        sections.append(latency.report(latency.run(emulator.connection_string)))
        print(sections[-1], flush=True)
        sections.append(run_cost.report(run_cost.run(emulator.connection_string)))
        print(sections[-1], flush=True)
        sections.append(bench_api_latency.report(bench_api_latency.run(emulator.connection_string)))
        print(sections[-1], flush=True)
        sections.append(traffic.report(traffic.run(emulator.connection_string)))
        print(sections[-1], flush=True)
        sections.append(bench_routes.report(bench_routes.run(emulator.connection_string)))
        print(sections[-1], flush=True)
        sections.append(basic_flood.report(basic_flood.run(emulator.connection_string)))
        print(sections[-1], flush=True)
        sections.append(http_concurrency.report(http_concurrency.run(emulator.connection_string)))
        print(sections[-1], flush=True)
        sections.append(schedule_start.report(schedule_start.run(emulator.connection_string)))
        print(sections[-1], flush=True)
    sections.append(coldstart.report(coldstart.run()))
    print(sections[-1], flush=True)
    sections.append(bench_engine.report(bench_engine.run()))
    print(sections[-1], flush=True)
    aad = bench_aad.run()
    sections.append(bench_aad.report(aad))
    print(sections[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text("\n\n".join(sections) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
