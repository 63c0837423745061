"""IP allow-lists, rate limits and admission control over real HTTP, through devhost on Azurite.

``front`` is a pair of devhosts on one table prefix that play App Service's front end
(``--trust-forwarded-client-cert``: X-Forwarded-For reaches the app as sent), so a test can be
any client address; the session's ``junction`` is a devhost as a caller meets it, which drops a
client's own X-Forwarded-For.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.identity.tokens import create_token
from devhost.azurite import Azurite
from tests.e2e.conftest import ROOT, Junction, assert_json_error, serve_junction

DOCS = ROOT / "tests" / "support" / "openapi"
FRONT_ARGS = ["--no-queues", "--no-timers", "--trust-forwarded-client-cert"]
ECHO = {"steps": [{"type": "return", "value": {"jmespath": "trigger.data"}}]}


@pytest.fixture(scope="module")
def front(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Junction, Junction]]:
    with (
        serve_junction(azurite, "traffic", tmp_path_factory.mktemp("front-a"), args=FRONT_ARGS) as a,
        serve_junction(azurite, "traffic", tmp_path_factory.mktemp("front-b"), args=FRONT_ARGS) as b,
    ):
        yield a, b


@pytest.fixture(scope="module")
def token(front: tuple[Junction, Junction]) -> str:
    return create_token(front[0].storage, name="traffic trigger", scopes=["trigger"]).token


def _from(address: str) -> dict[str, str]:
    """What App Service's front end sends: whatever the caller sent, then the peer it saw."""
    return {"X-Forwarded-For": f"198.51.100.66, {address}"}


def _idempotency_claims(junction: Junction, scenario_id: str) -> int:
    table = junction.storage.table("idempotency")
    return len(list(table.query_entities("PartitionKey eq @pk", parameters={"pk": scenario_id})))


# IP allow-lists


