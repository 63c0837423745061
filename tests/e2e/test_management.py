"""The management API over real HTTP, the run worker's poison path, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy
from openapi_spec_validator import validate

from cli.http import HttpClient
from cli.main import _every_page
from core.identity.tokens import create_token
from core.kernel.ids import new_run_id
from core.kernel.settings import load_settings
from core.runs import records as runs
from core.scenarios import repository as scenarios
from core.store.storage import Storage
from devhost.azurite import Azurite, free_port
from tests.e2e.conftest import ROOT, Junction, assert_json_error, eventually, serve_junction
from tests.support.upstream import Upstream

SCENARIO = {"name": "managed", "externalTriggers": {"enabled": True}, "process": {"steps": [{"type": "return", "value": 1}]}}


def test_management_needs_an_admin_token(junction: Junction) -> None:
    with junction.client() as anonymous:
        response = anonymous.get("/management/scenarios")
        assert_json_error(response, 401, "AuthenticationRequired")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    trigger_only = create_token(junction.storage, name="t", scopes=["trigger"]).token
    with junction.client(trigger_only) as client:
        assert_json_error(client.get("/management/scenarios"), 403, "InsufficientScope")
        assert_json_error(client.post("/management/tokens", json={"name": "x", "scopes": ["admin"]}), 403)


def test_scenario_lifecycle_with_etags(junction: Junction) -> None:
    with junction.admin() as admin:
        created = admin.post("/management/scenarios", json=SCENARIO)
        assert created.status_code == 201
        body = created.json()
        sid, etag = body["id"], created.headers["ETag"]
        assert body["externalTriggers"] == {"enabled": True, "allowAnonymous": False}
        assert created.headers["Location"].endswith(f"/management/scenarios/{sid}")
        read = admin.get(f"/management/scenarios/{sid}")
        assert read.json()["name"] == "managed" and read.headers["ETag"] == etag

        patched = admin.patch(f"/management/scenarios/{sid}", json={"name": "renamed"}, headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"})
        assert patched.status_code == 200 and patched.json()["name"] == "renamed"
        stale = admin.put(f"/management/scenarios/{sid}", json=SCENARIO, headers={"If-Match": etag})
        assert_json_error(stale, 412, "ETagMismatch")
        for headers in ({"If-Match": etag}, {"If-Match": ""}):  # an invalid patch is a 400 whatever the ETag
            invalid = admin.patch(f"/management/scenarios/{sid}", json=[None, None], headers=headers)
            assert_json_error(invalid, 400)
        assert_json_error(admin.patch(f"/management/scenarios/{sid}", json={"name": "x"}, headers={"If-Match": etag}), 412)
        assert admin.get(f"/management/scenarios/{sid}").json()["name"] == "renamed"
        assert_json_error(admin.delete(f"/management/scenarios/{sid}", headers={"If-Match": etag}), 412)
        replaced = admin.put(f"/management/scenarios/{sid}", json={**SCENARIO, "name": "replaced"}, headers={"If-Match": patched.headers["ETag"]})
        assert replaced.status_code == 200

        listed = admin.get("/management/scenarios", params={"top": 1000}).json()
        assert sid in [s["id"] for s in listed["value"]]
        assert admin.delete(f"/management/scenarios/{sid}", headers={"If-Match": replaced.headers["ETag"]}).status_code == 204
        assert_json_error(admin.get(f"/management/scenarios/{sid}"), 404, "ScenarioNotFound")


def test_scenario_lists_page_with_next_links(junction: Junction) -> None:
    for _ in range(3):
        junction.create_scenario()
    with junction.admin() as admin:
        page = admin.get("/management/scenarios", params={"top": 2}).json()
        assert len(page["value"]) == 2 and page["nextLink"]
        follow = admin.get(page["nextLink"])
        assert follow.status_code == 200
        assert {s["id"] for s in follow.json()["value"]}.isdisjoint({s["id"] for s in page["value"]})
        assert_json_error(admin.get("/management/scenarios", params={"skiptoken": "forged!"}), 400, "InvalidSkipToken")
        assert_json_error(admin.get("/management/scenarios", params={"top": "0"}), 400, "InvalidTop")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({**SCENARIO, "PartitionKey": "scenario"}, "PartitionKey"),
        ({**SCENARIO, "RowKey": "x"}, "RowKey"),
        ({**SCENARIO, "odata.etag": "x"}, "odata.etag"),
        ({**SCENARIO, **{f"extra{i}": i for i in range(300)}}, "Additional properties"),
        ({**SCENARIO, "externalTriggers": {"enabled": "yes"}}, "scenario.externalTriggers.enabled"),
        ({**SCENARIO, "process": {"steps": [{"type": "exec", "code": "1"}]}}, "process.steps[0]"),
        ({"name": "no process"}, "process"),
    ],
)
def test_bad_management_bodies_are_400_and_store_nothing(junction: Junction, body: dict[str, Any], fragment: str) -> None:
    with junction.admin() as admin:
        before = len(admin.get("/management/scenarios", params={"top": 1000}).json()["value"])
        error = assert_json_error(admin.post("/management/scenarios", json=body), 400)
        assert fragment in error["message"]
        assert len(admin.get("/management/scenarios", params={"top": 1000}).json()["value"]) == before


def test_management_rejects_non_json(junction: Junction) -> None:
    with junction.admin() as admin:
        assert_json_error(admin.post("/management/scenarios", content=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
        assert_json_error(admin.post("/management/scenarios", content=b"{", headers={"Content-Type": "application/json"}), 400, "InvalidJson")


def test_cache_entries_through_management(junction: Junction, scenario: dict[str, Any], ) -> None:
    sid = scenario["id"]
    with junction.admin() as admin:
        assert admin.put(f"/management/scenarios/{sid}/cache", params={"keyJson": '{"b":1,"a":2}'}, json={"v": [1]}).status_code == 204
        assert admin.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": '{"a":2,"b":1}'}).json() == {"v": [1]}
        assert admin.delete(f"/management/scenarios/{sid}/cache", params={"keyJson": '{"a":2,"b":1}'}).status_code == 204
        assert_json_error(admin.delete(f"/management/scenarios/{sid}/cache", params={"keyJson": '{"a":2,"b":1}'}), 404)


def test_runs_are_listed_newest_first(junction: Junction, scenario: dict[str, Any]) -> None:
    sid = scenario["id"]
    with junction.admin() as admin:
        ids = [admin.post(f"/ExternalData/Accept/{sid}", json={"i": i}).headers["X-Run-Id"] for i in range(3)]
        listed = admin.get(f"/management/scenarios/{sid}/runs").json()["value"]
        assert [r["id"] for r in listed] == list(reversed(ids))
        assert_json_error(admin.get(f"/management/scenarios/{sid}/runs/not-a-guid"), 400, "InvalidRunId")
        assert_json_error(admin.get(f"/management/scenarios/{sid}/runs/{new_run_id()}"), 404, "RunNotFound")


def test_tokens_api_shows_secrets_once_and_revokes(junction: Junction, scenario: dict[str, Any]) -> None:
    with junction.admin() as admin:
        created = admin.post("/management/tokens", json={"name": "ci", "scopes": ["trigger"], "scenarioIds": [scenario["id"]], "expiresInDays": 30})
        assert created.status_code == 201
        token = created.json()
        assert token["token"].startswith("jct_") and token["expiresAt"]
        listed = admin.get("/management/tokens")
        assert token["token"] not in listed.text
        assert token["id"] in [t["id"] for t in listed.json()["value"]]
        assert_json_error(admin.post("/management/tokens", json={"name": "x", "scopes": ["root"]}), 400)
    with junction.client(token["token"]) as client:
        assert client.post(f"/ExternalData/Accept/{scenario['id']}", json={}).status_code == 200
    with junction.admin() as admin:
        assert admin.delete(f"/management/tokens/{token['id']}").status_code == 204
        assert_json_error(admin.delete(f"/management/tokens/{token['id']}"), 404)
        assert_json_error(admin.delete("/management/tokens/..%2F.."), 400)
    with junction.client(token["token"]) as client:
        assert_json_error(client.post(f"/ExternalData/Accept/{scenario['id']}", json={}), 401)


def test_openapi_document_is_served_and_valid(junction: Junction) -> None:
    with junction.client() as client:
        response = client.get("/management/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["servers"][0]["url"] == junction.url
    assert "/ExternalData/Accept/{scenarioId}" in document["paths"]


def test_a_run_that_always_fails_ends_failed_in_the_poison_queue(junction: Junction, scenario: dict[str, Any]) -> None:
    """A message whose input blob is gone fails every attempt: after 5 the worker marks the run
    failed, the host moves the message to the poison queue, and failPoisonedRun leaves the record
    as the worker wrote it (the run is marked failed once) and removes the message."""
    sid, run_id = scenario["id"], new_run_id()
    runs.insert_run(junction.storage, sid, run_id, {"type": "accept"})
    message = json.dumps({"v": 1, "scenarioId": sid, "runId": run_id, "messageBlob": "inputs/missing.json", "trigger": {}})
    junction.storage.queue().send_message(message)
    run = junction.wait_for_run(sid, run_id, timeout=60)
    assert run["status"] == "failed" and run["attempts"] == 5
    assert "attempt 5" in run["error"]
    ended = run["endedAt"]
    queues = [_queue_texts(junction, ""), _queue_texts(junction, "-poison")]
    assert eventually(lambda: not any(run_id in text for q in queues for text in q()), timeout=30)
    run = junction.wait_for_run(sid, run_id)
    assert run["endedAt"] == ended and "attempt 5" in run["error"]


def _queue_texts(junction: Junction, suffix: str) -> Callable[[], list[str]]:
    client = QueueClient.from_connection_string(
        junction.env["AzureWebJobsStorage"],
        f"{junction.storage.run_queue_name}{suffix}",
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )

    def texts() -> list[str]:
        try:
            return [m.content for m in client.peek_messages(max_messages=32)]
        except Exception:  # noqa: BLE001 - not created yet
            return []

    return texts


def test_a_run_whose_last_attempt_never_finished_is_marked_failed(
    azurite: Azurite, upstream: Upstream, tmp_path: Path
) -> None:
    """Issue 21 A3: the fifth attempt crashed the worker, so the record says ``running`` and the
    message comes back with dequeue count 6. The host moves it to the poison queue without running
    it; failPoisonedRun marks the run failed with the reason, and the process never runs again."""
    prefix = "poison" + uuid.uuid4().hex[:8]
    env = {"AzureWebJobsStorage": azurite.connection_string, "JUNCTION_TABLE_PREFIX": prefix,
           "JUNCTION_OUTBOUND_ALLOWED_HOSTS": upstream.host}  # fmt: skip
    settings = load_settings(env)
    storage = Storage.from_settings(settings)
    process = {"steps": [{"type": "http", "id": "hit", "method": "GET", "url": f"{upstream.url}/poisoned", "retries": 0}]}
    sid = scenarios.create_scenario(storage, {"name": "crashing", "process": process}, [upstream.host]).id
    run_id = new_run_id()
    runs.insert_run(storage, sid, run_id, {"type": "accept"})
    blob = f"inputs/{run_id}.json"
    storage.container().upload_blob(blob, json.dumps({"scenarioId": sid, "runId": run_id, "input": 1}).encode())
    queue = storage.queue()
    queue.send_message(json.dumps({"v": 1, "scenarioId": sid, "runId": run_id, "messageBlob": blob, "trigger": {}}))
    for attempt in range(1, 6):  # five attempts, each "crashed": received, never deleted or released
        (message,) = queue.receive_messages(max_messages=1, visibility_timeout=30)
        entity = runs.read_run_entity(storage, sid, run_id)
        runs.update_run(storage, entity, Status=runs.RUNNING, StartedAt="2026-01-01T00:00:00.000Z", Attempts=attempt)
        queue.update_message(message.id, message.pop_receipt, visibility_timeout=0)
    assert message.dequeue_count == 5

    with serve_junction(azurite, prefix, tmp_path, extra_env=env) as junction:
        run = junction.wait_for_run(sid, run_id, timeout=60)
        assert run["status"] == "failed", run
        assert run["attempts"] == 5
        assert "poison queue after 5 attempt(s)" in run["error"] and "did not finish" in run["error"]
        assert run["endedAt"]
        assert eventually(lambda: not _queue_texts(junction, "-poison")() and not _queue_texts(junction, "")())
    assert upstream.hits.get("/poisoned", 0) == 0  # the poisoned message was never run
    assert not list(storage.container().list_blobs(name_starts_with=blob))
    log = (tmp_path / "devhost.log").read_text()
    assert "without running it" in log and f"run {run_id} marked failed" in log
    assert "Traceback" not in log


def _cli(junction: Junction, *args: str, token: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **junction.env, "JUNCTION_URL": junction.url}
    if token:
        env["JUNCTION_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def test_the_cli_lists_every_page(junction: Junction) -> None:
    made = {junction.create_scenario(name=f"paged {i}")["id"] for i in range(3)}
    client = HttpClient(junction.url, junction.admin_token)
    listed = [scenario["id"] for scenario in _every_page(client, "/management/scenarios?top=2")]
    assert made <= set(listed) and len(listed) == len(set(listed)) and len(listed) > 2


def test_the_cli_follows_next_links_on_the_host_it_was_given_only(upstream: Upstream) -> None:
    client = HttpClient(upstream.url, "jct_not_for_other_hosts")
    assert _every_page(client, "/paged?page=1") == [1, 2, 3]
    assert upstream.hits["/paged"] == 2  # the link's host (169.254.169.254) was never called


def test_cli_bootstraps_a_token_and_drives_a_scenario(junction: Junction, tmp_path: Path) -> None:
    created = _cli(junction, "token", "create", "--name", "cli admin", "--scope", "admin", "--quiet")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("jct_")

    scenario_file = tmp_path / "scenario.json"
    scenario_file.write_text(json.dumps({**SCENARIO, "process": {"steps": [{"type": "cache", "key": "k", "value": "#trigger.data.body"}]}}))
    made = _cli(junction, "scenario", "create", str(scenario_file), token=token)
    assert made.returncode == 0, made.stderr
    sid = json.loads(made.stdout)["id"]
    assert sid in _cli(junction, "scenario", "list", token=token).stdout
    assert json.loads(_cli(junction, "scenario", "show", sid, token=token).stdout)["id"] == sid

    data = tmp_path / "data.json"
    data.write_text('{"hello": "cli"}')
    triggered = _cli(junction, "trigger", sid, "--data", str(data), token=token)
    assert triggered.returncode == 0, triggered.stderr
    assert junction.wait_for_run(sid, triggered.stdout.strip())["status"] == "succeeded"
    cached = _cli(junction, "cache", "get", sid, "--key", '"k"', token=token)
    assert json.loads(cached.stdout) == {"hello": "cli"}

    refused = _cli(junction, "scenario", "list", token="jct_" + "0" * 75)
    assert refused.returncode == 1 and "401" in refused.stderr


def test_cli_flags_win_over_the_environment(junction: Junction) -> None:
    env = {**os.environ, **junction.env, "JUNCTION_URL": f"http://127.0.0.1:{free_port()}", "JUNCTION_TOKEN": "jct_" + "0" * 75}
    sid = junction.create_scenario(name="flags")["id"]
    command = [sys.executable, "-m", "cli.main", "--url", junction.url, "--token", junction.admin_token, "scenario", "show", sid]
    shown = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == sid
    from_env = subprocess.run(command[:3] + command[7:], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert from_env.returncode == 1  # the environment's dead URL, without the flags


def test_other_methods_on_junctions_own_paths_are_405_with_allow(junction: Junction) -> None:
    with junction.admin() as admin:
        for method, path, allow in [
            ("DELETE", "/management/scenarios", "GET, POST"),
            ("PATCH", "/management/tokens", "GET, POST"),
            ("PUT", "/ExternalData/Accept/1a990d32-1299-4c6e-9ac7-aa1800cde08d", "GET, POST"),
        ]:
            response = admin.request(method, path)
            assert_json_error(response, 405)
            assert response.headers["Allow"] == allow
