"""Importing, reading, binding and deleting APIs against a real Azurite (core.apiops.bindings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.apiops import bindings as apis
from core.apiops.registry import load_bound_operations, read_route_version, route_cache
from core.apiops.routes import RouteCache
from core.app import management
from core.identity import tokens
from core.kernel.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from core.kernel.settings import Settings
from core.scenarios import repository as scenarios
from core.store.storage import Storage
from core.web.exchange import Request

DOCS = Path(__file__).resolve().parents[1] / "support" / "openapi"
FILES = {
    "petstore-swagger2.json": "application/json",
    "petstore-openapi30.yaml": "application/yaml",
    "petstore-openapi31.json": "application/json",
}


def scenario(storage: Storage) -> str:
    return scenarios.create_scenario(storage, {"name": "pets", "process": {"steps": [{"type": "return", "value": "ok"}]}}).id


def load(file: str) -> bytes:
    return (DOCS / file).read_bytes()


def doc(paths: dict[str, Any]) -> bytes:
    return json.dumps({"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "servers": [{"url": "/api"}], "paths": paths}).encode()


def get_op(op_id: str, name: str = "id", kind: str = "integer") -> dict[str, Any]:
    return {
        "get": {
            "operationId": op_id,
            "parameters": [{"name": name, "in": "path", "required": True, "schema": {"type": kind}}],
            "responses": {"200": {"description": "ok"}},
        }
    }


@pytest.mark.parametrize("file", list(FILES))
def test_import_get_delete(storage: Storage, file: str) -> None:
    view, etag, created = apis.import_api(storage, "petstore", load(file), FILES[file])
    assert created and etag
    ops = {o["operationId"]: o for o in view["operations"]}
    assert ops["getPetById"]["method"] == "GET" and ops["getPetById"]["path"] == "/api/pet/{id}"
    assert ops["getPetById"]["binding"] is None
    again, etag2 = apis.get_api(storage, "petstore")
    assert again["operations"] == view["operations"] and etag2 == etag
    assert [a["name"] for a in apis.list_apis(storage)] == ["petstore"]
    apis.delete_api(storage, "petstore")
    with pytest.raises(NotFound):
        apis.get_api(storage, "petstore")


def test_invalid_document_is_400_listing_problems(storage: Storage) -> None:
    with pytest.raises(BadRequest) as caught:
        apis.import_api(storage, "bad", b'{"openapi": "3.0.3", "paths": {}}', "application/json")
    assert "info" in caught.value.message
    with pytest.raises(NotFound):
        apis.get_api(storage, "bad")


def test_string_parameter_beside_literal_is_refused_at_import(storage: Storage) -> None:
    body = doc({"/pet/{name}": get_op("byName", "name", "string"), "/pet/getStatus": {"get": {"operationId": "getStatus", "responses": {"200": {"description": "ok"}}}}})
    with pytest.raises(Conflict) as caught:
        apis.import_api(storage, "pets", body, "application/json")
    assert "byName" in caught.value.message and "getStatus" in caught.value.message


def test_bind_and_reimport_keeps_existing_bindings(storage: Storage, settings: Settings) -> None:
    sid = scenario(storage)
    apis.import_api(storage, "petstore", load("petstore-swagger2.json"), "application/json")
    bound = apis.bind_operation(storage, settings, "petstore", "getPetById", {"scenarioId": sid})
    assert bound["method"] == "GET" and bound["path"] == "/api/pet/{id}"
    assert bound["binding"]["allowedProtocols"] == ["http", "https"]
    apis.bind_operation(storage, settings, "petstore", "deletePet", {"scenarioId": sid, "authentication": {"type": "basic"}})
    # Re-import a document without deletePet: getPetById keeps its binding, deletePet loses its.
    smaller = doc({"/pet/{id}": get_op("getPetById"), "/pet/getStatus": {"get": {"operationId": "getStatus", "responses": {"200": {"description": "ok"}}}}})
    view, _, created = apis.import_api(storage, "petstore", smaller, "application/json")
    assert not created
    ops = {o["operationId"]: o for o in view["operations"]}
    assert set(ops) == {"getPetById", "getStatus"}
    assert ops["getPetById"]["binding"]["scenarioId"] == sid
    with pytest.raises(NotFound):
        apis.unbind_operation(storage, "petstore", "deletePet")
    table = route_cache(storage).get()
    assert len(table) == 1
    assert table.match("GET", "/api/pet/5").operation.operation_id == "getPetById"


def test_binding_body_is_validated(storage: Storage, settings: Settings) -> None:
    sid = scenario(storage)
    apis.import_api(storage, "petstore", load("petstore-openapi30.yaml"), "application/yaml")
    bad_bodies = [
        {"scenarioId": "nope"},
        {"scenarioId": sid, "extra": 1},
        {"scenarioId": sid, "authentication": {"type": "magic"}},
        {"scenarioId": sid, "authentication": {"type": "certificate"}},
        {"scenarioId": sid, "authentication": {"type": "basic", "scopes": ["x"]}},
        {"scenarioId": sid, "authentication": {"type": "oauth2"}},  # Azure AD is not configured here
        {"scenarioId": sid, "allowedProtocols": ["ftp"]},
        {"scenarioId": sid, "cors": {"allowedOrigins": "*", "allowCredentials": True}},
        {"scenarioId": sid, "cors": {"allowedOrigins": "not an origin"}},
        {"scenarioId": "1a990d32-1299-4c6e-9ac7-aa1800cde08d"},  # no such scenario
    ]
    for body in bad_bodies:
        with pytest.raises(BadRequest):
            apis.bind_operation(storage, settings, "petstore", "getPetById", body)
    with pytest.raises(NotFound):
        apis.bind_operation(storage, settings, "petstore", "noSuchOperation", {"scenarioId": sid})
    with pytest.raises(NotFound):
        apis.bind_operation(storage, settings, "nothere", "getPetById", {"scenarioId": sid})


def test_conflicting_binding_across_apis_is_409_naming_both(storage: Storage, settings: Settings) -> None:
    sid = scenario(storage)
    apis.import_api(storage, "first", doc({"/pet/{id}": get_op("byId")}), "application/json")
    apis.import_api(storage, "second", doc({"/pet/{n}": get_op("byNumber", "n", "number"), "/pet/getStatus": {"get": {"operationId": "status", "responses": {"200": {"description": "ok"}}}}}), "application/json")
    apis.bind_operation(storage, settings, "first", "byId", {"scenarioId": sid})
    apis.bind_operation(storage, settings, "second", "status", {"scenarioId": sid})  # a literal beside an integer: fine
    with pytest.raises(Conflict) as caught:
        apis.bind_operation(storage, settings, "second", "byNumber", {"scenarioId": sid})
    assert "first/byId" in caught.value.message and "second/byNumber" in caught.value.message
    # Re-importing "first" with a now-conflicting bound operation is refused too.
    with pytest.raises(Conflict):
        apis.import_api(storage, "first", doc({"/pet/{id}": get_op("byId", "id", "string")}), "application/json")


def test_delete_removes_bindings_and_routes(storage: Storage, settings: Settings) -> None:
    sid = scenario(storage)
    apis.import_api(storage, "petstore", load("petstore-openapi31.json"), "application/json")
    apis.bind_operation(storage, settings, "petstore", "getStatus", {"scenarioId": sid})
    assert len(route_cache(storage).get()) == 1
    apis.delete_api(storage, "petstore")
    assert len(route_cache(storage).get()) == 0
    assert load_bound_operations(storage) == []


def test_another_instance_sees_a_bind_at_once(settings: Settings) -> None:
    mine, theirs = Storage.from_settings(settings), Storage.from_settings(settings)
    sid = scenario(mine)
    cache = RouteCache(lambda: read_route_version(theirs), lambda: load_bound_operations(theirs))
    assert len(cache.get()) == 0
    apis.import_api(mine, "petstore", load("petstore-swagger2.json"), "application/json")
    apis.bind_operation(mine, settings, "petstore", "getStatus", {"scenarioId": sid})
    assert cache.get().match("GET", "/api/pet/getStatus").operation.operation_id == "getStatus"
    loads = cache.loads
    theirs.counter.reset()
    cache.get()
    assert cache.loads == loads and theirs.counter.total == 1  # one point read, no reload


def test_if_match_on_reimport(storage: Storage) -> None:
    _, etag, _ = apis.import_api(storage, "petstore", load("petstore-swagger2.json"), "application/json")
    with pytest.raises(PreconditionFailed):
        apis.import_api(storage, "petstore", load("petstore-swagger2.json"), "application/json", if_match='W/"datetime\'2000-01-01T00%3A00%3A00Z\'"')
    apis.import_api(storage, "petstore", load("petstore-swagger2.json"), "application/json", if_match=etag)


def test_management_handlers_check_admin(storage: Storage, settings: Settings) -> None:
    admin = tokens.create_token(storage, name="admin", scopes=["admin"]).token
    trigger = tokens.create_token(storage, name="trigger", scopes=["trigger"]).token
    sid = scenario(storage)

    def request(method: str, route: dict[str, str], body: bytes = b"", token: str = admin, ctype: str = "application/json") -> Request:
        return Request(method, "http://localhost/management/apis", "/management/apis", {"authorization": f"Bearer {token}", "content-type": ctype}, body=body, route=route, base_url="http://localhost")

    from core.kernel.errors import Forbidden

    with pytest.raises(Forbidden):
        management.apis_item(storage, settings, request("PUT", {"apiName": "petstore"}, load("petstore-openapi30.yaml"), trigger))
    reply = management.apis_item(storage, settings, request("PUT", {"apiName": "petstore"}, load("petstore-openapi30.yaml"), ctype="application/yaml"))
    assert reply.status == 201 and reply.headers["ETag"]
    bind = management.api_operation_item(storage, settings, request("PUT", {"apiName": "petstore", "operationId": "getStatus"}, json.dumps({"scenarioId": sid}).encode()))
    assert bind.status == 200 and bind.body["binding"]["scenarioId"] == sid
    listing = management.apis_collection(storage, settings, request("GET", {}))
    assert listing.body["value"][0]["name"] == "petstore"
    got = management.apis_item(storage, settings, request("GET", {"apiName": "petstore"}))
    assert next(o for o in got.body["operations"] if o["operationId"] == "getStatus")["binding"]["scenarioId"] == sid
    assert management.apis_item(storage, settings, request("DELETE", {"apiName": "petstore"})).status == 204
