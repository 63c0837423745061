"""IntegrationHub-compatible external triggers: Accept and GetCacheData."""

from __future__ import annotations

from urllib.parse import urlsplit

import azure.functions as func

from core.app.external import AcceptRequest, accept, read_cache
from core.kernel.settings import get_settings
from core.store.storage import get_storage
from core.traffic.addresses import client_address
from core.web.exchange import refuse_repeated_parameters
from triggers.http import handles_errors, json_value_response, lower_headers

bp = func.Blueprint()


@bp.function_name("accept")
@bp.route(route="ExternalData/Accept/{scenarioId}", methods=["GET", "POST"])
@handles_errors("accept")
def accept_trigger(req: func.HttpRequest) -> func.HttpResponse:
    headers = lower_headers(req)
    result = accept(
        get_storage(),
        get_settings(),
        AcceptRequest(
            scenario_id=req.route_params.get("scenarioId", ""),
            method=req.method,
            body=req.get_body() or b"",
            content_type=headers.get("content-type"),
            authorization=headers.get("authorization"),
            idempotency_key=headers.get("idempotency-key"),
            content_encoding=headers.get("content-encoding"),
            transfer_encoding=headers.get("transfer-encoding"),
            content_length=headers.get("content-length"),
            headers=headers,
            client_ip=client_address(headers.get("x-forwarded-for")),
        ),
    )
    response_headers = {**result.headers, "X-Run-Id": result.run_id, "Cache-Control": "no-store"}
    if result.replayed:
        response_headers["Idempotent-Replayed"] = "true"
    return func.HttpResponse(status_code=200, headers=response_headers)


@bp.function_name("getCacheData")
@bp.route(route="ExternalData/GetCacheData/{scenarioId}", methods=["GET"])
@handles_errors("getCacheData")
def get_cache_data_trigger(req: func.HttpRequest) -> func.HttpResponse:
    refuse_repeated_parameters(urlsplit(req.url).query)
    headers = lower_headers(req)
    value, limit_headers = read_cache(
        get_storage(),
        req.route_params.get("scenarioId", ""),
        req.params.get("keyJson"),
        headers.get("authorization"),
        client_address(headers.get("x-forwarded-for")),
        get_settings().scenario_hold_seconds,
    )
    return json_value_response(value, limit_headers)
