"""How close to its due time a scheduled run starts, next to a plain delayed queue message.

Through devhost on Azurite with the queue and timer triggers running, as ``make run`` serves the
app. A scenario is saved (through the management API, which seeds its chain at once) with a
schedule due every ``--period`` seconds, long enough for both queue pollers to back off to
``maxPollingInterval`` (host.json: 2 s) between due times, as after a quiet spell. For each due
time, from the run record (written by the app; same clock as the due time, millisecond precision):

- *started*: ``createdAt`` minus the due time: the run recorded ``queued`` and its message sent
  (what "a schedule starts a run" means, as an Accept starts one);
- *running*: ``startedAt`` minus the due time: the worker picked the run up from the run queue,
  so this adds the run queue's own polling wait (docs/latency.md, section 1).

The floor, measured in the same run by the same devhost: a run message sent to the run queue with
a 2-second visibility delay (a plain delayed queue message, as a schedule message would be without
its lead), after the same quiet spell; its delay is ``startedAt`` minus the moment it became
visible. That is what a due time would wait if its message appeared at the due time.

``python -m bench.schedule_start [--samples 20] [--period 6]``; docs/latency.md quotes a run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from core.kernel import clock
from core.kernel.ids import new_run_id
from core.kernel.jsonvalue import dumps
from core.kernel.settings import load_settings
from core.runs import records as runs
from core.runs.messages import RunMessage, message_trigger
from core.store.storage import Storage
from devhost.azurite import Azurite, free_port
from devhost.testing import DevhostProcess

ROOT = Path(__file__).resolve().parent.parent
FLOOR_DELAY = 2


def _seconds(later: str, earlier: datetime) -> float:
    return (clock.parse_iso(later) - earlier).total_seconds()


def _ended(admin: httpx.Client, scenario_id: str, count: int) -> list[dict[str, object]]:
    listed = admin.get(f"/management/scenarios/{scenario_id}/runs", params={"top": count}).json()["value"]
    return [run for run in listed if run.get("status") in ("succeeded", "failed")]


def _scheduled(admin: httpx.Client, samples: int, period: int) -> dict[str, list[float]]:
    document = {"name": "bench schedule", "schedule": f"*/{period} * * * * *", "process": {"steps": [{"type": "return", "value": "done"}]}}
    scenario_id = admin.post("/management/scenarios", json=document).json()["id"]
    deadline = time.monotonic() + (samples + 3) * period + 30
    while time.monotonic() < deadline and len(_ended(admin, scenario_id, samples + 1)) < samples + 1:
        time.sleep(1)
    admin.patch(f"/management/scenarios/{scenario_id}", json={"schedule": None})
    listed = sorted(_ended(admin, scenario_id, samples + 1), key=lambda run: str(run["trigger"]["dueAt"]))[1:]  # type: ignore[index]
    delays: dict[str, list[float]] = {"started (recorded queued)": [], "running (picked up by the worker)": []}
    for run in listed:
        due = clock.parse_iso(str(run["trigger"]["dueAt"]))  # type: ignore[index]
        delays["started (recorded queued)"].append(_seconds(str(run["createdAt"]), due))
        delays["running (picked up by the worker)"].append(_seconds(str(run["startedAt"]), due))
    return delays


def _floor(storage: Storage, admin: httpx.Client, samples: int, idle: float) -> list[float]:
    document = {"name": "bench floor", "process": {"steps": [{"type": "return", "value": "done"}]}}
    scenario_id = admin.post("/management/scenarios", json=document).json()["id"]
    delays = []
    for _ in range(samples):
        time.sleep(idle + random.uniform(0.0, 2.0))
        run_id = new_run_id()
        trigger = {"type": "schedule", "caller": {"kind": "schedule"}}
        runs.insert_run(storage, scenario_id, run_id, trigger)
        text = dumps(RunMessage(scenario_id, run_id, None, False, message_trigger(trigger, None)).to_json())
        sent = datetime.now(UTC)
        storage.queue().send_message(text, visibility_timeout=FLOOR_DELAY)
        while True:
            run = admin.get(f"/management/scenarios/{scenario_id}/runs/{run_id}").json()
            if run.get("startedAt"):
                break
            time.sleep(0.05)
        delays.append(_seconds(run["startedAt"], sent) - FLOOR_DELAY)
    return delays


def run(connection_string: str, samples: int = 20, period: int = 6) -> dict[str, list[float]]:
    env = {"AzureWebJobsStorage": connection_string, "JUNCTION_TABLE_PREFIX": "benchsched"}
    storage = Storage.from_settings(load_settings(env))
    from core.identity.tokens import create_token

    token = create_token(storage, name="bench", scopes=["admin"]).token
    with (
        tempfile.TemporaryDirectory() as logs,
        DevhostProcess(ROOT, free_port(), env=env, log_path=Path(logs) / "devhost.log") as host,
        httpx.Client(base_url=host.base_url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as admin,
    ):
        delays = _scheduled(admin, samples, period)
        delays["floor: a delayed run message"] = _floor(storage, admin, samples, period - FLOOR_DELAY)
    return delays


def report(delays: dict[str, list[float]]) -> str:
    floor = statistics.median(delays["floor: a delayed run message"]) or 0.001
    lines = [
        "## Scheduled runs: start relative to the due time (docs/latency.md)",
        "",
        "| measured | samples | p50 | max | p50 / floor p50 |",
        "|---|---|---|---|---|",
    ]
    for name, values in delays.items():
        p50 = statistics.median(values)
        lines.append(f"| {name} | {len(values)} | {p50 * 1000:.0f} ms | {max(values) * 1000:.0f} ms | {p50 / floor:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--period", type=int, default=6, help="seconds between due times (a divisor of 60)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as emulator:
        print(report(run(emulator.connection_string, args.samples, args.period)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
