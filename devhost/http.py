"""The HTTP side of devhost: an ASGI application that routes requests to HTTP-triggered functions.

It plays both the Functions host and, in a small way, App Service's front end, because the app
will sit behind that front end in Azure. What the worker is given is built as the host builds it
(``ToRpcHttp``):

* the URL is ``scheme://Host`` plus the path as Kestrel decoded it (everything but ``%2F``),
  re-escaped (``PathString.ToUriComponent``), plus the query string as sent; routing and route
  values use that decoded path too, so ``%2520`` sent arrives as ``%20``;
* ``Host`` must be a host name or address with an optional port, or the answer is 400 (as from
  Kestrel): it never reaches the URL otherwise;
* repeated request headers are one value joined with ``,`` (``StringValues.ToString()``);
* repeated query parameters are joined with ``,`` and parameters whose value is empty are left
  out;
* a body sent without ``Content-Length`` (chunked) is read and counted against the limit but
  reaches the function **empty**, as it does on Azure (azure-functions-host #4926);
* ``X-Forwarded-For`` is the peer address, and the headers only the front end may set
  (``X-Forwarded-For`` itself, ``X-ARR-ClientCert``, ``X-ARR-SSL``, ``X-Forwarded-Proto``,
  ``X-Original-URL``, Easy Auth's ``X-MS-CLIENT-PRINCIPAL*`` ...) are removed from what a client
  sent, unless the operator says the caller is a trusted front end
  (``--trust-forwarded-client-cert``, used to test certificate auth and client addresses);
* a request target over 4,096 bytes gets 414, a body over 104,857,600 bytes 413;
* an exception in a function, or a function that returns nothing, is a 500 with an empty body;
  the traceback goes to the log only.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from typing import Any

import azure.functions as func

from devhost.config import MAX_REQUEST_BODY_BYTES, MAX_URL_BYTES
from devhost.functions import FunctionInfo, Out
from devhost.routing import RouteTable, decode_path, host_order_key, to_uri_component

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Set by App Service's front end (ARR / Easy Auth); a client must not be able to forge them.
FRONT_END_HEADERS = frozenset(
    {
        "x-arr-clientcert",
        "x-arr-ssl",
        "x-arr-log-id",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-for",
        "x-forwarded-tlsversion",
        "x-original-url",
        "x-waws-unencoded-url",
        "x-client-ip",
        "x-client-port",
        "x-appservice-proto",
        "x-site-deployment-id",
        "disguised-host",
        "client-ip",
        "x-ms-client-principal",
        "x-ms-client-principal-id",
        "x-ms-client-principal-name",
        "x-ms-client-principal-idp",
        "x-ms-token-aad-access-token",
        "x-ms-token-aad-id-token",
        "x-ms-token-aad-refresh-token",
        "x-ms-token-aad-expires-on",
    }
)


def error_body(code: str, message: str) -> bytes:
    """Errors devhost itself produces use Junction's JSON error shape (docs/architecture.md, "Errors")."""
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def join_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """One value per header name (lower case), duplicates joined with "," (``StringValues.ToString``)."""
    joined: dict[str, list[str]] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        joined.setdefault(key, []).append(value.decode("latin-1"))
    return {name: ",".join(values) for name, values in joined.items()}


def parse_query(query_string: bytes) -> dict[str, str]:
    """Query parameters, decoded once (``+`` is a space); a repeated name gives its values joined
    with ","; a parameter whose (joined) value is empty is left out, as the host leaves it out."""
    from urllib.parse import parse_qsl

    values: dict[str, list[str]] = {}
    text = query_string.decode("latin-1")
    for name, value in parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace"):
        values.setdefault(name, []).append(value)
    return {name: joined for name, items in values.items() if (joined := ",".join(items))}


# RFC 3986 host (reg-name or IP literal) with an optional port: what Kestrel accepts in Host.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+;=]*)(?::[0-9]{0,5})?")


def valid_host(value: str) -> bool:
    return _HOST.fullmatch(value) is not None


