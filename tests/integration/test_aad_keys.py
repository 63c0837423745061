"""Signing-key caching: one download per process, throttled refreshes, rollover, outages.

The IdP counts JWKS downloads, so "no refresh storm" is checked on the wire, not on internals.
The refresh throttle is time, so those tests drive a fake monotonic clock; the I/O is real.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from core.identity.aad import AadAuthenticator
from core.kernel.errors import Unauthorized
from tests.support.idp import AUDIENCE, LocalIdentityProvider, aad_settings, new_rsa_key, running_idp


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentityProvider]:
    yield from running_idp(tmp_path_factory.mktemp("idp"))


@pytest.fixture(autouse=True)
def healthy(idp: LocalIdentityProvider) -> Iterator[None]:
    idp.jwks_down = False
    idp.rotate()
    yield
    idp.jwks_down = False


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def auth(idp: LocalIdentityProvider, monotonic: FakeMonotonic) -> AadAuthenticator:
    return AadAuthenticator(aad_settings(idp), monotonic=monotonic)


def good(idp: LocalIdentityProvider) -> str:
    return idp.mint(idp.user_claims(AUDIENCE))


def forged_kid(idp: LocalIdentityProvider, kid: str) -> str:
    return idp.mint(idp.user_claims(AUDIENCE), kid=kid, key=new_rsa_key())


def test_keys_are_fetched_lazily_once(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    before = idp.jwks_fetches
    assert idp.jwks_fetches == before  # constructing the authenticator fetched nothing
    for _ in range(5):
        auth.authenticate(good(idp))
    assert idp.jwks_fetches == before + 1


def test_unknown_kid_refreshes_once_then_not_again_within_the_minute(
    idp: LocalIdentityProvider, auth: AadAuthenticator, monotonic: FakeMonotonic
) -> None:
    auth.authenticate(good(idp))
    warm = idp.jwks_fetches
    with pytest.raises(Unauthorized) as caught:
        auth.authenticate(forged_kid(idp, "forged-1"))
    assert caught.value.error == "invalid_token"
    assert idp.jwks_fetches == warm + 1  # one refresh for the unknown kid
    monotonic.now += 59
    for n in range(20):
        with pytest.raises(Unauthorized):
            auth.authenticate(forged_kid(idp, f"forged-{n + 2}"))
    assert idp.jwks_fetches == warm + 1  # no second fetch within the minute
    auth.authenticate(good(idp))  # genuine tokens are unaffected
    monotonic.now += 2
    with pytest.raises(Unauthorized):
        auth.authenticate(forged_kid(idp, "forged-late"))
    assert idp.jwks_fetches == warm + 2  # a minute later, one more refresh is allowed


def test_concurrent_unknown_kids_cause_one_fetch(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    auth.authenticate(good(idp))
    warm = idp.jwks_fetches
    tokens = [forged_kid(idp, f"storm-{n}") for n in range(16)]
    errors: list[BaseException] = []

    def call(token: str) -> None:
        try:
            auth.authenticate(token)
        except Unauthorized as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 16
    assert idp.jwks_fetches == warm + 1


def test_rotated_key_is_accepted_after_refresh(idp: LocalIdentityProvider, auth: AadAuthenticator) -> None:
    old_token = good(idp)
    auth.authenticate(old_token)
    warm = idp.jwks_fetches
    idp.rotate()  # the old key is withdrawn, a new one published
    principal = auth.authenticate(good(idp))
    assert principal.kind == "aad"
    assert idp.jwks_fetches == warm + 1
    with pytest.raises(Unauthorized):
        auth.authenticate(old_token)  # the withdrawn key is forgotten with the refresh


def test_rollover_keeping_both_keys(
    idp: LocalIdentityProvider, auth: AadAuthenticator, monotonic: FakeMonotonic
) -> None:
    old_token = good(idp)
    auth.authenticate(old_token)
    idp.rotate(keep_old=True)
    auth.authenticate(good(idp))
    auth.authenticate(old_token)


def test_jwks_down_with_a_warm_cache(
    idp: LocalIdentityProvider, auth: AadAuthenticator, monotonic: FakeMonotonic
) -> None:
    auth.authenticate(good(idp))
    idp.jwks_down = True
    before = idp.jwks_fetches
    with pytest.raises(Unauthorized):
        auth.authenticate(forged_kid(idp, "during-outage"))
    assert idp.jwks_fetches == before + 1  # the refresh was tried and failed
    auth.authenticate(good(idp))  # known keys survive the failed refresh
    monotonic.now += 3600
    auth.authenticate(good(idp))


def test_stale_keys_are_refreshed_but_kept_when_the_refresh_fails(
    idp: LocalIdentityProvider, auth: AadAuthenticator, monotonic: FakeMonotonic
) -> None:
    auth.authenticate(good(idp))
    before = idp.jwks_fetches
    monotonic.now += 25 * 3600
    idp.jwks_down = True
    auth.authenticate(good(idp))
    assert idp.jwks_fetches == before + 1
    idp.jwks_down = False
    auth.authenticate(good(idp))
    assert idp.jwks_fetches == before + 1  # throttled: no retry within the minute
    monotonic.now += 61
    auth.authenticate(good(idp))
    assert idp.jwks_fetches == before + 2


def test_jwks_down_from_the_start_retries_without_storming(
    idp: LocalIdentityProvider, auth: AadAuthenticator, monotonic: FakeMonotonic
) -> None:
    idp.jwks_down = True
    before = idp.jwks_fetches
    for _ in range(10):
        with pytest.raises(Unauthorized):
            auth.authenticate(good(idp))
    assert idp.jwks_fetches == before + 1
    idp.jwks_down = False
    monotonic.now += 11  # past the bootstrap retry interval
    auth.authenticate(good(idp))
    assert idp.jwks_fetches == before + 2
