"""An API-bound operation call, from request to response (the catch-all trigger's one call).

``core.apiops.gateway.prepare_call`` routes, checks and parses the request; the bound scenario's
process then runs while the caller waits (``core.runs.sync_run.run_now``), and its result becomes
the response as Frends does it (``core.apiops.results.format_result``). Every call is a run in
the run table, and its id is in the ``X-Run-Id`` response header.

A binding with ``"respond": "async"`` (the asynchronous request-reply pattern of Logic Apps)
queues the run instead and answers 202 with ``Location``: a status URL signed by the app
(``core.identity.links``) that needs no other credential and expires after
``STATUS_URL_SECONDS``, and ``Retry-After``. ``serve_run_status`` answers it: 202 while the run
is queued or running, then the response the process produced, mapped as for a synchronous call:
the early answer of an ``intermediateReturn`` as soon as the run has reached it, otherwise the
result once the run has ended (docs/api-operations.md, "Long operations: 202 Accepted").

A binding with ``signature`` has it verified by the gateway; it is claimed here, just before the
run starts, and given back if a queued run could not be started (a synchronous run is recorded
before anything can fail, so its signature stays used).
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

from core.apiops.gateway import Prepared, prepare_call
from core.apiops.registry import route_cache
from core.apiops.results import format_result
from core.apiops.routes import BoundOperation
from core.identity import links, replays
from core.kernel import clock
from core.kernel.deadline import Deadline
from core.kernel.errors import GatewayTimeout, MethodNotAllowed, NotFound
from core.kernel.ids import new_run_id
from core.kernel.jsonvalue import dumps
from core.kernel.settings import Settings
from core.runs import records as runs
from core.runs.admission import check_admission
from core.runs.starter import start_run
from core.runs.sync_run import run_now
from core.scenarios.repository import Scenario, get_scenario
from core.store.storage import Storage
from core.web import cors
from core.web.exchange import Reply, Request, error_body

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _own_routes() -> tuple[tuple[re.Pattern[str], frozenset[str]], ...]:
    """Junction's own paths and their methods, from the published document."""
    from core.app.openapi import build_document  # cold start: only a wrong method needs it

    routes = []
    for template, item in build_document("").get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        methods = frozenset(m.upper() for m in item if m in ("get", "put", "post", "patch", "delete"))
        routes.append((re.compile(f"{pattern}/?", re.IGNORECASE), methods))
    return tuple(routes)


def check_own_route(method: str, path: str) -> None:
    """A request for one of Junction's own paths with another method reaches the catch-all (the
    host routes by method too): answer 405 with ``Allow``, not the gateway's 404."""
    for pattern, methods in _own_routes():
        if pattern.fullmatch(path) and method.upper() not in methods:
            raise MethodNotAllowed(f"{method.upper()} is not allowed here", sorted(methods))


def serve_api_call(storage: Storage, settings: Settings, request: Request) -> Reply:
    # One deadline for the whole call, below the front end's 230 s cut (core/kernel/deadline.py).
    deadline = Deadline(settings.api_deadline_seconds)
    check_own_route(request.method, request.path)
    prepared = prepare_call(storage, settings, request)
    if prepared.reply is not None:
        return prepared.reply
    assert prepared.trigger is not None and prepared.scenario_id is not None
    assert prepared.operation is not None
    if prepared.operation.binding.get("respond") == "async":
        check_admission(storage, settings)  # queued work, as Accept's: 503 RunQueueFull over the bound
    try:
        scenario = get_scenario(storage, prepared.scenario_id)
    except NotFound:
        raise NotFound("the scenario bound to this operation no longer exists", "ScenarioNotFound") from None
    if prepared.signature is not None:
        replays.claim(storage, scenario.id, prepared.signature, clock.now().timestamp())
    if prepared.operation.binding.get("respond") == "async":
        return _start_async(storage, request, prepared, scenario)
    outcome = run_now(storage, settings, scenario, prepared.trigger, prepared.trigger["data"]["body"], None, deadline)
    headers = {**prepared.headers, "X-Run-Id": outcome.run_id}
    if outcome.timed_out:
        timeout = GatewayTimeout(
            f"the process did not finish within the API call's deadline of {deadline.seconds:g} s "
            f"(it was stopped at step {outcome.failed_step}); see run {outcome.run_id}"
        )
        timeout.headers.update(headers)
        raise timeout
    if outcome.status == "failed":
        if outcome.response is not None:  # a throw step's HTTP response
            return format_result(outcome.response, prepared.accept, headers)
        logger.info("API call run %s failed at step %s", outcome.run_id, outcome.failed_step)
        where = f" at step {outcome.failed_step}" if outcome.failed_step else ""
        body = error_body("ProcessFailed", f"the process failed{where}; see run {outcome.run_id}")
        return Reply(500, dumps(body).encode(), {"Content-Type": "application/json", **headers})
    return format_result(outcome.result, prepared.accept, headers)


