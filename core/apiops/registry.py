"""What is imported and bound, as stored, and the route table the process serves from it.

Storage (docs/architecture.md, "Storage layout"; keys never hold caller text):

- table ``apis``: partition ``api``, row key SHA-256 of the API name; the document and the
  extracted operations are packed (``Storage.pack_entity``: large ones go to Blob Storage);
  partition ``meta``, row ``routes``: the route version marker (``core.apiops.routes.RouteCache``);
- table ``apibindings``: partition ``binding``, row key SHA-256 of ``apiName NUL operationId``;
  each binding keeps a snapshot of its operation, so the route table is rebuilt with one query;
- table ``ratelimits``: a binding's rate-limit bucket is partitioned by the binding's row key;
  deleting a binding retires the bucket (``core.traffic.ratelimit.retire``) and the daily
  retention removes its rows (docs/storage.md, "Retention").

Writers change data first and the version marker last (``bump_version``).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from typing import Any

from core.apiops.routes import BoundOperation, RouteCache
from core.kernel.errors import BadRequest, NotFound
from core.kernel.ids import key_hash, new_id
from core.kernel.jsonvalue import dumps, parse_json
from core.store import tables
from core.store.errors import EntityMissing
from core.store.storage import Storage
from core.traffic import ratelimit

logger = logging.getLogger(__name__)

API_PARTITION = "api"
BINDING_PARTITION = "binding"
META_PARTITION = "meta"
ROUTES_ROW = "routes"


def api_key(name: str) -> str:
    return key_hash(name)


def binding_key(api_name: str, operation_id: str) -> str:
    return key_hash(f"{api_name}\x00{operation_id}")


def read_route_version(storage: Storage) -> str | None:
    """The route version marker: one point read of one small property."""
    try:
        entity = storage.table(tables.APIS).get_entity(META_PARTITION, ROUTES_ROW, select=["Version"])
    except EntityMissing:
        return None
    return entity.get("Version")


def bump_version(storage: Storage) -> None:
    storage.table(tables.APIS).upsert_entity({"PartitionKey": META_PARTITION, "RowKey": ROUTES_ROW, "Version": new_id()})


def get_api_entity(storage: Storage, api_name: str) -> Any:
    try:
        return storage.table(tables.APIS).get_entity(API_PARTITION, api_key(api_name))
    except EntityMissing:
        raise NotFound(f"no API named {api_name}", "ApiNotFound") from None


def operations_of(storage: Storage, entity: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = storage.unpack("Operations", entity)
    return list(parse_json(raw, what="stored operations")) if raw else []


def all_bindings(storage: Storage) -> list[dict[str, Any]]:
    entities = storage.table(tables.APIBINDINGS).query_entities("PartitionKey eq @pk", parameters={"pk": BINDING_PARTITION})
    return [dict(e) for e in entities]


def binding_parts(storage: Storage, entity: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    operation = parse_json(storage.unpack("Operation", entity) or b"{}", what="stored operation")
    binding = parse_json(storage.unpack("Binding", entity) or b"{}", what="stored binding")
    return operation, binding


def load_bound_operations(storage: Storage) -> list[BoundOperation]:
    """Every binding as a ``BoundOperation`` (what ``RouteCache`` loads)."""
    out = []
    for entity in all_bindings(storage):
        try:
            operation, binding = binding_parts(storage, entity)
            out.append(BoundOperation.from_parts(entity["Api"], operation, binding))
        except (BadRequest, KeyError, ValueError) as exc:
            logger.error("skipping a damaged binding %s: %s", entity.get("RowKey"), exc)
    return out


def write_binding(storage: Storage, api_name: str, operation: Mapping[str, Any], binding: Mapping[str, Any]) -> None:
    key = binding_key(api_name, operation["operationId"])
    plain: dict[str, Any] = {
        "PartitionKey": BINDING_PARTITION,
        "RowKey": key,
        "Api": api_name,
        "ApiKey": api_key(api_name),
        "OperationId": operation["operationId"],
    }
    values = {"Operation": dumps(operation).encode(), "Binding": dumps(binding).encode()}
    entity = storage.pack_entity(plain, values, lambda name: f"apibindings/{key}/{name.lower()}.json")
    storage.table(tables.APIBINDINGS).upsert_entity(entity, mode="replace")


def delete_binding_entity(storage: Storage, entity: Mapping[str, Any]) -> None:
    # The tombstone first: should the delete then fail, retiring a live binding's bucket is
    # harmless (retention removes only spent rows, which decide nothing).
    ratelimit.retire(storage, entity["RowKey"])
    try:
        storage.table(tables.APIBINDINGS).delete_entity(BINDING_PARTITION, entity["RowKey"])
    except EntityMissing:
        pass
    for name in ("OperationBlob", "BindingBlob"):
        if entity.get(name):
            storage.delete_blob(entity[name])


def bindings_of(storage: Storage, api_name: str) -> dict[str, dict[str, Any]]:
    entities = storage.table(tables.APIBINDINGS).query_entities(
        "PartitionKey eq @pk and ApiKey eq @api", parameters={"pk": BINDING_PARTITION, "api": api_key(api_name)}
    )
    out: dict[str, dict[str, Any]] = {}
    for entity in entities:
        _, binding = binding_parts(storage, entity)
        out[entity["OperationId"]] = binding
    return out


_CACHES: weakref.WeakKeyDictionary[Storage, RouteCache] = weakref.WeakKeyDictionary()


def route_cache(storage: Storage) -> RouteCache:
    """The process's route cache for ``storage`` (one marker read per request)."""
    cache = _CACHES.get(storage)
    if cache is None:
        cache = RouteCache(lambda: read_route_version(storage), lambda: load_bound_operations(storage))
        _CACHES[storage] = cache
    return cache
