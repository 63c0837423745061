"""Junction's own routes as OpenAPI: the external triggers and the management API.

The path items and component schemas of ``/management/openapi.json`` (``core.app.openapi`` adds
the bound API operations). Built from the same schemas that validate request bodies, so the
document cannot drift from what the API accepts.
"""

from __future__ import annotations

import copy
from typing import Any

from core.apiops.bindings import BINDING
from core.identity.apikeys import APIKEY_CREATE
from core.identity.tokens import TOKEN_CREATE
from core.identity.users import USER_CREATE
from core.kernel.jsonschema import GUID
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


RATE_LIMIT_HEADERS: dict[str, Any] = {
    name: {"schema": {"type": "string"}, "description": f"{what} (draft-ietf-httpapi-ratelimit-headers-11), when the scenario has a rateLimit"}
    for name, what in (("RateLimit-Policy", "the limit"), ("RateLimit", "what is left of it"))
}


def error_responses(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Malformed request",
        401: "Missing or invalid credentials",
        403: "Not allowed (IpNotAllowed: the caller's address is outside the IP allow-list)",
        404: "Not found",
        409: "Conflict (e.g. operations that could match the same request, a signed request replayed)",
        410: "Gone (an expired status URL)",
        412: "ETag mismatch",
        413: "Body too large",
        414: "URL longer than 4,096 bytes: refused by the Functions host before Junction sees it",
        415: "Unsupported content type",
        429: "Over the rate limit (RateLimited, with Retry-After, RateLimit-Policy and RateLimit) or storage throttled; retry after Retry-After seconds",
        503: "Storage unavailable, or (Accept) the run queue deeper than its bound (RunQueueFull); retry after Retry-After seconds",
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


_NUMBER_OR_NULL = {"type": ["number", "null"]}
HEALTH_DETAILS = {
    "type": "object",
    "required": ["status", "storage", "runQueue", "poisonQueue", "schedules", "signingKeys"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "unhealthy"]},
        "storage": {
            "type": "object",
            "properties": {"reachable": {"type": "boolean"}, "checkedAt": {"type": "string"}, "error": {"type": ["string", "null"]}},
        },
        "runQueue": {
            "type": ["object", "null"],
            "properties": {"depth": {"type": "integer"}, "oldestMessageAgeSeconds": _NUMBER_OR_NULL},
        },
        "poisonQueue": {"type": ["object", "null"], "properties": {"depth": {"type": "integer"}}},
        "schedules": {"type": "object", "properties": {"lastTick": {"type": ["string", "null"]}}},
        "signingKeys": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "enum": ["jwks", "oidc"]},
                    "issuer": {"type": "string"},
                    "keys": {"type": "integer"},
                    "ageSeconds": _NUMBER_OR_NULL,
                },
            },
        },
    },
}
"""What ``GET /management/health`` answers (core/app/health.py)."""


