"""Hostile input over real HTTP (issue 7, item 2): each case gets its expected status, a JSON
error rather than a traceback, and leaves nothing stored."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import HOOK_SECRET, HOOK_SECRET_NAME, Junction, assert_json_error

GUID = "1a990d32-1299-4c6e-9ac7-aa1800cde08d"


def _raw(junction: Junction, method: str, target: str, headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> tuple[int, bytes]:
    """Send the request target exactly as given (httpx would normalise the path)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(junction.url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers or []:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "segment",
    ["..%2F..%2Fmanagement%2Ftokens", "%2e%2e%2f", f"{GUID}%00", f"{GUID}%2F..", "%EF%BC%8F" + GUID, f"..%5C{GUID}", f"{GUID[:-1]}%C3%A9"],
)
def test_traversal_and_encoded_separators_in_scenario_ids_are_400(junction: Junction, segment: str) -> None:
    runs_before = len(list(junction.storage.table("runs").list_entities(select=["RowKey"])))
    for method, path in (("POST", f"/ExternalData/Accept/{segment}"), ("GET", f"/ExternalData/GetCacheData/{segment}?keyJson=1")):
        status, body = _raw(junction, method, path, [("Authorization", f"Bearer {junction.admin_token}")], b"{}")
        assert status == 400, (path, body)
        assert json.loads(body)["error"]["code"] == "InvalidScenarioId"
    assert len(list(junction.storage.table("runs").list_entities(select=["RowKey"]))) == runs_before


