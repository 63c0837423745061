"""The timing loop the micro-benchmarks share: best of several rounds, seconds per call.

The best round, not the mean, because on a shared two-core machine the noise only ever adds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any


def best_per_call(fn: Callable[[], Any], calls: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - started) / calls)
    return best


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time another process has used so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
