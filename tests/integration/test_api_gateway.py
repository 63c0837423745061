"""prepare_call against Azurite, the local Azure AD issuer and real certificates (core.apiops.gateway)."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.apiops import bindings as apis
from core.apiops.gateway import error_headers, prepare_call
from core.identity import apikeys, users
from core.identity.aad import AadAuthenticator
from core.kernel.errors import (
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
)
from core.kernel.settings import ClientCertificateSettings, Settings
from core.scenarios import repository as scenarios
from core.store import tables
from core.store.storage import Storage
from core.web import cors
from core.web.exchange import Request
from tests.support.idp import AUDIENCE, LocalIdentityProvider, aad_settings, running_idp
from tests.support.pki import Authority, header_value

DOCS = Path(__file__).resolve().parents[1] / "support" / "openapi"
ROOT = Authority("Contoso Root CA")
OTHER = Authority("Fabrikam Root CA")


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentityProvider]:
    yield from running_idp(tmp_path_factory.mktemp("idp"))


@pytest.fixture
def api(storage: Storage, settings: Settings) -> dict[str, Any]:
    sid = scenarios.create_scenario(storage, {"name": "pets", "process": {"steps": [{"type": "return", "value": "ok"}]}}).id
    apis.import_api(storage, "petstore", (DOCS / "petstore-openapi30.yaml").read_bytes(), "application/yaml")
    return {"scenarioId": sid}


def bind(storage: Storage, settings: Settings, op_id: str, body: dict[str, Any]) -> None:
    apis.bind_operation(storage, settings, "petstore", op_id, body)


def call(storage: Storage, settings: Settings, method: str, target: str, *, headers: dict[str, str] | None = None, body: bytes = b"", scheme: str = "https", **kwargs: Any) -> Any:
    path, _, query = target.partition("?")
    parsed: dict[str, list[str]] = {}
    for pair in filter(None, query.split("&")):
        name, _, value = pair.partition("=")
        parsed.setdefault(name, []).append(value)
    request = Request(method, f"{scheme}://pets.example{target}", path, headers={k.lower(): v for k, v in (headers or {}).items()}, query=parsed, body=body, client_ip="203.0.113.9")
    return prepare_call(storage, settings, request, **kwargs)


def test_trigger_data_for_an_anonymous_operation(storage: Storage, settings: Settings, api: dict[str, Any]) -> None:
    bind(storage, settings, "searchPets", {**api})
    prepared = call(
        storage, settings, "GET", "/api/pet/search?ids=1,2&tags=a&tags=b&extra=x",
        headers={"X-Request-Id": "r-1", "X-Ids": "3,4", "Cookie": "session=s1; theme=dark", "Authorization": "Basic c2VjcmV0", "Accept": "application/xml"},
    )  # fmt: skip
    assert prepared.reply is None and prepared.scenario_id == api["scenarioId"]
    data = prepared.trigger["data"]
    assert prepared.trigger["type"] == "api"
    assert data["httpMethod"] == "GET" and data["httpClientIp"] == "203.0.113.9"
    assert data["httpRequestUri"] == "https://pets.example/api/pet/search?ids=1,2&tags=a&tags=b&extra=x"
    assert data["query"]["ids"] == [1, 2] and data["query"]["tags"] == ["a", "b"] and data["query"]["extra"] == "x"
    assert data["query"]["limit"] == 20 and data["query"]["ratio"] is None and data["query"]["active"] is True
    assert data["header"]["X-Ids"] == [3, 4] and data["header"]["X-Request-Id"] == "r-1" and data["header"]["X-Trace"] is None
    assert "authorization" not in data["header"] and "cookie" not in data["header"]
    assert data["httpCookies"] == {"session": "s1", "theme": "dark"}
    assert data["username"] is None and data["body"] is None and data["httpBody"] == ""
    assert prepared.trigger["operation"] == {"api": "petstore", "operationId": "searchPets", "method": "GET", "path": "/api/pet/search"}
    assert prepared.accept == "application/xml"


def test_404_and_405(storage: Storage, settings: Settings, api: dict[str, Any]) -> None:
    bind(storage, settings, "getPetById", api)
    bind(storage, settings, "getStatus", api)
    assert call(storage, settings, "GET", "/api/pet/7").trigger["data"]["path"] == {"id": 7}
    assert call(storage, settings, "GET", "/api/pet/getStatus").trigger["operation"]["operationId"] == "getStatus"
    with pytest.raises(NotFound):
        call(storage, settings, "GET", "/api/pet/fido")
    with pytest.raises(NotFound):
        call(storage, settings, "POST", "/api/pet")  # addPet exists in the document but is not bound
    with pytest.raises(MethodNotAllowed) as caught:
        call(storage, settings, "DELETE", "/api/pet/7")
    assert caught.value.allow == ["GET"]


def test_protocols(storage: Storage, settings: Settings, api: dict[str, Any]) -> None:
    bind(storage, settings, "getStatus", {**api, "allowedProtocols": ["https"]})
    with pytest.raises(Forbidden) as caught:
        call(storage, settings, "GET", "/api/pet/getStatus", scheme="http")
    assert caught.value.code == "ProtocolNotAllowed"
    assert call(storage, settings, "GET", "/api/pet/getStatus", scheme="http", headers={"X-Forwarded-Proto": "https"}).reply is None


def test_cors_allowed_refused_and_preflight(storage: Storage, settings: Settings, api: dict[str, Any]) -> None:
    users.create_user(storage, {"username": "ada", "password": "correct horse"})
    bind(storage, settings, "getPetById", {**api, "authentication": {"type": "basic"}, "cors": {"allowedOrigins": "https://app.example; https://admin.example"}})
    preflight = call(storage, settings, "OPTIONS", "/api/pet/5", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
    assert preflight.reply is not None and preflight.reply.status == 204 and preflight.trigger is None
    assert preflight.reply.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert preflight.reply.headers["Access-Control-Allow-Methods"] == "GET"
    assert preflight.reply.headers["Access-Control-Allow-Headers"] == "authorization"
    refused = call(storage, settings, "OPTIONS", "/api/pet/5", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in refused.reply.headers and refused.reply.headers["Vary"].startswith("Origin")
    auth = "Basic " + base64.b64encode(b"ada:correct horse").decode()
    allowed = call(storage, settings, "GET", "/api/pet/5", headers={"Origin": "https://admin.example", "Authorization": auth})
    assert allowed.headers == {"Vary": "Origin", "Access-Control-Allow-Origin": "https://admin.example", "Access-Control-Expose-Headers": cors.EXPOSED_HEADERS}
    assert "Access-Control-Expose-Headers" not in preflight.reply.headers  # read on actual responses only
    other = call(storage, settings, "GET", "/api/pet/5", headers={"Origin": "https://evil.example", "Authorization": auth})
    assert other.headers == {"Vary": "Origin"}
    with pytest.raises(Unauthorized) as caught:
        call(storage, settings, "GET", "/api/pet/5", headers={"Origin": "https://app.example"})
    headers = error_headers(caught.value)
    assert headers["Access-Control-Allow-Origin"] == "https://app.example" and headers["WWW-Authenticate"].startswith("Basic")


def test_basic_authentication(storage: Storage, settings: Settings, api: dict[str, Any]) -> None:
    users.create_user(storage, {"username": "Åsa", "password": "pässwörd-1"})
    bind(storage, settings, "getStatus", {**api, "authentication": {"type": "basic"}})

    def basic(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    prepared = call(storage, settings, "GET", "/api/pet/getStatus", headers=basic("åsa", "pässwörd-1"))
    assert prepared.trigger["data"]["username"] == "Åsa"
    for headers in (basic("Åsa", "wrong"), basic("nobody", "pässwörd-1"), {}, {"Authorization": "Basic %%%"}):
        with pytest.raises(Unauthorized):
            call(storage, settings, "GET", "/api/pet/getStatus", headers=headers)


def test_basic_failures_are_throttled(storage: Storage, settings: Settings) -> None:
    users.create_user(storage, {"username": "bob", "password": "long enough"})
    throttle = users.FailureThrottle()
    auth = "Basic " + base64.b64encode(b"bob:nope").decode()
    for _ in range(5):
        with pytest.raises(Unauthorized):
            users.verify_basic(storage, auth, throttle=throttle)
    with pytest.raises(TooManyRequests) as caught:  # 429 with Retry-After
        users.verify_basic(storage, "Basic " + base64.b64encode(b"BOB:long enough").decode(), throttle=throttle)
    assert caught.value.retry_after > 200 and caught.value.code == "TooManyFailedSignIns"


def test_unknown_user_costs_a_hash_too(storage: Storage) -> None:
    """An unknown name does the same scrypt work as a wrong password, so timing tells nothing."""
    users.create_user(storage, {"username": "carol", "password": "long enough"})
    throttle = users.FailureThrottle(limit=100)

    def hashes_for(raw: bytes) -> int:
        before = users.HASHES.count
        with pytest.raises(Unauthorized):
            users.verify_basic(storage, "Basic " + base64.b64encode(raw).decode(), throttle=throttle)
        return users.HASHES.count - before

    assert hashes_for(b"carol:wrong password") == hashes_for(b"nobody-here:wrong password") == 1


def test_user_management(storage: Storage) -> None:
    users.create_user(storage, {"username": "Dave", "password": "long enough"})
    from core.kernel.errors import Conflict

    with pytest.raises(Conflict):
        users.create_user(storage, {"username": "DAVE", "password": "another one"})
    with pytest.raises(BadRequest):
        users.create_user(storage, {"username": "x:y", "password": "long enough"})
    with pytest.raises(BadRequest):
        users.create_user(storage, {"username": "short", "password": "1234"})
    assert [u["username"] for u in users.list_users(storage)] == ["Dave"]
    users.delete_user(storage, "dave")
    with pytest.raises(NotFound):
        users.delete_user(storage, "dave")


def test_api_keys(storage: Storage, settings: Settings, api: dict[str, Any]) -> None:
    bind(storage, settings, "getPetById", {**api, "authentication": {"type": "apiKey"}})
    created = apikeys.create_apikey(storage, {"name": "partner", "ruleset": [{"path": "/api/pet/*", "methods": ["get"]}]})
    narrow = apikeys.create_apikey(storage, {"name": "status-only", "ruleset": [{"path": "/api/pet/getStatus", "methods": "*"}]})
    assert created["key"].startswith("jak_") and "key" not in apikeys.list_apikeys(storage)[0]
    prepared = call(storage, settings, "GET", "/api/pet/5", headers={"X-Api-Key": created["key"]})
    assert prepared.trigger["data"]["username"] == "partner"
    assert "x-api-key" not in prepared.trigger["data"]["header"]
    with pytest.raises(Forbidden):
        call(storage, settings, "GET", "/api/pet/5", headers={"X-Api-Key": narrow["key"]})
    with pytest.raises(Unauthorized):
        call(storage, settings, "GET", "/api/pet/5", headers={"X-Api-Key": created["key"][:-1] + ("A" if created["key"][-1] != "A" else "B")})
    with pytest.raises(Unauthorized):
        call(storage, settings, "GET", "/api/pet/5")
    apikeys.delete_apikey(storage, created["id"])
    with pytest.raises(Unauthorized):
        call(storage, settings, "GET", "/api/pet/5", headers={"X-Api-Key": created["key"]})


def test_certificates(storage: Storage, settings: Settings, api: dict[str, Any]) -> None:
    settings = dataclasses.replace(settings, client_certificates=ClientCertificateSettings(enabled=True))
    bind(storage, settings, "getStatus", {**api, "authentication": {"type": "certificate", "trustedIssuers": [ROOT.pem]}})
    leaf = header_value(ROOT.issue("Partner"))
    prepared = call(storage, settings, "GET", "/api/pet/getStatus", headers={"X-ARR-ClientCert": leaf})
    assert prepared.trigger["data"]["username"] == "CN=Partner,O=Contoso"
    assert "x-arr-clientcert" not in prepared.trigger["data"]["header"]
    with pytest.raises(Unauthorized):
        call(storage, settings, "GET", "/api/pet/getStatus", headers={"X-ARR-ClientCert": header_value(OTHER.issue("Partner"))})
    with pytest.raises(Forbidden):
        call(storage, settings, "GET", "/api/pet/getStatus", headers={"X-ARR-ClientCert": leaf}, scheme="http")


def test_certificates_are_trusted_only_where_the_deployment_asks_for_them(
    storage: Storage, settings: Settings, api: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """X-ARR-ClientCert is what the caller sent unless App Service asked for a certificate: with
    client certificates off, or under an exclusion path, a trusted partner's public certificate
    must not open the operation."""
    bind(storage, settings, "getStatus", {**api, "authentication": {"type": "certificate", "trustedIssuers": [ROOT.pem]}})
    leaf = header_value(ROOT.issue("Partner"))
    deployments = {
        "off": ClientCertificateSettings(enabled=False),
        "excluded": ClientCertificateSettings(enabled=True, exclusion_paths=("/ExternalData", "/API/pet")),
    }
    for name, deployment in deployments.items():
        caplog.clear()
        with pytest.raises(Unauthorized) as refused:
            call(storage, dataclasses.replace(settings, client_certificates=deployment), "GET", "/api/pet/getStatus", headers={"X-ARR-ClientCert": leaf})
        assert refused.value.code == "ClientCertificatesNotEnabled", name
        assert "the deployment is misconfigured for client certificates" in caplog.text, name
    on = dataclasses.replace(settings, client_certificates=ClientCertificateSettings(enabled=True, exclusion_paths=("/ExternalData",)))
    assert call(storage, on, "GET", "/api/pet/getStatus", headers={"X-ARR-ClientCert": leaf}).trigger["data"]["username"] == "CN=Partner,O=Contoso"


def test_oauth2(storage: Storage, settings: Settings, api: dict[str, Any], idp: LocalIdentityProvider) -> None:
    aad_on = dataclasses.replace(settings, aad_tenant_id=idp.tenant_id, aad_audiences=(AUDIENCE,), aad_authority_host=idp.base_url)
    bind(storage, aad_on, "getPetById", {**api, "authentication": {"type": "oauth2"}})  # scopes from the document
    bind(storage, aad_on, "getStatus", {**api, "authentication": {"type": "oauth2", "scopes": ["Pets.Admin"]}})
    auth = AadAuthenticator(aad_settings(idp))

    def bearer(**claims: Any) -> dict[str, str]:
        return {"Authorization": "Bearer " + idp.mint(idp.user_claims(AUDIENCE, **claims))}

    prepared = call(storage, aad_on, "GET", "/api/pet/1", headers=bearer(scp="openid pets.read"), aad=auth)
    assert prepared.trigger["data"]["username"] == "Grace Hopper"
    assert prepared.trigger["claims"]["scp"] == "openid pets.read"
    app_token = {"Authorization": "Bearer " + idp.mint(idp.app_claims(AUDIENCE, roles=["Pets.Admin"]))}
    assert call(storage, aad_on, "GET", "/api/pet/getStatus", headers=app_token, aad=auth).trigger["claims"]["roles"] == ["Pets.Admin"]
    with pytest.raises(Forbidden) as caught:
        call(storage, aad_on, "GET", "/api/pet/1", headers=bearer(scp="openid"), aad=auth)
    assert caught.value.error == "insufficient_scope"
    assert 'error="insufficient_scope"' in error_headers(caught.value)["WWW-Authenticate"]
    assert 'scope="pets.read pets.write"' in error_headers(caught.value)["WWW-Authenticate"]
    with pytest.raises(Unauthorized) as caught:
        call(storage, aad_on, "GET", "/api/pet/1", headers={"Authorization": "Bearer " + idp.mint(idp.user_claims("api://other", scp="pets.read"))}, aad=auth)
    assert caught.value.error == "invalid_token"
    with pytest.raises(Unauthorized) as caught:
        call(storage, aad_on, "GET", "/api/pet/1", aad=auth)
    assert caught.value.error is None and "error=" not in error_headers(caught.value)["WWW-Authenticate"]


def test_oauth2_with_a_configured_issuer(storage: Storage, settings: Settings, api: dict[str, Any], idp: LocalIdentityProvider) -> None:
    """oauth2 with a configured issuer (docs/api-operations.md): any OpenID Connect issuer the operator lists in
    JUNCTION_OAUTH_ISSUERS, with the binding's own audience; Azure AD need not be on."""
    issuer = idp.issuer_v2
    trusting = dataclasses.replace(settings, oauth_issuers=(issuer,))
    binding = {**api, "authentication": {"type": "oauth2", "issuer": issuer, "audience": "partner-api", "scopes": ["orders.read"]}}
    with pytest.raises(BadRequest) as refused:  # an issuer the operator did not list
        bind(storage, settings, "getPetById", binding)
    assert refused.value.code == "IssuerNotAllowed"
    with pytest.raises(BadRequest):  # an issuer without an audience
        bind(storage, trusting, "getPetById", {**api, "authentication": {"type": "oauth2", "issuer": issuer}})
    bind(storage, trusting, "getPetById", binding)

    def bearer(**claims: Any) -> dict[str, str]:
        now = int(time.time())
        base = {"iss": issuer, "aud": "partner-api", "sub": "partner-7", "iat": now, "exp": now + 600, "scope": "orders.read profile"}
        return {"Authorization": "Bearer " + idp.mint({**base, **claims})}

    prepared = call(storage, trusting, "GET", "/api/pet/1", headers=bearer(preferred_username="acme-erp"))
    assert prepared.trigger["data"]["username"] == "acme-erp" and prepared.trigger["claims"]["sub"] == "partner-7"
    for wrong in ({"aud": AUDIENCE}, {"iss": idp.issuer_v1}, {"exp": int(time.time()) - 3600}, {"exp": float("nan")}):
        with pytest.raises(Unauthorized) as caught:
            call(storage, trusting, "GET", "/api/pet/1", headers=bearer(**wrong))
        assert caught.value.error == "invalid_token", wrong
    with pytest.raises(Unauthorized):  # signed by a key the issuer does not publish
        forged = idp.mint({"iss": issuer, "aud": "partner-api", "iat": int(time.time()), "exp": int(time.time()) + 60, "scope": "orders.read"})
        header, payload, _ = forged.split(".")
        call(storage, trusting, "GET", "/api/pet/1", headers={"Authorization": f"Bearer {header}.{payload}.AAAA"})
    with pytest.raises(Forbidden) as caught:
        call(storage, trusting, "GET", "/api/pet/1", headers=bearer(scope="profile"))
    assert caught.value.error == "insufficient_scope"
    with pytest.raises(Unauthorized) as caught:  # the operator withdrew the issuer: bindings stop at once
        call(storage, settings, "GET", "/api/pet/1", headers=bearer())
    assert "no longer trusted" in caught.value.message


