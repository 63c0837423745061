"""The caller's address, and IP allow-lists of scenarios and bindings.

The address is the one the platform reports: App Service's front end appends the address of the
peer it accepted the connection from to ``X-Forwarded-For`` (IPv4 with a port, ``203.0.113.9:54321``;
IPv6 in brackets with a port, or bare), after whatever the caller sent in that header. The *last*
entry is therefore the one the front end wrote; the first is the caller's to choose and is never
used. devhost strips a client's ``X-Forwarded-For`` and sets its socket's peer (docs/devhost.md),
so the same rule reads the same address locally. README, "IP allow-lists".

An allow-list is parsed once when a scenario or binding is saved (a 400 naming the entry) and
stored in canonical form; ``is_allowed`` matches with the standard library's ``ipaddress``.
IPv4-mapped IPv6 addresses (``::ffff:203.0.113.9``) are matched as the IPv4 address they carry,
on both sides, so a dual-stack socket cannot slip past an IPv4 list.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
from collections.abc import Sequence
from typing import Any

from core.kernel.errors import BadRequest, Forbidden

MAX_ENTRIES = 200
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

IP_ALLOW_LIST: dict[str, Any] = {
    "type": ["array", "null"],
    "minItems": 1,
    "maxItems": MAX_ENTRIES,
    "items": {"type": "string", "minLength": 2, "maxLength": 64},
    "description": (
        "IPv4/IPv6 addresses and CIDR ranges (203.0.113.0/24, 2001:db8::/32) allowed to call; a caller"
        " elsewhere gets 403 IpNotAllowed before anything else is read or started. Absent or null: any address."
    ),
    "examples": [["203.0.113.0/24", "198.51.100.7", "2001:db8::/32"]],
}


def _unmapped(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_address(text: str | None) -> Address | None:
    """An address as a front end writes it (``a.b.c.d``, ``a.b.c.d:port``, ``[v6]:port``, ``v6``);
    None when it is none of these (a zone id, a host name, garbage)."""
    value = (text or "").strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or (value[end + 1 :] and not value[end + 1 :].startswith(":")):
            return None
        value = value[1:end]
    elif value.count(":") == 1:
        value, _, port = value.partition(":")
        if not port.isdigit():
            return None
    if "%" in value:  # a zone id (fe80::1%eth0) names an interface, not a caller
        return None
    try:
        return _unmapped(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_address(x_forwarded_for: str | None) -> str | None:
    """The caller's address: the last ``X-Forwarded-For`` entry (see the module docstring), in
    canonical form without a port; None when there is none or it cannot be read."""
    entries = [entry for entry in (x_forwarded_for or "").split(",") if entry.strip()]
    if not entries:
        return None
    address = parse_address(entries[-1])
    return None if address is None else str(address)


def _network(entry: str, where: str) -> Network:
    text = entry.strip()
    if text != entry or "%" in text:
        raise BadRequest(f"{where}: {entry!r} is not an IPv4 or IPv6 address or CIDR range", "InvalidIpAllowList")
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        loose = None
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            pass
        if loose is not None:
            raise BadRequest(
                f"{where}: {entry!r} has bits set beyond its prefix length (did you mean {loose}?)", "InvalidIpAllowList"
            ) from None
        raise BadRequest(f"{where}: {entry!r} is not an IPv4 or IPv6 address or CIDR range ({exc})", "InvalidIpAllowList") from None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96 and network.network_address.ipv4_mapped is not None:
        return ipaddress.ip_network(f"{network.network_address.ipv4_mapped}/{network.prefixlen - 96}")
    return network


def normalise_allow_list(entries: Sequence[str] | None, where: str) -> list[str] | None:
    """The list as stored: each entry in canonical form (``203.0.113.7/32`` for an address),
    duplicates dropped; None for no list. A malformed entry is a 400 naming it (``where[2]``)."""
    if entries is None:
        return None
    networks: list[str] = []
    for index, entry in enumerate(entries):
        canonical = str(_network(entry, f"{where}[{index}]"))
        if canonical not in networks:
            networks.append(canonical)
    return networks


@functools.lru_cache(maxsize=1024)
def _compiled(entries: tuple[str, ...]) -> dict[int, tuple[list[int], list[int]]]:
    """Per IP version, the list's ranges merged and sorted as integer bounds: ``(firsts, lasts)``,
    so one ``bisect`` decides whatever the list's length."""
    spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
    for entry in entries:
        network = ipaddress.ip_network(entry)
        spans[network.version].append((int(network.network_address), int(network.broadcast_address)))
    merged: dict[int, tuple[list[int], list[int]]] = {}
    for version, pairs in spans.items():
        firsts: list[int] = []
        lasts: list[int] = []
        for first, last in sorted(pairs):
            if lasts and first <= lasts[-1] + 1:
                lasts[-1] = max(lasts[-1], last)
            else:
                firsts.append(first)
                lasts.append(last)
        merged[version] = (firsts, lasts)
    return merged


def is_allowed(allow_list: Sequence[str] | None, address: str | None) -> bool:
    """Whether ``address`` (from ``client_address``) is in the stored list; no list allows all,
    an unknown address none."""
    if allow_list is None:
        return True
    parsed = parse_address(address)
    if parsed is None:
        return False
    firsts, lasts = _compiled(tuple(allow_list))[parsed.version]
    value = int(parsed)
    index = bisect.bisect_right(firsts, value) - 1
    return index >= 0 and value <= lasts[index]


def check_allowed(allow_list: Sequence[str] | None, address: str | None) -> None:
    """403 ``IpNotAllowed`` unless ``address`` is in the list."""
    if not is_allowed(allow_list, address):
        raise Forbidden("this address may not call this endpoint", "IpNotAllowed")
