"""Admission control: Accept (and an API operation bound with ``respond: async``, which queues
its run too) answers 503 while the run queue is deeper than a configured bound.

A run queued behind thousands of others will not start for minutes; the caller is better served
by a quick 503 with ``Retry-After`` (and its own retry policy) than by a 200 for work that waits.
The bound is ``JUNCTION_MAX_RUN_QUEUE_DEPTH`` (0, the default: no bound).

The depth is the queue's *approximate* message count (one Get Queue Metadata call), read at most
once every ``CACHE_SECONDS`` per process and queue: between reads every Accept of the process
decides on the cached figure, so admission costs no storage call on almost every request, and a
backlog is noticed (or its end seen) at most ``CACHE_SECONDS`` late. The count includes messages
that are invisible while a worker runs them. A failed read keeps the last figure (none: admit), as
storage trouble is the run insert's to report. README, "Admission control".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from core.kernel.errors import ServiceUnavailable
from core.kernel.settings import Settings
from core.store.storage import Storage

logger = logging.getLogger(__name__)

CACHE_SECONDS = 5.0
RETRY_AFTER_SECONDS = 30


class QueueDepth:
    """The run queue's approximate depth, cached per queue for ``ttl`` seconds; one reader at a
    time (the others use the figure they have rather than wait)."""

    def __init__(self, ttl: float = CACHE_SECONDS, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._known: dict[str, tuple[int, float]] = {}
        self.reads = 0

    def depth(self, storage: Storage) -> int:
        name = storage.run_queue_name
        depth, read_at = self._known.get(name, (0, float("-inf")))
        if self._monotonic() - read_at < self.ttl or not self._lock.acquire(blocking=name not in self._known):
            return depth
        try:
            depth, read_at = self._known.get(name, (0, float("-inf")))
            if self._monotonic() - read_at < self.ttl:
                return depth
            try:
                self.reads += 1
                depth = int(storage.queue().get_queue_properties().approximate_message_count or 0)
            except Exception as exc:  # noqa: BLE001 - the run insert reports storage trouble; admit meanwhile
                logger.warning("could not read the run queue's depth: %s", type(exc).__name__)
            self._known[name] = (depth, self._monotonic())
            return depth
        finally:
            self._lock.release()


QUEUE_DEPTH = QueueDepth()
"""The process's one cache of the run queue's depth."""


def check_admission(storage: Storage, settings: Settings, depth: QueueDepth = QUEUE_DEPTH) -> None:
    """503 ``RunQueueFull`` with ``Retry-After`` when the run queue holds more than the bound."""
    bound = settings.max_run_queue_depth
    if bound <= 0:
        return
    current = depth.depth(storage)
    if current > bound:
        raise ServiceUnavailable(
            f"too many runs are waiting to start ({current:,} queued, the bound is {bound:,}); retry later",
            "RunQueueFull",
            retry_after=RETRY_AFTER_SECONDS,
        )
