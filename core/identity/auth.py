"""Who may call what: bearer-token parsing, and the rules for triggers and management.

A bearer token is either a personal access token (``jct_...``, checked against Table Storage) or
an Azure AD access token (a JWT, checked by ``core.identity.aad``). Both end as a
``Principal``; the rules below decide what that principal may do.
"""

from __future__ import annotations

from core.identity.tokens import PREFIX, verify_token
from core.kernel.errors import Forbidden, Unauthorized
from core.kernel.principal import Principal
from core.store.storage import Storage

MAX_AUTHORIZATION_LENGTH = 16_384


def bearer_token(authorization: str | None) -> str | None:
    """The token in an ``Authorization: Bearer`` header; None when the header is absent.

    IntegrationHub documents the header as ``Authorization: <bearer> <token>``, so the scheme is
    matched without regard to case. Two headers (joined with a comma by the host), an empty
    header, another scheme or extra words are refused rather than guessed at.
    """
    if authorization is None:
        return None
    if len(authorization) > MAX_AUTHORIZATION_LENGTH:
        raise Unauthorized("the Authorization header is too long", "InvalidAuthorization", error="invalid_request")
    parts = authorization.strip().split(" ")
    if len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1] or "," in parts[1]:
        raise Unauthorized(
            "send exactly one header 'Authorization: Bearer <token>'", "InvalidAuthorization", error="invalid_request"
        )
    return parts[1]


def authenticate(storage: Storage, authorization: str | None) -> Principal | None:
    """The caller's principal, None without credentials; Unauthorized for bad credentials."""
    token = bearer_token(authorization)
    if token is None:
        return None
    if token.startswith(PREFIX):
        return verify_token(storage, token)
    return _authenticate_aad(token)


def _authenticate_aad(token: str) -> Principal:
    """The Azure AD seam: JWTs go to ``core.identity.aad`` when a tenant is configured."""
    # cold start: pyjwt loads with the first Azure AD token, not with the app
    from core.identity.aad import get_aad_authenticator
    from core.identity.jwt import looks_like_jwt

    authenticator = get_aad_authenticator()
    if authenticator is None or not looks_like_jwt(token):
        raise Unauthorized("the bearer token is not valid", "InvalidToken", error="invalid_token")
    return authenticator.authenticate(token)


def require_credentials(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthorized("this call needs 'Authorization: Bearer <token>'", "AuthenticationRequired")
    return principal


def authorize_trigger(principal: Principal, scenario_id: str) -> None:
    """May ``principal`` start or read the cache of scenario ``scenario_id``?"""
    if principal.kind == "pat":
        if not principal.scopes & {"trigger", "admin"}:
            raise Forbidden("the token lacks the 'trigger' scope", "InsufficientScope", error="insufficient_scope")
        if principal.scenario_ids is not None and scenario_id not in principal.scenario_ids:
            raise Forbidden("the token is not valid for this scenario", "ScenarioNotAllowed")
        return
    if principal.kind == "aad":
        from core.identity.aad import get_aad_authenticator  # cold start: pyjwt with the first token

        authenticator = get_aad_authenticator()
        if authenticator is None:
            raise Forbidden("Azure AD is not configured", "AzureAdDisabled")
        authenticator.authorize_trigger(principal)
        return
    raise Forbidden("this scenario does not allow anonymous triggers", "AnonymousNotAllowed")


def require_admin(storage: Storage, authorization: str | None) -> Principal:
    """The management API's gate: an admin token or an Azure AD admin."""
    principal = require_credentials(authenticate(storage, authorization))
    if principal.kind == "pat":
        if "admin" not in principal.scopes:
            raise Forbidden("the token lacks the 'admin' scope", "InsufficientScope", error="insufficient_scope")
        if principal.scenario_ids is not None:
            # Stored before such tokens were refused: its scenario limit would not hold on routes
            # that name no scenario (tokens, APIs, users), so it administers nothing.
            raise Forbidden(
                "a token limited to scenarios is not an admin token", "ScopedAdminToken", error="insufficient_scope"
            )
        return principal
    if principal.kind == "aad":
        from core.identity.aad import get_aad_authenticator  # cold start: pyjwt with the first token

        authenticator = get_aad_authenticator()
        if authenticator is None:
            raise Forbidden("Azure AD is not configured", "AzureAdDisabled")
        authenticator.authorize_admin(principal)
        return principal
    raise Forbidden("the management API needs an admin", "AdminRequired")
