"""Which URLs a process may call: hosts in ``JUNCTION_OUTBOUND_ALLOWED_HOSTS`` only.

An entry is ``host`` (on the scheme's default port), ``host:port``, or ``*.domain`` (any
subdomain). Checked when a scenario is saved (``check_url``) and again for every URL a call
reaches, redirects included (``core.process.http_step``).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from core.kernel.errors import BadRequest


def host_allowed(url: str, allowed_hosts: Sequence[str]) -> bool:
    """Does ``url`` (http or https, no user info) name an allowed host and port?"""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return False
    host = parts.hostname.lower().rstrip(".")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    default_port = 443 if parts.scheme == "https" else 80
    for entry in allowed_hosts:
        name, _, entry_port = entry.partition(":")
        if str(port) != (entry_port or str(default_port)):  # no port given: the scheme's own
            continue
        if name == host or (name.startswith("*.") and host.endswith(name[1:])):
            return True
    return False


def check_url(url: str, allowed_hosts: Sequence[str], *, where: str) -> None:
    """Refuse at save time a URL no run could call."""
    if not host_allowed(url, allowed_hosts):
        raise BadRequest(
            f"{where}: {urlsplit(url).hostname or url!r} is not an http(s) URL on a host in JUNCTION_OUTBOUND_ALLOWED_HOSTS",
            "HostNotAllowed",
        )
