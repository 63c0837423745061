"""Authentication of API-bound operations: one backend per scheme a binding can name.

A binding's ``authentication.type`` picks the backend (``BACKENDS``). Each has one method, as
Starlette's ``AuthenticationBackend`` does: ``authenticate(call)`` returns the ``Caller`` (the
name a process sees as ``#trigger.data.username``, and a token's claims as ``#trigger.claims``)
or raises Unauthorized / Forbidden carrying the challenge its scheme calls for
(``core.web.challenges``). docs/api-operations.md, "Authentication", states the rules.

Each backend loads its scheme's code with the first call that needs it (cold start: scrypt for
``basic``, cryptography for ``certificate``, pyjwt for ``oauth2``); most deployments use few.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.kernel.errors import Forbidden, Unauthorized
from core.kernel.principal import Principal
from core.kernel.settings import Settings
from core.store.storage import Storage
from core.web import challenges
from core.web.exchange import Request


@dataclass(frozen=True)
class Call:
    """What a backend may look at: the request, the binding's ``authentication`` object, the
    scheme the caller used (``core.apiops.gateway.request_scheme``) and, for tests and
    benchmarks, an Azure AD authenticator to use instead of the process's."""

    storage: Storage
    settings: Settings
    request: Request
    auth: Mapping[str, Any]
    scheme: str
    aad: Any = None


@dataclass(frozen=True)
class Caller:
    """Who called: ``name`` (None when anonymous) and the validated token's ``claims``."""

    name: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    def authenticate(self, call: Call) -> Caller: ...


class Anonymous:
    """``none``: anyone may call."""

    def authenticate(self, call: Call) -> Caller:
        return Caller()


class Basic:
    """``basic``: a local user (``core.identity.users``), with a ``Basic`` challenge on 401."""

    def authenticate(self, call: Call) -> Caller:
        from core.identity.users import verify_basic  # cold start: with the first basic operation

        request = call.request
        try:
            return Caller(verify_basic(call.storage, request.header("authorization"), client_ip=request.client_ip))
        except Unauthorized as exc:
            raise exc.with_headers({"WWW-Authenticate": challenges.basic()}) from None


class Certificate:
    """``certificate``: the client certificate App Service forwards, from a trusted issuer of the
    binding (``core.identity.certificates``)."""

    def authenticate(self, call: Call) -> Caller:
        # cold start: cryptography loads with the first certificate-bound operation
        from core.identity.certificates import forwarded_certificate, verify_client_certificate

        request = call.request
        header = forwarded_certificate(call.settings.client_certificates, request.path, request.header("x-arr-clientcert"))
        return Caller(verify_client_certificate(header, call.auth.get("trustedIssuers") or [], scheme=call.scheme))


class ApiKey:
    """``apiKey``: ``X-Api-Key`` whose ruleset allows the method and path (``core.identity.apikeys``)."""

    def authenticate(self, call: Call) -> Caller:
        from core.identity.apikeys import verify_apikey  # cold start: with the first apiKey operation

        request = call.request
        return Caller(verify_apikey(call.storage, request.header("x-api-key"), request.method, request.path))


class OAuth2:
    """``oauth2``: a bearer token of Azure AD or of the binding's configured issuer.

    RFC 6750: no token → 401 without error code; bad token → 401 invalid_token; valid token
    without any one of the operation's scopes (in ``scp``, ``scope`` or ``roles``) → 403
    insufficient_scope.
    """

    def authenticate(self, call: Call) -> Caller:
        # cold start: pyjwt loads with the first oauth2 operation
        from core.identity.auth import bearer_token
        from core.identity.oidc import granted_scopes

        auth = call.auth
        scopes: Sequence[str] = auth.get("scopes") or []
        try:
            token = bearer_token(call.request.header("authorization"))
        except Unauthorized as exc:
            raise exc.with_headers(_bearer(scopes, "invalid_request", exc.message)) from None
        if token is None:
            raise Unauthorized("this operation needs 'Authorization: Bearer <token>'", "AuthenticationRequired").with_headers(_bearer(scopes))
        try:
            principal = self._principal(token, auth, call.aad, call.settings.oauth_issuers)
        except Unauthorized as exc:
            raise exc.with_headers(_bearer(scopes, "invalid_token", exc.message)) from None
        if principal.kind == "aad" and not auth.get("anyTenantUser"):
            # JUNCTION_AAD_GROUP_ID restricts the tenant's users everywhere, not only on the triggers.
            try:
                _aad(call.aad).require_group(principal)
            except Forbidden as exc:
                raise exc.with_headers(_bearer(scopes, "insufficient_scope", exc.message)) from None
        claims = dict(principal.claims)
        if scopes and not granted_scopes(claims) & set(scopes):
            message = f"the token needs one of the scopes: {', '.join(scopes)}"
            raise Forbidden(message, "InsufficientScope", error="insufficient_scope").with_headers(
                _bearer(scopes, "insufficient_scope", message)
            )
        name = claims.get("name") if isinstance(claims.get("name"), str) else principal.name
        return Caller(name, claims)

    @staticmethod
    def _principal(token: str, auth: Mapping[str, Any], aad: Any, trusted_issuers: Sequence[str]) -> Principal:
        """The token's principal: from the binding's configured issuer, else from Azure AD."""
        issuer = auth.get("issuer")
        if issuer:
            if issuer not in trusted_issuers:  # the operator withdrew it: its bindings stop at once
                raise Unauthorized("this operation's token issuer is no longer trusted", "InvalidToken", error="invalid_token")
            from core.identity.oidc import issuer_tokens  # cold start: with the first such token

            return issuer_tokens(issuer).authenticate(token, auth["audience"])
        principal: Principal = _aad(aad).authenticate(token)
        return principal


def _bearer(scopes: Sequence[str], error: str | None = None, description: str | None = None) -> dict[str, str]:
    return {"WWW-Authenticate": challenges.bearer(scopes=scopes, error=error, description=description)}


def _aad(aad: Any) -> Any:
    """The Azure AD authenticator given (tests, benchmarks) or the process's."""
    if aad is None:
        from core.identity.aad import get_aad_authenticator  # cold start: with the first Azure AD token

        aad = get_aad_authenticator()
    if aad is None:
        raise Unauthorized("OAuth2 tokens cannot be checked: Azure AD is not configured", "InvalidToken", error="invalid_token")
    return aad


BACKENDS: dict[str, Backend] = {
    "none": Anonymous(),
    "basic": Basic(),
    "certificate": Certificate(),
    "apiKey": ApiKey(),
    "oauth2": OAuth2(),
}
"""The schemes a binding may name (``authentication.type``), each with its backend."""


def authenticate(call: Call) -> Caller:
    """The caller of ``call``, by the backend its binding names."""
    backend = BACKENDS.get(call.auth.get("type", "none"))
    if backend is None:
        raise Forbidden("this operation's authentication is not configured correctly", "BindingInvalid")
    return backend.authenticate(call)
