"""A slow identity provider: concurrent first requests share one outbound call and fail closed
together, before the slow answer comes (issue 14, points 7 and 8).

The local HTTPS IdP is made slow with its ``delays`` knob. Assertions are on what reached the
IdP (download and token-request counts) and on outcomes and their order (every caller was
refused before the IdP answered), never on how long anything took.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from core.identity import fetch, graph, jwt
from core.identity.aad import AadAuthenticator
from core.identity.jwt import SigningKeys
from core.kernel.errors import Forbidden, Unauthorized
from tests.support.idp import AUDIENCE, LocalIdentityProvider, aad_settings, running_idp

GROUP = "c5e7f9a1-3d4f-4b6a-8c0e-223344556677"
OVERAGE = {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://graph.windows.net/x"}}}
SLOW = 5.0  # how late the IdP answers
TIMEOUT = 0.5  # how long Junction waits for it (the production value is fetch.HTTP_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentityProvider]:
    yield from running_idp(tmp_path_factory.mktemp("idp-slow"))


@pytest.fixture(autouse=True)
def prompt(idp: LocalIdentityProvider) -> Iterator[None]:
    idp.delays.clear()
    yield
    idp.delays.clear()


@pytest.fixture(scope="module")
def graph_app(idp: LocalIdentityProvider) -> dict[str, str]:
    secret = "s3cret-" + uuid.uuid4().hex
    return {"graph_client_id": idp.register_client(secret=secret).client_id, "graph_client_secret": secret}


def together(count: int, call: Callable[[int], Any]) -> list[tuple[BaseException | None, float]]:
    """Run ``call`` in ``count`` threads released at once; each outcome and when it came."""
    barrier = threading.Barrier(count)
    outcomes: list[tuple[BaseException | None, float]] = [(None, 0.0)] * count

    def one(index: int) -> None:
        barrier.wait()
        try:
            call(index)
            outcomes[index] = (None, time.monotonic())
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertions
            outcomes[index] = (exc, time.monotonic())

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)  # a hang guard, not a measurement
    assert not any(thread.is_alive() for thread in threads), "a caller hung on the slow IdP"
    return outcomes


def test_the_retry_periods_are_longer_than_the_time_out() -> None:
    """Otherwise a failed attempt may still be running when the next one is allowed to start."""
    assert jwt.BOOTSTRAP_RETRY_SECONDS > fetch.HTTP_TIMEOUT_SECONDS
    assert graph.FAILURE_RETRY_SECONDS > fetch.HTTP_TIMEOUT_SECONDS


def test_concurrent_first_requests_share_one_slow_key_download(idp: LocalIdentityProvider) -> None:
    """No key loaded yet and a JWKS that answers late: four requests make one download and are
    all refused (401) before the JWKS answers, even with a retry period no longer than the
    time-out (which used to let each waiter download again, one after another)."""
    idp.delays["jwks"] = SLOW
    keys = SigningKeys(f"{idp.base_url}/{idp.tenant_id}/v2.0/.well-known/openid-configuration", timeout=TIMEOUT, bootstrap_retry=TIMEOUT)
    auth = AadAuthenticator(aad_settings(idp), keys=keys)
    token = idp.mint(idp.user_claims(AUDIENCE))
    before = idp.jwks_fetches
    outcomes = together(4, lambda _: auth.authenticate(token))
    assert all(isinstance(error, Unauthorized) and error.error == "invalid_token" for error, _ in outcomes)
    assert idp.jwks_fetches == before + 1
    while "jwks" not in idp.answered_at:
        time.sleep(0.05)  # the slow answer comes after everyone was refused
    assert max(at for _, at in outcomes) < idp.answered_at["jwks"]


def test_a_slow_first_graph_token_is_asked_for_once_and_fails_closed(idp: LocalIdentityProvider, graph_app: dict[str, str]) -> None:
    """Three group-overage requests while the token endpoint answers late: one token request
    (msal's own retry is off), all three refused (403 GroupCheckFailed) before it answers, and a
    request just after is refused at once without asking again."""
    auth = AadAuthenticator(aad_settings(idp, aad_group_id=GROUP, **graph_app), timeout=TIMEOUT)
    users = [auth.authenticate(idp.mint(idp.user_claims(AUDIENCE, oid=str(uuid.uuid4()), **OVERAGE))) for _ in range(4)]
    idp.delays["token"] = SLOW
    idp.answered_at.pop("token", None)
    before = idp.token_requests
    outcomes = together(3, lambda i: auth.authorize_trigger(users[i]))
    assert all(isinstance(error, Forbidden) and error.code == "GroupCheckFailed" for error, _ in outcomes)
    assert idp.token_requests == before + 1
    with pytest.raises(Forbidden):
        auth.authorize_trigger(users[3])
    assert idp.token_requests == before + 1
    while "token" not in idp.answered_at:
        time.sleep(0.05)
    assert max(at for _, at in outcomes) < idp.answered_at["token"]


def test_a_slow_tenant_discovery_builds_the_graph_client_once(idp: LocalIdentityProvider, graph_app: dict[str, str]) -> None:
    """msal downloads the tenant's OpenID configuration when its client is built. With that
    slow, concurrent requests used to build it one after another, each failing on its own."""
    auth = AadAuthenticator(aad_settings(idp, aad_group_id=GROUP, **graph_app), timeout=TIMEOUT)
    users = [auth.authenticate(idp.mint(idp.user_claims(AUDIENCE, oid=str(uuid.uuid4()), **OVERAGE))) for _ in range(3)]  # keys now loaded
    idp.delays["discovery"] = SLOW
    idp.answered_at.pop("discovery", None)
    before = idp.discovery_fetches
    outcomes = together(3, lambda i: auth.authorize_trigger(users[i]))
    assert all(isinstance(error, Forbidden) and error.code == "GroupCheckFailed" for error, _ in outcomes)
    assert idp.discovery_fetches == before + 1
    while "discovery" not in idp.answered_at:
        time.sleep(0.05)
    assert max(at for _, at in outcomes) < idp.answered_at["discovery"]


def test_a_graph_that_recovers_is_asked_again_after_the_failure_window(idp: LocalIdentityProvider, graph_app: dict[str, str]) -> None:
    clock = [1000.0]
    auth = AadAuthenticator(aad_settings(idp, aad_group_id=GROUP, **graph_app), timeout=TIMEOUT, monotonic=lambda: clock[0])
    oid = str(uuid.uuid4())
    idp.memberships[oid] = {GROUP}
    member = auth.authenticate(idp.mint(idp.user_claims(AUDIENCE, oid=oid, **OVERAGE)))
    idp.graph_failing = True
    try:
        with pytest.raises(Forbidden):
            auth.authorize_trigger(member)
    finally:
        idp.graph_failing = False
    calls = idp.graph_calls
    with pytest.raises(Forbidden):  # still within the window: refused without asking
        auth.authorize_trigger(member)
    assert idp.graph_calls == calls
    clock[0] += graph.FAILURE_RETRY_SECONDS + 1
    auth.authorize_trigger(member)  # asked again, and the answer is yes
    assert idp.graph_calls == calls + 1
