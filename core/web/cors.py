"""CORS for API-bound operations: which origins may call, preflights, and the headers to add.

Frends takes allowed origins as one string separated by ``,`` or ``;`` with ``*`` for all;
Junction also takes a list. The rules, chosen so a browser never gets more than the binding says:

- origins are compared in their serialised form (``scheme://host[:port]``, lower-case scheme and
  host, default ports dropped), exactly, never by prefix or suffix;
- ``*`` allows every origin and answers ``Access-Control-Allow-Origin: *``; it is never combined
  with ``Access-Control-Allow-Credentials`` (the Fetch standard forbids it, and echoing any
  origin with credentials would hand every site the caller's cookies). A binding asking for both
  is refused when it is saved;
- a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is answered
  here, without authentication and without running anything;
- every response of a CORS-enabled operation carries ``Vary: Origin`` (caches must not serve one
  origin's answer to another); an origin that is not allowed gets no other CORS header.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from core.kernel.errors import BadRequest

logger = logging.getLogger(__name__)

PREFLIGHT_MAX_AGE = 600
EXPOSED_HEADERS = "Location, Retry-After, X-Run-Id, RateLimit, RateLimit-Policy"
"""Junction's own response headers a page may read (a 202's status URL, run id, rate limit):
without ``Access-Control-Expose-Headers`` a browser shows a script only the safelisted ones."""
MAX_ORIGINS = 100
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HOST = re.compile(r"^[a-z0-9.\-\[\]:]+$")


def normalise_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` in canonical form, or None when ``origin`` is not one."""
    text = origin.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or not _HOST.match(host):
        return None
    if parts.path not in ("",) or parts.query or parts.fragment or parts.username or parts.password:
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def parse_origins(value: str | Sequence[str] | None) -> list[str]:
    """Allowed origins from a list or a ``,``/``;``-separated string, normalised.

    BadRequest names an entry that is not an origin; ``*`` is kept as ``*``.
    """
    if value is None:
        return []
    items: Iterable[str] = re.split(r"[,;]", value) if isinstance(value, str) else value
    out: list[str] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        if item == "*":
            normalised: str | None = "*"
        else:
            normalised = normalise_origin(item)
        if normalised is None:
            raise BadRequest(f"cors.allowedOrigins: {item[:100]!r} is not an origin like https://app.example.com", "InvalidBinding")
        if normalised not in out:
            out.append(normalised)
    if len(out) > MAX_ORIGINS:
        raise BadRequest(f"cors.allowedOrigins: at most {MAX_ORIGINS} origins", "InvalidBinding")
    return out


def normalise_cors(cors: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The stored form of a binding's ``cors``: ``{"allowedOrigins": [...], "allowCredentials"}``."""
    if not cors:
        return None
    origins = parse_origins(cors.get("allowedOrigins"))
    credentials = bool(cors.get("allowCredentials", False))
    if "*" in origins and credentials:
        raise BadRequest("cors: '*' cannot be combined with allowCredentials", "InvalidBinding")
    if not origins:
        return None
    return {"allowedOrigins": ["*"] if "*" in origins else origins, "allowCredentials": credentials}


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    """An ``OPTIONS`` request a browser sends before a cross-origin call."""
    return method.upper() == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


def allowed_origin(cors: Mapping[str, Any] | None, origin: str | None) -> str | None:
    """The ``Access-Control-Allow-Origin`` value for ``origin``, or None when it is not allowed."""
    if not cors or origin is None:
        return None
    origins = cors.get("allowedOrigins") or []
    if "*" in origins:
        return "*"
    normalised = normalise_origin(origin)
    if normalised is not None and normalised in origins:
        return origin.strip()
    return None


def same_answer(cors: Mapping[str, Any] | None, other: Mapping[str, Any] | None, origin: str | None) -> bool:
    """Would ``other`` answer ``origin`` as ``cors`` does (allowed, with the same credentials rule)?"""
    mine, theirs = allowed_origin(cors, origin), allowed_origin(other, origin)
    if mine is None or theirs is None or mine != theirs:
        return False
    return bool((cors or {}).get("allowCredentials")) == bool((other or {}).get("allowCredentials"))


def response_headers(cors: Mapping[str, Any] | None, origin: str | None) -> dict[str, str]:
    """CORS headers for an actual (non-preflight) response of an operation."""
    if not cors:
        return {}
    headers = {"Vary": "Origin"}
    allow = allowed_origin(cors, origin)
    if allow is None:
        if origin is not None:
            logger.info("CORS: origin %r is not allowed; no CORS headers sent", origin[:100])
        return headers
    headers["Access-Control-Allow-Origin"] = allow
    headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    if cors.get("allowCredentials") and allow != "*":
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers


def preflight_headers(
    cors: Mapping[str, Any] | None,
    origin: str | None,
    request_method: str,
    request_headers: str | None,
    methods: Sequence[str],
) -> dict[str, str]:
    """Headers answering a preflight. Without an allowed origin only ``Vary`` is sent.

    ``methods`` are those bound at the path whose own policy answers this origin the same way
    (``same_answer``); the requested headers are echoed when every one is a valid header name
    (anything else fails the preflight, safely).
    """
    headers = response_headers(cors, origin)
    if "Access-Control-Allow-Origin" not in headers:
        return headers
    headers.pop("Access-Control-Expose-Headers")  # read on actual responses only
    headers["Vary"] = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    headers["Access-Control-Allow-Methods"] = ", ".join(sorted(set(methods) | {request_method.upper()}))
    if request_headers:
        names = [h.strip() for h in request_headers.split(",") if h.strip()]
        if names and all(_TOKEN.match(n) for n in names) and len(names) <= 50:
            headers["Access-Control-Allow-Headers"] = ", ".join(names)
    headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return headers
