"""Junction's own OpenAPI 3.1 document, served at ``/management/openapi.json``.

Built from the same schemas that validate request bodies, so the document cannot drift from what
the API accepts; a test checks that every route the function app registers is described here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from core import schemas
from core.apikeys import APIKEY_CREATE
from core.apis import BINDING
from core.users import USER_CREATE

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


SCENARIO_ID = _param("scenarioId", "path", schemas.GUID)
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
        "headers": {"X-Run-Id": {"schema": schemas.GUID, "description": "the run's id"}},
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
                "requestBody": {"required": True, **_json(_ref("ScenarioInput"))},
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
                "parameters": [SCENARIO_ID, _param("runId", "path", schemas.GUID)],
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
            "scenarioIds": {"type": ["array", "null"], "items": schemas.GUID},
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
            "Scenario": schemas.SCENARIO_OUT,
            "TokenInput": schemas.TOKEN_CREATE,
            "Binding": BINDING,
            "ApiKeyInput": APIKEY_CREATE,
            "UserInput": USER_CREATE,
            "Token": token_public,
            "CreatedToken": {"allOf": [{"$ref": "#/components/schemas/Token"}, {"type": "object", "properties": {"token": {"type": "string"}}}]},
            "Run": {
                "type": "object",
                "properties": {
                    "id": schemas.GUID,
                    "scenarioId": schemas.GUID,
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


def _inline_refs(node: Any, root: Mapping[str, Any], depth: int = 0) -> Any:
    """A bound operation's body schema with its local ``$ref``s inlined (recursion cut at depth 12).

    Stored schemas carry their definitions at their own ``#/components/...`` pointers, which would
    point into the wrong place once the schema sits inside this document.
    """
    if depth > 12:
        return {}
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, Mapping) else {}
            return _inline_refs(target, root, depth + 1)
        return {k: _inline_refs(v, root, depth + 1) for k, v in node.items() if k not in ("components", "definitions", "$schema")}
    if isinstance(node, list):
        return [_inline_refs(item, root, depth + 1) for item in node]
    return node


def _bound_parameter(param: Mapping[str, Any]) -> dict[str, Any]:
    out = {"name": param["name"], "in": param["in"], "required": bool(param.get("required")) or param["in"] == "path"}
    out["schema"] = _inline_refs(param.get("schema") or {}, param.get("schema") or {})
    if param.get("style"):  # OpenAPI 3 documents: the style they declared
        out.update(style=param["style"], explode=bool(param.get("explode")))
    elif out["schema"].get("type") == "array" and param["in"] == "query":  # Swagger 2
        style, explode = _STYLES.get(param.get("collectionFormat") or "csv", ("form", False))
        out.update(style=style, explode=explode)
    return out


def _bound_paths(bound: Iterable[Any]) -> dict[str, Any]:
    """The bound API operations, as callers reach them (DESIGN 7), so the whole surface is here."""
    paths: dict[str, Any] = {}
    for operation in bound:
        facts = operation.operation
        binding = operation.binding
        kind = (binding.get("authentication") or {}).get("type", "none")
        entry: dict[str, Any] = {
            "tags": [f"API {operation.api_name}"],
            "operationId": f"{operation.api_name}.{operation.operation_id}",
            "summary": facts.get("summary") or f"Bound to scenario {binding.get('scenarioId')}",
            "security": _SECURITY.get(kind, [{}]),
            "parameters": [_bound_parameter(p) for p in facts.get("parameters") or () if p.get("in") in ("path", "query", "header", "cookie")],
            "responses": {
                "default": {"description": "What the bound process returns (DESIGN 7 response mapping)"},
                **_errors(400, 401, 403, 404, 413, 415),
            },
        }
        body = facts.get("requestBody")
        if body:
            schema = _inline_refs(body.get("jsonSchema") or {}, body.get("jsonSchema") or {})
            types = [t for t in body.get("contentTypes") or () if t] or ["application/json"]
            entry["requestBody"] = {"required": bool(body.get("required")), "content": {t: {"schema": schema if "json" in t else {}} for t in types}}
        paths.setdefault(operation.path, {})[operation.method.lower()] = entry
    return paths


def build_document(base_url: str, bound: Iterable[Any] = ()) -> dict[str, Any]:
    """The document; ``bound`` (``core.oproutes.BoundOperation``s) adds the bound API operations."""
    paths = _paths()
    for path, item in _bound_paths(bound).items():
        paths.setdefault(path, {}).update(item)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Junction",
            "version": "1.0.0",
            "description": (
                "External triggers (IntegrationHub-compatible) and the management API. API operations bound "
                "to scenarios are served at the paths of their own imported documents (GET /management/apis)."
            ),
        },
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "paths": paths,
        "components": _components(),
    }
