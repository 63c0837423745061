"""Load: many Accepts through devhost, then proof that every accepted run was recorded and executed once.

``python -m bench.load --requests 10000`` (``make load``) starts its own Azurite and devhost (with
the queue worker running), sends POST /ExternalData/Accept with a 1 KiB JSON body from 16 threads,
each with its own keep-alive connection, and then waits until the worker has run them all. The
bounded version of the same check is ``tests/reliability/test_load.py`` (part of ``make test``).

What counts as "executed exactly once": the run record ends ``succeeded`` on attempt 1, the
process's cache write for that request (one key per request) exists, and the run queue and its
poison queue are empty afterwards. Nothing here is a timed assertion: throughput and p99 are
reported, not checked.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench.client import KeepAliveClient
from core.kernel.settings import load_settings
from core.store.storage import Storage

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 16
# Each request caches its own body under its own key: that write is the proof the run executed.
LOAD_PROCESS = {
    "steps": [
        {"type": "transform", "id": "got", "expression": "data[0].Body"},
        {"type": "cache", "key": {"jmespath": "steps.got.n"}, "value": {"jmespath": "steps.got.n"}},
        {"type": "return", "value": {"jmespath": "steps.got.n"}},
    ]
}


def body(n: int, tag: str = "") -> bytes:
    """A JSON body of exactly 1 KiB carrying the request's number."""
    head = json.dumps({"n": n, "tag": tag, "pad": ""})
    return json.dumps({"n": n, "tag": tag, "pad": "x" * (1024 - len(head))}).encode()


@dataclasses.dataclass
class Outcome:
    """One request: its number, HTTP status (None: the client gave up or could not connect)."""

    n: int
    status: int | None
    run_id: str | None
    retry_after: str | None
    error: str | None
    seconds: float
    code: str | None = None


