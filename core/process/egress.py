"""What an outbound call may carry and where it may connect: secrets, redirects, addresses.

``core.process.http_step`` makes the calls; this module holds the rules that keep a process (tenant data,
and sometimes caller data: an ``http`` step's URL may come from the request) from turning them
into a way to leak credentials or reach the inside of the network (issue 13):

- **Secrets** (``JUNCTION_SECRET_*`` app settings) must be valid header values (RFC 9110: visible
  ASCII with inner spaces and tabs); a value that is not is refused by *name*, never echoed.
  ``JUNCTION_OUTBOUND_SECRET_HOSTS`` (``JUNCTION_SECRET_ERP=erp.example.com``, repeatable, host
  syntax as in the allow-list) binds a secret to its hosts: it is sent to no other. A secret
  without a binding may go to any allowed host. Every known secret value is scrubbed from what a
  call returns and from its errors, so no run record or log line holds one.
- **Redirects** to another scheme, host or port are followed without ``Authorization``,
  ``Proxy-Authorization``, ``Cookie`` or any header that carries a secret (as browsers and
  ``requests`` do), and ``https`` is never followed to ``http``.
- **Addresses**: a name in ``JUNCTION_OUTBOUND_ALLOWED_HOSTS`` is resolved when the connection is
  made, and every address it resolves to must be public: loopback, private, link-local (the
  cloud metadata service at 169.254.169.254 included), shared, reserved, multicast and unspecified
  addresses are refused unless the operator listed that IP (and port) itself as an entry. The check runs in
  the connection itself (the socket connects to the address that was checked), so a name that
  resolves differently a moment later (DNS rebinding) cannot slip through. Requests do not read
  proxies or ``.netrc`` from the environment.
"""

from __future__ import annotations

import contextvars
import ipaddress
import os
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.connection import create_connection

from core.kernel.settings import SECRET_HOSTS_SETTING, SECRET_NAME, parse_secret_hosts
from core.process.allowlist import host_allowed

SECRET_PREFIX = "JUNCTION_SECRET_"  # noqa: S105 - a setting-name prefix, not a secret
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
MIN_SCRUBBED_LENGTH = 4
_FIELD_VALUE = re.compile(r"[\x21-\x7e](?:[\x20\x09\x21-\x7e]*[\x21-\x7e])?")


class EgressRefused(Exception):
    """A rule above refuses the call; the message is safe to store (names, never values)."""


# -- secrets ----------------------------------------------------------------------------------


def secret_value(name: str, env: Mapping[str, str] | None = None) -> str:
    """The value of secret ``name``, checked to be a header value."""
    env = os.environ if env is None else env
    value = env.get(name)
    if not SECRET_NAME.fullmatch(name) or value is None:
        raise EgressRefused(f"the secret {name} is not set as an app setting")
    if not _FIELD_VALUE.fullmatch(value):
        raise EgressRefused(
            f"the secret {name} is not a valid header value (control characters, line breaks, non-ASCII, "
            "or spaces at either end); fix the app setting"
        )
    return value


def check_secret_destination(names: Iterable[str], url: str, env: Mapping[str, str] | None = None) -> None:
    """Refuse to send a bound secret to a host that is not one of its own."""
    env = os.environ if env is None else env
    bound = parse_secret_hosts(env.get(SECRET_HOSTS_SETTING))
    for name in names:
        hosts = bound.get(name)
        if hosts is not None and not host_allowed(url, hosts):
            raise EgressRefused(
                f"the secret {name} may only be sent to its own hosts ({SECRET_HOSTS_SETTING}), not {urlsplit(url).hostname}"
            )


