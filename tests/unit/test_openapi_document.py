"""The published OpenAPI document is valid and describes every route the app registers."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from openapi_spec_validator import validate

from core.errors import ConfigurationError
from core.openapi_doc import build_document
from core.settings import get_settings


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

    import core.management
    import triggers.management

    names = re.findall(r'_serve\("(\w+)"', inspect.getsource(triggers.management))
    assert len(names) >= 15
    assert [n for n in names if not callable(getattr(core.management, n, None))] == []


@pytest.mark.parametrize("file", ["petstore-swagger2.json", "petstore-openapi30.yaml", "petstore-openapi31.json"])
def test_bound_operations_are_described_and_the_document_stays_valid(file: str) -> None:
    from pathlib import Path

    from core import apis
    from core.oproutes import BoundOperation

    raw = (Path(__file__).resolve().parents[1] / "support" / "openapi" / file).read_bytes()
    document = apis.read_document(raw, "application/yaml" if file.endswith(".yaml") else "application/json")
    operations = apis.extract_operations(document, apis.validate_document(document))
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
    refs = set(re.findall(r"'\$ref': '([^']+)'", str({p: v for p, v in built["paths"].items() if p.startswith("/api")})))
    assert refs == {"#/components/schemas/Error"}  # the bound schemas' own $refs were inlined
    assert "/ExternalData/Accept/{scenarioId}" in built["paths"]
