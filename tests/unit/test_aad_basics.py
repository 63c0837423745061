"""Azure AD pieces that need no identity provider: routing, shapes, singleton, cold start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import core.identity.aad as aad
from core.identity.aad import AadAuthenticator, has_group_overage, is_app_only
from core.identity.graph import load_certificate_credential
from core.identity.jwt import looks_like_jwt
from core.kernel.errors import Unauthorized
from core.kernel.settings import Settings, StorageSettings

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ROOT = Path(__file__).resolve().parents[2]


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "storage": StorageSettings(connection_string="UseDevelopmentStorage=true"),
        "aad_tenant_id": TENANT,
        "aad_audiences": ("api://junction",),
        "aad_authority_host": "https://127.0.0.1:9",  # nothing listens: no network is expected
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfQ.c2ln", True),
        ("eyJhbGciOiJub25lIn0.eyJhIjoxfQ.", True),  # shaped like a JWS; refused later
        ("jct_abc.def.ghi", False),
        ("jct_" + "x" * 43, False),
        ("a.b.c.d.e", False),  # JWE
        ("a.b", False),
        ("", False),
        ("a b.c.d", False),
        ("a=.b.c", False),
        ("a." * 10000 + "b.c", False),
    ],
)
def test_looks_like_jwt(token: str, expected: bool) -> None:
    assert looks_like_jwt(token) is expected


def test_app_only_and_overage_markers() -> None:
    assert is_app_only({"roles": ["x"], "idtyp": "app"})
    assert is_app_only({"roles": ["x"]})
    assert not is_app_only({"scp": "access_as_user"})
    assert has_group_overage({"_claim_names": {"groups": "src1"}})
    assert has_group_overage({"hasgroups": True})
    assert not has_group_overage({"_claim_names": {"other": "src1"}, "hasgroups": "true"})
    assert not has_group_overage({"groups": ["a"]})


def test_authenticator_needs_tenant_and_audience() -> None:
    with pytest.raises(ValueError):
        AadAuthenticator(settings(aad_tenant_id=None))
    with pytest.raises(ValueError):
        AadAuthenticator(settings(aad_audiences=()))


@pytest.mark.parametrize(
    "token",
    ["", "a.b.c.d.e", "eyJhbGciOiJub25lIn0.eyJhIjoxfQ.", "eyJhbGciOiJIUzI1NiJ9.eyJhIjoxfQ.c2ln", "!!!.b.c"],
)
def test_bad_tokens_never_reach_the_network(token: str) -> None:
    auth = AadAuthenticator(settings())
    with pytest.raises(Unauthorized) as caught:
        auth.authenticate(token)
    assert caught.value.error == "invalid_token"
    assert auth.keys.downloads == 0


def test_singleton_is_none_without_a_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    aad.reset_aad_authenticator()
    monkeypatch.setattr(aad, "get_settings", lambda: settings(aad_tenant_id=None, aad_audiences=()))
    assert aad.get_aad_authenticator() is None
    monkeypatch.setattr(aad, "get_settings", lambda: settings())
    first = aad.get_aad_authenticator()
    assert first is not None and aad.get_aad_authenticator() is first
    aad.reset_aad_authenticator()


def test_certificate_credential_from_pem(tmp_path: Path) -> None:
    from tests.support.idp import make_self_signed_certificate, write_certificate_pem

    key, cert = make_self_signed_certificate("cli")
    pem = write_certificate_pem(tmp_path / "c.pem", key, cert)
    credential = load_certificate_credential(pem)
    assert credential["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert credential["public_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    (tmp_path / "key-only.pem").write_text(credential["private_key"])
    with pytest.raises(ValueError):
        load_certificate_credential(tmp_path / "key-only.pem")
    assert load_certificate_credential(tmp_path / "x.pfx") == {
        "private_key_pfx_path": str(tmp_path / "x.pfx"),
        "public_certificate": True,
    }


def test_import_is_cheap() -> None:
    """Cold start: importing core.identity.aad must not import msal or requests."""
    code = "import sys, core.identity.aad; print('msal' in sys.modules, 'requests' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