def test_allow_list_reads_the_front_ends_entry_and_decides_first(front: tuple[Junction, Junction], token: str) -> None:
    junction = front[0]
    scenario = junction.create_scenario(
        externalTriggers={"enabled": True, "ipAllowList": ["203.0.113.0/24", "2001:db8::/32"]}
    )
    sid = scenario["id"]
    assert scenario["externalTriggers"]["ipAllowList"] == ["203.0.113.0/24", "2001:db8::/32"]
    url = f"/ExternalData/Accept/{sid}"
    with junction.client(token) as client:
        allowed = client.post(url, json={"n": 1}, headers=_from("203.0.113.9:54321"))
        assert allowed.status_code == 200, allowed.text
        v6 = client.post(url, json={"n": 2}, headers=_from("[2001:db8::7]:443"))
        assert v6.status_code == 200, v6.text
        # The caller's own first entry names an allowed address; the front end's does not.
        forged = client.post(url, json={"n": 3}, headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7:5000", "Idempotency-Key": "k1"})
        assert_json_error(forged, 403, "IpNotAllowed")
        assert "WWW-Authenticate" not in forged.headers
        cache = client.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": '"last"'}, headers=_from("198.51.100.7"))
        assert_json_error(cache, 403, "IpNotAllowed")
        edge = client.post(url, headers=_from("203.0.114.0"))  # one past the range's last address
        assert_json_error(edge, 403, "IpNotAllowed")
    # Decided before the caller: no credentials, or bad ones, still get 403 from outside the list.
    with junction.client("jct_not_a_real_token") as bad:
        assert_json_error(bad.post(url, headers=_from("198.51.100.7")), 403, "IpNotAllowed")
        assert_json_error(bad.post(url, headers=_from("203.0.113.9")), 401)
    assert junction.run_count(sid) == 2
    assert _idempotency_claims(junction, sid) == 0
    run = junction.wait_for_run(sid, allowed.headers["X-Run-Id"], timeout=1)
    assert run["trigger"]["data"]["httpClientIp"] == "203.0.113.9"


def test_devhost_drops_a_forged_forwarded_for_in_any_case(junction: Junction, trigger_token: str) -> None:
    outside = junction.create_scenario(externalTriggers={"enabled": True, "ipAllowList": ["203.0.113.9"]})
    loopback = junction.create_scenario(externalTriggers={"enabled": True, "ipAllowList": ["127.0.0.0/8", "::1"]})
    with junction.client(trigger_token) as client:
        for name in ("X-Forwarded-For", "x-forwarded-for", "X-FORWARDED-FOR", "x-Forwarded-fOR"):
            refused = client.post(f"/ExternalData/Accept/{outside['id']}", headers={name: "203.0.113.9"})
            assert_json_error(refused, 403, "IpNotAllowed")
        ok = client.post(f"/ExternalData/Accept/{loopback['id']}", json={"a": 1}, headers={"X-Forwarded-For": "203.0.113.9"})
        assert ok.status_code == 200, ok.text
    assert junction.run_count(outside["id"]) == 0
    run = junction.wait_for_run(loopback["id"], ok.headers["X-Run-Id"])
    assert run["status"] == "succeeded"
    assert run["output"]["echo"] == {"a": 1}


def _bind(junction: Junction, api: str, operation: str, scenario_id: str, **binding: Any) -> httpx.Response:
    with junction.admin() as admin:
        return admin.put(f"/management/apis/{api}/operations/{operation}", json={"scenarioId": scenario_id, **binding})


@pytest.fixture(scope="module")
def petstore(front: tuple[Junction, Junction]) -> dict[str, Any]:
    with front[0].admin() as admin:
        imported = admin.put(
            "/management/apis/trafficpets",
            content=(DOCS / "petstore-openapi30.yaml").read_bytes(),
            headers={"Content-Type": "application/yaml"},
        )
    assert imported.status_code in (200, 201), imported.text
    return front[0].create_scenario(process=ECHO)


def test_binding_allow_list_comes_before_authentication_and_preflights(front: tuple[Junction, Junction], petstore: dict[str, Any]) -> None:
    junction = front[0]
    bound = _bind(
        junction, "trafficpets", "getPetById", petstore["id"],
        authentication={"type": "apiKey"}, ipAllowList=["203.0.113.0/24"], cors={"allowedOrigins": ["https://app.example"]},
    )  # fmt: skip
    assert bound.status_code == 200, bound.text
    assert bound.json()["binding"]["ipAllowList"] == ["203.0.113.0/24"]
    with junction.client() as client:
        outside = client.get("/api/pet/5", headers=_from("198.51.100.7"))
        assert_json_error(outside, 403, "IpNotAllowed")
        preflight = client.options(
            "/api/pet/5",
            headers={**_from("198.51.100.7"), "Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
        )
        assert_json_error(preflight, 403, "IpNotAllowed")
        inside = client.get("/api/pet/5", headers=_from("203.0.113.20"))
        assert_json_error(inside, 401)  # inside the list, the binding's own authentication decides
    assert junction.run_count(petstore["id"]) == 0


def test_bad_allow_lists_are_400_over_http(front: tuple[Junction, Junction], petstore: dict[str, Any]) -> None:
    junction = front[0]
    with junction.admin() as admin:
        bad = admin.post(
            "/management/scenarios",
            json={"name": "x", "externalTriggers": {"ipAllowList": ["10.0.0.1/8"]}, "process": ECHO},
        )
    error = assert_json_error(bad, 400, "InvalidIpAllowList")
    assert error["message"].startswith("scenario.externalTriggers.ipAllowList[0]:")
    bad_binding = _bind(junction, "trafficpets", "searchPets", petstore["id"], rateLimit={"requestsPerMinute": 0})
    assert assert_json_error(bad_binding, 400)["message"].startswith("binding.rateLimit.requestsPerMinute")


# Rate limits


def test_scenario_rate_limit_answers_429_and_records_nothing(front: tuple[Junction, Junction], token: str) -> None:
    junction = front[0]
    scenario = junction.create_scenario(externalTriggers={"enabled": True, "rateLimit": {"requestsPerMinute": 1, "burst": 3}})
    sid = scenario["id"]
    url = f"/ExternalData/Accept/{sid}"
    with junction.client(token) as client:
        answers = [client.post(url, json={"n": n}, headers=_from("203.0.113.9")) for n in range(3)]
        refused = client.post(url, json={"n": 4}, headers={**_from("203.0.113.9"), "Idempotency-Key": "late"})
        cache = client.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": '"last"'}, headers=_from("203.0.113.9"))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["RateLimit"] for a in answers] == ['"scenario";r=2;t=60', '"scenario";r=1;t=60', '"scenario";r=0;t=60']
    assert answers[0].headers["RateLimit-Policy"] == '"scenario";q=3;w=180'
    assert_json_error(refused, 429, "RateLimited")
    assert 50 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Policy"] == '"scenario";q=3;w=180'
    assert refused.headers["RateLimit"] == f'"scenario";r=0;t={refused.headers["Retry-After"]}'
    assert_json_error(cache, 429, "RateLimited")  # GetCacheData counts against the same limit
    assert junction.run_count(sid) == 3
    assert _idempotency_claims(junction, sid) == 0


def test_per_credential_limits_are_separate_buckets(front: tuple[Junction, Junction]) -> None:
    junction = front[0]
    scenario = junction.create_scenario(
        externalTriggers={"enabled": True, "rateLimit": {"requestsPerMinute": 1, "burst": 1, "perCredential": True}}
    )
    url = f"/ExternalData/Accept/{scenario['id']}"
    first, second = (create_token(junction.storage, name=f"caller {n}", scopes=["trigger"]).token for n in (1, 2))
    with junction.client(first) as one, junction.client(second) as two:
        assert one.post(url).status_code == 200
        assert_json_error(one.post(url), 429, "RateLimited")
        assert two.post(url).status_code == 200
        assert_json_error(two.post(url), 429, "RateLimited")
    assert junction.run_count(scenario["id"]) == 2


def test_binding_rate_limit_answers_429_before_the_process_runs(front: tuple[Junction, Junction], petstore: dict[str, Any]) -> None:
    junction = front[0]
    bound = _bind(junction, "trafficpets", "getStatus", petstore["id"], rateLimit={"requestsPerMinute": 1, "burst": 2})
    assert bound.status_code == 200, bound.text
    assert bound.json()["binding"]["rateLimit"] == {"requestsPerMinute": 1, "burst": 2, "perCredential": False}
    before = junction.run_count(petstore["id"])
    with junction.client() as client:
        answers = [client.get("/api/pet/getStatus") for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200], answers[0].text
    assert answers[0].headers["RateLimit"] == '"operation";r=1;t=60'
    assert_json_error(answers[2], 429, "RateLimited")
    assert answers[2].headers["Retry-After"]
    assert junction.run_count(petstore["id"]) == before + 2


def test_two_instances_together_admit_no_more_than_the_limit(front: tuple[Junction, Junction], token: str) -> None:
    """Two devhosts on one Azurite share one bucket: 16 clients, 80 requests, burst 10, 1 a minute.

    The limiter admits at most ``burst + elapsed * rate`` (README, "Rate limits": exact on one
    clock; the documented tolerance is the instances' clock skew, zero here)."""
    burst, rate = 10, 1
    scenario = front[0].create_scenario(externalTriggers={"enabled": True, "rateLimit": {"requestsPerMinute": rate, "burst": burst}})
    sid = scenario["id"]
    statuses: list[int] = []
    lock = threading.Lock()

    def hammer(junction: Junction) -> None:
        with junction.client(token) as client:
            for _ in range(5):
                status = client.post(f"/ExternalData/Accept/{sid}", headers=_from("203.0.113.9")).status_code
                with lock:
                    statuses.append(status)

    threads = [threading.Thread(target=hammer, args=(front[n % 2],)) for n in range(16)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    admitted = statuses.count(200)
    assert sorted(set(statuses)) == [200, 429], statuses
    assert 1 <= admitted <= burst + math.floor(elapsed * rate / 60)
    assert front[0].run_count(sid) == admitted


# Admission control


@pytest.fixture(scope="module")
def bounded(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Junction]:
    extra = {"JUNCTION_MAX_RUN_QUEUE_DEPTH": "2"}
    args = ["--no-queues", "--no-timers"]
    with serve_junction(azurite, "admission", tmp_path_factory.mktemp("bounded"), extra_env=extra, args=args) as server:
        yield server


def test_accept_answers_503_while_the_run_queue_is_deeper_than_its_bound(bounded: Junction) -> None:
    scenario = bounded.create_scenario(externalTriggers={"enabled": True, "allowAnonymous": True})
    queue = bounded.storage.queue()
    for n in range(3):  # nothing runs them (--no-queues): the queue stays three deep
        queue.send_message(f'{{"backlog": {n}}}')
    with bounded.client() as client:
        refused = client.post(f"/ExternalData/Accept/{scenario['id']}", json={"n": 1}, headers={"Idempotency-Key": "x"})
        cache = client.get(f"/ExternalData/GetCacheData/{scenario['id']}", params={"keyJson": '"last"'})
    error = assert_json_error(refused, 503, "RunQueueFull")
    assert "3 queued" in error["message"]
    assert refused.headers["Retry-After"] == "30"
    assert cache.status_code == 404  # reading the cache starts nothing: not refused
    assert bounded.run_count(scenario["id"]) == 0
    assert _idempotency_claims(bounded, scenario["id"]) == 0


def test_the_readme_example_limits_as_described(front: tuple[Junction, Junction]) -> None:
    """README, "IP allow-lists, rate limits and admission control": the scenario as written, and
    the 429 its third Accept in a minute gets, as shown."""
    from tests.support.doc_examples import block

    junction = front[0]
    with junction.admin() as admin:
        created = admin.post("/management/scenarios", json=json.loads(block('README.md: "name": "Partner orders"').text))
    assert created.status_code == 201, created.text
    url = f"/ExternalData/Accept/{created.json()['id']}"
    shown = block("README.md: HTTP/1.1 429 Too Many Requests").text.splitlines()
    fields = dict(line.split(": ", 1) for line in shown[1:4])
    with junction.client() as client:
        assert_json_error(client.post(url, headers=_from("198.51.100.7")), 403, "IpNotAllowed")
        first = client.post(url, headers=_from("203.0.113.5"))
        second = client.post(url, headers=_from("[2001:db8::5]:443"))
        third = client.post(url, headers=_from("203.0.113.5"))
    assert (first.status_code, second.status_code) == (200, 200), first.text
    assert third.status_code == 429 and shown[0] == "HTTP/1.1 429 Too Many Requests"
    assert third.headers["RateLimit-Policy"] == fields["RateLimit-Policy"]
    # Retry-After counts down from 60 s while the three calls are made; the README shows 60.
    wait = int(third.headers["Retry-After"])
    assert 50 <= wait <= int(fields["Retry-After"])
    assert third.headers["RateLimit"] == fields["RateLimit"].replace("t=60", f"t={wait}")
    assert third.json() == json.loads(shown[-1])
    run = junction.wait_for_run(created.json()["id"], first.headers["X-Run-Id"], timeout=1)
    assert run["trigger"]["data"]["httpClientIp"] == "203.0.113.5"


def test_the_cli_binds_with_an_allow_list_and_a_rate_limit(front: tuple[Junction, Junction], petstore: dict[str, Any]) -> None:
    import os
    import subprocess
    import sys

    junction = front[0]
    env = {**os.environ, **junction.env, "JUNCTION_URL": junction.url, "JUNCTION_TOKEN": junction.admin_token}
    args = ["api", "bind", "trafficpets", "addPet", "--scenario", petstore["id"], "--ip-allow", "203.0.113.0/24", "--ip-allow", "2001:DB8::/32",
            "--rate-limit", "30", "--burst", "5", "--per-credential"]  # fmt: skip
    bound = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bound.returncode == 0, bound.stderr
    binding = json.loads(bound.stdout)["binding"]
    assert binding["ipAllowList"] == ["203.0.113.0/24", "2001:db8::/32"]
    assert binding["rateLimit"] == {"requestsPerMinute": 30, "burst": 5, "perCredential": True}
    bad = subprocess.run([sys.executable, "-m", "cli.main", *args[:6], "--ip-allow", "203.0.113.7/24"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "binding.ipAllowList[0]" in bad.stderr + bad.stdout


def test_an_async_operation_answers_503_too_while_the_queue_is_deep(bounded: Junction) -> None:
    """A binding with ``respond: async`` queues its run as Accept does, so the same bound holds."""
    scenario = bounded.create_scenario(process=ECHO)
    with bounded.admin() as admin:
        imported = admin.put(
            "/management/apis/boundedpets", content=(DOCS / "petstore-openapi30.yaml").read_bytes(), headers={"Content-Type": "application/yaml"}
        )
        assert imported.status_code in (200, 201), imported.text
        for operation, respond in (("getStatus", "async"), ("getPetById", "sync")):
            bound = admin.put(f"/management/apis/boundedpets/operations/{operation}", json={"scenarioId": scenario["id"], "respond": respond})
            assert bound.status_code == 200, bound.text
    queue = bounded.storage.queue()
    for n in range(3):
        queue.send_message(f'{{"backlog": {n}}}')
    with bounded.client() as client:
        refused = client.get("/api/pet/getStatus")
        answered = client.get("/api/pet/5")  # runs while its caller waits: not queued, not refused
    assert_json_error(refused, 503, "RunQueueFull")
    assert refused.headers["Retry-After"] == "30"
    assert answered.status_code == 200, answered.text
    assert bounded.run_count(scenario["id"]) == 1
