"""Signed webhooks and 202 Accepted, through real HTTP against devhost on Azurite (issue 17.3-4).

Requests are signed the way each sender's documentation shows (GitHub: ``sha256=`` HMAC of the
body; Stripe: ``t=…,v1=…`` over ``"<t>.<body>"``; Slack: ``v0=`` over ``"v0:<ts>:<body>"``;
the generic scheme: the body's HMAC in hex). A replay is 409 ``Replayed`` and starts nothing; a
missing or bad signature is 401 ``InvalidSignature``; bad settings are 400 naming the field.

``"respond": "async"`` bindings answer 202 with a signed, expiring status URL; the status URL
answers 202 until the process has something to say, its early answer as soon as it has one; an
altered URL is 404, an expired one 410.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from core.app.api_calls import STATUS_PURPOSE, STATUS_ROUTE
from core.identity import links
from devhost.azurite import Azurite
from tests.e2e.conftest import Junction, assert_json_error, eventually, serve_junction
from tests.support.doc_examples import block
from tests.support.upstream import Upstream

SECRETS = {
    "JUNCTION_SECRET_GITHUB_HOOK": "It's a Secret to Everybody",
    "JUNCTION_SECRET_STRIPE_HOOK": "whsec_e2e_0123456789abcdef",
    "JUNCTION_SECRET_SLACK_HOOK": "8f742231b10e8888abcd99yyyzzz85a5",
    "JUNCTION_SECRET_PARTNER": "partner-shared-secret",
}
DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "hooks", "version": "1"},
    "paths": {
        "/hooks/partner": {"post": {"operationId": "partner", "responses": {"200": {"description": "ok"}}}},
        "/jobs": {"post": {"operationId": "startJob", "responses": {"202": {"description": "accepted"}}}},
        "/jobs-held": {"post": {"operationId": "startHeldJob", "responses": {"202": {"description": "accepted"}}}},
        "/jobs-sync": {"post": {"operationId": "syncJob", "responses": {"200": {"description": "ok"}}}},
        "/jobs-refused": {"post": {"operationId": "refusedJob", "responses": {"202": {"description": "accepted"}}}},
        "/jobs-broken": {"post": {"operationId": "brokenJob", "responses": {"202": {"description": "accepted"}}}},
    },
}


def mac(secret: str, *parts: bytes) -> str:
    return hmac.new(secret.encode(), b"".join(parts), hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def hooks(azurite: Azurite, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Junction]:
    extra = {**SECRETS, "JUNCTION_OUTBOUND_ALLOWED_HOSTS": upstream.host}
    with serve_junction(azurite, "e2ehooks", tmp_path_factory.mktemp("devhost-hooks"), extra_env=extra) as server:
        yield server


def webhook_scenario(hooks: Junction, scheme: str, secret: str, **extra: Any) -> dict[str, Any]:
    signature = {"scheme": scheme, "secret": {"secret": secret}, **extra}
    return hooks.create_scenario(externalTriggers={"enabled": True, "allowAnonymous": True, "signature": signature})


def accept(hooks: Junction, scenario: dict[str, Any], body: bytes, headers: dict[str, str]) -> httpx.Response:
    with hooks.client() as client:
        return client.post(f"/ExternalData/Accept/{scenario['id']}", content=body, headers={"Content-Type": "application/json", **headers})


def test_github_signed_accept_runs_once_and_its_replay_is_409(hooks: Junction) -> None:
    scenario = webhook_scenario(hooks, "github", "JUNCTION_SECRET_GITHUB_HOOK")
    assert scenario["externalTriggers"]["signature"] == {
        "scheme": "github", "secret": {"secret": "JUNCTION_SECRET_GITHUB_HOOK"}, "header": "X-Hub-Signature-256", "toleranceSeconds": 300,
    }  # fmt: skip
    body = b'{"action": "opened", "number": 1}'
    signed = {"X-Hub-Signature-256": "sha256=" + mac(SECRETS["JUNCTION_SECRET_GITHUB_HOOK"], body), "X-GitHub-Event": "issues"}
    first = accept(hooks, scenario, body, signed)
    assert first.status_code == 200, first.text
    run = hooks.wait_for_run(scenario["id"], first.headers["X-Run-Id"])
    assert run["status"] == "succeeded" and run["output"]["echo"] == {"action": "opened", "number": 1}
    assert_json_error(accept(hooks, scenario, body, signed), 409, "Replayed")
    assert hooks.run_count(scenario["id"]) == 1  # nothing started by the replay


def test_bad_or_missing_signatures_are_401_and_start_nothing(hooks: Junction) -> None:
    scenario = webhook_scenario(hooks, "github", "JUNCTION_SECRET_GITHUB_HOOK")
    body = b'{"n": 1}'
    good = "sha256=" + mac(SECRETS["JUNCTION_SECRET_GITHUB_HOOK"], body)
    cases = [
        ({}, body),
        ({"X-Hub-Signature-256": good}, b'{"n": 2}'),  # another body
        ({"X-Hub-Signature-256": "sha256=" + mac("wrong secret", body)}, body),
        ({"X-Hub-Signature-256": good.replace("sha256=", "sha1=")}, body),
        ({"X-Hub-Signature": good}, body),  # the old SHA-1 header is not the one configured
    ]
    for headers, sent in cases:
        error = assert_json_error(accept(hooks, scenario, sent, headers), 401, "InvalidSignature")
        assert SECRETS["JUNCTION_SECRET_GITHUB_HOOK"] not in json.dumps(error)
    assert hooks.run_count(scenario["id"]) == 0
    # The signature is checked before the body is read: a bad one with a malformed body is still 401.
    assert_json_error(accept(hooks, scenario, b"{not json", {"X-Hub-Signature-256": good}), 401, "InvalidSignature")


def test_header_names_are_matched_whatever_their_case(hooks: Junction) -> None:
    scenario = webhook_scenario(hooks, "hmac-sha256", "JUNCTION_SECRET_PARTNER", header="X-Partner-Signature")
    for n, name in enumerate(["x-partner-signature", "X-PARTNER-SIGNATURE", "x-PaRtNeR-sIgNaTuRe"]):
        body = json.dumps({"n": n}).encode()
        response = accept(hooks, scenario, body, {name: mac(SECRETS["JUNCTION_SECRET_PARTNER"], body)})
        assert response.status_code == 200, (name, response.text)


def stripe_signature(body: bytes, t: int, *secrets: str) -> str:
    return ",".join([f"t={t}", *(f"v1={mac(s, str(t).encode(), b'.', body)}" for s in secrets)])


def test_stripe_signatures_with_clock_skew_rolled_secrets_and_stale_timestamps(hooks: Junction) -> None:
    scenario = webhook_scenario(hooks, "stripe", "JUNCTION_SECRET_STRIPE_HOOK")
    secret = SECRETS["JUNCTION_SECRET_STRIPE_HOOK"]
    now = int(time.time())
    accepted = [
        (b'{"id": "evt_1"}', stripe_signature(b'{"id": "evt_1"}', now, secret)),
        (b'{"id": "evt_2"}', stripe_signature(b'{"id": "evt_2"}', now - 200, "whsec_old", secret)),  # rolled: two v1
        (b'{"id": "evt_3"}', stripe_signature(b'{"id": "evt_3"}', now + 200, secret)),  # the sender's clock is ahead
    ]
    for body, header in accepted:
        response = accept(hooks, scenario, body, {"Stripe-Signature": header})
        assert response.status_code == 200, (header, response.text)
    refused = [
        (b'{"id": "evt_4"}', stripe_signature(b'{"id": "evt_4"}', now - 3600, secret)),
        (b'{"id": "evt_5"}', stripe_signature(b'{"id": "evt_5"}', now + 3600, secret)),
        (b'{"id": "evt_6"}', stripe_signature(b'{"id": "evt_6"}', now, "whsec_old")),
    ]
    for body, header in refused:
        assert_json_error(accept(hooks, scenario, body, {"Stripe-Signature": header}), 401, "InvalidSignature")
    body, header = accepted[0]
    assert_json_error(accept(hooks, scenario, body, {"Stripe-Signature": header}), 409, "Replayed")
    assert hooks.run_count(scenario["id"]) == 3


def test_slack_signed_form_post(hooks: Junction) -> None:
    scenario = webhook_scenario(hooks, "slack", "JUNCTION_SECRET_SLACK_HOOK")
    body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&command=%2Fwebhook-collect&text=hello"
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + mac(SECRETS["JUNCTION_SECRET_SLACK_HOOK"], b"v0:", ts.encode(), b":", body),
    }
    with hooks.client() as client:
        response = client.post(f"/ExternalData/Accept/{scenario['id']}", content=body, headers=headers)
        assert response.status_code == 200, response.text
        run = hooks.wait_for_run(scenario["id"], response.headers["X-Run-Id"])
        assert run["output"]["echo"]["text"] == "hello"
        stale = {**headers, "X-Slack-Request-Timestamp": str(int(ts) - 301)}
        assert_json_error(client.post(f"/ExternalData/Accept/{scenario['id']}", content=body, headers=stale), 401, "InvalidSignature")


def test_signature_settings_are_validated_at_save(hooks: Junction) -> None:
    cases = [
        ({"scheme": "sha1", "secret": {"secret": "JUNCTION_SECRET_PARTNER"}}, "scenario.externalTriggers.signature.scheme"),
        ({"scheme": "github", "secret": {"secret": "JUNCTION_SECRET_NOT_SET"}}, "scenario.externalTriggers.signature.secret"),
        ({"scheme": "github", "secret": {"secret": "JUNCTION_SECRET_PARTNER"}, "toleranceSeconds": 99999}, "scenario.externalTriggers.signature.toleranceSeconds"),
    ]  # fmt: skip
    with hooks.admin() as admin:
        before = len(admin.get("/management/scenarios").json()["value"])
        for signature, field in cases:
            document = {"name": "bad", "externalTriggers": {"enabled": True, "signature": signature}, "process": {"steps": []}}
            error = assert_json_error(admin.post("/management/scenarios", json=document), 400)
            assert error["message"].startswith(f"{field}:"), error
        assert len(admin.get("/management/scenarios").json()["value"]) == before


# -- API operations: a signed binding, and respond async ------------------------------------------


@pytest.fixture(scope="module")
def api(hooks: Junction, upstream: Upstream) -> dict[str, Any]:
    echo = hooks.create_scenario(process={"steps": [{"type": "return", "value": {"jmespath": "{got: data[0].Body}"}}]})
    held = hooks.create_scenario(
        process={
            "steps": [
                {"type": "intermediateReturn", "value": {"accepted": True}},
                {"type": "http", "id": "held", "method": "GET", "url": f"{upstream.url}/gate", "timeout": 60},
                {"type": "return", "value": {"done": True}},
            ]
        }
    )
    refuses = hooks.create_scenario(
        process={"steps": [{"type": "throw", "message": "duplicate", "response": {"HttpStatusCode": 409, "Content": {"why": "duplicate"}}}]}
    )
    broken = hooks.create_scenario(process={"steps": [{"type": "throw", "message": "broken"}]})
    with hooks.admin() as admin:
        assert admin.put("/management/apis/hooks", json=DOCUMENT).status_code in (200, 201)
        binds = {
            "refusedJob": {"scenarioId": refuses["id"], "respond": "async"},
            "brokenJob": {"scenarioId": broken["id"], "respond": "async"},
            "partner": {"scenarioId": echo["id"], "signature": {"scheme": "hmac-sha256", "secret": {"secret": "JUNCTION_SECRET_PARTNER"}}},
            "startJob": {"scenarioId": echo["id"], "respond": "async"},
            "startHeldJob": {"scenarioId": held["id"], "respond": "async"},
            "syncJob": {"scenarioId": echo["id"]},
        }
        for operation, binding in binds.items():
            response = admin.put(f"/management/apis/hooks/operations/{operation}", json=binding)
            assert response.status_code == 200, response.text
    return {"echo": echo, "held": held}


def test_a_signed_binding_verifies_and_refuses_replays(hooks: Junction, api: dict[str, Any]) -> None:
    body = b'{"order": 7}'
    signed = {"Content-Type": "application/json", "X-Signature-256": "sha256=" + mac(SECRETS["JUNCTION_SECRET_PARTNER"], body)}
    with hooks.client() as client:
        response = client.post("/hooks/partner", content=body, headers=signed)
        assert response.status_code == 200, response.text
        assert response.json() == {"got": {"order": 7}}
        assert_json_error(client.post("/hooks/partner", content=body, headers=signed), 409, "Replayed")
        assert_json_error(client.post("/hooks/partner", content=b'{"order": 8}', headers=signed), 401, "InvalidSignature")


def test_a_bad_binding_signature_is_a_400_naming_the_field(hooks: Junction, api: dict[str, Any]) -> None:
    with hooks.admin() as admin:
        bad = {"scenarioId": api["echo"]["id"], "signature": {"scheme": "stripe", "secret": {"secret": "JUNCTION_SECRET_NOT_SET"}}}
        error = assert_json_error(admin.put("/management/apis/hooks/operations/syncJob", json=bad), 400)
        assert error["message"].startswith("binding.signature.secret:")
        error = assert_json_error(admin.put("/management/apis/hooks/operations/syncJob", json={"scenarioId": api["echo"]["id"], "respond": "soon"}), 400)
        assert error["message"].startswith("binding.respond:")
        assert admin.get("/management/apis/hooks/operations/syncJob").json()["binding"]["respond"] == "sync"


def poll(client: httpx.Client, url: str) -> httpx.Response:
    answer: list[httpx.Response] = []

    def done() -> bool:
        answer[:] = [client.get(url)]
        return answer[0].status_code != 202

    eventually(done, timeout=30)
    return answer[0]


def test_respond_async_answers_202_then_the_mapped_result(hooks: Junction, api: dict[str, Any]) -> None:
    with hooks.client() as client:
        response = client.post("/jobs", json={"job": 1})
        assert response.status_code == 202, response.text
        location = response.headers["Location"]
        assert response.headers["Retry-After"].isdigit()
        assert response.json() == {"runId": response.headers["X-Run-Id"], "status": "queued", "statusUrl": location}
        assert urlsplit(location).path.startswith(f"/{STATUS_ROUTE}/")
        answer = poll(client, location)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"got": {"job": 1}}
        assert answer.headers["X-Run-Id"] == response.headers["X-Run-Id"]
        # XML when Accept prefers it, as for synchronous calls.
        assert client.get(location, headers={"Accept": "application/xml"}).text.startswith("<?xml")
        # The same operation bound synchronously answers at once.
        assert client.post("/jobs-sync", json={"job": 2}).json() == {"got": {"job": 2}}


def test_respond_async_gives_the_early_answer_while_the_run_goes_on(hooks: Junction, api: dict[str, Any], upstream: Upstream) -> None:
    upstream.hold()
    with hooks.client() as client:
        response = client.post("/jobs-held", json={})
        assert response.status_code == 202, response.text
        run_id = response.headers["X-Run-Id"]
        answer = poll(client, response.headers["Location"])
        assert answer.status_code == 200 and answer.json() == {"accepted": True}
        # The run is held at its http step: the early answer came before the end.
        with hooks.admin() as admin:
            assert admin.get(f"/management/scenarios/{api['held']['id']}/runs/{run_id}").json()["status"] == "running"
        upstream.release()
        run = hooks.wait_for_run(api["held"]["id"], run_id)
        assert run["status"] == "succeeded" and run["output"] == {"done": True} and run["intermediate"] == {"accepted": True}
        assert client.get(response.headers["Location"]).json() == {"accepted": True}  # what the caller was told stays


def test_a_page_the_operation_allows_may_read_its_status_url(hooks: Junction, api: dict[str, Any]) -> None:
    """The status URL answers with the CORS policy the operation has when it is read: without
    it a page could start an async call and never read the outcome."""
    page, stranger = "https://app.example.com", "https://elsewhere.example.com"
    binding = {"scenarioId": api["echo"]["id"], "respond": "async"}
    with hooks.admin() as admin, hooks.client() as client:
        assert admin.put("/management/apis/hooks/operations/startJob", json={**binding, "cors": {"allowedOrigins": [page]}}).status_code == 200
        try:
            response = client.post("/jobs", json={"job": 4}, headers={"Origin": page})
            assert response.status_code == 202, response.text
            assert response.headers["Access-Control-Allow-Origin"] == page
            exposed = {name.strip() for name in response.headers["Access-Control-Expose-Headers"].split(",")}
            assert {"Location", "Retry-After", "X-Run-Id"} <= exposed
            location = response.headers["Location"]
            assert poll(client, location).status_code == 200
            read = client.get(location, headers={"Origin": page})
            assert read.status_code == 200 and read.json() == {"got": {"job": 4}}
            assert read.headers["Access-Control-Allow-Origin"] == page and "Origin" in read.headers["Vary"]
            assert "X-Run-Id" in read.headers["Access-Control-Expose-Headers"]
            assert "Access-Control-Allow-Origin" not in client.get(location, headers={"Origin": stranger}).headers
            assert "Access-Control-Allow-Origin" not in client.get(location).headers
        finally:
            assert admin.put("/management/apis/hooks/operations/startJob", json=binding).status_code == 200
        # The operation no longer allows the page: neither do the status URLs it handed out.
        after = client.get(location, headers={"Origin": page})
        assert after.status_code == 200 and "Access-Control-Allow-Origin" not in after.headers


def test_status_urls_altered_or_expired(hooks: Junction, api: dict[str, Any]) -> None:
    with hooks.client() as client:
        response = client.post("/jobs", json={"job": 3})
        location = response.headers["Location"]
        token = location.rsplit("/", 1)[1]
        payload, signature = token.split(".")
        flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
        other_run = links._b64(json.dumps({"s": api["echo"]["id"], "r": "00000000-0000-0000-0000-000000000000", "exp": 4102444800}).encode())
        for bad in (f"{payload}.{flipped}", f"{other_run}.{signature}", payload, "x" * 2000, f"{payload}.{signature}.x", "%00"):
            assert_json_error(client.get(f"/{STATUS_ROUTE}/{bad}"), 404, "LinkNotFound")
        expired = links.sign(hooks.storage, STATUS_PURPOSE, {"s": api["echo"]["id"], "r": response.headers["X-Run-Id"]}, time.time() - 1)
        assert_json_error(client.get(f"/{STATUS_ROUTE}/{expired}"), 410, "LinkExpired")
        assert poll(client, location).status_code == 200  # the genuine one still answers
        for method in ("POST", "DELETE"):
            assert client.request(method, location).status_code == 405


def test_the_readme_webhook_example_runs_and_its_replay_is_409(hooks: Junction, tmp_path: Path) -> None:
    scenario = webhook_scenario(hooks, "github", "JUNCTION_SECRET_GITHUB_HOOK")
    script = block("README.md: BODY=").text.replace("http://127.0.0.1:7071", hooks.url)
    env = {"PATH": os.environ["PATH"], "GITHUB_HOOK_SECRET": SECRETS["JUNCTION_SECRET_GITHUB_HOOK"], "SID": scenario["id"]}
    done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    statuses = re.findall(r"^HTTP/1\.1 (\d{3})", done.stdout, re.MULTILINE)
    assert statuses == ["200", "409"], done.stdout
    assert '"code":"Replayed"' in done.stdout.replace(" ", "")
    assert hooks.run_count(scenario["id"]) == 1


def test_the_published_document_says_how_to_call_signed_and_async_operations(hooks: Junction, api: dict[str, Any]) -> None:
    with hooks.client() as client:
        paths = client.get("/management/openapi.json").json()["paths"]
    partner = paths["/hooks/partner"]["post"]
    assert {"name": "X-Signature-256", "in": "header", "required": True}.items() <= partner["parameters"][0].items()
    assert "409" in partner["responses"]
    job = paths["/jobs"]["post"]["responses"]["202"]
    assert set(job["headers"]) == {"Location", "Retry-After"}
    assert "202" not in paths["/jobs-sync"]["post"]["responses"]
    status = paths["/ExternalData/RunStatus/{token}"]["get"]
    assert status["security"] == [{}] and {"202", "404", "410"} <= set(status["responses"])


def test_a_body_over_the_limit_is_413_before_its_signature_is_checked(hooks: Junction, api: dict[str, Any]) -> None:
    body = b'{"big": "' + b"x" * (hooks.settings.max_body_bytes + 1) + b'"}'
    # Signed with another secret: no HMAC is spent on a body the limit refuses anyway.
    signed = {"Content-Type": "application/json", "X-Signature-256": mac("not the secret", body)}
    with hooks.client() as client:
        assert_json_error(client.post("/hooks/partner", content=body, headers=signed), 413)


def test_respond_async_answers_a_failed_run_as_a_synchronous_call_would(hooks: Junction, api: dict[str, Any]) -> None:
    with hooks.client() as client:
        refused = poll(client, client.post("/jobs-refused", json={}).headers["Location"])
        assert refused.status_code == 409 and refused.json() == {"why": "duplicate"}  # the throw step's response
        broken = client.post("/jobs-broken", json={})
        error = assert_json_error(poll(client, broken.headers["Location"]), 500, "ProcessFailed")
        assert broken.headers["X-Run-Id"] in error["message"]
