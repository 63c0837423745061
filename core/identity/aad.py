"""Azure AD (Entra ID) access tokens: validation and authorisation.

The rule this module is held to: no token gets through that Microsoft.Identity.Web would reject.
So the checks mirror Microsoft's validators rather than what pyjwt does by default:

- RS256 only, whatever the header asks for. ``alg: none``, HS256 "signed" with the public key,
  PS/ES algorithms, JWE (five segments) and anything that does not parse are 401, never 500.
- The issuer is exactly ``https://sts.windows.net/{tenant}/`` (v1 tokens) or
  ``{authority host}/{tenant}/v2.0`` (v2 tokens), ``tid`` is the tenant, ``aud`` is one of the
  configured audiences, ``exp`` and ``iat`` are required, ``nbf`` is honoured, and clocks may
  disagree by at most five minutes (Microsoft's default ``ClockSkew``).
- Signing keys come from the tenant's OpenID configuration. They are fetched lazily, once per
  process, and cached by ``kid``. An unknown ``kid`` refreshes them at most once a minute, so
  forged ``kid`` values cannot turn every request into a JWKS download; a failed refresh keeps
  the keys already known, and a rotated key is picked up without a restart.

Authorisation (who may trigger, who is an administrator) is in ``authorize_trigger`` and
``authorize_admin``; ``docs/azure-ad.md`` states the rules. When a user's token carries the
group *overage* marker instead of the ``groups`` claim, membership is asked of Microsoft Graph
with a token msal acquires for the app. Graph trouble fails closed (403) and is time-boxed.

Cold start matters for a Functions app, so importing this module costs only pyjwt: msal and
requests are imported inside the Graph path, which most deployments never reach.

Tokens are never logged, not even in part; the log says why a token was refused.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlsplit

import jwt

from core.kernel.errors import Forbidden, Unauthorized
from core.kernel.principal import Principal
from core.kernel.settings import Settings, get_settings

logger = logging.getLogger(__name__)

ALGORITHM = "RS256"
CLOCK_SKEW_SECONDS = 300
"""Microsoft.IdentityModel's default ``ClockSkew``; the issue caps it at five minutes."""
KID_REFRESH_INTERVAL_SECONDS = 60.0
"""At most one key refresh per minute for unknown ``kid`` values."""
HTTP_TIMEOUT_SECONDS = 5.0
"""Every outbound identity call is time-boxed once (a caller waits at most this long, however many
requests it takes), so that a dead or slow IdP or Graph gives a quick 401/403."""
BOOTSTRAP_RETRY_SECONDS = 10.0
"""While no key has ever been loaded, retry the download this often (not on every request).
Longer than the time-out: a failed attempt is over before the next may start."""
FAILURE_RETRY_SECONDS = 10.0
"""After a Graph token or membership call failed, callers fail closed at once for this long
rather than each waiting out the time-out again. Longer than the time-out, for the same reason."""
KEY_MAX_AGE_SECONDS = 24 * 3600.0
"""Keys older than this are refreshed on use (failure keeps them), like ConfigurationManager."""
GROUP_CACHE_SECONDS = 300.0
GROUP_CACHE_MAX_ENTRIES = 10_000
MAX_TOKEN_LENGTH = 16_384
MAX_DOCUMENT_BYTES = 1 << 20
V1_ISSUER_TEMPLATE = "https://sts.windows.net/{tenant}/"

_SEGMENT = r"[A-Za-z0-9_-]+"
_JWS_SHAPE = re.compile(rf"^{_SEGMENT}\.{_SEGMENT}\.[A-Za-z0-9_-]*$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PEM_KEY = re.compile(
    r"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----.+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----",
    re.DOTALL,
)
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def looks_like_jwt(token: str) -> bool:
    """Cheap routing check: is this bearer token shaped like a signed JWT (three base64url parts)?

    The dispatcher uses it to tell Azure AD tokens from personal access tokens (``jct_...``)
    without parsing anything; the real checks are in ``AadAuthenticator.authenticate``.
    A JWE (five segments) is not a JWS and answers False.
    """
    return (
        isinstance(token, str)
        and 0 < len(token) <= MAX_TOKEN_LENGTH
        and not token.startswith("jct_")
        and _JWS_SHAPE.match(token) is not None
    )


def invalid_token(message: str) -> Unauthorized:
    return Unauthorized(message, "InvalidToken", error="invalid_token")


# --------------------------------------------------------------------------------------------
# Outbound HTTP (stdlib, so SSL_CERT_FILE / the system store decides what is trusted)
# --------------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Metadata and Graph calls must not be bounced elsewhere (for instance to plain http)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:  # noqa: D102
        return None


