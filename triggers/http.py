"""HTTP plumbing shared by the HTTP triggers, and the one place errors become statuses."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from core.kernel import errors, telemetry
from core.kernel.jsonvalue import dumps
from core.kernel.settings import get_settings
from core.store.errors import as_domain_error
from core.web import challenges
from core.web.exchange import RawJson, Reply, Request, error_body, refuse_repeated_parameters
from triggers.telemetry import configure_telemetry

logger = logging.getLogger(__name__)

# Read the settings when the app is loaded, so a bad value stops the start-up with a message that
# names the setting (the host shows it as the indexing error) instead of failing requests later.
configure_telemetry(get_settings())

STATUS: dict[type[errors.JunctionError], int] = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.MethodNotAllowed: 405,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.LengthRequired: 411,
    errors.PreconditionFailed: 412,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.TooManyRequests: 429,
    errors.ServiceUnavailable: 503,
    errors.StorageBusy: 503,
    errors.GatewayTimeout: 504,
    errors.JunctionError: 500,
}
"""The status of each domain error, found by the error's class hierarchy (``status_of``)."""
JSON = "application/json"
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def status_of(error: errors.JunctionError) -> int:
    """The status ``error`` means: that of the nearest of its classes in ``STATUS``, walking its
    method resolution order as Starlette's exception handlers do, so a subclass means what its
    closest mapped ancestor means whatever the order of ``STATUS``. Storage that is busy is 503,
    or 429 when it throttles."""
    if isinstance(error, errors.StorageBusy) and error.throttled:
        return 429
    return next(STATUS[kind] for kind in type(error).__mro__ if kind in STATUS)


def error_response(error: errors.JunctionError) -> func.HttpResponse:
    """The JSON error (docs/architecture.md, "Errors"), with the headers its status calls for."""
    headers = dict(SECURITY_HEADERS)
    status = status_of(error)
    if isinstance(error, errors.StorageBusy | errors.TooManyRequests | errors.ServiceUnavailable):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, errors.Unauthorized) or isinstance(error, errors.Forbidden) and error.error:
        headers["WWW-Authenticate"] = challenges.bearer(error=error.error, description=error.message)
    elif isinstance(error, errors.MethodNotAllowed):
        headers["Allow"] = ", ".join(error.allow)
    # Headers the error carries (API operations: CORS, a Basic or scoped Bearer challenge).
    headers.update(error.headers)
    body = error_body(error.code, error.message)
    return func.HttpResponse(dumps(body), status_code=status, headers=headers, mimetype=JSON, charset="utf-8")


def handles_errors(function: str) -> Callable[[Callable[[func.HttpRequest], func.HttpResponse]], Callable[[func.HttpRequest], func.HttpResponse]]:
    """For the HTTP function named ``function``: domain and storage errors become JSON errors,
    anything else is logged and a generic 500; with telemetry on, the call is a server span named
    ``function`` (continuing a caller's W3C ``traceparent``) and refusals are counted."""

    def decorate(handler: Callable[[func.HttpRequest], func.HttpResponse]) -> Callable[[func.HttpRequest], func.HttpResponse]:
        @functools.wraps(handler)
        def wrapper(req: func.HttpRequest) -> func.HttpResponse:
            if not telemetry.enabled():
                return _answer(handler, req)
            with telemetry.span(function, kind=telemetry.SERVER, traceparent=req.headers.get("traceparent"), method=req.method.upper()) as span:
                response = _answer(handler, req)
                span.set(status_code=response.status_code)
                if response.status_code >= 500:
                    span.fail(f"HTTP {response.status_code}")
                if response.status_code in REFUSALS:
                    telemetry.count(telemetry.HTTP_REFUSED, status_code=response.status_code, attributes={telemetry.FUNCTION: function})
                return response

        return wrapper

    return decorate


REFUSALS = (401, 403, 429)
"""Statuses counted as ``junction.http.refused`` (docs/operations.md, "Telemetry names")."""


def _answer(handler: Callable[[func.HttpRequest], func.HttpResponse], req: func.HttpRequest) -> func.HttpResponse:
    try:
        return handler(req)
    except errors.JunctionError as exc:
        return error_response(exc)
    except Exception as exc:  # noqa: BLE001 - the boundary: nothing escapes as a traceback
        mapped = as_domain_error(exc)
        if mapped is not None:
            logger.warning("storage trouble on %s %s: %s", req.method, urlsplit(req.url).path, type(exc).__name__)
            return error_response(mapped)
        logger.exception("unexpected error on %s %s", req.method, urlsplit(req.url).path)
        body = error_body("InternalError", "an unexpected error occurred")
        return func.HttpResponse(dumps(body), status_code=500, mimetype=JSON, headers=SECURITY_HEADERS)


def base_url(req: func.HttpRequest) -> str:
    """Scheme and host the caller used; the configured public URL wins where set."""
    configured = get_settings().public_base_url
    if configured:
        return configured
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}"


def lower_headers(req: func.HttpRequest) -> dict[str, str]:
    return {k.lower(): v for k, v in req.headers.items()}


def management_request(req: func.HttpRequest) -> Request:
    refuse_repeated_parameters(urlsplit(req.url).query)
    return Request(
        method=req.method.upper(),
        url=req.url,
        path=urlsplit(req.url).path,
        headers=lower_headers(req),
        # The host's own reading of the query (repeats were refused above): one value per name.
        query={name: [value] for name, value in req.params.items()},
        body=req.get_body() or b"",
        route=dict(req.route_params),
        base_url=base_url(req),
    )


def reply_response(reply: Reply) -> func.HttpResponse:
    headers = {**SECURITY_HEADERS, **reply.headers}
    if reply.body is None:
        return func.HttpResponse(status_code=reply.status, headers=headers)
    if isinstance(reply.body, bytes):
        return func.HttpResponse(reply.body, status_code=reply.status, headers=headers)
    text = reply.body if isinstance(reply.body, RawJson) else dumps(reply.body)
    return func.HttpResponse(text, status_code=reply.status, headers=headers, mimetype=JSON, charset="utf-8")


def json_response(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    return reply_response(Reply(status, value, headers or {}))


def json_value_response(value: Any, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    """200 with ``value`` as a JSON body, ``null`` included (``json_response`` treats None as "no body")."""
    return func.HttpResponse(dumps(value), status_code=200, headers={**SECURITY_HEADERS, **(headers or {})}, mimetype=JSON, charset="utf-8")
