"""Junction behind devhost receives requests as the Functions host delivers them on Azure
(issue 21 D, issue 13 point 9): the path decoded once except ``%2F``, chunked bodies empty, and a
URL built from the request target, never from a ``Host`` that carries a path."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite
from tests.e2e.conftest import Junction, assert_json_error, serve_junction

ECHO = {"steps": [{"type": "return", "value": {"jmespath": "trigger.data"}}]}
DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "encodings", "version": "1"},
    "paths": {
        "/enc/{name}": {"get": {
            "operationId": "byName",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "ok"}},
        }},
        "/enc": {"post": {
            "operationId": "create",
            "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {"200": {"description": "ok"}},
        }},
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def junction(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Junction]:
    with serve_junction(azurite, "e2eazure", tmp_path_factory.mktemp("devhost-azure")) as server:
        yield server


@pytest.fixture(scope="module")
def bound(junction: Junction) -> dict[str, Any]:
    scenario = junction.create_scenario(process=ECHO, externalTriggers={"enabled": True, "allowAnonymous": True})
    with junction.admin() as admin:
        assert admin.put("/management/apis/encodings", json=DOCUMENT).status_code in (200, 201)
        for operation in ("byName", "create"):
            bind = {"scenarioId": scenario["id"], "authentication": {"type": "none"}}
            assert admin.put(f"/management/apis/encodings/operations/{operation}", json=bind).status_code == 200
    return scenario


@pytest.mark.parametrize(
    ("sent", "value"),
    [
        ("a%20b", "a b"),
        ("a%2Fb", "a/b"),  # %2F stays encoded in the URL the worker sees; the gateway decodes it once
        ("a%25b", "a%b"),
        ("%41", "A"),
        ("a%2520b", "a b"),  # the host decodes once before the app does: %2520 arrives as %20
        ("caf%C3%A9", "café"),
    ],
)
def test_path_parameters_are_decoded_once_relative_to_what_azure_delivers(
    junction: Junction, bound: dict[str, Any], sent: str, value: str
) -> None:
    with junction.client() as client:
        response = client.get(httpx.URL(f"{junction.url}/enc/{sent}"))
    assert response.status_code == 200, response.text
    assert response.json()["path"] == {"name": value}


def _chunked(data: bytes) -> Iterator[bytes]:
    yield data  # a generator body: httpx sends it with Transfer-Encoding: chunked


def test_a_chunked_body_is_411_for_api_operations_and_accept(junction: Junction, bound: dict[str, Any]) -> None:
    """On Azure a chunked body reaches the function empty (azure-functions-host #4926): Junction
    must not take such a call as one without a body."""
    with junction.client() as client:
        chunked = client.post("/enc", content=_chunked(b'{"a": 1}'), headers={"Content-Type": "application/json"})
        framed = client.post("/enc", content=b'{"a": 1}', headers={"Content-Type": "application/json"})
        runs_before = junction.run_count(bound["id"])
        accept_chunked = client.post(f"/ExternalData/Accept/{bound['id']}", content=_chunked(b'{"a": 1}'),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        accept_framed = client.post(f"/ExternalData/Accept/{bound['id']}", json={"a": 1})
    assert_json_error(chunked, 411, "LengthRequired")
    assert framed.status_code == 200 and framed.json()["body"] == {"a": 1}
    assert_json_error(accept_chunked, 411, "LengthRequired")
    assert accept_framed.status_code == 200
    assert junction.run_count(bound["id"]) == runs_before + 1  # only the framed Accept started a run


def _raw(junction: Junction, request: bytes) -> int:
    port = int(junction.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        data = b""
        while part := sock.recv(65536):
            data += part
    return int(data.split(b" ", 2)[1])


def test_a_host_header_cannot_route_a_call_or_steer_links(junction: Junction, bound: dict[str, Any]) -> None:
    """Issue 13 (9): ``GET /nothing`` with ``Host: 127.0.0.1:PORT/enc/x#`` was served by the bound
    operation at /enc/x; and links (``servers``, ``nextLink``, ``Location``) follow ``Host``."""
    authority = junction.url.removeprefix("http://").encode()
    injected = b"GET /nothing HTTP/1.1\r\nHost: %s/enc/x#\r\nConnection: close\r\n\r\n" % authority
    assert _raw(junction, injected) == 400
    elsewhere = b"GET /management/openapi.json HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    assert _raw(junction, elsewhere) == 404
    with junction.client() as client:
        document = client.get("/management/openapi.json").json()
    assert document["servers"] == [{"url": junction.url}]
