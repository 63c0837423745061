"""The scenario cache that ``GetCacheData`` serves and ``cache`` steps write.

A key is any JSON value, compared in canonical form (sorted keys, no insignificant white space),
and stored under the SHA-256 of that form: the caller's text never becomes a table key or part
of a query.

The entries live in their scenario's partition; a deleted scenario's are removed by the daily
retention (``core.runs.retention``), which keeps the scenario's tombstone until none is left
(docs/storage.md, "Retention").
"""

from __future__ import annotations

import json
from typing import Any

from core.kernel import clock
from core.kernel.errors import BadRequest, NotFound
from core.kernel.ids import key_hash
from core.kernel.jsonvalue import canonical, parse_json
from core.store import tables
from core.store.errors import EntityMissing
from core.store.storage import Storage

MAX_KEY_CHARS = 2048
MAX_VALUE_BYTES = 50 * 1024 * 1024


def parse_key(key_json: str | None) -> Any:
    """The key from a ``keyJson`` query value: any JSON value, at most 2048 characters."""
    if key_json is None or key_json == "":
        raise BadRequest("keyJson is required: the cache key as JSON, e.g. keyJson=\"orders\"", "MissingKey")
    if len(key_json) > MAX_KEY_CHARS:
        raise BadRequest(f"keyJson is longer than {MAX_KEY_CHARS} characters", "KeyTooLong")
    return parse_json(key_json, what="keyJson", code="InvalidKey")


def _encode_key(key: Any) -> tuple[str, str]:
    try:
        text = canonical(key)
    except (TypeError, ValueError):
        raise BadRequest("the cache key must be a JSON value", "InvalidKey") from None
    if len(text) > MAX_KEY_CHARS:
        raise BadRequest(f"the cache key is longer than {MAX_KEY_CHARS} characters", "KeyTooLong")
    return text, key_hash(text)


class ScenarioCache:
    """The cache entries of one scenario (the engine's ``CacheWriter``)."""

    def __init__(self, storage: Storage, scenario_id: str) -> None:
        self._storage = storage
        self._scenario_id = scenario_id

    def get(self, key: Any) -> Any:
        _, row = _encode_key(key)
        try:
            entity = self._storage.table(tables.CACHE).get_entity(self._scenario_id, row)
        except EntityMissing:
            raise NotFound("nothing is cached under that key", "CacheEntryNotFound") from None
        data = self._storage.unpack("Value", entity)
        if data is None:
            raise NotFound("nothing is cached under that key", "CacheEntryNotFound")
        return json.loads(data)

    def set(self, key: Any, value: Any) -> None:
        text, row = _encode_key(key)
        try:
            data = canonical(value).encode("utf-8")
        except (TypeError, ValueError):
            raise BadRequest("the cache value must be a JSON value (no NaN or Infinity)", "InvalidValue") from None
        if len(data) > MAX_VALUE_BYTES:
            raise BadRequest(f"the cache value is larger than {MAX_VALUE_BYTES} bytes", "ValueTooLarge")
        plain = {"PartitionKey": self._scenario_id, "RowKey": row, "Key": text, "UpdatedAt": clock.now_iso()}
        entity = self._storage.pack_entity(plain, {"Value": data}, lambda _: f"cache/{self._scenario_id}/{row}")
        # Replace, not merge: a value that shrank must not keep the old value's extra chunks.
        self._storage.table(tables.CACHE).upsert_entity(entity, mode="replace")

    def delete(self, key: Any) -> bool:
        _, row = _encode_key(key)
        table = self._storage.table(tables.CACHE)
        try:
            entity = table.get_entity(self._scenario_id, row, select=["ValueBlob"])
        except EntityMissing:
            return False
        table.delete_entity(self._scenario_id, row)
        if entity.get("ValueBlob"):
            self._storage.delete_blob(entity["ValueBlob"])
        return True


def remove_entries(storage: Storage, scenario_id: str) -> int:
    """Remove every cache entry of a scenario and the blobs of its large values; returns how many.

    For a deleted scenario only: one query of its partition, reading just the entries it removes.
    """
    table = storage.table(tables.CACHE)
    removed = 0
    for entity in table.query_entities("PartitionKey eq @pk", parameters={"pk": scenario_id}, select=["PartitionKey", "RowKey", "ValueBlob"]):
        try:
            table.delete_entity(scenario_id, entity["RowKey"])
            removed += 1
        except EntityMissing:
            pass
        if entity.get("ValueBlob"):
            storage.delete_blob(entity["ValueBlob"])
    return removed
