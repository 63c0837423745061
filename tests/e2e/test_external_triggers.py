"""The IntegrationHub URLs over real HTTP: Accept, GetCacheData, access rules and bad input."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.identity.tokens import create_token, revoke_token
from tests.e2e.conftest import MAX_BODY, Junction, assert_json_error

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_post_json_runs_the_scenario_and_get_cache_data_reads_it(junction: Junction, scenario: dict[str, Any], trigger_token: str) -> None:
    sid = scenario["id"]
    with junction.client(trigger_token) as client:
        response = client.post(f"/ExternalData/Accept/{sid}", json={"orderId": 42})
        assert response.status_code == 200
        assert response.content == b""
        run_id = response.headers["X-Run-Id"]
        assert GUID.match(run_id)
        run = junction.wait_for_run(sid, run_id)
        assert run["status"] == "succeeded", run
        assert run["output"] == {"echo": {"orderId": 42}, "caller": "pat"}
        cached = client.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": '"last"'})
        assert cached.status_code == 200
        assert cached.headers["content-type"].startswith("application/json")
        assert cached.json() == {"orderId": 42}


def test_trigger_urls_are_the_ones_callers_use(junction: Junction, scenario: dict[str, Any]) -> None:
    urls = scenario["triggerUrls"]
    assert urls["get"] == f"{junction.url}/ExternalData/Accept/{scenario['id']}"
    assert urls["cache"].startswith(f"{junction.url}/ExternalData/GetCacheData/{scenario['id']}?keyJson=")


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"<order><id>7</id><line>a</line><line>b</line></order>", "application/xml", {"order": {"id": "7", "line": ["a", "b"]}}),
        (b"<order><id>8</id></order>", "text/xml; charset=utf-8", {"order": {"id": "8"}}),
        (b"name=J%C3%BCrgen&qty=2", "application/x-www-form-urlencoded", {"name": "Jürgen", "qty": "2"}),
    ],
)
def test_xml_and_form_bodies_become_data0_body(junction: Junction, scenario: dict[str, Any], trigger_token: str, body: bytes, content_type: str, expected: Any) -> None:
    with junction.client(trigger_token) as client:
        response = client.post(f"/ExternalData/Accept/{scenario['id']}", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    run = junction.wait_for_run(scenario["id"], response.headers["X-Run-Id"])
    assert run["output"]["echo"] == expected


def test_get_accept_starts_a_run_without_a_body(junction: Junction, scenario: dict[str, Any], trigger_token: str) -> None:
    with junction.client(trigger_token) as client:
        response = client.get(f"/ExternalData/Accept/{scenario['id']}")
    assert response.status_code == 200
    run = junction.wait_for_run(scenario["id"], response.headers["X-Run-Id"])
    assert run["status"] == "succeeded" and run["trigger"]["method"] == "GET"


def test_anonymous_scenarios_need_no_credentials(junction: Junction) -> None:
    scenario = junction.create_scenario(externalTriggers={"enabled": True, "allowAnonymous": True})
    with junction.client() as client:
        response = client.post(f"/ExternalData/Accept/{scenario['id']}", json=[1, 2])
        assert response.status_code == 200
        assert junction.wait_for_run(scenario["id"], response.headers["X-Run-Id"])["status"] == "succeeded"
        assert client.get(f"/ExternalData/GetCacheData/{scenario['id']}?keyJson=%22last%22").json() == [1, 2]


def test_idempotency_key_over_http(junction: Junction, scenario: dict[str, Any], trigger_token: str) -> None:
    with junction.client(trigger_token) as client:
        url = f"/ExternalData/Accept/{scenario['id']}"
        first = client.post(url, json={"n": 1}, headers={"Idempotency-Key": "order-1"})
        second = client.post(url, json={"n": 1}, headers={"Idempotency-Key": "order-1"})
    assert first.headers["X-Run-Id"] == second.headers["X-Run-Id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert junction.run_count(scenario["id"]) == 1


def test_keys_are_compared_in_canonical_form(junction: Junction, trigger_token: str) -> None:
    scenario = junction.create_scenario(
        process={"steps": [{"type": "cache", "key": {"jmespath": "data[0].Body.key"}, "value": "#trigger.data.body.value"}]}
    )
    with junction.client(trigger_token) as client:
        response = client.post(f"/ExternalData/Accept/{scenario['id']}", json={"key": {"a": 1, "b": 2}, "value": "v"})
        junction.wait_for_run(scenario["id"], response.headers["X-Run-Id"])
        cached = client.get(f"/ExternalData/GetCacheData/{scenario['id']}", params={"keyJson": '{ "b": 2, "a": 1 }'})
    assert cached.status_code == 200 and cached.json() == "v"


def test_access_rules(junction: Junction, trigger_token: str) -> None:
    disabled = junction.create_scenario(externalTriggers={"enabled": False, "allowAnonymous": True})
    private = junction.create_scenario()
    missing = "00000000-0000-0000-0000-000000000000"
    with junction.client() as anonymous:
        # Without credentials a disabled, a private and a missing scenario look the same (issue 13).
        for sid in (disabled["id"], private["id"], missing):
            response = anonymous.post(f"/ExternalData/Accept/{sid}", json={})
            assert_json_error(response, 401, "AuthenticationRequired")
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert_json_error(anonymous.get(f"/ExternalData/GetCacheData/{sid}?keyJson=1"), 401, "AuthenticationRequired")
    with junction.client(trigger_token) as client:
        assert_json_error(client.post(f"/ExternalData/Accept/{disabled['id']}", json={}), 403, "TriggersDisabled")
        assert_json_error(client.get(f"/ExternalData/GetCacheData/{disabled['id']}?keyJson=1"), 403, "TriggersDisabled")
        assert_json_error(client.post(f"/ExternalData/Accept/{missing}", json={}), 404, "ScenarioNotFound")
        assert_json_error(client.get(f"/ExternalData/GetCacheData/{private['id']}?keyJson=%22nothing%22"), 404, "CacheEntryNotFound")
    with junction.client("jct_" + "0" * 75) as forged:  # bad credentials: 401 before the scenario is looked at
        assert_json_error(forged.post(f"/ExternalData/Accept/{missing}", json={}), 401, "InvalidToken")
    assert junction.run_count(disabled["id"]) == 0 and junction.run_count(private["id"]) == 0


def test_a_change_saved_through_the_host_holds_on_its_next_accept(junction: Junction) -> None:
    """The host answers Accept from a scenario it read within JUNCTION_SCENARIO_HOLD_SECONDS (1 s
    here), and a save through its management API forgets it: the next call sees the change."""
    with junction.admin() as admin, junction.client() as anonymous:
        created = admin.post("/management/scenarios", json={"name": "held", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": {"steps": [{"type": "return", "value": "ok"}]}})
        sid = created.json()["id"]
        assert anonymous.post(f"/ExternalData/Accept/{sid}", json={"n": 1}).status_code == 200  # read and held
        merge = {"Content-Type": "application/merge-patch+json"}
        off = admin.patch(f"/management/scenarios/{sid}", json={"externalTriggers": {"allowAnonymous": False}}, headers=merge)
        assert off.status_code == 200
        assert_json_error(anonymous.post(f"/ExternalData/Accept/{sid}", json={"n": 2}), 401, "AuthenticationRequired")
        assert_json_error(anonymous.get(f"/ExternalData/GetCacheData/{sid}?keyJson=1"), 401, "AuthenticationRequired")
        on = admin.patch(f"/management/scenarios/{sid}", json={"externalTriggers": {"allowAnonymous": True}}, headers=merge)
        assert on.status_code == 200
        assert anonymous.post(f"/ExternalData/Accept/{sid}", json={"n": 3}).status_code == 200
        assert admin.delete(f"/management/scenarios/{sid}").status_code == 204
        assert_json_error(anonymous.post(f"/ExternalData/Accept/{sid}", json={"n": 4}), 401, "AuthenticationRequired")
    assert junction.run_count(sid) == 2


def test_revoked_and_expired_tokens_are_refused_on_the_next_request(junction: Junction, scenario: dict[str, Any]) -> None:
    created = create_token(junction.storage, name="short-lived", scopes=["trigger"], expires_in_days=1)
    url = f"/ExternalData/Accept/{scenario['id']}"
    with junction.client(created.token) as client:
        assert client.post(url, json={}).status_code == 200
        junction.storage.table("tokens").update_entity(
            {"PartitionKey": "token", "RowKey": created.id, "ExpiresAt": "2021-01-01T00:00:00.000Z"}, mode="merge"
        )
        error = assert_json_error(client.post(url, json={}), 401, "TokenExpired")
        assert "expired" in error["message"]
    other = create_token(junction.storage, name="revoked", scopes=["trigger"])
    with junction.client(other.token) as client:
        assert client.post(url, json={}).status_code == 200
        revoke_token(junction.storage, other.id)
        response = client.post(url, json={})
        assert_json_error(response, 401, "InvalidToken")
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert junction.run_count(scenario["id"]) == 2


DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>'
)
XXE = b'<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>'


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"a": ', "application/json", 400, "InvalidJson"),
        (DEEP_JSON, "application/json", 400, "InvalidJson"),
        (b'{"a": 1, "a": 2}', "application/json", 400, "InvalidJson"),
        (b'{"n": NaN}', "application/json", 400, "InvalidJson"),
        (BILLION_LAUGHS, "application/xml", 400, "InvalidXml"),
        (XXE, "text/xml", 400, "InvalidXml"),
        (b"name=%C3%28", "application/x-www-form-urlencoded", 400, "InvalidForm"),
        (b"x" * (MAX_BODY + 1), "application/json", 413, "BodyTooLarge"),
        (b'{"a": 1}', "text/plain", 415, "UnsupportedContentType"),
        (b'{"a": 1}', "", 415, "UnsupportedContentType"),
        (b'{"a": 1}', "application/json; charset=utf-16", 415, "UnsupportedCharset"),
    ],
)
def test_bad_bodies_get_clear_errors_and_store_nothing(
    junction: Junction, scenario: dict[str, Any], trigger_token: str, body: bytes, content_type: str, status: int, code: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    with junction.client(trigger_token) as client:
        response = client.post(f"/ExternalData/Accept/{scenario['id']}", content=body, headers=headers)
    assert_json_error(response, status, code)
    assert junction.run_count(scenario["id"]) == 0


@pytest.mark.parametrize(
    "raw_id",
    ["not-a-guid", "1a990d32-1299-4c6e-9ac7-aa1800cde08", "1a990d32%2F1299-4c6e-9ac7-aa1800cde08d", "a%5Cb", "a%23b", "a%3Fb", "a%00b", "a%0Ab", "..%2F..%2Fetc"],
)
def test_scenario_ids_that_are_not_guids_are_400(junction: Junction, raw_id: str) -> None:
    with junction.client() as client:
        accept = client.post(f"/ExternalData/Accept/{raw_id}", json={})
        cache = client.get(f"/ExternalData/GetCacheData/{raw_id}?keyJson=1")
    for response in (accept, cache):
        assert_json_error(response, 400, "InvalidScenarioId")


@pytest.mark.parametrize(
    ("key_json", "code", "status"),
    [
        ("not json", "InvalidKey", 400),
        ("{'a': 1}", "InvalidKey", 400),
        ('"' + "k" * 3000 + '"', "KeyTooLong", 400),
        ("", "MissingKey", 400),
        ("\"x' or PartitionKey ne '\"", "CacheEntryNotFound", 404),
    ],
)
def test_bad_cache_keys(junction: Junction, trigger_token: str, key_json: str, code: str, status: int) -> None:
    scenario = junction.create_scenario()
    with junction.client(trigger_token) as client:
        junction.wait_for_run(scenario["id"], client.post(f"/ExternalData/Accept/{scenario['id']}", json="secret").headers["X-Run-Id"])
        response = client.get(f"/ExternalData/GetCacheData/{scenario['id']}", params={"keyJson": key_json})
    assert_json_error(response, status, code)


@pytest.mark.parametrize(
    "headers",
    [
        [("Authorization", "")],
        [("Authorization", "Bearer")],
        [("Authorization", "Basic dXNlcjpwYXNz")],
        [("Authorization", "Bearer jct_x"), ("Authorization", "Bearer jct_y")],
    ],
)
def test_empty_duplicate_or_foreign_authorization_is_401(junction: Junction, scenario: dict[str, Any], headers: list[tuple[str, str]]) -> None:
    with junction.client() as client:
        response = client.post(f"/ExternalData/Accept/{scenario['id']}", json={}, headers=headers)
    assert_json_error(response, 401)
    assert junction.run_count(scenario["id"]) == 0


def test_duplicate_authorization_with_a_valid_token_is_still_401(junction: Junction, scenario: dict[str, Any], trigger_token: str) -> None:
    headers = [("Authorization", f"Bearer {trigger_token}"), ("Authorization", f"Bearer {trigger_token}")]
    with junction.client() as client:
        response = client.post(f"/ExternalData/Accept/{scenario['id']}", json={}, headers=headers)
    assert_json_error(response, 401)
    assert junction.run_count(scenario["id"]) == 0