@pytest.fixture(scope="module")
def files_api(junction: Junction) -> Iterator[str]:
    """An anonymous operation ``GET /files/files/{name}`` whose process echoes the parameter."""
    document = {"openapi": "3.0.3", "info": {"title": "files", "version": "1"}, "servers": [{"url": "/files"}],
                "paths": {"/files/{name}": {"get": {"operationId": "getFile", "responses": {"200": {"description": "ok"}},
                          "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]}}}}  # fmt: skip
    scenario = junction.create_scenario(process={"steps": [{"type": "return", "value": "#trigger.data.path.name"}]})
    with junction.admin() as admin:
        assert admin.put("/management/apis/files", json=document).status_code in (200, 201)
        binding = {"scenarioId": scenario["id"], "authentication": {"type": "none"}}
        assert admin.put("/management/apis/files/operations/getFile", json=binding).status_code == 200
    yield scenario["id"]
    with junction.admin() as admin:
        admin.delete("/management/apis/files")


@pytest.mark.parametrize("segment", ["..", "%2e%2e", "%2E%2e", ".", "a%00", "%ff"])
def test_traversal_in_api_path_parameters_is_refused_and_runs_nothing(junction: Junction, files_api: str, segment: str) -> None:
    status, body = _raw(junction, "GET", f"/files/files/{segment}")
    assert status in (400, 404), body
    assert "error" in json.loads(body) and b"jct_" not in body
    assert junction.run_count(files_api) == 0


@pytest.mark.parametrize(("segment", "name"), [
    ("a%2Fb", "a/b"), ("..%2F..%2Fmanagement%2Ftokens", "../../management/tokens"), ("%EF%BC%8F" + "etc", "\uff0fetc"), ("%5C..%5Cx", "\\..\\x"),
])
def test_encoded_separators_stay_inside_the_parameter(junction: Junction, files_api: str, segment: str, name: str) -> None:
    """An encoded or look-alike separator is a character of the value, never a path step."""
    status, body = _raw(junction, "GET", f"/files/files/{segment}")
    assert status == 200, body
    assert body.decode("utf-8") == name  # a string result is answered as text


def test_dot_segments_are_resolved_before_routing_and_change_no_rule(junction: Junction) -> None:
    """Like the Functions host, real ``..`` segments are resolved first: this is a request for
    /management/tokens, and that route's own authentication applies."""
    status, body = _raw(junction, "GET", "/ExternalData/Accept/../../management/tokens")
    assert status == 401 and b"jct_" not in body
    status, _ = _raw(junction, "GET", "/../../../etc/passwd")
    assert status in (400, 404)


def test_crlf_in_values_that_could_be_echoed_into_headers(junction: Junction, scenario: dict[str, Any]) -> None:
    url = f"/ExternalData/Accept/{scenario['id']}"
    status, body = _raw(junction, "POST", url, [
        ("Authorization", f"Bearer {junction.admin_token}"), ("Content-Type", "application/json"), ("Idempotency-Key", "a%0d%0aSet-Cookie:%20x=1"),
    ], b"{}")  # fmt: skip
    assert status == 200  # percent-escapes are just characters of the key, never decoded into headers
    with junction.admin() as admin:
        bad = admin.post(url, json={}, headers={"Idempotency-Key": "a\tb"})
    assert_json_error(bad, 400, "InvalidIdempotencyKey")
    assert "set-cookie" not in {k.lower() for k in bad.headers}
    assert junction.run_count(scenario["id"]) == 1  # the accepted first request only


def test_a_process_cannot_inject_response_headers(junction: Junction) -> None:
    document = {"openapi": "3.0.3", "info": {"title": "h", "version": "1"}, "servers": [{"url": "/hostile"}],
                "paths": {"/echo": {"get": {"operationId": "echo", "responses": {"200": {"description": "ok"}}}}}}  # fmt: skip
    scenario = junction.create_scenario(process={"steps": [{"type": "return", "value": {
        "HttpStatusCode": 200, "Content": "x",
        "HttpHeaders": [{"Key": "X-Ok", "Value": "fine"}, {"Key": "X-Bad", "Value": "a\r\nSet-Cookie: stolen=1"},
                        {"Key": "Bad\r\nName", "Value": "v"}, {"Key": "Content-Length", "Value": "999"}],
    }}]})  # fmt: skip
    with junction.admin() as admin:
        assert admin.put("/management/apis/hostile", json=document).status_code in (200, 201)
        assert admin.put("/management/apis/hostile/operations/echo", json={"scenarioId": scenario["id"], "authentication": {"type": "none"}}).status_code == 200
    try:
        with junction.client() as client:
            response = client.get("/hostile/echo")
        assert_json_error(response, 500, "InvalidProcessResult")  # the whole result is unusable
        assert "stolen" not in str(response.headers).lower() and "X-Bad" not in response.headers and "X-Ok" not in response.headers
    finally:
        with junction.admin() as admin:
            admin.delete("/management/apis/hostile")


def test_very_long_headers_and_urls_are_refused_cleanly(junction: Junction, scenario: dict[str, Any]) -> None:
    with junction.client() as client:
        long_auth = client.post(f"/ExternalData/Accept/{scenario['id']}", json={}, headers={"Authorization": "Bearer " + "a" * 20_000})
        long_key = client.get(f"/ExternalData/GetCacheData/{scenario['id']}", params={"keyJson": json.dumps("k" * 10_000)})
    assert long_auth.status_code in (400, 401, 431) and "Traceback" not in long_auth.text
    assert long_key.status_code in (400, 414) and "Traceback" not in long_key.text
    assert junction.run_count(scenario["id"]) == 0


def test_duplicate_query_parameters_do_not_pick_a_winner(junction: Junction, trigger_token: str) -> None:
    """The host joins a repeated parameter's values with ",": ``keyJson=[1&keyJson=2]`` would
    become the key ``[1,2]``. Every such request is refused and writes nothing."""
    scenario = junction.create_scenario(externalTriggers={"enabled": True, "allowAnonymous": True})
    sid = scenario["id"]
    with junction.admin() as admin:
        admin.put(f"/management/scenarios/{sid}/cache", params={"keyJson": '"a"'}, json="secret-a")
        write = admin.put(f"/management/scenarios/{sid}/cache?keyJson=%5B1&keyJson=2%5D", json="forged")
        listing = admin.get("/management/scenarios?$top=1&$top=2")
        joined = admin.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": "[1,2]"})
    with junction.client() as client:
        read = client.get(f"/ExternalData/GetCacheData/{sid}?keyJson=%22a%22&keyJson=%22b%22")
        renamed = client.get(f"/ExternalData/GetCacheData/{sid}?keyJson=%22a%22&key%4Ason=%22b%22")
    for response in (write, listing, read, renamed):
        assert_json_error(response, 400, "RepeatedQueryParameter")
    assert joined.status_code == 404  # the forged write stored nothing


def test_unicode_normalisation_in_user_names_is_one_user(junction: Junction) -> None:
    composed, decomposed = "J\u00fcrgen-" + "x", "Ju\u0308rgen-" + "x"
    with junction.admin() as admin:
        assert admin.post("/management/users", json={"username": composed, "password": "a long password"}).status_code == 201
        duplicate = admin.post("/management/users", json={"username": decomposed.upper(), "password": "another password"})
        assert_json_error(duplicate, 409)
        names = [u["username"] for u in admin.get("/management/users").json()["value"]]
    assert names.count(composed) == 1 and decomposed.upper() not in names


def test_unicode_forms_of_a_cache_key_are_distinct_keys(junction: Junction, scenario: dict[str, Any]) -> None:
    """Keys compare as canonical JSON text, code point by code point, as documented: a decomposed
    key never reads the composed key's value."""
    sid = scenario["id"]
    with junction.admin() as admin:
        assert admin.put(f"/management/scenarios/{sid}/cache", params={"keyJson": json.dumps("caf\u00e9")}, json="composed").status_code == 204
        assert admin.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": json.dumps("cafe\u0301")}).status_code == 404
        assert admin.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": '"caf\\u00e9"'}).json() == "composed"


@pytest.mark.parametrize("number", [2**31, 2**63, 2**63 + 1, -(2**63) - 1, 10**30, 1.5e308])
def test_big_numbers_round_trip_exactly(junction: Junction, scenario: dict[str, Any], number: int | float) -> None:
    sid = scenario["id"]
    with junction.admin() as admin:
        text = json.dumps({"n": number})
        response = admin.post(f"/ExternalData/Accept/{sid}", content=text, headers={"Content-Type": "application/json"})
        assert response.status_code == 200
        run = junction.wait_for_run(sid, response.headers["X-Run-Id"])
        assert run["output"]["echo"] == {"n": number}
        cached = admin.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": '"last"'})
        assert cached.text == json.dumps({"n": number}, separators=(",", ":"))


@pytest.mark.parametrize("body", [b'{"n": NaN}', b'{"n": Infinity}', b'{"n": -Infinity}', b'{"n": 1e999}', b'{"n": 1, "n": 2}', b'{"a": {"b": 1, "b": 1}}'])
def test_non_json_numbers_and_duplicate_keys_are_400_and_store_nothing(junction: Junction, scenario: dict[str, Any], body: bytes) -> None:
    with junction.admin() as admin:
        accept = admin.post(f"/ExternalData/Accept/{scenario['id']}", content=body, headers={"Content-Type": "application/json"})
        cache = admin.put(f"/management/scenarios/{scenario['id']}/cache", params={"keyJson": '"k"'}, content=body, headers={"Content-Type": "application/json"})
        key = admin.get(f"/ExternalData/GetCacheData/{scenario['id']}", params={"keyJson": body.decode()})
    assert_json_error(accept, 400, "InvalidJson")
    assert_json_error(cache, 400, "InvalidJson")
    assert_json_error(key, 400, "InvalidKey")
    assert junction.run_count(scenario["id"]) == 0
    with junction.admin() as admin:
        assert admin.get(f"/ExternalData/GetCacheData/{scenario['id']}", params={"keyJson": '"k"'}).status_code == 404


def test_xml_declaring_an_unknown_encoding_is_400_and_stores_nothing(junction: Junction, scenario: dict[str, Any]) -> None:
    with junction.admin() as admin:
        response = admin.post(f"/ExternalData/Accept/{scenario['id']}", content=b'<?xml version="1.0" encoding="ebcdic"?><a/>', headers={"Content-Type": "application/xml"})
    assert_json_error(response, 400, "InvalidXml")
    assert junction.run_count(scenario["id"]) == 0


def test_compressed_bodies_are_415_and_store_nothing(junction: Junction, scenario: dict[str, Any]) -> None:
    """A body labelled gzip is neither decompressed (a bomb could pass the size limit) nor read as
    if it were plain (it would store something the caller did not mean)."""
    import gzip

    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with junction.admin() as admin:
        accept = admin.post(f"/ExternalData/Accept/{scenario['id']}", content=gzip.compress(b'{"a": 1}'), headers=headers)
        mislabelled = admin.post(f"/ExternalData/Accept/{scenario['id']}", content=b'{"a": 1}', headers=headers)
        cache = admin.put(f"/management/scenarios/{scenario['id']}/cache", params={"keyJson": '"k"'}, content=b'"v"', headers=headers)
        cached = admin.get(f"/ExternalData/GetCacheData/{scenario['id']}", params={"keyJson": '"k"'})
    for response in (accept, mislabelled, cache):
        assert_json_error(response, 415, "UnsupportedContentEncoding")
        assert response.headers["Accept-Encoding"] == "identity"
    assert cached.status_code == 404
    assert junction.run_count(scenario["id"]) == 0


def test_oversized_and_malformed_management_requests(junction: Junction) -> None:
    with junction.admin() as admin:
        huge = admin.post("/management/scenarios", content=b'{"name": "' + b"x" * (5 * 1024 * 1024) + b'"}', headers={"Content-Type": "application/json"})
        assert_json_error(huge, 413)
        wrong_type = admin.post("/management/tokens", content=b"\xff\xfe", headers={"Content-Type": "application/json"})
        assert_json_error(wrong_type, 400)


def test_forged_forwarding_headers_do_not_change_the_scheme(junction: Junction) -> None:
    """devhost drops X-Forwarded-Proto from callers (as App Service overwrites it): an https-only
    operation cannot be reached over http by claiming https."""
    document = {"openapi": "3.0.3", "info": {"title": "p", "version": "1"}, "servers": [{"url": "/forged"}],
                "paths": {"/x": {"get": {"operationId": "x", "responses": {"200": {"description": "ok"}}}}}}  # fmt: skip
    scenario = junction.create_scenario(process={"steps": [{"type": "return", "value": "in"}]})
    with junction.admin() as admin:
        assert admin.put("/management/apis/forged", json=document).status_code in (200, 201)
        binding = {"scenarioId": scenario["id"], "authentication": {"type": "none"}, "allowedProtocols": ["https"]}
        assert admin.put("/management/apis/forged/operations/x", json=binding).status_code == 200
    try:
        with httpx.Client(base_url=junction.url, timeout=30) as client:
            response = client.get("/forged/x", headers={"X-Forwarded-Proto": "https", "X-ARR-SSL": "yes"})
        assert_json_error(response, 403)
        assert junction.run_count(scenario["id"]) == 0
    finally:
        with junction.admin() as admin:
            admin.delete("/management/apis/forged")


# -- Lone surrogates (issue 13.6): refused wherever JSON or YAML is parsed -----------------------

LONE_SURROGATES = ["\\ud800", "\\udfff", "x\\udc00\\ud800y", "\\ud83d", "\\uDBFF\\u0041"]
"""JSON escapes of surrogates that do not form a pair: no Unicode character, never UTF-8."""


def _anonymous_api(junction: Junction, name: str, process: dict[str, Any]) -> str:
    document = {"openapi": "3.0.3", "info": {"title": name, "version": "1"}, "servers": [{"url": f"/{name}"}],
                "paths": {"/echo": {"post": {"operationId": "echo", "responses": {"200": {"description": "ok"}},
                          "requestBody": {"content": {"application/json": {"schema": {}}}}}}}}  # fmt: skip
    scenario = junction.create_scenario(process=process)
    with junction.admin() as admin:
        assert admin.put(f"/management/apis/{name}", json=document).status_code in (200, 201)
        assert admin.put(f"/management/apis/{name}/operations/echo", json={"scenarioId": scenario["id"]}).status_code == 200
    return str(scenario["id"])


@pytest.fixture(scope="module")
def echo_api(junction: Junction) -> Iterator[str]:
    sid = _anonymous_api(junction, "surrogates", {"steps": [{"type": "return", "value": "#trigger.data.body"}]})
    yield sid
    with junction.admin() as admin:
        admin.delete("/management/apis/surrogates")


@pytest.mark.parametrize("escape", LONE_SURROGATES)
def test_lone_surrogates_are_400_wherever_json_is_parsed(junction: Junction, echo_api: str, escape: str) -> None:
    anonymous = junction.create_scenario(externalTriggers={"enabled": True, "allowAnonymous": True})
    sid = anonymous["id"]
    text = f'"{escape}"'
    as_value, as_key = f'{{"a": {text}}}'.encode(), f'{{{text}: 1}}'.encode()
    json_type = {"Content-Type": "application/json"}
    with junction.client() as client, junction.admin() as admin:
        answers = [
            client.post(f"/ExternalData/Accept/{sid}", content=as_value, headers=json_type),
            client.post(f"/ExternalData/Accept/{sid}", content=as_key, headers=json_type),
            client.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": text}),
            client.post("/surrogates/echo", content=as_value, headers=json_type),
            client.post("/surrogates/echo", content=as_key, headers=json_type),
            admin.put(f"/management/scenarios/{sid}/cache", params={"keyJson": text}, json=1),
            admin.put(f"/management/scenarios/{sid}/cache", params={"keyJson": '"k"'}, content=as_value, headers=json_type),
            admin.post("/management/scenarios", content=f'{{"name": {text}, "process": {{"steps": []}}}}'.encode(), headers=json_type),
            admin.patch(f"/management/scenarios/{sid}", content=f'{{"description": {text}}}'.encode(), headers=json_type),
            admin.post("/management/tokens", content=f'{{"name": {text}, "scopes": ["trigger"]}}'.encode(), headers=json_type),
            admin.post("/management/apikeys", content=f'{{"name": {text}, "ruleset": [{{"path": "/x"}}]}}'.encode(), headers=json_type),
            admin.post("/management/users", content=f'{{"username": {text}, "password": "long enough"}}'.encode(), headers=json_type),
            admin.post("/management/users", content=f'{{"username": "u", "password": "long enough{escape}"}}'.encode(), headers=json_type),
            admin.put("/management/apis/lone", content=f'{{"openapi": "3.0.3", "info": {{"title": {text}, "version": "1"}}, "paths": {{}}}}'.encode(), headers=json_type),
            admin.put("/management/apis/lone", content=f'openapi: 3.0.3\ninfo: {{title: {text}, version: "1"}}\npaths: {{}}\n'.encode(), headers={"Content-Type": "application/yaml"}),
            admin.put("/management/apis/surrogates/operations/echo", content=f'{{"scenarioId": "{echo_api}", "cors": {{"allowedOrigins": {text}}}}}'.encode(), headers=json_type),
        ]  # fmt: skip
    for response in answers:
        error = assert_json_error(response, 400)
        assert "surrogate" in error["message"], (response.request.url, error)
    assert junction.run_count(sid) == 0 and junction.run_count(echo_api) == 0
    with junction.admin() as admin:
        names = json.dumps([admin.get(p).json() for p in ("/management/tokens", "/management/apikeys", "/management/users", "/management/apis")])
        assert "\\ud" not in names.lower()
        assert admin.get(f"/management/scenarios/{sid}").json().get("description") is None


def test_every_listing_and_read_survives_a_lone_surrogate_already_stored(junction: Junction) -> None:
    """Values stored before lone surrogates were refused (Table Storage takes them) are still
    listed and read: written back with \\u escapes, never a 500."""
    from core.kernel import clock
    from core.kernel.ids import new_id, new_run_id
    from core.kernel.jsonvalue import dumps
    from core.runs import records as runs

    bad = "bad\ud800name\udfff"
    scenario = junction.create_scenario()
    sid = scenario["id"]
    run_id = new_run_id()
    runs.insert_run(junction.storage, sid, run_id, {"type": "accept", "caller": {"kind": "pat", "name": bad}})
    junction.storage.table("runs").update_entity({
        "PartitionKey": sid, "RowKey": run_id, "Status": "failed", "ErrorParts": 1, "Error0": bad.encode("utf-8", "surrogatepass"),
        "OutputParts": 1, "Output0": json.dumps({bad: [bad]}).encode(),
    }, mode="merge")  # fmt: skip
    junction.storage.table("tokens").create_entity({"PartitionKey": "token", "RowKey": new_id().replace("-", ""), "Name": bad, "Hash": "0" * 64, "Scopes": "trigger", "CreatedAt": clock.now_iso()})
    junction.storage.table("users").create_entity({"PartitionKey": "user", "RowKey": "f" * 64, "Username": bad, "Salt": "", "Hash": "", "CreatedAt": clock.now_iso()})
    junction.storage.table("apikeys").create_entity({"PartitionKey": "apikey", "RowKey": "e" * 32, "Name": bad, "Hash": "0" * 64, "RulesetParts": 1, "Ruleset0": b"[]", "CreatedAt": clock.now_iso()})
    stored = b'{"name": "stored \\ud800", "externalTriggers": {"enabled": true, "allowAnonymous": false}, "process": {"steps": []}}'
    other = new_id()
    junction.storage.table("scenarios").create_entity({"PartitionKey": "scenario", "RowKey": other, "Name": bad, "DocParts": 1, "Doc0": stored, "CreatedAt": clock.now_iso(), "UpdatedAt": clock.now_iso()})
    from core.scenarios.cache import ScenarioCache

    ScenarioCache(junction.storage, sid).set("k", "placeholder")  # then the stored value is replaced by one with a lone surrogate
    cached = [e for e in junction.storage.table("cache").query_entities("PartitionKey eq @pk", parameters={"pk": sid})]
    assert len(cached) == 1
    junction.storage.table("cache").update_entity({"PartitionKey": sid, "RowKey": cached[0]["RowKey"], "ValueParts": 1, "Value0": b'{"v": "\\ud800"}'}, mode="merge")
    try:
        with junction.admin() as admin:
            cache_read = admin.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": '"k"'})
            assert cache_read.status_code == 200, cache_read.text
            assert cache_read.json() == {"v": "\ud800"}
            reads = [
                admin.get("/management/tokens"), admin.get("/management/users"), admin.get("/management/apikeys"),
                admin.get("/management/scenarios", params={"top": "1000"}), admin.get(f"/management/scenarios/{other}"),
                admin.get(f"/management/scenarios/{sid}/runs"), admin.get(f"/management/scenarios/{sid}/runs/{run_id}"),
            ]  # fmt: skip
        for response in reads:
            assert response.status_code == 200, (response.request.url, response.text[:300])
            assert response.content.isascii() or response.content.decode("utf-8")
            response.json()
        run = reads[-1].json()
        assert run["error"].startswith("bad") and run["trigger"]["caller"]["name"] == bad and run["output"] == {bad: [bad]}
        assert dumps(run)  # the escapes read back as the stored value
        assert reads[4].json()["name"] == "stored \ud800"
    finally:
        with junction.admin() as admin:
            admin.delete(f"/management/scenarios/{other}")
        junction.storage.table("users").delete_entity("user", "f" * 64)
        junction.storage.table("apikeys").delete_entity("apikey", "e" * 32)


# -- Control characters (issue 13): refused in names, never sent raw in a header ---------------

CONTROL_CHARACTERS = ["\x00", "\x01", "\t", "\n", "\x0b", "\r", "\x1b", "\x7f", "\x85", "\x9f"]


@pytest.mark.parametrize("char", CONTROL_CHARACTERS)
def test_names_with_control_characters_are_400_and_store_nothing(junction: Junction, char: str) -> None:
    """Names reach logs, listings and terminals: ``"ci\\nFAKE LOG LINE"`` would forge a log line."""
    with junction.admin() as admin:
        for name in (f"ci{char}x", f"ci{char}", f"{char}ci"):
            answers = [
                admin.post("/management/scenarios", json={"name": name, "process": {"steps": []}}),
                admin.post("/management/tokens", json={"name": name, "scopes": ["trigger"]}),
                admin.post("/management/apikeys", json={"name": name, "ruleset": [{"path": "/x"}]}),
                admin.post("/management/users", json={"username": name, "password": "long enough"}),
            ]
            for response in answers:
                assert_json_error(response, 400)
        listed = [admin.get(p).json()["value"] for p in ("/management/tokens", "/management/apikeys", "/management/users")]
    assert char not in json.dumps(listed, ensure_ascii=False)


@pytest.fixture(scope="module")
def result_api(junction: Junction) -> Iterator[str]:
    """``POST /results/echo``: the process returns the request body as its result."""
    sid = _anonymous_api(junction, "results", {"steps": [{"type": "return", "value": "#trigger.data.body"}]})
    yield sid
    with junction.admin() as admin:
        admin.delete("/management/apis/results")


@pytest.mark.parametrize("char", [*CONTROL_CHARACTERS, "\u2028", "\u00e9", "\ufeff"])
def test_control_characters_in_process_response_headers_are_invalid_results(junction: Junction, result_api: str, char: str) -> None:
    """Only CR, LF and NUL were filtered: a vertical tab aborted the connection, U+2028 gave an
    empty 500, \\x01 was sent raw. RFC 9110 field values are visible ASCII with inner spaces
    and tabs; anything else makes the result unusable (issue 13.10)."""
    headers = [{"Key": "X-Ok", "Value": "fine"}, {"Key": "X-Value", "Value": f"a{char}b"}]
    with junction.client() as client:
        bad = client.post("/results/echo", json={"HttpStatusCode": 200, "Content": "x", "HttpHeaders": headers})
        name = client.post("/results/echo", json={"HttpStatusCode": 200, "Content": "x", "HttpHeaders": [{"Key": f"X{char}Name", "Value": "v"}]})
        content_type = client.post("/results/echo", json={"HttpStatusCode": 200, "Content": "x", "ContentType": f"text/plain{char}"})
        fine = client.post("/results/echo", json={"HttpStatusCode": 200, "Content": "x", "HttpHeaders": headers[:1]})
    if char == "\t":  # a tab inside a value is allowed
        assert bad.status_code == 200 and bad.headers["X-Value"] == "a\tb"
    else:
        assert_json_error(bad, 500, "InvalidProcessResult")
        assert "X-Value" not in bad.headers and "X-Ok" not in bad.headers
    assert_json_error(name, 500, "InvalidProcessResult")
    if char != "\t":
        assert_json_error(content_type, 500, "InvalidProcessResult")
    assert fine.status_code == 200 and fine.headers["X-Ok"] == "fine"


@pytest.mark.parametrize(
    "result",
    [*({"HttpStatusCode": 200, "Content": "x", "ContentEncoding": e} for e in ("rot13", "base64", "hex", "zlib", "utf\r\n8", "idna")),
     {"HttpStatusCode": "\u00b2", "Content": "x"}, {"HttpStatusCode": "\u0662\u0660\u0660", "Content": "x"}],
)  # fmt: skip
def test_unusable_process_results_are_invalid_process_results(junction: Junction, result_api: str, result: dict[str, Any]) -> None:
    """These escaped as InternalError (a traceback in the log, nothing to tell the scenario's
    author) or put CR LF into Content-Type (issue 13.11)."""
    with junction.client() as client:
        response = client.post("/results/echo", json=result)
    assert_json_error(response, 500, "InvalidProcessResult")
    assert "\r" not in str(response.headers)


def test_a_result_made_with_a_lone_surrogate_is_an_invalid_result(junction: Junction) -> None:
    """A JMESPath literal can make a lone surrogate that no request could carry."""
    sid = _anonymous_api(junction, "madesurrogate", {"steps": [{"type": "return", "value": {"jmespath": '`"\\ud800"`'}}]})
    try:
        with junction.client() as client:
            response = client.post("/madesurrogate/echo", json={})
        assert_json_error(response, 500, "InvalidProcessResult")
        with junction.admin() as admin:
            assert admin.get(f"/management/scenarios/{sid}/runs").status_code == 200
    finally:
        with junction.admin() as admin:
            admin.delete("/management/apis/madesurrogate")


# -- signed webhooks and status URLs (issue 17.3-4) ------------------------------------------


@pytest.fixture
def signed(junction: Junction) -> dict[str, Any]:
    """A Stripe-signed webhook scenario with a 60 s tolerance."""
    signature = {"scheme": "stripe", "secret": {"secret": HOOK_SECRET_NAME}, "toleranceSeconds": 60}
    return junction.create_scenario(externalTriggers={"enabled": True, "allowAnonymous": True, "signature": signature})


def _stripe(body: bytes, t: int) -> str:
    return f"t={t},v1=" + hmac.new(HOOK_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def _post_signed(junction: Junction, scenario: dict[str, Any], body: bytes, headers: list[tuple[str, str]]) -> tuple[int, bytes]:
    return _raw(junction, "POST", f"/ExternalData/Accept/{scenario['id']}", [("Content-Type", "application/json"), *headers], body)


def test_clock_skew_within_the_tolerance_is_accepted_beyond_it_refused(junction: Junction, signed: dict[str, Any]) -> None:
    now = int(time.time())
    # Ten seconds of margin from each edge keep the test about skew, not about the clock between
    # signing and arriving (the exact edges are tests/integration/test_replays_and_links.py's).
    for n, offset in enumerate((-50, 50)):
        body = json.dumps({"skew": offset, "n": n}).encode()
        status, text = _post_signed(junction, signed, body, [("Stripe-Signature", _stripe(body, now + offset))])
        assert status == 200, text
    for offset in (-70, 70, -(10**9), 10**10):
        body = json.dumps({"skew": offset}).encode()
        status, text = _post_signed(junction, signed, body, [("Stripe-Signature", _stripe(body, now + offset))])
        assert status == 401 and json.loads(text)["error"]["code"] == "InvalidSignature", text
    assert junction.run_count(signed["id"]) == 2


def test_signature_header_names_in_any_case_and_a_repeated_header(junction: Junction, signed: dict[str, Any]) -> None:
    now = int(time.time())
    for n, name in enumerate(("stripe-signature", "STRIPE-SIGNATURE", "sTrIpE-sIgNaTuRe")):
        body = json.dumps({"case": n}).encode()
        status, text = _post_signed(junction, signed, body, [(name, _stripe(body, now))])
        assert status == 200, (name, text)
    body = b'{"twice": true}'
    # Two Stripe-Signature headers reach the app joined with ", ": still one t and its v1s.
    twice = [("Stripe-Signature", f"t={now},v1={'0' * 64}"), ("Stripe-Signature", _stripe(body, now))]
    status, text = _post_signed(junction, signed, body, twice)
    assert status in (200, 401), text  # whichever way the host joins them, never a 5xx
    for value in ("t=,v1=", "t=1,v1=" + "g" * 64, "v1=" + "a" * 64 + ",t=" + str(now) + "\r", "\u00e9=1", "t=" + "9" * 400):
        status, text = _post_signed(junction, signed, b"{}", [("Stripe-Signature", value.encode("latin-1", "replace").decode("latin-1").replace("\r", ""))])
        assert status == 401, (value, text)


def test_a_replay_is_refused_up_to_the_end_of_its_window_and_never_starts_a_run(junction: Junction, signed: dict[str, Any]) -> None:
    now = int(time.time())
    body = b'{"edge": "old"}'
    header = [("Stripe-Signature", _stripe(body, now - 50))]  # close to the window's end
    assert _post_signed(junction, signed, body, header)[0] == 200
    for _ in range(3):
        status, text = _post_signed(junction, signed, body, header)
        assert status == 409 and json.loads(text)["error"]["code"] == "Replayed", text
    assert junction.run_count(signed["id"]) == 1


def test_status_urls_tampered_or_made_up_are_404_without_a_reason(junction: Junction) -> None:
    for token in ("", "a.b", "a" * 1025, "eyJzIjoieCJ9.AAAA", "..", "%2E%2E", "x.y.z", "%F0%9F%98%80.x"):
        status, text = _raw(junction, "GET", f"/ExternalData/RunStatus/{token}")
        assert status in (400, 404) and b"Traceback" not in text, (token, status, text)
        assert json.loads(text)["error"]["code"], text  # dot segments are the host's 400 InvalidPath
        if status == 404 and "." in token and token not in ("..", "%2E%2E"):
            assert json.loads(text)["error"]["code"] == "LinkNotFound", (token, text)


# -- Forged client addresses (issue 17.1): a caller never chooses the address an allow-list sees --


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Forwarded-For", "203.0.113.9")],
        [("x-forwarded-for", "203.0.113.9"), ("X-Forwarded-For", "203.0.113.9")],  # repeated: joined by the host
        [("X-FORWARDED-FOR", "203.0.113.9, 203.0.113.9:443")],
        [("X-Forwarded-For", "::ffff:203.0.113.9")],
        [("X-Forwarded-For", "203.0.113.9" + ", 203.0.113.9" * 500)],
        [("X-Client-IP", "203.0.113.9"), ("Client-IP", "203.0.113.9"), ("X-Real-IP", "203.0.113.9")],
        [("Forwarded", "for=203.0.113.9"), ("X-Original-Forwarded-For", "203.0.113.9")],
    ],
)
def test_forged_client_addresses_do_not_pass_an_allow_list(junction: Junction, trigger_token: str, headers: list[tuple[str, str]]) -> None:
    scenario = junction.create_scenario(externalTriggers={"enabled": True, "ipAllowList": ["203.0.113.9"]})
    auth = [("Authorization", f"Bearer {trigger_token}"), ("Content-Type", "application/json")]
    status, body = _raw(junction, "POST", f"/ExternalData/Accept/{scenario['id']}", [*auth, *headers], b"{}")
    assert status == 403, body
    assert json.loads(body)["error"]["code"] == "IpNotAllowed"
    assert junction.run_count(scenario["id"]) == 0
