"""Seen signatures: a signed request accepted once is a replay when it comes again in its window.

``claim`` inserts one entity per verified signature into the ``signatures`` table (partition: the
scenario id; row: SHA-256 of the scheme and digest, never caller text). Table Storage makes the
insert atomic, so of two identical requests racing on two instances exactly one gets in; the
other is 409 ``Replayed`` and starts nothing.

An entry lives until ``ExpiresAt`` (``until`` of ``core.identity.signatures.Verified``: the signed
timestamp plus the tolerance, or the first use plus the tolerance for schemes without a
timestamp). Past it a timestamped request is refused anyway, and an untimestamped one may be used
again: its entry is taken over, conditional on its ETag so two takers cannot both win. Expired
entries are removed by the daily retention (``core.runs.retention``), one scenario's partition at
a time (``remove_expired``); correctness never waits for that, only the table's size does.

A claim whose run then could not be started is given back (``release``), so the sender's retry of
the same delivery is not refused as a replay of a request that did nothing.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime

from core.identity.signatures import Verified
from core.kernel import clock
from core.kernel.errors import Conflict
from core.store import tables
from core.store.errors import EntityChanged, EntityExists, EntityMissing
from core.store.storage import IF_UNCHANGED, Storage

logger = logging.getLogger(__name__)


class Replayed(Conflict):
    """409: this signature was already used within its window."""

    def __init__(self) -> None:
        super().__init__("this signed request was already received; a signature is accepted once within its window", "Replayed")


def _row(verified: Verified) -> str:
    return hashlib.sha256(f"{verified.scheme}\x00{verified.digest}".encode()).hexdigest()


def _iso(seconds: float) -> str:
    return clock.iso(datetime.fromtimestamp(seconds, UTC))


def claim(storage: Storage, scope: str, verified: Verified, now: float, *, attempts: int = 3) -> None:
    """Record the signature as seen, or raise ``Replayed`` when it is within its window."""
    table = storage.table(tables.SIGNATURES)
    row = _row(verified)
    entity = {"PartitionKey": scope, "RowKey": row, "ExpiresAt": _iso(verified.until), "SeenAt": _iso(now)}
    try:
        table.create_entity(entity)
        return
    except EntityExists:
        pass
    try:
        existing = table.get_entity(scope, row)
    except EntityMissing:  # released or removed between the insert and the read
        if attempts <= 1:
            raise Replayed() from None
        return claim(storage, scope, verified, now, attempts=attempts - 1)
    if clock.parse_iso(str(existing["ExpiresAt"])).timestamp() >= now:
        raise Replayed()
    try:  # its window is over: take the entry over, unless another request just did
        table.update_entity(entity, mode="replace", etag=existing.metadata["etag"], match_condition=IF_UNCHANGED)
    except (EntityChanged, EntityMissing):
        raise Replayed() from None


def release(storage: Storage, scope: str, verified: Verified) -> None:
    """Forget a claim whose run was not started (best effort: it expires with its window)."""
    try:
        storage.table(tables.SIGNATURES).delete_entity(scope, _row(verified))
    except Exception as exc:  # noqa: BLE001 - the caller's own error is what matters
        logger.warning("could not release a seen signature of %s: %s", scope, type(exc).__name__)


def remove_expired(storage: Storage, scope: str, now: datetime) -> int:
    """Remove the partition's entries whose window is over; returns how many."""
    found = storage.table(tables.SIGNATURES).query_entities(
        "PartitionKey eq @pk and ExpiresAt lt @now", parameters={"pk": scope, "now": clock.iso(now)}, select=["PartitionKey", "RowKey"]
    )
    return storage.remove_each(tables.SIGNATURES, found)
