"""The added cost per Accept of each traffic check (IP allow-list, rate limit, admission control)
next to Accept without it, in the same run.

Four anonymous scenarios alike but for their ``externalTriggers``: none of the checks, an IP
allow-list (loopback in it, so every call passes), a rate limit too high to refuse, and the plain
one again on a second devhost whose ``JUNCTION_MAX_RUN_QUEUE_DEPTH`` bound is never reached. One
client, one call at a time, through devhost on Azurite (``--no-queues``); the variants take turns
in rounds, each going first in turn, so the shared machine's drift falls on all alike. Also
counted in-process: the storage calls of one warm Accept of each (admission's depth read is
cached, so it adds none to a warm Accept).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from core.app.external import AcceptRequest, accept
from core.kernel.settings import load_settings
from core.scenarios import repository as scenarios
from core.store.storage import Storage
from core.traffic.addresses import check_allowed, client_address, normalise_allow_list
from devhost.azurite import free_port
from devhost.testing import DevhostProcess

ROOT = Path(__file__).resolve().parent.parent
PROCESS = {"steps": [{"type": "return", "value": "#trigger.data.body"}]}
BODY = {"content": b'{"id": 42}', "headers": {"Content-Type": "application/json"}}
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "ipAllowList": {"ipAllowList": ["127.0.0.0/8", "::1", "203.0.113.0/24", "2001:db8::/32"]},
    "rateLimit": {"rateLimit": {"requestsPerMinute": 100_000, "burst": 100_000}},
    "admission": {},  # plain, served by the devhost with a run-queue bound
}


def _call(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    response = client.post(url, **BODY)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


def _allow_list_micros(entries: int, rounds: int = 5, calls: int = 20_000) -> float:
    """The allow-list decision in-process, per request: reading the address from X-Forwarded-For
    and matching it against ``entries`` ranges (the address in the last one), best of ``rounds``."""
    allow = normalise_allow_list([f"10.{i // 256}.{i % 256}.0/24" for i in range(entries - 1)] + ["203.0.113.0/24"], "bench")
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            check_allowed(allow, client_address("198.51.100.1, 203.0.113.9:54321"))
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e6


def run(connection_string: str, calls: int = 300, rounds: int = 8) -> dict[str, Any]:
    env = {"AzureWebJobsStorage": connection_string, "JUNCTION_TABLE_PREFIX": "benchtraffic"}
    settings = load_settings(env)
    storage = Storage.from_settings(settings)
    ids = {
        name: scenarios.create_scenario(
            storage, {"name": name, "externalTriggers": {"enabled": True, "allowAnonymous": True, **extra}, "process": PROCESS}
        ).id
        for name, extra in VARIANTS.items()
    }
    calls_per_accept: dict[str, int] = {}
    for name, sid in ids.items():
        request = AcceptRequest(sid, "POST", b"{}", "application/json", None, client_ip="127.0.0.1")
        accept(storage, settings, request)
        storage.counter.reset()
        accept(storage, settings, request)
        calls_per_accept[name] = storage.counter.total
    bounded_env = {**env, "JUNCTION_MAX_RUN_QUEUE_DEPTH": "10000000"}
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    args = ["--no-queues", "--no-timers"]
    with (
        DevhostProcess(ROOT, free_port(), env=env, args=args) as plain_host,
        DevhostProcess(ROOT, free_port(), env=bounded_env, args=args) as bounded_host,
        httpx.Client(base_url=plain_host.base_url, timeout=30) as client,
        httpx.Client(base_url=bounded_host.base_url, timeout=30) as bounded,
    ):
        # Each variant has a scenario (a runs partition) of its own, so none grows faster than another.
        targets = {name: (bounded if name == "admission" else client, f"/ExternalData/Accept/{sid}") for name, sid in ids.items()}
        for target_client, url in targets.values():  # warm-up
            for _ in range(20):
                _call(target_client, url)
        per_round = max(1, calls // rounds)
        order = list(targets)
        for turn in range(rounds):
            for name in order[turn % len(order) :] + order[: turn % len(order)]:  # each goes first in turn
                target_client, url = targets[name]
                samples[name].extend(_call(target_client, url) for _ in range(per_round))
    p50 = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    mean = {name: statistics.fmean(values) * 1000 for name, values in samples.items()}
    micros = {n: _allow_list_micros(n) for n in (4, 200)}
    return {"calls": per_round * rounds, "p50_ms": p50, "mean_ms": mean, "storage_calls": calls_per_accept, "allow_list_us": micros}


def report(result: dict[str, Any]) -> str:
    p50, mean, calls = result["p50_ms"], result["mean_ms"], result["storage_calls"]
    lines = [
        f"Traffic checks per Accept, one client, {result['calls']} calls each through devhost (anonymous, 10-byte JSON):",
        f"    Accept without them: p50 {p50['plain']:.1f} ms, mean {mean['plain']:.1f} ms, {calls['plain']} storage calls",
    ]
    for name, label in (("ipAllowList", "IP allow-list (4 ranges)"), ("rateLimit", "rate limit (never refusing)"), ("admission", "admission control (bound never reached)")):
        lines.append(
            f"    {label}: p50 {p50[name]:.1f} ms ({p50[name] - p50['plain']:+.1f} ms, ratio {p50[name] / p50['plain']:.2f}), "
            f"mean {mean[name]:.1f} ms (ratio {mean[name] / mean['plain']:.2f}), {calls[name]} storage calls"
        )
    micros = result["allow_list_us"]
    lines.append(
        f"    the allow-list decision in-process (address from X-Forwarded-For, then the match): {micros[4]:.1f} µs with 4 ranges, "
        f"{micros[200]:.1f} µs with 200"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    from devhost.azurite import Azurite

    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as emulator:
        print(report(run(emulator.connection_string)))
