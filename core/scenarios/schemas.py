"""JSON Schemas of the management API's bodies.

One definition serves two purposes: validating what callers send (with messages that name the
offending field) and describing the API in the published OpenAPI document.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from core.kernel.errors import BadRequest

# Names show up in logs, listings and terminals: no control characters (a newline could forge a
# log line).
NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]+$"}
GUID = {"type": "string", "format": "uuid", "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"}

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

TOKEN_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "scopes"],
    "properties": {
        "name": NAME,
        "scopes": {
            "type": "array",
            "minItems": 1,
            "maxItems": 2,
            "uniqueItems": True,
            "items": {"type": "string", "enum": ["trigger", "admin"]},
        },
        "scenarioIds": {"type": "array", "maxItems": 100, "items": GUID},
        "expiresInDays": {"type": "integer", "minimum": 1, "maximum": 3650},
    },
}


@functools.lru_cache(maxsize=256)
def _anchored(pattern: str) -> re.Pattern[str]:
    """A schema pattern whose final ``$`` means the end of the text: in Python ``$`` also matches
    before a trailing newline, so ``^[^\\x00-\\x1f]+$`` would let ``"name\\n"`` through."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _anchored(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.lru_cache(maxsize=16)
def _validator(schema_id: int) -> Any:
    from jsonschema import Draft202012Validator, validators  # imported on first management call

    strict = validators.extend(Draft202012Validator, {"pattern": _pattern})
    return strict(_BY_ID[schema_id])


_BY_ID: dict[int, dict[str, Any]] = {}


def validate(document: Any, schema: dict[str, Any], what: str) -> None:
    """BadRequest naming the first problem's path, e.g. ``scenario.externalTriggers.enabled``."""
    _BY_ID.setdefault(id(schema), schema)
    error = next(iter(sorted(_validator(id(schema)).iter_errors(document), key=lambda e: list(e.path))), None)
    if error is None:
        return
    path = ".".join([what, *(str(p) if not isinstance(p, int) else f"[{p}]" for p in error.path)]).replace(".[", "[")
    message = error.message if len(error.message) < 300 else error.message[:300] + "..."
    raise BadRequest(f"{path}: {message}", "InvalidBody")