def host_served(host: str, allowed: frozenset[str] | None) -> bool:
    """Is ``host`` (a valid Host value) one of the names this devhost answers to?

    App Service's front end only passes on requests for host names bound to the site, so links
    the app builds from ``Host`` (``nextLink``, ``Location``, OpenAPI ``servers``) always point at
    the site. ``allowed`` entries are ``name`` (any port), ``name:port`` or ``*``; None = any."""
    if allowed is None or "*" in allowed:
        return True
    value = host.lower()
    name = value.rsplit(":", 1)[0] if value.rsplit(":", 1)[-1].isdigit() and not value.endswith("]") else value
    return value in allowed or name in allowed


class PayloadTooLarge(Exception):
    """The request body is over the limit; raised while streaming so it is never all in memory."""


def route_table(functions: Iterable[FunctionInfo], route_prefix: str) -> RouteTable[FunctionInfo]:
    """The HTTP functions' routes as the host builds them: a function without a ``route`` is
    served at its name; ``RouteTemplateError`` where the host would refuse one at start-up."""
    table: RouteTable[FunctionInfo] = RouteTable(route_prefix)
    # In the host's order, so a conflict is reported against the function that sorts later.
    for function in sorted(functions, key=lambda f: host_order_key(f.name)):
        if function.trigger_type != "httpTrigger":
            continue
        route = function.trigger.get("route") or function.name
        table.add(str(route), function.trigger.get("methods"), function, name=function.name)
    return table