@dataclasses.dataclass
class LoadResult:
    outcomes: list[Outcome]
    seconds: float

    @property
    def accepted(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 200 and o.run_id]

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != 200 or not o.run_id]

    @property
    def rps(self) -> float:
        return len(self.outcomes) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Latency in milliseconds at quantile ``q`` (nearest rank)."""
        ordered = sorted(o.seconds for o in self.outcomes)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))] * 1000


def hammer(
    url: str,
    count: int,
    *,
    clients: int = CLIENTS,
    timeout: float = 30.0,
    tag: str = "",
    headers: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> LoadResult:
    """POST ``count`` Accepts to ``url`` from ``clients`` threads (own keep-alive connection each,
    ``bench.client``: the client's CPU is taken from the cores devhost and Azurite share).

    ``timeout`` bounds every request; a request that exceeds it is an outcome with status None
    and ``error`` set, never a hang. ``stop`` ends the run early (the outcomes so far are kept).
    """
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    next_n = [0]
    sent_headers = {"Content-Type": "application/json", **(headers or {})}

    def loop() -> None:
        with KeepAliveClient(url, timeout=timeout) as client:
            while stop is None or not stop.is_set():
                with lock:
                    n = next_n[0]
                    if n >= count:
                        return
                    next_n[0] += 1
                started = time.perf_counter()
                try:
                    answer = client.post(url, body(n, tag), sent_headers)
                    code = None
                    if answer.status != 200:
                        try:
                            code = json.loads(answer.body)["error"]["code"]
                        except (ValueError, KeyError, TypeError):
                            code = None
                    outcome = Outcome(
                        n,
                        answer.status,
                        answer.headers.get("x-run-id"),
                        answer.headers.get("retry-after"),
                        None,
                        time.perf_counter() - started,
                        code,
                    )
                except (OSError, http.client.HTTPException) as exc:
                    outcome = Outcome(n, None, None, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
                with lock:
                    outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)

    threads = [threading.Thread(target=loop, name=f"load-{i}") for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(sorted(outcomes, key=lambda o: o.n), time.perf_counter() - started)


@dataclasses.dataclass
class Ledger:
    """What storage holds for one scenario after a load: run records by id, cache keys."""

    runs: dict[str, Any]
    cache_keys: set[str]
    queued_messages: int
    poison_messages: int

    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entity in self.runs.values():
            counts[str(entity.get("Status"))] = counts.get(str(entity.get("Status")), 0) + 1
        return counts


def ledger(storage: Storage, scenario_id: str) -> Ledger:
    runs = {
        str(e["RowKey"]): e
        for e in storage.table("runs").query_entities(
            "PartitionKey eq @pk", parameters={"pk": scenario_id}, select=["RowKey", "Status", "Attempts"]
        )
    }
    keys = {
        str(e["Key"])
        for e in storage.table("cache").query_entities("PartitionKey eq @pk", parameters={"pk": scenario_id}, select=["Key"])
    }
    queue = storage.queue()
    poison = storage.queue(f"{storage.run_queue_name}-poison")
    return Ledger(
        runs,
        keys,
        queue.get_queue_properties().approximate_message_count,
        poison.get_queue_properties().approximate_message_count,
    )


def wait_until_settled(storage: Storage, scenario_id: str, expected: int, timeout: float) -> Ledger:
    """Poll until ``expected`` runs exist and none is queued or running, or until ``timeout``."""
    deadline = time.monotonic() + timeout
    queue = storage.queue()
    # The cheap check first: the run queue's count includes messages being processed (invisible).
    while queue.get_queue_properties().approximate_message_count and time.monotonic() < deadline:
        time.sleep(0.5)
    while True:
        book = ledger(storage, scenario_id)
        unfinished = sum(1 for e in book.runs.values() if e.get("Status") not in ("succeeded", "failed"))
        if (len(book.runs) >= expected and unfinished == 0 and book.queued_messages == 0) or time.monotonic() > deadline:
            return book
        time.sleep(0.5)


def check_exactly_once(result: LoadResult, book: Ledger) -> list[str]:
    """Every problem found, as sentences; empty when the load lost and repeated nothing."""
    problems: list[str] = []
    failures = result.failures
    if failures:
        sample = ", ".join(f"#{o.n}: {o.status or o.error} {o.code or ''}".strip() for o in failures[:5])
        problems.append(f"{len(failures)} of {len(result.outcomes)} requests were not 200 with X-Run-Id ({sample})")
    ids = [o.run_id for o in result.accepted]
    if len(set(ids)) != len(ids):
        problems.append(f"{len(ids) - len(set(ids))} X-Run-Id values were handed out twice")
    if set(book.runs) != set(ids):
        missing = set(ids) - set(book.runs)
        extra = set(book.runs) - set(ids)
        problems.append(f"run records differ from accepted runs: {len(missing)} missing, {len(extra)} not accepted")
    not_done = {k: v for k, v in book.statuses().items() if k != "succeeded"}
    if not_done:
        problems.append(f"runs not succeeded: {not_done}")
    repeated = [rid for rid, e in book.runs.items() if int(e.get("Attempts") or 0) != 1]
    if repeated:
        problems.append(f"{len(repeated)} runs took more than one attempt")
    expected_keys = {str(o.n) for o in result.accepted}
    if book.cache_keys != expected_keys:
        problems.append(
            f"cache writes differ from accepted requests: {len(expected_keys - book.cache_keys)} missing, "
            f"{len(book.cache_keys - expected_keys)} unexpected"
        )
    if book.queued_messages or book.poison_messages:
        problems.append(f"messages left: {book.queued_messages} queued, {book.poison_messages} poisoned")
    return problems


def main(argv: list[str] | None = None) -> int:
    from core.scenarios import repository as scenarios
    from devhost.azurite import Azurite, free_port
    from devhost.testing import DevhostProcess

    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--drain-timeout", type=float, default=1800.0, help="seconds to wait for the worker")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="junction-load-"))
    with Azurite(folder / "azurite", log_path=folder / "azurite.log") as azurite:
        env = {"AzureWebJobsStorage": azurite.connection_string, "JUNCTION_TABLE_PREFIX": "load"}
        storage = Storage.from_settings(load_settings(env))
        document = {"name": "load", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": LOAD_PROCESS}
        scenario = scenarios.create_scenario(storage, document)
        log = folder / "devhost.log"
        with DevhostProcess(ROOT, free_port(), env=env, log_path=log) as host:
            url = f"{host.base_url}/ExternalData/Accept/{scenario.id}"
            print(f"{args.requests} Accepts, {args.clients} clients, POST 1 KiB JSON -> {url}", flush=True)
            result = hammer(url, args.requests, clients=args.clients)
            print(
                f"sent in {result.seconds:.1f} s: {result.rps:.0f} req/s, p50 {result.percentile(0.5):.1f} ms, "
                f"p99 {result.percentile(0.99):.1f} ms, max {result.percentile(1.0):.1f} ms, "
                f"non-200 {len(result.failures)}",
                flush=True,
            )
            started = time.monotonic()
            book = wait_until_settled(storage, scenario.id, len(result.accepted), args.drain_timeout)
            drained = time.monotonic() - started
            tracebacks = host.log_text().count("Traceback")
        problems = check_exactly_once(result, book)
        if tracebacks:
            problems.append(f"{tracebacks} tracebacks in the devhost log")
    print(
        f"runs recorded {len(book.runs)}, statuses {book.statuses()}, cache writes {len(book.cache_keys)}, "
        f"queue {book.queued_messages}, poison {book.poison_messages}; worker finished {drained:.1f} s after the last Accept"
    )
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems) + f"\nlogs kept in {folder}")
        return 1
    shutil.rmtree(folder, ignore_errors=True)
    print(f"OK: {len(result.outcomes)} requests, 0 errors, {len(book.runs)} runs recorded and executed once, 0 lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
