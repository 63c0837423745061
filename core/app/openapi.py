"""Junction's own OpenAPI 3.1 document, served at ``/management/openapi.json``.

Built from the same schemas that validate request bodies, so the document cannot drift from what
the API accepts; a test checks that every route the function app registers is described here.
"""

from __future__ import annotations

import copy
import re
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from core.apiops.bindings import BINDING
from core.identity.apikeys import APIKEY_CREATE
from core.identity.tokens import TOKEN_CREATE
from core.identity.users import USER_CREATE
from core.kernel.jsonschema import GUID
from core.kernel.jsonvalue import dumps
from core.scenarios import schemas

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Malformed request",
        401: "Missing or invalid credentials",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict (e.g. operations that could match the same request)",
        412: "ETag mismatch",
        413: "Body too large",
        414: "URL longer than 4,096 bytes: refused by the Functions host before Junction sees it",
        415: "Unsupported content type",
        503: "Storage unavailable; retry after Retry-After seconds",
    }
    return {
        str(s): {"description": text[s], "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for s in statuses
    }


def _param(name: str, where: str, schema: dict[str, Any], *, required: bool = False, description: str = "") -> dict[str, Any]:
    out = {"name": name, "in": where, "required": required or where == "path", "schema": schema}
    if description:
        out["description"] = description
    return out


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


SCENARIO_ID = _param("scenarioId", "path", GUID)
IF_MATCH = _param("If-Match", "header", {"type": "string"}, description="ETag from a read; '*' or absent is unconditional")
PAGING = [
    _param("top", "query", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}),
    _param("skiptoken", "query", {"type": "string", "maxLength": 2048}),
]
KEY_JSON = {
    "name": "keyJson",
    "in": "query",
    "required": True,
    "description": "the cache key: any JSON value, at most 2048 characters",
    "content": {"application/json": {"schema": {}}},
}
ADMIN = [{"bearer": []}]
API_NAME = _param("apiName", "path", {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"})


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["value"],
        "properties": {"value": {"type": "array", "items": item}, "nextLink": {"type": ["string", "null"]}},
    }


def _paths() -> dict[str, Any]:
    trigger_security = [{}, {"bearer": []}]
    accept_common = {
        "tags": ["External triggers"],
        "security": trigger_security,
        "parameters": [
            SCENARIO_ID,
            _param("Idempotency-Key", "header", {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"}),
        ],
    }
    ok_run = {
        "description": "Run queued (empty body)",
        "headers": {"X-Run-Id": {"schema": GUID, "description": "the run's id"}},
    }
    return {
        "/ExternalData/Accept/{scenarioId}": {
            "get": {
                **copy.deepcopy(accept_common),
                "operationId": "acceptGet",
                "summary": "Start a run; the scenario's source is polled",
                "responses": {"200": ok_run, **_errors(400, 401, 403, 404, 503)},
            },
            "post": {
                **copy.deepcopy(accept_common),
                "operationId": "acceptPost",
                "summary": "Start a run with the body as data[0].Body",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {}},
                        "application/xml": {"schema": {"type": "string"}},
                        "text/xml": {"schema": {"type": "string"}},
                        "application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": {"type": "string"}}},
                    }
                },
                "responses": {"200": ok_run, **_errors(400, 401, 403, 404, 413, 415, 503)},
            },
        },
        "/ExternalData/GetCacheData/{scenarioId}": {
            "get": {
                "tags": ["External triggers"],
                "operationId": "getCacheData",
                "summary": "Read a value the scenario cached",
                "security": trigger_security,
                "parameters": [SCENARIO_ID, KEY_JSON],
                "responses": {"200": {"description": "The cached JSON value", **_json({})}, **_errors(400, 401, 403, 404, 503)},
            }
        },
        "/management/scenarios": {
            "get": {
                "tags": ["Scenarios"], "operationId": "listScenarios", "security": ADMIN, "parameters": PAGING,
                "responses": {"200": {"description": "Scenarios", **_json(_list_of(_ref("Scenario")))}, **_errors(400, 401, 403, 503)},
            },
            "post": {
                "tags": ["Scenarios"], "operationId": "createScenario", "security": ADMIN,
                "requestBody": {"required": True, **_json(_ref("ScenarioInput"))},
                "responses": {"201": {"description": "Created", **_json(_ref("Scenario"))}, **_errors(400, 401, 403, 413, 415, 503)},
            },
        },
        "/management/scenarios/{scenarioId}": {
            "parameters": [SCENARIO_ID],
            "get": {
                "tags": ["Scenarios"], "operationId": "getScenario", "security": ADMIN,
                "responses": {"200": {"description": "The scenario", **_json(_ref("Scenario"))}, **_errors(400, 401, 403, 404, 503)},
            },
            "put": {
                "tags": ["Scenarios"], "operationId": "replaceScenario", "security": ADMIN, "parameters": [IF_MATCH],
                "requestBody": {"required": True, **_json(_ref("ScenarioReplacement"))},
                "responses": {"200": {"description": "Replaced", **_json(_ref("Scenario"))}, **_errors(400, 401, 403, 404, 412, 413, 415, 503)},
            },
            "patch": {
                "tags": ["Scenarios"], "operationId": "patchScenario", "security": ADMIN, "parameters": [IF_MATCH],
                "requestBody": {"required": True, "content": {"application/merge-patch+json": {"schema": {"type": "object"}}, "application/json": {"schema": {"type": "object"}}}},
                "responses": {"200": {"description": "Patched", **_json(_ref("Scenario"))}, **_errors(400, 401, 403, 404, 412, 413, 415, 503)},
            },
            "delete": {
                "tags": ["Scenarios"], "operationId": "deleteScenario", "security": ADMIN, "parameters": [IF_MATCH],
                "responses": {"204": {"description": "Deleted"}, **_errors(400, 401, 403, 404, 412, 503)},
            },
        },
        "/management/scenarios/{scenarioId}/cache": {
            "parameters": [SCENARIO_ID, KEY_JSON],
            "put": {
                "tags": ["Cache"], "operationId": "putCacheEntry", "security": ADMIN,
                "requestBody": {"required": True, **_json({})},
                "responses": {"204": {"description": "Written"}, **_errors(400, 401, 403, 404, 413, 415, 503)},
            },
            "delete": {
                "tags": ["Cache"], "operationId": "deleteCacheEntry", "security": ADMIN,
                "responses": {"204": {"description": "Removed"}, **_errors(400, 401, 403, 404, 503)},
            },
        },
        "/management/scenarios/{scenarioId}/runs": {
            "get": {
                "tags": ["Runs"], "operationId": "listRuns", "security": ADMIN, "parameters": [SCENARIO_ID, *PAGING],
                "responses": {"200": {"description": "Runs, newest first", **_json(_list_of(_ref("Run")))}, **_errors(400, 401, 403, 503)},
            }
        },
        "/management/scenarios/{scenarioId}/runs/{runId}": {
            "get": {
                "tags": ["Runs"], "operationId": "getRun", "security": ADMIN,
                "parameters": [SCENARIO_ID, _param("runId", "path", GUID)],
                "responses": {"200": {"description": "The run with its output", **_json(_ref("Run"))}, **_errors(400, 401, 403, 404, 503)},
            }
        },
        "/management/tokens": {
            "get": {
                "tags": ["Tokens"], "operationId": "listTokens", "security": ADMIN,
                "responses": {"200": {"description": "Tokens (no secrets)", **_json(_list_of(_ref("Token")))}, **_errors(401, 403, 503)},
            },
            "post": {
                "tags": ["Tokens"], "operationId": "createToken", "security": ADMIN,
                "requestBody": {"required": True, **_json(_ref("TokenInput"))},
                "responses": {"201": {"description": "Created; the secret is shown only here", **_json(_ref("CreatedToken"))}, **_errors(400, 401, 403, 413, 415, 503)},
            },
        },
        "/management/tokens/{tokenId}": {
            "delete": {
                "tags": ["Tokens"], "operationId": "revokeToken", "security": ADMIN,
                "parameters": [_param("tokenId", "path", {"type": "string", "pattern": "^[0-9a-f]{32}$"})],
                "responses": {"204": {"description": "Revoked"}, **_errors(400, 401, 403, 404, 503)},
            }
        },
        "/management/apis": {
            "get": {
                "tags": ["APIs"], "operationId": "listApis", "security": ADMIN,
                "responses": {"200": {"description": "Imported APIs with their operations", **_json(_list_of({"type": "object"}))}, **_errors(401, 403, 503)},
            }
        },
        "/management/apis/{apiName}": {
            "parameters": [API_NAME],
            "put": {
                "tags": ["APIs"], "operationId": "importApi", "security": ADMIN, "parameters": [IF_MATCH],
                "summary": "Import or re-import a Swagger 2.0 / OpenAPI 3.0 / 3.1 document (JSON or YAML)",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "application/yaml": {"schema": {"type": "string"}},
                    "application/x-yaml": {"schema": {"type": "string"}},
                    "text/yaml": {"schema": {"type": "string"}},
                }},
                "responses": {
                    "200": {"description": "Re-imported", **_json({"type": "object"})},
                    "201": {"description": "Imported", **_json({"type": "object"})},
                    **_errors(400, 401, 403, 409, 412, 413, 415, 503),
                },
            },
            "get": {
                "tags": ["APIs"], "operationId": "getApi", "security": ADMIN,
                "responses": {"200": {"description": "The API: operations with method, full path and binding", **_json({"type": "object"})}, **_errors(400, 401, 403, 404, 503)},
            },
            "delete": {
                "tags": ["APIs"], "operationId": "deleteApi", "security": ADMIN, "parameters": [IF_MATCH],
                "responses": {"204": {"description": "Removed with its bindings"}, **_errors(400, 401, 403, 404, 412, 503)},
            },
        },
        "/management/apis/{apiName}/operations/{operationId}": {
            "parameters": [API_NAME, _param("operationId", "path", {"type": "string", "maxLength": 128})],
            "put": {
                "tags": ["APIs"], "operationId": "bindOperation", "security": ADMIN,
                "requestBody": {"required": True, **_json(_ref("Binding"))},
                "responses": {"200": {"description": "Bound", **_json({"type": "object"})}, **_errors(400, 401, 403, 404, 409, 413, 415, 503)},
            },
            "get": {
                "tags": ["APIs"], "operationId": "getBinding", "security": ADMIN,
                "responses": {"200": {"description": "The operation and its binding", **_json({"type": "object"})}, **_errors(400, 401, 403, 404, 503)},
            },
            "delete": {
                "tags": ["APIs"], "operationId": "unbindOperation", "security": ADMIN,
                "responses": {"204": {"description": "Unbound"}, **_errors(400, 401, 403, 404, 503)},
            },
        },
        "/management/apikeys": {
            "get": {
                "tags": ["API keys"], "operationId": "listApiKeys", "security": ADMIN,
                "responses": {"200": {"description": "API keys (no secrets)", **_json(_list_of({"type": "object"}))}, **_errors(401, 403, 503)},
            },
            "post": {
                "tags": ["API keys"], "operationId": "createApiKey", "security": ADMIN,
                "requestBody": {"required": True, **_json(_ref("ApiKeyInput"))},
                "responses": {"201": {"description": "Created; the key is shown only here", **_json({"type": "object"})}, **_errors(400, 401, 403, 413, 415, 503)},
            },
        },
        "/management/apikeys/{apikeyId}": {
            "delete": {
                "tags": ["API keys"], "operationId": "deleteApiKey", "security": ADMIN,
                "parameters": [_param("apikeyId", "path", {"type": "string", "pattern": "^[0-9a-f]{32}$"})],
                "responses": {"204": {"description": "Deleted"}, **_errors(400, 401, 403, 404, 503)},
            }
        },
        "/management/users": {
            "get": {
                "tags": ["Users"], "operationId": "listUsers", "security": ADMIN,
                "responses": {"200": {"description": "Local users for Basic authentication", **_json(_list_of({"type": "object"}))}, **_errors(401, 403, 503)},
            },
            "post": {
                "tags": ["Users"], "operationId": "createUser", "security": ADMIN,
                "requestBody": {"required": True, **_json(_ref("UserInput"))},
                "responses": {"201": {"description": "Created", **_json({"type": "object"})}, **_errors(400, 401, 403, 409, 413, 415, 503)},
            },
        },
        "/management/users/{username}": {
            "delete": {
                "tags": ["Users"], "operationId": "deleteUser", "security": ADMIN,
                "parameters": [_param("username", "path", {"type": "string", "maxLength": 256})],
                "responses": {"204": {"description": "Deleted"}, **_errors(400, 401, 403, 404, 503)},
            }
        },
        "/management/openapi.json": {
            "get": {
                "tags": ["Meta"], "operationId": "getOpenApiDocument", "security": [{}],
                "responses": {"200": {"description": "This document", **_json({"type": "object"})}},
            }
        },
    }  # fmt: skip


