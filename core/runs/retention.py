"""Retention: runs older than ``JUNCTION_RUN_RETENTION_DAYS`` (default 30) are removed daily.

The cost grows with what is removed, not with the table (docs/storage.md, "Retention"): no
query spans partitions. Runs live in their scenario's partition and run ids count down with
time, so a scenario's old runs are one range of row keys, ``PartitionKey eq @scenario and RowKey
gt @cutoff``, which Table Storage serves from its index starting at the cutoff, reading only the
rows it returns. Retention asks that of every partition that can hold runs: each scenario, and
each deleted scenario whose runs may remain (``scenarios.deleted_scenario_ids``: a tombstone
written when a scenario is deleted and dropped here once nothing of it is left). Schedule claims
are kept per scenario too, with due times as row keys, and go the same way.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from core.kernel import clock
from core.kernel.ids import run_id_floor
from core.runs.records import PACKED_VALUES
from core.runs.starter import input_blob_name
from core.scenarios.repository import deleted_scenario_ids, drop_tombstone, scenario_ids
from core.store.storage import Storage

logger = logging.getLogger(__name__)


def remove_old_runs(storage: Storage, days: int, now: datetime | None = None) -> int:
    cutoff = (now or clock.now()) - timedelta(days=days)
    removed = 0
    for scenario_id in scenario_ids(storage):
        removed += _remove_partition(storage, scenario_id, cutoff)
    for scenario_id in deleted_scenario_ids(storage):
        removed += _remove_partition(storage, scenario_id, cutoff)
        if _is_empty(storage, scenario_id):
            drop_tombstone(storage, scenario_id)
    logger.info("retention removed %d run(s) older than %s", removed, clock.iso(cutoff))
    return removed


def _remove_partition(storage: Storage, scenario_id: str, cutoff: datetime) -> int:
    """Remove one scenario's runs (and schedule claims) older than ``cutoff``."""
    table = storage.table("runs")
    blob_columns = [f"{prop}Blob" for prop in PACKED_VALUES.values()]
    old = table.query_entities(
        "PartitionKey eq @pk and RowKey gt @cutoff",
        parameters={"pk": scenario_id, "cutoff": run_id_floor(cutoff.timestamp())},
        select=["PartitionKey", "RowKey", *blob_columns],
    )
    removed = 0
    for entity in old:
        table.delete_entity(entity["PartitionKey"], entity["RowKey"])
        # Every large value the run kept, and the input of a run that never finished (a poison
        # message leaves its input blob behind; a finished run's worker already deleted it).
        for blob_name in [entity.get(column) for column in blob_columns] + [input_blob_name(entity["PartitionKey"], entity["RowKey"])]:
            if blob_name:
                storage.delete_blob(blob_name)
        removed += 1
    claims = storage.table("schedules")
    for entity in claims.query_entities(
        "PartitionKey eq @pk and RowKey lt @cutoff",
        parameters={"pk": scenario_id, "cutoff": clock.iso(cutoff)},
        select=["PartitionKey", "RowKey"],
    ):
        claims.delete_entity(entity["PartitionKey"], entity["RowKey"])
    return removed


def _is_empty(storage: Storage, scenario_id: str) -> bool:
    """Whether a deleted scenario has no runs and no schedule claims left (one item read each)."""
    for name in ("runs", "schedules"):
        pager = storage.table(name).query_entities(
            "PartitionKey eq @pk", parameters={"pk": scenario_id}, select=["RowKey"], results_per_page=1
        )
        if next(iter(pager), None) is not None:
            return False
    return True
