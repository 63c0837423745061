"""Accept, the worker and idempotency on Azurite, through core (no host)."""

from __future__ import annotations

import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from core.app.external import AcceptRequest, accept, get_cache_data
from core.identity import tokens
from core.kernel.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from core.kernel.settings import Settings, StorageSettings
from core.runs import records as runs
from core.runs.messages import MAX_INLINE_MESSAGE
from core.runs.worker import MAX_ATTEMPTS, execute_run
from core.scenarios import repository as scenarios
from core.store.storage import Storage
from devhost.azurite import Azurite, connection_string, free_port

CACHE_IT = {
    "steps": [
        {"type": "transform", "id": "got", "expression": "data[0].Body"},
        {"type": "cache", "key": "last", "value": "#steps.got"},
        {"type": "return", "value": {"jmespath": "{echo: steps.got}"}},
    ]
}


def _create(storage: Storage, *, enabled: bool = True, anonymous: bool = True, process: dict[str, Any] | None = None) -> str:
    document = {"name": "t", "externalTriggers": {"enabled": enabled, "allowAnonymous": anonymous}, "process": process or CACHE_IT}
    return scenarios.create_scenario(storage, document).id


def _post(scenario_id: str, body: bytes = b'{"a": 1}', content_type: str | None = "application/json", auth: str | None = None, key: str | None = None) -> AcceptRequest:
    return AcceptRequest(scenario_id, "POST", body, content_type, auth, key)


def _drain(storage: Storage, settings: Settings, attempt: int = 1) -> list[str]:
    outcomes = []
    for message in storage.queue().receive_messages(messages_per_page=32, visibility_timeout=1):
        outcomes.append(execute_run(storage, settings, message.content, attempt))
        storage.queue().delete_message(message)
    return outcomes


def _run_count(storage: Storage, scenario_id: str) -> int:
    return len(list(storage.table("runs").query_entities("PartitionKey eq @pk", parameters={"pk": scenario_id})))


def test_accept_runs_the_process_and_caches_the_body(storage: Storage, settings: Settings) -> None:
    sid = _create(storage)
    result = accept(storage, settings, _post(sid, b'{"order": 7}'))
    assert runs.get_run(storage, sid, result.run_id)["status"] == "queued"
    assert _drain(storage, settings) == ["succeeded"]
    run = runs.get_run(storage, sid, result.run_id)
    assert run["status"] == "succeeded" and run["output"] == {"echo": {"order": 7}}
    assert run["startedAt"] and run["endedAt"] and run["attempts"] == 1
    assert get_cache_data(storage, sid, '"last"', None) == {"order": 7}


def test_warm_accept_costs_three_storage_calls_and_four_with_a_token(storage: Storage, settings: Settings) -> None:
    fresh = dataclasses.replace(settings, scenario_hold_seconds=0)  # the scenario read on every call
    sid = _create(storage, anonymous=True)
    accept(storage, fresh, _post(sid))  # warm: tables and queue exist
    storage.counter.reset(keep_log=True)
    accept(storage, fresh, _post(sid))
    assert storage.counter.total == 3, storage.counter.log
    token = tokens.create_token(storage, name="t", scopes=["trigger"]).token
    storage.counter.reset(keep_log=True)
    accept(storage, fresh, _post(sid, auth=f"Bearer {token}"))
    assert storage.counter.total == 4, storage.counter.log
    assert len(set(storage.counter.log)) == 4  # none repeated


def test_an_accept_within_the_hold_time_does_not_read_the_scenario(storage: Storage, settings: Settings) -> None:
    held = dataclasses.replace(settings, scenario_hold_seconds=60)
    sid = _create(storage)
    accept(storage, held, _post(sid))  # reads and holds the scenario
    storage.counter.reset(keep_log=True)
    accept(storage, held, _post(sid))
    assert storage.counter.total == 2, storage.counter.log  # run insert, message send
    assert not any("scenarios" in call for call in storage.counter.log), storage.counter.log
    assert _drain(storage, held) == ["succeeded", "succeeded"]


