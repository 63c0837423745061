"""How a process fails: the one error the engine, its steps and the run executors share."""

from __future__ import annotations

from typing import Any


class ProcessFailed(Exception):
    """A step failed, or a ``throw`` step ended the run.

    ``response`` is the HTTP response a ``throw`` step asked for (for API callers).
    ``retryable`` marks a failure that may pass if the run is tried again (an upstream's 5xx or
    429, a time-out, a connection error): a queued run is retried by the queue; everything else
    (a step that fails on its input, a 4xx, a ``throw``) ends the run at once.
    """

    def __init__(self, step: str, message: str, response: Any = None, *, retryable: bool = False) -> None:
        super().__init__(f"step {step}: {message}")
        self.step = step
        self.message = message
        self.response = response
        self.retryable = retryable
        self.records: list[dict[str, Any]] = []
        self.intermediate: Any = None
        self.answered_early = False
