"""Serving API-bound operations: everything between the catch-all trigger and the process.

The catch-all HTTP trigger hands every request it gets to ``prepare_call``, which decides, in
this order (each step can end the call):

1. route: the bound operation for the method and path (404; 405 with ``Allow``);
2. the binding's ``ipAllowList`` (403 ``IpNotAllowed``), before anything else is read, preflights
   included (``core.traffic.addresses``);
3. protocol: the binding's ``allowedProtocols`` (403);
4. CORS: a preflight is answered here, without authentication and without running anything;
5. authentication by the binding's type: none, basic, certificate, apiKey, oauth2 (401/403),
   each a backend of ``core.apiops.authenticate``;
5a. the binding's ``signature``, verified on the raw body (401 ``InvalidSignature``,
   ``core.identity.signatures``); the caller claims it once the call is known to be good
   (``core.identity.replays``, 409 ``Replayed``);
6. the binding's ``rateLimit`` (429 ``RateLimited``; only callers who may call spend it; its
   headers go on the response: ``core.traffic.ratelimit``);
7. body (size, media type, JSON/XML/form/text, JSON schema) and parameters (cast, defaults).

It returns ``Prepared``: either a ready ``reply`` (a preflight), or the scenario to run with
its trigger data (docs/api-operations.md, "Trigger data") plus the CORS headers for the
eventual response. The process's result becomes a response with
``core.apiops.results.format_result``.

Errors are the domain errors of ``core.kernel.errors``. Those raised after the route is known
carry ``headers`` (``error_headers(exc)``): the CORS headers, so a browser can read a 401 of an
allowed origin, and the right ``WWW-Authenticate`` challenge (``Basic`` for basic operations,
RFC 6750 ``Bearer`` with ``scope`` for oauth2). The trigger adds them to the error response,
overriding its own challenge.

The scheme a caller used is ``X-Forwarded-Proto`` when it says ``http`` or ``https``, otherwise
the URL's scheme. App Service terminates TLS in its front ends and always sets that header
(overwriting one sent by a caller), while the worker itself may see plain HTTP; so in Azure the
header is the only truthful source. Locally (devhost) a caller could send it, which only lets a
caller on the developer's machine pretend to use HTTPS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from core.apiops.authenticate import Call, Caller, authenticate
from core.apiops.params import extract_parameters, read_form, validate_body
from core.apiops.registry import binding_key, route_cache
from core.apiops.routes import BoundOperation, Match, RouteTable
from core.identity.signatures import Verified, verify
from core.kernel import clock
from core.kernel.errors import BadRequest, Forbidden, JunctionError, UnsupportedMediaType
from core.kernel.jsonvalue import parse_json
from core.kernel.settings import Settings
from core.store.storage import Storage
from core.traffic.addresses import check_allowed
from core.traffic.ratelimit import admit
from core.web import cors
from core.web.bodies import (
    check_content_encoding,
    check_size,
    is_json_type,
    is_xml_type,
    media_type,
    parse_form,
    parse_form_fields,
    parse_xml,
    refuse_unframed_body,
)
from core.web.exchange import Reply, Request

MAX_COOKIES = 100
HIDDEN_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie", "x-arr-clientcert"})
"""Credentials never reach a process: its trigger data is kept in the run table."""


@dataclass(frozen=True)
class Prepared:
    """Either ``reply`` (answer it as is) or a call to run: scenario, trigger data, headers.

    ``headers`` (CORS) go on every response of the call, including ``format_result``'s.
    """

    reply: Reply | None = None
    scenario_id: str | None = None
    trigger: dict[str, Any] | None = None
    operation: BoundOperation | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    accept: str | None = None
    signature: Verified | None = None
    """A verified signature to claim before the process starts (a binding with ``signature``)."""


def error_headers(error: BaseException) -> dict[str, str]:
    """Headers to add to the error response of ``error`` (CORS, challenges)."""
    return dict(getattr(error, "headers", None) or {})


def request_scheme(request: Request) -> str:
    forwarded = (request.header("x-forwarded-proto") or "").split(",")[0].strip().lower()
    if forwarded in ("http", "https"):
        return forwarded
    return urlsplit(request.url).scheme.lower() or "http"


def parse_cookies(header: str | None) -> dict[str, str]:
    """``Cookie: a=1; b=2`` as a dict (first value wins), at most MAX_COOKIES."""
    cookies: dict[str, str] = {}
    for part in (header or "").split(";")[:MAX_COOKIES]:
        name, eq, value = part.strip().partition("=")
        if eq and name and name not in cookies:
            cookies[name] = value.strip().strip('"')
    return cookies


def prepare_call(
    storage: Storage,
    settings: Settings,
    request: Request,
    *,
    routes: RouteTable | None = None,
    aad: Any = None,
) -> Prepared:
    """Route, check and parse an API call; see the module docstring for the order.

    ``routes`` and ``aad`` are for tests and benchmarks: by default the route table comes from
    ``route_cache(storage)`` and the Azure AD validator from ``core.identity.aad.get_aad_authenticator``.
    """
    table = routes if routes is not None else route_cache(storage).get()
    method = request.method.upper()
    origin = request.header("origin")
    if cors.is_preflight(method, request.headers):
        return _preflight(table, request, origin)
    match = table.match(method, request.path)
    operation = match.operation
    binding = operation.binding
    cors_headers = cors.response_headers(binding.get("cors"), origin)
    try:
        check_allowed(binding.get("ipAllowList"), request.client_ip)
        scheme = request_scheme(request)
        _check_protocol(binding, scheme)
        auth = operation.binding.get("authentication") or {"type": "none"}
        caller = authenticate(Call(storage, settings, request, auth, scheme, aad))
        signature = binding.get("signature")
        if signature:  # a body over the limit is refused before any HMAC is spent on it
            check_size(request.body or b"", settings.max_body_bytes)
        verified = verify(signature, request.body or b"", request.headers, clock.now().timestamp()) if signature else None
        decision = admit(
            storage,
            binding.get("rateLimit"),
            binding_key(operation.api_name, operation.operation_id),
            credential_of(auth.get("type", "none"), caller),
            name="operation",
        )
        if decision is not None:
            cors_headers = {**cors_headers, **decision.headers}
        body_text, body = _parse_body(request, operation, settings)
        cookies = dict(request.cookies) if request.cookies is not None else parse_cookies(request.header("cookie"))
        visible = {k: v for k, v in request.headers.items() if k not in HIDDEN_HEADERS}
        params = extract_parameters(
            operation.operation.get("parameters") or (),
            path=match.path_params,
            query=request.query,
            headers=visible,
            cookies=cookies,
        )
    except JunctionError as exc:
        raise exc.with_headers(cors_headers) from None
    trigger = {
        "type": "api",
        "data": {
            "httpBody": body_text,
            "httpClientIp": request.client_ip,
            "httpCookies": cookies,
            "httpMethod": method,
            "httpRequestUri": _request_uri(request.url, scheme),
            "username": caller.name,
            "body": body,
            "path": params["path"],
            "query": params["query"],
            "header": params["header"],
        },
        "claims": caller.claims,
        "operation": {
            "api": operation.api_name,
            "operationId": operation.operation_id,
            "method": operation.method,
            "path": operation.path,
        },
    }
    return Prepared(
        scenario_id=str(binding.get("scenarioId")),
        trigger=trigger,
        operation=operation,
        headers=cors_headers,
        accept=request.header("accept"),
        signature=verified,
    )


def credential_of(kind: str, caller: Caller) -> str:
    """The caller's identity for a ``perCredential`` rate limit: the scheme and the name it
    authenticated (user, API key, certificate subject), or a token's issuer and subject."""
    claims = caller.claims or {}
    subject = claims.get("oid") or claims.get("sub")
    if subject:
        return f"{kind}:{claims.get('iss', '')}:{subject}"
    return f"{kind}:{caller.name or ''}"


