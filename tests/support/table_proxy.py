"""An HTTP proxy in front of Azurite's table endpoint that answers as Azure Table Storage does
where Azurite is more lenient. Storage-side behaviour, simulated on the wire, never a mock:

- ``split_pages``: Azure may answer a query with fewer entities than asked for, or none, and
  still send a continuation token (Azurite never does). Each query answer is cut to the next
  size of ``page_sizes`` (0, 1, 2, ... by default: the first page of every listing is empty), with
  ``x-ms-continuation-NextPartitionKey/NextRowKey`` pointing at the first entity left out, so
  the client's next request resumes exactly there.
- ``azure_limits``: a write is refused as Azure refuses it (400 ``EntityTooLarge``,
  ``PropertyValueTooLarge``, ``TooManyProperties``), measured with Azure's estimate on the entity
  as it would be stored: for a merge, the stored entity plus the request's properties.

- ``refuse_if``: a test's own rule, ``(method, table, entity as sent) -> error code or None``,
  for a storage refusal no size explains.
- ``unavailable_if``: ``(method, path) -> bool``; a request it matches is answered 503
  ``ServerBusy`` without reaching Azurite, as during an outage of the table service.

Every query is logged (table, ``$filter``, entities answered) so tests can check query shapes.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from devhost.azurite import connection_string
from tests.support.azure_limits import sizes_of_stored, sizes_of_wire, violations

_ENTITY_PATH = re.compile(r"^/(?P<account>[^/]+)/(?P<table>[A-Za-z0-9]+)\((?P<keys>.*)\)$")
_KEYS = re.compile(r"^PartitionKey='(?P<pk>(?:[^']|'')*)',RowKey='(?P<rk>(?:[^']|'')*)'$")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Query:
    table: str
    filter: str | None
    answered: int


class TableProxy:
    """See the module docstring. ``with TableProxy(azurite.ports, ...) as proxy:``."""

    def __init__(
        self,
        azurite_ports: tuple[int, int, int],
        *,
        split_pages: bool = False,
        azure_limits: bool = False,
        page_sizes: Iterable[int] = (0, 1, 2),
    ) -> None:
        self.blob_port, self.queue_port, self.table_port = azurite_ports
        self.split_pages = split_pages
        self.azure_limits = azure_limits
        self._sizes = itertools.cycle(list(page_sizes))
        self._lock = threading.Lock()
        self.queries: list[Query] = []
        self.refused: list[str] = []
        self.refuse_if: Callable[[str, str, dict[str, Any]], str | None] | None = None
        self.unavailable_if: Callable[[str, str], bool] | None = None
        self.cut_pages = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def connection_string(self) -> str:
        """Blob and queue straight to Azurite, tables through the proxy."""
        return connection_string(self.blob_port, self.queue_port, self.port)

    @property
    def direct_connection_string(self) -> str:
        return connection_string(self.blob_port, self.queue_port, self.table_port)

    def start(self) -> TableProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> TableProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def queries_of(self, table_suffix: str) -> list[Query]:
        with self._lock:
            return [q for q in self.queries if q.table.endswith(table_suffix)]

    # -- the wire ---------------------------------------------------------------------------

    def _next_size(self) -> int:
        with self._lock:
            return next(self._sizes)

    def _stored(self, table: str, pk: str, rk: str) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import TableClient

        client = TableClient.from_connection_string(self.direct_connection_string, table)
        try:
            return dict(client.get_entity(pk, rk))
        except ResourceNotFoundError:
            return None

    def _refusal(self, method: str, path: str, body: bytes) -> tuple[str, str] | None:
        """Azure's error for this write, or None when Azure would store it."""
        match = _ENTITY_PATH.match(unquote(path))
        if method not in ("POST", "PUT", "PATCH", "MERGE") or not body:
            return None
        try:
            wire = json.loads(body)
        except ValueError:
            return None
        if not isinstance(wire, dict) or "PartitionKey" not in wire:
            return None
        table = match.group("table") if match is not None else unquote(path).rsplit("/", 1)[-1]
        rule = self.refuse_if
        code = rule(method, table, wire) if rule is not None else None
        if code is not None:
            return code, "refused by the test's rule"
        if not self.azure_limits:
            return None
        sizes = sizes_of_wire(wire)
        if method in ("PATCH", "MERGE") and match is not None:
            keys = _KEYS.match(match.group("keys"))
            if keys is not None:
                pk, rk = (keys.group(k).replace("''", "'") for k in ("pk", "rk"))
                stored = self._stored(match.group("table"), pk, rk)
                if stored is not None:
                    sizes = {**sizes_of_stored(stored), **sizes}
        found = violations(str(wire["PartitionKey"]), str(wire.get("RowKey", "")), sizes)
        return found[0] if found else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                parts = urlsplit(self.path)
                outage = proxy.unavailable_if
                if outage is not None and outage(self.command, unquote(parts.path)):
                    return self._azure_error(503, "ServerBusy", "the table service is unavailable")
                if proxy.azure_limits or proxy.refuse_if is not None:
                    refusal = proxy._refusal(self.command, parts.path, body)
                    if refusal is not None:
                        with proxy._lock:
                            proxy.refused.append(f"{self.command} {unquote(parts.path)[:120]}: {refusal[0]} ({refusal[1]})")
                        return self._azure_error(400, *refusal)
                match = _ENTITY_PATH.match(unquote(parts.path))
                is_query = self.command == "GET" and match is not None and match.group("keys") == ""
                params = parse_qsl(parts.query, keep_blank_values=True)
                selected: list[str] | None = None
                if is_query and proxy.split_pages:
                    params, selected = _with_keys_selected(params)
                target = parts.path + ("?" + urlencode(params, quote_via=quote, safe="$,'()=") if params else "")
                connection = http.client.HTTPConnection("127.0.0.1", proxy.table_port, timeout=60)
                try:
                    connection.request(self.command, target, body=body or None, headers={**headers, "Host": f"127.0.0.1:{proxy.table_port}"})
                    response = connection.getresponse()
                    data = response.read()
                    reply_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_HEADERS]
                    status = response.status
                finally:
                    connection.close()
                if is_query and status == 200:
                    data, reply_headers, answered = proxy._shape_page(data, reply_headers, selected)
                    with proxy._lock:
                        proxy.queries.append(Query(match.group("table"), dict(params).get("$filter"), answered))
                self.send_response(status)
                for name, value in reply_headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _azure_error(self, status: int, code: str, detail: str) -> None:
                body = json.dumps({"odata.error": {"code": code, "message": {"lang": "en-US", "value": f"{code}: {detail} (simulated Azure limit)"}}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;odata=minimalmetadata;streaming=true;charset=utf-8")
                self.send_header("x-ms-error-code", code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_MERGE = do_DELETE = _forward  # noqa: N815

        return Handler

    def _shape_page(self, data: bytes, headers: list[tuple[str, str]], selected: list[str] | None) -> tuple[bytes, list[tuple[str, str]], int]:
        """Cut one query answer short (see the module docstring); returns body, headers, count."""
        try:
            answer = json.loads(data)
        except ValueError:
            return data, headers, 0
        entities = answer.get("value")
        if not isinstance(entities, list):
            return data, headers, 0
        if self.split_pages:
            size = self._next_size()
            if size < len(entities):
                resume = entities[size]
                entities = entities[:size]
                headers = [(k, v) for k, v in headers if not k.lower().startswith("x-ms-continuation-")]
                headers.append(("x-ms-continuation-NextPartitionKey", _token(resume["PartitionKey"])))
                headers.append(("x-ms-continuation-NextRowKey", _token(resume["RowKey"])))
                with self._lock:
                    self.cut_pages += 1
            if selected is not None:
                entities = [{k: v for k, v in e.items() if k in selected or k.startswith("odata.") or "@odata" in k and k.split("@")[0] in selected} for e in entities]
        answer["value"] = entities
        return json.dumps(answer).encode(), headers, len(entities)


def _token(key: str) -> str:
    """A continuation key as Azurite encodes it (base64 of the UTF-8 key)."""
    return base64.b64encode(key.encode("utf-8")).decode()


def _with_keys_selected(params: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str] | None]:
    """The query with PartitionKey and RowKey added to ``$select`` (the proxy needs them to place a
    continuation), and the names the client selected (None: all)."""
    out = []
    selected: list[str] | None = None
    for name, value in params:
        if name == "$select":
            selected = [v.strip() for v in value.split(",") if v.strip()]
            value = ",".join(dict.fromkeys([*selected, "PartitionKey", "RowKey"]))
        out.append((name, value))
    return out, selected
