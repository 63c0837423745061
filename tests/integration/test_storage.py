"""Table Storage layout on Azurite: large values, ETags, tokens, cache, parameterised queries."""

from __future__ import annotations

import json

import pytest

from core.identity import tokens
from core.kernel.errors import BadRequest, NotFound, PreconditionFailed, Unauthorized
from core.kernel.settings import Settings
from core.scenarios import repository as scenarios
from core.scenarios.cache import ScenarioCache
from core.store.storage import CHUNK, INLINE_LIMIT, Storage

PROCESS = {"steps": [{"type": "return", "value": "#trigger.data.body"}]}


def _scenario(**extra: object) -> dict[str, object]:
    return {"name": "s", "externalTriggers": {"enabled": True}, "process": PROCESS, **extra}


def test_values_larger_than_a_property_are_split_across_properties(storage: Storage) -> None:
    cache = ScenarioCache(storage, "11111111-1111-1111-1111-111111111111")
    value = {"text": "é" * (CHUNK * 2)}  # 240 KB of UTF-8: four chunks
    cache.set("big", value)
    entity = storage.table("cache").query_entities("PartitionKey eq @pk", parameters={"pk": "11111111-1111-1111-1111-111111111111"}).next()
    assert entity["ValueParts"] > 1
    assert "ValueBlob" not in entity
    assert cache.get("big") == value


