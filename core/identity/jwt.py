"""Signed access tokens (JWS) of any OpenID Connect issuer: shape, signing keys and checks.

Shared by Azure AD (``core.identity.aad``) and the issuers an operator lists for API operations
(``core.identity.oidc``). The checks mirror Microsoft's validators rather than what pyjwt does by
default:

- RS256 only, whatever the header asks for. ``alg: none``, HS256 "signed" with the public key,
  PS/ES algorithms, JWE (five segments) and anything that does not parse are 401, never 500.
- ``aud`` and ``iss`` as the caller expects, ``exp`` and ``iat`` required, ``nbf`` honoured, and
  clocks may disagree by at most five minutes (Microsoft's default ``ClockSkew``).
- Signing keys come from the issuer's OpenID configuration. They are fetched lazily, once per
  process, and cached by ``kid``. An unknown ``kid`` refreshes them at most once a minute, so
  forged ``kid`` values cannot turn every request into a JWKS download; a failed refresh keeps
  the keys already known, and a rotated key is picked up without a restart.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jwt

from core.identity.fetch import HTTP_TIMEOUT_SECONDS, SharedCall, fetch_json, remaining, require_https
from core.kernel import telemetry
from core.kernel.errors import Unauthorized

logger = logging.getLogger(__name__)

ALGORITHM = "RS256"
CLOCK_SKEW_SECONDS = 300
"""Microsoft.IdentityModel's default ``ClockSkew``; the issue caps it at five minutes."""
KID_REFRESH_INTERVAL_SECONDS = 60.0
"""At most one key refresh per minute for unknown ``kid`` values."""
BOOTSTRAP_RETRY_SECONDS = 10.0
"""While no key has ever been loaded, retry the download this often (not on every request).
Longer than the time-out: a failed attempt is over before the next may start."""
KEY_MAX_AGE_SECONDS = 24 * 3600.0
"""Keys older than this are refreshed on use (failure keeps them), like ConfigurationManager."""
MAX_TOKEN_LENGTH = 16_384
_SEGMENT = r"[A-Za-z0-9_-]+"
_JWS_SHAPE = re.compile(rf"^{_SEGMENT}\.{_SEGMENT}\.[A-Za-z0-9_-]*$")


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


class SigningKeys:
    """An issuer's token signing keys (a tenant's, for Azure AD), cached by ``kid``.

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
        kind: str = "jwks",
    ) -> None:
        self._discovery_url = discovery_url
        self.kind = kind
        """``jwks`` (Azure AD) or ``oidc`` (an issuer the operator lists): how a failed download is counted."""
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

    def age(self) -> float | None:
        """Seconds since the keys were last downloaded, or None when none ever was (the health
        endpoint's key cache age)."""
        loaded_at = self._loaded_at
        return None if loaded_at is None else max(0.0, self._monotonic() - loaded_at)

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
            telemetry.count(telemetry.IDENTITY_FAILURES, attributes={telemetry.IDENTITY_KIND: self.kind})
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
            self._jwks_uri = require_https(config.get("jwks_uri"), "jwks_uri")
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
