"""The catch-all trigger that serves API-bound operations at their own paths.

Its route ``{*path}`` must be tried after every other HTTP route, so the external-trigger and
management routes keep theirs; everything else is looked up among the bound operations. The
Functions host has no route specificity: see the rule beside the function name below.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from core.kernel.settings import get_settings
from core.store.storage import get_storage
from core.traffic.addresses import client_address
from core.web.exchange import Request
from triggers.http import SECURITY_HEADERS, base_url, handles_errors, lower_headers

bp = func.Blueprint()

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
CATCH_ALL_FUNCTION = "zzApiOperations"  # must sort last: the route order rule below


def api_request(req: func.HttpRequest) -> Request:
    parts = urlsplit(req.url)
    headers = lower_headers(req)
    return Request(
        method=req.method,
        url=req.url,
        path=parts.path,
        query=parse_qs(parts.query, keep_blank_values=True),
        headers=headers,
        body=req.get_body() or b"",
        base_url=base_url(req),
        # The front end (App Service, or devhost) appends the peer it saw: the last entry.
        client_ip=client_address(headers.get("x-forwarded-for")),
    )


# The status URL of an API call bound with "respond": "async" (core.app.api_calls). Its name sorts
# before the catch-all's, as the rule below requires; /ExternalData is reserved, so no imported
# operation can have this path.
@bp.function_name("runStatus")
@bp.route(route="ExternalData/RunStatus/{token}", methods=["GET"])
@handles_errors("runStatus")
def run_status(req: func.HttpRequest) -> func.HttpResponse:
    from core.app.api_calls import serve_run_status  # cold start: as the catch-all below

    headers = lower_headers(req)
    reply = serve_run_status(get_storage(), req.route_params.get("token", ""), headers.get("accept"), headers.get("origin"))
    return func.HttpResponse(reply.body, status_code=reply.status, headers={**SECURITY_HEADERS, **reply.headers})


# ROUTE ORDER RULE. The Functions host tries HTTP routes in the order of the function *names*
# (case-insensitive ordinal: names compared upper-cased, so "_" sorts after every letter) and the
# first route whose template and methods match wins; there is no ASP.NET specificity
# (azure-functions-host #9876, #6062, #3153). This catch-all therefore needs a name that sorts
# after every other HTTP function's name, or it takes their requests on Azure ("apiOperations"
# sorted before "getCacheData" and "management*" and did). A request whose path matches another
# route but whose method does not passes on to this one. Any new HTTP function must sort before
# it: tests/unit/test_function_routes.py fails when one of Junction's routes is shadowed.
@bp.function_name(CATCH_ALL_FUNCTION)
@bp.route(route="{*path}", methods=METHODS)
@handles_errors(CATCH_ALL_FUNCTION)
def api_operations(req: func.HttpRequest) -> func.HttpResponse:
    # Imported on the first API call: the gateway (OpenAPI routing, parameters, certificates) is
    # most of the app's code, and many deployments only use the external triggers.
    from core.app.api_calls import serve_api_call

    reply = serve_api_call(get_storage(), get_settings(), api_request(req))
    return func.HttpResponse(reply.body, status_code=reply.status, headers=dict(reply.headers))
