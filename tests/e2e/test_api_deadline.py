"""API operations wait for their process under one deadline, below the front end's 230 s cut
(issue 21 A4): with ``JUNCTION_API_DEADLINE_SECONDS=1`` a slow, trickling or throttling upstream
gives the caller a 504 JSON error, and the run record says the deadline passed and where."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devhost.azurite import Azurite
from tests.e2e.conftest import Junction, assert_json_error, serve_junction
from tests.support.upstream import Upstream

DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "deadline", "version": "1"},
    "paths": {"/deadline/{case}": {"get": {
        "operationId": "waits",
        "parameters": [{"name": "case", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "ok"}},
    }}},
}  # fmt: skip


@pytest.fixture(scope="module")
def gateway(azurite: Azurite, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Junction]:
    extra = {"JUNCTION_OUTBOUND_ALLOWED_HOSTS": upstream.host, "JUNCTION_API_DEADLINE_SECONDS": "1"}
    with serve_junction(azurite, "e2edeadline", tmp_path_factory.mktemp("devhost-deadline"), extra_env=extra) as server:
        yield server


@pytest.fixture(scope="module")
def bound(gateway: Junction, upstream: Upstream) -> dict[str, Any]:
    process = {
        "steps": [
            {"type": "http", "id": "upstream", "method": "GET", "url": {"jmespath": f"join('', ['{upstream.url}/', trigger.data.path.case])"}, "retries": 1, "timeout": 30},
            {"type": "return", "value": {"jmespath": "steps.upstream.body"}},
        ]
    }  # fmt: skip
    scenario = gateway.create_scenario(process=process)
    with gateway.admin() as admin:
        assert admin.put("/management/apis/deadline", json=DOCUMENT).status_code in (200, 201)
        bind = {"scenarioId": scenario["id"], "authentication": {"type": "none"}}
        assert admin.put("/management/apis/deadline/operations/waits", json=bind).status_code == 200
    return scenario


def test_a_quick_upstream_answers_within_the_deadline(gateway: Junction, bound: dict[str, Any]) -> None:
    with gateway.client() as client:
        response = client.get("/deadline/orders")
    assert response.status_code == 200, response.text
    assert response.json()["path"] == "/orders"


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("slow", "an upstream that answers after 3 s"),
        ("trickle", "an upstream whose every read is quick but whose answer takes 4 s"),
        ("throttled-long", "an upstream that asks to retry after an hour"),
    ],
)
def test_an_api_call_past_its_deadline_is_a_504_and_the_run_says_why(
    gateway: Junction, bound: dict[str, Any], upstream: Upstream, case: str, why: str
) -> None:
    before = upstream.hits.get(f"/{case}", 0)
    with gateway.client() as client:
        response = client.get(f"/deadline/{case}")
    error = assert_json_error(response, 504, "ProcessTimedOut")
    run_id = response.headers["X-Run-Id"]
    assert "deadline of 1 s" in error["message"] and run_id in error["message"], why
    run = gateway.wait_for_run(bound["id"], run_id, timeout=5)
    assert run["status"] == "failed" and run["failedStep"] == "upstream", run
    assert "JUNCTION_API_DEADLINE_SECONDS" in run["error"] and "504" in run["error"]
    assert run["steps"][0]["status"] == "failed"
    assert upstream.hits.get(f"/{case}", 0) == before + 1  # no retry was sent after the deadline
