"""A local HTTP server with scripted answers per path, for http steps, sources and slow work, and a
``/gate`` that holds a call until the test lets it go."""

from __future__ import annotations

import json
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GATE_LIMIT = 120.0
"""The longest a call to ``/gate`` waits: a test that fails while holding it leaves no step hung for good."""


class Upstream:
    """A local HTTP server with scripted answers per path, counting the hits."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.bodies: dict[str, list[bytes]] = {}
        self.request_headers: dict[str, list[dict[str, str]]] = {}
        self.gate = threading.Event()
        """Open (set) unless a test holds it: ``/gate`` answers only once it is open, so a step that
        calls it stays running for exactly as long as the test looks (no sleeps, no race)."""
        self.gate.set()
        self.arrived = threading.Event()
        """Set when a call reaches ``/gate`` after ``hold()``: the run is at that step now."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                path = self.path.split("?")[0]
                count = upstream.hits[path] = upstream.hits.get(path, 0) + 1
                length = int(self.headers.get("Content-Length") or 0)
                upstream.bodies.setdefault(path, []).append(self.rfile.read(length) if length else b"")
                upstream.request_headers.setdefault(path, []).append({k.lower(): v for k, v in self.headers.items()})
                if path == "/flaky" and count <= 2:
                    return self._send(503, {"error": "busy"}, {"Retry-After": "0"})
                if path == "/throttled" and count == 1:
                    return self._send(429, {}, {"Retry-After": "1"})
                if path == "/busy":  # always failing, without Retry-After: the backoff applies
                    return self._send(503, {"error": "busy"})
                if path == "/throttled-always":  # every call a 429, Retry-After 0: only the queue can wait
                    return self._send(429, {"error": "slow down"}, {"Retry-After": "0"})
                if path == "/surrogate":  # JSON that parses to a string no storage or JSON writer takes
                    return self._send_raw(200, b'{"name": "\\ud800"}', "application/json")
                if path == "/error":  # always a 500
                    return self._send(500, {"error": "broken"})
                if path == "/throttled-long" and count == 1:
                    return self._send(429, {}, {"Retry-After": "3600"})
                if path == "/throttled-date" and count == 1:
                    return self._send(429, {}, {"Retry-After": formatdate(time.time() + 5, usegmt=True)})
                if path == "/headers":
                    return self._send(200, {}, {"X-Total": "42", "ETag": '"v7"'})
                if path == "/slow":
                    time.sleep(3)
                if path == "/gate":
                    upstream.arrived.set()
                    upstream.gate.wait(GATE_LIMIT)
                    return self._send(200, {"released": True})
                if path == "/echo-request":  # what was sent: method, headers (lower-case names), body
                    body = upstream.bodies[path][-1].decode(errors="replace")
                    return self._send(200, {"method": self.command, "headers": upstream.request_headers[path][-1], "body": body})
                if path == "/redirect-out":
                    return self._send(302, {}, {"Location": "http://169.254.169.254/latest/meta-data"})
                if path == "/redirect-to":  # to the URL in ?url=, on any host or port
                    from urllib.parse import parse_qs, urlsplit

                    return self._send(302, {}, {"Location": parse_qs(urlsplit(self.path).query)["url"][0]})
                if path == "/redirect-in":
                    return self._send(302, {}, {"Location": "/orders"})
                if path == "/missing":
                    return self._send(404, {"error": "nope"})
                if path == "/echo-auth":
                    return self._send(200, {"auth": self.headers.get("Authorization")})
                if path == "/paged":  # a listing whose link names another host
                    if "page=2" in self.path:
                        return self._send(200, {"value": [3], "nextLink": None})
                    return self._send(200, {"value": [1, 2], "nextLink": "http://169.254.169.254/paged?page=2"})
                if path == "/trickle":  # every read is quick, the whole answer takes 4 s
                    return self._trickle(b'{"slowly": true}', 0.25)
                if path == "/xml":
                    return self._send_raw(200, b"<order><id>5</id></order>", "application/xml")
                return self._send(200, {"path": path, "count": count, "orders": [{"id": 1}, {"id": 2}]})

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                self._send_raw(status, json.dumps(body).encode(), "application/json", headers)

            def _send_raw(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _trickle(self, data: bytes, pause: float) -> None:
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    for byte in data:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(pause)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _answer  # noqa: N815

        return Handler

    def start(self) -> Upstream:
        self.thread.start()
        return self

    def hold(self) -> None:
        """Calls to ``/gate`` wait from now on until ``release()``; ``arrived`` tells when one came."""
        self.arrived.clear()
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def stop(self) -> None:
        self.release()  # no call is left waiting when the server goes (nor a run on it when a host drains)
        self.server.shutdown()
        self.server.server_close()
