"""Personal access tokens: created once, stored as a SHA-256 hash, checked in constant time.

A token looks like ``jct_<id><secret>``: the 32 hex digits of its id let Junction find the
record with one point read (no query by secret), and the whole token's SHA-256 is compared with
``hmac.compare_digest``. Revocation deletes the record, so it holds from the next request on.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from core.kernel import clock
from core.kernel.errors import BadRequest, NotFound, Unauthorized
from core.kernel.ids import parse_guid
from core.kernel.jsonschema import GUID, NAME
from core.kernel.principal import Principal
from core.store import tables
from core.store.errors import EntityMissing
from core.store.storage import Storage

logger = logging.getLogger(__name__)

PREFIX = "jct_"
SCOPES = frozenset({"trigger", "admin"})
PARTITION = "token"
_TOKEN = re.compile(r"jct_([0-9a-f]{32})([A-Za-z0-9_-]{43})")
_DUMMY_HASH = hashlib.sha256(b"junction-no-such-token").hexdigest()
MAX_EXPIRY_DAYS = 3650

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


@dataclass(frozen=True)
class CreatedToken:
    id: str
    name: str
    token: str
    scopes: list[str]
    scenario_ids: list[str] | None
    expires_at: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "token": self.token,
            "scopes": self.scopes,
            "scenarioIds": self.scenario_ids,
            "expiresAt": self.expires_at,
        }


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def create_token(
    storage: Storage,
    *,
    name: str,
    scopes: list[str],
    scenario_ids: list[str] | None = None,
    expires_in_days: int | None = None,
) -> CreatedToken:
    """Create a token; the secret exists only in the return value."""
    if not scopes or not set(scopes) <= SCOPES:
        raise BadRequest(f"scopes must be a non-empty list of {sorted(SCOPES)}", "InvalidScopes")
    if "admin" in scopes and scenario_ids is not None:
        # An admin can read and change every scenario and mint tokens, so a scenario limit on it
        # could only ever be cosmetic: the combination is refused (docs/reliability.md).
        raise BadRequest(
            "an admin token cannot be limited to scenarios; limit a 'trigger' token instead", "AdminTokenCannotBeScoped"
        )
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise BadRequest(f"expiresInDays must be from 1 to {MAX_EXPIRY_DAYS}", "InvalidExpiry")
    ids = sorted({parse_guid(s, "every scenarioIds entry", "InvalidScenarioId") for s in scenario_ids}) if scenario_ids is not None else None
    token_id = secrets.token_hex(16)
    token = f"{PREFIX}{token_id}{secrets.token_urlsafe(32)}"
    expires = clock.iso(clock.days_from_now(expires_in_days)) if expires_in_days else None
    storage.table(tables.TOKENS).create_entity(
        {
            "PartitionKey": PARTITION,
            "RowKey": token_id,
            "Name": name,
            "Hash": _hash(token),
            "Scopes": ",".join(sorted(set(scopes))),
            "ScenarioIds": ",".join(ids) if ids is not None else None,
            "CreatedAt": clock.now_iso(),
            "ExpiresAt": expires,
        }
    )
    logger.info("created personal access token %s (%s) with scopes %s", token_id, name, scopes)
    return CreatedToken(token_id, name, token, sorted(set(scopes)), ids, expires)


def verify_token(storage: Storage, token: str) -> Principal:
    """The principal a token stands for; Unauthorized for unknown, revoked or expired tokens."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise Unauthorized("the personal access token is malformed", "InvalidToken", error="invalid_token")
    token_id = match.group(1)
    try:
        entity = storage.table(tables.TOKENS).get_entity(PARTITION, token_id)
    except EntityMissing:
        entity = None
    stored = entity.get("Hash", _DUMMY_HASH) if entity else _DUMMY_HASH
    if not hmac.compare_digest(stored, _hash(token)) or entity is None:
        raise Unauthorized("the personal access token is not valid or was revoked", "InvalidToken", error="invalid_token")
    expires = entity.get("ExpiresAt")
    if expires and clock.parse_iso(expires) <= clock.now():
        raise Unauthorized("the personal access token has expired", "TokenExpired", error="invalid_token")
    scenario_ids = entity.get("ScenarioIds")
    return Principal(
        kind="pat",
        name=entity.get("Name"),
        token_id=token_id,
        scopes=frozenset(filter(None, (entity.get("Scopes") or "").split(","))),
        scenario_ids=frozenset(scenario_ids.split(",")) if scenario_ids else None,
    )


def _public(entity: dict[str, Any]) -> dict[str, Any]:
    scenario_ids = entity.get("ScenarioIds")
    return {
        "id": entity["RowKey"],
        "name": entity.get("Name"),
        "scopes": (entity.get("Scopes") or "").split(","),
        "scenarioIds": scenario_ids.split(",") if scenario_ids else None,
        "createdAt": entity.get("CreatedAt"),
        "expiresAt": entity.get("ExpiresAt"),
    }


def list_tokens(storage: Storage) -> list[dict[str, Any]]:
    """Every token without its secret or hash."""
    entities = storage.table(tables.TOKENS).query_entities(
        "PartitionKey eq @pk",
        parameters={"pk": PARTITION},
        select=["RowKey", "Name", "Scopes", "ScenarioIds", "CreatedAt", "ExpiresAt"],
    )
    return [_public(dict(e)) for e in entities]


def parse_token_id(value: str | None) -> str:
    if value is None or not re.fullmatch(r"[0-9a-f]{32}", value):
        raise BadRequest("a token id is 32 lower-case hex digits", "InvalidTokenId")
    return value


def revoke_token(storage: Storage, token_id: str) -> None:
    token_id = parse_token_id(token_id)
    table = storage.table(tables.TOKENS)
    try:
        table.get_entity(PARTITION, token_id, select=["RowKey"])
    except EntityMissing:
        raise NotFound(f"no token with id {token_id}", "TokenNotFound") from None
    table.delete_entity(PARTITION, token_id)
    logger.info("revoked personal access token %s", token_id)