def test_a_change_through_this_process_holds_at_once_and_one_elsewhere_after_the_hold(storage: Storage, settings: Settings) -> None:
    """Writes through the repository forget what this process holds; a write by another
    instance (here: straight to the table) is seen once the hold time has passed."""
    held = dataclasses.replace(settings, scenario_hold_seconds=60)
    sid = _create(storage)
    accept(storage, held, _post(sid))
    scenarios.patch_scenario(storage, sid, {"externalTriggers": {"enabled": False}}, None)
    with pytest.raises(Unauthorized):  # disabled: an anonymous caller learns nothing more
        accept(storage, held, _post(sid))
    scenarios.patch_scenario(storage, sid, {"externalTriggers": {"enabled": True}}, None)
    short = dataclasses.replace(settings, scenario_hold_seconds=2)
    accept(storage, short, _post(sid))  # held for 2 s from here
    storage.table("scenarios").update_entity({"PartitionKey": "scenario", "RowKey": sid, "Doc0": json.dumps(
        {**scenarios.get_scenario(storage, sid).document, "externalTriggers": {"enabled": False, "allowAnonymous": True}}
    ).encode()}, mode="merge")
    accept(storage, short, _post(sid))  # another instance's change: not seen within the hold
    deadline = time.monotonic() + 10
    refused = False
    while not refused and time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            accept(storage, short, _post(sid))
        except Unauthorized:
            refused = True
    assert refused, "a change made elsewhere was still not seen 10 s later (hold 2 s)"
    assert scenarios.get_scenario(storage, sid).triggers_enabled is False


def _run_calls(storage: Storage, settings: Settings, sid: str) -> tuple[list[str], list[str]]:
    """The storage calls of one Accept and of the worker executing its run (the host's receive
    and delete of the message are not the worker's)."""
    storage.counter.reset(keep_log=True)
    accept(storage, settings, _post(sid, b'{"n": 1}'))
    accepted = list(storage.counter.log)
    message = storage.queue().receive_message()
    storage.counter.reset(keep_log=True)
    assert execute_run(storage, settings, message.content, 1) == "succeeded"
    executed = list(storage.counter.log)
    storage.queue().delete_message(message)
    return accepted, executed


def test_a_warm_run_costs_three_worker_calls_none_repeated(storage: Storage, settings: Settings) -> None:
    """The message carries the record's ETag and the scenario's version: the worker claims the
    run with one conditional write and reads neither the record nor a scenario it holds."""
    settings = dataclasses.replace(settings, scenario_hold_seconds=60)
    sid = _create(storage)
    _run_calls(storage, settings, sid)  # warm: tables, queue, the scenario held by Accept and its version by the worker
    accepted, executed = _run_calls(storage, settings, sid)
    assert [call.split(" ")[0] for call in accepted] == ["POST", "POST"], accepted  # run insert, message send
    assert [call.split(" ")[0] for call in executed] == ["PATCH", "PUT", "PATCH"], executed  # running, cache, final
    assert len(set(accepted + executed)) == len(accepted + executed) - 1  # only the run record is written twice


def test_a_changed_scenario_is_read_again_by_the_worker(storage: Storage, settings: Settings) -> None:
    sid = _create(storage)
    _run_calls(storage, settings, sid)
    scenarios.patch_scenario(storage, sid, {"process": {"steps": [{"type": "cache", "key": "last", "value": "changed"}]}}, None)
    _, executed = _run_calls(storage, settings, sid)
    assert [call.split(" ")[0] for call in executed] == ["PATCH", "GET", "PUT", "PATCH"], executed
    assert get_cache_data(storage, sid, '"last"', None) == "changed"


def test_a_retried_message_finds_its_record_changed_and_runs_again(storage: Storage, settings: Settings) -> None:
    """The record's ETag in the message no longer matches after a failed attempt: the worker
    reads the record, and the run still executes once, on the attempt that succeeds."""
    sid = _create(storage)
    result = accept(storage, settings, _post(sid, b'{"n": 2}'))
    message = storage.queue().receive_message()
    entity = runs.read_run_entity(storage, sid, result.run_id)
    runs.update_run(storage, entity, Status=runs.QUEUED, Attempts=1, error="attempt 1: the worker stopped")
    assert execute_run(storage, settings, message.content, 2) == "succeeded"
    run = runs.get_run(storage, sid, result.run_id)
    assert run["status"] == "succeeded" and run["attempts"] == 2 and run["error"] is None
    assert execute_run(storage, settings, message.content, 3) == "succeeded"  # repeated: acknowledged
    assert runs.get_run(storage, sid, result.run_id)["attempts"] == 2


def test_a_message_whose_record_is_gone_is_dropped(storage: Storage, settings: Settings) -> None:
    sid = _create(storage)
    result = accept(storage, settings, _post(sid))
    message = storage.queue().receive_message()
    storage.table("runs").delete_entity(sid, result.run_id)
    assert execute_run(storage, settings, message.content, 1) == "missing"
    assert _run_count(storage, sid) == 0
    assert get_cache_data_or_none(storage, sid) is None


def get_cache_data_or_none(storage: Storage, sid: str) -> Any:
    try:
        return get_cache_data(storage, sid, '"last"', None)
    except NotFound:
        return None


