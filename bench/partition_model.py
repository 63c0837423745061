"""Past one partition: the ceiling Azure Storage's scalability targets put on runs per second.

Fed by the storage calls of one complete run as ``bench.storage_calls`` counts them (Accept, the
worker, the host's receive and delete), each sorted by what it loads: one table partition
(which one, and whether every scenario shares it or each has its own), the run queue, and the
account as a whole. Each target divided by the calls per run that load it is a ceiling in runs
per second; the lowest is the one that binds. docs/architecture.md, "Past one partition",
quotes the output and says how each ceiling moves.

The targets (Azure Storage scalability targets for standard accounts): 2,000 entities per second
per table partition, 2,000 messages per second per queue, 20,000 requests per second per account.

``python -m bench.partition_model`` (counts on Azurite); ``make bench`` prints it after the counts.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PARTITION_TARGET = 2000
QUEUE_TARGET = 2000
ACCOUNT_TARGET = 20_000
BATCH = 16  # host.json batchSize: one receive serves up to this many messages

# The calls of one complete run before the worker claimed runs by ETag and reused scenario
# versions (measured with bench.storage_calls at commit 137be9f): Accept's three, then the
# worker's run read, running write, scenario read, cache write and final write, and the delete.
BEFORE = [
    "table scenarios (shared partition)",
    "table runs (scenario's partition)",
    "queue",
    "table runs (scenario's partition)",
    "table runs (scenario's partition)",
    "table scenarios (shared partition)",
    "table cache (scenario's partition)",
    "table runs (scenario's partition)",
    "queue",
]


def target_of(call: str) -> str:
    """What one logged call (``METHOD url``) loads."""
    if "/messages" in call:
        return "queue"
    match = re.search(r"/devstoreaccount1/[a-z0-9]*?(scenarios|runs|cache|tokens|idempotency)(\(|$|\?)", call)
    if not match:
        return "other"
    table = match.group(1)
    shared = table in ("scenarios", "tokens")  # one partition ('scenario', 'token') for all
    return f"table {table} ({'shared partition' if shared else 'scenario' + chr(39) + 's partition'})"


def loads(calls: list[str], receives_per_run: float) -> Counter[str]:
    counted: Counter[str] = Counter(calls)
    counted["queue"] += receives_per_run
    return counted


@dataclass(frozen=True)
class Layout:
    """How storage is laid out: 1 everywhere is one partition, queue and account; the design of
    docs/architecture.md spreads each hot spot over several partitions, queues or accounts."""

    name: str
    run_buckets: int = 1  # run partitions per scenario: scenario id + hash(run id) % buckets
    cache_buckets: int = 1  # cache partitions per scenario: scenario id + hash(key) % buckets
    scenario_reads: float = 1.0  # Accept's scenario reads per run; held 1 s per instance: ~0
    queues: int = 1  # run queues, each with its own trigger
    accounts: int = 1  # storage accounts the tables and queues are spread over


READ_EVERY_TIME = Layout("one partition each, the scenario read by every Accept")
HELD = Layout("one partition each, the scenario held 1 s per instance", scenario_reads=0.0)
DESIGN = Layout("the design (8 run and 8 cache buckets, scenarios held 1 s, 4 queues, 4 accounts)", 8, 8, 0.0, 4, 4)
SCENARIO_READ = "table scenarios (shared partition)"


def ceilings(per_run: Counter[str], layout: Layout, *, one_scenario: bool) -> dict[str, float]:
    """Runs per second each target allows, for one hot scenario or runs spread over many.

    ``per_run`` leaves Accept's scenario read out; ``layout.scenario_reads`` puts it back. A held
    scenario is read once a second per instance and scenario: next to 2,000 a second, ~0 a run
    while instances times busy scenarios stay well below 2,000.
    """
    limits: dict[str, float] = {}
    per_run = Counter(per_run)
    per_run[SCENARIO_READ] += layout.scenario_reads
    for target, count in per_run.items():
        if target == "queue":
            limits[f"run queues: {layout.queues} x 2,000 messages/s"] = QUEUE_TARGET * layout.queues
        elif target.startswith("table") and count:
            spread = {"runs": layout.run_buckets, "cache": layout.cache_buckets}.get(target.split()[1], 1)
            if "scenario's partition" in target and not one_scenario:
                continue  # many scenarios: many partitions, none of them hot
            limits[f"{target}: {count:g} per run over {spread} partition(s)"] = PARTITION_TARGET * spread / count
    total = sum(per_run.values())
    limits[f"accounts: {layout.accounts} x 20,000 requests/s, {total:.2f} requests per run"] = ACCOUNT_TARGET * layout.accounts / total
    return limits


def without_accept_read(calls: list[str]) -> list[str]:
    """Accept's calls with its scenario read (of the shared scenario partition) left out."""
    rest = list(calls)
    if SCENARIO_READ in rest:
        rest.remove(SCENARIO_READ)
    return rest


def model(run_calls: dict[str, list[str]]) -> dict[str, Any]:
    """Ceilings from ``bench.storage_calls``'s calls of one complete run (Accept's scenario read
    put back where the layout reads it): before this issue's work, with the scenario read by every
    Accept, with it held as now, and in the design."""
    counted = [
        target
        for who, calls in run_calls.items()
        if not who.startswith("host: receive")
        for target in (without_accept_read if who == "accept" else list)([target_of(c) for c in calls])
    ]
    cases = {
        "before (9 calls a run: the worker also read the record and the scenario)": (loads(without_accept_read(BEFORE), 1 / BATCH), READ_EVERY_TIME),
        f"the scenario read by every Accept ({len(counted) + 1} calls a run)": (loads(counted, 1 / BATCH), READ_EVERY_TIME),
        f"now ({len(counted)} calls a run), {HELD.name}": (loads(counted, 1 / BATCH), HELD),
        f"now, {DESIGN.name}": (loads(counted, 1 / BATCH), DESIGN),
    }
    return {
        name: {scope: ceilings(per_run, layout, one_scenario=scope == "one scenario") for scope in ("one scenario", "many scenarios")}
        for name, (per_run, layout) in cases.items()
    }


def report(result: dict[str, Any]) -> str:
    lines = ["Past one partition: runs/s each Azure Storage target allows (the lowest binds):"]
    for case, scopes in result.items():
        lines.append(f"    {case}:")
        for scope, limits in scopes.items():
            binding = min(limits, key=lambda k: limits[k])
            lines.append(f"        {scope}: {limits[binding]:,.0f} runs/s, bound by {binding}")
    return "\n".join(lines)


def main() -> int:
    from bench import storage_calls
    from devhost.azurite import Azurite

    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as emulator:
        counted = storage_calls.run(emulator.connection_string)
    print(report(model(counted["run"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
