"""Azure AD token validation against a real local HTTPS identity provider.

Each refusal asserts *why* the token was refused, so a test cannot pass because some earlier,
unrelated check happened to fail.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from core.identity.aad import AadAuthenticator
from core.identity.jwt import CLOCK_SKEW_SECONDS
from core.kernel.errors import Unauthorized
from tests.support.idp import (
    API_CLIENT_ID,
    AUDIENCE,
    GRAPH_APP_ID,
    LocalIdentityProvider,
    aad_settings,
    new_rsa_key,
    running_idp,
)

NOW = 1_800_000_000.0  # a fixed "now" for the tests where time matters


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentityProvider]:
    yield from running_idp(tmp_path_factory.mktemp("idp"))


@pytest.fixture
def auth(idp: LocalIdentityProvider) -> AadAuthenticator:
    return AadAuthenticator(aad_settings(idp))


@pytest.fixture
def fixed_auth(idp: LocalIdentityProvider) -> AadAuthenticator:
    return AadAuthenticator(aad_settings(idp), clock=lambda: NOW)


def refused(auth: AadAuthenticator, token: str, reason: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        auth.authenticate(token)
    assert caught.value.error == "invalid_token"
    assert reason in caught.value.message, caught.value.message
    return caught.value


# -- accepted tokens --------------------------------------------------------------------------


def test_valid_v2_user_token(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    claims = idp.user_claims(AUDIENCE, oid="0b5b7e44-9f1c-4a3e-8d3f-2a9a4c1f0e11", groups=["g1"])
    principal = auth.authenticate(idp.mint(claims))
    assert principal.kind == "aad"
    assert principal.name == "Grace Hopper"
    assert principal.oid == "0b5b7e44-9f1c-4a3e-8d3f-2a9a4c1f0e11"
    assert principal.tid == idp.tenant_id
    assert principal.groups == ("g1",)
    assert principal.claims["iss"] == idp.issuer_v2
    assert principal.claims["scp"] == "access_as_user"


def test_valid_v1_token_with_client_id_audience(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    claims = idp.user_claims(API_CLIENT_ID, version=1)
    del claims["name"]
    principal = auth.authenticate(idp.mint(claims))
    assert principal.claims["iss"] == f"https://sts.windows.net/{idp.tenant_id}/"
    assert principal.name == "grace@contoso.example"  # upn when there is no name


def test_app_only_token_is_named_after_the_application(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    claims = idp.app_claims(AUDIENCE, roles=["Junction.Trigger"], azp="app-client-id")
    principal = auth.authenticate(idp.mint(claims))
    assert principal.name == "app-client-id"
    assert principal.roles == ("Junction.Trigger",)


def test_principal_claims_are_read_only(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    principal = auth.authenticate(idp.mint(idp.user_claims(AUDIENCE)))
    with pytest.raises(TypeError):
        principal.claims["scp"] = "admin"  # type: ignore[index]


# -- issuer, tenant, audience -----------------------------------------------------------------


def test_wrong_tenant_issuer(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    other = "11111111-2222-3333-4444-555555555555"
    claims = idp.user_claims(AUDIENCE, tid=other, iss=f"{idp.base_url}/{other}/v2.0")
    refused(auth, idp.mint(claims), "another issuer")


def test_wrong_tenant_in_tid_with_our_issuer(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    claims = idp.user_claims(AUDIENCE, tid="11111111-2222-3333-4444-555555555555")
    refused(auth, idp.mint(claims), "another tenant")


def test_issuer_must_match_exactly(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    for iss in (
        f"{idp.base_url}/{idp.tenant_id}/v2.0/",  # trailing slash
        f"https://sts.windows.net/{idp.tenant_id}",  # v1 without the slash
        f"https://login.microsoftonline.com/{idp.tenant_id}/v2.0",  # another authority host
        f"{idp.base_url}/common/v2.0",
    ):
        refused(auth, idp.mint(idp.user_claims(AUDIENCE, iss=iss)), "another issuer")


def test_wrong_audience(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    refused(auth, idp.mint(idp.user_claims("api://someone-else")), "another audience")


@pytest.mark.parametrize("aud", ["https://graph.microsoft.com", GRAPH_APP_ID, "00000002-0000-0000-c000-000000000000"])
def test_graph_audience_token(idp: LocalIdentityProvider, auth: AadAuthenticator, aud: str) -> None:
    refused(auth, idp.mint(idp.user_claims(aud)), "another audience")


def test_missing_audience(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    claims = idp.user_claims(AUDIENCE)
    del claims["aud"]
    refused(auth, idp.mint(claims), "'aud'")


# -- times ------------------------------------------------------------------------------------


def test_expired_within_skew_is_accepted(idp: LocalIdentityProvider, fixed_auth: AadAuthenticator) -> None:
    claims = idp.user_claims(AUDIENCE, now=NOW - 4000, exp=NOW - CLOCK_SKEW_SECONDS + 5)
    fixed_auth.authenticate(idp.mint(claims))


def test_expired_beyond_skew(idp: LocalIdentityProvider, fixed_auth: AadAuthenticator) -> None:
    claims = idp.user_claims(AUDIENCE, now=NOW - 4000, exp=NOW - CLOCK_SKEW_SECONDS - 1)
    refused(fixed_auth, idp.mint(claims), "expired")


def test_not_yet_valid(idp: LocalIdentityProvider, fixed_auth: AadAuthenticator) -> None:
    claims = idp.user_claims(AUDIENCE, now=NOW, nbf=NOW + CLOCK_SKEW_SECONDS + 1)
    refused(fixed_auth, idp.mint(claims), "not valid yet")


def test_not_before_within_skew_is_accepted(idp: LocalIdentityProvider, fixed_auth: AadAuthenticator) -> None:
    claims = idp.user_claims(AUDIENCE, now=NOW, nbf=NOW + CLOCK_SKEW_SECONDS - 5)
    fixed_auth.authenticate(idp.mint(claims))


def test_issued_in_the_future(idp: LocalIdentityProvider, fixed_auth: AadAuthenticator) -> None:
    claims = idp.user_claims(AUDIENCE, now=NOW + 3600)
    refused(fixed_auth, idp.mint(claims), "not valid yet")  # nbf = iat, an hour ahead


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_missing_time_claim(idp: LocalIdentityProvider, auth: AadAuthenticator, claim: str) -> None:
    claims = idp.user_claims(AUDIENCE)
    del claims[claim]
    refused(auth, idp.mint(claims), f"'{claim}'")


def test_non_numeric_exp(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    refused(auth, idp.mint(idp.user_claims(AUDIENCE, exp="tomorrow")), "number")


@pytest.mark.parametrize(("claim", "value"), [("exp", float("nan")), ("exp", float("inf")), ("exp", 10**30), ("nbf", float("nan")), ("iat", -1)])
def test_times_that_are_not_times(idp: LocalIdentityProvider, auth: AadAuthenticator, claim: str, value: float) -> None:
    """``exp: NaN`` compares false with everything: unchecked, it would never expire."""
    refused(auth, idp.mint(idp.user_claims(AUDIENCE, **{claim: value})), "not a time")


# -- algorithms and forgeries -----------------------------------------------------------------


def test_alg_none(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    refused(auth, idp.mint(idp.user_claims(AUDIENCE), alg="none"), "RS256")


def test_alg_none_with_a_signature_part(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    token = idp.mint(idp.user_claims(AUDIENCE), alg="none") + "c2lnbmF0dXJl"
    refused(auth, token, "RS256")


def test_hs256_signed_with_the_public_key(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    auth.authenticate(idp.mint(idp.user_claims(AUDIENCE)))  # keys are known
    token = idp.mint(idp.user_claims(AUDIENCE), alg="HS256", key=idp.public_key_pem())
    refused(auth, token, "RS256")


def test_hs256_header_on_an_rs256_signature(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    genuine = idp.mint(idp.user_claims(AUDIENCE))
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": idp.current_kid}).encode()).rstrip(b"=")
    refused(auth, header.decode() + genuine[genuine.index(".") :], "RS256")


def test_ps256_with_the_tenant_key(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    refused(auth, idp.mint(idp.user_claims(AUDIENCE), alg="PS256"), "RS256")


def test_es256(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    refused(auth, idp.mint(idp.user_claims(AUDIENCE), alg="ES256", key=key), "RS256")


def test_signed_by_a_stranger_under_a_known_kid(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    token = idp.mint(idp.user_claims(AUDIENCE), key=new_rsa_key())
    refused(auth, token, "signature")


def test_tampered_payload(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    head, _, signature = idp.mint(idp.user_claims(AUDIENCE)).split(".")
    evil = base64.urlsafe_b64encode(json.dumps(idp.user_claims(AUDIENCE, roles=["Junction.Admin"])).encode()).rstrip(
        b"="
    )
    refused(auth, f"{head}.{evil.decode()}.{signature}", "signature")


def test_unsigned_token_with_empty_signature(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    head, payload, _ = idp.mint(idp.user_claims(AUDIENCE)).split(".")
    refused(auth, f"{head}.{payload}.", "signature")


def test_crit_header_is_refused(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    token = idp.mint(idp.user_claims(AUDIENCE), header={"crit": ["exp"], "exp": 1})
    refused(auth, token, "header")


def test_no_kid(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    token = idp.mint(idp.user_claims(AUDIENCE), header={"kid": ""})
    refused(auth, token, "key id")


@pytest.mark.parametrize(
    "token",
    [
        "",
        " ",
        "Bearer",
        "a.b",
        "a.b.c.d.e",  # JWE shape
        "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d",
        "!!!.###.$$$",
        "eyJhbGciOiJSUzI1NiJ9.%%%.sig",
        "eyJub3QganNvbg.e30.c2ln",  # header is not JSON
        "W10.e30.c2ln",  # header is a JSON list
        "e30.e30.c2ln",  # header without alg
        "jct_" + "a" * 40,
        "a" * 20_000,
    ],
)
def test_malformed_tokens_are_401(auth: AadAuthenticator, token: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        auth.authenticate(token)
    assert caught.value.error == "invalid_token"


def test_payload_that_is_not_a_json_object(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    import jwt as pyjwt

    token = pyjwt.api_jws.encode(
        b"[1,2,3]", idp.keys[idp.current_kid], algorithm="RS256", headers={"kid": idp.current_kid}
    )
    with pytest.raises(Unauthorized):
        auth.authenticate(token)


# -- what kind of token -----------------------------------------------------------------------


def test_neither_scp_nor_roles(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    refused(auth, idp.mint(idp.app_claims(AUDIENCE, roles=None)), "neither")


def test_app_only_token_claiming_delegated_scopes(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    refused(auth, idp.mint(idp.user_claims(AUDIENCE, idtyp="app")), "app-only")


def test_roles_must_be_strings(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    refused(auth, idp.mint(idp.app_claims(AUDIENCE, roles=[{"x": 1}])), "'roles'")


def test_dead_identity_provider_gives_a_401(tmp_path: Path) -> None:
    with LocalIdentityProvider(tmp_path) as gone:
        settings = aad_settings(gone)
        token = gone.mint(gone.user_claims(AUDIENCE))
    auth = AadAuthenticator(settings, timeout=2.0)  # the IdP has stopped: nothing listens
    refused(auth, token, "does not publish")


def test_an_identity_provider_that_never_answers_is_time_boxed(tmp_path: Path) -> None:
    """A host that accepts connections and says nothing: the key download gives up (timeout)
    and the token is refused, instead of the request hanging."""
    with LocalIdentityProvider(tmp_path) as idp:
        token = idp.mint(idp.user_claims(AUDIENCE))
        settings = aad_settings(idp)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    settings = dataclasses.replace(settings, aad_authority_host=f"https://127.0.0.1:{port}")
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            AadAuthenticator(settings, timeout=0.5).authenticate(token)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(60)  # a hang guard, not a measurement
    silent.close()
    assert not worker.is_alive(), "authenticate() hung on a silent identity provider"
    assert len(outcome) == 1 and isinstance(outcome[0], Unauthorized)
