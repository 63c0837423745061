"""Cold start: importing the function app, next to importing only the SDKs it cannot do without.

Each import runs in a fresh interpreter, alternating the two commands, and the median of the runs
is compared. The floor is what any app on these SDKs pays; the ratio is Junction's own share.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLOOR = "import azure.functions, azure.data.tables, azure.storage.queue, azure.storage.blob"
APP = "import function_app"


# Both sides import compiled bytecode, as a deployed app does after its first start: the SDKs'
# .pyc files were written when pip installed them, and the warm-up run below writes the app's.
# An inherited PYTHONDONTWRITEBYTECODE would make every app run compile its source again and
# charge the compiler to Junction.
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def _time(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env=ENV)
    return time.perf_counter() - started


def run(repeats: int = 15) -> dict[str, Any]:
    _time(APP), _time(FLOOR)  # warm the file cache and .pyc files
    app_times, floor_times = [], []
    for _ in range(repeats):
        app_times.append(_time(APP))
        floor_times.append(_time(FLOOR))
    app, floor = statistics.median(app_times), statistics.median(floor_times)
    return {"app_ms": app * 1000, "floor_ms": floor * 1000, "ratio": app / floor, "target": 1.15}


def report(result: dict[str, Any]) -> str:
    return (
        f"cold start: import function_app {result['app_ms']:.0f} ms, SDKs only {result['floor_ms']:.0f} ms, "
        f"ratio {result['ratio']:.2f} (target <= {result['target']})"
    )


if __name__ == "__main__":
    print(report(run()))
