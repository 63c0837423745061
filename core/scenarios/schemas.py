"""JSON Schemas of a scenario as the management API takes and returns it.

One definition serves two purposes: validating what callers send (``core.kernel.jsonschema``,
with messages that name the offending field) and describing the API in the published OpenAPI
document (``core.app.openapi``).
"""

from __future__ import annotations

from typing import Any

from core.identity.signatures import SIGNATURE
from core.kernel.jsonschema import GUID, NAME
from core.traffic.addresses import IP_ALLOW_LIST
from core.traffic.ratelimit import RATE_LIMIT

STEP: dict[str, Any] = {
    "type": "object",
    "description": "A process step; its other fields depend on its type (see the README).",
    "required": ["type"],
    "properties": {
        "type": {
            "type": "string",
            "enum": ["transform", "decision", "cache", "http", "return", "intermediateReturn", "throw"],
        },
        "id": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
    },
    "maxProperties": 16,
}

SCHEDULE = {
    "type": "string",
    "maxLength": 200,
    "description": "Six-field NCRONTAB (second minute hour day month day-of-week), UTC, as Azure Functions timers use",
    "examples": ["0 */5 * * * *"],
}

EXTERNAL_TRIGGERS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "enabled": {"type": "boolean", "default": False},
        "allowAnonymous": {"type": "boolean", "default": False},
        "ipAllowList": IP_ALLOW_LIST,
        "rateLimit": RATE_LIMIT,
        "signature": SIGNATURE,
    },
}

SOURCE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type", "url"],
    "properties": {
        "type": {"type": "string", "enum": ["http"]},
        "method": {"type": "string", "enum": ["GET", "POST"], "default": "GET"},
        "url": {"type": "string", "format": "uri", "pattern": "^https?://", "maxLength": 2048},
        "headers": {
            "type": "object",
            "maxProperties": 50,
            "additionalProperties": {"type": "string", "maxLength": 4096},
        },
    },
}

SCENARIO: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "process"],
    "properties": {
        "name": NAME,
        "description": {"type": "string", "maxLength": 4000},
        "externalTriggers": EXTERNAL_TRIGGERS,
        "source": SOURCE,
        "schedule": SCHEDULE,
        "process": {
            "type": "object",
            "additionalProperties": False,
            "required": ["steps"],
            "properties": {"steps": {"type": "array", "maxItems": 200, "items": STEP}},
        },
    },
}

SCENARIO_OUT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "externalTriggers", "process", "etag"],
    "properties": {
        **SCENARIO["properties"],
        "id": GUID,
        "etag": {"type": "string"},
        "createdAt": {"type": ["string", "null"], "format": "date-time"},
        "updatedAt": {"type": ["string", "null"], "format": "date-time"},
        "triggerUrls": {
            "type": "object",
            "properties": {"get": {"type": "string"}, "post": {"type": "string"}, "cache": {"type": "string"}},
        },
    },
}

# PUT takes a scenario as GET returned it (GET, edit, PUT): the fields GET adds are accepted when
# unchanged and ignored (core.scenarios.repository._check_read_only), so the published document allows them.
SCENARIO_REPLACE: dict[str, Any] = {
    **SCENARIO,
    "properties": {
        **SCENARIO["properties"],
        **{
            name: {**SCENARIO_OUT["properties"][name], "readOnly": True, "description": "as GET returned it; a changed value is refused"}
            for name in ("id", "etag", "createdAt", "updatedAt", "triggerUrls")
        },
    },
}


