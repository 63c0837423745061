"""Retention of what a scenario leaves behind besides its runs (docs/storage.md, "Retention"):
Idempotency-Key claims past their window, the cache entries and rate-limit buckets of deleted
scenarios, and the buckets of deleted bindings. Each test keeps live things next to the removed
ones: retention must not touch them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from core.apiops import bindings as apis
from core.apiops.registry import binding_key
from core.kernel import clock
from core.kernel.ids import key_hash
from core.kernel.settings import Settings, load_settings
from core.runs import idempotency
from core.runs.retention import remove_old_runs
from core.scenarios import repository as scenarios
from core.scenarios.cache import ScenarioCache
from core.store import tables
from core.store.storage import Storage
from core.traffic import ratelimit
from devhost.azurite import Azurite
from tests.support.table_proxy import TableProxy

NOW = datetime(2030, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)
LIMIT = {"requestsPerMinute": 60, "burst": 2, "perCredential": True}
API = b"""{"openapi": "3.0.3", "info": {"title": "T", "version": "1"}, "servers": [{"url": "/tidy"}],
 "paths": {"/a": {"get": {"operationId": "a", "responses": {"200": {"description": "ok"}}}},
           "/b": {"get": {"operationId": "b", "responses": {"200": {"description": "ok"}}}},
           "/c": {"get": {"operationId": "c", "responses": {"200": {"description": "ok"}}}}}}"""


def _scenario(storage: Storage) -> str:
    return scenarios.create_scenario(storage, {"name": "tidy", "externalTriggers": {"enabled": True}, "process": {"steps": []}}).id


def _delete(storage: Storage, scenario_id: str) -> None:
    scenarios.delete_scenario(storage, scenario_id, None)


def _claim_at(storage: Storage, scenario_id: str, key: str, created: datetime) -> None:
    storage.table(tables.IDEMPOTENCY).create_entity(
        {"PartitionKey": scenario_id, "RowKey": key_hash(key), "RunId": f"run-{key}", "CreatedAt": clock.iso(created)}
    )


def _rows(storage: Storage, table: str, partition: str) -> set[str]:
    entities = storage.table(table).query_entities("PartitionKey eq @pk", parameters={"pk": partition}, select=["RowKey"])
    return {entity["RowKey"] for entity in entities}


def _fill(storage: Storage, bucket: str, at: float, credentials: tuple[str, ...] = ("alice",)) -> None:
    """One request per credential into the bucket at ``at``: each row's Tat becomes at + 1 s."""
    for credential in credentials:
        ratelimit.admit(storage, LIMIT, bucket, credential, name="t", clock=lambda: at)


def test_idempotency_claims_go_once_their_window_is_over_and_stay_inside_it(storage: Storage) -> None:
    live, gone = _scenario(storage), _scenario(storage)
    edge = NOW - idempotency.WINDOW
    for sid in (live, gone):
        _claim_at(storage, sid, "old", NOW - timedelta(days=3))
        _claim_at(storage, sid, "edge", edge)  # exactly 24 h: over, as claim() sees it
        _claim_at(storage, sid, "inside", edge + timedelta(milliseconds=1))  # 1 ms short of 24 h
        _claim_at(storage, sid, "fresh", NOW - timedelta(minutes=5))
    _delete(storage, gone)
    assert idempotency.expired(clock.iso(edge), NOW) and not idempotency.expired(clock.iso(edge + timedelta(milliseconds=1)), NOW)

    remove_old_runs(storage, 30, now=NOW)

    for sid in (live, gone):
        assert _rows(storage, tables.IDEMPOTENCY, sid) == {key_hash("inside"), key_hash("fresh")}, sid
    assert gone in scenarios.deleted_scenario_ids(storage)  # its claims are not all gone yet

    # A millisecond later the edge claim is over too; a day later the deleted scenario has nothing left.
    remove_old_runs(storage, 30, now=NOW + timedelta(milliseconds=1))
    assert _rows(storage, tables.IDEMPOTENCY, live) == {key_hash("fresh")}
    remove_old_runs(storage, 30, now=NOW + timedelta(days=1))
    assert _rows(storage, tables.IDEMPOTENCY, gone) == set() and _rows(storage, tables.IDEMPOTENCY, live) == set()
    assert gone not in scenarios.deleted_scenario_ids(storage)


