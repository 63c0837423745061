"""Who is calling: the outcome of authentication, whatever the scheme."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

PrincipalKind = Literal["anonymous", "pat", "aad", "oauth2"]


@dataclass(frozen=True)
class Principal:
    """An authenticated (or anonymous) caller.

    ``scopes`` are Junction scopes for personal access tokens (``trigger``, ``admin``);
    ``scenario_ids`` limits a token to some scenarios (None = all). Azure AD principals carry
    their ``roles``, ``groups`` and the full validated ``claims`` so processes can read them as
    ``#trigger.claims``.
    """

    kind: PrincipalKind
    name: str | None = None
    token_id: str | None = None
    scopes: frozenset[str] = frozenset()
    scenario_ids: frozenset[str] | None = None
    oid: str | None = None
    tid: str | None = None
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


ANONYMOUS = Principal(kind="anonymous")
