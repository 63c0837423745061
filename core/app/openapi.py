"""Junction's own OpenAPI 3.1 document, served at ``/management/openapi.json``.

Junction's own routes (``core.app.openapi_routes``) and every bound API operation as its callers
reach it (its parameters and body schemas, within ``MAX_PUBLISHED_BYTES``); a test checks that
every route the function app registers is described here.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from core.app.openapi_routes import error_responses, own_components, own_paths
from core.kernel.jsonvalue import dumps

_STYLES = {"csv": ("form", False), "ssv": ("spaceDelimited", False), "pipes": ("pipeDelimited", False), "multi": ("form", True)}
_SECURITY = {"none": [{}], "basic": [{"basic": []}], "apiKey": [{"apiKey": []}], "oauth2": [{"bearer": []}], "certificate": [{"clientCertificate": []}]}
MAX_PUBLISHED_BYTES = 1024 * 1024
"""How much the bound API operations may add to the document (their entries and schemas)."""
_COMPONENT_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class _Publisher:
    """The bound operations' schemas with their ``$ref``s kept as references.

    A stored body schema carries the definitions it uses at their original pointers
    (``#/components/schemas/Pet``, ``#/definitions/Pet``, see ``core.apiops.operations.self_contained_schema``).
    Each one is published once per API as ``components.schemas["<api>.<name>"]`` and every
    ``$ref`` to it is rewritten to point there. Nothing is expanded, so a recursive or widely
    shared schema costs its own size, not the size of its expansion (it was inlined to depth 12
    on every request: a 1.6 KB document made each anonymous GET return 8 MB).
    """

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}
        self._names: dict[tuple[str, str], str] = {}
        self._used: set[str] = set()

    def checkpoint(self) -> tuple[dict[tuple[str, str], str], set[str]]:
        return dict(self._names), set(self._used)

    def rollback(self, saved: tuple[dict[tuple[str, str], str], set[str]]) -> None:
        self._names, self._used = saved

    def publish(self, api: str, root: Any, pending: dict[str, Any]) -> Any:
        """``root`` (a stored schema) ready for the document; new components go to ``pending``."""
        todo: list[tuple[str, Any]] = []
        out = self._rewrite(api, root, root, pending, todo, top=True)
        while todo:
            name, target = todo.pop()
            pending[name] = self._rewrite(api, target, root, pending, todo, top=False)
        return out

    def _component(self, api: str, ref: str, pending: dict[str, Any]) -> tuple[str, bool]:
        known = self._names.get((api, ref))
        if known is not None:
            return known, False
        base = f"{api}.{_COMPONENT_CHARS.sub('_', ref.rstrip('/').rsplit('/', 1)[-1]) or 'schema'}"
        name, counter = base, 1
        while name in self._used:
            counter += 1
            name = f"{base}_{counter}"
        self._names[(api, ref)] = name
        self._used.add(name)
        return name, True

    def _rewrite(self, api: str, node: Any, root: Any, pending: dict[str, Any], todo: list[tuple[str, Any]], *, top: bool) -> Any:
        if isinstance(node, list):
            return [self._rewrite(api, item, root, pending, todo, top=False) for item in node]
        if not isinstance(node, Mapping):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if top and key in ("components", "definitions", "$schema"):
                continue  # published as components instead
            if key == "$ref" and isinstance(value, str) and value.startswith("#/"):
                target = _resolve(root, value)
                if target is None:
                    continue  # points at nothing: validation ignores it too
                name, new = self._component(api, value, pending)
                if new:
                    todo.append((name, target))
                out["$ref"] = f"#/components/schemas/{name}"
            else:
                out[key] = self._rewrite(api, value, root, pending, todo, top=False)
        return out


def _resolve(root: Any, ref: str) -> Any:
    target: Any = root
    for part in ref[2:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, Mapping) and key in target:
            target = target[key]
        elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
            target = target[int(key)]
        else:
            return None
    return target


def _bound_parameter(param: Mapping[str, Any], schema: Any) -> dict[str, Any]:
    out = {"name": param["name"], "in": param["in"], "required": bool(param.get("required")) or param["in"] == "path", "schema": schema}
    if param.get("style"):  # OpenAPI 3 documents: the style they declared
        out.update(style=param["style"], explode=bool(param.get("explode")))
    elif isinstance(schema, Mapping) and schema.get("type") == "array" and param["in"] == "query":  # Swagger 2
        style, explode = _STYLES.get(param.get("collectionFormat") or "csv", ("form", False))
        out.update(style=style, explode=explode)
    return out


def _bound_entry(operation: Any, publisher: _Publisher | None, pending: dict[str, Any]) -> dict[str, Any]:
    """One bound operation as its callers see it; without ``publisher`` its schemas are left out."""
    facts = operation.operation
    kind = (operation.binding.get("authentication") or {}).get("type", "none")
    entry: dict[str, Any] = {
        "tags": [f"API {operation.api_name}"],
        "operationId": f"{operation.api_name}.{operation.operation_id}",
        "security": _SECURITY.get(kind, [{}]),
        "parameters": [
            _bound_parameter(p, publisher.publish(operation.api_name, p.get("schema") or {}, pending) if publisher else {})
            for p in facts.get("parameters") or ()
            if p.get("in") in ("path", "query", "header", "cookie")
        ],
        "responses": {
            "default": {"description": "What the bound process returns (docs/api-operations.md, Responses)"},
            **error_responses(400, 401, 403, 404, 413, 415),
        },
    }
    if operation.binding.get("respond") == "async":  # docs/api-operations.md, "Long operations: 202 Accepted"
        entry["responses"]["202"] = {
            "description": "Queued: GET the Location (a signed status URL) after Retry-After seconds for the response",
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}, "Retry-After": {"schema": {"type": "integer"}}},
        }
    signature = operation.binding.get("signature")
    if signature:  # how a caller must sign: the header it sends (the scheme's own text is in the README)
        entry["parameters"].append({"name": signature["header"], "in": "header", "required": True, "schema": {"type": "string"},
                                    "description": f"the {signature['scheme']} signature of the raw body"})  # fmt: skip
        entry["responses"].update(error_responses(409))
    if facts.get("summary"):  # the imported document's own text; never the bound scenario
        entry["summary"] = facts["summary"]
    if publisher is None:
        entry["description"] = "Schemas left out: the published document is limited in size; GET /management/apis/{api} has them"
    body = facts.get("requestBody")
    if body:
        schema = publisher.publish(operation.api_name, body.get("jsonSchema") or {}, pending) if publisher else {}
        types = [t for t in body.get("contentTypes") or () if t] or ["application/json"]
        entry["requestBody"] = {"required": bool(body.get("required")), "content": {t: {"schema": schema if "json" in t else {}} for t in types}}
    return entry


def _bound_paths(bound: Iterable[Any]) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The bound API operations as callers reach them, so the whole surface is described:
    ``(paths, component schemas, operations left out)``, within ``MAX_PUBLISHED_BYTES``."""
    paths: dict[str, Any] = {}
    publisher = _Publisher()
    budget = MAX_PUBLISHED_BYTES
    left_out = 0
    for operation in sorted(bound, key=lambda o: (o.api_name, o.path, o.method)):
        pending: dict[str, Any] = {}
        saved = publisher.checkpoint()
        entry = _bound_entry(operation, publisher, pending)
        cost = len(dumps(entry)) + len(dumps(pending))
        if cost > budget:
            publisher.rollback(saved)
            pending = {}
            entry = _bound_entry(operation, None, pending)
            cost = len(dumps(entry))
            if cost > budget:
                left_out += 1
                continue
        budget -= cost
        publisher.schemas.update(pending)
        paths.setdefault(operation.path, {})[operation.method.lower()] = entry
    return paths, publisher.schemas, left_out


def build_document(base_url: str, bound: Iterable[Any] = ()) -> dict[str, Any]:
    """The document; ``bound`` (``core.apiops.routes.BoundOperation``s) adds the bound API operations."""
    paths = own_paths()
    bound_paths, schemas, left_out = _bound_paths(bound)
    for path, item in bound_paths.items():
        paths.setdefault(path, {}).update(item)
    for item in paths.values():  # any call may carry a URL longer than the platform accepts
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("414", error_responses(414)["414"])
    components = own_components()
    components["schemas"].update(schemas)
    description = (
        "External triggers (IntegrationHub-compatible) and the management API. API operations bound "
        "to scenarios are served at the paths of their own imported documents (GET /management/apis)."
    )
    if left_out:
        description += f" {left_out} bound operation(s) are not described: the document is limited in size."
    return {
        "openapi": "3.1.0",
        "info": {"title": "Junction", "version": "1.0.0", "description": description},
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "paths": paths,
        "components": components,
    }


_PUBLISHED: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_PUBLISHED_LOCK = threading.Lock()


def published_text(table: Any, base_url: str) -> str:
    """The document as JSON text for a route table (``core.apiops.routes.RouteTable``).

    Built once per table, that is once per change of the bound operations (the table is rebuilt
    only when the route version marker changes), not per request. Only ``servers`` depends on
    the request, so it is put in front of the cached text.
    """
    with _PUBLISHED_LOCK:
        text = _PUBLISHED.get(table)
        if text is None:
            document = build_document("", table.operations)
            del document["servers"]
            text = dumps(document)
            _PUBLISHED[table] = text
    servers = dumps([{"url": base_url.rstrip("/") or "/"}])
    return '{"servers":' + servers + "," + text[1:]
