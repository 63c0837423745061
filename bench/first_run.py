"""How soon an accepted run starts: after the run queue was idle, and right after another run.

Through devhost on Azurite with the queue worker running, as ``make run`` serves the app. Each
sample is one Accept (GET, no body) of a one-step scenario; the delay is the run record's
``startedAt`` minus its ``createdAt`` (both written by the app, same clock, millisecond
precision), so the time the client spends polling for the result does not count.

- *after idle*: the queue has been empty for ``--idle`` seconds plus a random 0–2 s before the
  Accept: long enough for the queue trigger's polling back-off to reach ``maxPollingInterval``
  (host.json: 2 s), and random so that the Accept lands anywhere between two polls (a fixed
  pause lands at the same point of the polling cycle every time);
- *busy*: the next Accept right after the previous run ended, while the poller is still quick.

``python -m bench.first_run [--samples 20] [--idle 5]``; docs/latency.md quotes a run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

from core.kernel.settings import load_settings
from core.scenarios import repository as scenarios
from core.store.storage import Storage
from devhost.azurite import Azurite, free_port
from devhost.testing import DevhostProcess

ROOT = Path(__file__).resolve().parent.parent


def _delay(run: dict[str, str]) -> float:
    started = datetime.fromisoformat(run["startedAt"].replace("Z", "+00:00"))
    created = datetime.fromisoformat(run["createdAt"].replace("Z", "+00:00"))
    return (started - created).total_seconds()


def _one(client: httpx.Client, admin: httpx.Client, scenario_id: str) -> float:
    run_id = client.get(f"/ExternalData/Accept/{scenario_id}").headers["X-Run-Id"]
    while True:
        run = admin.get(f"/management/scenarios/{scenario_id}/runs/{run_id}").json()
        if run.get("status") in ("succeeded", "failed"):
            return _delay(run)
        time.sleep(0.02)


def run(connection_string: str, samples: int = 20, idle: float = 5.0) -> dict[str, list[float]]:
    env = {"AzureWebJobsStorage": connection_string, "JUNCTION_TABLE_PREFIX": "benchfirst"}
    storage = Storage.from_settings(load_settings(env))
    from core.identity.tokens import create_token

    token = create_token(storage, name="bench", scopes=["admin"]).token
    document = {"name": "first run", "externalTriggers": {"enabled": True, "allowAnonymous": True},
                "process": {"steps": [{"type": "return", "value": "done"}]}}  # fmt: skip
    scenario_id = scenarios.create_scenario(storage, document).id
    delays: dict[str, list[float]] = {"after idle": [], "busy": []}
    with (
        tempfile.TemporaryDirectory() as logs,
        DevhostProcess(ROOT, free_port(), env=env, log_path=Path(logs) / "devhost.log") as host,
        httpx.Client(base_url=host.base_url, timeout=60) as client,
        httpx.Client(base_url=host.base_url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as admin,
    ):
        _one(client, admin, scenario_id)  # warm-up: imports, table creation
        for _ in range(samples):
            time.sleep(idle + random.uniform(0.0, 2.0))
            delays["after idle"].append(_one(client, admin, scenario_id))
            delays["busy"].append(_one(client, admin, scenario_id))
    return delays


def report(delays: dict[str, list[float]]) -> str:
    lines = ["## First run after an idle queue (docs/latency.md)", "", "| queue before the Accept | samples | p50 | max |", "|---|---|---|---|"]
    for name, values in delays.items():
        lines.append(f"| {name} | {len(values)} | {statistics.median(values) * 1000:.0f} ms | {max(values) * 1000:.0f} ms |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds the queue stays empty before each idle sample")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as emulator:
        print(report(run(emulator.connection_string, args.samples, args.idle)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
