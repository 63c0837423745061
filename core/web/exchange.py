"""The request and reply shapes shared by the HTTP triggers and the management functions.

Kept apart from ``core.app.management`` so that the trigger plumbing can name them without loading
every management operation at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from core.kernel.errors import BadRequest


class RawJson(str):
    """A reply body that is JSON text already (written once, served many times)."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ManagementRequest:
    """The parts of an HTTP request the management API reads."""

    method: str
    base_url: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes = b""
    route: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


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
