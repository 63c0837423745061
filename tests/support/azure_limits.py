"""Azure Table Storage's entity limits, checked independently of Junction's own code.

Azurite stores entities Azure refuses (it measures request bodies, not merged entities, and
counts characters, not UTF-16 bytes), so the tests measure what was stored themselves, with
Microsoft's documented estimate:

    4 + 2 x len(PartitionKey + RowKey) + for each property: 8 + 2 x len(name) + value
    (string: 4 + UTF-16 bytes; binary: 4 + bytes; bool 1; int32 4; int64/double/datetime 8; guid 16)

plus the ``Timestamp`` every stored entity has. Limits: 1,048,576 bytes per entity, 252 custom
properties, 64 KiB per binary property, and 32,000 characters per string property (Azure
documents 64 KiB, "about 32K characters or less", and refuses more than 32,000).

Written separately from ``core.store.limits`` on purpose: a mistake there must not hide here.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

ENTITY_LIMIT = 1_048_576
PROPERTY_LIMIT = 252
BINARY_LIMIT = 65_536
STRING_LIMIT = 32_000

_FIXED = {"Edm.Boolean": 1, "Edm.Int32": 4, "Edm.Int64": 8, "Edm.Double": 8, "Edm.DateTime": 8, "Edm.Guid": 16}


def _units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _sized(value: Any) -> tuple[str, int]:
    """(kind, size of the value by the estimate) for a value as the SDK returns it."""
    edm = getattr(getattr(value, "edm_type", None), "value", None)
    if edm is not None:  # EntityProperty (Int64, Guid ... in some SDK versions)
        if edm in _FIXED:
            return "fixed", _FIXED[edm]
        value = value.value
    if isinstance(value, bool):
        return "fixed", 1
    if isinstance(value, int):
        return "fixed", 4 if -(2**31) <= value < 2**31 else 8
    if isinstance(value, float | dt.datetime):
        return "fixed", 8
    if isinstance(value, uuid.UUID):
        return "fixed", 16
    if isinstance(value, bytes | bytearray):
        return "binary", len(value)
    return "string", _units(str(value))


def sizes_of_stored(entity: Mapping[str, Any]) -> dict[str, tuple[str, int]]:
    """Property sizes of an entity read back with azure-data-tables (keys excluded)."""
    return {name: _sized(value) for name, value in entity.items() if name not in ("PartitionKey", "RowKey", "Timestamp") and value is not None}


def sizes_of_wire(body: Mapping[str, Any]) -> dict[str, tuple[str, int]]:
    """Property sizes of an entity in the Table service's JSON wire format (a request body)."""
    out: dict[str, tuple[str, int]] = {}
    for name, value in body.items():
        if "@odata" in name or name.startswith("odata.") or name in ("PartitionKey", "RowKey", "Timestamp") or value is None:
            continue
        edm = body.get(f"{name}@odata.type")
        if edm == "Edm.Binary":
            out[name] = ("binary", len(base64.b64decode(value)))
        elif edm in _FIXED:
            out[name] = ("fixed", _FIXED[edm])
        elif edm == "Edm.String" or isinstance(value, str):
            out[name] = ("string", _units(value))
        elif isinstance(value, bool):
            out[name] = ("fixed", 1)
        elif isinstance(value, int):
            out[name] = ("fixed", 4 if -(2**31) <= value < 2**31 else 8)
        else:
            out[name] = ("fixed", 8)
    return out


def estimate(partition_key: str, row_key: str, sizes: Mapping[str, tuple[str, int]]) -> int:
    total = 4 + 2 * (_units(partition_key) + _units(row_key)) + (8 + 2 * len("Timestamp") + 8)
    for name, (kind, size) in sizes.items():
        value = 4 + 2 * size if kind == "string" else 4 + size if kind == "binary" else size
        total += 8 + 2 * _units(name) + value
    return total


def violations(partition_key: str, row_key: str, sizes: Mapping[str, tuple[str, int]]) -> list[tuple[str, str]]:
    """(Azure's error code, detail) for each limit the entity breaks."""
    found: list[tuple[str, str]] = []
    if len(sizes) > PROPERTY_LIMIT:
        found.append(("TooManyProperties", f"{len(sizes)} properties"))
    for name, (kind, size) in sizes.items():
        if kind == "string" and size > STRING_LIMIT:
            found.append(("PropertyValueTooLarge", f"{name}: {size} characters"))
        if kind == "binary" and size > BINARY_LIMIT:
            found.append(("PropertyValueTooLarge", f"{name}: {size} bytes"))
    total = estimate(partition_key, row_key, sizes)
    if total > ENTITY_LIMIT:
        found.append(("EntityTooLarge", f"{total:,} bytes by Azure's estimate"))
    return found


def entity_violations(entity: Mapping[str, Any]) -> list[str]:
    """What Azure would refuse about an entity read back from storage (empty when nothing)."""
    return [f"{code}: {detail}" for code, detail in violations(str(entity["PartitionKey"]), str(entity["RowKey"]), sizes_of_stored(entity))]


def account_violations(connection_string: str, tables: Iterable[str] | None = None) -> list[str]:
    """Every entity of every table in the account (or of ``tables``) that breaks a limit."""
    from azure.data.tables import TableServiceClient

    service = TableServiceClient.from_connection_string(connection_string)
    names = list(tables) if tables is not None else [t.name for t in service.list_tables()]
    found = []
    for name in names:
        for entity in service.get_table_client(name).list_entities():
            for problem in entity_violations(entity):
                found.append(f"{name} {entity['PartitionKey']}/{entity['RowKey']}: {problem}")
    return found


def assert_stored_within_limits(connection_string: str, tables: Iterable[str] | None = None) -> int:
    """Fail naming the entities Azure would have refused; returns how many tables were checked."""
    from azure.data.tables import TableServiceClient

    names = list(tables) if tables is not None else [t.name for t in TableServiceClient.from_connection_string(connection_string).list_tables()]
    found = account_violations(connection_string, names)
    assert not found, f"{len(found)} stored entities are beyond Azure Table Storage's limits:\n" + "\n".join(found[:30])
    return len(names)
