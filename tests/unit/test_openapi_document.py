"""The published OpenAPI document is valid and describes every route the app registers."""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import pytest
from openapi_spec_validator import validate

from core.apiops.documents import read_document, validate_document
from core.apiops.operations import extract_operations
from core.app.openapi import build_document
from core.kernel.errors import ConfigurationError
from core.kernel.settings import get_settings


def _app(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    get_settings.cache_clear()
    return importlib.import_module("function_app").app


def _registered(app: Any) -> set[tuple[str, str]]:
    routes = set()
    for function in app.get_functions():
        binding = function.get_bindings()[0].get_dict_repr()
        if binding["type"] != "httpTrigger" or binding["route"] == "{*path}":
            continue  # the catch-all serves the imported APIs' own paths, described by their documents
        if function.get_function_name() in ("console", "consoleHome"):
            continue  # a web page for people (docs/console.md), not part of the API
        path = "/" + re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", binding["route"])
        for method in binding["methods"]:
            routes.add((str(getattr(method, "value", method)).lower(), path))
    return routes


def test_document_is_valid_openapi() -> None:
    validate(build_document("https://junction.example"))


def test_every_registered_route_is_described_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    document = build_document("https://junction.example")
    described = {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
    }
    assert _registered(_app(monkeypatch)) == described


def test_a_bad_setting_stops_the_app_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv("JUNCTION_MAX_BODY_BYTES", "ten megabytes")
    get_settings.cache_clear()
    import triggers.http

    with pytest.raises(ConfigurationError, match="JUNCTION_MAX_BODY_BYTES"):
        importlib.reload(triggers.http)
    monkeypatch.delenv("JUNCTION_MAX_BODY_BYTES")
    get_settings.cache_clear()
    importlib.reload(triggers.http)


def test_every_management_route_names_an_existing_operation() -> None:
    """triggers/management.py names operations as strings (loaded on first call): check them."""
    import inspect

    import core.app.management
    import triggers.management

    names = re.findall(r'_serve\("(\w+)"', inspect.getsource(triggers.management))
    assert len(names) >= 15
    assert [n for n in names if not callable(getattr(core.app.management, n, None))] == []


@pytest.mark.parametrize("file", ["petstore-swagger2.json", "petstore-openapi30.yaml", "petstore-openapi31.json"])
def test_bound_operations_are_described_and_the_document_stays_valid(file: str) -> None:
    from pathlib import Path

    from core.apiops.routes import BoundOperation

    raw = (Path(__file__).resolve().parents[1] / "support" / "openapi" / file).read_bytes()
    document = read_document(raw, "application/yaml" if file.endswith(".yaml") else "application/json")
    operations = extract_operations(document, validate_document(document))
    kinds = ["none", "basic", "apiKey", "oauth2", "certificate"]
    bound = [
        BoundOperation.from_parts("pets", op, {"scenarioId": "1a990d32-1299-4c6e-9ac7-aa1800cde08d", "authentication": {"type": kinds[i % 5]}})
        for i, op in enumerate(o for o in operations if o.get("operationId"))
    ]
    built = build_document("https://junction.example", bound)
    validate(built)
    for operation in bound:
        entry = built["paths"][operation.path][operation.method.lower()]
        assert entry["operationId"] == f"pets.{operation.operation_id}"
        assert entry["security"] in ([{}], [{"basic": []}], [{"apiKey": []}], [{"bearer": []}], [{"clientCertificate": []}])
    refs = set(re.findall(r"'\$ref': '([^']+)'", str(built)))
    assert "#/components/schemas/pets.Pet" in refs  # the bound schemas' $refs stay references
    assert {ref.rsplit("/", 1)[-1] for ref in refs} <= set(built["components"]["schemas"])  # ... that resolve
    assert "1a990d32" not in json.dumps(built)  # no scenario id (issue 13.4)
    assert "/ExternalData/Accept/{scenarioId}" in built["paths"]


def _recursive_api(properties: int) -> list[Any]:
    from core.apiops.routes import BoundOperation

    document = {
        "openapi": "3.0.3", "info": {"title": "r", "version": "1"},
        "paths": {"/r": {"post": {"operationId": "r", "responses": {"200": {"description": "ok"}},
                  "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}}},
        "components": {"schemas": {"Node": {"type": "object", "properties": {f"p{i}": {"$ref": "#/components/schemas/Node"} for i in range(properties)}}}},
    }  # fmt: skip
    operations = extract_operations(document, validate_document(document))
    return [BoundOperation.from_parts("rec", op, {"scenarioId": "x", "authentication": {"type": "none"}}) for op in operations]


def test_a_recursive_schema_is_published_once_as_a_component() -> None:
    """30 self-referencing properties made 8 MB per request when $refs were inlined to depth 12."""
    built = build_document("https://junction.example", _recursive_api(30))
    validate(built)
    node = built["components"]["schemas"]["rec.Node"]
    assert node["properties"]["p7"] == {"$ref": "#/components/schemas/rec.Node"}
    assert len(json.dumps(built)) - len(json.dumps(build_document("https://junction.example"))) < 5_000


def test_the_bound_part_of_the_document_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.app.openapi as openapi_doc

    monkeypatch.setattr(openapi_doc, "MAX_PUBLISHED_BYTES", 1500)
    bound = _recursive_api(40)
    built = build_document("https://junction.example", bound)
    validate(built)
    entry = built["paths"]["/r"]["post"]
    assert entry["requestBody"]["content"]["application/json"]["schema"] == {} and "rec.Node" not in built["components"]["schemas"]
    monkeypatch.setattr(openapi_doc, "MAX_PUBLISHED_BYTES", 100)
    built = build_document("https://junction.example", bound)
    assert "/r" not in built["paths"] and "1 bound operation(s) are not described" in built["info"]["description"]


def test_the_published_text_is_built_once_per_route_table(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.app.openapi as openapi_doc
    from core.apiops.routes import RouteTable

    calls: list[int] = []
    original = openapi_doc.build_document
    monkeypatch.setattr(openapi_doc, "build_document", lambda *a, **k: calls.append(1) or original(*a, **k))
    table = RouteTable(_recursive_api(3), version="v1")
    one = openapi_doc.published_text(table, "https://a.example")
    two = openapi_doc.published_text(table, "https://b.example/")
    assert len(calls) == 1
    assert json.loads(one)["servers"] == [{"url": "https://a.example"}] and json.loads(two)["servers"] == [{"url": "https://b.example"}]
    assert json.loads(one)["paths"] == json.loads(two)["paths"]
    openapi_doc.published_text(RouteTable(_recursive_api(3), version="v2"), "https://a.example")
    assert len(calls) == 2


def test_the_published_put_body_takes_a_scenario_as_get_returned_it() -> None:
    """GET, edit, PUT round-trips (README): a client generated from the document must be allowed
    to send the read-only fields back, so the PUT body describes them (``readOnly``)."""
    from jsonschema import Draft202012Validator

    document = build_document("https://junction.example")
    components = document["components"]["schemas"]
    put = document["paths"]["/management/scenarios/{scenarioId}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    as_got = {
        "id": "5f0c2a1e-8a4b-4c1d-9e2f-0a1b2c3d4e5f", "etag": 'W/"datetime\'2026-12-02T19%3A00%3A00Z\'"',
        "createdAt": "2026-12-02T19:00:00.000Z", "updatedAt": "2026-12-02T19:00:00.000Z",
        "triggerUrls": {"get": "https://junction.example/ExternalData/Accept/x", "post": "p", "cache": "c"},
        "name": "edited", "externalTriggers": {"enabled": True, "allowAnonymous": False},
        "process": {"steps": [{"type": "return", "value": 1}]},
    }  # fmt: skip
    schema = {**put, "$defs": {}, "components": {"schemas": components}}
    validator = Draft202012Validator(schema)
    assert list(validator.iter_errors(as_got)) == []
    read_only = components["ScenarioReplacement"]["properties"]
    assert {name for name, spec in read_only.items() if spec.get("readOnly")} == {"id", "etag", "createdAt", "updatedAt", "triggerUrls"}
    assert list(validator.iter_errors({**as_got, "unknown": 1})), "other fields are still refused"