def known_secrets(env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """``(name, value)`` of every secret setting long enough to scrub, longest value first."""
    env = os.environ if env is None else env
    found = [(name, value) for name, value in env.items() if name.startswith(SECRET_PREFIX) and name != SECRET_HOSTS_SETTING]
    candidates = {(name, v) for name, value in found for v in (value, value.strip()) if len(v) >= MIN_SCRUBBED_LENGTH}
    return sorted(candidates, key=lambda item: -len(item[1]))


def scrub_text(text: str, secrets: Sequence[tuple[str, str]]) -> str:
    for name, value in secrets:
        if value in text:
            text = text.replace(value, f"[{name}]")
    return text


def scrub(value: Any, secrets: Sequence[tuple[str, str]]) -> Any:
    """``value`` (a call's result) with every known secret value replaced by ``[its name]``."""
    if not secrets:
        return value
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, dict):
        return {scrub_text(k, secrets) if isinstance(k, str) else k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(item, secrets) for item in value]
    return value


# -- redirects --------------------------------------------------------------------------------


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower().rstrip("."), parts.port or (443 if scheme == "https" else 80)


def redirect_headers(current: str, target: str, headers: Mapping[str, str], sensitive: Iterable[str] = ()) -> dict[str, str]:
    """The headers to send to a redirect ``target``: all of them on the same origin; without
    credentials and secret-carrying headers on any other. https → http is refused."""
    before, after = _origin(current), _origin(target)
    if before[0] == "https" and after[0] == "http":
        raise EgressRefused(f"refused a redirect from https to http ({after[1]})")
    if before == after:
        return dict(headers)
    dropped = CREDENTIAL_HEADERS | {name.lower() for name in sensitive}
    return {name: value for name, value in headers.items() if name.lower() not in dropped}


# -- addresses --------------------------------------------------------------------------------

_EXPLICIT: contextvars.ContextVar[frozenset[tuple[str, int]]] = contextvars.ContextVar("explicit_addresses", default=frozenset())


def explicit_addresses(allowed_hosts: Sequence[str]) -> frozenset[tuple[str, int]]:
    """``(address, port)`` of the allow-list entries that are IP addresses the operator wrote
    (an entry without a port stands for 80 and 443)."""
    found: set[tuple[str, int]] = set()
    for entry in allowed_hosts:
        name, _, port = entry.partition(":")
        try:
            address = str(ipaddress.ip_address(name))
        except ValueError:
            continue
        found.update((address, p) for p in ((int(port),) if port else (80, 443)))
    return frozenset(found)


def address_refused(address: str, port: int, explicit: frozenset[tuple[str, int]]) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if (str(ip), port) in explicit:
        return False
    return not ip.is_global or ip.is_multicast


def _guarded_connection(host: str, port: int, timeout: Any, source_address: Any, socket_options: Any) -> socket.socket:
    """``urllib3.util.connection.create_connection`` that connects only to addresses it checked."""
    explicit = _EXPLICIT.get()
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"{host} does not resolve")
    for *_, sockaddr in infos:
        if address_refused(str(sockaddr[0]), port, explicit):
            raise EgressRefused(
                f"{host} resolves to {sockaddr[0]}, a loopback, private, link-local or reserved address; list that IP in "
                "JUNCTION_OUTBOUND_ALLOWED_HOSTS to allow it"
            )
    error: OSError | None = None
    for *_, sockaddr in infos:
        try:  # connect to the very address that was checked
            return create_connection((str(sockaddr[0]), port), timeout, source_address=source_address, socket_options=socket_options)
        except OSError as exc:
            error = exc
    raise error or OSError(f"could not connect to {host}")


def session(allowed_hosts: Sequence[str]) -> Any:
    """A ``requests`` session whose connections pass ``_guarded_connection``; no proxies or
    ``.netrc`` from the environment."""
    class GuardedHTTP(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _guarded_connection(self._dns_host, self.port, self.timeout, self.source_address, self.socket_options)

    class GuardedHTTPS(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _guarded_connection(self._dns_host, self.port, self.timeout, self.source_address, self.socket_options)

    class GuardedHTTPPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTP

    class GuardedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPS

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}

    _EXPLICIT.set(explicit_addresses(allowed_hosts))
    guarded = requests.Session()
    guarded.trust_env = False
    adapter = GuardedAdapter()
    guarded.mount("http://", adapter)
    guarded.mount("https://", adapter)
    return guarded
