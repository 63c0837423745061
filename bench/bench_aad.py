"""Per-request cost of Azure AD authentication with a warm key cache.

Compares ``AadAuthenticator.authenticate`` (header checks, cached key lookup, pyjwt decode, the
tenant/issuer/time/kind checks, building the Principal) with a bare
``jwt.decode(token, key_obj, algorithms=["RS256"], audience=...)`` on the same token in the same
run. The signature check dominates both; the ratio says what Junction's own checks cost on top.
Target: ratio <= 1.3.

Keys come from the local HTTPS identity provider the tests use (one real JWKS download to warm
the cache, then none), so the measured path is exactly the production one.

    python -m bench.bench_aad
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import jwt

from bench.timing import best_per_call

TARGET_RATIO = 1.3


def run(calls: int = 2000, rounds: int = 7) -> dict[str, Any]:
    """Measure both paths; returns requests/s for each, the ratio and whether it meets the target."""
    from core.identity.aad import AadAuthenticator
    from tests.support.idp import AUDIENCE, LocalIdentityProvider, aad_settings

    saved = {name: os.environ.get(name) for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
    with tempfile.TemporaryDirectory() as folder, LocalIdentityProvider(Path(folder)) as idp:
        os.environ.update(idp.env())
        try:
            auth = AadAuthenticator(aad_settings(idp))
            token = idp.mint(idp.user_claims(AUDIENCE, groups=["a3c5e7f9-1b2d-4f6a-8c0e-112233445566"]))
            auth.authenticate(token)  # warm the key cache (one JWKS download)
            downloads = idp.jwks_fetches
            key_obj = idp.keys[idp.current_kid].public_key()

            def bare() -> Any:
                return jwt.decode(token, key_obj, algorithms=["RS256"], audience=AUDIENCE)

            def junction() -> Any:
                return auth.authenticate(token)

            bare()
            # Interleave the rounds so drift (CPU frequency, noisy neighbours) hits both alike.
            bare_s = junction_s = float("inf")
            for _ in range(rounds):
                bare_s = min(bare_s, best_per_call(bare, calls, 1))
                junction_s = min(junction_s, best_per_call(junction, calls, 1))
            assert idp.jwks_fetches == downloads, "the warm path must not download keys"
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    ratio = junction_s / bare_s
    return {
        "bare_jwt_decode_per_s": round(1 / bare_s),
        "aad_authenticate_per_s": round(1 / junction_s),
        "bare_jwt_decode_us": round(bare_s * 1e6, 1),
        "aad_authenticate_us": round(junction_s * 1e6, 1),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
    }


def report(result: dict[str, Any]) -> str:
    return (
        "Azure AD authentication with a warm key cache:\n"
        f"    bare jwt.decode:         {result['bare_jwt_decode_per_s']:>8} req/s ({result['bare_jwt_decode_us']} us)\n"
        f"    AadAuthenticator (warm): {result['aad_authenticate_per_s']:>8} req/s ({result['aad_authenticate_us']} us)\n"
        f"    ratio {result['ratio']} (target <= {TARGET_RATIO})"
    )


if __name__ == "__main__":
    print(report(run()))