def test_values_larger_than_an_entity_go_to_blob_storage(storage: Storage) -> None:
    cache = ScenarioCache(storage, "11111111-1111-1111-1111-111111111111")
    value = ["x" * 1000] * (INLINE_LIMIT // 1000 + 10)
    cache.set({"k": 1}, value)
    entity = next(iter(storage.table("cache").list_entities()))
    assert entity["ValueBlob"]
    assert cache.get({"k": 1}) == value
    assert cache.delete({"k": 1})
    assert not list(storage.container().list_blobs(name_starts_with=entity["ValueBlob"]))


def test_a_shrinking_value_keeps_no_stale_chunks(storage: Storage) -> None:
    cache = ScenarioCache(storage, "11111111-1111-1111-1111-111111111111")
    cache.set("k", "y" * (CHUNK * 3))
    cache.set("k", "small")
    assert cache.get("k") == "small"


def test_cache_key_injection_reads_nothing_else(storage: Storage) -> None:
    cache = ScenarioCache(storage, "11111111-1111-1111-1111-111111111111")
    cache.set("secret", 1)
    with pytest.raises(NotFound):
        cache.get("x' or PartitionKey ne '")


def test_scenarios_use_etags(storage: Storage) -> None:
    created = scenarios.create_scenario(storage, _scenario())
    updated = scenarios.patch_scenario(storage, created.id, {"name": "renamed"}, created.etag)
    assert updated.document["name"] == "renamed"
    assert updated.etag != created.etag
    with pytest.raises(PreconditionFailed):
        scenarios.replace_scenario(storage, created.id, _scenario(name="stale"), created.etag)
    with pytest.raises(PreconditionFailed):
        scenarios.delete_scenario(storage, created.id, created.etag)
    assert scenarios.get_scenario(storage, created.id).document["name"] == "renamed"
    scenarios.delete_scenario(storage, created.id, updated.etag)
    with pytest.raises(NotFound):
        scenarios.get_scenario(storage, created.id)


def test_merge_patch_removes_with_null_and_revalidates(storage: Storage) -> None:
    created = scenarios.create_scenario(storage, _scenario(description="d"))
    patched = scenarios.patch_scenario(storage, created.id, {"description": None}, None)
    assert "description" not in patched.document
    with pytest.raises(BadRequest):
        scenarios.patch_scenario(storage, created.id, {"process": {"steps": [{"type": "nope"}]}}, None)


@pytest.mark.parametrize("field", ["PartitionKey", "RowKey", "odata.etag", "Timestamp"])
def test_storage_fields_in_a_body_are_refused(storage: Storage, field: str) -> None:
    with pytest.raises(BadRequest, match="Additional properties"):
        scenarios.create_scenario(storage, _scenario(**{field: "x"}))
    assert list(storage.table("scenarios").list_entities()) == []


def test_three_hundred_extra_fields_are_refused(storage: Storage) -> None:
    with pytest.raises(BadRequest) as info:
        scenarios.create_scenario(storage, _scenario(**{f"f{i}": i for i in range(300)}))
    assert len(info.value.message) < 400
    assert list(storage.table("scenarios").list_entities()) == []


def test_large_scenarios_round_trip(storage: Storage) -> None:
    steps = [{"type": "transform", "id": f"s{i}", "expression": "data[0].Body." + "a" * 3000} for i in range(150)]
    created = scenarios.create_scenario(storage, {"name": "big", "process": {"steps": steps}})
    assert scenarios.get_scenario(storage, created.id).process["steps"] == steps


def test_tokens_are_stored_as_hashes_only(storage: Storage) -> None:
    created = tokens.create_token(storage, name="ci", scopes=["trigger"])
    assert created.token.startswith("jct_")
    raw = json.dumps([dict(e) for e in storage.table("tokens").list_entities()], default=str)
    assert created.token not in raw
    assert created.token[4 + 32 :] not in raw
    assert tokens.verify_token(storage, created.token).scopes == {"trigger"}
    listed = tokens.list_tokens(storage)
    assert listed[0]["id"] == created.id and "token" not in listed[0] and "hash" not in json.dumps(listed).lower()


def test_revoked_tokens_fail_on_the_next_request(storage: Storage) -> None:
    created = tokens.create_token(storage, name="ci", scopes=["admin"])
    tokens.verify_token(storage, created.token)
    tokens.revoke_token(storage, created.id)
    with pytest.raises(Unauthorized):
        tokens.verify_token(storage, created.token)


def test_a_token_with_a_wrong_secret_fails(storage: Storage) -> None:
    created = tokens.create_token(storage, name="ci", scopes=["admin"])
    forged = created.token[:-1] + ("A" if created.token[-1] != "A" else "B")
    with pytest.raises(Unauthorized):
        tokens.verify_token(storage, forged)


def test_expired_tokens_fail(storage: Storage) -> None:
    created = tokens.create_token(storage, name="ci", scopes=["admin"], expires_in_days=1)
    storage.table("tokens").update_entity({"PartitionKey": "token", "RowKey": created.id, "ExpiresAt": "2020-01-01T00:00:00.000Z"}, mode="merge")
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify_token(storage, created.token)


def test_storage_requests_are_counted(storage: Storage) -> None:
    storage.table("scenarios")
    before = storage.counter.total
    list(storage.table("scenarios").list_entities())
    assert storage.counter.total == before + 1


def test_the_sdk_logs_no_request_below_warning(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """Under the Functions worker the root logger is at INFO and every record becomes a User log in
    Application Insights; the SDK's per-request INFO logs (headers included) must not get there."""
    import logging

    sdk = logging.getLogger("azure")
    previous = sdk.level
    sdk.setLevel(logging.NOTSET)  # nobody configured it, as under the worker
    try:
        caplog.set_level(logging.INFO)  # the worker's root level
        storage = Storage.from_settings(settings)
        ScenarioCache(storage, "11111111-1111-1111-1111-111111111111").set("k", 1)
        storage.queue().send_message("x")
        noisy = [r for r in caplog.records if r.name.startswith("azure") and r.levelno < logging.WARNING]
        assert noisy == []
        assert storage.counter.total >= 3  # requests were made
    finally:
        sdk.setLevel(previous)


def _closed_port_url() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_a_proxy_in_the_environment_is_used_for_storage(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxies still come from the environment (HTTP_PROXY, NO_PROXY), as requests reads them."""
    from core.store.errors import StorageFailure

    monkeypatch.setenv("HTTP_PROXY", _closed_port_url())
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(StorageFailure):
        Storage.from_settings(settings).table("scenarios").create_table()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert scenarios.create_scenario(Storage.from_settings(settings), _scenario()).id


def test_the_environment_is_read_once_per_host_not_per_request(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """requests reads the proxy settings on every call (a tenth of a storage call's CPU); a
    Storage reads them on its first request to each host, as settings are read once."""
    created = scenarios.create_scenario(storage, _scenario())
    monkeypatch.setenv("HTTP_PROXY", _closed_port_url())
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert scenarios.get_scenario(storage, created.id).id == created.id
