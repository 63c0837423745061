"""The request and reply shapes shared by the HTTP triggers and the management functions.

Kept apart from ``core.management`` so that the trigger plumbing can name them without loading
every management operation at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
