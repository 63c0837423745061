"""Concurrency: conflicting scenario updates with ``If-Match`` and one ``Idempotency-Key`` used by many.

Every worker has its own HTTP connection and they are released together by a barrier, so the
requests really overlap at the server (devhost runs sync functions on 32 threads).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import httpx

from tests.e2e.conftest import Junction

WORKERS = 50
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
T = TypeVar("T")


def together(count: int, work: Callable[[int, httpx.Client], T], make_client: Callable[[], httpx.Client]) -> list[T]:
    """Run ``work(i, client)`` in ``count`` threads that start at the same moment."""
    barrier = threading.Barrier(count)

    def one(i: int) -> T:
        with make_client() as client:
            client.get("/management/openapi.json")  # open the connection before the race
            barrier.wait()
            return work(i, client)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_fifty_conflicting_updates_of_one_version_have_exactly_one_winner(reliable: Junction) -> None:
    scenario = reliable.create_scenario(name="contended")
    sid = scenario["id"]
    with reliable.admin() as admin:
        etag = admin.get(f"/management/scenarios/{sid}").headers["ETag"]

    def update(i: int, client: httpx.Client) -> httpx.Response:
        return client.patch(
            f"/management/scenarios/{sid}", json={"name": f"writer {i}"}, headers={"If-Match": etag, **MERGE_PATCH}
        )

    responses = together(WORKERS, update, reliable.admin)
    winners = [i for i, r in enumerate(responses) if r.status_code == 200]
    assert len(winners) == 1, [r.status_code for r in responses]
    losers = [r for r in responses if r.status_code != 200]
    assert all(r.status_code == 412 and r.json()["error"]["code"] == "ETagMismatch" for r in losers), {
        (r.status_code, r.text[:80]) for r in losers
    }
    with reliable.admin() as admin:
        current = admin.get(f"/management/scenarios/{sid}")
    assert current.json()["name"] == f"writer {winners[0]}"
    assert current.headers["ETag"] == responses[winners[0]].headers["ETag"] != etag


def test_fifty_concurrent_increments_lose_no_update(reliable: Junction) -> None:
    """Read-modify-write with If-Match, retrying on 412: the counter ends at exactly 50, and each
    version of the scenario was replaced by exactly one writer (the successful writes form one chain)."""
    sid = reliable.create_scenario(name="0")["id"]
    with reliable.admin() as admin:
        first_etag = admin.get(f"/management/scenarios/{sid}").headers["ETag"]

    def increment(i: int, client: httpx.Client) -> tuple[str, str, int]:
        rng = random.Random(i)  # noqa: S311 - jitter, not security
        for _ in range(500):
            read = client.get(f"/management/scenarios/{sid}")
            assert read.status_code == 200, read.text
            etag, value = read.headers["ETag"], int(read.json()["name"])
            written = client.patch(
                f"/management/scenarios/{sid}", json={"name": str(value + 1)}, headers={"If-Match": etag, **MERGE_PATCH}
            )
            if written.status_code == 200:
                return etag, written.headers["ETag"], value + 1
            assert written.status_code == 412 and written.json()["error"]["code"] == "ETagMismatch", written.text
            time.sleep(rng.uniform(0, 0.05))
        raise AssertionError(f"writer {i} never won")

    wins = together(WORKERS, increment, reliable.admin)
    with reliable.admin() as admin:
        final = admin.get(f"/management/scenarios/{sid}")
    assert final.json()["name"] == str(WORKERS)
    assert sorted(value for _, _, value in wins) == list(range(1, WORKERS + 1))
    based_on = [old for old, _, _ in wins]
    assert len(set(based_on)) == WORKERS  # one winner per version
    chain: dict[str, str] = {old: new for old, new, _ in wins}
    etag, steps = first_etag, 0
    while etag in chain:
        etag, steps = chain[etag], steps + 1
    assert steps == WORKERS and etag == final.headers["ETag"]


def test_fifty_concurrent_accepts_with_one_idempotency_key_make_one_run(reliable: Junction) -> None:
    scenario = reliable.create_scenario(name="idempotent")
    sid = scenario["id"]
    key = f"order-{random.randrange(10**12)}"  # noqa: S311

    def accept(i: int, client: httpx.Client) -> httpx.Response:
        return client.post(f"/ExternalData/Accept/{sid}", json={"attempt": i}, headers={"Idempotency-Key": key})

    responses = together(WORKERS, accept, reliable.admin)
    assert [r.status_code for r in responses] == [200] * WORKERS, {(r.status_code, r.text[:80]) for r in responses}
    run_ids = {r.headers["X-Run-Id"] for r in responses}
    assert len(run_ids) == 1
    first = [r for r in responses if r.headers.get("Idempotent-Replayed") != "true"]
    assert len(first) == 1
    (run_id,) = run_ids
    run = reliable.wait_for_run(sid, run_id)
    assert run["status"] == "succeeded" and run["attempts"] == 1
    assert reliable.run_count(sid) == 1