STATUS_URL_SECONDS = 24 * 3600
"""How long a status URL answers (then 410 ``LinkExpired``)."""
RETRY_AFTER_SECONDS = 2
STATUS_PURPOSE = "run-status"
STATUS_ROUTE = "ExternalData/RunStatus"


def status_url(storage: Storage, base_url: str, scenario_id: str, run_id: str, operation: BoundOperation | None = None) -> str:
    """A signed, expiring URL. It names the operation too, so a page the operation's CORS policy
    allows may read the outcome (``_status_cors``)."""
    claims = {"s": scenario_id, "r": run_id}
    if operation is not None:
        claims.update({"a": operation.api_name, "o": operation.operation_id})
    token = links.sign(storage, STATUS_PURPOSE, claims, clock.now().timestamp() + STATUS_URL_SECONDS)
    return f"{base_url.rstrip('/')}/{STATUS_ROUTE}/{token}"


def _status_cors(storage: Storage, claims: dict[str, Any], origin: str | None) -> dict[str, str]:
    """The CORS headers of the operation that started the run, as it is bound now: a page that
    may call the operation may read its status URL; once the operation is unbound, none may.
    From the route table the gateway keeps in memory: one point read of its version marker, as
    every API call makes, and only when a page asks (``Origin``)."""
    if origin is None or "o" not in claims:
        return {}
    for operation in route_cache(storage).get().operations:
        if operation.api_name == claims.get("a") and operation.operation_id == claims.get("o"):
            return cors.response_headers(operation.binding.get("cors"), origin)
    return {}


def _start_async(storage: Storage, request: Request, prepared: Prepared, scenario: Scenario) -> Reply:
    """Queue the run and answer 202 with where to ask for its outcome."""
    assert prepared.trigger is not None
    run_id = new_run_id()
    trigger: dict[str, Any] = {**prepared.trigger, "respond": "async"}
    summary = {key: value for key, value in trigger.items() if key not in ("data", "claims")}
    try:
        location = status_url(storage, request.base_url, scenario.id, run_id, prepared.operation)  # the key is read before anything starts
        start_run(
            storage, scenario.id, trigger, body=trigger["data"]["body"], has_body=True, principal=None,
            run_id=run_id, record=summary, scenario_etag=scenario.etag,
        )  # fmt: skip
    except Exception:
        if prepared.signature is not None:  # nothing started: the sender's retry is not a replay
            replays.release(storage, scenario.id, prepared.signature)
        raise
    logger.info("API call run %s queued (respond async)", run_id)
    headers = {**prepared.headers, "X-Run-Id": run_id, "Location": location, "Retry-After": str(RETRY_AFTER_SECONDS), "Content-Type": "application/json"}
    body = {"runId": run_id, "status": runs.QUEUED, "statusUrl": location}
    return Reply(202, dumps(body).encode(), headers)


def serve_run_status(storage: Storage, token: str, accept: str | None, origin: str | None = None) -> Reply:
    """GET on a status URL: 202 while the run has nothing to answer, then its response; with the
    CORS headers of the operation when a page calls it (``origin``)."""
    claims = links.open_token(storage, STATUS_PURPOSE, token, clock.now().timestamp())
    scenario_id, run_id = str(claims.get("s")), str(claims.get("r"))
    cors_headers = _status_cors(storage, claims, origin)
    try:
        entity = runs.read_run_entity(storage, scenario_id, run_id)
    except NotFound:
        missing = NotFound("the run of this status URL no longer exists (removed by retention?)", "RunNotFound")
        raise missing.with_headers(cors_headers) from None
    headers = {"X-Run-Id": run_id, "Cache-Control": "no-store", **cors_headers}
    answered, early = runs.early_answer(storage, entity)
    if answered:
        return format_result(early, accept, headers)
    status = entity.get("Status")
    if status == runs.SUCCEEDED:
        return format_result(runs.output_of(storage, entity), accept, headers)
    if status == runs.FAILED:
        thrown = runs.output_of(storage, entity)  # a throw step's response, kept for this URL
        if thrown is not None:
            return format_result(thrown, accept, headers)
        where = f" at step {entity['FailedStep']}" if entity.get("FailedStep") else ""
        body = error_body("ProcessFailed", f"the process failed{where}; see run {run_id}")
        return Reply(500, dumps(body).encode(), {"Content-Type": "application/json", **headers})
    body = {"runId": run_id, "status": status}
    return Reply(202, dumps(body).encode(), {**headers, "Retry-After": str(RETRY_AFTER_SECONDS), "Content-Type": "application/json"})
