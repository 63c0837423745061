"""The caller's address and IP allow-lists: forged X-Forwarded-For, CIDR edge cases, IPv6 forms."""

from __future__ import annotations

import pytest

from core.kernel.errors import BadRequest, Forbidden
from core.traffic.addresses import check_allowed, client_address, is_allowed, normalise_allow_list, parse_address


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("203.0.113.9:54321", "203.0.113.9"),  # App Service appends the peer with its port
        ("198.51.100.1, 203.0.113.9:54321", "203.0.113.9"),  # a caller's own entry comes first: ignored
        ("10.0.0.1,203.0.113.9", "203.0.113.9"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("::ffff:203.0.113.9", "203.0.113.9"),  # IPv4-mapped: read as the IPv4 address it carries
        ("[::ffff:203.0.113.9]:80", "203.0.113.9"),
        ("203.0.113.9, ", "203.0.113.9"),
        ("", None),
        (None, None),
        ("unknown", None),
        ("fe80::1%eth0", None),  # a zone id names an interface, not a caller
        ("203.0.113.9:http", None),
        ("[2001:db8::1", None),
        ("[2001:db8::1]x", None),
        ("010.0.0.1", None),  # leading zeros: octal to some parsers, refused by ipaddress
        ("203.0.113.256", None),
        ("203.0.113.9, garbage", None),  # the last entry decides: an unreadable one is no address
    ],
)
def test_client_address_is_the_last_entry(header: str | None, expected: str | None) -> None:
    assert client_address(header) == expected


def test_forged_first_entry_does_not_pass_a_list() -> None:
    allowed = normalise_allow_list(["198.51.100.0/24"], "ipAllowList")
    assert not is_allowed(allowed, client_address("198.51.100.7, 203.0.113.9:5000"))
    assert is_allowed(allowed, client_address("203.0.113.9, 198.51.100.7:5000"))


@pytest.mark.parametrize(
    ("entries", "stored"),
    [
        (["203.0.113.7"], ["203.0.113.7/32"]),
        (["203.0.113.0/24", "203.0.113.0/24"], ["203.0.113.0/24"]),  # duplicates dropped
        (["0.0.0.0/0"], ["0.0.0.0/0"]),
        (["::/0"], ["::/0"]),
        (["2001:DB8::/32"], ["2001:db8::/32"]),  # IPv6 hex in either case, stored lower-case
        (["2001:db8::1"], ["2001:db8::1/128"]),
        (["::ffff:10.0.0.0/104"], ["10.0.0.0/8"]),  # IPv4-mapped ranges become IPv4 ranges
        (["::ffff:203.0.113.9"], ["203.0.113.9/32"]),
        (["10.0.0.0/8", "2001:db8::/48"], ["10.0.0.0/8", "2001:db8::/48"]),
    ],
)
def test_entries_are_stored_canonical(entries: list[str], stored: list[str]) -> None:
    assert normalise_allow_list(entries, "ipAllowList") == stored


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("203.0.113.7/24", "did you mean 203.0.113.0/24"),  # host bits set
        ("2001:db8::1/32", "did you mean 2001:db8::/32"),
        ("203.0.113.0/33", "not an IPv4 or IPv6"),
        ("2001:db8::/129", "not an IPv4 or IPv6"),
        ("203.0.113.0/-1", "not an IPv4 or IPv6"),
        ("203.0.113.0/", "not an IPv4 or IPv6"),
        ("/24", "not an IPv4 or IPv6"),
        (" 203.0.113.7", "not an IPv4 or IPv6"),
        ("203.0.113.7 ", "not an IPv4 or IPv6"),
        ("010.0.0.1", "not an IPv4 or IPv6"),
        ("fe80::1%eth0", "not an IPv4 or IPv6"),
        ("example.com", "not an IPv4 or IPv6"),
        ("203.0.113.0/255.255.255.0x", "not an IPv4 or IPv6"),
        ("203.0.113.*", "not an IPv4 or IPv6"),
    ],
)
def test_bad_entries_are_400_naming_them(entry: str, says: str) -> None:
    with pytest.raises(BadRequest) as caught:
        normalise_allow_list(["198.51.100.0/24", entry], "binding.ipAllowList")
    assert caught.value.code == "InvalidIpAllowList"
    assert caught.value.message.startswith("binding.ipAllowList[1]: ")
    assert says in caught.value.message


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("203.0.113.0", True),  # first address of the range
        ("203.0.113.255", True),  # last
        ("203.0.112.255", False),  # just below
        ("203.0.114.0", False),  # just above
        ("198.51.100.7", True),
        ("198.51.100.8", False),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", True),
        ("2001:db9::", False),
        ("::ffff:203.0.113.5", True),
        ("::203.0.113.5", False),  # IPv4-compatible (deprecated) is not IPv4-mapped
        ("[2001:db8::5]:443", True),
        ("not an address", False),
        (None, False),
    ],
)
def test_membership_at_the_edges(address: str | None, allowed: bool) -> None:
    stored = normalise_allow_list(["203.0.113.0/24", "198.51.100.7", "2001:db8::/32"], "ipAllowList")
    assert is_allowed(stored, address) is allowed


def test_no_list_allows_any_address_and_an_unknown_one() -> None:
    assert is_allowed(None, None)
    assert normalise_allow_list(None, "ipAllowList") is None


def test_refusal_is_403_ip_not_allowed() -> None:
    with pytest.raises(Forbidden) as caught:
        check_allowed(["203.0.113.0/24"], "198.51.100.1")
    assert caught.value.code == "IpNotAllowed"
    assert caught.value.error is None  # no WWW-Authenticate: credentials would not help


def test_parse_address_of_ipv4_with_port() -> None:
    assert str(parse_address("203.0.113.9:1")) == "203.0.113.9"


@pytest.mark.parametrize(
    ("entries", "inside", "outside"),
    [
        (["10.0.0.0/25", "10.0.0.128/25"], ["10.0.0.0", "10.0.0.127", "10.0.0.128", "10.0.0.255"], ["9.255.255.255", "10.0.1.0"]),
        (["10.1.0.0/16", "10.0.0.0/8"], ["10.1.2.3", "10.255.255.255"], ["11.0.0.0"]),  # nested, in any order
        (["10.0.0.4/32", "10.0.0.6/32"], ["10.0.0.4", "10.0.0.6"], ["10.0.0.5", "10.0.0.3", "10.0.0.7"]),  # gaps stay gaps
        (["0.0.0.0/0"], ["0.0.0.0", "255.255.255.255"], ["::1", "2001:db8::1"]),  # an IPv4 list admits no IPv6 caller
        (["::/0"], ["::", "2001:db8::1"], ["203.0.113.9", "::ffff:203.0.113.9"]),  # nor an IPv6 list a mapped IPv4 one
    ],
)
def test_overlapping_adjacent_and_whole_ranges(entries: list[str], inside: list[str], outside: list[str]) -> None:
    stored = normalise_allow_list(entries, "ipAllowList")
    assert all(is_allowed(stored, address) for address in inside)
    assert not any(is_allowed(stored, address) for address in outside)


def test_a_long_list_matches_every_range() -> None:
    stored = normalise_allow_list([f"10.{i}.0.0/16" for i in range(0, 200, 2)], "ipAllowList")
    for i in range(200):
        assert is_allowed(stored, f"10.{i}.7.7") is (i % 2 == 0)
