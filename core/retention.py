"""Retention: runs older than ``JUNCTION_RUN_RETENTION_DAYS`` (default 30) are removed daily.

Run ids count down with time, so "older than the cutoff" is ``RowKey gt <id of the cutoff>``:
one parameterised query per table, no scan of run contents.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from core import clock
from core.ids import run_id_floor
from core.runs import PACKED_VALUES
from core.starter import input_blob_name
from core.storage import Storage

logger = logging.getLogger(__name__)


def remove_old_runs(storage: Storage, days: int, now: datetime | None = None) -> int:
    cutoff = (now or clock.now()) - timedelta(days=days)
    table = storage.table("runs")
    removed = 0
    blob_columns = [f"{prop}Blob" for prop in PACKED_VALUES.values()]
    old = table.query_entities(
        "RowKey gt @cutoff",
        parameters={"cutoff": run_id_floor(cutoff.timestamp())},
        select=["PartitionKey", "RowKey", *blob_columns],
    )
    for entity in old:
        table.delete_entity(entity["PartitionKey"], entity["RowKey"])
        # Every large value the run kept, and the input of a run that never finished (a poison
        # message leaves its input blob behind; a finished run's worker already deleted it).
        for blob_name in [entity.get(column) for column in blob_columns] + [input_blob_name(entity["PartitionKey"], entity["RowKey"])]:
            if blob_name:
                storage.delete_blob(blob_name)
        removed += 1
    claims = storage.table("schedules")
    for entity in claims.query_entities("RowKey lt @cutoff", parameters={"cutoff": clock.iso(cutoff)}, select=["PartitionKey", "RowKey"]):
        claims.delete_entity(entity["PartitionKey"], entity["RowKey"])
    logger.info("retention removed %d run(s) older than %s", removed, clock.iso(cutoff))
    return removed
