"""Every listing, with Table Storage answering as Azure may: short and empty pages that still
carry a continuation token (tests/support/table_proxy.py cuts Azurite's answers on the wire).

Also retention's cost: it must grow with what it removes, not with the table, so no query it
sends may span partitions.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.apiops import bindings as apis
from core.apiops.registry import load_bound_operations
from core.identity import apikeys, tokens, users
from core.kernel import clock
from core.kernel.ids import key_hash, new_run_id
from core.kernel.settings import Settings, load_settings
from core.runs import records as runs
from core.runs.retention import remove_old_runs
from core.runs.scheduler import reseed
from core.scenarios import repository as scenarios
from core.scenarios.cache import ScenarioCache
from core.store.storage import Storage
from core.traffic import ratelimit
from devhost.azurite import Azurite
from tests.support.table_proxy import TableProxy

PETS = b"""{"openapi": "3.0.3", "info": {"title": "T", "version": "1"}, "servers": [{"url": "/%s"}],
 "paths": {"/a": {"get": {"operationId": "a", "responses": {"200": {"description": "ok"}}}},
           "/b": {"get": {"operationId": "b", "responses": {"200": {"description": "ok"}}}}}}"""


@pytest.fixture
def proxy(azurite: Azurite) -> Iterator[TableProxy]:
    with TableProxy(azurite.ports, split_pages=True) as running:
        yield running


@pytest.fixture
def paged(proxy: TableProxy) -> tuple[Storage, Settings]:
    settings = load_settings({"AzureWebJobsStorage": proxy.connection_string, "JUNCTION_TABLE_PREFIX": "pg" + secrets.token_hex(5)})
    return Storage.from_settings(settings), settings


def _scenario(storage: Storage, **extra: Any) -> str:
    document = {"name": "paged", "externalTriggers": {"enabled": True}, "process": {"steps": []}, **extra}
    return scenarios.create_scenario(storage, document).id


def _every_page(listing: Any, top: int) -> list[list[str]]:
    """The ids of each page, following the skiptoken of each nextLink."""
    pages: list[list[str]] = []
    skiptoken = None
    while True:
        answer = listing(top=top, skiptoken=skiptoken, link=lambda extra: extra["skiptoken"])
        pages.append([item["id"] for item in answer["value"]])
        skiptoken = answer["nextLink"]
        if skiptoken is None or len(pages) > 20:
            return pages


def test_scenario_and_run_listings_fill_their_pages(paged: tuple[Storage, Settings], proxy: TableProxy) -> None:
    storage, _ = paged
    made = [_scenario(storage) for _ in range(5)]
    pages = _every_page(lambda **kw: scenarios.list_scenarios(storage, base_url="http://x", **kw), top=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(sum(pages, [])) == sorted(made)

    sid = made[0]
    run_ids = [new_run_id(time.time() - i) for i in range(5)]
    for run_id in run_ids:
        runs.insert_run(storage, sid, run_id, {"type": "test"})
    pages = _every_page(lambda **kw: runs.list_runs(storage, sid, **kw), top=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sum(pages, []) == sorted(run_ids)  # newest first, none twice, none skipped
    whole = runs.list_runs(storage, sid, top=50, skiptoken=None, link=str)
    assert len(whole["value"]) == 5 and whole["nextLink"] is None
    assert proxy.cut_pages > 0


def test_every_other_listing_survives_short_and_empty_pages(paged: tuple[Storage, Settings], proxy: TableProxy) -> None:
    storage, settings = paged
    made_tokens = {tokens.create_token(storage, name=f"t{i}", scopes=["admin"]).id for i in range(4)}
    assert {t["id"] for t in tokens.list_tokens(storage)} == made_tokens

    for i in range(3):
        users.create_user(storage, {"username": f"user{i}", "password": "correct horse"})
    assert sorted(u["username"] for u in users.list_users(storage)) == ["user0", "user1", "user2"]

    made_keys = {apikeys.create_apikey(storage, {"name": f"k{i}", "ruleset": [{"path": f"/k{i}/**"}]})["id"] for i in range(3)}
    assert {k["id"] for k in apikeys.list_apikeys(storage)} == made_keys

    sid = _scenario(storage)
    for name in ("one", "two", "three"):
        apis.import_api(storage, name, PETS % name.encode(), "application/json")
        for operation in ("a", "b"):
            apis.bind_operation(storage, settings, name, operation, {"scenarioId": sid})
    assert [a["name"] for a in apis.list_apis(storage)] == ["one", "three", "two"]
    view, _ = apis.get_api(storage, "two")
    assert all(op["binding"] is not None for op in view["operations"])
    assert sorted((b.api_name, b.operation_id) for b in load_bound_operations(storage)) == [
        (name, op) for name in ("one", "three", "two") for op in ("a", "b")
    ]

    apis.delete_api(storage, "one")  # removes every binding of the API, found by a listing
    assert {b.api_name for b in load_bound_operations(storage)} == {"two", "three"}

    scheduled = {_scenario(storage, schedule="0 * * * * *") for _ in range(3)}
    seeded = reseed(storage, now=datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC))
    assert {s["scenarioId"] for s in seeded} == scheduled
    assert proxy.cut_pages > 10


def test_retention_reads_only_what_it_removes(paged: tuple[Storage, Settings], proxy: TableProxy) -> None:
    """Many recent runs, a few old ones, one deleted scenario, Idempotency-Key claims old and
    fresh, the deleted scenario's cache entries and rate-limit buckets, a deleted binding's
    buckets: every query retention sends names a partition, and each table answers no more rows
    than retention removes from it (plus one probe per tombstone)."""
    storage, _ = paged
    now = time.time()
    kept, old = [], []
    sids = [_scenario(storage) for _ in range(3)]
    for sid in sids:
        for age_days in (1, 2, 3, 5, 8, 13, 21, 29):
            kept.append((sid, new_run_id(now - age_days * 86400)))
        for age_days in (31, 45):
            old.append((sid, new_run_id(now - age_days * 86400)))
    for sid, run_id in kept + old:
        runs.insert_run(storage, sid, run_id, {"type": "test"})
    old_claims = 0
    for sid in sids:
        for age_hours in (1, 2, 5, 12, 23, 25, 30, 47):
            created = datetime.fromtimestamp(now - age_hours * 3600, UTC)
            claim = {"PartitionKey": sid, "RowKey": key_hash(f"k{age_hours}"), "RunId": "r", "CreatedAt": clock.iso(created)}
            storage.table("idempotency").create_entity(claim)
            old_claims += age_hours >= 24
    limit = {"requestsPerMinute": 60, "perCredential": True}
    for i in range(4):
        ScenarioCache(storage, sids[2]).set(f"k{i}", i)
        ratelimit.admit(storage, limit, sids[2], f"caller{i}", name="t", clock=lambda: now - 3600)
    retired = key_hash("a binding deleted")
    for i in range(3):
        ratelimit.admit(storage, limit, retired, f"caller{i}", name="t", clock=lambda: now - 3600)
    ratelimit.retire(storage, retired)
    gone = scenarios.get_scenario(storage, sids[2])
    scenarios.delete_scenario(storage, gone.id, gone.etag)
    proxy.queries.clear()

    assert remove_old_runs(storage, 30) == len(old)

    leftovers = ("idempotency", "cache", "ratelimits", "signatures")
    sent = [q for table in ("runs", "schedules", "scenarios", *leftovers) for q in proxy.queries_of(table)]
    assert sent and all((q.filter or "").startswith("PartitionKey eq") for q in sent), [q.filter for q in sent]
    assert sum(q.answered for q in proxy.queries_of("runs")) <= len(old) + 1
    assert sum(q.answered for q in proxy.queries_of("idempotency")) <= old_claims + 1
    assert sum(q.answered for q in proxy.queries_of("cache")) <= 4 + 1
    # The deleted scenario's 4 buckets, the retired bucket's 3 rows and its tombstone, one probe each.
    assert sum(q.answered for q in proxy.queries_of("ratelimits")) <= 4 + 3 + 1 + 2
    assert all(not list(storage.table(t).query_entities("PartitionKey eq @pk", parameters={"pk": sids[2]})) for t in ("cache", "ratelimits"))
    assert not list(storage.table("ratelimits").query_entities("PartitionKey eq @pk", parameters={"pk": retired}))
    for sid in sids:
        fresh = storage.table("idempotency").query_entities("PartitionKey eq @pk", parameters={"pk": sid})
        assert sorted(e["RowKey"] for e in fresh) == sorted(key_hash(f"k{h}") for h in (1, 2, 5, 12, 23))
    left = {(sid, r["id"]) for sid in sids for r in runs.list_runs(storage, sid, top=100, skiptoken=None, link=str)["value"]}
    assert left == set(kept)
    # Once a deleted scenario's last run has gone, and its last claim's window is over (a day
    # later), its tombstone goes too.
    for sid, run_id in kept:
        if sid == gone.id:
            storage.table("runs").delete_entity(sid, run_id)
    remove_old_runs(storage, 30)
    assert scenarios.deleted_scenario_ids(storage) == [gone.id]
    remove_old_runs(storage, 30, now=clock.now() + timedelta(days=1))
    assert scenarios.deleted_scenario_ids(storage) == []
