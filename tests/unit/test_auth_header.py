"""The Authorization header is parsed strictly."""

from __future__ import annotations

import pytest

from core.identity.auth import bearer_token
from core.kernel.errors import Unauthorized


def test_absent_header_means_no_credentials() -> None:
    assert bearer_token(None) is None


@pytest.mark.parametrize("header", ["Bearer abc", "bearer abc", "BEARER abc"])
def test_bearer_scheme_in_any_case(header: str) -> None:
    assert bearer_token(header) == "abc"


@pytest.mark.parametrize(
    "header",
    ["", " ", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a b", "Bearer jct_a, Bearer jct_b", "Bearer a,b", "x" * 20000],
)
def test_malformed_headers_are_401(header: str) -> None:
    with pytest.raises(Unauthorized) as info:
        bearer_token(header)
    assert info.value.error == "invalid_request"
