"""Runs behave as the README's "Steps", "Runs" and "Sources and schedules" say, over real HTTP.

Each test here is a behaviour users found to differ from the README (issue 14): an Accept run's
early answer, a new schedule's first runs, upstream failures retried by the queue, a cached null.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from core.identity.tokens import create_token
from devhost.azurite import Azurite, free_port
from tests.e2e.conftest import Junction, eventually, serve_junction
from tests.support.upstream import Upstream

CLOSED = f"127.0.0.1:{free_port()}"
"""An allowed host where nothing listens: calls to it are refused connections."""


@pytest.fixture(scope="module")
def app(azurite: Azurite, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Junction]:
    """Junction whose processes may call the local upstream (and a port where nothing listens)."""
    extra = {"JUNCTION_OUTBOUND_ALLOWED_HOSTS": f"{upstream.host},{CLOSED}"}
    with serve_junction(azurite, "documented", tmp_path_factory.mktemp("documented"), extra_env=extra) as server:
        yield server


@pytest.fixture(scope="module")
def token(app: Junction) -> str:
    return create_token(app.storage, name="trigger", scopes=["trigger"]).token


def _scenario(app: Junction, steps: list[dict[str, Any]], **extra: Any) -> str:
    return str(app.create_scenario(process={"steps": steps}, **extra)["id"])


def _accept(app: Junction, token: str, scenario_id: str, body: Any = None) -> str:
    with app.client(token) as client:
        response = client.post(f"/ExternalData/Accept/{scenario_id}", json=body) if body is not None else client.get(f"/ExternalData/Accept/{scenario_id}")
    assert response.status_code == 200, response.text
    return response.headers["X-Run-Id"]


# -- 1. intermediateReturn on a queued run ---------------------------------------------------


def test_an_accept_run_keeps_its_intermediate_value_and_goes_on(app: Junction, token: str) -> None:
    sid = _scenario(app, [
        {"type": "transform", "id": "got", "expression": "data[0].Body"},
        {"type": "intermediateReturn", "value": {"jmespath": "{accepted: steps.got.id}"}},
        {"type": "cache", "key": "after", "value": "#steps.got"},
        {"type": "return", "value": "finished"},
    ])  # fmt: skip
    run = app.wait_for_run(sid, _accept(app, token, sid, {"id": 7}))
    assert run["status"] == "succeeded" and run["output"] == "finished"
    assert run["intermediate"] == {"accepted": 7}
    with app.client(token) as client:
        assert client.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": '"after"'}).json() == {"id": 7}


def test_a_failed_accept_run_keeps_the_intermediate_value_it_reached(app: Junction, token: str) -> None:
    sid = _scenario(app, [
        {"type": "intermediateReturn", "value": "on my way"},
        {"type": "throw", "message": "then refused"},
    ])  # fmt: skip
    run = app.wait_for_run(sid, _accept(app, token, sid, {}))
    assert run["status"] == "failed" and run["error"] == "then refused"
    assert run["intermediate"] == "on my way"


# -- 5. a cached null ------------------------------------------------------------------------


def test_a_cached_null_is_served_as_json_null(app: Junction, token: str) -> None:
    sid = _scenario(app, [{"type": "cache", "key": "nothing", "value": None}, {"type": "cache", "key": "no", "value": False}])
    run = app.wait_for_run(sid, _accept(app, token, sid, {}))
    assert run["status"] == "succeeded", run
    with app.client(token) as client:
        for key, text in (('"nothing"', b"null"), ('"no"', b"false")):
            response = client.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": key})
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/json")
            assert response.content == text
        assert client.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": '"absent"'}).status_code == 404


# -- 3. upstream failures --------------------------------------------------------------------


def test_an_upstream_5xx_is_retried_by_the_queue_until_the_last_attempt(app: Junction, token: str, upstream: Upstream) -> None:
    sid = _scenario(app, [{"type": "http", "id": "call", "url": f"{upstream.url}/error", "retries": 0}])
    run = app.wait_for_run(sid, _accept(app, token, sid), timeout=90)
    assert run["status"] == "failed" and run["attempts"] == 5, run
    assert run["failedStep"] == "call" and run["error"].startswith("attempt 5: step call:") and "500" in run["error"]
    assert upstream.hits["/error"] == 5  # one call per attempt (retries: 0), five attempts
    assert [s["status"] for s in run["steps"]] == ["failed"]


def test_an_upstream_that_recovers_lets_the_retried_run_succeed(app: Junction, token: str, upstream: Upstream) -> None:
    sid = _scenario(app, [
        {"type": "http", "id": "call", "url": f"{upstream.url}/flaky", "retries": 0},  # 503, 503, then 200
        {"type": "return", "value": "#steps.call.status"},
    ])  # fmt: skip
    run = app.wait_for_run(sid, _accept(app, token, sid), timeout=60)
    assert run["status"] == "succeeded" and run["output"] == 200 and run["attempts"] == 3, run
    assert run["error"] is None


def test_an_upstream_4xx_fails_the_run_at_once(app: Junction, token: str, upstream: Upstream) -> None:
    before = upstream.hits.get("/missing", 0)
    sid = _scenario(app, [{"type": "http", "id": "call", "url": f"{upstream.url}/missing", "retries": 3}])
    run = app.wait_for_run(sid, _accept(app, token, sid))
    assert run["status"] == "failed" and run["attempts"] == 1 and run["failedStep"] == "call"
    assert "404" in run["error"]
    assert upstream.hits["/missing"] == before + 1  # a 4xx is not retried, in the step or by the queue


def test_a_final_429_is_retried_by_the_queue_until_the_last_attempt(app: Junction, token: str, upstream: Upstream) -> None:
    """README "Runs": a 429 that outlasts the step's own retries is transient, as a 5xx is."""
    sid = _scenario(app, [{"type": "http", "id": "call", "url": f"{upstream.url}/throttled-always", "retries": 0}])
    run = app.wait_for_run(sid, _accept(app, token, sid), timeout=90)
    assert run["status"] == "failed" and run["attempts"] == 5, run
    assert run["failedStep"] == "call" and "429" in run["error"]
    assert upstream.hits["/throttled-always"] == 5


