"""Azure Table Storage's limits, measured the way Azure measures them.

Azurite is more lenient than Azure: it checks the 1 MiB entity limit against each request body
(base64 JSON), not against the stored entity after a merge, and it counts characters where Azure
counts UTF-16 bytes. So Junction measures every entity itself with Microsoft's documented
estimate (docs/reliability.md, "Azure Storage limits"):

    4 + 2 x len(PartitionKey + RowKey) + for each property: 8 + 2 x len(name) + the value's size
    (string: 4 + its UTF-16 bytes; binary: 4 + its bytes; bool 1; int32 4; int64, double and
    datetime 8; guid 16)

plus the ``Timestamp`` system property every stored entity carries. Lengths are UTF-16 code
units, as .NET counts them.

``check_request_body`` runs on every table request the process sends (``Storage`` installs it as
a request hook), so an entity Azure would refuse is refused here first, as a clear 413 instead
of a storage 400 that would surface as a 500.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from enum import Enum
from typing import Any

from core.kernel.errors import PayloadTooLarge

MAX_ENTITY_BYTES = 1_048_576
MAX_PROPERTIES = 252  # custom properties; PartitionKey, RowKey and Timestamp are the other 3
MAX_BINARY_BYTES = 65_536
# 64 KiB of UTF-16 would be 32,768 characters, but Azure documents "about 32K characters or
# less" and refuses strings above 32,000; Junction treats 32,000 as the limit.
MAX_STRING_CHARS = 32_000
TIMESTAMP_BYTES = 8 + 2 * len("Timestamp") + 8
KEY_PROPERTIES = ("PartitionKey", "RowKey")

_FIXED_SIZES = {
    "Edm.Boolean": 1,
    "Edm.Int32": 4,
    "Edm.Int64": 8,
    "Edm.Double": 8,
    "Edm.DateTime": 8,
    "Edm.Guid": 16,
}


class EntityTooLarge(PayloadTooLarge):
    """An entity (or one of its properties) is larger than Azure Table Storage stores."""

    default_code = "EntityTooLarge"


def utf16_units(text: str) -> int:
    """Length in UTF-16 code units (characters outside the BMP count twice)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def value_size(value: Any) -> int:
    """The estimated stored size of one property value (a Python value as the SDK sends it)."""
    edm = None
    if isinstance(value, tuple) and len(value) == 2:
        value, edm = value
    elif hasattr(value, "edm_type") and hasattr(value, "value"):  # azure.data.tables.EntityProperty
        value, edm = value.value, value.edm_type
    edm_name = getattr(edm, "value", edm)
    if isinstance(edm_name, str) and edm_name in _FIXED_SIZES:
        return _FIXED_SIZES[edm_name]
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 4 if -(2**31) <= value < 2**31 else 8
    if isinstance(value, float | datetime):
        return 8
    if isinstance(value, uuid.UUID):
        return 16
    if isinstance(value, bytes | bytearray | memoryview):
        return 4 + len(value)
    return 4 + 2 * utf16_units(str(value))


def property_size(name: str, value: Any) -> int:
    return 8 + 2 * utf16_units(name) + value_size(value)


def entity_size(entity: Any) -> int:
    """Azure's estimate of ``entity`` as stored (keys, properties and ``Timestamp``)."""
    size = 4 + 2 * (utf16_units(str(entity.get("PartitionKey", ""))) + utf16_units(str(entity.get("RowKey", ""))))
    for name, value in entity.items():
        if name in KEY_PROPERTIES or name == "Timestamp" or value is None:
            continue
        size += property_size(name, value)
    return size + TIMESTAMP_BYTES


def problems(entity: Any) -> list[str]:
    """What about ``entity`` Azure would refuse (empty when it would be stored)."""
    found: list[str] = []
    names = [n for n, v in entity.items() if n not in KEY_PROPERTIES and n != "Timestamp" and v is not None]
    if len(names) > MAX_PROPERTIES:
        found.append(f"{len(names)} properties; at most {MAX_PROPERTIES} are stored")
    for name in names:
        value = entity[name]
        inner = getattr(value, "value", value) if not isinstance(value, tuple) else value[0]
        if isinstance(inner, bytes | bytearray) and len(inner) > MAX_BINARY_BYTES:
            found.append(f"property {name} holds {len(inner)} bytes; at most {MAX_BINARY_BYTES} are stored")
        elif isinstance(inner, str) and utf16_units(inner) > MAX_STRING_CHARS:
            found.append(f"property {name} holds {utf16_units(inner)} characters; at most {MAX_STRING_CHARS} are stored")
    size = entity_size(entity)
    if size > MAX_ENTITY_BYTES:
        found.append(f"the entity is {size:,} bytes by Azure's estimate; at most {MAX_ENTITY_BYTES:,} are stored")
    return found


def check_entity(entity: Any, what: str = "the record") -> None:
    """Raise EntityTooLarge (413) when Azure would refuse to store ``entity``."""
    found = problems(entity)
    if found:
        raise EntityTooLarge(f"{what} is too large to store: {found[0]}")


def wire_entity(body: dict[str, Any]) -> dict[str, Any]:
    """An entity as the Table service's JSON wire format carries it, typed for ``entity_size``.

    Binary values travel as base64 and 64-bit integers as strings; ``@odata.type`` says which.
    """
    out: dict[str, Any] = {}
    for name, value in body.items():
        if "@odata" in name or name.startswith("odata."):
            continue
        edm = body.get(f"{name}@odata.type")
        if edm == "Edm.Binary" and isinstance(value, str):
            padding = len(value) - len(value.rstrip("="))
            out[name] = bytes(len(value) * 3 // 4 - padding)
        elif edm in _FIXED_SIZES:
            out[name] = (value, edm)
        else:
            out[name] = value
    return out


_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "MERGE"})


def check_request_body(method: str, body: Any) -> None:
    """The request hook: refuse a table write whose entity Azure would refuse.

    Only the request body is seen here; a merge's result (stored entity plus body) is kept within
    the limits by whoever merges (``Storage.pack_merge``).
    """
    if method.upper() not in _WRITE_METHODS or not body:
        return
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "replace")
    if not isinstance(body, str) or '"PartitionKey"' not in body:
        return  # a table creation, a batch, or nothing Junction sends
    try:
        parsed = json.loads(body)
    except ValueError:
        return
    if isinstance(parsed, dict) and "PartitionKey" in parsed:
        check_entity(wire_entity(parsed))
