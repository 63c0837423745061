"""The console (docs/console.md): ``GET /`` redirects to it, ``GET /console/...`` serves it.

Both names sort before ``zzApiOperations`` (the route order rule in triggers/api_operations.py).
An empty route is not allowed by the Functions host, so the site root is matched by an optional
parameter that can only be empty; the host shows its own home page only when no function
matched ``/``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import azure.functions as func

from core.kernel.settings import get_settings
from core.web.exchange import refuse_repeated_parameters
from triggers.http import handles_errors, json_response

bp = func.Blueprint()


@bp.function_name("consoleHome")
@bp.route(route="{home:maxlength(0)?}", methods=["GET"])
@handles_errors("consoleHome")
def console_home(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=302, headers={"Location": "/console/", "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


@bp.function_name("console")
@bp.route(route="console/{*path}", methods=["GET"])
@handles_errors("console")
def console(req: func.HttpRequest) -> func.HttpResponse:
    from core.app.console import API_PREFIX, serve_api, serve_file

    path = req.route_params.get("path") or ""
    if path.startswith(API_PREFIX):
        refuse_repeated_parameters(urlsplit(req.url).query)
        return json_response(serve_api(path, dict(req.params)))
    reply = serve_file(get_settings(), path)
    return func.HttpResponse(reply.body, status_code=reply.status, headers=reply.headers)
