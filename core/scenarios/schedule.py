"""A scenario's ``schedule``: six-field NCRONTAB (second minute hour day month day-of-week), UTC.

Checked when a scenario is saved, and read by the scheduler that starts due runs
(``core.runs.scheduler``) and by the console's preview of the next due times, so all three
agree on what an expression means.

NCRONTAB is what Azure Functions timers read (NCrontab 3.3.3), and croniter reads more than it
does, differently in places. So an expression is checked against NCRONTAB's own grammar first:

- day of month and day of week must **both** match when both are restricted (``0 0 0 13 * 5`` is
  every Friday the 13th), where cron (and croniter by default) fires when *either* matches;
- day of week is 0 (Sunday) to 6: ``7`` is refused, as are the ``?``, ``L``, ``W`` and ``#``
  forms of Quartz and cron, which NCRONTAB does not have;
- an expression that never falls due (``0 0 0 31 2 *``) is refused: it would never run, and
  computing its next due time fails;
- every due time is UTC, whatever time zone a caller's moment is in.

A refusal is a 400 ``InvalidSchedule`` whose message names the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

from core.kernel.errors import BadRequest

MAX_RUNS_PER_TICK = 100

FIELDS = ("second", "minute", "hour", "day", "month", "day-of-week")
RANGES = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "day": (1, 31),
    "month": (1, 12),
    "day-of-week": (0, 6),
}
# Names croniter and NCrontab read alike: the three-letter English abbreviations.
NAMES = {
    "month": ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    "day-of-week": ("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
}
_ATOM = re.compile(r"^(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?$")


def _refuse(expression: str, why: str) -> BadRequest:
    return BadRequest(f"schedule {expression!r}: {why}", "InvalidSchedule")


def _value(expression: str, field: str, text: str) -> int:
    low, high = RANGES[field]
    names = NAMES.get(field, ())
    if text in names:
        return names.index(text) + (1 if field == "month" else 0)
    if not text.isdigit():
        raise _refuse(expression, f"{field} {text!r} is not a number{' or a three-letter name' if names else ''}")
    value = int(text)
    if field == "day-of-week" and value == 7:
        raise _refuse(expression, "day-of-week 7 is not NCRONTAB: Sunday is 0 (day of week 0-6)")
    if not low <= value <= high:
        raise _refuse(expression, f"{field} {value} is outside {low}-{high}")
    return value


def _check_field(expression: str, field: str, text: str) -> None:
    for special in ("?", "L", "W", "#"):
        if special in text.upper() and not (
            special in "LW" and any(name in text.lower() for name in NAMES.get(field, ()))
        ):
            raise _refuse(
                expression, f"{field} {text!r} uses {special!r}, which NCRONTAB does not have (cron and Quartz do)"
            )
    for part in text.lower().split(","):
        match = _ATOM.match(part)
        if match is None:
            raise _refuse(expression, f"{field} {text!r} is not '*', a value, a range a-b, a list or a step /n")
        span, step = match.groups()
        if step is not None and int(step) == 0:
            raise _refuse(expression, f"{field} {text!r} has a step of 0")
        if span != "*":
            for bound in span.split("-"):
                _value(expression, field, bound)


def check_schedule(expression: str) -> None:
    """Refuse what NCRONTAB would not read as croniter reads it, and what never falls due."""
    from croniter import croniter  # cold start: with the first schedule, not with the app

    fields = expression.split()
    if len(fields) != 6:
        raise _refuse(expression, "not a six-field NCRONTAB expression (second minute hour day month day-of-week)")
    for field, text in zip(FIELDS, fields, strict=True):
        _check_field(expression, field, text)
    if not croniter.is_valid(expression, second_at_beginning=True):
        raise _refuse(expression, "not a six-field NCRONTAB expression (second minute hour day month day-of-week)")
    if next_due(expression, datetime.now(UTC)) is None:
        raise _refuse(expression, "never falls due (no date matches its day, month and day-of-week)")


def _schedule(expression: str, since: datetime) -> object:
    from croniter import croniter  # cold start: with the first schedule, not with the app

    # day_or=False: both day fields must match, as NCRONTAB reads them. UTC, whatever ``since`` is in.
    return croniter(expression, since.astimezone(UTC), second_at_beginning=True, day_or=False)


def next_due(expression: str, after: datetime) -> datetime | None:
    """The first due time strictly after ``after`` (UTC), or None when none ever comes."""
    try:
        moment: datetime = _schedule(expression, after).get_next(datetime)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - croniter's own errors: a date that never comes (31 February)
        return None
    return moment.astimezone(UTC)


def due_times(expression: str, since: datetime, until: datetime) -> Iterator[datetime]:
    """Due times in (since, until], UTC, at most ``MAX_RUNS_PER_TICK``."""
    schedule = _schedule(expression, since)
    for _ in range(MAX_RUNS_PER_TICK):
        moment: datetime = schedule.get_next(datetime)  # type: ignore[attr-defined]
        if moment > until:
            return
        yield moment.astimezone(UTC)