def test_get_without_body_runs_with_null_input(storage: Storage, settings: Settings) -> None:
    sid = _create(storage)
    result = accept(storage, settings, AcceptRequest(sid, "GET", b"", None, None))
    assert _drain(storage, settings) == ["succeeded"]
    assert runs.get_run(storage, sid, result.run_id)["output"] == {"echo": None}


def test_large_bodies_travel_through_blob_storage(storage: Storage, settings: Settings) -> None:
    sid = _create(storage)
    body = {"blob": "z" * (MAX_INLINE_MESSAGE * 2)}
    result = accept(storage, settings, _post(sid, json.dumps(body).encode()))
    assert len(list(storage.container().list_blobs(name_starts_with="inputs/"))) == 1
    assert _drain(storage, settings) == ["succeeded"]
    assert runs.get_run(storage, sid, result.run_id)["output"] == {"echo": body}
    assert list(storage.container().list_blobs(name_starts_with="inputs/")) == []


def test_xml_and_form_bodies_reach_the_process_as_objects(storage: Storage, settings: Settings) -> None:
    sid = _create(storage)
    accept(storage, settings, _post(sid, b"<order><id>9</id></order>", "application/xml"))
    _drain(storage, settings)
    assert get_cache_data(storage, sid, '"last"', None) == {"order": {"id": "9"}}
    accept(storage, settings, _post(sid, b"a=1&b=%C3%A9", "application/x-www-form-urlencoded"))
    _drain(storage, settings)
    assert get_cache_data(storage, sid, '"last"', None) == {"a": "1", "b": "é"}


def test_access_rules(storage: Storage, settings: Settings) -> None:
    disabled = _create(storage, enabled=False)
    private = _create(storage, anonymous=False)
    other = _create(storage, anonymous=False)
    with pytest.raises(Unauthorized):  # no credentials: told nothing about the scenario
        accept(storage, settings, _post(disabled))
    with pytest.raises(Unauthorized):
        accept(storage, settings, _post(private))
    limited = tokens.create_token(storage, name="one", scopes=["trigger"], scenario_ids=[private]).token
    accept(storage, settings, _post(private, auth=f"Bearer {limited}"))
    with pytest.raises(Forbidden):
        accept(storage, settings, _post(other, auth=f"Bearer {limited}"))
    with pytest.raises(Unauthorized):
        accept(storage, settings, _post(private, auth="Bearer jct_" + "0" * 75))
    with pytest.raises(Unauthorized):
        accept(storage, settings, _post("00000000-0000-0000-0000-000000000000"))
    admin = tokens.create_token(storage, name="all", scopes=["trigger"]).token
    with pytest.raises(Forbidden):
        accept(storage, settings, _post(disabled, auth=f"Bearer {admin}"))
    with pytest.raises(NotFound):
        accept(storage, settings, _post("00000000-0000-0000-0000-000000000000", auth=f"Bearer {admin}"))
    assert _run_count(storage, disabled) == 0 and _run_count(storage, other) == 0


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b"{", "application/json", BadRequest),
        (b'{"a": 1}', "text/plain", UnsupportedMediaType),
        (b"x" * 2048, "application/json", PayloadTooLarge),
        (b"<!DOCTYPE a [<!ENTITY b 'c'>]><a>&b;</a>", "application/xml", BadRequest),
    ],
)
def test_bad_bodies_store_nothing(storage: Storage, settings: Settings, body: bytes, content_type: str, error: type[Exception]) -> None:
    small = Settings(**{**settings.__dict__, "max_body_bytes": 1024})
    sid = _create(storage)
    with pytest.raises(error):
        accept(storage, small, _post(sid, body, content_type))
    assert _run_count(storage, sid) == 0
    assert storage.queue().peek_messages(max_messages=1) == []


def test_idempotency_key_returns_the_first_run(storage: Storage, settings: Settings) -> None:
    sid = _create(storage)
    first = accept(storage, settings, _post(sid, key="order-7"))
    again = accept(storage, settings, _post(sid, key="order-7"))
    other = accept(storage, settings, _post(sid, key="order-8"))
    assert again.run_id == first.run_id and again.replayed
    assert other.run_id != first.run_id
    assert _run_count(storage, sid) == 2


def test_concurrent_accepts_with_one_key_make_one_run(storage: Storage, settings: Settings) -> None:
    sid = _create(storage)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: accept(storage, settings, _post(sid, key="same")), range(32)))
    assert len({r.run_id for r in results}) == 1
    assert _run_count(storage, sid) == 1


