"""The one request/reply pair every HTTP entry point of ``core`` speaks, and the error body.

A trigger turns the Functions host's request into a ``Request`` without interpreting it, calls
one function of ``core``, and turns the ``Reply`` it gets back into an HTTP response
(``triggers/http.py``). Kept apart from the modules that use them so that the trigger plumbing
can name them without loading those modules at start-up (docs/architecture.md, "Cold start").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from core.kernel.errors import BadRequest


class RawJson(str):
    """A reply body that is JSON text already (written once, served many times)."""


@dataclass(frozen=True)
class Request:
    """An HTTP request as received, nothing interpreted.

    ``path`` is the raw (percent-encoded) path; ``headers`` have lower-case names; ``query`` has
    every value of each name, in order; ``route`` holds the route's parameters; ``base_url`` is
    the scheme and host the caller used (or the configured public URL); ``client_ip`` is the
    address the front end appended to ``X-Forwarded-For``; ``cookies`` None means "parse the
    Cookie header".
    """

    method: str
    url: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, Sequence[str]] = field(default_factory=dict)
    body: bytes = b""
    route: Mapping[str, str] = field(default_factory=dict)
    base_url: str = ""
    client_ip: str | None = None
    cookies: Mapping[str, str] | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        """The query parameter ``name`` (its first value), or None when it is absent."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Reply:
    """A response: ``body`` None is no body, ``bytes`` are sent as they are (with the
    ``Content-Type`` in ``headers``), ``RawJson`` is JSON text, anything else is written as JSON."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


def error_body(code: str, message: str) -> dict[str, Any]:
    """The body of every error Junction answers: ``{"error": {"code", "message"}}``.

    ``code`` is stable, for clients to branch on; ``message`` is safe to show to the caller.
    """
    return {"error": {"code": code, "message": message}}


def refuse_repeated_parameters(query_string: str) -> None:
    """400 when a query parameter is sent more than once.

    The Functions host (and devhost) hand a repeated parameter over as its values joined with
    ``","``, so ``keyJson=[1&keyJson=2]`` would arrive as the valid key ``[1,2]``: a value the
    caller never sent. No management or external-trigger parameter is a list, so a repeat is
    refused rather than guessed at. (API operations read every value: see ``core.apiops.params``.)
    """
    seen: set[str] = set()
    for name, _ in parse_qsl(query_string, keep_blank_values=True, errors="replace"):
        if name in seen:
            raise BadRequest(f"the query parameter {name!r} is sent more than once; send it once", "RepeatedQueryParameter")
        seen.add(name)
