"""GET /health and GET /management/health through devhost, as a load balancer, an administrator
and the CLI call them; both are in the published OpenAPI document."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from jsonschema import Draft202012Validator

from tests.e2e.conftest import ROOT, Junction, assert_json_error


def test_health_is_anonymous_and_says_only_ok(junction: Junction) -> None:
    with junction.client() as anonymous:
        response = anonymous.get("/health")
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        assert response.headers["cache-control"] == "no-store"
        refused = anonymous.post("/health")
        assert refused.status_code == 405 and refused.headers["allow"] == "GET", refused.text


def test_the_details_are_for_admins(junction: Junction, trigger_token: str) -> None:
    with junction.client() as anonymous:
        assert_json_error(anonymous.get("/management/health"), 401)
    with junction.client(trigger_token) as caller:
        assert_json_error(caller.get("/management/health"), 403)
    with junction.admin() as admin:
        response = admin.get("/management/health")
        document = admin.get("/management/openapi.json").json()
    assert response.status_code == 200, response.text
    details = response.json()
    assert details["storage"]["reachable"] is True and details["status"] in ("ok", "degraded")
    assert isinstance(details["runQueue"]["depth"], int) and isinstance(details["poisonQueue"]["depth"], int)
    assert {"/health", "/management/health"} <= set(document["paths"])
    schema = {**document["components"]["schemas"]["HealthDetails"], "components": document["components"]}
    Draft202012Validator(schema).validate(details)


def test_the_cli_reads_both(junction: Junction) -> None:
    env = {**os.environ, **junction.env, "JUNCTION_URL": junction.url, "JUNCTION_TOKEN": junction.admin_token}
    for args, key in ((["health"], "storage"), (["health", "--public"], "status")):
        done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert key in json.loads(done.stdout)
