"""One overall deadline for work a caller waits for: the process behind an API operation.

App Service's front end gives up on an HTTP response after 230 s and answers 502 itself, while the
run goes on unseen. An API call therefore gets one deadline (``JUNCTION_API_DEADLINE_SECONDS``),
counted from when the call starts: every outbound call made for it waits at most the time left, no
retry starts or waits past it, and a call still busy when it passes (an upstream trickling its
answer) is abandoned and its late answer discarded. The caller then gets 504 and the run record
says the deadline passed, at which step (core/runs/sync_run.py, core/app/api_calls.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class DeadlinePassed(Exception):
    """The caller's deadline passed; the work it waits for must stop."""


class Deadline:
    """``seconds`` from now (monotonic clock); ``tripped`` once anything was stopped by it."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._at = clock() + seconds
        self.tripped = False

    def remaining(self) -> float:
        return max(0.0, self._at - self._clock())

    def expired(self) -> bool:
        return self._clock() >= self._at

    def describe(self) -> str:
        return f"the API call's deadline of {self.seconds:g} s (JUNCTION_API_DEADLINE_SECONDS) passed"

    def check(self) -> None:
        """Raise ``DeadlinePassed`` when no time is left."""
        if self.expired():
            self.tripped = True
            raise DeadlinePassed(self.describe())

    def cap(self, seconds: float) -> float:
        """``seconds``, or the time left if that is shorter (raises when none is left)."""
        self.check()
        return max(0.001, min(seconds, self.remaining()))

    def run(self, work: Callable[[], T]) -> T:
        """``work()`` in a thread of its own, waited for until the deadline at most.

        A blocking call (an HTTP read) cannot be interrupted; when the deadline passes first, the
        thread is left to end on its own (its outbound calls check this deadline too) and its
        result is dropped."""
        self.check()
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["value"] = work()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                outcome["error"] = exc

        worker = threading.Thread(target=target, name="junction-deadline", daemon=True)
        worker.start()
        worker.join(self.remaining())
        if worker.is_alive():
            self.tripped = True
            raise DeadlinePassed(self.describe())
        if "error" in outcome:
            error = outcome["error"]
            if isinstance(error, DeadlinePassed):
                self.tripped = True
            raise error
        return outcome["value"]  # type: ignore[no-any-return]