def test_bodies(storage: Storage, settings: Settings, api: dict[str, Any]) -> None:
    bind(storage, settings, "addPet", api)
    pet = {"name": "rex", "photoUrls": [], "category": {"id": 1, "name": "dogs"}}
    prepared = call(storage, settings, "POST", "/api/pet", headers={"Content-Type": "application/json"}, body=json.dumps(pet).encode())
    assert prepared.trigger["data"]["body"] == pet and json.loads(prepared.trigger["data"]["httpBody"]) == pet
    with pytest.raises(BadRequest) as caught:
        call(storage, settings, "POST", "/api/pet", headers={"Content-Type": "application/json"}, body=b'{"name": ""}')
    assert caught.value.message.startswith("body") and "schema path" in caught.value.message
    xml = call(storage, settings, "POST", "/api/pet", headers={"Content-Type": "application/xml"}, body=b"<Pet><name>rex</name></Pet>")
    assert xml.trigger["data"]["body"] == {"Pet": {"name": "rex"}}
    with pytest.raises(BadRequest):
        call(storage, settings, "POST", "/api/pet", headers={"Content-Type": "application/json"})
    with pytest.raises(UnsupportedMediaType):
        call(storage, settings, "POST", "/api/pet", headers={"Content-Type": "text/csv"}, body=b"a,b")
    with pytest.raises(UnsupportedMediaType) as compressed:
        call(storage, settings, "POST", "/api/pet", headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, body=json.dumps(pet).encode())
    assert compressed.value.code == "UnsupportedContentEncoding" and compressed.value.headers["Accept-Encoding"] == "identity"
    with pytest.raises(BadRequest):
        call(storage, settings, "POST", "/api/pet", headers={"Content-Type": "application/json"}, body=b"{bad")