def _preflight(table: RouteTable, request: Request, origin: str | None) -> Prepared:
    requested = (request.header("access-control-request-method") or "").strip().upper()
    match: Match = table.match(requested or "OPTIONS", request.path)
    binding = match.operation.binding
    check_allowed(binding.get("ipAllowList"), request.client_ip)
    allowed = table.allowed_methods(request.path) or [match.operation.method]
    # Access-Control-Allow-Methods names only the methods whose own CORS policy would answer this
    # origin the same way (a browser caches the list per origin): not every method at the path.
    same_policy = [
        method for method in allowed
        if cors.same_answer(binding.get("cors"), table.match(method, request.path).operation.binding.get("cors"), origin)
    ]  # fmt: skip
    headers = cors.preflight_headers(
        binding.get("cors"), origin, requested, request.header("access-control-request-headers"), same_policy
    )
    try:
        _check_protocol(binding, request_scheme(request))
    except JunctionError as exc:
        raise exc.with_headers(headers) from None
    headers["Allow"] = ", ".join(sorted(set(allowed) | {"OPTIONS"}))
    return Prepared(reply=Reply(204, b"", headers), operation=match.operation, headers=headers)


def _check_protocol(binding: Mapping[str, Any], scheme: str) -> None:
    allowed = binding.get("allowedProtocols") or ["http", "https"]
    if scheme not in allowed:
        raise Forbidden(f"this operation accepts {' and '.join(p.upper() for p in allowed)} only, not {scheme.upper()}", "ProtocolNotAllowed")


def _request_uri(url: str, scheme: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, "")) if parts.netloc else url


def _type_allowed(mtype: str, declared: Sequence[str]) -> bool:
    for item in declared:
        want = media_type(item)[0]
        if want in ("*/*", mtype) or (want.endswith("/*") and mtype.startswith(want[:-1])):
            return True
    return False


def _parse_body(request: Request, operation: BoundOperation, settings: Settings) -> tuple[str, Any]:
    """``(httpBody, body)``: the body as a string, and parsed by its media type."""
    raw = request.body or b""
    check_size(raw, settings.max_body_bytes)
    refuse_unframed_body(raw, request.header("transfer-encoding"), request.header("content-length"))
    spec = operation.operation.get("requestBody") or {}
    text = raw.decode("utf-8", errors="replace")
    form_fields = spec.get("formFields") or ()
    if not raw:
        if spec.get("required"):
            raise BadRequest("the request body is required", "BodyRequired")
        if any(field.get("required") for field in form_fields):
            return "", read_form({}, form_fields)  # the 400 names the first required field
        return "", None
    check_content_encoding(request.header("content-encoding"))
    mtype, params = media_type(request.header("content-type"))
    declared = spec.get("contentTypes") or []
    if mtype and declared and not _type_allowed(mtype, declared):
        raise UnsupportedMediaType(f"this operation accepts {', '.join(declared)}, not {mtype}", "UnsupportedContentType")
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"charset {charset!r} is not supported; send UTF-8", "UnsupportedCharset")
    schema = spec.get("jsonSchema")
    if is_json_type(mtype) or (not mtype and schema):
        value = parse_json(raw)
        if schema:
            validate_body(value, schema, operation.operation.get("dialect") or "oas30")
        return text, value
    if is_xml_type(mtype):
        return text, parse_xml(raw)
    if mtype == "application/x-www-form-urlencoded":
        return text, read_form(parse_form_fields(raw), form_fields) if form_fields else parse_form(raw)
    return text, text
