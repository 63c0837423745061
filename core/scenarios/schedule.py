"""A scenario's ``schedule``: six-field NCRONTAB (second minute hour day month day-of-week), UTC.

Checked when a scenario is saved, and read by the timer that starts due runs
(``core.runs.scheduler``) and by the console's preview of the next due times, so all three
agree on what an expression means.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from core.kernel.errors import BadRequest

MAX_RUNS_PER_TICK = 100


def check_schedule(expression: str) -> None:
    from croniter import croniter  # cold start: with the first schedule, not with the app

    if len(expression.split()) != 6 or not croniter.is_valid(expression, second_at_beginning=True):
        raise BadRequest(
            f"schedule {expression!r} is not a six-field NCRONTAB expression (second minute hour day month day-of-week)",
            "InvalidSchedule",
        )


def due_times(expression: str, since: datetime, until: datetime) -> Iterator[datetime]:
    """Due times in (since, until]."""
    from croniter import croniter  # cold start: with the first schedule, not with the app

    schedule = croniter(expression, since, second_at_beginning=True)
    for _ in range(MAX_RUNS_PER_TICK):
        moment: datetime = schedule.get_next(datetime)
        if moment > until:
            return
        yield moment
