"""Azure AD end to end: msal's client-credentials flow against the local HTTPS issuer, then the
token used on the real app served by devhost (external triggers and management)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from cli.aad_login import acquire_token
from devhost.azurite import Azurite
from tests.e2e.conftest import ROOT, Junction, aad_env, assert_json_error, serve_junction
from tests.support.idp import AUDIENCE, LocalIdentityProvider

ADMIN_ROLE = "Junction.Admin"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentityProvider]:
    with LocalIdentityProvider(tmp_path_factory.mktemp("idp")) as provider:
        yield provider


@pytest.fixture(scope="module")
def aad_junction(azurite: Azurite, idp: LocalIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Junction]:
    extra = aad_env(idp, JUNCTION_AAD_ADMIN_ROLE=ADMIN_ROLE)
    with serve_junction(azurite, "e2eaad", tmp_path_factory.mktemp("devhost-aad"), extra_env=extra) as server:
        yield server


def _app_token(idp: LocalIdentityProvider, *roles: str) -> str:
    client = idp.register_client(secret="s3cret-value", roles=roles)
    return acquire_token(
        tenant_id=idp.tenant_id,
        client_id=client.client_id,
        scopes=[f"{AUDIENCE}/.default"],
        authority_host=idp.base_url,
        client_secret="s3cret-value",
        ca_bundle=idp.ca_path,
        cache_path=idp.folder / f"cache-{client.client_id}.json",
    )


def _scenario(junction: Junction) -> dict[str, Any]:
    return junction.create_scenario(
        process={
            "steps": [
                {"type": "return", "value": {"jmespath": "{user: trigger.data.username, roles: trigger.claims.roles, tid: trigger.claims.tid}"}}
            ]
        }
    )


def test_msal_client_credentials_token_triggers_a_scenario(aad_junction: Junction, idp: LocalIdentityProvider) -> None:
    scenario = _scenario(aad_junction)
    token = _app_token(idp, "Junction.Trigger")
    with aad_junction.client(token) as client:
        response = client.post(f"/ExternalData/Accept/{scenario['id']}", json={"x": 1})
    assert response.status_code == 200, response.text
    run = aad_junction.wait_for_run(scenario["id"], response.headers["X-Run-Id"])
    assert run["status"] == "succeeded"
    assert run["output"]["roles"] == ["Junction.Trigger"]
    assert run["output"]["tid"] == idp.tenant_id
    assert run["output"]["user"]  # the app's id when the token has no name claim
    assert run["trigger"]["caller"]["kind"] == "aad"


def test_the_cli_signs_in_with_msal_and_triggers(aad_junction: Junction, idp: LocalIdentityProvider) -> None:
    scenario = _scenario(aad_junction)
    client = idp.register_client(secret="cli-secret", roles=("Junction.Trigger",))
    env = {k: v for k, v in os.environ.items() if k not in ("JUNCTION_TOKEN", "JUNCTION_CLIENT_SECRET")}
    env["HOME"] = str(idp.folder)  # msal's token cache goes under ~/.junction
    result = subprocess.run(
        [
            sys.executable, "-m", "cli.main", "--url", aad_junction.url, "--aad",
            "--tenant-id", idp.tenant_id, "--client-id", client.client_id, "--client-secret", "cli-secret",
            "--aad-scope", f"{AUDIENCE}/.default", "--authority-host", idp.base_url, "--ca-bundle", str(idp.ca_path),
            "trigger", scenario["id"],
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = aad_junction.wait_for_run(scenario["id"], result.stdout.strip())
    assert run["status"] == "succeeded" and run["trigger"]["caller"]["kind"] == "aad"


def test_the_cli_uses_aad_for_cache_and_management_commands(aad_junction: Junction, idp: LocalIdentityProvider) -> None:
    """Without --aad-scope the scope is Junction's audience (JUNCTION_AAD_AUDIENCE), never the caller's own ID."""
    scenario = _scenario(aad_junction)
    with aad_junction.admin() as admin:
        admin.put(f"/management/scenarios/{scenario['id']}/cache", params={"keyJson": '{"id": 1}'}, json={"cached": True})
    client = idp.register_client(secret="cli-admin-secret", roles=(ADMIN_ROLE,))
    env = {k: v for k, v in os.environ.items() if k not in ("JUNCTION_TOKEN", "JUNCTION_CLIENT_SECRET", "JUNCTION_AAD_SCOPE")}
    env.update({"HOME": str(idp.folder), "JUNCTION_AAD_AUDIENCE": AUDIENCE, "JUNCTION_AAD_TENANT_ID": idp.tenant_id})
    common = [
        sys.executable, "-m", "cli.main", "--url", aad_junction.url, "--aad", "--client-id", client.client_id,
        "--client-secret", "cli-admin-secret", "--authority-host", idp.base_url, "--ca-bundle", str(idp.ca_path),
    ]  # fmt: skip

    def cli(*args: str, environment: dict[str, str] = env) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*common, *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)

    cached = cli("cache", "get", scenario["id"], "--key", '{"id": 1}')
    assert cached.returncode == 0, cached.stderr
    assert json.loads(cached.stdout) == {"cached": True}
    shown = cli("scenario", "show", scenario["id"])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == scenario["id"]
    without = {k: v for k, v in env.items() if k != "JUNCTION_AAD_AUDIENCE"}
    refused = cli("scenario", "list", environment=without)
    assert refused.returncode != 0 and "--aad-scope" in refused.stderr


def test_get_cache_data_with_an_azure_ad_token(aad_junction: Junction, idp: LocalIdentityProvider) -> None:
    scenario = _scenario(aad_junction)
    with aad_junction.admin() as admin:
        admin.put(f"/management/scenarios/{scenario['id']}/cache", params={"keyJson": '"k"'}, json=[1, 2])
    with aad_junction.client(_app_token(idp, "Junction.Trigger")) as client:
        found = client.get(f"/ExternalData/GetCacheData/{scenario['id']}", params={"keyJson": '"k"'})
    with aad_junction.client(_app_token(idp, "Something.Else")) as client:
        refused = client.get(f"/ExternalData/GetCacheData/{scenario['id']}", params={"keyJson": '"k"'})
    assert found.status_code == 200 and found.json() == [1, 2]
    assert_json_error(refused, 403)


def test_an_app_token_without_the_trigger_role_is_403(aad_junction: Junction, idp: LocalIdentityProvider) -> None:
    scenario = _scenario(aad_junction)
    with aad_junction.client(_app_token(idp, "Something.Else")) as client:
        response = client.post(f"/ExternalData/Accept/{scenario['id']}", json={})
    assert_json_error(response, 403)
    assert aad_junction.run_count(scenario["id"]) == 0


@pytest.mark.parametrize("token", ["eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ4In0.", "a.b.c", "a.b.c.d.e"])
def test_invalid_jwts_are_401_with_invalid_token(aad_junction: Junction, token: str) -> None:
    scenario = _scenario(aad_junction)
    with aad_junction.client(token) as client:
        response = client.post(f"/ExternalData/Accept/{scenario['id']}", json={})
    assert_json_error(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_token_from_another_tenant_is_401(aad_junction: Junction, idp: LocalIdentityProvider) -> None:
    scenario = _scenario(aad_junction)
    forged = idp.mint(idp.app_claims(AUDIENCE, roles=["Junction.Trigger"], tid="11111111-1111-1111-1111-111111111111"))
    with aad_junction.client(forged) as client:
        assert_json_error(client.post(f"/ExternalData/Accept/{scenario['id']}", json={}), 401)


def test_management_needs_the_admin_role(aad_junction: Junction, idp: LocalIdentityProvider) -> None:
    with aad_junction.client(_app_token(idp, ADMIN_ROLE)) as admin:
        assert admin.get("/management/scenarios").status_code == 200
    with aad_junction.client(_app_token(idp, "Junction.Trigger")) as client:
        response = client.get("/management/scenarios")
    assert_json_error(response, 403)


def test_user_tokens_pass_only_with_the_group(aad_junction: Junction, idp: LocalIdentityProvider) -> None:
    """Without JUNCTION_AAD_GROUP_ID any valid tenant user may trigger; the admin API still needs the role."""
    scenario = _scenario(aad_junction)
    user = idp.mint(idp.user_claims(AUDIENCE))
    with aad_junction.client(user) as client:
        response = client.post(f"/ExternalData/Accept/{scenario['id']}", json={})
        assert response.status_code == 200
        assert_json_error(client.get("/management/tokens"), 403)
    run = aad_junction.wait_for_run(scenario["id"], response.headers["X-Run-Id"])
    assert run["output"]["user"] == "Grace Hopper"