class HttpHost:
    """ASGI application serving the HTTP-triggered functions of one FunctionApp."""

    def __init__(
        self,
        functions: list[FunctionInfo],
        *,
        route_prefix: str,
        executor: Executor,
        trust_forwarded: bool = False,
        max_body_bytes: int = MAX_REQUEST_BODY_BYTES,
        allowed_hosts: frozenset[str] | None = None,
    ) -> None:
        self.table = route_table(functions, route_prefix)
        self.allowed_hosts = None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)
        self.executor = executor
        self.trust_forwarded = trust_forwarded
        self.max_body_bytes = max_body_bytes
        self.in_flight = 0
        for shadowing in self.table.shadowed():
            # The host routes by function name, first match wins, and says nothing about it.
            logger.warning("route order: %s", shadowing.describe())

    def describe(self, base_url: str) -> list[str]:
        """Lines like ``func start`` prints: ``accept: [GET,POST] http://host:port/route``, in the
        order the host tries the routes."""
        lines = []
        for route in self.table.routes:
            methods = ",".join(sorted(route.methods)) if route.methods else "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
            lines.append(f"{route.target.name}: [{methods}] {base_url}/{route.template.text}")
        return lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets: the Functions host has none
        started = time.perf_counter()
        status = 500
        method = scope["method"].upper()
        raw_path = scope.get("raw_path") or scope["path"].encode()
        path_text = raw_path.decode("latin-1")
        self.in_flight += 1
        try:
            status = await self._handle(scope, receive, send, method, path_text)
        finally:
            self.in_flight -= 1
            shown = path_text if len(path_text) <= 200 else path_text[:200] + "..."
            logger.info("%s %s -> %d (%.1f ms)", method, shown, status, (time.perf_counter() - started) * 1000)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, scope: Scope, receive: Receive, send: Send, method: str, raw_path: str) -> int:
        query = scope.get("query_string") or b""
        if len(raw_path.encode("latin-1")) + (len(query) + 1 if query else 0) > MAX_URL_BYTES:
            await self._send(send, 414, error_body("UriTooLong", f"the URL is longer than {MAX_URL_BYTES} bytes"), close=True)
            return 414
        headers = join_headers(scope.get("headers") or [])
        host = headers.get("host")
        if (host is None and scope.get("http_version") == "1.1") or (host is not None and not valid_host(host)):
            await self._send(send, 400, error_body("BadRequest", "missing or invalid Host header"), close=True)
            return 400
        if host and not host_served(host, self.allowed_hosts):
            message = f"this devhost does not serve the host {host!r} (see --allowed-host)"
            await self._send(send, 404, error_body("UnknownHost", message), close=True)
            return 404
        path = decode_path(raw_path)
        match = self.table.find(method, path)
        if match is None:
            await self._send(send, 404, error_body("NotFound", "no function matches this method and path"))
            return 404
        declared = headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_body_bytes:
            await self._send(send, 413, error_body("PayloadTooLarge", "the request body is too large"), close=True)
            return 413
        try:
            body = await self._read_body(receive)
        except PayloadTooLarge:
            await self._send(send, 413, error_body("PayloadTooLarge", "the request body is too large"), close=True)
            return 413
        if declared is None:
            body = b""  # the host forwards a body only with a Content-Length (azure-functions-host #4926)
        request = self._request(scope, method, path, headers, match.values, body)
        function = match.route.target
        try:
            result, outs = await function.invoke(request, self.executor)
            response = self._response(function, result, outs)
        except Exception:  # noqa: BLE001 - the host's boundary: log it, answer 500, leak nothing
            logger.exception("function %s failed on %s %s", function.name, method, to_uri_component(path))
            await self._send(send, 500, b"")
            return 500
        status, response_headers, response_body = response
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": response_body if method != "HEAD" else b""})
        return status

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise PayloadTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _request(
        self, scope: Scope, method: str, path: str, headers: dict[str, str], route_values: dict[str, str], body: bytes
    ) -> func.HttpRequest:
        """The request as the host hands it to the worker; ``path`` is the decoded path."""
        scheme = scope.get("scheme", "http")
        peer = (scope.get("client") or ("", 0))[0]
        if self.trust_forwarded:
            forwarded = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
            if forwarded in ("http", "https"):
                scheme = forwarded
        else:
            for name in FRONT_END_HEADERS:
                headers.pop(name, None)
            headers["x-forwarded-proto"] = scheme
        # X-Forwarded-For is the front end's: without a trusted front end it is the socket's peer
        # alone (a client's own value is dropped); a trusted front end's value is kept as it sent it.
        if not self.trust_forwarded:
            headers.pop("x-forwarded-for", None)
        if peer and not headers.get("x-forwarded-for"):
            headers["x-forwarded-for"] = peer
        host = headers.get("host")  # validated: a host and an optional port, nothing else
        if not host:
            server = scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        query = scope.get("query_string") or b""
        url = f"{scheme}://{host}{to_uri_component(path)}"
        if query:
            url += "?" + query.decode("latin-1")
        return func.HttpRequest(
            method,
            url,
            headers=headers,
            params=parse_query(query),
            route_params=route_values,
            body=body,
        )

    def _response(
        self, function: FunctionInfo, result: Any, outs: dict[str, Out[Any]]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status, headers and body of what the function returned (or set on its http ``Out``)."""
        output = function.http_output_name()
        if output and output != "$return" and output in outs:
            result = outs[output].get()
        if result is None:
            # The worker sends no HTTP response; the host answers 500.
            raise TypeError(f"function {function.name} returned None instead of an HTTP response")
        if isinstance(result, str | bytes):
            body = result.encode() if isinstance(result, str) else result
            return 200, [(b"content-type", b"text/plain; charset=utf-8")], body
        if not isinstance(result, func.HttpResponse):
            raise TypeError(f"function {function.name} returned {type(result).__name__}, not an HttpResponse")
        headers: list[tuple[bytes, bytes]] = []
        has_type = False
        for name, value in result.headers.items():
            if name.lower() == "content-type":
                has_type = True
            if name.lower() in ("content-length", "transfer-encoding", "connection"):
                continue  # the server frames the body itself
            headers.append((name.encode("latin-1"), str(value).encode("latin-1")))
        if not has_type:
            mimetype = result.mimetype or "text/plain"
            content_type = f"{mimetype}; charset={result.charset}" if mimetype.startswith("text/") else mimetype
            headers.append((b"content-type", content_type.encode("latin-1")))
        return int(result.status_code), headers, result.get_body() or b""

    async def _send(self, send: Send, status: int, body: bytes, *, close: bool = False) -> None:
        headers = [(b"content-type", b"application/json; charset=utf-8")] if body else []
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
