"""Health: ``GET /health`` for load balancers and availability tests, and the details an
administrator reads at ``GET /management/health`` (docs/operations.md, "Health").

``GET /health`` is anonymous and says nothing about tenants: 200 ``{"status": "ok"}``, or 503 when
the process's last storage check failed. It makes no storage call of its own beyond that check,
which runs at most every ``core.runs.health.CHECK_SECONDS`` (30 s) per process.

The details are read live on each call (admins only): storage reachable, the run and poison
queues, the last schedule tick, and this instance's signing-key caches.
"""

from __future__ import annotations

from typing import Any

from core.kernel.errors import StorageBusy
from core.kernel.settings import Settings
from core.runs import health
from core.store.storage import Storage
from core.web.exchange import Reply

NO_STORE = {"Cache-Control": "no-store"}


def public_health(storage: Storage) -> Reply:
    """200 ``{"status": "ok"}``; 503 (a JSON error with ``Retry-After``) when the cached check failed."""
    result = health.cached_storage_check(storage)
    if not result.healthy:
        raise StorageBusy(
            f"storage was not reachable at the last check ({result.checked_at}); checked every {health.CHECK_SECONDS:g} s",
            throttled=False,
            retry_after=int(health.CHECK_SECONDS),
        )
    return Reply(200, {"status": "ok"}, NO_STORE)


def _keys(kind: str, issuer: str, keys: Any) -> dict[str, Any]:
    age = keys.age()
    return {"kind": kind, "issuer": issuer, "keys": len(keys.kids), "ageSeconds": None if age is None else round(age, 1)}


def signing_keys(settings: Settings) -> list[dict[str, Any]]:
    """The key caches of this instance: Azure AD's (``jwks``) when it is configured, and those of
    the ``JUNCTION_OAUTH_ISSUERS`` issuers that tokens were checked against. ``ageSeconds`` is
    null until a download succeeded (keys load on first use)."""
    # cold start: Azure AD's modules load with the details, never with GET /health
    from core.identity.aad import get_aad_authenticator
    from core.identity.oidc import known_issuers

    found = []
    aad = get_aad_authenticator() if settings.aad_enabled else None
    if aad is not None:
        found.append(_keys("jwks", f"{settings.aad_authority_host}/{settings.aad_tenant_id}/v2.0", aad.keys))
    found.extend(_keys("oidc", tokens.issuer, tokens.keys) for tokens in known_issuers() if tokens.issuer in settings.oauth_issuers)
    return found


def details(storage: Storage, settings: Settings) -> dict[str, Any]:
    """What ``GET /management/health`` answers (the caller is an admin)."""
    check = health.check_storage(storage)
    body: dict[str, Any] = {
        "status": "ok" if check.healthy else "unhealthy",
        "storage": {"reachable": check.healthy, "checkedAt": check.checked_at, "error": check.error},
        "runQueue": None,
        "poisonQueue": None,
        "schedules": {"lastTick": None},
        "signingKeys": signing_keys(settings),
    }
    if check.healthy:
        try:
            queues = health.queue_state(storage)
            body["runQueue"] = {"depth": queues.depth, "oldestMessageAgeSeconds": None if queues.oldest_age_seconds is None else round(queues.oldest_age_seconds, 1)}
            body["poisonQueue"] = {"depth": queues.poison_depth}
            body["schedules"]["lastTick"] = health.last_schedule_tick(storage)
        except Exception as exc:  # noqa: BLE001 - storage failed between the calls: say so
            body["status"] = "unhealthy"
            body["storage"] = {"reachable": False, "checkedAt": check.checked_at, "error": type(exc).__name__}
    if body["status"] == "ok" and body["poisonQueue"] and body["poisonQueue"]["depth"] > 0:
        body["status"] = "degraded"
    return body
