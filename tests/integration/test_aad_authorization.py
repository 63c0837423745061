"""Who may trigger and who may administer: groups, group overage via Graph, app roles.

Graph is the local IdP's real HTTPS ``checkMemberGroups``, reached with a token msal acquires
from the local IdP's token endpoint (client secret, or certificate).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from core.identity.aad import AadAuthenticator
from core.kernel.errors import Forbidden, Unauthorized
from core.kernel.principal import Principal
from tests.support.idp import AUDIENCE, LocalIdentityProvider, aad_settings, running_idp

GROUP = "a3c5e7f9-1b2d-4f6a-8c0e-112233445566"
ADMIN_GROUP = "b4d6f8a0-2c3e-4a7b-9d1f-665544332211"
OVERAGE = {
    "_claim_names": {"groups": "src1"},
    "_claim_sources": {"src1": {"endpoint": "https://graph.windows.net/x/users/y/getMemberObjects"}},
}


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentityProvider]:
    yield from running_idp(tmp_path_factory.mktemp("idp"))


@pytest.fixture(scope="module")
def graph_app(idp: LocalIdentityProvider) -> dict[str, str]:
    secret = "s3cret-" + uuid.uuid4().hex
    client = idp.register_client(secret=secret)
    return {"graph_client_id": client.client_id, "graph_client_secret": secret}


@pytest.fixture(autouse=True)
def graph_healthy(idp: LocalIdentityProvider) -> Iterator[None]:
    idp.graph_failing = False
    idp.memberships.clear()
    yield
    idp.graph_failing = False


def make_auth(idp: LocalIdentityProvider, **overrides: Any) -> AadAuthenticator:
    return AadAuthenticator(aad_settings(idp, **overrides))


def user(idp: LocalIdentityProvider, auth: AadAuthenticator, **claims: Any) -> Principal:
    return auth.authenticate(idp.mint(idp.user_claims(AUDIENCE, **claims)))


def app(idp: LocalIdentityProvider, auth: AadAuthenticator, roles: list[str], **claims: Any) -> Principal:
    return auth.authenticate(idp.mint(idp.app_claims(AUDIENCE, roles=roles, **claims)))


# -- triggers: users and groups ---------------------------------------------------------------


def test_any_tenant_user_may_trigger_without_a_group(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp)
    auth.authorize_trigger(user(idp, auth))


def test_group_present(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp, aad_group_id=GROUP)
    auth.authorize_trigger(user(idp, auth, groups=["0f0f0f0f-0000-0000-0000-000000000000", GROUP.upper()]))


def test_group_absent(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp, aad_group_id=GROUP)
    with pytest.raises(Forbidden) as caught:
        auth.authorize_trigger(user(idp, auth, groups=["0f0f0f0f-0000-0000-0000-000000000000"]))
    assert caught.value.code == "NotInGroup"
    with pytest.raises(Forbidden):
        auth.authorize_trigger(user(idp, auth))  # no groups claim and no overage: not a member


def test_no_graph_call_without_the_overage_marker(idp: LocalIdentityProvider, graph_app: dict[str, str]) -> None:
    auth = make_auth(idp, aad_group_id=GROUP, **graph_app)
    before = idp.graph_calls
    with pytest.raises(Forbidden):
        auth.authorize_trigger(user(idp, auth, groups=[]))
    assert idp.graph_calls == before


def test_overage_resolved_as_member(idp: LocalIdentityProvider, graph_app: dict[str, str]) -> None:
    auth = make_auth(idp, aad_group_id=GROUP, **graph_app)
    oid = str(uuid.uuid4())
    idp.memberships[oid] = {GROUP}
    principal = user(idp, auth, oid=oid, **OVERAGE)
    before = idp.graph_calls
    auth.authorize_trigger(principal)
    assert idp.graph_calls == before + 1
    auth.authorize_trigger(principal)  # cached for a while: Graph is not asked again
    assert idp.graph_calls == before + 1


def test_overage_with_hasgroups(idp: LocalIdentityProvider, graph_app: dict[str, str]) -> None:
    auth = make_auth(idp, aad_group_id=GROUP, **graph_app)
    oid = str(uuid.uuid4())
    idp.memberships[oid] = {GROUP}
    auth.authorize_trigger(user(idp, auth, oid=oid, hasgroups=True))


def test_overage_resolved_as_non_member(idp: LocalIdentityProvider, graph_app: dict[str, str]) -> None:
    auth = make_auth(idp, aad_group_id=GROUP, **graph_app)
    oid = str(uuid.uuid4())
    idp.memberships[oid] = {"99999999-9999-9999-9999-999999999999"}
    principal = user(idp, auth, oid=oid, **OVERAGE)
    before = idp.graph_calls
    with pytest.raises(Forbidden) as caught:
        auth.authorize_trigger(principal)
    assert caught.value.code == "NotInGroup"
    assert idp.graph_calls == before + 1


def test_graph_failing_fails_closed(idp: LocalIdentityProvider, graph_app: dict[str, str]) -> None:
    clock = [1000.0]
    auth = AadAuthenticator(aad_settings(idp, aad_group_id=GROUP, **graph_app), monotonic=lambda: clock[0])
    oid = str(uuid.uuid4())
    idp.memberships[oid] = {GROUP}
    idp.graph_failing = True
    principal = user(idp, auth, oid=oid, **OVERAGE)
    with pytest.raises(Forbidden) as caught:
        auth.authorize_trigger(principal)
    assert caught.value.code == "GroupCheckFailed"
    idp.graph_failing = False
    calls = idp.graph_calls
    with pytest.raises(Forbidden):  # within the failure window: refused at once, Graph not asked
        auth.authorize_trigger(principal)
    assert idp.graph_calls == calls
    clock[0] += 11  # after it, the next request asks again (a failure never becomes an answer)
    auth.authorize_trigger(principal)
    assert idp.graph_calls == calls + 1


def test_graph_token_refused_fails_closed(idp: LocalIdentityProvider, graph_app: dict[str, str]) -> None:
    auth = make_auth(idp, aad_group_id=GROUP, graph_client_id=graph_app["graph_client_id"], graph_client_secret="wrong")
    oid = str(uuid.uuid4())
    idp.memberships[oid] = {GROUP}
    before = idp.graph_calls
    with pytest.raises(Forbidden) as caught:
        auth.authorize_trigger(user(idp, auth, oid=oid, **OVERAGE))
    assert caught.value.code == "GroupCheckFailed"
    assert idp.graph_calls == before  # no Graph call without a token


def test_graph_unreachable_fails_closed(idp: LocalIdentityProvider, graph_app: dict[str, str]) -> None:
    auth = make_auth(idp, aad_group_id=GROUP, graph_endpoint="https://127.0.0.1:9", **graph_app)
    with pytest.raises(Forbidden) as caught:
        auth.authorize_trigger(user(idp, auth, oid=str(uuid.uuid4()), **OVERAGE))
    assert caught.value.code == "GroupCheckFailed"


def test_overage_checked_with_a_certificate_credential(idp: LocalIdentityProvider) -> None:
    client, pem = idp.register_certificate_client("graph-cert")
    auth = make_auth(idp, aad_group_id=GROUP, graph_client_id=client.client_id, graph_client_certificate_path=str(pem))
    oid = str(uuid.uuid4())
    idp.memberships[oid] = {GROUP}
    auth.authorize_trigger(user(idp, auth, oid=oid, **OVERAGE))


@pytest.fixture
def app_service_identity(idp: LocalIdentityProvider, monkeypatch: pytest.MonkeyPatch) -> str:
    """The Functions host's managed-identity endpoint, as App Service exposes it to the app."""
    client_id = str(uuid.uuid4())
    idp.managed_identities[client_id] = str(uuid.uuid4())
    monkeypatch.setenv("IDENTITY_ENDPOINT", idp.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", idp.identity_header)
    idp.identity_requests.clear()
    return client_id


def test_overage_checked_with_the_managed_identity(idp: LocalIdentityProvider, app_service_identity: str) -> None:
    """The deployed path: no JUNCTION_GRAPH_CLIENT_ID, the user-assigned identity (AZURE_CLIENT_ID)."""
    auth = make_auth(idp, aad_group_id=GROUP, managed_identity_client_id=app_service_identity)
    member, outsider = str(uuid.uuid4()), str(uuid.uuid4())
    idp.memberships[member] = {GROUP}
    auth.authorize_trigger(user(idp, auth, oid=member, **OVERAGE))
    with pytest.raises(Forbidden) as caught:
        auth.authorize_trigger(user(idp, auth, oid=outsider, **OVERAGE))
    assert caught.value.code != "GroupCheckFailed"  # answered by Graph: not a member
    assert idp.identity_requests[0] == {"api-version": "2019-08-01", "resource": idp.base_url, "client_id": app_service_identity}
    assert len(idp.identity_requests) == 1  # msal caches the identity's token


def test_managed_identity_refused_fails_closed(idp: LocalIdentityProvider, app_service_identity: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-platform-secret")
    auth = make_auth(idp, aad_group_id=GROUP, managed_identity_client_id=app_service_identity)
    oid = str(uuid.uuid4())
    idp.memberships[oid] = {GROUP}
    before = idp.graph_calls
    with pytest.raises(Forbidden) as caught:
        auth.authorize_trigger(user(idp, auth, oid=oid, **OVERAGE))
    assert caught.value.code == "GroupCheckFailed" and idp.graph_calls == before


def test_overage_without_oid_fails_closed(idp: LocalIdentityProvider, graph_app: dict[str, str]) -> None:
    auth = make_auth(idp, aad_group_id=GROUP, **graph_app)
    claims = idp.user_claims(AUDIENCE, **OVERAGE)
    del claims["oid"]
    with pytest.raises(Forbidden) as caught:
        auth.authorize_trigger(auth.authenticate(idp.mint(claims)))
    assert caught.value.code == "GroupCheckFailed"


def test_administrators_may_trigger_without_the_group(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp, aad_group_id=GROUP, aad_admin_group_id=ADMIN_GROUP)
    auth.authorize_trigger(user(idp, auth, groups=[ADMIN_GROUP]))


# -- triggers: applications -------------------------------------------------------------------


def test_app_only_token_with_the_trigger_role(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp, aad_group_id=GROUP)
    auth.authorize_trigger(app(idp, auth, ["Junction.Trigger"]))


def test_app_only_token_without_the_trigger_role(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp)
    with pytest.raises(Forbidden) as caught:
        auth.authorize_trigger(app(idp, auth, ["Something.Else"]))
    assert caught.value.code == "MissingRole"


def test_app_only_token_in_the_group_still_needs_a_role(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp, aad_group_id=GROUP)
    with pytest.raises(Forbidden):
        auth.authorize_trigger(app(idp, auth, [], groups=[GROUP]))


def test_app_only_token_with_the_admin_role_may_trigger(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp, aad_admin_role="Junction.Admin")
    auth.authorize_trigger(app(idp, auth, ["Junction.Admin"]))


def test_custom_trigger_role(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp, aad_trigger_role="Webhook.Caller")
    auth.authorize_trigger(app(idp, auth, ["Webhook.Caller"]))
    with pytest.raises(Forbidden):
        auth.authorize_trigger(app(idp, auth, ["Junction.Trigger"]))


def test_neither_scp_nor_roles_is_401(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp)
    with pytest.raises(Unauthorized):
        auth.authenticate(idp.mint(idp.app_claims(AUDIENCE, roles=None)))


# -- management -------------------------------------------------------------------------------


def test_app_only_token_with_the_admin_role(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp, aad_admin_role="Junction.Admin")
    auth.authorize_admin(app(idp, auth, ["Junction.Admin"]))


def test_app_only_token_without_the_admin_role(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp, aad_admin_role="Junction.Admin", aad_admin_group_id=ADMIN_GROUP)
    with pytest.raises(Forbidden) as caught:
        auth.authorize_admin(app(idp, auth, ["Junction.Trigger"], groups=[ADMIN_GROUP]))
    assert caught.value.code == "NotAdministrator"


def test_user_in_the_admin_group(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp, aad_admin_group_id=ADMIN_GROUP)
    auth.authorize_admin(user(idp, auth, groups=[ADMIN_GROUP]))
    with pytest.raises(Forbidden):
        auth.authorize_admin(user(idp, auth, groups=[GROUP]))


def test_user_with_the_admin_role(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp, aad_admin_role="Junction.Admin")
    auth.authorize_admin(user(idp, auth, roles=["Junction.Admin"]))
    with pytest.raises(Forbidden):
        auth.authorize_admin(user(idp, auth, roles=["Junction.Trigger"]))


def test_admin_group_via_overage(idp: LocalIdentityProvider, graph_app: dict[str, str]) -> None:
    auth = make_auth(idp, aad_admin_group_id=ADMIN_GROUP, **graph_app)
    oid = str(uuid.uuid4())
    idp.memberships[oid] = {ADMIN_GROUP}
    auth.authorize_admin(user(idp, auth, oid=oid, **OVERAGE))
    with pytest.raises(Forbidden):
        auth.authorize_admin(user(idp, auth, oid=str(uuid.uuid4()), **OVERAGE))


def test_without_admin_settings_no_token_is_admin(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp)
    with pytest.raises(Forbidden):
        auth.authorize_admin(app(idp, auth, ["Junction.Admin"]))
    with pytest.raises(Forbidden):
        auth.authorize_admin(user(idp, auth, roles=["Junction.Admin"], groups=[ADMIN_GROUP]))


def test_other_principals_are_refused(idp: LocalIdentityProvider) -> None:
    auth = make_auth(idp, aad_admin_role="Junction.Admin")
    with pytest.raises(Forbidden):
        auth.authorize_admin(Principal(kind="pat", roles=("Junction.Admin",)))
    with pytest.raises(Forbidden):
        auth.authorize_trigger(Principal(kind="anonymous"))
