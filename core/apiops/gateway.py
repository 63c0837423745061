"""Serving API-bound operations: everything between the catch-all trigger and the process.

The catch-all HTTP trigger hands every request it gets to ``prepare_call``, which decides, in
this order (each step can end the call):

1. route: the bound operation for the method and path (404; 405 with ``Allow``);
2. protocol: the binding's ``allowedProtocols`` (403);
3. CORS: a preflight is answered here, without authentication and without running anything;
4. authentication by the binding's type: none, basic, certificate, apiKey, oauth2 (401/403);
5. body (size, media type, JSON/XML/form/text, JSON schema) and parameters (cast, defaults).

It returns ``Prepared``: either a ready ``reply`` (a preflight), or the scenario to run with
the trigger data of DESIGN 7 plus the CORS headers for the eventual response. The process's
result becomes a response with ``format_result``.

Errors are the domain errors of ``core.kernel.errors``. Those raised after the route is known carry an
extra attribute ``headers`` (``error_headers(exc)``): the CORS headers, so a browser can read a
401 of an allowed origin, and the right ``WWW-Authenticate`` challenge (``Basic`` for basic
operations, RFC 6750 ``Bearer`` with ``scope`` for oauth2). The trigger should add them to the
error response, overriding its own challenge.

The scheme a caller used is ``X-Forwarded-Proto`` when it says ``http`` or ``https``, otherwise
the URL's scheme. App Service terminates TLS in its front ends and always sets that header
(overwriting one sent by a caller), while the worker itself may see plain HTTP; so in Azure the
header is the only truthful source. Locally (devhost) a caller could send it, which only lets a
caller on the developer's machine pretend to use HTTPS.
"""

from __future__ import annotations

import codecs
import logging
import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from core.apiops.params import extract_parameters, read_form, validate_body
from core.apiops.routes import BoundOperation, Match, RouteCache, RouteTable
from core.kernel.errors import BadRequest, Forbidden, JunctionError, Unauthorized, UnsupportedMediaType
from core.kernel.jsonvalue import dumps, parse_json
from core.kernel.principal import Principal
from core.kernel.settings import Settings
from core.store.storage import Storage
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

logger = logging.getLogger(__name__)

