"""The process engine with real parts: Azurite, and a local HTTP server for http steps and sources."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from core.app.external import AcceptRequest, accept
from core.kernel.errors import BadRequest, NotFound
from core.kernel.ids import new_run_id
from core.kernel.settings import Settings
from core.process.errors import ProcessFailed
from core.runs import records as runs
from core.runs.messages import input_blob_name
from core.runs.retention import remove_old_runs
from core.runs.sync_run import run_now
from core.runs.worker import execute_run
from core.scenarios import repository as scenarios
from core.scenarios.cache import ScenarioCache
from core.store.storage import INLINE_LIMIT, Storage
from tests.support.upstream import Upstream


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture
def allowed(settings: Settings, upstream: Upstream) -> Settings:
    return dataclasses.replace(settings, outbound_allowed_hosts=(upstream.host,))


def _scenario(storage: Storage, settings: Settings, steps: list[dict[str, Any]], **extra: Any) -> str:
    document = {"name": "p", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": {"steps": steps}, **extra}
    return scenarios.create_scenario(storage, document, settings.outbound_allowed_hosts).id


def _run(storage: Storage, settings: Settings, sid: str, body: Any = None) -> dict[str, Any]:
    method, data = ("POST", json.dumps(body).encode()) if body is not None else ("GET", b"")
    result = accept(storage, settings, AcceptRequest(sid, method, data, "application/json", None))
    for message in storage.queue().receive_messages(messages_per_page=32, visibility_timeout=30):
        execute_run(storage, settings, message.content, 1)
        storage.queue().delete_message(message)
    return runs.get_run(storage, sid, result.run_id)


def test_http_step_retries_transient_failures_and_later_steps_see_the_response(storage: Storage, allowed: Settings, upstream: Upstream) -> None:
    sid = _scenario(storage, allowed, [
        {"type": "http", "id": "call", "url": f"{upstream.url}/flaky", "retries": 3},
        {"type": "return", "value": {"jmespath": "{status: steps.call.status, count: steps.call.body.count, ids: steps.call.body.orders[].id}"}},
    ])  # fmt: skip
    run = _run(storage, allowed, sid)
    assert run["status"] == "succeeded", run
    assert run["output"] == {"status": 200, "count": 3, "ids": [1, 2]}
    assert upstream.hits["/flaky"] == 3


def test_http_step_honours_retry_after(storage: Storage, allowed: Settings, upstream: Upstream) -> None:
    sid = _scenario(storage, allowed, [{"type": "http", "id": "call", "url": f"{upstream.url}/throttled"}, {"type": "return", "value": "#steps.call.status"}])
    run = _run(storage, allowed, sid)
    assert run["output"] == 200 and upstream.hits["/throttled"] == 2


def test_http_step_posts_json_and_sends_secrets_from_app_settings(storage: Storage, allowed: Settings, upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUNCTION_SECRET_ORDERS", "Bearer s3cret")
    sid = _scenario(storage, allowed, [
        {"type": "http", "id": "auth", "url": f"{upstream.url}/echo-auth", "method": "POST", "body": "#trigger.data.body",
         "headers": {"Authorization": {"secret": "JUNCTION_SECRET_ORDERS"}}},
        {"type": "return", "value": "#steps.auth.body.auth"},
    ])  # fmt: skip
    run = _run(storage, allowed, sid, {"order": 9})
    assert upstream.request_headers["/echo-auth"][0]["authorization"] == "Bearer s3cret"
    assert run["output"] == "[JUNCTION_SECRET_ORDERS]"  # an upstream echoing it back is scrubbed (issue 13)
    assert json.loads(upstream.bodies["/echo-auth"][0]) == {"order": 9}
    stored = json.dumps(scenarios.get_scenario(storage, sid).document) + json.dumps(run)
    assert "s3cret" not in stored  # the secret reached the upstream, and nothing Junction stored


def test_http_step_parses_xml_responses(storage: Storage, allowed: Settings, upstream: Upstream) -> None:
    sid = _scenario(storage, allowed, [{"type": "http", "id": "x", "url": f"{upstream.url}/xml"}, {"type": "return", "value": "#steps.x.body.order.id"}])
    assert _run(storage, allowed, sid)["output"] == "5"


def test_http_step_timeout_is_retried_by_the_queue_and_fails_the_run_on_the_last_attempt(storage: Storage, allowed: Settings, upstream: Upstream) -> None:
    sid = _scenario(storage, allowed, [{"type": "http", "id": "slowcall", "url": f"{upstream.url}/slow", "timeout": 1, "retries": 0}])
    result = accept(storage, allowed, AcceptRequest(sid, "GET", b"", None, None))
    (message,) = storage.queue().receive_messages(messages_per_page=32, visibility_timeout=30)
    with pytest.raises(ProcessFailed):  # raised: the host makes the message visible again
        execute_run(storage, allowed, message.content, 1)
    run = runs.get_run(storage, sid, result.run_id)
    assert run["status"] == "queued" and run["attempts"] == 1
    assert run["error"].startswith("attempt 1: step slowcall:") and "Timeout" in run["error"]
    with pytest.raises(ProcessFailed):
        execute_run(storage, allowed, message.content, 5)
    storage.queue().delete_message(message)
    run = runs.get_run(storage, sid, result.run_id)
    assert run["status"] == "failed" and run["failedStep"] == "slowcall" and run["attempts"] == 5
    assert [s["status"] for s in run["steps"]] == ["failed"]


def test_redirect_to_a_host_outside_the_allow_list_is_refused(storage: Storage, allowed: Settings, upstream: Upstream) -> None:
    sid = _scenario(storage, allowed, [{"type": "http", "id": "hop", "url": f"{upstream.url}/redirect-out"}])
    run = _run(storage, allowed, sid)
    assert run["status"] == "failed" and run["failedStep"] == "hop"
    assert "169.254.169.254" in run["error"] and "ALLOWED_HOSTS" in run["error"]


def test_redirect_within_the_allowed_host_is_followed(storage: Storage, allowed: Settings, upstream: Upstream) -> None:
    sid = _scenario(storage, allowed, [{"type": "http", "id": "hop", "url": f"{upstream.url}/redirect-in"}, {"type": "return", "value": "#steps.hop.body.path"}])
    assert _run(storage, allowed, sid)["output"] == "/orders"


def test_error_responses_fail_the_step_unless_asked_not_to(storage: Storage, allowed: Settings, upstream: Upstream) -> None:
    failing = _scenario(storage, allowed, [{"type": "http", "id": "get", "url": f"{upstream.url}/missing"}])
    run = _run(storage, allowed, failing)
    assert run["status"] == "failed" and "404" in run["error"]
    tolerant = _scenario(storage, allowed, [{"type": "http", "id": "get", "url": f"{upstream.url}/missing", "failOnError": False}, {"type": "return", "value": "#steps.get.status"}])
    assert _run(storage, allowed, tolerant)["output"] == 404


def test_a_disallowed_host_is_refused_when_the_scenario_is_saved(storage: Storage, settings: Settings, upstream: Upstream) -> None:
    with pytest.raises(BadRequest, match=r"process.steps\[0\].url"):
        _scenario(storage, settings, [{"type": "http", "url": f"{upstream.url}/x"}])
    with pytest.raises(BadRequest, match="source.url"):
        _scenario(storage, settings, [], source={"type": "http", "url": f"{upstream.url}/x"})
    assert list(storage.table("scenarios").list_entities()) == []


def test_a_dynamic_url_outside_the_allow_list_fails_at_run_time(storage: Storage, allowed: Settings) -> None:
    sid = _scenario(storage, allowed, [{"type": "http", "id": "dyn", "url": "#trigger.data.body.url"}])
    run = _run(storage, allowed, sid, {"url": "http://127.0.0.2:1/internal"})
    assert run["status"] == "failed" and run["failedStep"] == "dyn" and "ALLOWED_HOSTS" in run["error"]


def test_a_run_without_a_body_polls_the_source(storage: Storage, allowed: Settings, upstream: Upstream) -> None:
    sid = _scenario(storage, allowed, [{"type": "return", "value": {"jmespath": "data[0].Body.orders[].id"}}], source={"type": "http", "url": f"{upstream.url}/source"})
    assert _run(storage, allowed, sid)["output"] == [1, 2]
    assert _run(storage, allowed, sid, {"orders": [{"id": 9}]})["output"] == [9]  # a body means no poll
    assert upstream.hits["/source"] == 1


def test_a_throw_fails_the_run_naming_the_step(storage: Storage, settings: Settings) -> None:
    sid = _scenario(storage, settings, [
        {"type": "transform", "id": "check", "expression": "data[0].Body.ok"},
        {"type": "decision", "if": "steps.check", "else": [{"type": "throw", "id": "reject", "message": "order refused"}]},
        {"type": "return", "value": "fine"},
    ])  # fmt: skip
    failed = _run(storage, settings, sid, {"ok": False})
    assert failed["status"] == "failed" and failed["failedStep"] == "reject" and failed["error"] == "order refused"
    assert [s["type"] for s in failed["steps"]] == ["transform", "decision", "throw"]
    assert _run(storage, settings, sid, {"ok": True})["output"] == "fine"


def test_missing_references_are_null_not_a_crash(storage: Storage, settings: Settings) -> None:
    sid = _scenario(storage, settings, [{"type": "return", "value": {"jmespath": "{a: data[0].Body.x.y.z, b: trigger.nothing}"}}])
    run = _run(storage, settings, sid, {"q": 1})
    assert run["status"] == "succeeded" and run["output"] == {"a": None, "b": None}


def test_large_outputs_are_stored(storage: Storage, settings: Settings) -> None:
    sid = _scenario(storage, settings, [{"type": "return", "value": "#trigger.data.body"}])
    body = {"rows": ["r" * 1000] * 900}
    assert _run(storage, settings, sid, body)["output"] == body


def test_a_process_that_answers_early_continues_from_the_queue(storage: Storage, settings: Settings) -> None:
    sid = _scenario(storage, settings, [
        {"type": "transform", "id": "got", "expression": "data[0].Body"},
        {"type": "intermediateReturn", "value": {"jmespath": "{accepted: steps.got.id}"}},
        {"type": "cache", "key": "done", "value": "#steps.got"},
        {"type": "return", "value": "finished"},
    ])  # fmt: skip
    scenario = scenarios.get_scenario(storage, sid)
    outcome = run_now(storage, settings, scenario, {"type": "api"}, {"id": 5}, None)
    assert (outcome.status, outcome.result) == ("running", {"accepted": 5})
    with pytest.raises(NotFound):
        ScenarioCache(storage, sid).get("done")  # the caller had its answer before the cache write
    assert runs.get_run(storage, sid, outcome.run_id)["status"] == "running"
    for message in storage.queue().receive_messages(messages_per_page=8, visibility_timeout=30):
        execute_run(storage, settings, message.content, 1)
        storage.queue().delete_message(message)
    run = runs.get_run(storage, sid, outcome.run_id)
    assert run["status"] == "succeeded" and run["output"] == "finished"
    assert run["intermediate"] == {"accepted": 5}
    assert [s["type"] for s in run["steps"]] == ["transform", "intermediateReturn", "cache", "return"]
    assert ScenarioCache(storage, sid).get("done") == {"id": 5}


def test_invalid_schedules_are_refused(storage: Storage, settings: Settings) -> None:
    for schedule in ["* * * * *", "61 * * * * *", "every minute"]:
        with pytest.raises(BadRequest):
            _scenario(storage, settings, [], schedule=schedule)


def test_retention_removes_only_old_runs(storage: Storage, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    sid = _scenario(storage, settings, [])
    now = time.time()
    old = [new_run_id(now - 40 * 86400), new_run_id(now - 31 * 86400)]
    recent = [new_run_id(now - 29 * 86400), new_run_id(now)]
    for run_id in old + recent:
        runs.insert_run(storage, sid, run_id, {"type": "test"})
    assert remove_old_runs(storage, 30) == 2
    assert "could not delete" not in caplog.text  # no input blob to delete is not a failure
    remaining = [r["id"] for r in runs.list_runs(storage, sid, top=10, skiptoken=None, link=str)["value"]]
    assert remaining == sorted(recent)


def _large_run(storage: Storage, sid: str, run_id: str) -> list[str]:
    """A run whose every packable value, and its queued input, went to Blob Storage."""
    runs.insert_run(storage, sid, run_id, {"type": "test"})
    entity = runs.read_run_entity(storage, sid, run_id)
    big = "x" * (INLINE_LIMIT + 1)
    runs.update_run(storage, entity, output=big, steps=[{"id": big}], intermediate=big, error=big)
    storage.container().upload_blob(input_blob_name(sid, run_id), b"{}", overwrite=True)
    return sorted(b.name for b in storage.container().list_blobs() if run_id in b.name)


def test_retention_removes_every_blob_of_an_old_run(storage: Storage, settings: Settings) -> None:
    sid = _scenario(storage, settings, [])
    now = time.time()
    old, recent = new_run_id(now - 31 * 86400), new_run_id(now - 29 * 86400)
    old_blobs, recent_blobs = _large_run(storage, sid, old), _large_run(storage, sid, recent)
    assert len(old_blobs) == len(recent_blobs) == 1 + len(runs.PACKED_VALUES)
    assert remove_old_runs(storage, 30) == 1
    left = {b.name for b in storage.container().list_blobs()}
    assert not left & set(old_blobs)
    assert set(recent_blobs) <= left
    assert runs.get_run(storage, sid, recent)["output"] == "x" * (INLINE_LIMIT + 1)


def test_a_value_written_inline_after_a_blob_reads_as_the_latest(storage: Storage, settings: Settings) -> None:
    """A merge leaves the old ``ErrorBlob`` property behind; the latest write must still win."""
    sid = _scenario(storage, settings, [])
    run_id = new_run_id()
    runs.insert_run(storage, sid, run_id, {"type": "test"})
    runs.update_run(storage, runs.read_run_entity(storage, sid, run_id), error="first attempt: " + "e" * INLINE_LIMIT)
    runs.update_run(storage, runs.read_run_entity(storage, sid, run_id), error="second attempt", Status=runs.FAILED)
    assert runs.get_run(storage, sid, run_id)["error"] == "second attempt"


def test_large_errors_are_kept_whole(storage: Storage, settings: Settings) -> None:
    sid = _scenario(storage, settings, [{"type": "throw", "id": "loud", "message": "#trigger.data.body.why"}])
    why = "because " * 200_000  # 1.6 MB: more than an entity holds
    run = _run(storage, settings, sid, {"why": why})
    assert run["status"] == "failed" and run["error"] == why
    listed = runs.list_runs(storage, sid, top=1, skiptoken=None, link=str)["value"][0]
    assert listed["error"] == why
