"""Microsoft Graph group checks, for Azure AD tokens with the groups *overage*.

When a user is in more groups than a token can list, Azure AD leaves ``groups`` out and says so;
membership of the one group Junction cares about is then asked of Graph, with a token msal
acquires for the app. Failures never turn into a "yes" (docs/azure-ad.md).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from core.identity.fetch import HTTP_TIMEOUT_SECONDS, SharedCall, open_url, remaining
from core.kernel import telemetry
from core.kernel.settings import Settings

FAILURE_RETRY_SECONDS = 10.0
"""After a Graph token or membership call failed, callers fail closed at once for this long
rather than each waiting out the time-out again. Longer than the time-out, for the same reason."""

GROUP_CACHE_SECONDS = 300.0
GROUP_CACHE_MAX_ENTRIES = 10_000
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

_PEM_KEY = re.compile(
    r"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----.+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----",
    re.DOTALL,
)
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


class GraphError(Exception):
    """Graph or the token for it could not answer; the caller fails closed."""


def load_certificate_credential(path: str | Path) -> dict[str, Any]:
    """An msal ``client_credential`` from a certificate file.

    PEM files hold the private key and the certificate (as Azure CLI and Key Vault export
    them); msal derives the SHA-256 thumbprint and ``x5c`` from the certificate. ``.pfx`` /
    ``.p12`` files are handed to msal as they are.
    """
    file = Path(path).expanduser()
    if file.suffix.lower() in (".pfx", ".p12"):
        return {"private_key_pfx_path": str(file), "public_certificate": True}
    text = file.read_text(encoding="ascii")
    key = _PEM_KEY.search(text)
    certs = _PEM_CERT.findall(text)
    if key is None or not certs:
        raise ValueError(f"{file} must contain a PEM private key and its certificate")
    return {"private_key": key.group(0), "public_certificate": "\n".join(certs)}


class GraphGroupChecker:
    """Asks Microsoft Graph whether a user is in a group, for tokens with the groups overage.

    The token for Graph comes from msal: the app's client secret or certificate when
    ``JUNCTION_GRAPH_CLIENT_ID`` is set, otherwise the Function app's managed identity
    (user-assigned when ``AZURE_CLIENT_ID`` is set). Answers are cached for five minutes per
    (user, group) so the overage costs one Graph call per user and group, not one per request.
    Failures never turn into a "yes".

    Both outbound calls (the token, the membership question) are ``SharedCall``s: concurrent
    requests share the one in flight and wait at most the time-out for it, and after a failure
    callers are refused at once for ``retry_after`` seconds rather than each trying again.
    Building the msal client (which downloads the tenant's OpenID configuration) is part of the
    shared token call, so a slow IdP is waited on once, not once per request.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = HTTP_TIMEOUT_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        ttl: float = GROUP_CACHE_SECONDS,
        retry_after: float = FAILURE_RETRY_SECONDS,
    ) -> None:
        self._settings = settings
        self._timeout = timeout
        self._monotonic = monotonic
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, bool]] = {}
        self._calls = SharedCall(timeout=timeout, retry_after=retry_after, monotonic=monotonic)
        self._client: Any = None
        self.calls = 0
        """How many checkMemberGroups calls were made (for tests and diagnostics)."""

    def is_member(self, oid: str, group_id: str) -> bool:
        key = (oid.lower(), group_id.lower())
        cached = self._cache.get(key)
        now = self._monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        if not _GUID.match(oid):
            raise GraphError("the token's oid is not a GUID")
        member = bool(self._shared(("member", key), lambda deadline: self._check(oid, group_id, deadline)))
        if len(self._cache) >= GROUP_CACHE_MAX_ENTRIES:
            self._cache.clear()  # crude but bounded; a refill costs one Graph call per user
        self._cache[key] = (now + self._ttl, member)
        return member

    def _shared(self, key: Any, work: Callable[[float], Any]) -> Any:
        try:
            return self._calls.run(key, work)
        except Exception as exc:
            telemetry.count(telemetry.IDENTITY_FAILURES, attributes={telemetry.IDENTITY_KIND: "graph"})
            if isinstance(exc, GraphError):
                raise
            if isinstance(exc, TimeoutError):
                raise GraphError(f"Graph or the token for it did not answer within {self._timeout:g} s") from None
            raise GraphError(f"{type(exc).__name__}: {exc}") from None

    def _check(self, oid: str, group_id: str, deadline: float) -> bool:
        token = self._shared("token", self._access_token)
        url = f"{self._settings.graph_endpoint}/v1.0/users/{quote(oid)}/checkMemberGroups"
        request = urllib.request.Request(  # noqa: S310 - graph_endpoint is validated https:// in settings
            url,
            data=json.dumps({"groupIds": [group_id]}).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "junction",
            },
        )
        self.calls += 1
        try:
            answer = json.loads(open_url(request, min(self._timeout, remaining(deadline))))
        except urllib.error.HTTPError as exc:
            raise GraphError(f"Graph checkMemberGroups answered {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise GraphError(f"Graph checkMemberGroups failed: {type(exc).__name__}") from None
        value = answer.get("value") if isinstance(answer, dict) else None
        if not isinstance(value, list):
            raise GraphError("Graph checkMemberGroups answered without a 'value' list")
        return any(isinstance(g, str) and g.lower() == group_id.lower() for g in value)

    def _access_token(self, deadline: float) -> str:
        del deadline  # msal's session has the time-out; the shared call bounds the wait
        try:
            client = self._msal_client()
            if self._settings.graph_client_id:
                result = client.acquire_token_for_client(scopes=[f"{self._settings.graph_endpoint}/.default"])
            else:
                result = client.acquire_token_for_client(resource=self._settings.graph_endpoint)
        except GraphError:
            raise
        except Exception as exc:  # noqa: BLE001 - msal/requests raise many kinds; all mean "no token"
            raise GraphError(f"no token for Graph: {type(exc).__name__}: {exc}") from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if not isinstance(token, str):
            error = result.get("error") if isinstance(result, dict) else None
            raise GraphError(f"no token for Graph: {error or 'unknown error'}")
        return token

    def _msal_client(self) -> Any:
        """Build the msal client once (inside the shared token call, so one build at a time); a
        failed build (IdP down) is tried again after the failure window."""
        if self._client is not None:
            return self._client
        # cold start: only deployments with overage tokens pay for msal
        import msal
        import requests

        settings = self._settings
        if settings.graph_client_id:
            if settings.graph_client_certificate_path:
                credential: Any = load_certificate_credential(settings.graph_client_certificate_path)
            elif settings.graph_client_secret:
                credential = settings.graph_client_secret
            else:
                raise GraphError("JUNCTION_GRAPH_CLIENT_ID is set without a client secret or certificate")
            self._client = msal.ConfidentialClientApplication(
                settings.graph_client_id,
                client_credential=credential,
                authority=f"{settings.aad_authority_host}/{settings.aad_tenant_id}",
                instance_discovery=False,  # the host is configured by an operator, not a caller
                # msal's own session retries a timed-out call once, doubling the wait.
                http_client=_timeout_session(requests, self._timeout),
            )
        else:
            identity = (
                msal.UserAssignedManagedIdentity(client_id=settings.managed_identity_client_id)
                if settings.managed_identity_client_id
                else msal.SystemAssignedManagedIdentity()
            )
            self._client = msal.ManagedIdentityClient(
                identity, http_client=_timeout_session(requests, self._timeout)
            )
        return self._client


def _timeout_session(requests: Any, timeout: float) -> Any:
    """A requests session whose calls are time-boxed and not retried (ManagedIdentityClient has no
    time-out of its own; msal's default session retries once)."""

    class TimeoutSession(requests.Session):  # type: ignore[misc, name-defined]
        def request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout)
            return super().request(*args, **kwargs)

    return TimeoutSession()