def own_paths() -> dict[str, Any]:
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
        "headers": {
            "X-Run-Id": {"schema": GUID, "description": "the run's id"},
            **RATE_LIMIT_HEADERS,
        },
    }
    return {
        "/ExternalData/Accept/{scenarioId}": {
            "get": {
                **copy.deepcopy(accept_common),
                "operationId": "acceptGet",
                "summary": "Start a run; the scenario's source is polled",
                "responses": {"200": ok_run, **error_responses(400, 401, 403, 404, 409, 429, 503)},
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
                "responses": {"200": ok_run, **error_responses(400, 401, 403, 404, 409, 413, 415, 429, 503)},
            },
        },
        "/ExternalData/RunStatus/{token}": {
            "get": {
                "tags": ["APIs"],
                "operationId": "getRunStatus",
                "summary": "The outcome of an API call bound with respond async (the Location of its 202)",
                "description": "The signed token is the credential: no other is needed. 202 while the run has nothing to "
                "answer; then the response the process produced, mapped as for a synchronous call.",
                "security": [{}],
                "parameters": [_param("token", "path", {"type": "string", "maxLength": 1024})],
                "responses": {
                    "200": {"description": "The process's response (its own status, headers and body when it says them)"},
                    "202": {
                        "description": "Queued or running; ask again after Retry-After seconds",
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}, "X-Run-Id": {"schema": GUID}},
                    },
                    **error_responses(404, 410, 503),
                },
            }
        },
        "/ExternalData/GetCacheData/{scenarioId}": {
            "get": {
                "tags": ["External triggers"],
                "operationId": "getCacheData",
                "summary": "Read a value the scenario cached",
                "security": trigger_security,
                "parameters": [SCENARIO_ID, KEY_JSON],
                "responses": {
                    "200": {"description": "The cached JSON value", "headers": RATE_LIMIT_HEADERS, **_json({})},
                    **error_responses(400, 401, 403, 404, 429, 503),
                },
            }
        },
        "/management/scenarios": {
            "get": {
                "tags": ["Scenarios"], "operationId": "listScenarios", "security": ADMIN, "parameters": PAGING,
                "responses": {"200": {"description": "Scenarios", **_json(_list_of(_ref("Scenario")))}, **error_responses(400, 401, 403, 503)},
            },
            "post": {
                "tags": ["Scenarios"], "operationId": "createScenario", "security": ADMIN,
                "requestBody": {"required": True, **_json(_ref("ScenarioInput"))},
                "responses": {"201": {"description": "Created", **_json(_ref("Scenario"))}, **error_responses(400, 401, 403, 413, 415, 503)},
            },
        },
        "/management/scenarios/{scenarioId}": {
            "parameters": [SCENARIO_ID],
            "get": {
                "tags": ["Scenarios"], "operationId": "getScenario", "security": ADMIN,
                "responses": {"200": {"description": "The scenario", **_json(_ref("Scenario"))}, **error_responses(400, 401, 403, 404, 503)},
            },
            "put": {
                "tags": ["Scenarios"], "operationId": "replaceScenario", "security": ADMIN, "parameters": [IF_MATCH],
                "requestBody": {"required": True, **_json(_ref("ScenarioReplacement"))},
                "responses": {"200": {"description": "Replaced", **_json(_ref("Scenario"))}, **error_responses(400, 401, 403, 404, 412, 413, 415, 503)},
            },
            "patch": {
                "tags": ["Scenarios"], "operationId": "patchScenario", "security": ADMIN, "parameters": [IF_MATCH],
                "requestBody": {"required": True, "content": {"application/merge-patch+json": {"schema": {"type": "object"}}, "application/json": {"schema": {"type": "object"}}}},
                "responses": {"200": {"description": "Patched", **_json(_ref("Scenario"))}, **error_responses(400, 401, 403, 404, 412, 413, 415, 503)},
            },
            "delete": {
                "tags": ["Scenarios"], "operationId": "deleteScenario", "security": ADMIN, "parameters": [IF_MATCH],
                "responses": {"204": {"description": "Deleted"}, **error_responses(400, 401, 403, 404, 412, 503)},
            },
        },
        "/management/scenarios/{scenarioId}/cache": {
            "parameters": [SCENARIO_ID, KEY_JSON],
            "put": {
                "tags": ["Cache"], "operationId": "putCacheEntry", "security": ADMIN,
                "requestBody": {"required": True, **_json({})},
                "responses": {"204": {"description": "Written"}, **error_responses(400, 401, 403, 404, 413, 415, 503)},
            },
            "delete": {
                "tags": ["Cache"], "operationId": "deleteCacheEntry", "security": ADMIN,
                "responses": {"204": {"description": "Removed"}, **error_responses(400, 401, 403, 404, 503)},
            },
        },
        "/management/scenarios/{scenarioId}/runs": {
            "get": {
                "tags": ["Runs"], "operationId": "listRuns", "security": ADMIN, "parameters": [SCENARIO_ID, *PAGING],
                "responses": {"200": {"description": "Runs, newest first", **_json(_list_of(_ref("Run")))}, **error_responses(400, 401, 403, 503)},
            }
        },
        "/management/scenarios/{scenarioId}/runs/{runId}": {
            "get": {
                "tags": ["Runs"], "operationId": "getRun", "security": ADMIN,
                "parameters": [SCENARIO_ID, _param("runId", "path", GUID)],
                "responses": {"200": {"description": "The run with its output", **_json(_ref("Run"))}, **error_responses(400, 401, 403, 404, 503)},
            }
        },
        "/management/tokens": {
            "get": {
                "tags": ["Tokens"], "operationId": "listTokens", "security": ADMIN,
                "responses": {"200": {"description": "Tokens (no secrets)", **_json(_list_of(_ref("Token")))}, **error_responses(401, 403, 503)},
            },
            "post": {
                "tags": ["Tokens"], "operationId": "createToken", "security": ADMIN,
                "requestBody": {"required": True, **_json(_ref("TokenInput"))},
                "responses": {"201": {"description": "Created; the secret is shown only here", **_json(_ref("CreatedToken"))}, **error_responses(400, 401, 403, 413, 415, 503)},
            },
        },
        "/management/tokens/{tokenId}": {
            "delete": {
                "tags": ["Tokens"], "operationId": "revokeToken", "security": ADMIN,
                "parameters": [_param("tokenId", "path", {"type": "string", "pattern": "^[0-9a-f]{32}$"})],
                "responses": {"204": {"description": "Revoked"}, **error_responses(400, 401, 403, 404, 503)},
            }
        },
        "/management/apis": {
            "get": {
                "tags": ["APIs"], "operationId": "listApis", "security": ADMIN,
                "responses": {"200": {"description": "Imported APIs with their operations", **_json(_list_of({"type": "object"}))}, **error_responses(401, 403, 503)},
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
                    **error_responses(400, 401, 403, 409, 412, 413, 415, 503),
                },
            },
            "get": {
                "tags": ["APIs"], "operationId": "getApi", "security": ADMIN,
                "responses": {"200": {"description": "The API: operations with method, full path and binding", **_json({"type": "object"})}, **error_responses(400, 401, 403, 404, 503)},
            },
            "delete": {
                "tags": ["APIs"], "operationId": "deleteApi", "security": ADMIN, "parameters": [IF_MATCH],
                "responses": {"204": {"description": "Removed with its bindings"}, **error_responses(400, 401, 403, 404, 412, 503)},
            },
        },
        "/management/apis/{apiName}/operations/{operationId}": {
            "parameters": [API_NAME, _param("operationId", "path", {"type": "string", "maxLength": 128})],
            "put": {
                "tags": ["APIs"], "operationId": "bindOperation", "security": ADMIN,
                "requestBody": {"required": True, **_json(_ref("Binding"))},
                "responses": {"200": {"description": "Bound", **_json({"type": "object"})}, **error_responses(400, 401, 403, 404, 409, 413, 415, 503)},
            },
            "get": {
                "tags": ["APIs"], "operationId": "getBinding", "security": ADMIN,
                "responses": {"200": {"description": "The operation and its binding", **_json({"type": "object"})}, **error_responses(400, 401, 403, 404, 503)},
            },
            "delete": {
                "tags": ["APIs"], "operationId": "unbindOperation", "security": ADMIN,
                "responses": {"204": {"description": "Unbound"}, **error_responses(400, 401, 403, 404, 503)},
            },
        },
        "/management/apikeys": {
            "get": {
                "tags": ["API keys"], "operationId": "listApiKeys", "security": ADMIN,
                "responses": {"200": {"description": "API keys (no secrets)", **_json(_list_of({"type": "object"}))}, **error_responses(401, 403, 503)},
            },
            "post": {
                "tags": ["API keys"], "operationId": "createApiKey", "security": ADMIN,
                "requestBody": {"required": True, **_json(_ref("ApiKeyInput"))},
                "responses": {"201": {"description": "Created; the key is shown only here", **_json({"type": "object"})}, **error_responses(400, 401, 403, 413, 415, 503)},
            },
        },
        "/management/apikeys/{apikeyId}": {
            "delete": {
                "tags": ["API keys"], "operationId": "deleteApiKey", "security": ADMIN,
                "parameters": [_param("apikeyId", "path", {"type": "string", "pattern": "^[0-9a-f]{32}$"})],
                "responses": {"204": {"description": "Deleted"}, **error_responses(400, 401, 403, 404, 503)},
            }
        },
        "/management/users": {
            "get": {
                "tags": ["Users"], "operationId": "listUsers", "security": ADMIN,
                "responses": {"200": {"description": "Local users for Basic authentication", **_json(_list_of({"type": "object"}))}, **error_responses(401, 403, 503)},
            },
            "post": {
                "tags": ["Users"], "operationId": "createUser", "security": ADMIN,
                "requestBody": {"required": True, **_json(_ref("UserInput"))},
                "responses": {"201": {"description": "Created", **_json({"type": "object"})}, **error_responses(400, 401, 403, 409, 413, 415, 503)},
            },
        },
        "/management/users/{username}": {
            "delete": {
                "tags": ["Users"], "operationId": "deleteUser", "security": ADMIN,
                "parameters": [_param("username", "path", {"type": "string", "maxLength": 256})],
                "responses": {"204": {"description": "Deleted"}, **error_responses(400, 401, 403, 404, 503)},
            }
        },
        "/health": {
            "get": {
                "tags": ["Meta"], "operationId": "getHealth", "security": [{}],
                "summary": "Is this instance healthy? Answered from a storage check cached for 30 s",
                "responses": {"200": {"description": "Healthy", **_json(_ref("Health"))}, **error_responses(503)},
            }
        },
        "/management/health": {
            "get": {
                "tags": ["Meta"], "operationId": "getHealthDetails", "security": ADMIN,
                "summary": "Storage, queues, the last schedule tick and this instance's signing-key caches, read now",
                "responses": {"200": {"description": "Details", **_json(_ref("HealthDetails"))}, **error_responses(401, 403, 503)},
            }
        },
        "/management/openapi.json": {
            "get": {
                "tags": ["Meta"], "operationId": "getOpenApiDocument", "security": [{}],
                "responses": {"200": {"description": "This document", **_json({"type": "object"})}},
            }
        },
    }  # fmt: skip


def own_components() -> dict[str, Any]:
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
            "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["ok"]}}},
            "HealthDetails": HEALTH_DETAILS,
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
