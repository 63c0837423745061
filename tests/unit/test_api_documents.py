"""Reading and validating OpenAPI documents safely (core.apiops.documents, core.apiops.operations), without storage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.apiops import bindings as apis
from core.apiops.documents import read_document, validate_document
from core.apiops.operations import extract_operations
from core.apiops.routes import find_conflict
from core.kernel.errors import BadRequest, UnsupportedMediaType

DOCS = Path(__file__).resolve().parents[1] / "support" / "openapi"


def minimal(paths: dict, version: str = "3.0.3") -> dict:
    return {"openapi": version, "info": {"title": "t", "version": "1"}, "paths": paths}


def ok(op_id: str, params: list | None = None) -> dict:
    return {"operationId": op_id, "parameters": params or [], "responses": {"200": {"description": "ok"}}}


def test_yaml_alias_bomb_is_refused() -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]")
    with pytest.raises(BadRequest) as caught:
        read_document("\n".join(lines).encode(), "application/yaml")
    assert "too large" in caught.value.message


def test_yaml_duplicates_and_non_json_values_are_refused() -> None:
    with pytest.raises(BadRequest):
        read_document(b"a: 1\na: 2\n", "application/yaml")
    with pytest.raises(BadRequest):
        read_document(b"a: !!binary aGVsbG8=\n", "application/yaml")
    with pytest.raises(BadRequest):
        read_document(b"a: .nan\n", "application/yaml")
    assert read_document(b"a: 2024-01-01\n", "application/yaml") == {"a": "2024-01-01"}


def test_media_types() -> None:
    with pytest.raises(UnsupportedMediaType):
        read_document(b"{}", "image/png")
    with pytest.raises(BadRequest):
        read_document(b'{"a":1,"a":2}', "application/json")
    with pytest.raises(BadRequest):
        read_document(b"[1]", "application/json")


def test_external_references_are_refused_before_validation() -> None:
    document = minimal({"/a": {"get": ok("a", [{"$ref": "https://attacker.example/p.json"}])}})
    with pytest.raises(BadRequest) as caught:
        validate_document(document)
    assert "only local references" in caught.value.message


def test_invalid_documents_list_their_problems() -> None:
    document = minimal({"/a": {"get": {"operationId": "a"}}, "/b": {"get": {"responses": 5}}})
    with pytest.raises(BadRequest) as caught:
        validate_document(document)
    assert caught.value.message.count(";") >= 1 and "responses" in caught.value.message
    with pytest.raises(BadRequest):
        validate_document({"swagger": "1.2"})


@pytest.mark.parametrize("file", ["petstore-swagger2.json", "petstore-openapi30.yaml", "petstore-openapi31.json"])
def test_petstore_documents_extract(file: str) -> None:
    ctype = "application/yaml" if file.endswith("yaml") else "application/json"
    document = read_document((DOCS / file).read_bytes(), ctype)
    dialect = validate_document(document)
    operations = {o["operationId"]: o for o in extract_operations(document, dialect)}
    assert operations["getPetById"]["path"] == "/api/pet/{id}"
    assert operations["getPetById"]["method"] == "GET"
    assert operations["getPetById"]["scopes"] == ["pets.read", "pets.write"]
    assert operations["addPet"]["scopes"] == ["pets.write"]
    assert operations["getStatus"]["scopes"] == []
    assert operations["getStatus"]["path"] == "/api/pet/getStatus"
    assert find_conflict(apis._routes("p", list(operations.values()))) is None


def test_base_paths() -> None:
    sw = {"swagger": "2.0", "info": {"title": "t", "version": "1"}, "basePath": "/v1/", "paths": {"/x": {"get": ok("x")}}}
    assert extract_operations(sw, "swagger2")[0]["path"] == "/v1/x"
    oas = minimal({"/x": {"get": ok("x")}})
    oas["servers"] = [{"url": "https://h.example/base/"}]
    assert extract_operations(oas, "oas30")[0]["path"] == "/base/x"
    oas["servers"] = [{"url": "relative"}]
    assert extract_operations(oas, "oas30")[0]["path"] == "/relative/x"
    oas.pop("servers")
    assert extract_operations(oas, "oas30")[0]["path"] == "/x"


def test_reserved_paths_are_refused() -> None:
    document = minimal({"/management/x": {"get": ok("x")}, "/ExternalData/Accept/{id}": {"get": ok("y", [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}])}})
    with pytest.raises(BadRequest) as caught:
        extract_operations(document, "oas30")
    assert "/management" in caught.value.message and "externaldata" in caught.value.message


def test_the_consoles_paths_are_reserved() -> None:
    """The console's routes (GET / and /console/...) sort before the API operations' catch-all,
    so an operation there would never be called: refused at import instead."""
    document = minimal({"/console/x": {"post": ok("x")}, "/": {"get": ok("root"), "post": ok("rootPost")}})
    with pytest.raises(BadRequest) as caught:
        extract_operations(document, "oas30")
    assert "POST /console/x: paths under /console are reserved" in caught.value.message
    assert "GET /: GET / redirects to the console" in caught.value.message
    assert "POST /:" not in caught.value.message  # only GET / is the console's
    assert extract_operations(minimal({"/consoles": {"get": ok("c")}}), "oas30")[0]["path"] == "/consoles"


def test_operation_without_id_is_kept_but_unnamed() -> None:
    document = minimal({"/x": {"get": {"responses": {"200": {"description": "ok"}}}}})
    assert extract_operations(document, "oas30")[0]["operationId"] is None


def test_names_are_validated() -> None:
    for bad in ("", "-x", "a/b", "a b", "x" * 65, None):
        with pytest.raises(BadRequest):
            apis.parse_api_name(bad)
    assert apis.parse_api_name("Pet_store.v2-1") == "Pet_store.v2-1"
    with pytest.raises(BadRequest):
        apis.parse_operation_id("a/b")


def test_json_documents_round_trip() -> None:
    text = json.dumps(minimal({"/x": {"get": ok("x")}})).encode()
    assert read_document(text, None)["openapi"] == "3.0.3"  # no content type: read as YAML, a JSON superset


def _wide_document(operations: int) -> dict:
    """``operations`` POSTs whose bodies all refer to one definition of 1,000 properties."""
    big = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(1000)}}
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Big"}}}}
    paths = {f"/o{i}": {"post": {"operationId": f"o{i}", "requestBody": body, "responses": {"200": {"description": "ok"}}}} for i in range(operations)}
    return {"openapi": "3.0.3", "info": {"title": "w", "version": "1"}, "paths": paths, "components": {"schemas": {"Big": big}}}


def test_bodies_sharing_definitions_count_against_one_document_bound() -> None:
    """Each body carries the definitions it uses; a thousand operations sharing one large
    definition stored it a thousand times. The copies count against the document's bound."""
    assert len(extract_operations(_wide_document(10), "oas30")) == 10
    with pytest.raises(BadRequest, match="the document's operations expand to more than") as refused:
        extract_operations(_wide_document(1000), "oas30")
    assert refused.value.code == "InvalidDocument"


def test_the_health_check_path_is_reserved() -> None:
    """GET /health is Junction's (its function sorts before the catch-all), and another method there
    is answered 405 as one of Junction's own paths: an operation at /health could never be called."""
    document = minimal({"/health": {"get": ok("h"), "post": ok("hp")}, "/health/deep": {"get": ok("d")}})
    with pytest.raises(BadRequest) as caught:
        extract_operations(document, "oas30")
    assert "GET /health: /health is Junction's health check" in caught.value.message
    assert "POST /health:" in caught.value.message and "/health/deep" not in caught.value.message
    assert extract_operations(minimal({"/healthz": {"get": ok("z")}}), "oas30")[0]["path"] == "/healthz"