def _components() -> dict[str, Any]:
    token_public = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "scenarioIds": {"type": ["array", "null"], "items": GUID},
            "createdAt": {"type": "string"},
            "expiresAt": {"type": ["string", "null"]},
        },
    }
    return {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A personal access token (jct_...) or an Azure AD access token",
            },
            "basic": {"type": "http", "scheme": "basic", "description": "A local user (bound API operations)"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key", "description": "An API key (bound API operations)"},
            "clientCertificate": {"type": "mutualTLS", "description": "A client certificate, forwarded by App Service in X-ARR-ClientCert"},
        },
        "schemas": {
            "Error": ERROR,
            "ScenarioInput": schemas.SCENARIO,
            "ScenarioReplacement": schemas.SCENARIO_REPLACE,
            "Scenario": schemas.SCENARIO_OUT,
            "TokenInput": TOKEN_CREATE,
            "Binding": BINDING,
            "ApiKeyInput": APIKEY_CREATE,
            "UserInput": USER_CREATE,
            "Token": token_public,
            "CreatedToken": {"allOf": [{"$ref": "#/components/schemas/Token"}, {"type": "object", "properties": {"token": {"type": "string"}}}]},
            "Run": {
                "type": "object",
                "properties": {
                    "id": GUID,
                    "scenarioId": GUID,
                    "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
                    "createdAt": {"type": "string"},
                    "startedAt": {"type": ["string", "null"]},
                    "endedAt": {"type": ["string", "null"]},
                    "attempts": {"type": "integer"},
                    "trigger": {"type": "object"},
                    "error": {"type": ["string", "null"]},
                    "failedStep": {"type": ["string", "null"]},
                    "output": {},
                },
            },
        },
    }


_STYLES = {"csv": ("form", False), "ssv": ("spaceDelimited", False), "pipes": ("pipeDelimited", False), "multi": ("form", True)}
_SECURITY = {"none": [{}], "basic": [{"basic": []}], "apiKey": [{"apiKey": []}], "oauth2": [{"bearer": []}], "certificate": [{"clientCertificate": []}]}


MAX_PUBLISHED_BYTES = 1024 * 1024
"""How much the bound API operations may add to the document (their entries and schemas)."""
_COMPONENT_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class _Publisher:
    """The bound operations' schemas with their ``$ref``s kept as references.

    A stored body schema carries the definitions it uses at their original pointers
    (``#/components/schemas/Pet``, ``#/definitions/Pet``, see ``core.apiops.bindings.self_contained_schema``).
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
            **_errors(400, 401, 403, 404, 413, 415),
        },
    }
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
    paths = _paths()
    bound_paths, schemas, left_out = _bound_paths(bound)
    for path, item in bound_paths.items():
        paths.setdefault(path, {}).update(item)
    for item in paths.values():  # any call may carry a URL longer than the platform accepts
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("414", _errors(414)["414"])
    components = _components()
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
