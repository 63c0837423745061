"""API-bound operations over real HTTP through devhost: import, bind, call with every
authentication type, CORS, parameters, response mapping and the early answer."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.aad_login import acquire_token
from devhost.azurite import Azurite
from tests.e2e.conftest import ROOT, Junction, aad_env, assert_json_error, eventually, serve_junction
from tests.support.idp import AUDIENCE, LocalIdentityProvider
from tests.support.pki import Authority, header_value
from tests.support.upstream import Upstream

DOCS = ROOT / "tests" / "support" / "openapi"
HTTPS = {"X-Forwarded-Proto": "https"}


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentityProvider]:
    with LocalIdentityProvider(tmp_path_factory.mktemp("idp-api")) as provider:
        yield provider


@pytest.fixture(scope="module")
def gateway(azurite: Azurite, idp: LocalIdentityProvider, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Junction]:
    # Certificates arrive in X-ARR-ClientCert as App Service forwards them when the deployment
    # turns them on (JUNCTION_CLIENT_CERT_ENABLED); devhost passes them (and X-Forwarded-Proto)
    # through only with this flag.
    extra = aad_env(idp, JUNCTION_OUTBOUND_ALLOWED_HOSTS=upstream.host, JUNCTION_CLIENT_CERT_ENABLED="true")
    args = ["--trust-forwarded-client-cert"]
    with serve_junction(azurite, "e2eapi", tmp_path_factory.mktemp("devhost-api"), extra_env=extra, args=args) as server:
        yield server


def _import(gateway: Junction, name: str, file: str) -> httpx.Response:
    content_type = "application/yaml" if file.endswith(".yaml") else "application/json"
    with gateway.admin() as admin:
        return admin.put(f"/management/apis/{name}", content=(DOCS / file).read_bytes(), headers={"Content-Type": content_type})


def _bind(gateway: Junction, api: str, operation: str, scenario_id: str, **binding: Any) -> httpx.Response:
    with gateway.admin() as admin:
        return admin.put(f"/management/apis/{api}/operations/{operation}", json={"scenarioId": scenario_id, **binding})


ECHO = {"steps": [{"type": "return", "value": {"jmespath": "trigger.data"}}]}


@pytest.fixture(scope="module")
def petstore(gateway: Junction) -> dict[str, Any]:
    """The OpenAPI 3.0 petstore, its operations bound to an echo scenario with no authentication."""
    assert _import(gateway, "petstore", "petstore-openapi30.yaml").status_code in (200, 201)
    scenario = gateway.create_scenario(process=ECHO)
    for operation in ("getPetById", "getStatus", "searchPets", "addPet"):
        response = _bind(gateway, "petstore", operation, scenario["id"], authentication={"type": "none"})
        assert response.status_code == 200, response.text
    return scenario


@pytest.mark.parametrize("file", ["petstore-swagger2.json", "petstore-openapi31.json"])
def test_swagger2_and_openapi31_documents_import_and_serve(gateway: Junction, file: str) -> None:
    """All three petstores serve /api/pet/{id}: each is bound, called, then deleted in turn."""
    name = file.split(".")[0]
    imported = _import(gateway, name, file)
    assert imported.status_code in (200, 201), imported.text
    operations = {op["operationId"]: op for op in imported.json()["operations"]}
    assert operations["getPetById"]["path"] == "/api/pet/{id}" and operations["getPetById"]["method"] == "GET"
    scenario = gateway.create_scenario(process=ECHO)
    assert _bind(gateway, name, "getPetById", scenario["id"], authentication={"type": "none"}).status_code == 200
    with gateway.client() as client:
        response = client.get("/api/pet/7")
    with gateway.admin() as admin:
        assert admin.delete(f"/management/apis/{name}").status_code == 204
    assert response.status_code == 200, response.text
    assert response.json()["path"] == {"id": 7}


def test_integer_parameter_beside_a_literal(gateway: Junction, petstore: dict[str, Any]) -> None:
    with gateway.client() as client:
        by_id = client.get("/api/pet/42")
        status = client.get("/api/pet/getStatus")
        not_integer = client.get("/api/pet/fido")
    assert by_id.status_code == 200 and by_id.json()["path"] == {"id": 42}
    assert by_id.json()["httpMethod"] == "GET" and by_id.json()["httpRequestUri"].endswith("/api/pet/42")
    assert status.status_code == 200 and status.json()["path"] == {}
    assert_json_error(not_integer, 404)
    assert by_id.headers["X-Run-Id"]


def test_label_paths_and_deep_object_queries_over_http(gateway: Junction) -> None:
    color = {"type": "object", "properties": {"R": {"type": "integer"}, "G": {"type": "integer"}}, "additionalProperties": False}
    document = {
        "openapi": "3.0.3",
        "info": {"title": "styles", "version": "1"},
        "paths": {"/styles/{id}": {"get": {"operationId": "styled", "parameters": [
            {"name": "id", "in": "path", "required": True, "style": "label", "schema": {"type": "integer"}},
            {"name": "color", "in": "query", "style": "deepObject", "explode": True, "schema": color},
        ], "responses": {"200": {"description": "ok"}}}}},
    }  # fmt: skip
    scenario = gateway.create_scenario(process=ECHO)
    with gateway.admin() as admin:
        assert admin.put("/management/apis/styles", json=document).status_code in (200, 201)
    assert _bind(gateway, "styles", "styled", scenario["id"], authentication={"type": "none"}).status_code == 200
    runs_before = gateway.run_count(scenario["id"])
    with gateway.client() as client:
        good = client.get("/styles/.5?color%5BR%5D=10&color[G]=20")
        extra = client.get("/styles/.5?color[B]=1")
        unlabelled = client.get("/styles/5")
    with gateway.admin() as admin:
        assert admin.delete("/management/apis/styles").status_code == 204
    assert good.status_code == 200, good.text
    assert good.json()["path"] == {"id": 5} and good.json()["query"] == {"color": {"R": 10, "G": 20}}
    assert_json_error(extra, 400)
    assert_json_error(unlabelled, 400)
    assert gateway.run_count(scenario["id"]) == runs_before + 1  # refused calls start no run


def test_swagger2_form_data_is_cast_over_http(gateway: Junction) -> None:
    document = {
        "swagger": "2.0",
        "info": {"title": "forms", "version": "1"},
        "paths": {"/forms/orders": {"post": {"operationId": "order", "consumes": ["application/x-www-form-urlencoded"], "parameters": [
            {"name": "qty", "in": "formData", "required": True, "type": "integer"},
            {"name": "tags", "in": "formData", "type": "array", "items": {"type": "string"}, "collectionFormat": "csv"},
        ], "responses": {"200": {"description": "ok"}}}}},
    }  # fmt: skip
    scenario = gateway.create_scenario(process={"steps": [{"type": "return", "value": {"jmespath": "trigger.data.body"}}]})
    with gateway.admin() as admin:
        assert admin.put("/management/apis/forms", json=document).status_code in (200, 201)
    assert _bind(gateway, "forms", "order", scenario["id"], authentication={"type": "none"}).status_code == 200
    runs_before = gateway.run_count(scenario["id"])
    with gateway.client() as client:
        good = client.post("/forms/orders", data={"qty": "3", "tags": "a,b"})
        not_a_number = client.post("/forms/orders", data={"qty": "three"})
        empty = client.post("/forms/orders")
    with gateway.admin() as admin:
        assert admin.delete("/management/apis/forms").status_code == 204
    assert good.status_code == 200, good.text
    assert good.json() == {"qty": 3, "tags": ["a", "b"]}
    assert "'qty'" in assert_json_error(not_a_number, 400)["message"]
    assert "'qty'" in assert_json_error(empty, 400)["message"]
    assert gateway.run_count(scenario["id"]) == runs_before + 1


def test_a_string_parameter_beside_a_literal_is_refused_at_import(gateway: Junction) -> None:
    document = {
        "openapi": "3.0.3",
        "info": {"title": "clash", "version": "1"},
        "paths": {
            "/clash/{name}": {"get": {"operationId": "byName", "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}], "responses": {"200": {"description": "ok"}}}},
            "/clash/getStatus": {"get": {"operationId": "status", "responses": {"200": {"description": "ok"}}}},
        },
    }
    with gateway.admin() as admin:
        response = admin.put("/management/apis/clash", json=document)
    error = assert_json_error(response, 409)
    assert "byName" in error["message"] and "status" in error["message"]


def test_an_invalid_document_is_400_listing_problems(gateway: Junction) -> None:
    with gateway.admin() as admin:
        response = admin.put("/management/apis/broken", json={"openapi": "3.0.3", "info": {"title": "x"}, "paths": {"/a": {"get": {"responses": "nope"}}}})
    assert_json_error(response, 400)


def test_parameters_are_cast_with_defaults_and_nulls(gateway: Junction, petstore: dict[str, Any]) -> None:
    with gateway.client() as client:
        response = client.get(
            "/api/pet/search?ids=1,2,3&names=a%20b&flags=true|false&tags=x&tags=y&ratio=0.5&status=sold",
            headers={"X-Trace": "7", "X-Ids": "4,5", "X-Request-Id": "r1", "Cookie": "session=s1"},
        )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["query"] == {
        "ids": [1, 2, 3], "names": ["a", "b"], "flags": [True, False], "tags": ["x", "y"],
        "limit": 20, "ratio": 0.5, "active": True, "status": "sold",
    }  # fmt: skip
    assert data["header"]["X-Trace"] == 7 and data["header"]["X-Ids"] == [4, 5]
    assert data["httpCookies"] == {"session": "s1"}


def test_missing_required_parameters_and_bad_values_are_400(gateway: Junction, petstore: dict[str, Any]) -> None:
    with gateway.client() as client:
        missing = client.get("/api/pet/search")
        bad = client.get("/api/pet/search?limit=lots", headers={"X-Request-Id": "r"})
    assert "X-Request-Id" in assert_json_error(missing, 400)["message"]
    assert "limit" in assert_json_error(bad, 400)["message"]


def test_a_body_that_fails_the_schema_is_400_naming_the_path(gateway: Junction, petstore: dict[str, Any]) -> None:
    with gateway.client() as client:
        ok = client.post("/api/pet", json={"name": "Rex", "photoUrls": []})
        bad = client.post("/api/pet", json={"name": "", "photoUrls": []})
    assert ok.status_code == 200 and ok.json()["body"] == {"name": "Rex", "photoUrls": []}
    assert "name" in assert_json_error(bad, 400)["message"]


def test_unknown_paths_are_404_and_other_methods_405(gateway: Junction, petstore: dict[str, Any]) -> None:
    with gateway.client() as client:
        assert_json_error(client.get("/api/nothing/here"), 404)
        wrong = client.put("/api/pet/getStatus")
        runs_before = gateway.run_count(petstore["id"])
        head = client.head("/api/pet/42")  # HEAD is not derived from GET: it would start a run
    assert_json_error(wrong, 405)
    assert "GET" in wrong.headers["Allow"]
    assert head.status_code == 405 and "GET" in head.headers["Allow"]
    assert gateway.run_count(petstore["id"]) == runs_before


def test_accept_xml_and_status_and_header_mapping(gateway: Junction) -> None:
    assert _import(gateway, "mapping", "petstore-openapi30.yaml").status_code in (200, 201)
    with gateway.admin() as admin:
        admin.delete("/management/apis/petstore")  # free the same paths for this API
    scenario = gateway.create_scenario(process={"steps": [{"type": "decision", "if": "trigger.data.path.id == `1`", "then": [
        {"type": "return", "value": {"pet": {"id": 1, "name": "Rex"}}},
    ], "else": [
        {"type": "return", "value": {"HttpStatusCode": 418, "Content": "<teapot/>", "ContentType": "application/xml",
                                     "HttpHeaders": [{"Key": "X-Pet", "Value": "none"}]}},
    ]}]})  # fmt: skip
    assert _bind(gateway, "mapping", "getPetById", scenario["id"], authentication={"type": "none"}).status_code == 200
    with gateway.client() as client:
        as_json = client.get("/api/pet/1")
        as_xml = client.get("/api/pet/1", headers={"Accept": "application/xml"})
        mapped = client.get("/api/pet/2")
    assert as_json.json() == {"pet": {"id": 1, "name": "Rex"}}
    assert as_xml.headers["content-type"].startswith("application/xml")
    assert b"<pet>" in as_xml.content and b"<name>Rex</name>" in as_xml.content
    assert mapped.status_code == 418 and mapped.content == b"<teapot/>"
    assert mapped.headers["content-type"].startswith("application/xml") and mapped.headers["X-Pet"] == "none"
    with gateway.admin() as admin:
        admin.delete("/management/apis/mapping")


@pytest.fixture(scope="module")
def secured(gateway: Junction) -> dict[str, str]:
    """One API, one operation per authentication type, each echoing who called."""
    document = {
        "openapi": "3.0.3",
        "info": {"title": "secured", "version": "1"},
        "servers": [{"url": "/secure"}],
        "paths": {
            f"/{kind}": {"get": {"operationId": kind, "responses": {"200": {"description": "ok"}}}}
            for kind in ("basic", "certificate", "apikey", "oauth2", "cors", "early", "refused")
        },
    }
    with gateway.admin() as admin:
        assert admin.put("/management/apis/secured", json=document).status_code in (200, 201)
    scenario = gateway.create_scenario(process={"steps": [{"type": "return", "value": {"jmespath": "{user: trigger.data.username, roles: trigger.claims.roles}"}}]})
    return {"scenario": scenario["id"]}


def test_basic_authentication(gateway: Junction, secured: dict[str, str]) -> None:
    assert _bind(gateway, "secured", "basic", secured["scenario"], authentication={"type": "basic"}).status_code == 200
    with gateway.admin() as admin:
        assert admin.post("/management/users", json={"username": "Jürgen", "password": "correct horse"}).status_code == 201
    good = base64.b64encode("Jürgen:correct horse".encode()).decode()
    wrong = base64.b64encode(b"Juergen:nope").decode()
    with gateway.client() as client:
        accepted = client.get("/secure/basic", headers={"Authorization": f"Basic {good}"})
        refused = client.get("/secure/basic", headers={"Authorization": f"Basic {wrong}"})
        missing = client.get("/secure/basic")
    assert accepted.status_code == 200 and accepted.json()["user"] == "Jürgen"
    assert_json_error(refused, 401)
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert_json_error(missing, 401)


def test_certificate_authentication(gateway: Junction, secured: dict[str, str]) -> None:
    trusted, stranger = Authority("Contoso Clients CA"), Authority("Someone Else CA")
    binding = {"authentication": {"type": "certificate", "trustedIssuers": [trusted.pem]}}
    assert _bind(gateway, "secured", "certificate", secured["scenario"], **binding).status_code == 200
    now = dt.datetime.now(dt.UTC)
    good = header_value(trusted.issue("Partner One"))
    untrusted = header_value(stranger.issue("Partner One"))
    expired = header_value(trusted.issue("Partner One", not_before=now - dt.timedelta(days=3), not_after=now - dt.timedelta(days=1)))
    server_only = header_value(trusted.issue("Partner One", client_auth=False))
    with gateway.client() as client:
        accepted = client.get("/secure/certificate", headers={**HTTPS, "X-ARR-ClientCert": good})
        assert accepted.status_code == 200, accepted.text
        assert "Partner One" in accepted.json()["user"]
        for value in (untrusted, expired, server_only):
            assert client.get("/secure/certificate", headers={**HTTPS, "X-ARR-ClientCert": value}).status_code in (401, 403)
        over_http = client.get("/secure/certificate", headers={"X-Forwarded-Proto": "http", "X-ARR-ClientCert": good})
        assert over_http.status_code == 403
        assert client.get("/secure/certificate", headers=HTTPS).status_code == 401


def test_api_key_authentication_with_rulesets(gateway: Junction, secured: dict[str, str]) -> None:
    assert _bind(gateway, "secured", "apikey", secured["scenario"], authentication={"type": "apiKey"}).status_code == 200
    with gateway.admin() as admin:
        inside = admin.post("/management/apikeys", json={"name": "partner", "ruleset": [{"path": "/secure/apikey", "methods": ["GET"]}]}).json()
        outside = admin.post("/management/apikeys", json={"name": "other", "ruleset": [{"path": "/secure/api", "methods": ["GET"]}]}).json()
        listed = admin.get("/management/apikeys").text
    assert inside["key"] not in listed
    with gateway.client() as client:
        accepted = client.get("/secure/apikey", headers={"X-Api-Key": inside["key"]})
        assert accepted.status_code == 200 and accepted.json()["user"] == "partner"
        assert client.get("/secure/apikey", headers={"X-Api-Key": outside["key"]}).status_code == 403  # /secure/api never matches /secure/apikey
        assert client.get("/secure/apikey", headers={"X-Api-Key": "jak_forged"}).status_code == 401
        assert client.get("/secure/apikey").status_code == 401


def test_oauth2_scopes(gateway: Junction, idp: LocalIdentityProvider, secured: dict[str, str]) -> None:
    binding = {"authentication": {"type": "oauth2", "scopes": ["Pets.Read"]}}
    assert _bind(gateway, "secured", "oauth2", secured["scenario"], **binding).status_code == 200
    with_role = idp.register_client(secret="pw-1", roles=("Pets.Read",))
    without = idp.register_client(secret="pw-2", roles=("Other",))

    def token(client_id: str, secret: str) -> str:
        return acquire_token(
            tenant_id=idp.tenant_id, client_id=client_id, scopes=[f"{AUDIENCE}/.default"], authority_host=idp.base_url,
            client_secret=secret, ca_bundle=idp.ca_path, cache_path=idp.folder / f"{client_id}.json",
        )  # fmt: skip

    with gateway.client() as client:
        accepted = client.get("/secure/oauth2", headers={"Authorization": f"Bearer {token(with_role.client_id, 'pw-1')}"})
        assert accepted.status_code == 200 and accepted.json()["roles"] == ["Pets.Read"]
        user = idp.mint(idp.user_claims(AUDIENCE, scp="Pets.Read other"))
        assert client.get("/secure/oauth2", headers={"Authorization": f"Bearer {user}"}).status_code == 200
        lacking = client.get("/secure/oauth2", headers={"Authorization": f"Bearer {token(without.client_id, 'pw-2')}"})
        invalid = client.get("/secure/oauth2", headers={"Authorization": "Bearer not.a.jwt"})
    assert lacking.status_code == 403 and 'error="insufficient_scope"' in lacking.headers["WWW-Authenticate"]
    assert invalid.status_code == 401 and 'error="invalid_token"' in invalid.headers["WWW-Authenticate"]


def test_protocol_rules(gateway: Junction, secured: dict[str, str]) -> None:
    binding = {"authentication": {"type": "none"}, "allowedProtocols": ["https"]}
    assert _bind(gateway, "secured", "refused", secured["scenario"], **binding).status_code == 200
    with gateway.client() as client:
        assert client.get("/secure/refused", headers=HTTPS).status_code == 200
        assert_json_error(client.get("/secure/refused"), 403)


def test_cors(gateway: Junction, secured: dict[str, str]) -> None:
    binding = {"authentication": {"type": "none"}, "cors": {"allowedOrigins": "https://app.contoso.example;https://admin.contoso.example"}}
    assert _bind(gateway, "secured", "cors", secured["scenario"], **binding).status_code == 200
    runs_before = gateway.run_count(secured["scenario"])
    with gateway.client() as client:
        preflight = client.options("/secure/cors", headers={"Origin": "https://app.contoso.example", "Access-Control-Request-Method": "GET"})
        allowed = client.get("/secure/cors", headers={"Origin": "https://admin.contoso.example"})
        refused = client.get("/secure/cors", headers={"Origin": "https://evil.example"})
    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.contoso.example"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert gateway.run_count(secured["scenario"]) == runs_before + 2  # the preflight ran nothing
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://admin.contoso.example"
    assert "Origin" in allowed.headers["Vary"]
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_an_intermediate_return_answers_before_the_process_ends(gateway: Junction, upstream: Upstream, secured: dict[str, str]) -> None:
    scenario = gateway.create_scenario(process={"steps": [
        {"type": "intermediateReturn", "value": {"accepted": True}},
        {"type": "http", "id": "work", "url": f"{upstream.url}/slow", "timeout": 30},
        {"type": "cache", "key": "finished", "value": "#steps.work.status"},
        {"type": "return", "value": "done"},
    ]})  # fmt: skip
    assert _bind(gateway, "secured", "early", scenario["id"], authentication={"type": "none"}).status_code == 200
    with gateway.client() as client:
        response = client.get("/secure/early")
        assert response.status_code == 200 and response.json() == {"accepted": True}
        run_id = response.headers["X-Run-Id"]
        with gateway.admin() as admin:
            run = admin.get(f"/management/scenarios/{scenario['id']}/runs/{run_id}").json()
            # Still running (the slow upstream takes 3 s) and nothing cached yet: the answer came first.
            assert run["status"] == "running" and run["intermediate"] == {"accepted": True}
            assert admin.get(f"/ExternalData/GetCacheData/{scenario['id']}?keyJson=%22finished%22").status_code == 404
    final = gateway.wait_for_run(scenario["id"], run_id, timeout=60)
    assert final["status"] == "succeeded" and final["output"] == "done"

    def cached() -> bool:
        with gateway.admin() as admin:
            return admin.get(f"/ExternalData/GetCacheData/{scenario['id']}?keyJson=%22finished%22").status_code == 200

    assert eventually(cached)


def test_a_throw_answers_with_its_response(gateway: Junction) -> None:
    document = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "servers": [{"url": "/throwing"}],
                "paths": {"/order": {"post": {"operationId": "order", "responses": {"200": {"description": "ok"}}}}}}  # fmt: skip
    with gateway.admin() as admin:
        assert admin.put("/management/apis/throwing", json=document).status_code in (200, 201)
    scenario = gateway.create_scenario(process={"steps": [
        {"type": "throw", "message": "out of stock", "response": {"HttpStatusCode": 409, "Content": "{\"error\": \"out of stock\"}", "ContentType": "application/json"}},
    ]})  # fmt: skip
    assert _bind(gateway, "throwing", "order", scenario["id"], authentication={"type": "none"}).status_code == 200
    with gateway.client() as client:
        response = client.post("/throwing/order", json={})
    assert response.status_code == 409 and response.json() == {"error": "out of stock"}
    run = gateway.wait_for_run(scenario["id"], response.headers["X-Run-Id"])
    assert run["status"] == "failed" and run["error"] == "out of stock"


def test_cli_imports_binds_and_creates_credentials(gateway: Junction, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, **gateway.env, "JUNCTION_URL": gateway.url, "JUNCTION_TOKEN": gateway.admin_token, "JUNCTION_USER_PASSWORD": "s3cret pass"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    document = tmp_path / "cli.yaml"
    document.write_text(
        "openapi: 3.0.3\ninfo: {title: cli, version: '1'}\nservers: [{url: /cli}]\n"
        "paths:\n  /ping:\n    get:\n      operationId: ping\n      responses: {'200': {description: ok}}\n"
    )
    imported = cli("api", "import", str(document), "--name", "clipets")
    assert imported.returncode == 0, imported.stderr
    operation = json.loads(imported.stdout)["operations"][0]["operationId"]
    scenario = gateway.create_scenario(process=ECHO)
    bound = cli("api", "bind", "clipets", operation, "--scenario", scenario["id"], "--auth", "apiKey", "--cors", "*")
    assert bound.returncode == 0, bound.stderr
    assert json.loads(bound.stdout)["binding"]["authentication"]["type"] == "apiKey"
    key = cli("apikey", "create", "--name", "cli", "--rule", "/cli/**:GET")
    assert key.returncode == 0, key.stderr
    with gateway.client() as client:
        assert client.get("/cli/ping", headers={"X-Api-Key": json.loads(key.stdout)["key"]}).status_code == 200
    user = cli("user", "create", "--username", "cli-user")
    assert user.returncode == 0, user.stderr
    with gateway.admin() as admin:
        assert "cli-user" in admin.get("/management/users").text
