"""GET, edit, PUT: what the management API returns can be sent back (issue 14, point 11).

Read-only fields (a scenario's ``id``, ``createdAt``, ``updatedAt``, ``etag``, ``triggerUrls``;
a binding view's ``api``, ``operationId``, ``method``, ``path`` and ``boundAt``) are accepted when
unchanged and ignored; changing one that can never change is a 400 naming it; a copy read before
someone else's change is a 412.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ROOT, Junction, assert_json_error
from tests.support.pki import Authority

PETS = {
    "openapi": "3.0.3",
    "info": {"title": "Round trip", "version": "1"},
    "servers": [{"url": "/roundtrip"}],
    "paths": {"/pet/{id}": {"get": {"operationId": "getPet", "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}], "responses": {"200": {"description": "ok"}}}}},
}


def _get(admin: httpx.Client, sid: str) -> dict[str, Any]:
    response = admin.get(f"/management/scenarios/{sid}")
    assert response.status_code == 200
    return dict(response.json())


def test_a_scenario_round_trips_through_put_and_patch(junction: Junction) -> None:
    sid = junction.create_scenario(name="round trip")["id"]
    with junction.admin() as admin:
        copy = _get(admin, sid)
        copy["name"] = "renamed"
        put = admin.put(f"/management/scenarios/{sid}", json=copy)
        assert put.status_code == 200, put.text
        assert put.json()["name"] == "renamed" and put.json()["id"] == sid
        assert put.json()["createdAt"] == copy["createdAt"] and put.json()["etag"] != copy["etag"]

        again = _get(admin, sid)
        assert again == put.json()
        again["description"] = "patched with the whole document"
        patched = admin.patch(f"/management/scenarios/{sid}", json=again, headers={"Content-Type": "application/merge-patch+json"})
        assert patched.status_code == 200, patched.text
        assert _get(admin, sid)["description"] == "patched with the whole document"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "00000000-0000-4000-8000-000000000000"),
        ("createdAt", "2001-01-01T00:00:00.000Z"),
        ("triggerUrls", {"get": "https://elsewhere.example/x"}),
    ],
)
def test_changing_a_read_only_field_is_400_and_changes_nothing(junction: Junction, field: str, value: Any) -> None:
    sid = junction.create_scenario(name="fixed fields")["id"]
    with junction.admin() as admin:
        before = _get(admin, sid)
        changed = {**before, "name": "should not stick", field: value}
        error = assert_json_error(admin.put(f"/management/scenarios/{sid}", json=changed), 400, "ReadOnlyField")
        assert f"scenario.{field}" in error["message"]
        patch = admin.patch(f"/management/scenarios/{sid}", json={field: value}, headers={"Content-Type": "application/merge-patch+json"})
        assert_json_error(patch, 400, "ReadOnlyField")
        assert _get(admin, sid) == before


def test_a_stale_copy_is_412_unless_if_match_says_any(junction: Junction) -> None:
    sid = junction.create_scenario(name="stale")["id"]
    with junction.admin() as admin:
        stale = _get(admin, sid)
        fresh = {**stale, "name": "someone else"}
        assert admin.put(f"/management/scenarios/{sid}", json=fresh).status_code == 200
        assert_json_error(admin.put(f"/management/scenarios/{sid}", json={**stale, "name": "mine"}), 412, "ETagMismatch")
        assert _get(admin, sid)["name"] == "someone else"
        forced = admin.put(f"/management/scenarios/{sid}", json={**stale, "name": "mine"}, headers={"If-Match": "*"})
        assert forced.status_code == 200 and forced.json()["name"] == "mine"


def test_the_cli_round_trip_show_edit_update(junction: Junction, tmp_path: Path) -> None:
    """What the README's CLI section shows: ``scenario show > s.json``, edit, ``scenario update``."""
    sid = junction.create_scenario(name="cli round trip")["id"]
    env = {**os.environ, **junction.env, "JUNCTION_URL": junction.url, "JUNCTION_TOKEN": junction.admin_token, "SID": sid}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    script = """set -e
junction scenario show "$SID" > s.json
python3 -c 'import json; s = json.load(open("s.json")); s["name"] = "edited by hand"; json.dump(s, open("s.json", "w"))'
junction scenario update "$SID" s.json > updated.json
junction scenario update "$SID" s.json   # the file's etag is stale now: refused
"""
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "412 ETagMismatch" in done.stderr, done.stderr
    assert json.loads((tmp_path / "updated.json").read_text())["name"] == "edited by hand"
    with junction.admin() as admin:
        assert _get(admin, sid)["name"] == "edited by hand"


