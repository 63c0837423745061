"""Idempotency keys: the same key for the same scenario within 24 h means the same run.

The claim is an insert into the idempotency table, which Table Storage makes atomic: of many
concurrent requests with one key exactly one insert succeeds, and the others read its run id.

A claim is expired once ``WINDOW`` has passed since its ``CreatedAt`` (``expired``): a request with
its key then takes it over. Expired claims are removed by the daily retention
(``core.runs.retention``), one scenario's partition at a time (``remove_expired``); correctness
never waits for that, only the table's size does.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from core.kernel import clock
from core.kernel.errors import BadRequest, Conflict
from core.kernel.ids import key_hash
from core.store import tables
from core.store.errors import EntityChanged, EntityExists, EntityMissing
from core.store.storage import IF_UNCHANGED, Storage

logger = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def check_key(raw: str | None) -> str | None:
    """The key, or None when absent. Visible ASCII only, at most 255 characters."""
    if raw is None:
        return None
    if not _KEY.fullmatch(raw):
        raise BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters", "InvalidIdempotencyKey")
    return raw


def expired(created_at: str, now: datetime) -> bool:
    """Whether a claim made at ``created_at`` (ISO 8601) is over at ``now``: its window is past."""
    return now - clock.parse_iso(created_at) >= WINDOW


def claim(storage: Storage, scenario_id: str, key: str, run_id: str) -> str | None:
    """Claim ``key`` for ``run_id``. Returns None when claimed, or the run id that holds it."""
    table = storage.table(tables.IDEMPOTENCY)
    row = key_hash(key)
    entity = {"PartitionKey": scenario_id, "RowKey": row, "RunId": run_id, "CreatedAt": clock.now_iso()}
    try:
        table.create_entity(entity)
        return None
    except EntityExists:
        pass
    try:
        existing = table.get_entity(scenario_id, row)
    except EntityMissing:  # released between our insert and read: try once more
        try:
            table.create_entity(entity)
            return None
        except EntityExists:
            raise Conflict("the Idempotency-Key is in use by a request in progress; retry", "IdempotencyConflict") from None
    if not expired(str(existing["CreatedAt"]), clock.now()):
        return str(existing["RunId"])
    try:  # expired: take it over, unless another request just did
        table.update_entity(
            entity, mode="replace", etag=existing.metadata["etag"], match_condition=IF_UNCHANGED
        )
        return None
    except (EntityChanged, EntityMissing):
        return claim(storage, scenario_id, key, run_id)


def release(storage: Storage, scenario_id: str, key: str) -> None:
    """Give a key back when the run it was claimed for could not be started."""
    try:
        storage.table(tables.IDEMPOTENCY).delete_entity(scenario_id, key_hash(key))
    except Exception as exc:  # noqa: BLE001 - best effort; the claim then expires after 24 h
        logger.warning("could not release an Idempotency-Key of scenario %s: %s", scenario_id, type(exc).__name__)


def remove_expired(storage: Storage, scenario_id: str, now: datetime) -> int:
    """Remove the scenario's claims whose window is over at ``now``; returns how many.

    One query of one partition: ``CreatedAt`` is not a key, so Table Storage reads the partition's
    claims (those of the last window, and the expired ones this removes: about two days' worth
    when it runs daily) and answers the expired ones. Claims are stored with millisecond
    timestamps, so ``CreatedAt le`` the cutoff (``now - WINDOW`` cut to milliseconds) selects
    exactly the claims ``expired`` calls over. Each delete is conditional on the ETag read: a claim
    a new request took over meanwhile is live again and stays.
    """
    found = storage.table(tables.IDEMPOTENCY).query_entities(
        "PartitionKey eq @pk and CreatedAt le @cutoff",
        parameters={"pk": scenario_id, "cutoff": clock.iso(now - WINDOW)},
        select=["PartitionKey", "RowKey"],
    )
    return storage.remove_each(tables.IDEMPOTENCY, found, if_unchanged=True)  # a claim taken over since stays
