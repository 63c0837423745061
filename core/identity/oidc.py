"""OAuth2 tokens from an issuer other than Azure AD, for API operations (docs/api-operations.md).

An operation bound with ``{"type": "oauth2", "issuer": ..., "audience": ...}`` accepts access
tokens from that OpenID Connect issuer. Which issuers may be named is an operator's decision,
not a management caller's: only those listed in ``JUNCTION_OAUTH_ISSUERS``, so a binding cannot
make Junction fetch keys from an arbitrary host. The checks are the Azure AD ones (RS256 only,
exact issuer, audience, ``exp``/``iat`` required, ``nbf``, five minutes of skew, keys from the
issuer's discovery document with the same refresh limits), minus what is Microsoft-specific
(``tid``, groups, Graph).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from core.identity.fetch import HTTP_TIMEOUT_SECONDS
from core.identity.jwt import SigningKeys, verify_token
from core.kernel.errors import Unauthorized
from core.kernel.principal import Principal

logger = logging.getLogger(__name__)


class IssuerTokens:
    """Validates access tokens of one configured issuer; one key cache per issuer and process."""

    def __init__(
        self,
        issuer: str,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        timeout: float = HTTP_TIMEOUT_SECONDS,
    ) -> None:
        self.issuer = issuer
        self._clock = clock
        self.keys = SigningKeys(
            f"{issuer.rstrip('/')}/.well-known/openid-configuration", timeout=timeout, monotonic=monotonic, expected_issuer=issuer, kind="oidc"
        )

    def authenticate(self, token: str, audience: str) -> Principal:
        """The principal behind ``token`` for ``audience``; 401 ``invalid_token`` otherwise (the
        reason is logged, the token never)."""
        try:
            claims = verify_token(
                token,
                self.keys,
                audience=audience,
                issuer=self.issuer,
                require=("exp", "iat", "iss", "aud"),
                now=self._clock(),
                publisher="the issuer",
            )
        except Unauthorized as exc:
            logger.warning("token of %s refused (401): %s", self.issuer, exc.message)
            raise
        return _principal(claims)


def granted_scopes(claims: Mapping[str, Any]) -> set[str]:
    """``scp`` (Azure AD) or ``scope`` (RFC 8693 and most other issuers), space-separated, and ``roles``."""
    granted: set[str] = set()
    for claim in ("scp", "scope"):
        if isinstance(claims.get(claim), str):
            granted.update(claims[claim].split())
    roles = claims.get("roles")
    if isinstance(roles, list):
        granted.update(r for r in roles if isinstance(r, str))
    return granted


def _principal(claims: dict[str, Any]) -> Principal:
    name = next((claims[c] for c in ("name", "preferred_username", "email", "client_id", "azp", "sub") if isinstance(claims.get(c), str)), None)
    sub = claims.get("sub")
    return Principal(
        kind="oauth2",
        name=name,
        oid=sub if isinstance(sub, str) else None,
        tid=None,
        roles=tuple(r for r in claims.get("roles") or () if isinstance(r, str)) if isinstance(claims.get("roles"), list) else (),
        groups=(),
        claims=MappingProxyType(claims),
    )


_issuers: dict[str, IssuerTokens] = {}
_lock = threading.Lock()


def known_issuers() -> list[IssuerTokens]:
    """The issuers this process has validated tokens of (their key caches, for the health endpoint)."""
    return list(_issuers.values())


def issuer_tokens(issuer: str) -> IssuerTokens:
    """The process-wide validator for ``issuer`` (created on first use, then reused)."""
    found = _issuers.get(issuer)
    if found is None:
        with _lock:
            found = _issuers.setdefault(issuer, IssuerTokens(issuer))
    return found