def test_an_upstream_that_refuses_connections_is_retried_by_the_queue(app: Junction, token: str) -> None:
    """A connection error (nothing listens on the port) is transient: every attempt is made and
    visible, and the run ends failed after the last, never left running."""
    sid = _scenario(app, [{"type": "http", "id": "call", "url": f"http://{CLOSED}/orders", "retries": 0}])
    run = app.wait_for_run(sid, _accept(app, token, sid), timeout=90)
    assert run["status"] == "failed" and run["attempts"] == 5, run
    assert run["failedStep"] == "call" and run["error"].startswith("attempt 5: step call:")


def test_a_lone_surrogate_in_an_upstream_answer_fails_the_run_once(app: Junction, token: str, upstream: Upstream) -> None:
    """Issue 13.7: an upstream answer with ``"\\ud800"`` made one Accept call the upstream five
    times and left the run ``running`` with no error. It is a final failure of that step."""
    sid = _scenario(app, [{"type": "http", "id": "call", "url": f"{upstream.url}/surrogate", "retries": 2}, {"type": "return", "value": "#steps.call.body"}])
    run = app.wait_for_run(sid, _accept(app, token, sid), timeout=60)
    assert run["status"] == "failed" and run["attempts"] == 1, run
    assert run["failedStep"] == "call" and run["error"]
    assert upstream.hits["/surrogate"] == 1


def test_a_process_reading_a_field_of_not_is_refused_over_http(app: Junction) -> None:
    """Issue 14.4: ``!steps.order.id`` is ``(!steps).order.id``, always null; saving it is a 400
    naming the fix, and nothing is stored."""
    process = {"steps": [{"type": "decision", "if": "!steps.order.id", "then": [{"type": "return", "value": 1}], "else": [{"type": "return", "value": 2}]}]}
    name = f"not-a-field-{uuid.uuid4().hex[:8]}"
    with app.admin() as admin:
        refused = admin.post("/management/scenarios", json={"name": name, "process": process})
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["code"] and "!(steps.order.id)" in error["message"], error
        names, url = [], "/management/scenarios"
        while url:
            page = admin.get(url).json()
            names += [s["name"] for s in page["value"]]
            url = page["nextLink"]
        assert names and name not in names


# -- 2. schedules ----------------------------------------------------------------------------


def test_a_new_schedule_starts_with_its_first_due_time_after_it_was_set(app: Junction) -> None:
    """Saving a schedule sends its first due time at once (the re-seed timer would take up to 10
    minutes), and it is the first after the schedule was saved: never the due times of the
    2 minutes before it (the old timer started 24 of them for every 5 s)."""
    created = app.create_scenario(schedule="*/5 * * * * *", process={"steps": [{"type": "return", "value": "#trigger.dueAt"}]})
    sid = created["id"]
    try:
        assert eventually(lambda: app.run_count(sid) > 0, timeout=40)
    finally:
        with app.admin() as admin:  # stop it: the rest of the session shares this devhost
            assert admin.patch(f"/management/scenarios/{sid}", json={"schedule": None}).status_code == 200
    with app.admin() as admin:
        listed = admin.get(f"/management/scenarios/{sid}/runs", params={"top": 100}).json()["value"]
    due = sorted(run["trigger"]["dueAt"] for run in listed)
    assert due and all(moment > created["createdAt"] for moment in due), (created["createdAt"], due)
