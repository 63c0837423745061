"""Faults: storage going away under load, and a host killed in the middle of a run.

These tests own their Azurite (fixed ports, so a restart listens where the app's clients point,
and a fixed ``--location``, so the data survives the restart) and their devhost, which runs with
``--message-lease 3``: a message whose host died comes back after 3 s instead of 10 minutes
(docs/devhost.md). The upstream the processes call is a local counting server.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bench.load import LoadResult, Outcome, hammer, ledger, wait_until_settled
from core.identity.tokens import create_token
from core.kernel.settings import load_settings
from core.scenarios.cache import ScenarioCache
from core.store.storage import Storage
from devhost.azurite import Azurite, free_port
from devhost.testing import DevhostProcess
from tests.e2e.conftest import ROOT, Junction
from tests.support.azure_limits import assert_stored_within_limits
from tests.support.upstream import Upstream

LEASE = "3"
CLIENT_TIMEOUT = 30.0  # the hang guard: every request must come back within this


@pytest.fixture(scope="module")
def own_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    folder = tmp_path_factory.mktemp("faults-azurite")
    emulator = Azurite(folder / "data", (free_port(), free_port(), free_port()), log_path=folder / "azurite.log")
    emulator.start()
    yield emulator
    if emulator.process is not None and emulator.process.poll() is None:
        assert_stored_within_limits(emulator.connection_string)  # as the session's Azurite is checked
    emulator.stop()


@pytest.fixture(scope="module")
def env(own_azurite: Azurite, upstream: Upstream) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": own_azurite.connection_string,
        "JUNCTION_TABLE_PREFIX": "faults",
        "JUNCTION_OUTBOUND_ALLOWED_HOSTS": upstream.host,
    }


def start_host(env: dict[str, str], log: Path) -> DevhostProcess:
    return DevhostProcess(ROOT, free_port(), env=env, args=["--message-lease", LEASE], log_path=log).start()


@pytest.fixture
def faulty(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Junction, DevhostProcess]]:
    settings = load_settings(env)
    storage = Storage.from_settings(settings)
    token = create_token(storage, name="faults admin", scopes=["admin"]).token
    host = start_host(env, tmp_path / "devhost.log")
    try:
        yield Junction(host.base_url, settings, storage, token, env), host
    finally:
        host.stop()


def test_storage_outage_under_load_gives_503_and_loses_no_accepted_run(
    faulty: tuple[Junction, DevhostProcess], own_azurite: Azurite, upstream: Upstream
) -> None:
    junction, host = faulty
    process = {
        "steps": [
            {"type": "transform", "id": "got", "expression": "data[0].Body"},
            {"type": "cache", "key": {"jmespath": "steps.got.n"}, "value": {"jmespath": "steps.got.n"}},
            {"type": "http", "id": "hit", "method": "POST", "url": f"{upstream.url}/hit", "body": {"jmespath": "steps.got.n"}},
            {"type": "return", "value": {"jmespath": "steps.got.n"}},
        ]
    }
    sid = junction.create_scenario(externalTriggers={"enabled": True, "allowAnonymous": True}, process=process)["id"]
    stop = threading.Event()
    phase = ["before"]
    seen: dict[str, list[Outcome]] = {"before": [], "down": [], "after": []}
    lock = threading.Lock()

    def record(outcome: Outcome) -> None:
        with lock:
            seen[phase[0]].append(outcome)

    def accepted(name: str) -> int:
        with lock:
            return sum(1 for o in seen[name] if o.status == 200)

    def wait_for(check: Callable[[], bool], limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        while not check() and time.monotonic() < deadline:
            time.sleep(0.1)

    result_box: list[LoadResult] = []
    load = threading.Thread(
        target=lambda: result_box.append(
            hammer(
                f"{junction.url}/ExternalData/Accept/{sid}",
                100_000,
                clients=8,
                timeout=CLIENT_TIMEOUT,
                stop=stop,
                on_outcome=record,
            )
        )
    )
    load.start()
    try:
        wait_for(lambda: accepted("before") >= 40)
        phase[0] = "down"
        own_azurite.stop()
        wait_for(lambda: sum(1 for o in seen["down"] if o.status == 503) >= 20, limit=30)
        own_azurite.start()
        phase[0] = "after"
        wait_for(lambda: accepted("after") >= 40)
    finally:
        stop.set()
        load.join()
    (result,) = result_box
    outcomes = result.outcomes

    # Callers: 200, or 503/429 with Retry-After; never a 500, never a hang past the client timeout.
    statuses = {o.status for o in outcomes}
    hung = [o for o in outcomes if o.status is None]
    assert not hung, hung[:3]
    assert statuses <= {200, 429, 503}, statuses
    assert all(o.retry_after for o in outcomes if o.status in (429, 503))
    assert sum(1 for o in seen["down"] if o.status == 503) >= 20, "the outage never reached a caller"
    assert accepted("before") >= 40 and accepted("after") >= 40

    # Every accepted run ends, exactly once; no record is left behind queued.
    accepted_runs = {o.run_id: o.n for o in outcomes if o.status == 200}
    book = wait_until_settled(junction.storage, sid, len(accepted_runs), timeout=120)
    unfinished = {rid: e.get("Status") for rid, e in book.runs.items() if e.get("Status") not in ("succeeded", "failed")}
    missing = set(accepted_runs) - set(book.runs)
    assert not missing, f"{len(missing)} accepted runs have no record"
    lost_accepted = {rid: s for rid, s in unfinished.items() if rid in accepted_runs}
    assert not lost_accepted, f"{len(lost_accepted)} accepted runs never finished: {lost_accepted}"
    orphans = {rid: s for rid, s in unfinished.items() if rid not in accepted_runs}
    assert not orphans, (
        f"{len(orphans)} run records of requests answered 503 stay {set(orphans.values())} forever "
        f"({len(book.runs)} records, {len(accepted_runs)} accepted)"
    )
    assert book.queued_messages == 0 and book.poison_messages == 0

    hits: dict[int, int] = {}
    for raw in upstream.bodies.get("/hit", []):
        hits[int(json.loads(raw))] = hits.get(int(json.loads(raw)), 0) + 1
    cache = ScenarioCache(junction.storage, sid)
    for run_id, n in accepted_runs.items():
        entity = book.runs[run_id]
        attempts = int(entity.get("Attempts") or 0)
        if entity["Status"] == "succeeded":
            assert cache.get(n) == n
            # executed, and never more often than it was attempted: no finished run ran again
            assert 1 <= hits.get(n, 0) <= attempts, (run_id, n, hits.get(n), attempts)
    statuses_seen = {code: sum(1 for o in outcomes if o.status == code) for code in sorted(statuses)}
    retried = sum(1 for rid in accepted_runs if int(book.runs[rid].get("Attempts") or 0) > 1)
    print(
        f"\nstorage outage: {len(outcomes)} requests {statuses_seen}, {len(accepted_runs)} accepted runs "
        f"{book.statuses()}, {retried} retried, {sum(hits.values()) - len(hits)} step re-executions, 0 lost"
    )
    # (The log holds tracebacks of invocations that failed while storage was down: they were retried.)
    assert host.returncode is None, "devhost died during the outage"


def test_a_run_whose_host_dies_mid_process_is_retried_and_its_cache_stays_correct(
    faulty: tuple[Junction, DevhostProcess], env: dict[str, str], upstream: Upstream, tmp_path: Path
) -> None:
    junction, host = faulty
    process = {
        "steps": [
            {"type": "transform", "id": "got", "expression": "data[0].Body"},
            {"type": "cache", "key": {"jmespath": "steps.got.order"}, "value": {"jmespath": "{order: steps.got.order, lines: steps.got.lines}"}},
            {"type": "http", "id": "slow", "method": "GET", "url": f"{upstream.url}/slow", "retries": 0},
            {"type": "cache", "key": "last", "value": {"jmespath": "steps.got.order"}},
            {"type": "return", "value": {"jmespath": "steps.slow.status"}},
        ]
    }
    sid = junction.create_scenario(externalTriggers={"enabled": True, "allowAnonymous": True}, process=process)["id"]
    before = upstream.hits.get("/slow", 0)
    response = httpx.post(
        f"{junction.url}/ExternalData/Accept/{sid}", json={"order": 7, "lines": [1, 2, 3]}, timeout=CLIENT_TIMEOUT
    )
    assert response.status_code == 200
    run_id = response.headers["X-Run-Id"]
    deadline = time.monotonic() + 30
    while upstream.hits.get("/slow", 0) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.hits.get("/slow", 0) == before + 1, "the run never reached its slow step"

    assert host.process is not None
    os.killpg(host.process.pid, signal.SIGKILL)  # the host dies mid-step: no cleanup, no release
    host.process.wait(timeout=10)
    run = junction.storage.table("runs").get_entity(sid, run_id)
    assert run["Status"] == "running"

    with start_host(env, tmp_path / "devhost-restarted.log") as second:
        junction.url = second.base_url
        finished = junction.wait_for_run(sid, run_id, timeout=60)
        assert finished["status"] == "succeeded", finished
        assert finished["attempts"] == 2 and finished["output"] == 200
        # retried once, and the renewed lease kept the 3 s step from being handed out again
        assert upstream.hits.get("/slow", 0) == before + 2
        cache = ScenarioCache(junction.storage, sid)
        assert cache.get(7) == {"order": 7, "lines": [1, 2, 3]}
        assert cache.get("last") == 7
        book = ledger(junction.storage, sid)
        assert book.cache_keys == {"7", '"last"'}
        assert set(book.runs) == {run_id}
        assert "Traceback" not in second.log_text()
