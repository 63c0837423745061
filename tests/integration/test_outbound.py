"""The outbound HTTP client of ``http`` steps and sources, against a real local server.

The retry delays are observed through the ``sleep`` the client is given, so the tests see the
schedule the client chose without waiting for it.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from core.process import http_step as outbound
from core.process.errors import ProcessFailed
from core.process.http_step import OutboundError, call_step, request
from tests.support.upstream import Upstream


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


def _get(upstream: Upstream, path: str, *, retries: int = 3) -> tuple[dict[str, Any], list[float]]:
    delays: list[float] = []
    result = request(
        method="GET", url=f"{upstream.url}{path}", headers={}, body=None, timeout=10, retries=retries,
        allowed_hosts=[upstream.host], sleep=delays.append,
    )  # fmt: skip
    return result, delays


def test_backoff_doubles_from_half_a_second_and_the_last_answer_is_returned(upstream: Upstream) -> None:
    result, delays = _get(upstream, "/busy", retries=3)
    assert delays == [0.5, 1.0, 2.0]
    assert result["status"] == 503 and upstream.hits["/busy"] == 4


def test_retry_after_in_seconds_replaces_the_backoff(upstream: Upstream) -> None:
    result, delays = _get(upstream, "/throttled")
    assert delays == [1.0] and result["status"] == 200


def test_retry_after_as_a_date_is_honoured(upstream: Upstream) -> None:
    result, delays = _get(upstream, "/throttled-date")
    assert len(delays) == 1 and 3.0 <= delays[0] <= 5.0  # the header has whole-second precision
    assert result["status"] == 200


def test_retry_after_is_capped(upstream: Upstream) -> None:
    result, delays = _get(upstream, "/throttled-long")
    assert delays == [outbound.MAX_RETRY_AFTER] and result["status"] == 200


def test_connection_errors_are_retried_then_reported() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    delays: list[float] = []
    with pytest.raises(OutboundError, match="ConnectionError .* after 3 attempt"):
        request(
            method="GET", url=f"http://127.0.0.1:{port}/x", headers={}, body=None, timeout=5, retries=2,
            allowed_hosts=[f"127.0.0.1:{port}"], sleep=delays.append,
        )  # fmt: skip
    assert delays == [0.5, 1.0]


def _step(upstream: Upstream, **step: Any) -> dict[str, Any]:
    return call_step({"url": f"{upstream.url}/echo", **step}, lambda value: value, [upstream.host])


def test_xml_and_text_request_bodies(upstream: Upstream) -> None:
    _step(upstream, method="POST", bodyType="xml", body={"order": {"@id": "7", "line": ["a", "b"]}})
    _step(upstream, method="POST", bodyType="xml", body="<raw>kept as is</raw>")
    _step(upstream, method="POST", bodyType="text", body="plain é")
    _step(upstream, method="POST", body={"n": 1})
    bodies, headers = upstream.bodies["/echo"], upstream.request_headers["/echo"]
    assert bodies[0].endswith(b'<order id="7"><line>a</line><line>b</line></order>')
    assert bodies[1] == b"<raw>kept as is</raw>"
    assert bodies[2] == "plain é".encode()
    assert json.loads(bodies[3]) == {"n": 1}
    assert [h["content-type"] for h in headers] == [
        "application/xml; charset=utf-8", "application/xml; charset=utf-8", "text/plain; charset=utf-8", "application/json",
    ]  # fmt: skip


def test_a_content_type_set_by_the_step_wins(upstream: Upstream) -> None:
    _step(upstream, method="POST", body={"n": 1}, headers={"Content-Type": "application/vnd.orders+json"})
    assert upstream.request_headers["/echo"][0]["content-type"] == "application/vnd.orders+json"


def test_response_headers_are_seen_with_lower_case_names(upstream: Upstream) -> None:
    result = call_step({"url": f"{upstream.url}/headers"}, lambda value: value, [upstream.host])
    assert result["headers"]["x-total"] == "42" and result["headers"]["etag"] == '"v7"'


def test_the_default_timeout_is_30_seconds_and_a_slow_answer_within_it_succeeds(upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spy around the real ``requests.Session.request``: the call still goes to the server."""
    import requests

    seen: list[Any] = []
    real = requests.Session.request

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("timeout"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    result = call_step({"url": f"{upstream.url}/slow", "retries": 0}, lambda value: value, [upstream.host])
    assert result["status"] == 200 and seen == [30.0]


def test_a_final_error_status_fails_the_step_unless_told_otherwise(upstream: Upstream) -> None:
    with pytest.raises(ProcessFailed, match="answered 404"):
        call_step({"url": f"{upstream.url}/missing"}, lambda value: value, [upstream.host])
    assert call_step({"url": f"{upstream.url}/missing", "failOnError": False}, lambda value: value, [upstream.host])["status"] == 404
