"""The rules of core.process.egress: secrets, redirects and addresses (issue 13.5), without the network."""

from __future__ import annotations

import pytest

from core.kernel.settings import parse_secret_hosts
from core.process.egress import (
    EgressRefused,
    address_refused,
    explicit_addresses,
    known_secrets,
    redirect_headers,
    scrub,
    secret_value,
)

HEADERS = {"Authorization": "Bearer s", "Cookie": "c=1", "Proxy-Authorization": "p", "X-Key": "k", "X-Plain": "ok"}


@pytest.mark.parametrize(
    "target",
    ["https://other.example/x", "https://api.example:8443/x", "http://api.example/x", "https://API.example.evil/x"],
)
def test_credentials_and_secret_headers_do_not_follow_another_origin(target: str) -> None:
    if target.startswith("http://"):
        with pytest.raises(EgressRefused, match="https to http"):
            redirect_headers("https://api.example/a", target, HEADERS, ["X-Key"])
        return
    assert redirect_headers("https://api.example/a", target, HEADERS, ["X-Key"]) == {"X-Plain": "ok"}


def test_the_same_origin_keeps_every_header() -> None:
    assert redirect_headers("https://api.example/a", "https://API.example:443/b", HEADERS, ["X-Key"]) == HEADERS
    assert redirect_headers("http://api.example/a", "https://api.example/b", HEADERS)["X-Plain"] == "ok"  # an upgrade


@pytest.mark.parametrize(
    ("address", "refused"),
    [("169.254.169.254", True), ("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.1", True), ("192.168.1.1", True),
     ("100.64.0.1", True), ("0.0.0.0", True), ("::1", True), ("fe80::1", True), ("fd00::1", True), ("::ffff:169.254.169.254", True),
     ("224.0.0.1", True), ("20.50.2.1", False), ("2603:1000::1", False)],
)  # fmt: skip
def test_only_public_addresses_unless_listed_as_ip_entries(address: str, refused: bool) -> None:
    assert address_refused(address, 443, frozenset()) is refused


def test_an_ip_entry_allows_its_own_address_and_port() -> None:
    explicit = explicit_addresses(["10.1.2.3:8443", "192.168.1.9", "erp.example.com", "*.svc.example"])
    assert explicit == {("10.1.2.3", 8443), ("192.168.1.9", 80), ("192.168.1.9", 443)}
    assert not address_refused("10.1.2.3", 8443, explicit)
    assert address_refused("10.1.2.3", 443, explicit)


@pytest.mark.parametrize("value", ["s3cr3t\n", " s3cr3t", "s3cr3t ", "s3\x00cr3t", "s3\x7fcr3t", "s3cr\u00e9t", "s3\u2028cr3t"])
def test_a_secret_that_is_no_header_value_is_refused_by_name(value: str) -> None:
    with pytest.raises(EgressRefused) as caught:
        secret_value("JUNCTION_SECRET_X", {"JUNCTION_SECRET_X": value})
    assert "JUNCTION_SECRET_X" in str(caught.value) and value.strip() not in str(caught.value).replace("JUNCTION_SECRET_X", "")


def test_secret_hosts_parse_and_refuse_bad_entries() -> None:
    assert parse_secret_hosts("JUNCTION_SECRET_A=a.example, JUNCTION_SECRET_A=b.example:8443,JUNCTION_SECRET_B=*.c.example") == {
        "JUNCTION_SECRET_A": ("a.example", "b.example:8443"), "JUNCTION_SECRET_B": ("*.c.example",),
    }  # fmt: skip
    for bad in ("OTHER=a.example", "JUNCTION_SECRET_A", "JUNCTION_SECRET_A=https://a.example", "JUNCTION_SECRET_A=*"):
        with pytest.raises(ValueError, match="JUNCTION_OUTBOUND_SECRET_HOSTS"):
            parse_secret_hosts(bad)


def test_known_secret_values_are_scrubbed_everywhere_in_a_result() -> None:
    secrets = known_secrets({"JUNCTION_SECRET_A": "alpha-value", "JUNCTION_SECRET_B": "abcd\n", "JUNCTION_SECRET_C": "x", "OTHER": "alpha"})
    result = scrub({"alpha-value": ["got alpha-value", {"k": "abcd"}], "n": 1}, secrets)
    assert result == {"[JUNCTION_SECRET_A]": ["got [JUNCTION_SECRET_A]", {"k": "[JUNCTION_SECRET_B]"}], "n": 1}
