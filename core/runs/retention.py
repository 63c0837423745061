"""Retention: runs older than ``JUNCTION_RUN_RETENTION_DAYS`` (default 30) are removed daily, with
what else a scenario leaves behind once it is over.

The cost grows with what is removed, not with the table (docs/storage.md, "Retention"): no
query spans partitions. Runs live in their scenario's partition and run ids count down with
time, so a scenario's old runs are one range of row keys, ``PartitionKey eq @scenario and RowKey
gt @cutoff``, which Table Storage serves from its index starting at the cutoff, reading only the
rows it returns. Retention asks that of every partition that can hold runs: each scenario, and
each deleted scenario whose runs may remain (``core.scenarios.repository.deleted_scenario_ids``: a
tombstone written when a scenario is deleted and dropped here once nothing of it is left). Schedule
claims are kept per scenario too, with due times as row keys, and go the same way, and so do seen
signatures whose replay window is over (``core.identity.replays.remove_expired``) and Idempotency-Key
claims past their 24 hours (``core.runs.idempotency.remove_expired``).

A deleted scenario's cache entries (``core.scenarios.cache.remove_entries``) and spent rate-limit
buckets (``core.traffic.ratelimit.remove_spent``) go at once; so do the spent buckets of deleted
bindings (``core.traffic.ratelimit.remove_retired``), found by the tombstone deleting a binding
writes.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from core.identity import replays
from core.kernel import clock
from core.runs import idempotency, scheduler
from core.runs import records as runs
from core.scenarios import cache
from core.scenarios.repository import deleted_scenario_ids, drop_tombstone, scenario_ids
from core.store import tables
from core.store.storage import Storage
from core.traffic import ratelimit

logger = logging.getLogger(__name__)


def remove_old_runs(storage: Storage, days: int, now: datetime | None = None) -> int:
    """Run retention once; returns the number of runs removed (the rest is logged)."""
    moment = now or clock.now()
    cutoff = moment - timedelta(days=days)
    removed = claims = entries = buckets = 0
    for scenario_id in scenario_ids(storage):
        removed += _remove_partition(storage, scenario_id, cutoff)
        replays.remove_expired(storage, scenario_id, moment)
        claims += idempotency.remove_expired(storage, scenario_id, moment)
    for scenario_id in deleted_scenario_ids(storage):
        removed += _remove_partition(storage, scenario_id, cutoff)
        replays.remove_expired(storage, scenario_id, moment)
        claims += idempotency.remove_expired(storage, scenario_id, moment)
        entries += cache.remove_entries(storage, scenario_id)
        buckets += ratelimit.remove_spent(storage, scenario_id, moment.timestamp())
        if not _leaves_anything(storage, scenario_id):
            drop_tombstone(storage, scenario_id)
    buckets += ratelimit.remove_retired(storage, moment.timestamp())
    logger.info(
        "retention removed %d run(s) older than %s, %d expired Idempotency-Key claim(s), "
        "%d cache entr(ies) of deleted scenarios and %d spent rate-limit bucket(s) of deleted scenarios and bindings",
        removed, clock.iso(cutoff), claims, entries, buckets,
    )
    return removed


def _remove_partition(storage: Storage, scenario_id: str, cutoff: datetime) -> int:
    """Remove one scenario's runs (and schedule claims) older than ``cutoff``."""
    removed = runs.remove_runs_before(storage, scenario_id, cutoff)
    scheduler.remove_claims_before(storage, scenario_id, cutoff)
    return removed


# Every table retention empties for a deleted scenario, partitioned by its id (runs, which stay
# longest, first: the probe usually stops there).
_SCENARIO_TABLES = (tables.RUNS, tables.SCHEDULES, tables.IDEMPOTENCY, tables.SIGNATURES, tables.CACHE, tables.RATELIMITS)


def _leaves_anything(storage: Storage, scenario_id: str) -> bool:
    """Whether a deleted scenario still has anything retention removes later: one probe of one row
    per table, stopping at the first that has one."""
    return any(storage.partition_has_rows(table, scenario_id) for table in _SCENARIO_TABLES)
