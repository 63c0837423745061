"""Credential parsing without storage: Basic headers, failure throttling, API key rulesets."""

from __future__ import annotations

import base64

import pytest

from core.apikeys import Rule, glob_match, parse_pattern
from core.errors import BadRequest, Unauthorized
from core.oproutes import split_path
from core.users import FailureThrottle, canonical_username, parse_basic


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