MAX_COOKIES = 100
HIDDEN_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie", "x-arr-clientcert"})
"""Credentials never reach a process: its trigger data is kept in the run table."""
RESERVED_RESPONSE_HEADERS = frozenset(
    {
        "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
        "proxy-connection", "proxy-authenticate", "host", "date", "server", "content-type", "vary",
    }
)  # fmt: skip
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# RFC 9110 5.5 field-value: visible ASCII, with spaces and tabs inside (not at either end). obs-text
# (bytes 0x80-0xFF) is obsolete and would be sent as whatever encoding a server picks: refused too.
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20\x09\x21-\x7e]*[\x21-\x7e])?)?")
_CHARSET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_NOT_CHARSETS = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined"})
_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_XML_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class ApiRequest:
    """What the catch-all trigger passes: the request as received, nothing interpreted.

    ``path`` is the raw (percent-encoded) path; ``query`` has a list of values per name;
    ``headers`` have lower-case names; ``cookies`` None means "parse the Cookie header".
    """

    method: str
    url: str
    path: str
    query: Mapping[str, Sequence[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    client_ip: str | None = None
    cookies: Mapping[str, str] | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class ApiReply:
    """A response with a raw body (the management ``Reply`` renders JSON only)."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    """Either ``reply`` (answer it as is) or a call to run: scenario, trigger data, headers.

    ``headers`` (CORS) go on every response of the call, including ``format_result``'s.
    """

    reply: ApiReply | None = None
    scenario_id: str | None = None
    trigger: dict[str, Any] | None = None
    operation: BoundOperation | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    accept: str | None = None


# --------------------------------------------------------------------------------------------
# Route table per storage
# --------------------------------------------------------------------------------------------

_CACHES: weakref.WeakKeyDictionary[Storage, RouteCache] = weakref.WeakKeyDictionary()


def route_cache(storage: Storage) -> RouteCache:
    """The process's route cache for ``storage`` (one marker read per request)."""
    cache = _CACHES.get(storage)
    if cache is None:
        from core.apiops.bindings import load_bound_operations, read_route_version

        cache = RouteCache(lambda: read_route_version(storage), lambda: load_bound_operations(storage))
        _CACHES[storage] = cache
    return cache


def error_headers(error: BaseException) -> dict[str, str]:
    """Headers to add to the error response of ``error`` (CORS, challenges)."""
    return dict(getattr(error, "headers", None) or {})


def _attach(error: JunctionError, headers: Mapping[str, str]) -> JunctionError:
    merged = dict(headers)
    merged.update(error.headers)
    error.headers = merged
    return error


# --------------------------------------------------------------------------------------------
# prepare_call
# --------------------------------------------------------------------------------------------


def request_scheme(request: ApiRequest) -> str:
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
    request: ApiRequest,
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
        scheme = request_scheme(request)
        _check_protocol(binding, scheme)
        username, claims = _authenticate(storage, settings, request, operation, scheme, aad)
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
        raise _attach(exc, cors_headers) from None
    trigger = {
        "type": "api",
        "data": {
            "httpBody": body_text,
            "httpClientIp": request.client_ip,
            "httpCookies": cookies,
            "httpMethod": method,
            "httpRequestUri": _request_uri(request.url, scheme),
            "username": username,
            "body": body,
            "path": params["path"],
            "query": params["query"],
            "header": params["header"],
        },
        "claims": claims,
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
    )


def _preflight(table: RouteTable, request: ApiRequest, origin: str | None) -> Prepared:
    requested = (request.header("access-control-request-method") or "").strip().upper()
    match: Match = table.match(requested or "OPTIONS", request.path)
    binding = match.operation.binding
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
        raise _attach(exc, headers) from None
    headers["Allow"] = ", ".join(sorted(set(allowed) | {"OPTIONS"}))
    return Prepared(reply=ApiReply(204, b"", headers), operation=match.operation, headers=headers)


def _check_protocol(binding: Mapping[str, Any], scheme: str) -> None:
    allowed = binding.get("allowedProtocols") or ["http", "https"]
    if scheme not in allowed:
        raise Forbidden(f"this operation accepts {' and '.join(p.upper() for p in allowed)} only, not {scheme.upper()}", "ProtocolNotAllowed")


def _request_uri(url: str, scheme: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, "")) if parts.netloc else url


# --------------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------------


def _authenticate(
    storage: Storage, settings: Settings, request: ApiRequest, operation: BoundOperation, scheme: str, aad: Any
) -> tuple[str | None, dict[str, Any]]:
    auth = operation.binding.get("authentication") or {"type": "none"}
    kind = auth.get("type", "none")
    if kind == "none":
        return None, {}
    if kind == "basic":
        from core.identity.users import verify_basic

        try:
            return verify_basic(storage, request.header("authorization"), client_ip=request.client_ip), {}
        except Unauthorized as exc:
            raise _attach(exc, {"WWW-Authenticate": 'Basic realm="junction", charset="UTF-8"'}) from None
    if kind == "certificate":
        from core.identity.certificates import forwarded_certificate, verify_client_certificate

        header = forwarded_certificate(settings.client_certificates, request.path, request.header("x-arr-clientcert"))
        return verify_client_certificate(header, auth.get("trustedIssuers") or [], scheme=scheme), {}
    if kind == "apiKey":
        from core.identity.apikeys import verify_apikey

        return verify_apikey(storage, request.header("x-api-key"), request.method, request.path), {}
    if kind == "oauth2":
        return _oauth2(request, auth, aad, settings.oauth_issuers)
    raise Forbidden("this operation's authentication is not configured correctly", "BindingInvalid")


def _bearer_challenge(scopes: Sequence[str], error: str | None = None, description: str | None = None) -> dict[str, str]:
    parts = ['Bearer realm="junction"']
    if scopes:
        parts.append(f'scope="{" ".join(scopes)}"')
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append('error_description="' + description.replace('"', "'").replace("\\", "/") + '"')
    return {"WWW-Authenticate": ", ".join(parts)}


def _oauth2(request: ApiRequest, auth: Mapping[str, Any], aad: Any, trusted_issuers: Sequence[str]) -> tuple[str | None, dict[str, Any]]:
    """RFC 6750: no token → 401 without error code; bad token → 401 invalid_token; valid token
    without any one of the operation's scopes (in ``scp``, ``scope`` or ``roles``) → 403
    insufficient_scope. The token is Azure AD's, or the binding's configured issuer's.
    """
    from core.identity.auth import bearer_token
    from core.identity.oidc import granted_scopes

    scopes: Sequence[str] = auth.get("scopes") or []

    try:
        token = bearer_token(request.header("authorization"))
    except Unauthorized as exc:
        raise _attach(exc, _bearer_challenge(scopes, "invalid_request", exc.message)) from None
    if token is None:
        raise _attach(Unauthorized("this operation needs 'Authorization: Bearer <token>'", "AuthenticationRequired"), _bearer_challenge(scopes))
    try:
        principal = _oauth2_principal(token, auth, aad, trusted_issuers)
    except Unauthorized as exc:
        raise _attach(exc, _bearer_challenge(scopes, "invalid_token", exc.message)) from None
    if principal.kind == "aad" and not auth.get("anyTenantUser"):
        # JUNCTION_AAD_GROUP_ID restricts the tenant's users everywhere, not only on the triggers.
        try:
            _aad(aad).require_group(principal)
        except Forbidden as exc:
            raise _attach(exc, _bearer_challenge(scopes, "insufficient_scope", exc.message)) from None
    claims = dict(principal.claims)
    if scopes and not granted_scopes(claims) & set(scopes):
        message = f"the token needs one of the scopes: {', '.join(scopes)}"
        raise _attach(
            Forbidden(message, "InsufficientScope", error="insufficient_scope"),
            _bearer_challenge(scopes, "insufficient_scope", message),
        )
    name = claims.get("name") if isinstance(claims.get("name"), str) else principal.name
    return name, claims


def _oauth2_principal(token: str, auth: Mapping[str, Any], aad: Any, trusted_issuers: Sequence[str]) -> Principal:
    """The token's principal: from the binding's configured issuer, else from Azure AD."""
    issuer = auth.get("issuer")
    if issuer:
        if issuer not in trusted_issuers:  # the operator withdrew it: its bindings stop at once
            raise Unauthorized("this operation's token issuer is no longer trusted", "InvalidToken", error="invalid_token")
        from core.identity.oidc import issuer_tokens

        return issuer_tokens(issuer).authenticate(token, auth["audience"])
    principal: Principal = _aad(aad).authenticate(token)
    return principal


def _aad(aad: Any) -> Any:
    """The Azure AD authenticator given (tests, benchmarks) or the process's."""
    if aad is None:
        from core.identity.aad import get_aad_authenticator

        aad = get_aad_authenticator()
    if aad is None:
        raise Unauthorized("OAuth2 tokens cannot be checked: Azure AD is not configured", "InvalidToken", error="invalid_token")
    return aad


# --------------------------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------------------------


def _type_allowed(mtype: str, declared: Sequence[str]) -> bool:
    for item in declared:
        want = media_type(item)[0]
        if want in ("*/*", mtype) or (want.endswith("/*") and mtype.startswith(want[:-1])):
            return True
    return False


def _parse_body(request: ApiRequest, operation: BoundOperation, settings: Settings) -> tuple[str, Any]:
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


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


def _q_values(accept: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in (accept or "").split(",")[:50]:
        mtype, params = media_type(item)
        if not mtype:
            continue
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 0.0
        out[mtype] = max(out.get(mtype, 0.0), q)
    return out


def prefers_xml(accept: str | None) -> bool:
    """Does ``Accept`` rank application/xml (or text/xml) above JSON? Ties go to JSON."""
    q = _q_values(accept)
    xml = max(q.get("application/xml", 0.0), q.get("text/xml", 0.0))
    json_q = max(q.get("application/json", 0.0), q.get("text/json", 0.0))
    return xml > 0 and xml > json_q


def _xml_name(key: str) -> str:
    prefix = ""
    if key.startswith("@"):
        prefix, key = "@", key[1:]
    elif key == "#text":
        return key
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", key) or "_"
    if not _XML_NAME.match(name) or name.lower().startswith("xml"):
        name = "_" + name
    return prefix + name


def _xml_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {_xml_name(str(k)): _xml_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [{"Item": _xml_ready(v)} if isinstance(v, list) else _xml_ready(v) for v in value]
    if isinstance(value, str):
        return _XML_BAD_CHARS.sub("", value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def to_xml(value: Any) -> bytes:
    """XML for a process result (xmltodict convention: ``@name`` attributes, ``#text`` text).

    An object with one key whose value is not a list is the document element itself
    (``{"Pet": {...}}`` → ``<Pet>...</Pet>``); anything else is wrapped in ``<Root>``, a list
    as ``<Root><Item>...</Item>...</Root>``.
    """
    import xmltodict

    ready = _xml_ready(value)
    if isinstance(ready, dict) and len(ready) == 1:
        (key, inner), = ready.items()
        document = ready if not key.startswith(("@", "#")) and not isinstance(inner, list) else {"Root": ready}
    elif isinstance(ready, list):
        document = {"Root": {"Item": ready}}
    else:
        document = {"Root": ready}
    return xmltodict.unparse(document, encoding="utf-8").encode("utf-8")


class _Unusable(Exception):
    """The process result cannot be a response; the message says why (safe to show)."""


def _invalid_result(message: str, extra: Mapping[str, str] | None = None) -> ApiReply:
    logger.error("the process result cannot be a response: %s", message)
    body = dumps({"error": {"code": "InvalidProcessResult", "message": message}}).encode()
    return ApiReply(500, body, {"Content-Type": "application/json; charset=utf-8", **(extra or {})})


def _serialise(value: Any, accept: str | None) -> tuple[bytes, str]:
    if prefers_xml(accept):
        return to_xml(value), "application/xml; charset=utf-8"
    return dumps(value).encode("utf-8"), "application/json; charset=utf-8"


def _custom_headers(raw: Any) -> dict[str, str]:
    pairs: list[tuple[Any, Any]] = []
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict):
                pairs.append((item.get("Key", item.get("key")), item.get("Value", item.get("value"))))
    elif isinstance(raw, dict):
        pairs.extend(raw.items())
    headers: dict[str, str] = {}
    for key, value in pairs:
        if not isinstance(key, str) or not _TOKEN.fullmatch(key):
            raise _Unusable(f"HttpHeaders: {str(key)[:60]!r} is not a header name")
        text = value if isinstance(value, str) else dumps(value) if value is not None else ""
        if not _FIELD_VALUE.fullmatch(text):
            raise _Unusable(f"HttpHeaders: the value of {key} holds characters a header cannot carry (only visible ASCII, inner spaces and tabs)")
        lowered = key.lower()
        if lowered in RESERVED_RESPONSE_HEADERS or lowered.startswith("access-control-"):
            logger.warning("dropping response header %s: it is set by Junction, not by processes", key)
            continue
        headers[key] = text
    return headers


def format_result(result: Any, accept_header: str | None, extra_headers: Mapping[str, str] | None = None) -> ApiReply:
    """A process result as Frends turns it into a response (DESIGN 7).

    - None → 204; a string → the body, ``text/plain; charset=utf-8``;
    - an object with ``HttpStatusCode`` and ``Content`` → status, body, ``ContentType``,
      ``ContentEncoding`` (a charset), ``HttpHeaders`` (``[{Key, Value}]``);
    - any other value → JSON, or XML when ``Accept`` prefers application/xml.

    ``extra_headers`` (CORS) are added last. A result that cannot be a response (status
    outside 200-599, an encoding that is no charset, a header value with control characters,
    text that is not Unicode) is a 500 with code InvalidProcessResult: it is the scenario's
    mistake, not the caller's. That holds for every failure while turning the result into a
    response, not only the ones foreseen here.
    """
    extra = dict(extra_headers or {})
    try:
        if isinstance(result, dict) and "HttpStatusCode" in result and "Content" in result:
            return _mapped(result, accept_header, extra)
        if result is None:
            return ApiReply(204, b"", extra)
        if isinstance(result, str):
            return ApiReply(200, _utf8(result, "the result"), {"Content-Type": "text/plain; charset=utf-8", **extra})
        body, ctype = _serialise(result, accept_header)
        return ApiReply(200, body, {"Content-Type": ctype, **extra})
    except _Unusable as exc:
        return _invalid_result(str(exc), extra)
    except Exception as exc:  # noqa: BLE001 - anything else about the result is unusable too
        logger.exception("the process result could not be turned into a response")
        return _invalid_result(f"the result cannot be a response ({type(exc).__name__})", extra)


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Unusable(f"{what} holds a lone surrogate, which is not a Unicode character") from None


def _status(value: Any) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) == 3:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        # 1xx are interim responses and cannot end a call.
        raise _Unusable(f"HttpStatusCode must be a whole number from 200 to 599, got {str(value)[:20]!r}")
    return value


def _charset(value: Any) -> tuple[str, str]:
    """``(name as sent in the header, Python codec)`` of ContentEncoding: a text charset only."""
    name = str(value)
    try:
        info = codecs.lookup(name) if _CHARSET.fullmatch(name) else None
    except LookupError:
        info = None
    if info is None or not info._is_text_encoding or info.name in _NOT_CHARSETS:
        raise _Unusable(f"ContentEncoding {name[:40]!r} is not a character encoding (such as utf-8 or iso-8859-1)")
    return name, info.name


def _mapped(result: Mapping[str, Any], accept: str | None, extra: dict[str, str]) -> ApiReply:
    status = _status(result.get("HttpStatusCode"))
    charset, codec = _charset(result.get("ContentEncoding") or "utf-8")
    content = result.get("Content")
    content_type = result.get("ContentType")
    if content_type is not None and (not isinstance(content_type, str) or not _FIELD_VALUE.fullmatch(content_type)):
        raise _Unusable("ContentType must be a single-line string of visible ASCII")
    if isinstance(content, str):
        try:
            body = content.encode(codec)
        except UnicodeEncodeError:
            raise _Unusable(f"Content cannot be encoded as {codec}") from None
        ctype = content_type or "text/plain"
    elif content is None:
        body, ctype = b"", content_type or ""
    else:
        body, default_type = _serialise(content, accept if not content_type else ("application/xml" if "xml" in content_type else "application/json"))
        ctype = content_type or default_type
    if ctype and "charset=" not in ctype.lower() and (ctype.startswith("text/") or "json" in ctype or "xml" in ctype) and body:
        ctype = f"{ctype}; charset={charset}"
    headers = _custom_headers(result.get("HttpHeaders"))
    if ctype:
        headers["Content-Type"] = ctype
    if status in (204, 304):
        body = b""
        headers.pop("Content-Type", None)
    headers.update(extra)
    return ApiReply(status, body, headers)


__all__ = [
    "ApiReply",
    "ApiRequest",
    "Prepared",
    "error_headers",
    "format_result",
    "prefers_xml",
    "prepare_call",
    "route_cache",
    "to_xml",
]
