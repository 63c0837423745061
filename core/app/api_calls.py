"""An API-bound operation call, from request to response (the catch-all trigger's one call).

``core.apiops.gateway.prepare_call`` routes, checks and parses the request; the bound scenario's
process then runs while the caller waits (``core.runs.sync_run.run_now``), and its result becomes
the response as Frends does it (``core.apiops.results.format_result``). Every call is a run in
the run table, and its id is in the ``X-Run-Id`` response header.
"""

from __future__ import annotations

import functools
import logging
import re

from core.apiops.gateway import prepare_call
from core.apiops.results import format_result
from core.kernel.deadline import Deadline
from core.kernel.errors import GatewayTimeout, MethodNotAllowed, NotFound
from core.kernel.jsonvalue import dumps
from core.kernel.settings import Settings
from core.runs.sync_run import run_now
from core.scenarios.repository import get_scenario
from core.store.storage import Storage
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
    try:
        scenario = get_scenario(storage, prepared.scenario_id)
    except NotFound:
        raise NotFound("the scenario bound to this operation no longer exists", "ScenarioNotFound") from None
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
