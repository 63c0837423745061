"""Strict JSON Schema validation of request bodies, with messages that name the offending field.

The schemas themselves live with what they describe (``core.scenarios.schemas``,
``core.identity.tokens.TOKEN_CREATE``...) and appear in the published OpenAPI document as they
are; the fragments every body uses (``NAME``, ``GUID``) live here.
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


@functools.lru_cache(maxsize=256)
def _anchored(pattern: str) -> re.Pattern[str]:
    """A schema pattern whose final ``$`` means the end of the text: in Python ``$`` also matches
    before a trailing newline, so ``^[^\\x00-\\x1f]+$`` would let ``"name\\n"`` through."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    from jsonschema.exceptions import ValidationError  # cold start: loaded by _validator first

    if validator.is_type(instance, "string") and not _anchored(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.lru_cache(maxsize=16)
def _validator(schema_id: int) -> Any:
    from jsonschema import Draft202012Validator, validators  # cold start: imported on first management call

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