@pytest.fixture
def bound(junction: Junction) -> dict[str, Any]:
    sid = junction.create_scenario(name="bound")["id"]
    with junction.admin() as admin:
        assert admin.put("/management/apis/roundtrip", json=PETS).status_code in (200, 201)
        binding = {"scenarioId": sid, "authentication": {"type": "none"}, "cors": {"allowedOrigins": "https://a.example;https://b.example"}}
        response = admin.put("/management/apis/roundtrip/operations/getPet", json=binding)
        assert response.status_code == 200, response.text
        return dict(response.json())


def test_a_binding_round_trips_as_the_view_or_as_the_binding(junction: Junction, bound: dict[str, Any]) -> None:
    url = "/management/apis/roundtrip/operations/getPet"
    with junction.admin() as admin:
        view = admin.get(url).json()
        assert view == bound
        view["binding"]["allowedProtocols"] = ["https"]
        put = admin.put(url, json=view)
        assert put.status_code == 200, put.text
        assert put.json()["binding"]["allowedProtocols"] == ["https"]
        assert put.json()["binding"]["cors"] == bound["binding"]["cors"]

        inner = admin.get(url).json()["binding"]
        inner["allowedProtocols"] = ["http", "https"]
        assert admin.put(url, json=inner).status_code == 200
        assert admin.get(url).json()["binding"]["allowedProtocols"] == ["http", "https"]


def test_a_binding_view_that_changes_what_cannot_change_is_refused(junction: Junction, bound: dict[str, Any]) -> None:
    url = "/management/apis/roundtrip/operations/getPet"
    with junction.admin() as admin:
        for field, value in (("path", "/roundtrip/other/{id}"), ("method", "POST"), ("operationId", "other"), ("api", "other")):
            error = assert_json_error(admin.put(url, json={**bound, field: value}), 400, "ReadOnlyField")
            assert field in error["message"]
        stale = admin.get(url).json()
        assert admin.put(url, json=admin.get(url).json()).status_code == 200  # someone re-binds
        assert_json_error(admin.put(url, json=stale), 412, "BindingChanged")
        assert admin.get(url).json()["binding"]["boundAt"] != stale["binding"]["boundAt"]


def test_the_api_summary_is_not_taken_for_a_document(junction: Junction, bound: dict[str, Any]) -> None:
    with junction.admin() as admin:
        summary = admin.get("/management/apis/roundtrip").json()
        assert_json_error(admin.put("/management/apis/roundtrip", json=summary), 400, "NotAnOpenApiDocument")
        assert admin.get("/management/apis/roundtrip/operations/getPet").json()["binding"] is not None


@pytest.mark.parametrize("authentication", [None, {"type": "apiKey"}, {"type": "basic"}, "certificate"])
def test_a_binding_with_defaults_round_trips(junction: Junction, bound: dict[str, Any], authentication: Any) -> None:
    """Defaults and normalised values come back as they are stored (``cors: null``, both
    protocols, trusted issuers as PEM) and can be sent again."""
    url = "/management/apis/roundtrip/operations/getPet"
    binding: dict[str, Any] = {"scenarioId": bound["binding"]["scenarioId"]}
    if authentication == "certificate":
        binding["authentication"] = {"type": "certificate", "trustedIssuers": [Authority("Round trip CA").pem]}
    elif authentication is not None:
        binding["authentication"] = authentication
    with junction.admin() as admin:
        assert admin.put(url, json=binding).status_code == 200
        view = admin.get(url).json()
        assert view["binding"]["cors"] is None
        put = admin.put(url, json=view)
        assert put.status_code == 200, put.text
        assert {k: v for k, v in put.json()["binding"].items() if k != "boundAt"} == {k: v for k, v in view["binding"].items() if k != "boundAt"}
