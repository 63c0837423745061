"""Parameter casting, defaults and body validation (core.apiops.params), with the petstore documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.apiops.documents import read_document, validate_document
from core.apiops.operations import extract_operations
from core.apiops.params import cast_value, extract_parameters, read_form, validate_body
from core.kernel.errors import BadRequest
from core.web.bodies import parse_form_fields

DOCS = Path(__file__).resolve().parents[1] / "support" / "openapi"


def operation(file: str, operation_id: str) -> dict[str, Any]:
    content_type = "application/yaml" if file.endswith(".yaml") else "application/json"
    document = read_document((DOCS / file).read_bytes(), content_type)
    dialect = validate_document(document)
    return next(o for o in extract_operations(document, dialect) if o["operationId"] == operation_id)


def extract(op: dict[str, Any], query: dict[str, list[str]] | None = None, headers: dict[str, str] | None = None, path: dict[str, str] | None = None, cookies: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    return extract_parameters(op["parameters"], path=path or {}, query=query or {}, headers=headers if headers is not None else {"x-request-id": "r1"}, cookies=cookies or {})


SW2 = operation("petstore-swagger2.json", "searchPets")
OAS30 = operation("petstore-openapi30.yaml", "searchPets")
OAS31 = operation("petstore-openapi31.json", "searchPets")


def test_swagger2_collection_formats_cast_items() -> None:
    out = extract(
        SW2,
        {
            "ids": ["1,2,3"],
            "names": ["rex fido"],
            "codes": ["a\tb"],
            "flags": ["true|false|TRUE"],
            "tags": ["x", "y"],
            "ratio": ["0.5"],
            "limit": ["7"],
            "active": ["false"],
        },
        {"x-request-id": "r1", "x-trace": "12"},
    )
    q = out["query"]
    assert q["ids"] == [1, 2, 3]
    assert q["names"] == ["rex", "fido"]
    assert q["codes"] == ["a", "b"]
    assert q["flags"] == [True, False, True]
    assert q["tags"] == ["x", "y"]
    assert q["ratio"] == 0.5 and isinstance(q["ratio"], float)
    assert q["limit"] == 7 and q["active"] is False
    assert out["header"]["X-Trace"] == 12 and out["header"]["X-Request-Id"] == "r1"


def test_openapi3_styles() -> None:
    out = extract(OAS30, {"ids": ["4,5"], "names": ["a b"], "flags": ["false|true"], "tags": ["t1", "t2"]}, {"x-request-id": "r", "x-ids": "7,8"}, cookies={"session": "abc"})
    assert out["query"]["ids"] == [4, 5]
    assert out["query"]["names"] == ["a", "b"]
    assert out["query"]["flags"] == [False, True]
    assert out["query"]["tags"] == ["t1", "t2"]
    assert out["header"]["X-Ids"] == [7, 8]
    assert out["cookie"]["session"] == "abc"
    out31 = extract(OAS31, {"ids": ["9"], "tags": ["only"], "limit": ["3"]})
    assert out31["query"] == {"ids": [9], "tags": ["only"], "limit": 3, "ratio": None}


def test_defaults_and_nulls_for_absent_parameters() -> None:
    out = extract(SW2)
    q = out["query"]
    assert q["limit"] == 20 and q["active"] is True
    assert q["ratio"] is None and q["ids"] is None and q["status"] is None
    assert out["header"]["X-Trace"] is None
    out3 = extract(OAS30)
    assert out3["query"]["limit"] == 20 and out3["cookie"]["session"] is None


def test_undeclared_values_pass_through_as_strings() -> None:
    out = extract(SW2, {"extra": ["1"], "many": ["a", "b"]}, {"x-request-id": "r", "x-other": "v"})
    assert out["query"]["extra"] == "1" and out["query"]["many"] == ["a", "b"]
    assert out["header"]["x-other"] == "v"


@pytest.mark.parametrize(
    ("query", "headers", "named"),
    [
        ({}, {}, "header parameter 'X-Request-Id' is required"),
        ({"limit": ["ten"]}, None, "query parameter 'limit' must be an integer"),
        ({"limit": ["0"]}, None, "query parameter 'limit' is not valid"),
        ({"limit": ["99999999999"]}, None, "query parameter 'limit' is out of range"),
        ({"ratio": ["nan"]}, None, "query parameter 'ratio' must be a number"),
        ({"active": ["yes"]}, None, "query parameter 'active' must be true or false"),
        ({"ids": ["1,x"]}, None, "query parameter 'ids' must be an integer"),
        ({"status": ["gone"]}, None, "query parameter 'status' is not valid"),
        ({"limit": ["1", "2"]}, None, "query parameter 'limit' was sent more than once"),
        ({"limit": [""]}, None, "query parameter 'limit' is empty"),
        ({}, {"x-request-id": "r", "x-trace": "1.5"}, "header parameter 'X-Trace' must be an integer"),
    ],
)
def test_bad_values_name_the_parameter(query: dict[str, list[str]], headers: dict[str, str] | None, named: str) -> None:
    with pytest.raises(BadRequest) as caught:
        extract(SW2, query, headers)
    assert named in caught.value.message


def test_path_parameters_are_cast() -> None:
    op = operation("petstore-openapi30.yaml", "getPetById")
    assert extract(op, path={"id": "42"})["path"] == {"id": 42}
    flag = operation("petstore-swagger2.json", "storeByFlag")
    assert extract(flag, path={"flag": "true"})["path"] == {"flag": True}


@pytest.mark.parametrize("file", ["petstore-swagger2.json", "petstore-openapi30.yaml", "petstore-openapi31.json"])
def test_body_schema_names_the_path(file: str) -> None:
    op = operation(file, "addPet")
    spec = op["requestBody"]
    validate_body({"name": "rex", "photoUrls": []}, spec["jsonSchema"], op["dialect"])
    with pytest.raises(BadRequest) as caught:
        validate_body({"name": "rex"}, spec["jsonSchema"], op["dialect"])
    assert "photoUrls" in caught.value.message and "schema path" in caught.value.message
    with pytest.raises(BadRequest) as caught:
        validate_body({"name": "rex", "photoUrls": [1]}, spec["jsonSchema"], op["dialect"])
    assert caught.value.message.startswith("body.photoUrls[0]:")


def test_nested_reference_in_body_schema() -> None:
    op = operation("petstore-swagger2.json", "addPet")
    with pytest.raises(BadRequest) as caught:
        validate_body({"name": "rex", "photoUrls": [], "category": {"id": "one"}}, op["requestBody"]["jsonSchema"], op["dialect"])
    assert caught.value.message.startswith("body.category.id:")
    op3 = operation("petstore-openapi30.yaml", "addPet")
    validate_body({"name": "rex", "photoUrls": [], "nickname": None}, op3["requestBody"]["jsonSchema"], "oas30")
    op31 = operation("petstore-openapi31.json", "addPet")
    with pytest.raises(BadRequest) as caught:
        validate_body({"name": "rex", "photoUrls": [], "owner": {}}, op31["requestBody"]["jsonSchema"], "oas31")
    assert caught.value.message.startswith("body.owner:") and "email" in caught.value.message


@pytest.mark.parametrize(
    ("style", "explode", "raw", "schema", "expected"),
    [
        ("label", False, ".5", {"type": "integer"}, 5),
        ("label", False, ".3,4,5", {"type": "array", "items": {"type": "integer"}}, [3, 4, 5]),
        ("label", True, ".3.4.5", {"type": "array", "items": {"type": "integer"}}, [3, 4, 5]),
        ("matrix", False, ";id=5", {"type": "integer"}, 5),
        ("matrix", False, ";id=3,4", {"type": "array", "items": {"type": "integer"}}, [3, 4]),
        ("matrix", True, ";id=3;id=4", {"type": "array", "items": {"type": "integer"}}, [3, 4]),
    ],
)
def test_openapi3_label_and_matrix_path_styles(style: str, explode: bool, raw: str, schema: dict, expected: object) -> None:
    param = {"name": "id", "in": "path", "required": True, "style": style, "explode": explode, "schema": schema}
    assert cast_value([raw], param) == expected


@pytest.mark.parametrize(("style", "raw"), [("label", "5"), ("matrix", "5"), ("matrix", ";other=5"), ("label", ".x")])
def test_malformed_styled_path_values_are_400(style: str, raw: str) -> None:
    param = {"name": "id", "in": "path", "required": True, "style": style, "explode": False, "schema": {"type": "integer"}}
    with pytest.raises(BadRequest):
        cast_value([raw], param)


COLOR = {
    "type": "object",
    "properties": {"R": {"type": "integer", "maximum": 255}, "G": {"type": "integer"}, "tag": {"type": "string"}},
    "additionalProperties": False,
}
STYLED = {
    "openapi": "3.0.3",
    "info": {"title": "styles", "version": "1"},
    "paths": {
        "/label/{id}": {"get": {"operationId": "label", "parameters": [
            {"name": "id", "in": "path", "required": True, "style": "label", "schema": {"type": "integer"}},
        ], "responses": {"200": {"description": "ok"}}}},
        "/matrix/{color}": {"get": {"operationId": "matrixObject", "parameters": [
            {"name": "color", "in": "path", "required": True, "style": "matrix", "explode": True, "schema": COLOR},
        ], "responses": {"200": {"description": "ok"}}}},
        "/paint/{color}": {"get": {"operationId": "objects", "parameters": [
            {"name": "color", "in": "path", "required": True, "schema": COLOR},
            {"name": "filter", "in": "query", "style": "deepObject", "explode": True, "schema": COLOR},
            {"name": "spread", "in": "query", "schema": {"type": "object", "properties": {"limit": {"type": "integer"}, "tag": {"type": "string"}}}},
            {"name": "tag", "in": "query", "schema": {"type": "string"}},
            {"name": "packed", "in": "query", "explode": False, "schema": COLOR},
            {"name": "X-Color", "in": "header", "explode": True, "schema": COLOR},
        ], "responses": {"200": {"description": "ok"}}}},
    },
}  # fmt: skip


def styled(operation_id: str) -> dict[str, Any]:
    dialect = validate_document(STYLED)
    return next(o for o in extract_operations(STYLED, dialect) if o["operationId"] == operation_id)


def test_styles_of_scalar_path_parameters_survive_the_import() -> None:
    out = extract(styled("label"), path={"id": ".5"}, headers={})
    assert out["path"]["id"] == 5


def test_object_parameters_in_every_openapi3_style() -> None:
    out = extract(
        styled("objects"),
        {"filter[R]": ["10"], "filter[G]": ["20"], "limit": ["3"], "tag": ["own"], "packed": ["R,1,G,2"], "other": ["x"]},
        {"x-color": "R=7,tag=blue"},
        path={"color": "R,255,G,0"},
    )
    assert out["path"]["color"] == {"R": 255, "G": 0}
    assert out["query"]["filter"] == {"R": 10, "G": 20}
    assert out["query"]["spread"] == {"limit": 3}  # "tag" is a declared parameter of its own
    assert out["query"]["tag"] == "own"
    assert out["query"]["packed"] == {"R": 1, "G": 2}
    assert out["header"]["X-Color"] == {"R": 7, "tag": "blue"}
    assert out["query"]["other"] == "x"
    assert not any(key.startswith("filter[") for key in out["query"]) and "limit" not in out["query"]
    matrix = extract(styled("matrixObject"), path={"color": ";R=1;G=2"}, headers={})
    assert matrix["path"]["color"] == {"R": 1, "G": 2}


@pytest.mark.parametrize(("style", "raw"), [("spaceDelimited", "R 1 G 2"), ("pipeDelimited", "R|1|G|2"), ("form", "R,1,G,2")])
def test_delimited_query_objects(style: str, raw: str) -> None:
    param = {"name": "color", "in": "query", "style": style, "explode": False, "schema": COLOR}
    assert cast_value([raw], param) == {"R": 1, "G": 2}


def test_absent_object_parameters_are_null() -> None:
    out = extract(styled("objects"), path={"color": "R,1"}, headers={})
    assert out["query"]["filter"] is None and out["query"]["spread"] is None and out["query"]["packed"] is None


@pytest.mark.parametrize(
    ("query", "path", "named"),
    [
        ({"filter[R]": ["x"]}, "R,1", "filter"),  # not an integer
        ({"filter[R]": ["300"]}, "R,1", "filter"),  # beyond the property's maximum
        ({"filter[B]": ["1"]}, "R,1", "filter"),  # additionalProperties: false
        ({"filter[R][x]": ["1"]}, "R,1", "filter"),  # nesting is not defined for deepObject
        ({"filter[R]": ["1", "2"]}, "R,1", "filter"),  # a scalar property twice
        ({"packed": ["R,1,G"]}, "R,1", "packed"),  # an odd number of tokens
        ({}, "R,1,R,2", "color"),  # one property twice
    ],
)
def test_bad_object_parameters_name_the_parameter(query: dict[str, list[str]], path: str, named: str) -> None:
    with pytest.raises(BadRequest) as caught:
        extract(styled("objects"), query, {}, path={"color": path})
    assert f"'{named}'" in caught.value.message


FORM_SWAGGER2 = {
    "swagger": "2.0",
    "info": {"title": "forms", "version": "1"},
    "paths": {"/orders": {"post": {"operationId": "order", "consumes": ["application/x-www-form-urlencoded"], "parameters": [
        {"name": "qty", "in": "formData", "required": True, "type": "integer", "maximum": 100},
        {"name": "express", "in": "formData", "type": "boolean", "default": False},
        {"name": "tags", "in": "formData", "type": "array", "items": {"type": "string"}, "collectionFormat": "multi"},
        {"name": "sizes", "in": "formData", "type": "array", "items": {"type": "number"}, "collectionFormat": "pipes"},
        {"name": "note", "in": "formData", "type": "string"},
    ], "responses": {"200": {"description": "ok"}}}}},
}  # fmt: skip
FORM_OAS3 = {
    "openapi": "3.0.3",
    "info": {"title": "forms", "version": "1"},
    "paths": {"/orders": {"post": {"operationId": "order", "requestBody": {"content": {"application/x-www-form-urlencoded": {
        "schema": {"type": "object", "required": ["qty"], "properties": {
            "qty": {"type": "integer", "maximum": 100},
            "express": {"type": "boolean", "default": False},
            "tags": {"type": "array", "items": {"type": "string"}},
            "sizes": {"type": "array", "items": {"type": "number"}},
            "address": {"type": "object"},
            "note": {"type": "string"},
        }},
        "encoding": {"sizes": {"style": "pipeDelimited", "explode": False}},
    }}}, "responses": {"200": {"description": "ok"}}}}},
}  # fmt: skip


def form_fields(document: dict[str, Any]) -> list[dict[str, Any]]:
    operation = extract_operations(document, validate_document(document))[0]
    return operation["requestBody"]["formFields"]


@pytest.mark.parametrize("document", [FORM_SWAGGER2, FORM_OAS3], ids=["swagger2", "openapi3"])
def test_form_fields_are_cast_like_parameters(document: dict[str, Any]) -> None:
    fields = form_fields(document)
    body = parse_form_fields(b"qty=7&tags=a&tags=b&sizes=1.5|2&note=x%20y&extra=1&extra=2&address=k")
    assert read_form(body, fields) == {
        "qty": 7,
        "express": False,  # the default
        "tags": ["a", "b"],
        "sizes": [1.5, 2.0],
        "note": "x y",
        "extra": ["1", "2"],  # undeclared: passed through as text
        "address": "k",  # an object property has no agreed form encoding: text
    }
    assert read_form(parse_form_fields(b"qty=1&express=TRUE"), fields)["express"] is True


@pytest.mark.parametrize("document", [FORM_SWAGGER2, FORM_OAS3], ids=["swagger2", "openapi3"])
@pytest.mark.parametrize(
    ("body", "problem"),
    [(b"express=true", "is required"), (b"qty=x", "must be an integer"), (b"qty=101", "is not valid"), (b"qty=1&qty=2", "more than once"), (b"qty=", "is empty")],
)
def test_bad_form_fields_name_the_field(document: dict[str, Any], body: bytes, problem: str) -> None:
    with pytest.raises(BadRequest) as caught:
        read_form(parse_form_fields(body), form_fields(document))
    assert caught.value.message.startswith("the form parameter 'qty'") and problem in caught.value.message


FORMATTED = [
    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "at", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {"name": "ref", "in": "query", "schema": {"type": "string", "format": "uuid"}},
    {"name": "n", "in": "query", "schema": {"type": "integer", "format": "int32"}},
    {"name": "tags", "in": "query", "schema": {"type": "array", "items": {"type": "string", "format": "date"}}},
]


@pytest.mark.parametrize(
    ("name", "value"),
    [("since", ""), ("since", "2024-02-30"), ("at", "yesterday"), ("ref", "not-a-uuid"), ("n", str(2**31)), ("tags", "2024-01-01,soon")],
)
def test_declared_formats_are_asserted(name: str, value: str) -> None:
    with pytest.raises(BadRequest, match=name):
        extract_parameters(FORMATTED, path={}, query={name: [value]}, headers={}, cookies={})


def test_values_in_their_format_pass() -> None:
    query = {"since": ["2024-02-29"], "at": ["2024-02-29T10:00:00Z"], "ref": ["1a990d32-1299-4c6e-9ac7-aa1800cde08d"], "n": ["-5"], "tags": ["2024-01-01"]}
    out = extract_parameters(FORMATTED, path={}, query=query, headers={}, cookies={})["query"]
    assert out == {"since": "2024-02-29", "at": "2024-02-29T10:00:00Z", "ref": "1a990d32-1299-4c6e-9ac7-aa1800cde08d", "n": -5, "tags": ["2024-01-01"]}


def test_body_formats_are_asserted() -> None:
    schema = {"type": "object", "properties": {"due": {"type": "string", "format": "date"}}}
    validate_body({"due": "2024-12-24"}, schema, "oas30")
    with pytest.raises(BadRequest, match=r"body\.due"):
        validate_body({"due": "Christmas"}, schema, "oas31")
