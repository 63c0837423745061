"""Azure AD as a tenant administrator expects it, over real HTTP against the local HTTPS IdP
(issue 14, points 7, 9 and 10).

- ``JUNCTION_AAD_GROUP_ID`` restricts the tenant's users everywhere: the triggers and ``oauth2``
  API operations alike, unless a binding opts out with ``anyTenantUser``.
- Why a token was refused is in the log, and the token is not.
- Concurrent first requests while the JWKS is slow share one download and are refused together.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite
from tests.e2e.conftest import Junction, aad_env, assert_json_error, serve_junction
from tests.support.idp import AUDIENCE, LocalIdentityProvider

GROUP = "d6f8a0b2-4c5e-4a7b-9d1f-334455667788"
API = {
    "openapi": "3.0.3",
    "info": {"title": "Tenant", "version": "1"},
    "servers": [{"url": "/tenant"}],
    "paths": {
        "/orders": {"get": {"operationId": "listOrders", "responses": {"200": {"description": "ok"}}}},
        "/status": {"get": {"operationId": "status", "responses": {"200": {"description": "ok"}}}},
    },
}


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentityProvider]:
    with LocalIdentityProvider(tmp_path_factory.mktemp("idp-tenant")) as provider:
        yield provider


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("devhost-tenant")


@pytest.fixture(scope="module")
def tenant(azurite: Azurite, idp: LocalIdentityProvider, logs: Path) -> Iterator[Junction]:
    with serve_junction(azurite, "tenant", logs, extra_env=aad_env(idp, JUNCTION_AAD_GROUP_ID=GROUP)) as server:
        yield server


@pytest.fixture(scope="module")
def bound(tenant: Junction) -> str:
    sid = tenant.create_scenario(process={"steps": [{"type": "return", "value": {"jmespath": "trigger.data.username"}}]})["id"]
    with tenant.admin() as admin:
        assert admin.put("/management/apis/tenant", json=API).status_code in (200, 201)
        oauth2 = {"type": "oauth2", "scopes": ["orders.read"]}
        assert admin.put("/management/apis/tenant/operations/listOrders", json={"scenarioId": sid, "authentication": oauth2}).status_code == 200
    return str(sid)


@pytest.fixture(scope="module")
def opened(tenant: Junction, bound: str) -> None:
    """``status`` is bound with ``anyTenantUser``: every user of the tenant may call it."""
    opted_out = {"type": "oauth2", "scopes": ["orders.read"], "anyTenantUser": True}
    with tenant.admin() as admin:
        response = admin.put("/management/apis/tenant/operations/status", json={"scenarioId": bound, "authentication": opted_out})
    assert response.status_code == 200, response.text
    assert response.json()["binding"]["authentication"]["anyTenantUser"] is True


def _user(idp: LocalIdentityProvider, *, groups: list[str] | None = None, scp: str = "orders.read") -> str:
    claims: dict[str, Any] = {"scp": scp, "oid": str(uuid.uuid4())}
    if groups is not None:
        claims["groups"] = groups
    return idp.mint(idp.user_claims(AUDIENCE, **claims))


def test_a_user_outside_the_group_may_not_call_an_oauth2_operation(tenant: Junction, idp: LocalIdentityProvider, bound: str) -> None:
    outsider = _user(idp, groups=["00000000-0000-4000-8000-000000000001"])
    with httpx.Client(base_url=tenant.url, timeout=30) as client:
        refused = client.get("/tenant/orders", headers={"Authorization": f"Bearer {outsider}"})
        assert_json_error(refused, 403, "NotInGroup")
        assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
        # the same user is refused on the triggers too: one rule everywhere
        assert_json_error(client.post(f"/ExternalData/Accept/{bound}", json={}, headers={"Authorization": f"Bearer {outsider}"}), 403, "NotInGroup")


def test_members_and_applications_may_call_it(tenant: Junction, idp: LocalIdentityProvider, bound: str) -> None:
    member = _user(idp, groups=[GROUP])
    application = idp.mint(idp.app_claims(AUDIENCE, roles=["orders.read"]))  # applications have no groups: roles decide
    with httpx.Client(base_url=tenant.url, timeout=30) as client:
        for token in (member, application):
            response = client.get("/tenant/orders", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text


def test_a_binding_may_open_an_operation_to_every_user_of_the_tenant(tenant: Junction, idp: LocalIdentityProvider, opened: None) -> None:
    outsider = _user(idp)
    with httpx.Client(base_url=tenant.url, timeout=30) as client:
        response = client.get("/tenant/status", headers={"Authorization": f"Bearer {outsider}"})
        assert response.status_code == 200, response.text
        assert response.text == "Grace Hopper"  # a string result is the body
        # the scopes still apply
        wrong_scope = _user(idp, scp="other")
        assert_json_error(client.get("/tenant/status", headers={"Authorization": f"Bearer {wrong_scope}"}), 403, "InsufficientScope")


def test_refused_tokens_are_explained_in_the_log_never_shown(tenant: Junction, idp: LocalIdentityProvider, logs: Path, bound: str) -> None:
    expired = idp.mint(idp.user_claims(AUDIENCE, groups=[GROUP], now=time.time() - 7200))
    foreign = idp.mint(idp.user_claims("api://someone-else", groups=[GROUP]))
    with httpx.Client(base_url=tenant.url, timeout=30) as client:
        for token in (expired, foreign):
            for path in (f"/ExternalData/Accept/{bound}", "/tenant/orders"):
                assert client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    log = (logs / "devhost.log").read_text(encoding="utf-8")
    assert "Azure AD token refused (401): the token has expired" in log
    assert "Azure AD token refused (401): the token is for another audience" in log
    for token in (expired, foreign):
        assert token not in log and token.split(".")[2] not in log


@pytest.fixture
def cold(azurite: Azurite, idp: LocalIdentityProvider, tmp_path: Path) -> Iterator[Junction]:
    """A fresh app (no signing key loaded yet), with the production time-outs."""
    with serve_junction(azurite, "coldaad", tmp_path, extra_env=aad_env(idp)) as server:
        yield server


def test_concurrent_first_requests_share_one_slow_jwks_download(cold: Junction, idp: LocalIdentityProvider) -> None:
    """The JWKS answers after 8 s; Junction waits 5 s for it. Four concurrent first requests:
    one download, four 401s, all of them before the JWKS answered (they used to queue behind
    one another, 5, 10, 15 and 20 s, downloading four times)."""
    scenario = cold.create_scenario(process={"steps": []})
    token = idp.mint(idp.user_claims(AUDIENCE))
    idp.delays["jwks"] = 8.0
    idp.answered_at.pop("jwks", None)
    before = idp.jwks_fetches
    barrier = threading.Barrier(4)
    answers: list[tuple[int, float]] = []

    def call() -> None:
        with httpx.Client(base_url=cold.url, timeout=60) as client:
            barrier.wait()
            response = client.get(f"/ExternalData/Accept/{scenario['id']}", headers={"Authorization": f"Bearer {token}"})
            answers.append((response.status_code, time.monotonic()))

    try:
        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        while "jwks" not in idp.answered_at:
            time.sleep(0.1)
    finally:
        idp.delays.clear()
    assert [status for status, _ in answers] == [401] * 4
    assert idp.jwks_fetches == before + 1
    assert max(at for _, at in answers) < idp.answered_at["jwks"]
