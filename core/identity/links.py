"""Signed links: a URL that is its own credential, for a while (the status URL of an async call).

A link's token is ``<payload>.<mac>``: the payload is base64url JSON (what the link is for, and
``exp``, its expiry in Unix seconds), the MAC an HMAC-SHA256 of the purpose and payload under the
app's link key, base64url. Without the key nobody can make or alter one (256 bits), so the URL is
unguessable though its run id is not secret; after ``exp`` the genuine link answers 410.

**The key** (docs/deploy.md, "Status URL key"): 32 random bytes the app makes itself on first
use and keeps in the ``appkeys`` table (partition ``key``, row ``links``), inserted once so
every instance uses the winner's; read once per process. In Azure the app reaches the table with
its managed identity (Storage Table Data Contributor, which it already has): no storage account
key, no new role, no setting to provision; locally it lives in Azurite the same way. Whoever can
read that table can already read every run's output, which is all a link reveals, so keeping the
key there grants nobody anything new. Rotating it: delete the row and restart the app; links
issued before stop working (404).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Mapping
from typing import Any

from core.kernel import clock
from core.kernel.errors import Gone, NotFound
from core.store import tables
from core.store.errors import EntityExists
from core.store.storage import Storage

KEY_PARTITION = "key"
KEY_ROW = "links"
MAX_TOKEN_CHARS = 1024

_lock = threading.Lock()
_keys: dict[int, bytes] = {}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def link_key(storage: Storage) -> bytes:
    """The app's link key: read (or made) once per process and storage."""
    cached = _keys.get(id(storage))
    if cached is not None:
        return cached
    with _lock:
        cached = _keys.get(id(storage))
        if cached is None:
            cached = _load_or_create(storage)
            _keys[id(storage)] = cached
        return cached


def _load_or_create(storage: Storage) -> bytes:
    table = storage.table(tables.APPKEYS)
    try:
        table.create_entity({"PartitionKey": KEY_PARTITION, "RowKey": KEY_ROW, "Key": secrets.token_bytes(32), "CreatedAt": clock.now_iso()})
    except EntityExists:
        pass  # another instance (or an earlier start) made it: use that one
    stored = table.get_entity(KEY_PARTITION, KEY_ROW)
    key = stored["Key"]
    return bytes(key.value if hasattr(key, "value") else key)


def forget_keys() -> None:
    """Read the key again on next use (tests that rotate it)."""
    with _lock:
        _keys.clear()


def _mac(key: bytes, purpose: str, payload: str) -> bytes:
    return hmac.new(key, f"{purpose}\x00{payload}".encode("ascii"), hashlib.sha256).digest()


def sign(storage: Storage, purpose: str, claims: Mapping[str, Any], expires: float) -> str:
    """A token for ``claims`` (JSON values) that opens until ``expires`` (Unix seconds)."""
    payload = _b64(json.dumps({**claims, "exp": int(expires)}, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    return f"{payload}.{_b64(_mac(link_key(storage), purpose, payload))}"


def open_token(storage: Storage, purpose: str, token: str, now: float) -> dict[str, Any]:
    """The claims of a genuine, unexpired token; 404 ``LinkNotFound`` for anything altered or
    made up (nothing said about why), 410 ``LinkExpired`` for a genuine one past its time."""
    not_found = NotFound("no such link; it may have been altered", "LinkNotFound")
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1 or not token.isascii():
        raise not_found
    payload, _, mac_text = token.partition(".")
    try:
        given = _unb64(mac_text)
    except (binascii.Error, ValueError):
        raise not_found from None
    # Only the one canonical spelling opens (base64 decoders forgive padding and stray bits).
    if _b64(given) != mac_text or not hmac.compare_digest(_mac(link_key(storage), purpose, payload), given):
        raise not_found
    try:
        claims = json.loads(_unb64(payload))
    except (binascii.Error, ValueError):
        raise not_found from None
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
        raise not_found
    if now > claims["exp"]:
        raise Gone("this link has expired", "LinkExpired")
    return claims
