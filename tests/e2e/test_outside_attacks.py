"""Attacks from outside (issue 13), each over real HTTP against devhost: what a hostile caller
found, and what Junction answers now. docs/reliability.md lists them in its hostile-input table.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import pytest

from core.kernel import clock
from tests.e2e.conftest import Junction, assert_json_error

GUID = "1a990d32-1299-4c6e-9ac7-aa1800cde08d"


def _stored_token(junction: Junction, *, scopes: list[str], scenario_ids: list[str] | None) -> str:
    """A token written straight to storage, as one made before a rule existed would be."""
    token_id = secrets.token_hex(16)
    token = f"jct_{token_id}{secrets.token_urlsafe(32)}"
    junction.storage.table("tokens").create_entity({
        "PartitionKey": "token", "RowKey": token_id, "Name": "legacy", "Hash": hashlib.sha256(token.encode()).hexdigest(),
        "Scopes": ",".join(scopes), "ScenarioIds": ",".join(scenario_ids) if scenario_ids else None, "CreatedAt": clock.now_iso(),
    })  # fmt: skip
    return token


# -- 1. an admin token limited to one scenario ----------------------------------------------


def _management_routes(junction: Junction) -> list[tuple[str, str]]:
    """Every management method and path, from the published document (so new routes are covered)."""
    with junction.client() as client:
        document = client.get("/management/openapi.json").json()
    routes = []
    for path, item in document["paths"].items():
        if not path.startswith("/management/") or path == "/management/openapi.json":
            continue
        for method in item:
            if method in ("get", "put", "post", "patch", "delete"):
                routes.append((method.upper(), path))
    return routes


def test_an_admin_token_cannot_be_limited_to_scenarios(junction: Junction, scenario: dict[str, Any]) -> None:
    with junction.admin() as admin:
        for scopes in (["admin"], ["admin", "trigger"]):
            refused = admin.post("/management/tokens", json={"name": "scoped", "scopes": scopes, "scenarioIds": [scenario["id"]]})
            assert_json_error(refused, 400, "AdminTokenCannotBeScoped")
        assert "scoped" not in [t["name"] for t in admin.get("/management/tokens").json()["value"]]


def test_a_stored_scoped_admin_token_administers_nothing_on_any_route(junction: Junction, scenario: dict[str, Any]) -> None:
    """A token stored with ``admin`` and a scenario limit (before the combination was refused) is
    refused by every management route, even for its own scenario, and can mint nothing."""
    own = scenario["id"]
    token = _stored_token(junction, scopes=["admin"], scenario_ids=[own])
    values = {"scenarioId": own, "runId": GUID, "tokenId": "0" * 32, "apiName": "x", "operationId": "op", "apikeyId": "0" * 32, "username": "u"}
    routes = _management_routes(junction)
    assert len(routes) >= 26
    with junction.client(token) as client:
        for method, template in routes:
            path = template.format(**values)
            response = client.request(method, path, params={"keyJson": '"k"'} if path.endswith("/cache") else None, json={"name": "x", "scopes": ["admin"]})
            assert_json_error(response, 403, "ScopedAdminToken")
        # Its trigger rights stay confined to its scenario.
        assert client.post(f"/ExternalData/Accept/{own}", json={}).status_code == 200
        other = junction.create_scenario()
        assert_json_error(client.post(f"/ExternalData/Accept/{other['id']}", json={}), 403, "ScenarioNotAllowed")
    with junction.admin() as admin:
        assert admin.get(f"/management/scenarios/{own}").json()["name"] == scenario["name"]
        assert [t for t in admin.get("/management/tokens").json()["value"] if t["name"] == "x"] == []


@pytest.fixture
def scenario(junction: Junction) -> dict[str, Any]:
    return junction.create_scenario()


# -- 6. lone surrogates (the class is in test_hostile_input.py) -----------------------------


def test_an_echoing_api_operation_refuses_a_lone_surrogate_and_leaves_no_run(junction: Junction) -> None:
    """Before: 500 with a traceback, and the run stayed ``running`` forever."""
    document = {"openapi": "3.0.3", "info": {"title": "echo", "version": "1"}, "servers": [{"url": "/echoing"}],
                "paths": {"/echo": {"post": {"operationId": "echo", "responses": {"200": {"description": "ok"}}}}}}  # fmt: skip
    scenario = junction.create_scenario(process={"steps": [{"type": "return", "value": "#trigger.data.body"}]})
    with junction.admin() as admin:
        assert admin.put("/management/apis/echoing", json=document).status_code in (200, 201)
        assert admin.put("/management/apis/echoing/operations/echo", json={"scenarioId": scenario["id"]}).status_code == 200
    try:
        with junction.client() as client:
            refused = client.post("/echoing/echo", content=b'{"text": "\\ud800"}', headers={"Content-Type": "application/json"})
            assert_json_error(refused, 400, "InvalidJson")
            assert junction.run_count(scenario["id"]) == 0
            fine = client.post("/echoing/echo", json={"text": "\U0001f600"})
            assert fine.status_code == 200 and fine.json() == {"text": "\U0001f600"}
        with junction.admin() as admin:
            listed = admin.get(f"/management/scenarios/{scenario['id']}/runs").json()["value"]
        assert [run["status"] for run in listed] == ["succeeded"]
    finally:
        with junction.admin() as admin:
            admin.delete("/management/apis/echoing")


# -- 3. route matching linear in the path length --------------------------------------------


def test_template_segments_match_without_backtracking_and_long_segments_are_400(junction: Junction) -> None:
    """``/{a}-{b}-{c}.json`` (documented) against a segment of dashes took 17 s of CPU for 2,500
    characters with a backtracking regex. Now each parameter ends at the first occurrence of the
    text after it, and a segment longer than 1,024 characters is a 400 before any matching."""
    document = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "servers": [{"url": "/tpl"}],
                "paths": {"/{a}-{b}-{c}.json": {"get": {"operationId": "parts", "responses": {"200": {"description": "ok"}}, "parameters": [
                    {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in "abc"]}}}}  # fmt: skip
    scenario = junction.create_scenario(process={"steps": [{"type": "return", "value": {"jmespath": "trigger.data.path"}}]})
    with junction.admin() as admin:
        assert admin.put("/management/apis/tpl", json=document).status_code in (200, 201)
        assert admin.put("/management/apis/tpl/operations/parts", json={"scenarioId": scenario["id"]}).status_code == 200
    try:
        with junction.client() as client:
            assert client.get("/tpl/x-y-z-w.json").json() == {"a": "x", "b": "y", "c": "z-w"}
            assert_json_error(client.get("/tpl/" + "-" * 1024), 404, "OperationNotFound")
            assert client.get("/tpl/" + "-" * 1019 + ".json").json() == {"a": "-", "b": "-", "c": "-" * 1015}
            for length in (1025, 2500, 4000):
                assert_json_error(client.get("/tpl/" + "-" * length), 400, "InvalidPath")
            assert_json_error(client.get("/tpl/" + "9" * 1000), 404)
        assert junction.run_count(scenario["id"]) == 2
    finally:
        with junction.admin() as admin:
            admin.delete("/management/apis/tpl")


# -- 3, the same class: regex patterns from imported documents over callers' text -------------

# A backtracking engine needs about 2**n steps for ``^(a+)+$`` against n a's and a '!'.
EVIL = "^(a+)+$"
HOSTILE = "a" * 5_000 + "!"


def test_document_patterns_run_in_linear_time_over_callers_text(junction: Junction) -> None:
    """``pattern`` on a query parameter and a body property, and ``patternProperties`` with
    ``additionalProperties: false`` (OpenAPI 3.1): with Python's ``re`` the first call below never
    came back (the client's 30 s timeout ends the test); with RE2 each answers 400 at once."""
    document = {"openapi": "3.1.0", "info": {"title": "re", "version": "1"}, "servers": [{"url": "/re"}],
                "paths": {"/check": {"post": {"operationId": "check", "responses": {"200": {"description": "ok"}},
                    "parameters": [{"name": "q", "in": "query", "schema": {"type": "string", "pattern": EVIL}}],
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object",
                        "properties": {"name": {"type": "string", "pattern": EVIL}},
                        "patternProperties": {EVIL: {"type": "integer"}}, "additionalProperties": False}}}}}}}}  # fmt: skip
    scenario = junction.create_scenario(process={"steps": [{"type": "return", "value": "ok"}]})
    with junction.admin() as admin:
        assert admin.put("/management/apis/re", json=document).status_code in (200, 201)
        assert admin.put("/management/apis/re/operations/check", json={"scenarioId": scenario["id"]}).status_code == 200
    try:
        with junction.client() as client:
            assert client.post("/re/check", params={"q": "aaa"}, json={"name": "aa", "aaa": 1}).status_code == 200
            assert_json_error(client.post("/re/check", params={"q": HOSTILE[-3_000:]}, json={}, timeout=30), 400, "InvalidParameter")
            assert_json_error(client.post("/re/check", json={"name": HOSTILE}, timeout=30), 400, "InvalidBody")
            assert_json_error(client.post("/re/check", json={HOSTILE: 1}, timeout=30), 400, "InvalidBody")
        assert junction.run_count(scenario["id"]) == 1
    finally:
        with junction.admin() as admin:
            admin.delete("/management/apis/re")


