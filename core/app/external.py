"""The IntegrationHub external triggers: Accept (start a run) and GetCacheData (read the cache).

Accept does only what must happen before answering: check the request, find the scenario,
authorise the caller, record the run as ``queued`` and enqueue it. The process runs later in the
queue-triggered worker, so a slow process never holds a caller's connection.

A scenario with ``externalTriggers.signature`` has the raw body's signature verified once the
scenario is known and before the body is parsed (``core.identity.signatures``), and the
signature claimed once the body is known to be good (``core.identity.replays``): 401
``InvalidSignature``, 409 ``Replayed``.

Warm storage cost: scenario read, run insert, queue send (3; 2 when this process read the
scenario less than ``JUNCTION_SCENARIO_HOLD_SECONDS`` ago), plus the token read for a personal
access token (4), the claim for an ``Idempotency-Key`` (5) and the claim of a signature (6); a
rate limit adds its bucket's read and write (``core.traffic.ratelimit``), and admission control a
queue-depth read at most once every few seconds per process (``core.runs.admission``).

The order is what can be refused before what: the scenario is read first because its IP
allow-list decides before anything else is read or started (403 ``IpNotAllowed``); then the run
queue's depth (503, Accept only), the caller (401/403), the signature (401), the rate limit (429:
only callers who may call spend it), and only then the body, the claims and the run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.identity import replays
from core.identity.auth import authenticate, authorize_trigger
from core.identity.signatures import Verified, verify
from core.kernel import clock, telemetry
from core.kernel.errors import Forbidden, NotFound, Unauthorized
from core.kernel.ids import new_run_id, parse_guid
from core.kernel.principal import Principal
from core.kernel.settings import Settings
from core.runs import idempotency
from core.runs.admission import check_admission
from core.runs.starter import start_run
from core.scenarios.cache import ScenarioCache, parse_key
from core.scenarios.repository import Scenario, get_scenario_recent
from core.store.storage import Storage
from core.traffic.addresses import check_allowed
from core.traffic.ratelimit import admit
from core.web.bodies import check_size, parse_body, refuse_unframed_body

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AcceptRequest:
    scenario_id: str
    method: str
    body: bytes
    content_type: str | None
    authorization: str | None
    idempotency_key: str | None = None
    content_encoding: str | None = None
    transfer_encoding: str | None = None
    content_length: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    """Every header, names in lower case (signatures may name any)."""
    client_ip: str | None = None
    """The caller's address as the platform reports it (``core.traffic.addresses.client_address``)."""


@dataclass(frozen=True)
class AcceptResult:
    run_id: str
    replayed: bool
    headers: dict[str, str] = field(default_factory=dict)
    """RateLimit-Policy and RateLimit when the scenario has a rate limit."""


def _authorised_scenario(
    storage: Storage,
    raw_id: str,
    authorization: str | None,
    client_ip: str | None,
    settings: Settings | None = None,
    hold_seconds: float = 0.0,
) -> tuple[Scenario, Principal | None]:
    """The scenario, after the per-scenario access rules (README, Access).

    The IP allow-list is decided first, on the scenario alone. Credentials are checked before
    anything else about the scenario is told: a caller without them gets the same 401 for a
    scenario that does not exist, is disabled or is not anonymous, so only callers allowed to
    trigger learn which scenarios exist or are disabled (404/403). ``settings`` is given by
    Accept only: admission control (the run queue's depth) is decided before the caller. The
    scenario may come from a read this process made up to ``hold_seconds`` ago
    (``JUNCTION_SCENARIO_HOLD_SECONDS``, ``get_scenario_recent``).
    """
    scenario_id = parse_guid(raw_id, "the scenario id", "InvalidScenarioId")
    telemetry.annotate(scenario_id=scenario_id)  # refused calls name their scenario too ("who called?")
    try:
        scenario: Scenario | None = get_scenario_recent(storage, scenario_id, hold_seconds)
    except NotFound:
        scenario = None
    if scenario is not None:
        check_allowed(scenario.ip_allow_list, client_ip)
    if settings is not None:
        check_admission(storage, settings)
    principal = authenticate(storage, authorization)
    if principal is None:
        if scenario is None or not scenario.triggers_enabled or not scenario.allow_anonymous:
            raise Unauthorized("this scenario needs 'Authorization: Bearer <token>'", "AuthenticationRequired")
        return scenario, None
    authorize_trigger(principal, scenario_id)  # depends on the token only
    if scenario is None:
        raise NotFound(f"no scenario with id {scenario_id}", "ScenarioNotFound")
    if not scenario.triggers_enabled:
        raise Forbidden("external triggers are disabled for this scenario", "TriggersDisabled")
    return scenario, principal


