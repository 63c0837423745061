"""The CLI's msal sign-in (``cli.aad_login``) against the local HTTPS identity provider.

Tokens acquired here go through ``AadAuthenticator`` too: what the CLI gets, Junction accepts.
"""

from __future__ import annotations

import stat
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.aad_login import AadLoginError, acquire_token
from core.identity.aad import AadAuthenticator
from core.kernel.errors import Forbidden
from tests.support.idp import AUDIENCE, DeviceUser, LocalIdentityProvider, aad_settings, running_idp

SCOPES = [f"{AUDIENCE}/.default"]


def _sign_in(idp: LocalIdentityProvider, client_id: str, **credential: object) -> str:
    """Calls the CLI's sign-in against the local provider; ``credential`` names the flow."""
    credential.setdefault("scopes", SCOPES)
    return acquire_token(tenant_id=idp.tenant_id, client_id=client_id, authority_host=idp.base_url, **credential)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentityProvider]:
    yield from running_idp(tmp_path_factory.mktemp("idp"))


@pytest.fixture
def auth(idp: LocalIdentityProvider) -> AadAuthenticator:
    return AadAuthenticator(aad_settings(idp, aad_admin_role="Junction.Admin"))


def test_client_secret(idp: LocalIdentityProvider, auth: AadAuthenticator, tmp_path: Path) -> None:
    secret = uuid.uuid4().hex
    client = idp.register_client(secret=secret, roles=("Junction.Trigger",))
    cache = tmp_path / "home" / ".junction" / "msal_cache.json"
    token = _sign_in(idp, client.client_id, client_secret=secret, cache_path=cache)
    principal = auth.authenticate(token)
    assert principal.claims["azp"] == client.client_id
    assert principal.claims["idtyp"] == "app"
    auth.authorize_trigger(principal)
    with pytest.raises(Forbidden):
        auth.authorize_admin(principal)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    assert secret not in cache.read_text()

    before = idp.token_requests
    again = _sign_in(idp, client.client_id, client_secret=secret, cache_path=cache)
    assert again == token  # served from msal's cache on disk
    assert idp.token_requests == before


def test_certificate(idp: LocalIdentityProvider, auth: AadAuthenticator, tmp_path: Path) -> None:
    client, pem = idp.register_certificate_client("cli-cert", roles=("Junction.Admin",))
    token = _sign_in(idp, client.client_id, certificate_path=pem, cache_path=tmp_path / "cache.json")
    principal = auth.authenticate(token)
    assert principal.roles == ("Junction.Admin",)
    auth.authorize_admin(principal)


def test_certificate_of_another_app_is_refused(idp: LocalIdentityProvider, tmp_path: Path) -> None:
    client, _ = idp.register_certificate_client("registered")
    _, other_pem = idp.register_certificate_client("someone-else")
    with pytest.raises(AadLoginError, match="invalid_client"):
        _sign_in(idp, client.client_id, certificate_path=other_pem, cache_path=None)


def test_wrong_secret(idp: LocalIdentityProvider, tmp_path: Path) -> None:
    client = idp.register_client(secret="right")
    with pytest.raises(AadLoginError, match="invalid_client") as caught:
        _sign_in(idp, client.client_id, client_secret="wrong-secret-value", cache_path=tmp_path / "c.json")
    assert "wrong-secret-value" not in str(caught.value)
    assert not (tmp_path / "c.json").exists()


def test_explicit_ca_bundle(idp: LocalIdentityProvider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    secret = uuid.uuid4().hex
    client = idp.register_client(secret=secret, roles=("Junction.Trigger",))
    token = _sign_in(idp, client.client_id, client_secret=secret, cache_path=None, ca_bundle=idp.ca_path)
    assert token.count(".") == 2


def test_untrusted_identity_provider(idp: LocalIdentityProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    client = idp.register_client(secret="x")
    with pytest.raises(AadLoginError, match="could not sign in"):
        _sign_in(idp, client.client_id, client_secret="x", cache_path=None)


def test_device_code(
    idp: LocalIdentityProvider, auth: AadAuthenticator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = idp.register_client()  # a public client: no secret
    idp.device_user = None
    cache = tmp_path / "device-cache.json"
    scopes = [f"{AUDIENCE}/access_as_user"]
    result: dict[str, str] = {}

    def sign_in() -> None:
        result["token"] = _sign_in(idp, client.client_id, scopes=scopes, device_code=True, cache_path=cache)

    worker = threading.Thread(target=sign_in, daemon=True)
    worker.start()
    while idp.device_codes_issued == 0 and worker.is_alive():
        worker.join(0.05)
    idp.device_user = DeviceUser(name="Ada Lovelace")  # the person completes the sign-in
    worker.join(30)
    assert "token" in result
    principal = auth.authenticate(result["token"])
    assert principal.name == "Ada Lovelace"
    assert principal.claims["scp"] == "access_as_user"
    assert "enter the code" in capsys.readouterr().err
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600

    issued = idp.device_codes_issued
    again = _sign_in(idp, client.client_id, scopes=scopes, device_code=True, cache_path=cache)
    assert again == result["token"]  # the cached account's token, no second sign-in
    assert idp.device_codes_issued == issued


def test_exactly_one_credential() -> None:
    with pytest.raises(AadLoginError):
        acquire_token(tenant_id="t", client_id="c", scopes=SCOPES, client_secret="s", device_code=True)
    with pytest.raises(AadLoginError):
        acquire_token(tenant_id="t", client_id="c", scopes=SCOPES)