@pytest.mark.parametrize("pattern", ["^(?=a)a+$", "^(a)\\1$", "(?<!x)y", "[unclosed"])
def test_patterns_that_need_backtracking_are_refused_at_import(junction: Junction, pattern: str) -> None:
    document = {"openapi": "3.0.3", "info": {"title": "re", "version": "1"},
                "paths": {"/p": {"get": {"operationId": "p", "responses": {"200": {"description": "ok"}},
                    "parameters": [{"name": "q", "in": "query", "schema": {"type": "string", "pattern": pattern}}]}}}}  # fmt: skip
    with junction.admin() as admin:
        refused = admin.put("/management/apis/relook", json=document)
        assert_json_error(refused, 400, "InvalidDocument")
        assert "linear time" in refused.json()["error"]["message"]
        assert admin.get("/management/apis/relook").status_code == 404


# -- 2, 4, 8. recursive $refs: the public document and the import --------------------------


def _node_schemas(properties: int) -> dict[str, Any]:
    return {"Node": {"type": "object", "properties": {f"p{i}": {"$ref": "#/components/schemas/Node"} for i in range(properties)}}}


def test_the_public_document_keeps_refs_as_components_and_names_no_scenario(junction: Junction) -> None:
    """A 1.6 KB document with a 30-property self-referencing body schema made every anonymous
    GET of /management/openapi.json take ~1.3 s and return 8 MB; the summary of a bound
    operation without one named its scenario's GUID."""
    document = {"openapi": "3.0.3", "info": {"title": "rec", "version": "1"}, "servers": [{"url": "/rec"}],
                "paths": {"/nodes": {"post": {"operationId": "addNode", "responses": {"200": {"description": "ok"}},
                          "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}}},
                "components": {"schemas": _node_schemas(30)}}  # fmt: skip
    scenario = junction.create_scenario(process={"steps": [{"type": "return", "value": "ok"}]})
    with junction.admin() as admin:
        assert admin.put("/management/apis/rec", json=document).status_code in (200, 201)
        assert admin.put("/management/apis/rec/operations/addNode", json={"scenarioId": scenario["id"]}).status_code == 200
    try:
        with junction.client() as client:
            first, second = client.get("/management/openapi.json"), client.get("/management/openapi.json")
            assert first.status_code == 200 and first.content == second.content
            assert len(first.content) < 200_000, len(first.content)
            published = first.json()
            body = published["paths"]["/rec/nodes"]["post"]["requestBody"]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/rec.Node"}
            assert published["components"]["schemas"]["rec.Node"]["properties"]["p29"] == {"$ref": "#/components/schemas/rec.Node"}
            assert scenario["id"] not in first.text
            assert published["servers"] == [{"url": junction.url}]
            # The schema is still enforced as a schema: a recursive body validates.
            assert client.post("/rec/nodes", json={"p0": {"p1": {}}}).status_code == 200
            assert_json_error(client.post("/rec/nodes", json={"p0": 5}), 400)
        with junction.admin() as admin:
            assert admin.delete("/management/apis/rec/operations/addNode").status_code == 204
        with junction.client() as client:
            assert "/rec/nodes" not in client.get("/management/openapi.json").json()["paths"]  # rebuilt on change
    finally:
        with junction.admin() as admin:
            admin.delete("/management/apis/rec")


def test_ref_expansion_at_import_is_bounded(junction: Junction) -> None:
    """An 855-byte document whose parameter schema had 12 self-referencing properties took 17 s
    to import (expanded to depth 12); shared references that multiply are refused, recursion is
    cut at once."""
    def document(schemas: dict[str, Any], root: str) -> dict[str, Any]:
        return {"openapi": "3.0.3", "info": {"title": "x", "version": "1"}, "servers": [{"url": "/exp"}],
                "paths": {"/q": {"get": {"operationId": "q", "responses": {"200": {"description": "ok"}},
                          "parameters": [{"name": "q", "in": "query", "schema": {"$ref": f"#/components/schemas/{root}"}}]}}},
                "components": {"schemas": schemas}}  # fmt: skip

    multiplying = {f"N{i}": {"type": "object", "properties": {f"p{j}": {"$ref": f"#/components/schemas/N{i + 1}"} for j in range(12)}} for i in range(8)}
    multiplying["N8"] = {"type": "string"}
    with junction.admin() as admin:
        recursive = admin.put("/management/apis/exp", json=document(_node_schemas(12), "Node"))
        assert recursive.status_code in (200, 201), recursive.text
        refused = admin.put("/management/apis/exp2", json=document(multiplying, "N0"))
        error = assert_json_error(refused, 400, "InvalidDocument")
        assert "expands to more than" in error["message"]
        assert_json_error(admin.get("/management/apis/exp2"), 404)
        admin.delete("/management/apis/exp")


def _shared_schemas() -> dict[str, Any]:
    """About 15,000 values once inlined: under one schema's bound, from a few hundred bytes."""
    leaf = {"type": "object", "properties": {f"a{i}": {"type": "string"} for i in range(10)}}
    mid = {"type": "object", "properties": {f"m{i}": {"$ref": "#/components/schemas/Leaf"} for i in range(30)}}
    big = {"type": "object", "properties": {f"b{i}": {"$ref": "#/components/schemas/Mid"} for i in range(15)}}
    return {"Leaf": leaf, "Mid": mid, "Big": big}


def test_ref_expansion_is_bounded_for_the_whole_document(junction: Junction) -> None:
    """Each parameter schema had its own bound, the document none: 200 parameters referring to one
    shared schema made a 22 KB document extract 39 MB in 5 s of CPU (linear up to the 4 MiB
    document limit). The sum over all operations is bounded; one such parameter still imports."""
    def document(count: int) -> dict[str, Any]:
        params = [{"name": f"q{i}", "in": "query", "schema": {"$ref": "#/components/schemas/Big"}} for i in range(count)]
        return {"openapi": "3.0.3", "info": {"title": "x", "version": "1"}, "servers": [{"url": "/wide"}],
                "paths": {"/q": {"get": {"operationId": "q", "responses": {"200": {"description": "ok"}}, "parameters": params}}},
                "components": {"schemas": _shared_schemas()}}  # fmt: skip

    with junction.admin() as admin:
        one = admin.put("/management/apis/wide1", json=document(1))
        assert one.status_code in (200, 201), one.text
        refused = admin.put("/management/apis/wide200", json=document(200))
        error = assert_json_error(refused, 400, "InvalidDocument")
        assert "the document's operations expand to more than" in error["message"]
        assert_json_error(admin.get("/management/apis/wide200"), 404)
        admin.delete("/management/apis/wide1")


# -- 13. Basic-auth lockout by anyone --------------------------------------------------------


def _from(junction: Junction, address: str) -> Any:
    """A client whose connections come from ``address`` (any of 127.0.0.0/8 on loopback)."""
    import httpx

    return httpx.Client(base_url=junction.url, timeout=30, transport=httpx.HTTPTransport(local_address=address))


def _basic(user: str, password: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_guesses_lock_out_the_guesser_not_the_user(junction: Junction) -> None:
    """The throttle was keyed on the user name only: 5 wrong guesses from anywhere made ``alice``
    get 429 with her correct password. Now it is keyed on (user, client), plus a ceiling per
    client across users and one per user across clients that spares clients the user signed in
    from before."""
    document = {"openapi": "3.0.3", "info": {"title": "b", "version": "1"}, "servers": [{"url": "/lockout"}],
                "paths": {"/me": {"get": {"operationId": "me", "responses": {"200": {"description": "ok"}}}}}}  # fmt: skip
    scenario = junction.create_scenario(process={"steps": [{"type": "return", "value": "#trigger.data.username"}]})
    alice, bob = f"alice-{secrets.token_hex(3)}", f"bob-{secrets.token_hex(3)}"
    with junction.admin() as admin:
        assert admin.put("/management/apis/lockout", json=document).status_code in (200, 201)
        binding = {"scenarioId": scenario["id"], "authentication": {"type": "basic"}}
        assert admin.put("/management/apis/lockout/operations/me", json=binding).status_code == 200
        for name in (alice, bob):
            assert admin.post("/management/users", json={"username": name, "password": "the right one"}).status_code == 201
    try:
        with _from(junction, "127.0.0.1") as home:
            assert home.get("/lockout/me", headers=_basic(bob, "the right one")).text == bob  # bob's usual client
            # A stranger guesses alice's password: the stranger is throttled, alice is not.
            with _from(junction, "127.0.0.2") as stranger:
                for _ in range(5):
                    assert_json_error(stranger.get("/lockout/me", headers=_basic(alice, "guess")), 401)
                refused = stranger.get("/lockout/me", headers=_basic(alice, "the right one"))
                assert_json_error(refused, 429, "TooManyFailedSignIns")
                assert int(refused.headers["Retry-After"]) > 200
            assert home.get("/lockout/me", headers=_basic(alice, "the right one")).text == alice
            with _from(junction, "127.0.0.3") as elsewhere:
                assert elsewhere.get("/lockout/me", headers=_basic(alice, "the right one")).text == alice
            # One client guessing many names is stopped after 30 failures, whatever the names.
            with _from(junction, "127.0.0.4") as sprayer:
                for i in range(30):
                    assert_json_error(sprayer.get("/lockout/me", headers=_basic(f"nobody{i}", "guess")), 401)
                assert_json_error(sprayer.get("/lockout/me", headers=_basic("nobody-else", "guess")), 429, "TooManyFailedSignIns")
            # Many clients guessing one name: past 50 failures the name is closed to new clients,
            # but not to the client bob signed in from before.
            for host in range(10, 21):
                with _from(junction, f"127.0.0.{host}") as guesser:
                    for _ in range(5):
                        guesser.get("/lockout/me", headers=_basic(bob, "guess"))
            with _from(junction, "127.0.0.30") as new_client:
                assert_json_error(new_client.get("/lockout/me", headers=_basic(bob, "the right one")), 429, "TooManyFailedSignIns")
            assert home.get("/lockout/me", headers=_basic(bob, "the right one")).text == bob
    finally:
        with junction.admin() as admin:
            admin.delete("/management/apis/lockout")
            for name in (alice, bob):
                admin.delete(f"/management/users/{name}")


# -- Also seen: CORS preflights and the order of Accept's checks ------------------------------


def test_a_preflight_lists_only_methods_whose_own_cors_policy_allows_the_origin(junction: Junction) -> None:
    ok = {"responses": {"200": {"description": "ok"}}}
    document = {"openapi": "3.0.3", "info": {"title": "c", "version": "1"}, "servers": [{"url": "/corsmix"}],
                "paths": {"/x": {m: {"operationId": m, **ok} for m in ("get", "put", "post", "delete")}}}  # fmt: skip
    scenario = junction.create_scenario(process={"steps": [{"type": "return", "value": "ok"}]})
    policies = {
        "get": {"allowedOrigins": ["https://a.example"]},
        "put": {"allowedOrigins": ["https://b.example"]},
        "post": {"allowedOrigins": ["https://a.example"], "allowCredentials": True},
        "delete": None,
    }
    with junction.admin() as admin:
        assert admin.put("/management/apis/corsmix", json=document).status_code in (200, 201)
        for method, policy in policies.items():
            binding = {"scenarioId": scenario["id"], **({"cors": policy} if policy else {})}
            assert admin.put(f"/management/apis/corsmix/operations/{method}", json=binding).status_code == 200
    try:
        with junction.client() as client:
            def preflight(origin: str, method: str) -> Any:
                return client.options("/corsmix/x", headers={"Origin": origin, "Access-Control-Request-Method": method})

            a_get = preflight("https://a.example", "GET")
            assert a_get.status_code == 204 and a_get.headers["Access-Control-Allow-Methods"] == "GET"
            b_put = preflight("https://b.example", "PUT")
            assert b_put.headers["Access-Control-Allow-Methods"] == "PUT"
            a_post = preflight("https://a.example", "POST")
            assert a_post.headers["Access-Control-Allow-Methods"] == "POST" and a_post.headers["Access-Control-Allow-Credentials"] == "true"
            b_get = preflight("https://b.example", "GET")
            assert "Access-Control-Allow-Origin" not in b_get.headers and "Access-Control-Allow-Methods" not in b_get.headers
    finally:
        with junction.admin() as admin:
            admin.delete("/management/apis/corsmix")


def test_accept_and_getcachedata_check_credentials_before_telling_anything(junction: Junction) -> None:
    """Accept answered 404 for an unknown and 403 for a disabled scenario before looking at the
    credentials, so anyone could tell which scenarios exist. Now a caller without credentials
    gets the same 401 for all of them; anonymous scenarios still need none."""
    disabled = junction.create_scenario(externalTriggers={"enabled": False, "allowAnonymous": True})
    private = junction.create_scenario()
    public = junction.create_scenario(externalTriggers={"enabled": True, "allowAnonymous": True})
    with junction.client() as anonymous:
        for sid in (disabled["id"], private["id"], GUID):
            for response in (anonymous.post(f"/ExternalData/Accept/{sid}", json={}), anonymous.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": "1"})):
                assert_json_error(response, 401, "AuthenticationRequired")
        assert anonymous.post(f"/ExternalData/Accept/{public['id']}", json={}).status_code == 200
        assert_json_error(anonymous.get(f"/ExternalData/GetCacheData/{public['id']}", params={"keyJson": '"none"'}), 404, "CacheEntryNotFound")
    assert junction.run_count(disabled["id"]) == 0 and junction.run_count(private["id"]) == 0


# -- 5. secrets from http steps --------------------------------------------------------------

ERP_SECRET = "erp-secret-value-123"
NEWLINE_SECRET = "newline-secret-value\n"
SPACE_SECRET = " spaced-secret-value"


@pytest.fixture(scope="module")
def egress(azurite: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Junction with two upstreams on different ports, secrets, and one secret bound to a host."""
    from devhost.azurite import free_port
    from tests.e2e.conftest import serve_junction
    from tests.support.upstream import Upstream

    first, second = Upstream().start(), Upstream().start()
    env = {
        "JUNCTION_OUTBOUND_ALLOWED_HOSTS": f"{first.host},{second.host},localhost:{free_port()}",
        "JUNCTION_SECRET_ERP": ERP_SECRET,
        "JUNCTION_SECRET_NEWLINE": NEWLINE_SECRET,
        "JUNCTION_SECRET_SPACE": SPACE_SECRET,
        "JUNCTION_SECRET_BOUND": "bound-secret-value",
        "JUNCTION_OUTBOUND_SECRET_HOSTS": f"JUNCTION_SECRET_BOUND={first.host}",
    }
    log_dir = tmp_path_factory.mktemp("devhost-egress")
    try:
        with serve_junction(azurite, "e2eegress", log_dir, extra_env=env) as server:
            yield server, first, second, log_dir / "devhost.log"
    finally:
        first.stop()
        second.stop()


def _run_step(junction: Junction, step: dict[str, Any]) -> dict[str, Any]:
    scenario = junction.create_scenario(process={"steps": [{"id": "call", **step}, {"type": "return", "value": "#steps.call"}]})
    with junction.admin() as admin:
        response = admin.post(f"/ExternalData/Accept/{scenario['id']}", json={})
    assert response.status_code == 200, response.text
    return junction.wait_for_run(scenario["id"], response.headers["X-Run-Id"])


def test_credentials_are_dropped_on_a_redirect_to_another_origin(egress: Any) -> None:
    junction, first, second, _ = egress
    secret = {"secret": "JUNCTION_SECRET_ERP"}
    away = f"{first.url}/redirect-to?url={second.url}/landing"
    run = _run_step(junction, {"type": "http", "url": away, "headers": {"Authorization": secret, "X-Erp-Key": secret, "X-Plain": "ok"}})
    assert run["status"] == "succeeded", run
    landed = second.request_headers["/landing"][-1]
    assert "authorization" not in landed and "x-erp-key" not in landed and landed["x-plain"] == "ok"
    assert ERP_SECRET not in json.dumps(second.request_headers)
    # The same origin keeps them.
    run = _run_step(junction, {"type": "http", "url": f"{first.url}/redirect-in", "headers": {"Authorization": secret}})
    assert run["status"] == "succeeded" and first.request_headers["/orders"][-1]["authorization"] == ERP_SECRET


@pytest.mark.parametrize(("name", "value"), [("JUNCTION_SECRET_NEWLINE", NEWLINE_SECRET), ("JUNCTION_SECRET_SPACE", SPACE_SECRET)])
def test_a_secret_that_is_no_header_value_is_named_never_echoed(egress: Any, name: str, value: str) -> None:
    junction, first, _, log = egress
    run = _run_step(junction, {"type": "http", "url": f"{first.url}/orders", "headers": {"Authorization": {"secret": name}}})
    assert run["status"] == "failed" and name in run["error"]
    assert value.strip() not in json.dumps(run)
    assert value.strip() not in log.read_text(errors="replace")


def test_secret_values_an_upstream_echoes_are_scrubbed_from_the_run(egress: Any) -> None:
    junction, first, _, log = egress
    run = _run_step(junction, {"type": "http", "url": f"{first.url}/echo-auth", "headers": {"Authorization": {"secret": "JUNCTION_SECRET_ERP"}}})
    assert run["status"] == "succeeded" and run["output"]["body"] == {"auth": "[JUNCTION_SECRET_ERP]"}
    assert first.request_headers["/echo-auth"][-1]["authorization"] == ERP_SECRET
    assert ERP_SECRET not in json.dumps(run) and ERP_SECRET not in log.read_text(errors="replace")


def test_a_secret_bound_to_hosts_goes_to_no_other(egress: Any) -> None:
    junction, first, second, _ = egress
    bound = {"Authorization": {"secret": "JUNCTION_SECRET_BOUND"}}
    assert _run_step(junction, {"type": "http", "url": f"{first.url}/orders", "headers": bound})["status"] == "succeeded"
    run = _run_step(junction, {"type": "http", "url": f"{second.url}/orders", "headers": bound})
    assert run["status"] == "failed" and "JUNCTION_OUTBOUND_SECRET_HOSTS" in run["error"]
    assert "bound-secret-value" not in json.dumps(second.request_headers)


def test_an_allowed_name_resolving_to_a_private_address_is_refused(egress: Any) -> None:
    """``localhost:<port>`` is allow-listed by name; it resolves to loopback, which only an IP
    entry the operator wrote (with that port) may reach. The metadata service at 169.254.169.254
    is refused the same way (tests/unit/test_egress.py)."""
    junction, first, _, _ = egress
    named = next(h for h in junction.env["JUNCTION_OUTBOUND_ALLOWED_HOSTS"].split(",") if h.startswith("localhost:"))
    run = _run_step(junction, {"type": "http", "url": f"http://{named}/by-name", "retries": 0})
    assert run["status"] == "failed" and "resolves to 127.0.0.1, a loopback, private" in run["error"], run
    assert run["attempts"] == 1  # refused for good, not retried as an unreachable host
    assert _run_step(junction, {"type": "http", "url": f"{first.url}/by-ip"})["status"] == "succeeded"


# -- 12. JMESPath work ------------------------------------------------------------------------


def test_jmespath_work_is_bounded_with_a_clear_run_error(junction: Junction) -> None:
    """A 132-character expression (``|[@,@]`` x 20) made a 12.5 MB output, and nested ``then``
    branches allowed 80,200 steps. Values an expression builds are at most 16 MiB as JSON, an
    expression takes at most 1,000,000 steps (nested ones included), a process at most 500 steps
    counting every branch."""
    hundred = "`[" + ",".join(str(i) for i in range(100)) + "]`"
    cases = {
        "built a value larger than 16 MiB": "data[0].Body" + "|[@,@]" * 22,
        "more than 1,000,000 steps": f"map(&map(&map(&@, {hundred}), {hundred}), {hundred})",
    }
    for message, expression in cases.items():
        scenario = junction.create_scenario(process={"steps": [{"type": "transform", "id": "big", "expression": expression}, {"type": "return", "value": "#steps.big"}]})
        with junction.admin() as admin:
            run_id = admin.post(f"/ExternalData/Accept/{scenario['id']}", json={"order": "x" * 100}).headers["X-Run-Id"]
        run = junction.wait_for_run(scenario["id"], run_id, timeout=60)
        assert run["status"] == "failed" and message in run["error"] and run["failedStep"] == "big", run
        assert run["attempts"] == 1 and run["output"] is None
    branch: list[dict[str, Any]] = [{"type": "transform", "expression": "@"}] * 100
    nested: dict[str, Any] = {"type": "decision", "if": "@", "then": branch, "else": branch}
    for _ in range(2):
        nested = {"type": "decision", "if": "@", "then": [nested, *branch], "else": branch}
    with junction.admin() as admin:
        refused = admin.post("/management/scenarios", json={"name": "nested", "process": {"steps": [nested]}})
    error = assert_json_error(refused, 400, "InvalidProcess")
    assert "at most 500 steps" in error["message"]
