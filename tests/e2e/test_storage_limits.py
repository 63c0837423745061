"""Storage as Azure stores it, over HTTP through devhost: values that add up past an entity,
errors of hundreds of KB, documents near 1 MiB, long caller text, and results that cannot be
stored at all.

Azurite would store some of these where Azure refuses them, so this devhost's tables sit behind
``TableProxy(azure_limits=True)``: a write is refused as Azure refuses it (400 EntityTooLarge,
PropertyValueTooLarge), measured on the entity as it would be stored after a merge. Each case
ends as docs/reliability.md says: stored whole, or refused with a clear 4xx; a run ends
``succeeded`` or ``failed`` after one attempt and never stays ``running``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.data.tables import TableClient

from devhost.azurite import Azurite
from tests.e2e.conftest import Junction, assert_json_error, serve_junction
from tests.support.azure_limits import entity_violations
from tests.support.table_proxy import TableProxy
from tests.support.upstream import Upstream

PREFIX = "lim"
KB = 1000


@pytest.fixture(scope="module")
def proxy(azurite: Azurite) -> Iterator[TableProxy]:
    with TableProxy(azurite.ports, azure_limits=True) as running:
        yield running


@pytest.fixture(scope="module")
def strict(azurite: Azurite, proxy: TableProxy, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Junction]:
    extra = {"JUNCTION_MAX_BODY_BYTES": str(4 * 1024 * 1024), "JUNCTION_OUTBOUND_ALLOWED_HOSTS": upstream.host}
    log_dir = tmp_path_factory.mktemp("devhost-limits")
    with serve_junction(
        azurite, PREFIX, log_dir, extra_env=extra, args=["--message-lease", "3"], connection_string=proxy.connection_string
    ) as server:
        yield server


@pytest.fixture(autouse=True)
def no_rule_left(proxy: TableProxy) -> Iterator[None]:
    yield
    proxy.refuse_if = None


def _scenario(strict: Junction, steps: list[dict[str, Any]]) -> str:
    return str(strict.create_scenario(process={"steps": steps}, externalTriggers={"enabled": True, "allowAnonymous": True})["id"])


def _accept(strict: Junction, sid: str, body: bytes, content_type: str = "application/json") -> str:
    with strict.client() as client:
        response = client.post(f"/ExternalData/Accept/{sid}", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    return response.headers["X-Run-Id"]


def _stored_run(proxy: TableProxy, sid: str, run_id: str) -> dict[str, Any]:
    """The run entity as Azurite holds it (read past the proxy)."""
    client = TableClient.from_connection_string(proxy.direct_connection_string, f"{PREFIX}runs")
    return dict(client.get_entity(sid, run_id))


def _ended_once(strict: Junction, proxy: TableProxy, sid: str, run_id: str, status: str) -> dict[str, Any]:
    run = strict.wait_for_run(sid, run_id, timeout=40)
    assert (run["status"], run["attempts"]) == (status, 1), {k: str(v)[:300] for k, v in run.items()}
    assert entity_violations(_stored_run(proxy, sid, run_id)) == []
    return run


# -- API operations of the tests --------------------------------------------------------------

def _document(operations: dict[str, str], big_schema_chars: int = 0) -> dict[str, Any]:
    """An OpenAPI 3.0 document with POST /lim/<name> for each name; ``big_schema_chars`` makes a
    schema (referenced by the first operation's body) that large, so both the document and the
    extracted operation are."""
    schema: dict[str, Any] = {"type": "object"}
    if big_schema_chars:
        schema["description"] = "d" * big_schema_chars
    paths = {
        f"/{name}": {
            "post": {
                "operationId": name,
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Body"} if i == 0 else {}}}},
                "responses": {"200": {"description": "ok"}},
            }
        }
        for i, name in enumerate(operations)
    }
    return {"openapi": "3.0.3", "info": {"title": "limits", "version": "1"}, "servers": [{"url": "/lim"}], "paths": paths, "components": {"schemas": {"Body": schema}}}


@pytest.fixture(scope="module")
def operations(strict: Junction, upstream: Upstream) -> dict[str, str]:
    """Operations bound to scenarios: name -> scenario id."""
    processes = {
        "early": [{"type": "intermediateReturn", "value": "#trigger.data.body"}, {"type": "return", "value": "#trigger.data.body"}],
        "throw": [{"type": "throw", "message": "#trigger.data.body.why"}],
        "circle": [{"type": "http", "id": "call", "url": f"{upstream.url}/circle-api"}, {"type": "transform", "id": "all", "expression": "@"}],
        "surrogate": [{"type": "return", "value": {"jmespath": '`"\\ud800"`'}}],
        "refused": [{"type": "http", "id": "call", "url": f"{upstream.url}/refused-api"}, {"type": "return", "value": "done"}],
    }
    with strict.admin() as admin:
        response = admin.put("/management/apis/limits", json=_document({name: "" for name in processes}))
        assert response.status_code in (200, 201), response.text
        bound = {}
        for name, steps in processes.items():
            sid = _scenario(strict, steps)
            response = admin.put(f"/management/apis/limits/operations/{name}", json={"scenarioId": sid})
            assert response.status_code == 200, response.text
            bound[name] = sid
    return bound


def _call(strict: Junction, name: str, body: Any) -> httpx.Response:
    with strict.client() as client:
        return client.post(f"/lim/{name}", content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


# -- 1. values that add up past an entity ------------------------------------------------------

def test_an_early_answer_and_a_large_output_of_an_api_call_are_both_kept(strict: Junction, proxy: TableProxy, operations: dict[str, str]) -> None:
    body = {"text": "x" * (600 * KB)}
    response = _call(strict, "early", body)
    assert response.status_code == 200 and response.json() == body
    run = _ended_once(strict, proxy, operations["early"], response.headers["X-Run-Id"], "succeeded")
    assert run["intermediate"] == body and run["output"] == body


def test_an_early_answer_and_a_large_output_of_an_accepted_run_are_both_kept(strict: Junction, proxy: TableProxy) -> None:
    sid = _scenario(strict, [{"type": "intermediateReturn", "value": "#trigger.data.body"}, {"type": "return", "value": "#trigger.data.body"}])
    body = {"text": "é" * (350 * KB)}  # 700 KB of UTF-8, each value 700 KB by Azure's count
    run = _ended_once(strict, proxy, sid, _accept(strict, sid, json.dumps(body, ensure_ascii=False).encode()), "succeeded")
    assert run["intermediate"] == body and run["output"] == body


# -- 2. errors of hundreds of KB ---------------------------------------------------------------

@pytest.mark.parametrize("size", [450 * KB, 700 * KB])
def test_a_large_error_fails_an_accepted_run_once_and_is_kept_whole(strict: Junction, proxy: TableProxy, size: int) -> None:
    sid = _scenario(strict, [{"type": "throw", "id": "loud", "message": "#trigger.data.body.why"}])
    why = "refused: " + "e" * size
    run = _ended_once(strict, proxy, sid, _accept(strict, sid, json.dumps({"why": why}).encode()), "failed")
    assert run["error"] == why
    step = run["steps"][0]
    assert step["status"] == "failed" and step["errorRef"] == "#/error" and step["errorChars"] == len(why)
    assert len(step["error"]) <= 1001 and why.startswith(step["error"][:-1])


def test_a_large_error_of_an_api_call_is_a_clear_500_and_a_failed_run(strict: Junction, proxy: TableProxy, operations: dict[str, str]) -> None:
    why = "refused: " + "e" * (600 * KB)
    response = _call(strict, "throw", {"why": why})
    assert_json_error(response, 500, "ProcessFailed")
    run = _ended_once(strict, proxy, operations["throw"], response.headers["X-Run-Id"], "failed")
    assert run["error"] == why


# -- 3. documents near 1 MiB -------------------------------------------------------------------

@pytest.mark.parametrize("chars", [600 * KB, 1000 * KB])
def test_an_openapi_document_near_1_mib_is_imported_bound_and_served(strict: Junction, proxy: TableProxy, chars: int) -> None:
    name = f"near{chars // KB}"
    document = _document({"big": ""}, big_schema_chars=chars)
    document["servers"] = [{"url": f"/{name}"}]
    sid = _scenario(strict, [{"type": "return", "value": "#trigger.data.body"}])
    with strict.admin() as admin:
        imported = admin.put(f"/management/apis/{name}", json=document)
        assert imported.status_code == 201, imported.text
        bound = admin.put(f"/management/apis/{name}/operations/big", json={"scenarioId": sid})
        assert bound.status_code == 200, bound.text
        assert admin.get(f"/management/apis/{name}").json()["operations"][0]["binding"]["scenarioId"] == sid
    with strict.client() as client:
        assert client.post(f"/{name}/big", json={"a": 1}).json() == {"a": 1}
    for table in ("apis", "apibindings"):
        for entity in TableClient.from_connection_string(proxy.direct_connection_string, f"{PREFIX}{table}").list_entities():
            assert entity_violations(entity) == [], (table, entity["RowKey"])


def test_what_cannot_be_stored_at_all_is_a_clear_413(strict: Junction) -> None:
    with strict.admin() as admin:
        response = admin.put("/management/apis/huge", json=_document({"big": ""}, big_schema_chars=5 * 1024 * 1024))
    assert_json_error(response, 413)


# -- 4. caller text kept in a run --------------------------------------------------------------

@pytest.mark.parametrize("chars", [32_500, 40_000])
def test_a_long_content_type_is_bounded_in_the_run_record(strict: Junction, proxy: TableProxy, chars: int) -> None:
    sid = _scenario(strict, [{"type": "return", "value": "#trigger.data.body"}])
    content_type = "application/json; x=" + "a" * chars
    run = _ended_once(strict, proxy, sid, _accept(strict, sid, b'{"ok": true}', content_type), "succeeded")
    assert run["output"] == {"ok": True}
    kept = run["trigger"]["contentType"]
    assert kept.startswith("application/json; x=aaa") and len(kept) <= 1001


# -- results that cannot be stored (issue 13, points 6 and 7) ----------------------------------

def test_a_circular_output_fails_an_accepted_run_without_running_it_again(strict: Junction, proxy: TableProxy, upstream: Upstream) -> None:
    sid = _scenario(strict, [{"type": "http", "id": "call", "url": f"{upstream.url}/circle-accept"}, {"type": "transform", "id": "all", "expression": "@"}])
    run = _ended_once(strict, proxy, sid, _accept(strict, sid, b'{"a": 1}'), "failed")
    assert "circular" in run["error"]
    assert upstream.hits["/circle-accept"] == 1


def test_a_circular_output_of_an_api_call_fails_its_run(strict: Junction, proxy: TableProxy, upstream: Upstream, operations: dict[str, str]) -> None:
    response = _call(strict, "circle", {"a": 1})
    assert_json_error(response, 500)
    run = _ended_once(strict, proxy, operations["circle"], response.headers["X-Run-Id"], "failed")
    assert "circular" in run["error"]
    assert upstream.hits["/circle-api"] == 1


def test_a_lone_surrogate_in_an_output_is_stored_and_read_back(strict: Junction, proxy: TableProxy, operations: dict[str, str]) -> None:
    sid = _scenario(strict, [{"type": "return", "value": {"jmespath": '`"\\ud800"`'}}])
    assert _ended_once(strict, proxy, sid, _accept(strict, sid, b"{}"), "succeeded")["output"] == "\ud800"
    # How the caller is answered is the gateway's business; the run must have ended, once.
    response = _call(strict, "surrogate", {})
    assert "Traceback" not in response.text
    with strict.admin() as admin:
        (listed,) = admin.get(f"/management/scenarios/{operations['surrogate']}/runs").json()["value"]
    run = strict.wait_for_run(operations["surrogate"], listed["id"], timeout=40)
    assert run["status"] in ("succeeded", "failed") and run["attempts"] == 1


def _refuse_final_record(method: str, table: str, entity: dict[str, Any]) -> str | None:
    final = entity.get("Status") == "succeeded"
    return "InvalidInput" if table.endswith("runs") and method in ("PATCH", "MERGE") and final else None


def test_a_final_record_storage_refuses_fails_an_accepted_run_once(strict: Junction, proxy: TableProxy, upstream: Upstream) -> None:
    sid = _scenario(strict, [{"type": "http", "id": "call", "url": f"{upstream.url}/refused-accept"}, {"type": "return", "value": "done"}])
    proxy.refuse_if = _refuse_final_record
    run = _ended_once(strict, proxy, sid, _accept(strict, sid, b"{}"), "failed")
    assert "storage refused the record (400" in run["error"]
    assert upstream.hits["/refused-accept"] == 1


def test_a_final_record_storage_refuses_never_leaves_an_api_run_running(strict: Junction, proxy: TableProxy, upstream: Upstream, operations: dict[str, str]) -> None:
    proxy.refuse_if = _refuse_final_record
    response = _call(strict, "refused", {})
    assert_json_error(response, 500, "ProcessFailed")
    run = _ended_once(strict, proxy, operations["refused"], response.headers["X-Run-Id"], "failed")
    assert "storage refused the record" in run["error"]
    assert upstream.hits["/refused-api"] == 1
