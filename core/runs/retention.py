"""Retention: runs older than ``JUNCTION_RUN_RETENTION_DAYS`` (default 30) are removed daily.

The cost grows with what is removed, not with the table (docs/storage.md, "Retention"): no
query spans partitions. Runs live in their scenario's partition and run ids count down with
time, so a scenario's old runs are one range of row keys, ``PartitionKey eq @scenario and RowKey
gt @cutoff``, which Table Storage serves from its index starting at the cutoff, reading only the
rows it returns. Retention asks that of every partition that can hold runs: each scenario, and
each deleted scenario whose runs may remain (``core.scenarios.repository.deleted_scenario_ids``: a
tombstone written when a scenario is deleted and dropped here once nothing of it is left). Schedule
claims are kept per scenario too, with due times as row keys, and go the same way, and so do seen
signatures whose replay window is over (``core.identity.replays.remove_expired``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from core.identity import replays
from core.kernel import clock
from core.runs import records as runs
from core.runs import scheduler
from core.scenarios.repository import deleted_scenario_ids, drop_tombstone, scenario_ids
from core.store.storage import Storage

logger = logging.getLogger(__name__)


def remove_old_runs(storage: Storage, days: int, now: datetime | None = None) -> int:
    moment = now or clock.now()
    cutoff = moment - timedelta(days=days)
    removed = 0
    for scenario_id in scenario_ids(storage):
        removed += _remove_partition(storage, scenario_id, cutoff)
        replays.remove_expired(storage, scenario_id, moment)
    for scenario_id in deleted_scenario_ids(storage):
        removed += _remove_partition(storage, scenario_id, cutoff)
        replays.remove_expired(storage, scenario_id, moment)
        if not runs.has_runs(storage, scenario_id) and not scheduler.has_claims(storage, scenario_id):
            drop_tombstone(storage, scenario_id)
    logger.info("retention removed %d run(s) older than %s", removed, clock.iso(cutoff))
    return removed


def _remove_partition(storage: Storage, scenario_id: str, cutoff: datetime) -> int:
    """Remove one scenario's runs (and schedule claims) older than ``cutoff``."""
    removed = runs.remove_runs_before(storage, scenario_id, cutoff)
    scheduler.remove_claims_before(storage, scenario_id, cutoff)
    return removed