def test_a_claim_taken_over_again_is_live_and_stays(storage: Storage) -> None:
    """The key of an expired claim used again before retention runs: the claim is fresh again."""
    sid = _scenario(storage)
    _claim_at(storage, sid, "reused", clock.now() - timedelta(days=2))
    assert idempotency.claim(storage, sid, "reused", "run-new") is None  # takes the expired claim over
    remove_old_runs(storage, 30)
    assert idempotency.claim(storage, sid, "reused", "run-other") == "run-new"


def test_a_claim_taken_over_between_retentions_query_and_its_delete_stays(settings: Settings, azurite: Azurite) -> None:
    """Retention has read an expired claim; before its delete arrives, a request with the same key
    takes the claim over (another instance, straight to storage). The delete must not remove the
    claim that is now live."""
    direct = Storage.from_settings(settings)
    sid = _scenario(direct)
    _claim_at(direct, sid, "raced", clock.now() - timedelta(days=2))
    taken: list[str | None] = []

    def take_over_first(method: str, path: str) -> bool:
        if method == "DELETE" and tables.IDEMPOTENCY in path and not taken:
            taken.append(idempotency.claim(direct, sid, "raced", "run-new"))
        return False

    with TableProxy(azurite.ports) as proxy:
        proxy.unavailable_if = take_over_first
        through = Storage.from_settings(load_settings({"AzureWebJobsStorage": proxy.connection_string, "JUNCTION_TABLE_PREFIX": settings.table_prefix}))
        remove_old_runs(through, 30)
    assert taken == [None]  # the request took the expired claim over, as the race needs
    assert idempotency.claim(direct, sid, "raced", "run-other") == "run-new"


def test_a_deleted_scenarios_cache_and_buckets_go_and_its_tombstone_waits_for_them(storage: Storage) -> None:
    live, gone = _scenario(storage), _scenario(storage)
    big = "x" * (1200 * 1024)  # over an entity's budget: kept in a blob
    for sid in (live, gone):
        ScenarioCache(storage, sid).set("small", {"n": 1})
        ScenarioCache(storage, sid).set("big", big)
    start = NOW.timestamp()
    _fill(storage, live, start - 3600)  # long spent, but its scenario is live: not retention's to remove
    _fill(storage, gone, start - 3600, ("alice", "bob"))  # spent
    _fill(storage, gone, start - 0.5, ("carol",))  # Tat = start + 0.5: not spent at NOW
    blobs_before = {b.name for b in storage.container().list_blobs()}
    _delete(storage, gone)

    remove_old_runs(storage, 30, now=NOW)

    assert _rows(storage, tables.CACHE, gone) == set()
    assert _rows(storage, tables.RATELIMITS, gone) == {key_hash("carol")}
    assert gone in scenarios.deleted_scenario_ids(storage)  # a bucket is left: the tombstone waits
    assert not any(name.startswith(f"cache/{gone}/") for name in {b.name for b in storage.container().list_blobs()})
    assert any(name.startswith(f"cache/{gone}/") for name in blobs_before)
    # Nothing of the live scenario was touched.
    assert ScenarioCache(storage, live).get("small") == {"n": 1} and ScenarioCache(storage, live).get("big") == big
    assert _rows(storage, tables.RATELIMITS, live) == {key_hash("alice")}

    remove_old_runs(storage, 30, now=NOW + timedelta(seconds=1))
    assert _rows(storage, tables.RATELIMITS, gone) == set()
    assert gone not in scenarios.deleted_scenario_ids(storage)
    assert _rows(storage, tables.RATELIMITS, live) == {key_hash("alice")}


