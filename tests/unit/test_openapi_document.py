"""The published OpenAPI document is valid and describes every route the app registers."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

import function_app
from core.openapi_doc import build_document


def _registered() -> set[tuple[str, str]]:
    routes = set()
    for function in function_app.app.get_functions():
        binding = function.get_bindings()[0].get_dict_repr()
        if binding["type"] != "httpTrigger":
            continue
        path = "/" + re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", binding["route"])
        for method in binding["methods"]:
            routes.add((str(getattr(method, "value", method)).lower(), path))
    return routes


def test_document_is_valid_openapi() -> None:
    validate(build_document("https://junction.example"))


def test_every_registered_route_is_described_and_nothing_else() -> None:
    document = build_document("https://junction.example")
    described = {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
    }
    assert _registered() == described
