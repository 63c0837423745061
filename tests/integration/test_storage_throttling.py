"""Storage that throttles (429) or is busy (503): the caller gets the same status with
``Retry-After``, never a 500. Azurite never throttles, so a local server answers as Table
Storage does when it is over its limits (status, ``x-ms-error-code: ServerBusy``, OData error)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.app.external import AcceptRequest, accept
from core.kernel.settings import load_settings
from core.store.errors import as_domain_error
from core.store.storage import Storage
from devhost.azurite import connection_string


class Busy:
    def __init__(self, status: int) -> None:
        self.status, self.requests = status, 0
        busy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                busy.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = json.dumps({"odata.error": {"code": "ServerBusy", "message": {"lang": "en-US", "value": "The server is busy."}}}).encode()
                self.send_response(busy.status)
                self.send_header("Content-Type", "application/json;odata=minimalmetadata")
                self.send_header("x-ms-error-code", "ServerBusy")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_MERGE = _answer  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])


@pytest.fixture(params=[429, 503])
def busy(request: pytest.FixtureRequest) -> Iterator[Busy]:
    server = Busy(request.param)
    yield server
    server.server.shutdown()


def test_a_throttling_table_service_becomes_429_or_503_with_retry_after(busy: Busy, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connection_string(busy.port, busy.port, busy.port)
    settings = load_settings({"AzureWebJobsStorage": conn})
    storage = Storage.from_settings(settings)
    with pytest.raises(Exception) as raised:  # the SDK's own error, after its quick retries
        accept(storage, settings, AcceptRequest("1a990d32-1299-4c6e-9ac7-aa1800cde08d", "GET", b"", None, None))
    # Azure Storage signals throttling as 503 ServerBusy, which the SDK retries (quickly) before
    # giving up; a 429 it passes on at once.
    assert busy.requests >= (2 if busy.status == 503 else 1)
    mapped = as_domain_error(raised.value)
    assert mapped is not None and mapped.code == ("StorageThrottled" if busy.status == 429 else "StorageUnavailable")

    # The one place statuses are decided (triggers/http.py), as the host would call it.
    monkeypatch.setenv("AzureWebJobsStorage", conn)
    from core.kernel.settings import get_settings

    get_settings.cache_clear()
    try:
        import azure.functions as func

        from triggers.http import handles_errors

        @handles_errors("accept")
        def handler(req: func.HttpRequest) -> func.HttpResponse:
            raise raised.value

        response = handler(func.HttpRequest("GET", "http://localhost/ExternalData/Accept/x", body=b""))
    finally:
        get_settings.cache_clear()
    assert response.status_code == busy.status
    assert int(response.headers["Retry-After"]) > 0
    assert json.loads(response.get_body())["error"]["code"] == mapped.code