def credential_of(principal: Principal | None) -> str:
    """The caller's identity for a ``perCredential`` rate limit: a token's id, an Azure AD object id."""
    if principal is None:
        return "anonymous"
    return f"{principal.kind}:{principal.token_id or principal.oid or principal.name or ''}"


def _rate_limit(storage: Storage, scenario: Scenario, principal: Principal | None) -> dict[str, str]:
    decision = admit(storage, scenario.rate_limit, scenario.id, credential_of(principal), name="scenario")
    return decision.headers if decision is not None else {}


def principal_summary(principal: Principal | None) -> dict[str, Any]:
    if principal is None:
        return {"kind": "anonymous"}
    return {"kind": principal.kind, "name": principal.name, "tokenId": principal.token_id, "oid": principal.oid}


def accept(storage: Storage, settings: Settings, request: AcceptRequest) -> AcceptResult:
    """Start a run of the scenario; see the module docstring for what is checked when."""
    idempotency_key = idempotency.check_key(request.idempotency_key)
    check_size(request.body, settings.max_body_bytes)
    scenario, principal = _authorised_scenario(
        storage, request.scenario_id, request.authorization, request.client_ip, settings, settings.scenario_hold_seconds
    )
    now = clock.now().timestamp()
    signature = scenario.signature
    verified: Verified | None = verify(signature, request.body, request.headers, now) if signature else None
    limit_headers = _rate_limit(storage, scenario, principal)
    refuse_unframed_body(request.body, request.transfer_encoding, request.content_length)
    has_body = request.method.upper() == "POST" and len(request.body) > 0
    body = parse_body(request.body, request.content_type, settings.max_body_bytes, request.content_encoding) if has_body else None

    run_id = new_run_id()
    if verified is not None:
        replays.claim(storage, scenario.id, verified, now)
    try:
        result = _start(storage, scenario, principal, request, idempotency_key, run_id, body, has_body)
    except Exception:
        if verified is not None:
            replays.release(storage, scenario.id, verified)
        raise
    return AcceptResult(result.run_id, result.replayed, limit_headers)


def _start(
    storage: Storage,
    scenario: Scenario,
    principal: Principal | None,
    request: AcceptRequest,
    idempotency_key: str | None,
    run_id: str,
    body: Any,
    has_body: bool,
) -> AcceptResult:
    if idempotency_key is not None:
        existing = idempotency.claim(storage, scenario.id, idempotency_key, run_id)
        if existing is not None:
            logger.info("Idempotency-Key replay for scenario %s: run %s", scenario.id, existing)
            return AcceptResult(existing, replayed=True)
    trigger = {
        "type": "accept",
        "method": request.method.upper(),
        "contentType": request.content_type if has_body else None,
        "bodyBytes": len(request.body) if has_body else 0,
        "caller": principal_summary(principal),
        "data": {"httpClientIp": request.client_ip},
    }
    try:
        start_run(
            storage, scenario.id, trigger, body=body, has_body=has_body, principal=principal, run_id=run_id, scenario_etag=scenario.etag
        )
    except Exception:
        if idempotency_key is not None:
            idempotency.release(storage, scenario.id, idempotency_key)
        raise
    logger.info("accepted run %s of scenario %s", run_id, scenario.id)
    return AcceptResult(run_id, replayed=False)


def read_cache(
    storage: Storage,
    raw_id: str,
    key_json: str | None,
    authorization: str | None,
    client_ip: str | None = None,
    hold_seconds: float = 0.0,
) -> tuple[Any, dict[str, str]]:
    """``(value, headers)``: the value a scenario cached under ``key_json`` (NotFound when there
    is none) and the rate limit's headers. The scenario's rate limit counts these calls too."""
    key = parse_key(key_json)
    scenario, principal = _authorised_scenario(storage, raw_id, authorization, client_ip, hold_seconds=hold_seconds)
    headers = _rate_limit(storage, scenario, principal)
    return ScenarioCache(storage, scenario.id).get(key), headers


def get_cache_data(storage: Storage, raw_id: str, key_json: str | None, authorization: str | None, client_ip: str | None = None) -> Any:
    """The value a scenario cached under ``key_json``; NotFound when there is none."""
    return read_cache(storage, raw_id, key_json, authorization, client_ip)[0]
