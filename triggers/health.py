"""``GET /health``: anonymous, no tenant data, answered from a storage check cached per process
(core/app/health.py). The details for administrators are ``GET /management/health``
(triggers/management.py)."""

from __future__ import annotations

import azure.functions as func

from core.store.storage import get_storage
from triggers.http import handles_errors, reply_response

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"])
@handles_errors("health")
def health(req: func.HttpRequest) -> func.HttpResponse:
    from core.app.health import public_health  # cold start: with the first health check

    return reply_response(public_health(get_storage()))