def test_a_deleted_bindings_buckets_go_and_live_bindings_keep_theirs(storage: Storage, settings: Settings) -> None:
    sid = _scenario(storage)
    apis.import_api(storage, "tidy", API, "application/json")
    for operation in ("a", "b", "c"):
        apis.bind_operation(storage, settings, "tidy", operation, {"scenarioId": sid, "rateLimit": LIMIT})
    buckets = {op: binding_key("tidy", op) for op in ("a", "b", "c")}
    start = NOW.timestamp()
    _fill(storage, buckets["a"], start - 3600, ("alice", "bob"))
    _fill(storage, buckets["b"], start - 3600)
    _fill(storage, buckets["c"], start - 0.5)  # not spent at NOW
    apis.unbind_operation(storage, "tidy", "a")
    apis.unbind_operation(storage, "tidy", "c")

    remove_old_runs(storage, 30, now=NOW)

    assert _rows(storage, tables.RATELIMITS, buckets["a"]) == set()
    assert _rows(storage, tables.RATELIMITS, buckets["b"]) == {key_hash("alice")}  # bound: kept
    assert _rows(storage, tables.RATELIMITS, buckets["c"]) == {key_hash("alice")}  # not spent yet
    assert _rows(storage, tables.RATELIMITS, ratelimit.RETIRED) == {buckets["c"]}

    remove_old_runs(storage, 30, now=NOW + timedelta(seconds=1))
    assert _rows(storage, tables.RATELIMITS, buckets["c"]) == set()
    assert _rows(storage, tables.RATELIMITS, ratelimit.RETIRED) == set()
    assert _rows(storage, tables.RATELIMITS, buckets["b"]) == {key_hash("alice")}


def test_deleting_an_api_retires_every_binding_bucket(storage: Storage, settings: Settings) -> None:
    sid = _scenario(storage)
    apis.import_api(storage, "tidy", API, "application/json")
    for operation in ("a", "b"):
        apis.bind_operation(storage, settings, "tidy", operation, {"scenarioId": sid, "rateLimit": LIMIT})
        _fill(storage, binding_key("tidy", operation), time.time() - 3600)
    # Re-importing without operation b drops its binding; deleting the API drops the rest.
    without_b = API.replace(b'"/b": {"get": {"operationId": "b", "responses": {"200": {"description": "ok"}}}},', b"")
    apis.import_api(storage, "tidy", without_b, "application/json")
    assert _rows(storage, tables.RATELIMITS, ratelimit.RETIRED) == {binding_key("tidy", "b")}
    apis.delete_api(storage, "tidy")
    remove_old_runs(storage, 30)
    for operation in ("a", "b"):
        assert _rows(storage, tables.RATELIMITS, binding_key("tidy", operation)) == set()
    assert _rows(storage, tables.RATELIMITS, ratelimit.RETIRED) == set()


def test_a_bucket_a_request_moves_on_between_retentions_query_and_its_delete_stays(settings: Settings, azurite: Azurite) -> None:
    """A deleted binding's spent bucket is read by retention; before the delete arrives, a request
    still in flight on an instance that served the binding takes a token. The row is not spent
    any more: removing it would let one request more through."""
    direct = Storage.from_settings(settings)
    bucket = key_hash("a binding being deleted")
    _fill(direct, bucket, time.time() - 3600)
    ratelimit.retire(direct, bucket)
    moved: list[float] = []

    def request_first(method: str, path: str) -> bool:
        if method == "DELETE" and f"PartitionKey='{bucket}'" in path and not moved:
            moved.append(time.time())
            _fill(direct, bucket, moved[0])
        return False

    with TableProxy(azurite.ports) as proxy:
        proxy.unavailable_if = request_first
        through = Storage.from_settings(load_settings({"AzureWebJobsStorage": proxy.connection_string, "JUNCTION_TABLE_PREFIX": settings.table_prefix}))
        remove_old_runs(through, 30)
    assert moved
    row = direct.table(tables.RATELIMITS).get_entity(bucket, key_hash("alice"))
    assert float(row["Tat"]) == moved[0] + 1  # the request's token is still counted
    assert _rows(direct, tables.RATELIMITS, ratelimit.RETIRED) == {bucket}  # and the tombstone waits for it
