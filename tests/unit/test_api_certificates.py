"""Client certificate checks (core.identity.certificates) with real certificates made by cryptography."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization

from core.identity.certificates import parse_trusted_issuers, verify_client_certificate
from core.kernel.errors import BadRequest, Forbidden, Unauthorized
from tests.support.pki import Authority, header_value

ROOT = Authority("Contoso Root CA")
OTHER = Authority("Fabrikam Root CA")


def test_trusted_certificate_gives_its_subject() -> None:
    leaf = ROOT.issue("Alice")
    subject = verify_client_certificate(header_value(leaf), [ROOT.pem], scheme="https")
    assert subject == "CN=Alice,O=Contoso"


def test_pem_is_accepted_too() -> None:
    leaf = ROOT.issue("Bob")
    pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
    assert verify_client_certificate(pem, [ROOT.pem], scheme="https") == "CN=Bob,O=Contoso"


def test_untrusted_issuer() -> None:
    with pytest.raises(Unauthorized) as caught:
        verify_client_certificate(header_value(OTHER.issue("Mallory")), [ROOT.pem], scheme="https")
    assert "trusted issuer" in caught.value.message


def test_self_signed_lookalike_is_refused() -> None:
    # Same subject name as the root, different key: the name matches, the signature does not.
    fake = Authority("Contoso Root CA")
    with pytest.raises(Unauthorized):
        verify_client_certificate(header_value(fake.issue("Alice")), [ROOT.pem], scheme="https")


def test_expired_and_not_yet_valid() -> None:
    now = dt.datetime.now(dt.UTC)
    expired = ROOT.issue("Old", not_before=now - dt.timedelta(days=10), not_after=now - dt.timedelta(days=1))
    with pytest.raises(Unauthorized) as caught:
        verify_client_certificate(header_value(expired), [ROOT.pem], scheme="https")
    assert "expired" in caught.value.message
    future = ROOT.issue("New", not_before=now + dt.timedelta(days=1))
    with pytest.raises(Unauthorized):
        verify_client_certificate(header_value(future), [ROOT.pem], scheme="https")


def test_over_plain_http_is_forbidden() -> None:
    with pytest.raises(Forbidden):
        verify_client_certificate(header_value(ROOT.issue("Alice")), [ROOT.pem], scheme="http")


def test_client_auth_usage_is_required() -> None:
    with pytest.raises(Unauthorized) as caught:
        verify_client_certificate(header_value(ROOT.issue("Server", client_auth=False)), [ROOT.pem], scheme="https")
    assert "client authentication" in caught.value.message


def test_missing_and_garbage_headers() -> None:
    with pytest.raises(Unauthorized):
        verify_client_certificate(None, [ROOT.pem], scheme="https")
    with pytest.raises(Unauthorized):
        verify_client_certificate("not base64!", [ROOT.pem], scheme="https")
    with pytest.raises(Unauthorized):
        verify_client_certificate("aGVsbG8=", [ROOT.pem], scheme="https")


def test_intermediate_chain() -> None:
    intermediate = Authority("Contoso Issuing CA", parent=ROOT)
    leaf = intermediate.issue("Carol")
    assert verify_client_certificate(header_value(leaf), [ROOT.pem + intermediate.pem], scheme="https") == "CN=Carol,O=Contoso"
    assert verify_client_certificate(header_value(leaf), [intermediate.pem], scheme="https") == "CN=Carol,O=Contoso"
    with pytest.raises(Unauthorized):
        verify_client_certificate(header_value(leaf), [ROOT.pem], scheme="https")  # intermediate unknown


def test_trusted_issuers_are_validated_at_bind_time() -> None:
    assert parse_trusted_issuers([ROOT.pem]) == [ROOT.pem]
    with pytest.raises(BadRequest):
        parse_trusted_issuers(["not a pem"])
    leaf_pem = ROOT.issue("Leaf").public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(BadRequest):
        parse_trusted_issuers([leaf_pem])  # not a CA
    with pytest.raises(BadRequest):
        parse_trusted_issuers([])
