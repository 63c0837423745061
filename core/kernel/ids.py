"""Identifiers: GUIDs for everything a caller names, hashes for everything a caller writes.

Storage keys never contain user text directly (docs/architecture.md, "Storage layout"). Ids
from URLs are checked against the canonical GUID form before they reach storage, which also
rules out ``/ \\ # ?`` and control characters that Table Storage refuses in keys.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid

from core.kernel.errors import BadRequest

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MAX_MS = (1 << 48) - 1


def parse_guid(value: str | None, what: str, code: str) -> str:
    """``value`` as a lower-case GUID, or BadRequest naming ``what``."""
    if value is None or not _GUID.fullmatch(value):
        raise BadRequest(f"{what} must be a GUID such as 1a990d32-1299-4c6e-9ac7-aa1800cde08d", code)
    return value.lower()


def new_id() -> str:
    return str(uuid.uuid4())


def new_run_id(now: float | None = None) -> str:
    """A GUID-shaped run id whose first 48 bits count down with time.

    Run ids are row keys, and Table Storage returns rows in key order, so newest-first listing
    needs no secondary index. The rest of the id is random.
    """
    millis = int((time.time() if now is None else now) * 1000)
    inverted = _MAX_MS - min(max(millis, 0), _MAX_MS)
    raw = f"{inverted:012x}{secrets.token_hex(10)}"
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"


def run_id_floor(moment: float) -> str:
    """The smallest run id of ``moment``: every run started before it sorts after this."""
    inverted = _MAX_MS - min(max(int(moment * 1000), 0), _MAX_MS)
    raw = f"{inverted:012x}" + "f" * 20
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"


def key_hash(text: str) -> str:
    """The row key for user-supplied text (cache keys, idempotency keys)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
