"""Scenarios a process keeps in memory, so a warm Accept or run does not read them again.

Two holders, both bounded and thread-safe: versions by ETag for the worker (never stale: a version
never changes under its ETag) and recent reads for the external triggers (stale for at most the
hold time). ``core.scenarios.repository`` owns both and forgets what it writes
(docs/architecture.md, "Storage calls per run" and "Past one partition").
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, Protocol, TypeVar


class Stored(Protocol):
    """What a holder needs of a scenario."""

    @property
    def id(self) -> str: ...

    @property
    def etag(self) -> str: ...

    @property
    def stored_bytes(self) -> int: ...


T = TypeVar("T", bound=Stored)


class HeldVersions(Generic[T]):
    """Scenario versions this process has read for runs, by id and ETag (the last ``SIZE``).

    A version never changes under its ETag, so holding it is never stale: a run whose message
    names a version held here uses it without a read (docs/architecture.md, "Storage calls per run").
    """

    SIZE = 64

    def __init__(self) -> None:
        self._held: OrderedDict[tuple[str, str], T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, scenario_id: str, etag: str) -> T | None:
        with self._lock:
            scenario = self._held.get((scenario_id, etag))
            if scenario is not None:
                self._held.move_to_end((scenario_id, etag))
            return scenario

    def keep(self, scenario: T) -> None:
        with self._lock:
            self._held[(scenario.id, scenario.etag)] = scenario
            self._held.move_to_end((scenario.id, scenario.etag))
            while len(self._held) > self.SIZE:
                self._held.popitem(last=False)


class RecentReads(Generic[T]):
    """Scenarios this process read for external triggers, each kept for a set time.

    Every Accept reads its scenario from the one partition all scenarios share; answering from a
    read made less than ``JUNCTION_SCENARIO_HOLD_SECONDS`` ago turns that partition's load into
    about one read per second per instance and scenario, and saves Accept a storage call. A change
    made through this process is seen at once (every write forgets what is held); one made through
    another instance within the hold time (docs/architecture.md, "Past one partition"). Only found
    scenarios are kept: a new scenario can be triggered at once everywhere, and ids that do not
    exist cannot fill the memory. What is held is bounded by count and by stored size (the least
    recently read go first); a document larger than ``MAX_ONE`` is never held, only read.
    """

    SIZE = 4096
    MAX_BYTES = 32 * 1024 * 1024
    MAX_ONE = 1024 * 1024

    def __init__(self) -> None:
        self._held: OrderedDict[tuple[str, str], tuple[float, T]] = OrderedDict()
        self._bytes = 0
        self._forgotten = 0
        self._lock = threading.Lock()

    def generation(self) -> int:
        """Taken before a read: ``keep`` drops what was read if something was forgotten since,
        so a read racing a write of this process cannot hold the version the write replaced."""
        with self._lock:
            return self._forgotten

    def get(self, key: tuple[str, str], now: float) -> T | None:
        with self._lock:
            entry = self._held.get(key)
            if entry is None or entry[0] <= now:
                return None
            self._held.move_to_end(key)
            return entry[1]

    def keep(self, key: tuple[str, str], until: float, scenario: T, generation: int) -> None:
        if scenario.stored_bytes > self.MAX_ONE:
            return
        with self._lock:
            if generation != self._forgotten:
                return
            self._drop(key)
            self._held[key] = (until, scenario)
            self._bytes += scenario.stored_bytes
            while len(self._held) > self.SIZE or self._bytes > self.MAX_BYTES:
                self._drop(next(iter(self._held)))

    def forget(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._forgotten += 1
            self._drop(key)

    def held_bytes(self) -> tuple[int, int]:
        """How many scenarios are held and their stored size (for tests)."""
        with self._lock:
            return len(self._held), self._bytes

    def _drop(self, key: tuple[str, str]) -> None:
        entry = self._held.pop(key, None)
        if entry is not None:
            self._bytes -= entry[1].stored_bytes
