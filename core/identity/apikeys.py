"""API keys for API-bound operations: ``X-Api-Key`` plus a ruleset of paths and methods.

As in Frends, a key alone is not enough: its ruleset must allow the request's method and path.

- A key looks like ``jak_<32 hex id><43 url-safe characters>`` (256 random bits). The id lets
  Junction find the record with one point read; only the key's SHA-256 is stored, compared in
  constant time (a fast hash is enough for a random 256-bit secret; scrypt is for passwords).
- A ruleset is a list of ``{path, methods}``. In a path pattern ``*`` is exactly one segment and
  ``**`` any number of segments (including none); every other segment is literal and compared
  exactly, case-sensitively. ``methods`` is a list of methods or ``"*"``/``["*"]``.
- Patterns are matched against the *normalised* request path: split on ``/``, percent-decoded
  per segment, with dot segments and NUL refused (``core.web.paths.split_path``). Matching is
  segment by segment, so ``/api/a`` never matches ``/api/ab`` and ``/api/a/%2e%2e/b`` never
  reaches ``/api/b``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.kernel import clock
from core.kernel.errors import BadRequest, Forbidden, NotFound, Unauthorized
from core.kernel.jsonschema import NAME, validate
from core.kernel.jsonvalue import dumps, parse_json
from core.store import tables
from core.store.errors import EntityMissing
from core.store.storage import Storage
from core.web.paths import METHODS, split_path

logger = logging.getLogger(__name__)

PARTITION = "apikey"
PREFIX = "jak_"
HEADER = "x-api-key"
_KEY = re.compile(r"jak_([0-9a-f]{32})([A-Za-z0-9_-]{43})")
_DUMMY_HASH = hashlib.sha256(b"junction-no-such-api-key").hexdigest()

APIKEY_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "ruleset"],
    "properties": {
        "name": NAME,
        "ruleset": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["path"],
                "properties": {
                    "path": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 1024,
                        # segments of one or more characters, none of them . or ..
                        "pattern": "^(/(?!\\.\\.?(?:/|$))[^/]+)+/?$|^/$",
                    },
                    "methods": {
                        "oneOf": [
                            {"type": "string", "enum": ["*"]},
                            {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": len(METHODS),
                                "items": {"type": "string", "enum": ["*", *METHODS, *(m.lower() for m in METHODS)]},
                            },
                        ]
                    },
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Rule:
    segments: tuple[str, ...]
    methods: frozenset[str] | None  # None = every method

    def allows(self, method: str, path: Sequence[str]) -> bool:
        return (self.methods is None or method in self.methods) and glob_match(self.segments, path)


def parse_pattern(pattern: str) -> tuple[str, ...]:
    """Segments of a ruleset path pattern; BadRequest for dot segments or empty segments."""
    if not pattern.startswith("/"):
        raise BadRequest("ruleset paths start with '/'", "InvalidRuleset")
    parts = pattern[1:].split("/")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if parts == [""]:
        return ()
    for part in parts:
        if part in ("", ".", "..") or "\x00" in part:
            raise BadRequest(f"ruleset path {pattern[:100]!r} has an empty or dot segment", "InvalidRuleset")
        if "*" in part and part not in ("*", "**"):
            raise BadRequest(f"ruleset path {pattern[:100]!r}: '*' and '**' must be whole segments", "InvalidRuleset")
    return tuple(parts)


def glob_match(pattern: Sequence[str], path: Sequence[str]) -> bool:
    """Segment-wise match: ``*`` one segment, ``**`` zero or more, anything else exactly."""
    # Dynamic programming over (pattern index, path index): linear in their product, no
    # exponential backtracking whatever the number of '**'.
    reachable = {0}
    for part in pattern:
        nxt: set[int] = set()
        for j in reachable:
            if part == "**":
                nxt.update(range(j, len(path) + 1))
            elif j < len(path) and (part == "*" or part == path[j]):
                nxt.add(j + 1)
        if not nxt:
            return False
        reachable = nxt
    return len(path) in reachable


def _rules(ruleset: Sequence[Mapping[str, Any]]) -> list[Rule]:
    rules = []
    for item in ruleset:
        methods = item.get("methods", "*")
        if methods == "*" or (isinstance(methods, list) and "*" in methods):
            allowed = None
        else:
            allowed = frozenset(m.upper() for m in methods)
        rules.append(Rule(parse_pattern(item["path"]), allowed))
    return rules


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def create_apikey(storage: Storage, body: Any) -> dict[str, Any]:
    """Create a key; ``{id, name, key, ruleset}`` — the key appears in this answer only."""
    validate(body, APIKEY_CREATE, "apikey")
    ruleset = [
        {"path": item["path"], "methods": "*" if item.get("methods", "*") in ("*", ["*"]) else sorted({m.upper() for m in item["methods"]})}
        for item in body["ruleset"]
    ]
    _rules(ruleset)  # refuse bad patterns before anything is stored
    key_id = secrets.token_hex(16)
    key = f"{PREFIX}{key_id}{secrets.token_urlsafe(32)}"
    created = clock.now_iso()
    plain: dict[str, Any] = {
        "PartitionKey": PARTITION,
        "RowKey": key_id,
        "Name": body["name"],
        "Hash": _hash(key),
        "CreatedAt": created,
    }
    entity = storage.pack_entity(plain, {"Ruleset": dumps(ruleset).encode()}, lambda _: f"apikeys/{key_id}/ruleset.json")
    storage.table(tables.APIKEYS).create_entity(entity)
    logger.info("created API key %s (%s)", key_id, body["name"])
    return {"id": key_id, "name": body["name"], "key": key, "ruleset": ruleset, "createdAt": created}


def _public(storage: Storage, entity: Mapping[str, Any]) -> dict[str, Any]:
    raw = storage.unpack("Ruleset", entity)
    return {
        "id": entity["RowKey"],
        "name": entity.get("Name"),
        "ruleset": parse_json(raw, what="stored ruleset") if raw else [],
        "createdAt": entity.get("CreatedAt"),
    }


def list_apikeys(storage: Storage) -> list[dict[str, Any]]:
    """Every key without its secret or hash."""
    entities = storage.table(tables.APIKEYS).query_entities("PartitionKey eq @pk", parameters={"pk": PARTITION})
    return [_public(storage, e) for e in entities]


def parse_apikey_id(value: str | None) -> str:
    if value is None or not re.fullmatch(r"[0-9a-f]{32}", value):
        raise BadRequest("an API key id is 32 lower-case hex digits", "InvalidApiKeyId")
    return value


def delete_apikey(storage: Storage, key_id: str | None) -> None:
    key_id = parse_apikey_id(key_id)
    table = storage.table(tables.APIKEYS)
    try:
        entity = table.get_entity(PARTITION, key_id)
    except EntityMissing:
        raise NotFound(f"no API key with id {key_id}", "ApiKeyNotFound") from None
    table.delete_entity(PARTITION, key_id)
    if entity.get("RulesetBlob"):
        storage.delete_blob(entity["RulesetBlob"])
    logger.info("deleted API key %s", key_id)


def verify_apikey(storage: Storage, key: str | None, method: str, raw_path: str) -> str:
    """The key's name when ``key`` is valid and its ruleset allows ``method`` on ``raw_path``.

    Unauthorized for a missing, malformed or unknown key; Forbidden when the ruleset does not
    allow the call.
    """
    if not key:
        raise Unauthorized("this operation needs the header X-Api-Key", "ApiKeyRequired")
    match = _KEY.fullmatch(key.strip())
    if match is None:
        raise Unauthorized("the API key is not valid", "InvalidApiKey")
    key_id = match.group(1)
    try:
        entity: Any = storage.table(tables.APIKEYS).get_entity(PARTITION, key_id)
    except EntityMissing:
        entity = None
    stored = entity.get("Hash", _DUMMY_HASH) if entity else _DUMMY_HASH
    if not hmac.compare_digest(stored, _hash(key.strip())) or entity is None:
        raise Unauthorized("the API key is not valid", "InvalidApiKey")
    raw = storage.unpack("Ruleset", entity)
    rules = _rules(parse_json(raw, what="stored ruleset") if raw else [])
    path = split_path(raw_path)
    if not any(rule.allows(method.upper(), path) for rule in rules):
        raise Forbidden("the API key's ruleset does not allow this call", "ApiKeyNotAllowed")
    return str(entity.get("Name") or key_id)