def test_bad_idempotency_keys_are_400(storage: Storage, settings: Settings) -> None:
    sid = _create(storage)
    for key in ["", "with space", "x" * 256, "ünicode"]:
        with pytest.raises(BadRequest):
            accept(storage, settings, _post(sid, key=key))
    assert _run_count(storage, sid) == 0


def test_a_failing_step_fails_the_run_at_once_naming_the_step(storage: Storage, settings: Settings) -> None:
    sid = _create(storage, process={"steps": [{"type": "transform", "id": "sum", "expression": "sum(data[0].Body)"}]})
    result = accept(storage, settings, _post(sid, b'"not numbers"'))
    assert _drain(storage, settings) == ["failed"]
    run = runs.get_run(storage, sid, result.run_id)
    assert run["status"] == "failed" and run["failedStep"] == "sum" and run["error"]


def test_transient_failures_are_retried_then_fail_on_the_last_attempt(storage: Storage, settings: Settings) -> None:
    sid = _create(storage)
    result = accept(storage, settings, _post(sid, json.dumps({"big": "q" * MAX_INLINE_MESSAGE}).encode()))
    message = storage.queue().receive_message()
    for blob in storage.container().list_blobs(name_starts_with="inputs/"):
        storage.container().delete_blob(blob.name)  # the input is gone: every attempt fails
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with pytest.raises(Exception):  # noqa: B017 - whatever storage raised goes back to the host
            execute_run(storage, settings, message.content, attempt)
        status = runs.get_run(storage, sid, result.run_id)["status"]
        assert status == ("failed" if attempt == MAX_ATTEMPTS else "queued")
    assert "attempt 5" in runs.get_run(storage, sid, result.run_id)["error"]


def test_a_repeated_message_does_not_run_twice(storage: Storage, settings: Settings) -> None:
    sid = _create(storage)
    accept(storage, settings, _post(sid))
    message = storage.queue().receive_message()
    assert execute_run(storage, settings, message.content, 1) == "succeeded"
    scenarios.patch_scenario(storage, sid, {"process": {"steps": [{"type": "cache", "key": "last", "value": "changed"}]}}, None)
    assert execute_run(storage, settings, message.content, 2) == "succeeded"
    assert get_cache_data(storage, sid, '"last"', None) == {"a": 1}


def test_runs_list_newest_first_with_next_links(storage: Storage, settings: Settings) -> None:
    sid = _create(storage)
    ids = [accept(storage, settings, _post(sid)).run_id for _ in range(5)]
    seen: list[str] = []
    skiptoken = None
    while True:
        page = runs.list_runs(storage, sid, top=2, skiptoken=skiptoken, link=lambda extra: extra["skiptoken"])
        seen.extend(r["id"] for r in page["value"])
        if not page["nextLink"]:
            break
        skiptoken = page["nextLink"]
    assert seen == list(reversed(ids))


def test_forged_skiptokens_are_400(storage: Storage) -> None:
    for token in ["!!!", "e30", "W10", "eyJhIjogMX0"]:  # invalid base64, {}, [], {"a": 1}
        if token == "e30":
            continue  # {} is a valid empty token
        with pytest.raises(BadRequest):
            runs.list_runs(storage, "11111111-1111-1111-1111-111111111111", top=2, skiptoken=token, link=str)


def test_a_run_whose_message_cannot_be_sent_leaves_no_record(storage: Storage, settings: Settings) -> None:
    sid = _create(storage)
    accept(storage, settings, _post(sid))
    storage.queue().delete_queue()  # the queue vanishes under a warm instance: the send fails
    with pytest.raises(Exception):  # noqa: B017 - whatever storage raised reaches the caller (a 503/5xx)
        accept(storage, settings, _post(sid))
    assert _run_count(storage, sid) == 1


def test_a_queue_outage_leaves_no_phantom_run_and_frees_the_idempotency_key(azurite: Azurite, storage: Storage, settings: Settings) -> None:
    """Only the queue service is unreachable (its endpoint is a closed port): the caller gets the
    storage error (503), no run record stays behind, and a retry with the same key starts one run."""
    sid = _create(storage)
    blob, _, table = azurite.ports
    broken = Storage.from_settings(
        dataclasses.replace(settings, storage=StorageSettings(connection_string=connection_string(blob, free_port(), table)))
    )
    with pytest.raises(ServiceRequestError):
        accept(broken, settings, _post(sid, key="order-9"))
    assert _run_count(storage, sid) == 0
    retried = accept(storage, settings, _post(sid, key="order-9"))
    assert not retried.replayed and _run_count(storage, sid) == 1
