"""Azure AD (Entra ID) access tokens: who the holder is, and what they may do.

The rule this module is held to: no token gets through that Microsoft.Identity.Web would reject.
The signature, algorithm, audience and time checks shared with other OpenID Connect issuers are
in ``core.identity.jwt``; what is Microsoft's is here:

- The issuer is exactly ``https://sts.windows.net/{tenant}/`` (v1 tokens) or
  ``{authority host}/{tenant}/v2.0`` (v2 tokens), ``tid`` is the tenant, ``aud`` is one of the
  configured audiences.
- Signing keys come from the tenant's OpenID configuration (``core.identity.jwt.SigningKeys``:
  fetched lazily, cached by ``kid``, refreshed at most once a minute for an unknown ``kid``).

Authorisation (who may trigger, who is an administrator) is in ``authorize_trigger`` and
``authorize_admin``; ``docs/azure-ad.md`` states the rules. When a user's token carries the
group *overage* marker instead of the ``groups`` claim, membership is asked of Microsoft Graph
(``core.identity.graph``). Graph trouble fails closed (403) and is time-boxed.

Cold start matters for a Functions app, so importing this module costs only pyjwt: msal and
requests are imported inside the Graph path, which most deployments never reach.

Tokens are never logged, not even in part; the log says why a token was refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from core.identity.fetch import HTTP_TIMEOUT_SECONDS
from core.identity.graph import GraphError, GraphGroupChecker
from core.identity.jwt import SigningKeys, invalid_token, verify_token
from core.kernel.errors import Forbidden, Unauthorized
from core.kernel.principal import Principal
from core.kernel.settings import Settings, get_settings

logger = logging.getLogger(__name__)

V1_ISSUER_TEMPLATE = "https://sts.windows.net/{tenant}/"



def _strings(value: Any, claim: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_token(f"the '{claim}' claim must be a list of strings")
    return tuple(value)


def is_app_only(claims: Mapping[str, Any]) -> bool:
    """An application calling as itself (client credentials), rather than a signed-in user.

    Microsoft marks these with ``idtyp: app`` (optional claim) and, always, by the absence of
    ``scp``: delegated tokens carry the scopes the user consented to.
    """
    return "scp" not in claims


def has_group_overage(claims: Mapping[str, Any]) -> bool:
    """True when the token says "too many groups to list" instead of carrying ``groups``."""
    names = claims.get("_claim_names")
    return (isinstance(names, Mapping) and "groups" in names) or claims.get("hasgroups") is True


@dataclass(frozen=True)
class _Expected:
    audiences: tuple[str, ...]
    issuers: tuple[str, ...]
    tenant: str


class AadAuthenticator:
    """Validates Azure AD access tokens for one tenant and decides what their holders may do."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        timeout: float = HTTP_TIMEOUT_SECONDS,
        keys: SigningKeys | None = None,
        groups: GraphGroupChecker | None = None,
    ) -> None:
        if not settings.aad_tenant_id or not settings.aad_audiences:
            raise ValueError("Azure AD needs JUNCTION_AAD_TENANT_ID and JUNCTION_AAD_AUDIENCE")
        tenant = settings.aad_tenant_id.lower()
        host = settings.aad_authority_host.rstrip("/")
        self.settings = settings
        self._clock = clock
        self._expected = _Expected(
            audiences=tuple(settings.aad_audiences),
            issuers=(V1_ISSUER_TEMPLATE.format(tenant=tenant), f"{host}/{tenant}/v2.0"),
            tenant=tenant,
        )
        self.keys = keys or SigningKeys(
            f"{host}/{tenant}/v2.0/.well-known/openid-configuration", timeout=timeout, monotonic=monotonic
        )
        self.groups = groups or GraphGroupChecker(settings, timeout=timeout, monotonic=monotonic)

    # -- authentication ------------------------------------------------------------------------

    def authenticate(self, token: str) -> Principal:
        """The principal behind ``token``; ``Unauthorized(error="invalid_token")`` otherwise.

        Why a token was refused is logged (a warning, so operators see it without turning on
        debug logs); the token itself never is.
        """
        try:
            expected = self._expected
            claims = verify_token(
                token,
                self.keys,
                audience=expected.audiences,
                issuer=expected.issuers,
                require=("exp", "iat", "iss", "aud", "tid"),
                now=self._clock(),
                publisher="the tenant",
            )
            if not isinstance(claims.get("tid"), str) or claims["tid"].lower() != expected.tenant:
                raise invalid_token("the token is from another tenant")
            return self._principal(claims)
        except Unauthorized as exc:
            logger.warning("Azure AD token refused (401): %s", exc.message)
            raise

    def _principal(self, claims: dict[str, Any]) -> Principal:
        scp = claims.get("scp")
        if scp is not None and not isinstance(scp, str):
            raise invalid_token("the 'scp' claim must be a string")
        roles = _strings(claims.get("roles"), "roles")
        groups = _strings(claims.get("groups"), "groups")
        if scp is None and "roles" not in claims:
            raise invalid_token("the token carries neither delegated scopes ('scp') nor application roles")
        if scp is not None and claims.get("idtyp") == "app":
            raise invalid_token("an app-only token cannot carry delegated scopes")
        oid = claims.get("oid")
        name = next(
            (
                claims[c]
                for c in ("name", "preferred_username", "upn", "unique_name", "appid", "azp")
                if isinstance(claims.get(c), str) and claims[c]
            ),
            oid if isinstance(oid, str) else None,
        )
        return Principal(
            kind="aad",
            name=name,
            oid=oid if isinstance(oid, str) else None,
            tid=claims["tid"],
            roles=roles,
            groups=groups,
            claims=MappingProxyType(claims),
        )

    # -- authorisation -------------------------------------------------------------------------

    def authorize_trigger(self, principal: Principal) -> None:
        """May this principal start a scenario or read its cache?

        App-only: the trigger role or the admin role. Users: any tenant user when no group is
        configured, otherwise members of JUNCTION_AAD_GROUP_ID; administrators always.
        """
        self._require_aad(principal)
        settings = self.settings
        if is_app_only(principal.claims):
            allowed = {settings.aad_trigger_role} | ({settings.aad_admin_role} if settings.aad_admin_role else set())
            if allowed & set(principal.roles):
                return
            raise Forbidden(
                f"the application needs the app role '{settings.aad_trigger_role}'",
                "MissingRole",
                error="insufficient_scope",
            )
        self.require_group(principal)

    def require_group(self, principal: Principal) -> None:
        """Users of the tenant must be members of JUNCTION_AAD_GROUP_ID, when it is set, wherever
        they call Junction: the triggers and ``oauth2`` API operations (unless a binding opts out
        with ``anyTenantUser``). Administrators pass too. Applications (app-only tokens) are not
        users: their roles decide (groups are not used for applications).
        """
        self._require_aad(principal)
        settings = self.settings
        if settings.aad_group_id is None or is_app_only(principal.claims):
            return
        if self._member_of(principal, settings.aad_group_id):
            return
        if settings.aad_admin_role and settings.aad_admin_role in principal.roles:
            return
        if settings.aad_admin_group_id and self._member_of(principal, settings.aad_admin_group_id):
            return
        logger.warning("Azure AD user %s refused: not a member of JUNCTION_AAD_GROUP_ID", principal.oid or "(no oid)")
        raise Forbidden(
            "the user is not a member of the group Junction requires", "NotInGroup", error="insufficient_scope"
        )

    def authorize_admin(self, principal: Principal) -> None:
        """May this principal use the management API?

        The admin role (users and applications) or, for users, the admin group. With neither
        setting, no Azure AD token is an administrator.
        """
        self._require_aad(principal)
        settings = self.settings
        if settings.aad_admin_role and settings.aad_admin_role in principal.roles:
            return
        if (
            settings.aad_admin_group_id
            and not is_app_only(principal.claims)
            and self._member_of(principal, settings.aad_admin_group_id)
        ):
            return
        raise Forbidden("the caller is not a Junction administrator", "NotAdministrator", error="insufficient_scope")

    @staticmethod
    def _require_aad(principal: Principal) -> None:
        if principal.kind != "aad":
            raise Forbidden("not an Azure AD principal", "NotAzureAd")

    def _member_of(self, principal: Principal, group_id: str) -> bool:
        """Membership from the ``groups`` claim, or from Graph when the token has the overage."""
        group = group_id.lower()
        if any(g.lower() == group for g in principal.groups):
            return True
        if not has_group_overage(principal.claims):
            return False
        if not principal.oid:
            raise Forbidden("the token has no 'oid' to check group membership with", "GroupCheckFailed")
        try:
            return self.groups.is_member(principal.oid, group)
        except GraphError as exc:
            logger.warning("group membership could not be checked, refusing: %s", exc)
            raise Forbidden("group membership could not be checked; try again later", "GroupCheckFailed") from None
        except Exception:  # noqa: BLE001 - fail closed, never a 500
            logger.exception("group membership check failed unexpectedly, refusing")
            raise Forbidden("group membership could not be checked; try again later", "GroupCheckFailed") from None


_singleton: AadAuthenticator | None = None
_singleton_lock = threading.Lock()


def get_aad_authenticator() -> AadAuthenticator | None:
    """The process-wide authenticator (one key cache per process); None when Azure AD is off."""
    global _singleton
    if _singleton is not None:
        return _singleton
    settings = get_settings()
    if not settings.aad_enabled:
        return None
    with _singleton_lock:
        if _singleton is None:
            _singleton = AadAuthenticator(settings)
        return _singleton


def reset_aad_authenticator() -> None:
    """Forget the process-wide authenticator (tests that change settings call this)."""
    global _singleton
    with _singleton_lock:
        _singleton = None
