"""Credential parsing without storage: Basic headers, failure throttling, API key rulesets."""

from __future__ import annotations

import base64

import pytest

from core.identity.apikeys import Rule, glob_match, parse_pattern
from core.identity.users import FailureThrottle, canonical_username, parse_basic
from core.kernel.errors import BadRequest, Unauthorized
from core.web.paths import split_path


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def test_basic_credentials_are_utf8() -> None:
    assert parse_basic(basic("Åsa:pässword:with:colons".encode())) == ("Åsa", "pässword:with:colons")
    assert parse_basic(None) is None
    for bad in (basic("Åsa:x".encode("latin-1")), "Basic !!!", "Basic", "Bearer abc", basic(b"nocolon"), basic(b":pw")):
        with pytest.raises(Unauthorized):
            parse_basic(bad)


def test_usernames_fold_case_and_normalise() -> None:
    assert canonical_username("ÅSA") == canonical_username("åsa") == canonical_username("A\u030asa")


def test_throttle_after_five_failures_until_the_window_passes() -> None:
    now = [1000.0]
    throttle = FailureThrottle(monotonic=lambda: now[0])
    for _ in range(4):
        throttle.failed("bob")
    assert throttle.retry_after("bob") is None
    throttle.failed("bob")
    wait = throttle.retry_after("bob")
    assert wait is not None and 295 <= wait <= 301
    assert throttle.retry_after("alice") is None
    now[0] += 301
    assert throttle.retry_after("bob") is None


def test_throttle_memory_is_bounded() -> None:
    throttle = FailureThrottle(max_entries=100)
    for i in range(1000):
        throttle.failed(f"user{i}")
    assert len(throttle._failures) <= 100


def rule(path: str, methods: frozenset[str] | None = None) -> Rule:
    return Rule(parse_pattern(path), methods)


@pytest.mark.parametrize(
    ("pattern", "path", "allowed"),
    [
        ("/api/a", "/api/a", True),
        ("/api/a", "/api/ab", False),
        ("/api/a", "/api/a/b", False),
        ("/api/*", "/api/a", True),
        ("/api/*", "/api/a/b", False),
        ("/api/**", "/api", True),
        ("/api/**", "/api/a/b/c", True),
        ("/api/**/x", "/api/a/b/x", True),
        ("/api/**/x", "/api/a/b/y", False),
        ("/**", "/anything/at/all", True),
        ("/api/a", "/api/%61", True),
        ("/api/b", "/api/a%2Fb", False),
    ],
)
def test_ruleset_patterns(pattern: str, path: str, allowed: bool) -> None:
    assert rule(pattern).allows("GET", split_path(path)) is allowed


def test_dot_segments_never_reach_a_rule() -> None:
    with pytest.raises(BadRequest):
        split_path("/api/a/%2e%2e/b")


def test_methods() -> None:
    assert rule("/x", frozenset({"GET"})).allows("GET", ["x"])
    assert not rule("/x", frozenset({"GET"})).allows("POST", ["x"])


def test_bad_patterns() -> None:
    for bad in ("api", "/api/a*", "/api//x", "/api/../x"):
        with pytest.raises(BadRequest):
            parse_pattern(bad)
    assert glob_match(("**", "**"), ())


def test_evicting_old_entries_never_resets_a_throttled_user() -> None:
    """The table evicted the oldest entries past 10,000 names, which reset a throttled user."""
    now = [1000.0]
    throttle = FailureThrottle(max_entries=50, monotonic=lambda: now[0])
    for _ in range(5):
        throttle.failed("alice", "203.0.113.9")
    for i in range(500):
        now[0] += 0.1
        throttle.failed(f"user{i}", f"198.51.100.{i % 200}")
    assert throttle.retry_after("alice", "203.0.113.9") is not None
    assert len(throttle._failures) <= 50 + 3  # only throttled keys may stay beyond the bound


def test_the_user_ceiling_spares_clients_that_signed_in_before() -> None:
    throttle = FailureThrottle(user_limit=10)
    throttle.succeeded("bob", "192.0.2.1")
    for client in range(5):
        for _ in range(2):
            throttle.failed("bob", f"198.51.100.{client}")
    assert throttle.retry_after("bob", "198.51.100.77") is not None  # a new client: refused
    assert throttle.retry_after("bob", "192.0.2.1") is None  # where bob signs in: still fine


@pytest.mark.parametrize(
    ("raw", "key"),
    [("203.0.113.9", "203.0.113.9"), ("203.0.113.9:54321", "203.0.113.9"), ("[2001:db8::1]:443", "2001:db8::/64"),
     ("2001:db8::1", "2001:db8::/64"), ("::ffff:203.0.113.9", "203.0.113.9"), (None, ""), ("not an ip", "not an ip")],
)  # fmt: skip
def test_client_keys(raw: str | None, key: str) -> None:
    from core.identity.users import client_key

    assert client_key(raw) == key


def test_scrypt_slots_are_bounded_and_a_busy_sign_in_is_no_failure() -> None:
    from core.identity import users

    for _ in range(users.SCRYPT_SLOTS):
        users._SCRYPT_SLOTS.acquire()
    try:
        with pytest.raises(users.SignInsBusy):
            users._scrypt("password", b"salt" * 4, wait=0.01)
    finally:
        for _ in range(users.SCRYPT_SLOTS):
            users._SCRYPT_SLOTS.release()