def _stored_text(storage: Storage, table: str) -> str:
    """Every property of every entity in ``table``, as text (bytes decoded leniently)."""
    parts = []
    for entity in storage.table(table).list_entities():
        for value in entity.values():
            parts.append(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
    return "\n".join(parts)


def test_api_keys_and_passwords_are_stored_only_as_hashes(storage: Storage) -> None:
    import base64
    import hashlib

    created = apikeys.create_apikey(storage, {"name": "hashed", "ruleset": [{"path": "/api/*"}]})
    password = "correct horse battery staple"
    users.create_user(storage, {"username": "hashed-user", "password": password})
    keys_text, users_text = _stored_text(storage, tables.APIKEYS), _stored_text(storage, tables.USERS)
    secret = created["key"]
    for text in (keys_text, users_text):
        for form in (secret, secret.removeprefix("jak_"), password, base64.b64encode(password.encode()).decode()):
            assert form not in text
    key_entity = next(e for e in storage.table(tables.APIKEYS).list_entities() if e["RowKey"] == created["id"])
    assert key_entity["Hash"] == hashlib.sha256(secret.encode()).hexdigest()
    user = next(e for e in storage.table(tables.USERS).list_entities() if e["Username"] == "hashed-user")
    salt = base64.b64decode(user["Salt"])
    assert base64.b64decode(user["Hash"]) == users._scrypt(password, salt) and user["Params"].startswith("scrypt:")
