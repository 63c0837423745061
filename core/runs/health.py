"""What the health endpoints and the queue gauges read: the run queues, the last schedule tick,
and a storage check that is cached so that ``GET /health`` costs no storage call per request.

- ``StorageCheck``: one point read of a table and the run queue's properties, at most once per
  ``CHECK_SECONDS`` per process; callers in between get the last answer. A check in flight does
  not hold up others that have an answer already (storage that hangs slows one caller only).
- ``queue_state``: depth of the run queue and of its poison queue, and the age of the message at
  the front of the run queue (the queue is roughly, not strictly, first in first out).
- ``record_schedule_tick``: the functions that serve schedules say they ran (at most once a minute
  per process), so an administrator can see that schedules are served (docs/operations.md, "Health").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.kernel import clock, telemetry
from core.store import tables
from core.store.errors import EntityMissing
from core.store.storage import Storage

logger = logging.getLogger(__name__)

CHECK_SECONDS = 30.0
"""How long ``GET /health`` answers from the last storage check before checking again."""
TICK_WRITE_SECONDS = 60.0
"""The last schedule tick is written at most this often per process."""
TICK_PARTITION, TICK_ROW = "tick", "last"
"""Where the last schedule tick is kept in the schedules table (beside the scenarios' partitions)."""
_PROBE_PARTITION, _PROBE_ROW = "health", "probe"


@dataclass(frozen=True)
class CheckResult:
    healthy: bool
    checked_at: str
    error: str | None = None


def check_storage(storage: Storage) -> CheckResult:
    """Can this process reach storage now? A table point read (a missing entity is an answer) and
    the run queue's properties; the error is named by its type only."""
    try:
        try:
            storage.table(tables.SCENARIOS).get_entity(_PROBE_PARTITION, _PROBE_ROW)
        except EntityMissing:
            pass
        storage.queue().get_queue_properties()
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        logger.warning("health check: storage is not reachable (%s)", type(exc).__name__)
        return CheckResult(False, clock.now_iso(), type(exc).__name__)
    return CheckResult(True, clock.now_iso())


class StorageCheck:
    """``check_storage``, cached per process for ``period`` seconds."""

    def __init__(self, period: float = CHECK_SECONDS, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._period = period
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last: CheckResult | None = None
        self._at = 0.0
        self.checks = 0
        """How many storage checks were made (tests)."""

    def result(self, storage: Storage) -> CheckResult:
        last = self._last
        if last is not None and self._monotonic() - self._at < self._period:
            return last
        # One caller checks; the others keep the last answer meanwhile (or wait for the first).
        if not self._lock.acquire(blocking=last is None):
            return last  # type: ignore[return-value]  # blocking=False only when last is set
        try:
            if self._last is not None and self._monotonic() - self._at < self._period:
                return self._last
            self.checks += 1
            self._last = check_storage(storage)
            self._at = self._monotonic()
            return self._last
        finally:
            self._lock.release()


_storage_check = StorageCheck()


def cached_storage_check(storage: Storage) -> CheckResult:
    """The process's cached check (``GET /health``)."""
    return _storage_check.result(storage)


@dataclass(frozen=True)
class QueueState:
    depth: int
    oldest_age_seconds: float | None
    poison_depth: int


def queue_state(storage: Storage) -> QueueState:
    """Three storage calls: the run queue's depth and front message, the poison queue's depth.
    Depths are Azure's approximate counts, invisible (delayed or in-flight) messages included."""
    runs = storage.queue()
    depth = int(runs.get_queue_properties().approximate_message_count or 0)
    front = list(runs.peek_messages(max_messages=1))
    oldest = None
    if front and front[0].inserted_on is not None:
        oldest = max(0.0, (clock.now() - front[0].inserted_on).total_seconds())
    poison = storage.queue(storage.run_queue_name + tables.POISON_SUFFIX)
    poison_depth = int(poison.get_queue_properties().approximate_message_count or 0)
    return QueueState(depth, oldest, poison_depth)


def queue_gauges(get_storage: Callable[[], Storage]) -> dict[str, Callable[[], Iterable[tuple[float, Mapping[str, Any]]]]]:
    """The readers of ``junction.queue.depth`` and ``junction.queue.oldest_age``. They are read one
    after the other at each export, so one ``queue_state`` serves both; a failure reports nothing
    (an unknown depth is not zero)."""
    cache: dict[str, Any] = {"at": -1e9, "state": None}

    def state() -> QueueState | None:
        now = time.monotonic()
        if now - cache["at"] > 5.0:
            try:
                cache["state"] = queue_state(get_storage())
            except Exception as exc:  # noqa: BLE001 - a gauge never fails the export
                logger.warning("queue gauges: could not read the queues (%s)", type(exc).__name__)
                cache["state"] = None
            cache["at"] = now
        return cache["state"]

    def depth() -> list[tuple[float, Mapping[str, Any]]]:
        found = state()
        if found is None:
            return []
        return [(found.depth, {telemetry.QUEUE: "runs"}), (found.poison_depth, {telemetry.QUEUE: "poison"})]

    def oldest_age() -> list[tuple[float, Mapping[str, Any]]]:
        found = state()
        if found is None:
            return []
        return [(found.oldest_age_seconds or 0.0, {telemetry.QUEUE: "runs"})]

    return {telemetry.QUEUE_DEPTH: depth, telemetry.QUEUE_OLDEST_AGE: oldest_age}


_last_tick_written = -1e9
_tick_lock = threading.Lock()


def record_schedule_tick(storage: Storage, monotonic: Callable[[], float] = time.monotonic) -> bool:
    """Note that schedules were served; written at most once per ``TICK_WRITE_SECONDS`` per
    process. Returns whether it wrote. A failure is logged, never raised: the tick's own work
    (starting due runs) matters more than its record."""
    global _last_tick_written
    with _tick_lock:
        now = monotonic()
        if now - _last_tick_written < TICK_WRITE_SECONDS:
            return False
        _last_tick_written = now
    try:
        storage.table(tables.SCHEDULES).upsert_entity({"PartitionKey": TICK_PARTITION, "RowKey": TICK_ROW, "TickedAt": clock.now_iso()})
    except Exception as exc:  # noqa: BLE001 - see above
        logger.warning("could not record the schedule tick (%s)", type(exc).__name__)
        return False
    return True


def last_schedule_tick(storage: Storage) -> str | None:
    """When schedules were last served (to within ``TICK_WRITE_SECONDS``), or None if never."""
    try:
        entity = storage.table(tables.SCHEDULES).get_entity(TICK_PARTITION, TICK_ROW)
    except EntityMissing:
        return None
    return str(entity.get("TickedAt")) or None