def _open(request: urllib.request.Request, timeout: float) -> bytes:
    # A fresh default context per call: calls are rare (key refreshes, Graph misses), and it
    # honours SSL_CERT_FILE / SSL_CERT_DIR as they are when the call is made.
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ssl.create_default_context()), _NoRedirect()
    )
    with opener.open(request, timeout=timeout) as response:
        body: bytes = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"response from {request.full_url} is larger than {MAX_DOCUMENT_BYTES} bytes")
    return body


def _require_https(url: Any, what: str) -> str:
    if not isinstance(url, str) or urlsplit(url).scheme != "https" or not urlsplit(url).netloc:
        raise ValueError(f"{what} must be an https URL")
    return url


def fetch_json(url: str, timeout: float = HTTP_TIMEOUT_SECONDS) -> Any:
    """GET a JSON document over https, time-boxed and size-limited."""
    _require_https(url, "metadata URL")
    # https only (checked above), so no file: or custom schemes.
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "junction"})  # noqa: S310
    return json.loads(_open(request, timeout))


class SharedCall:
    """Outbound identity calls made once for all the callers that need them at the same time.

    A slow identity provider must not hold one worker thread per request, one after another: the
    first caller starts the call (in a thread of its own) and every caller that needs the same
    thing meanwhile waits for that one call; nobody waits past its deadline (``timeout`` after it
    started), so all of them fail closed together and quickly. A call that failed is remembered
    for ``retry_after`` (longer than the time-out): callers in that window fail at once instead of
    starting a call each. A call still running past its deadline (a socket that never answers)
    is joined, not repeated: its late callers fail at once.
    """

    def __init__(self, *, timeout: float, retry_after: float = 0.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._timeout = timeout
        self._retry_after = retry_after
        self._monotonic = monotonic  # for the failure window; waits use real time
        self._lock = threading.Lock()
        self._flights: dict[Any, _Flight] = {}
        self._failures: dict[Any, tuple[float, BaseException]] = {}
        self.started = 0
        """How many calls were started (for tests and diagnostics)."""

    def run(self, key: Any, work: Callable[[float], Any]) -> Any:
        """``work(deadline)``'s result, shared with concurrent callers of the same ``key``.

        ``deadline`` is a ``time.monotonic()`` value the work should pass to its own I/O.
        Raises the work's exception, or ``TimeoutError`` when the deadline passes first.
        """
        with self._lock:
            flight = self._flights.get(key)
            if flight is None:
                failed = self._failures.get(key)
                if failed is not None and self._monotonic() - failed[0] < self._retry_after:
                    raise failed[1]
                flight = self._start(key, work)
        return flight.wait()

    def start_or_join(self, key: Any, work: Callable[[float], Any], may_start: Callable[[], bool]) -> _Flight | None:
        """The flight for ``key``: the one in the air, or a new one when ``may_start()`` says so
        (checked under the lock, so throttles see one decision at a time); None otherwise."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is None and may_start():
                flight = self._start(key, work)
            return flight

    def _start(self, key: Any, work: Callable[[float], Any]) -> _Flight:
        flight = _Flight(time.monotonic() + self._timeout)
        self._flights[key] = flight
        self.started += 1

        def fly() -> None:
            try:
                flight.value = work(flight.deadline)
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                flight.error = exc
            with self._lock:
                self._flights.pop(key, None)
                if flight.error is not None:
                    self._failures[key] = (self._monotonic(), flight.error)
                else:
                    self._failures.pop(key, None)
            flight.done.set()

        threading.Thread(target=fly, name="junction-identity-call", daemon=True).start()
        return flight


class _Flight:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    def wait(self) -> Any:
        if not self.done.wait(max(0.0, self.deadline - time.monotonic())):
            raise TimeoutError("the identity provider did not answer in time")
        if self.error is not None:
            raise self.error
        return self.value


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` (a ``time.monotonic()`` value); at least a sliver, so a
    socket call made at the last moment still fails by itself rather than blocking."""
    return max(0.05, deadline - time.monotonic())


# --------------------------------------------------------------------------------------------
# Signing keys
# --------------------------------------------------------------------------------------------


class SigningKeys:
    """The tenant's token signing keys, cached by ``kid``.

    Downloaded lazily on first use (cold start pays nothing), then served from memory. The
    refresh rules are what stop both outages and abuse from reaching the IdP:

    - an unknown ``kid`` refreshes at most once per ``refresh_interval`` (60 s), so forged
      ``kid`` values cannot cause a refresh storm;
    - a failed refresh keeps the keys already known (a JWKS outage does not log everyone out);
    - while nothing was ever loaded, a download is retried at most every ``bootstrap_retry`` s;
    - keys older than ``max_age`` are refreshed when used, and kept if that fails.

    Concurrent requests that need a download share the one in flight (``SharedCall``): one
    fetch, not one each, and none of them waits longer than the time-out, however slow the IdP.
    Requests whose ``kid`` is cached never take the lock.
    """

    def __init__(
        self,
        discovery_url: str,
        *,
        timeout: float = HTTP_TIMEOUT_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        refresh_interval: float = KID_REFRESH_INTERVAL_SECONDS,
        bootstrap_retry: float = BOOTSTRAP_RETRY_SECONDS,
        max_age: float = KEY_MAX_AGE_SECONDS,
        expected_issuer: str | None = None,
    ) -> None:
        self._discovery_url = discovery_url
        # OpenID Connect Discovery 4.3: the document must name the issuer it was fetched for.
        self._expected_issuer = expected_issuer
        self._timeout = timeout
        self._monotonic = monotonic
        self._refresh_interval = refresh_interval
        self._bootstrap_retry = bootstrap_retry
        self._max_age = max_age
        self._calls = SharedCall(timeout=timeout)
        self._keys: dict[str, Any] = {}
        self._jwks_uri: str | None = None
        self._loaded_at: float | None = None
        self._last_bootstrap: float | None = None
        self._last_refresh: float | None = None
        self.downloads = 0
        """How many key downloads were attempted (for tests and diagnostics)."""

    def get(self, kid: str) -> Any | None:
        """The public key for ``kid``, or None when the tenant does not (or no longer) publish it."""
        key = self._keys.get(kid)
        loaded_at = self._loaded_at
        if key is not None and loaded_at is not None and self._monotonic() - loaded_at < self._max_age:
            return key
        self._refresh(kid)
        return self._keys.get(kid)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def _may_download(self, kid: str) -> bool:
        """The refresh throttles (called under the shared call's lock, so one decision at a time)."""
        now = self._monotonic()
        if self._loaded_at is None:
            if self._last_bootstrap is not None and now - self._last_bootstrap < self._bootstrap_retry:
                return False
            self._last_bootstrap = now
        else:
            stale = now - self._loaded_at >= self._max_age
            if kid in self._keys and not stale:
                return False  # another request refreshed meanwhile
            if self._last_refresh is not None and now - self._last_refresh < self._refresh_interval:
                return False
            self._last_refresh = now
        self.downloads += 1
        return True

    def _refresh(self, kid: str) -> None:
        flight = self._calls.start_or_join("keys", self._load, lambda: self._may_download(kid))
        if flight is None:
            return
        try:
            flight.wait()
        except TimeoutError:  # the download goes on and logs how it ended; this caller is done
            logger.warning("signing keys from %s: no answer within %g s; refusing for now", self._discovery_url, self._timeout)
        except Exception:  # noqa: BLE001, S110 - any failure keeps the known keys (logged once, by _load)
            pass

    def _load(self, deadline: float) -> None:
        try:
            keys = self._download(deadline)
        except Exception as exc:
            logger.warning(
                "signing keys from %s could not be loaded (%s: %s); keeping %d known key(s)",
                self._discovery_url,
                type(exc).__name__,
                exc,
                len(self._keys),
            )
            raise
        self._keys = keys
        self._loaded_at = self._monotonic()
        logger.info("signing keys loaded from %s: %s", self._discovery_url, ", ".join(sorted(keys)))

    def _download(self, deadline: float) -> dict[str, Any]:
        if self._jwks_uri is None:
            config = fetch_json(self._discovery_url, min(self._timeout, remaining(deadline)))
            if not isinstance(config, dict):
                raise ValueError("the OpenID configuration is not a JSON object")
            if self._expected_issuer is not None and config.get("issuer") != self._expected_issuer:
                raise ValueError(f"the OpenID configuration names issuer {config.get('issuer')!r}, not {self._expected_issuer!r}")
            self._jwks_uri = _require_https(config.get("jwks_uri"), "jwks_uri")
        document = fetch_json(self._jwks_uri, min(self._timeout, remaining(deadline)))
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("the JWKS document has no 'keys' list")
        keys: dict[str, Any] = {}
        for jwk in document["keys"]:
            # Only RSA signing keys with a kid can verify an RS256 token; skip the rest rather
            # than fail the whole set (Microsoft publishes nothing else, but be tolerant).
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
                continue
            kid = jwk.get("kid")
            if not isinstance(kid, str) or not kid:
                continue
            try:
                keys[kid] = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
            except jwt.PyJWTError as exc:
                logger.warning("skipping unusable signing key %r: %s", kid, exc)
        if not keys:
            raise ValueError("the JWKS document has no usable RSA signing key")
        return keys


# --------------------------------------------------------------------------------------------
# Graph group-overage checks
# --------------------------------------------------------------------------------------------


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
        except GraphError:
            raise
        except TimeoutError:
            raise GraphError(f"Graph or the token for it did not answer within {self._timeout:g} s") from None
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the answer is "no"
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
            answer = json.loads(_open(request, min(self._timeout, remaining(deadline))))
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
        import msal  # lazily: only deployments with overage tokens pay for it
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


# --------------------------------------------------------------------------------------------
# The authenticator
# --------------------------------------------------------------------------------------------


def jose_header(token: str) -> dict[str, Any]:
    """The JOSE header of a token that ``looks_like_jwt`` already vetted (base64url alphabet).

    Parsed here rather than with ``jwt.get_unverified_header``, which decodes and re-validates
    every segment byte by byte and would cost more than half a signature check per request;
    ``jwt.decode`` still parses and validates the whole token afterwards.
    """
    segment = token[: token.index(".")]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:  # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise invalid_token("the token header cannot be read") from None
    if not isinstance(header, dict):
        raise invalid_token("the token header cannot be read")
    return header


def _strings(value: Any, claim: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_token(f"the '{claim}' claim must be a list of strings")
    return tuple(value)


# The last second of the year 9999: the largest time .NET's DateTime (and so Microsoft.Identity.Web)
# can hold. A NaN would compare false with everything, so ``exp: NaN`` would never expire.
_LATEST_TIME = 253_402_300_799


def _number(claims: Mapping[str, Any], claim: str) -> float | None:
    value = claims.get(claim)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_token(f"the '{claim}' claim must be a number")
    if not 0 <= value <= _LATEST_TIME:  # False for NaN as well
        raise invalid_token(f"the '{claim}' claim is not a time")
    return float(value)


def check_times(claims: Mapping[str, Any], now: float) -> None:
    """``exp`` and ``iat`` required, ``nbf`` honoured, with at most five minutes of clock skew."""
    exp = _number(claims, "exp")
    iat = _number(claims, "iat")
    nbf = _number(claims, "nbf")
    if exp is None or iat is None:
        raise invalid_token("the token must carry 'exp' and 'iat'")
    if now > exp + CLOCK_SKEW_SECONDS:
        raise invalid_token("the token has expired")
    if nbf is not None and nbf > now + CLOCK_SKEW_SECONDS:
        raise invalid_token("the token is not valid yet")
    if iat > now + CLOCK_SKEW_SECONDS:
        raise invalid_token("the token was issued in the future")


_ALGORITHMS = [ALGORITHM]


@functools.lru_cache(maxsize=8)
def _decode_options(require: tuple[str, ...]) -> Any:
    # Times are checked by ``check_times`` against the injected clock with the five-minute skew.
    return {"require": list(require), "verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": True, "verify_iss": True}


def verify_token(
    token: str,
    keys: SigningKeys,
    *,
    audience: str | Sequence[str],
    issuer: str | Sequence[str],
    require: Sequence[str],
    now: float,
    publisher: str,
) -> dict[str, Any]:
    """The claims of a signed access token, after every check that is not about who the holder is.

    RS256 only, whatever the header asks for (``none``, HS256 with the public key, PS/ES); no
    ``crit``/``b64``/JWE headers; a key ``keys`` publishes; the signature; ``aud`` and ``iss``;
    the ``require``d claims; and the times (``check_times``, against ``now``). Shared by Azure AD
    and the configured OpenID Connect issuers (``core.identity.oidc``).
    """
    if not looks_like_jwt(token):
        raise invalid_token("the bearer token is not a signed JWT")
    header = jose_header(token)
    if header.get("alg") != ALGORITHM:
        raise invalid_token("the token must be signed with RS256")
    if "crit" in header or "b64" in header or header.get("enc") is not None:
        raise invalid_token("the token uses header parameters Junction does not accept")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise invalid_token("the token has no key id")
    key = keys.get(kid)
    if key is None:
        raise invalid_token(f"the token is signed with a key {publisher} does not publish")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=_ALGORITHMS, audience=audience, issuer=issuer, options=_decode_options(tuple(require))
        )
    except jwt.InvalidAudienceError:
        raise invalid_token("the token is for another audience") from None
    except jwt.InvalidIssuerError:
        raise invalid_token("the token is from another issuer") from None
    except jwt.MissingRequiredClaimError as exc:
        raise invalid_token(f"the token has no '{exc.claim}' claim") from None
    except jwt.InvalidSignatureError:
        raise invalid_token("the token signature is not valid") from None
    except jwt.PyJWTError:
        raise invalid_token("the token is not valid") from None
    except (ValueError, TypeError):  # defensive: malformed input must never be a 500
        raise invalid_token("the token is not valid") from None
    check_times(claims, now)
    return claims


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
