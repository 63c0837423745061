"""Timer schedules as the Functions host reads them: NCRONTAB (NCrontab 3.3.3) or a TimeSpan.

NCRONTAB has six fields, ``second minute hour day month day-of-week`` (five fields: no seconds,
as the timer extension decides by counting fields). Each field is ``*``, a value, a range
``a-b`` (written backwards it is swapped, as NCrontab swaps it), a list ``a,b``, and any of those
with a step ``/n`` (``5/10`` is 5, 15, 25 ... up to the field's maximum; a step of 0 means 1).
Months and days of the week may be names, matched as NCrontab matches them: any prefix of the
English name, ignoring case (``Jan``, ``mon``, ``T`` = Tuesday). Day of week is 0 (Sunday) to 6;
``7`` is refused, and so are ``?``, ``L``, ``W`` and ``#`` (Quartz and cron extensions NCrontab
does not have).

Unlike cron, when both day fields are restricted **both must match**: NCrontab looks for a day
that is in the day-of-month field and then checks the day of week, so ``0 0 0 13 * 5`` is every
Friday the 13th, not every 13th and every Friday.

A TimeSpan (``00:05:00``, ``1.00:00:00``) means "every so long" from start-up. Times are UTC: the
host on Linux, Flex Consumption included, does not support ``WEBSITE_TIME_ZONE``.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")  # fmt: skip
DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
# (name, lowest, highest, names) of the six fields, as NCrontab's CrontabFieldImpl defines them.
FIELDS = (
    ("second", 0, 59, None),
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day", 1, 31, None),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 6, DAYS),
)
# Never fires: a schedule whose next occurrence lies this far ahead (Feb 29 on a given weekday
# recurs within 28 years; 30 February never) is refused.
SEARCH_DAYS = 366 * 29


class CronError(ValueError):
    """A schedule the host would refuse; the message says what is wrong."""


def _value(text: str, field: tuple[str, int, int, tuple[str, ...] | None]) -> int:
    name, low, high, names = field
    if not text:
        raise CronError(f"an empty value in the {name} field")
    if text[0].isdigit():
        if not text.isdigit():
            raise CronError(f"{text!r} is not a number in the {name} field")
        return int(text)
    if names is None:
        raise CronError(f"{text!r} is not a valid {name} value: a number from {low} to {high}")
    for index, full in enumerate(names):
        if full.lower().startswith(text.lower()):
            return low + index
    raise CronError(f"{text!r} is not a {name} name ({', '.join(names)})")


def _check(value: int, field: tuple[str, int, int, tuple[str, ...] | None]) -> int:
    name, low, high, _ = field
    if not low <= value <= high:
        raise CronError(f"{value} is outside the {name} field's {low}-{high}")
    return value


def parse_field(text: str, field: tuple[str, int, int, tuple[str, ...] | None]) -> frozenset[int]:
    """The values one NCRONTAB field stands for (CrontabFieldImpl.InternalParse + Accumulate)."""
    name, low, high, _ = field
    if not text:
        raise CronError(f"the {name} field is empty")
    if "," in text[1:]:
        values: set[int] = set()
        for item in text.split(","):
            values |= parse_field(item, field)
        return frozenset(values)
    every = 1
    slash = text.find("/")
    if slash > 0:
        step = text[slash + 1 :]
        if not step.isdigit():
            raise CronError(f"{step!r} is not a step (a whole number) in the {name} field")
        every, text = int(step), text[:slash]
    if text == "*":
        return frozenset(range(low, high + 1, max(1, every)))
    dash = text.find("-")
    if dash > 0:
        first, last = _value(text[:dash], field), _value(text[dash + 1 :], field)
        first, last = min(first, last), max(first, last)  # NCrontab swaps a backwards range
        return frozenset(range(_check(first, field), _check(last, field) + 1, max(1, every)))
    start = _check(_value(text, field), field)
    # NCrontab: a single value is just itself with a step of 1, else it runs to the maximum.
    return frozenset({start} if every == 1 else range(start, high + 1, max(1, every)))


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; ``next_after`` gives the next occurrence strictly after a time."""

    text: str
    fields: tuple[frozenset[int], ...] | None
    interval: datetime.timedelta | None = None

    @classmethod
    def parse(cls, text: str) -> Schedule:
        stripped = text.strip()
        interval = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})", stripped)
        if interval:
            days, hours, minutes, seconds = (int(g or 0) for g in interval.groups())
            span = datetime.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
            if span <= datetime.timedelta(0):
                raise CronError(f"schedule {text!r}: the interval must be positive")
            return cls(stripped, None, span)
        parts = stripped.split()
        if len(parts) == 5:
            parts = ["0", *parts]
        if len(parts) != 6:
            raise CronError(f"schedule {text!r}: expected six fields (second minute hour day month day-of-week)")
        try:
            fields = tuple(parse_field(part, field) for part, field in zip(parts, FIELDS, strict=True))
        except CronError as exc:
            raise CronError(f"schedule {text!r} is not a valid NCRONTAB expression: {exc}") from None
        schedule = cls(stripped, fields)
        schedule.next_after(datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))  # never fires -> CronError
        return schedule

    def next_after(self, moment: datetime.datetime) -> datetime.datetime:
        """The first time strictly after ``moment`` (kept in its time zone) that the schedule fires."""
        if self.interval is not None:
            return moment + self.interval
        assert self.fields is not None
        seconds, minutes, hours, days, months, weekdays = (sorted(f) for f in self.fields)
        start = moment.replace(microsecond=0) + datetime.timedelta(seconds=1)
        day = start.date()
        for _ in range(SEARCH_DAYS):
            weekday = (day.weekday() + 1) % 7  # NCrontab: Sunday is 0
            if day.month in months and day.day in days and weekday in weekdays:
                earliest = start.time() if day == start.date() else datetime.time(0, 0, 0)
                for hour in hours:
                    if hour < earliest.hour:
                        continue
                    for minute in minutes:
                        if (hour, minute) < (earliest.hour, earliest.minute):
                            continue
                        for second in seconds:
                            if (hour, minute, second) >= (earliest.hour, earliest.minute, earliest.second):
                                return datetime.datetime.combine(day, datetime.time(hour, minute, second), moment.tzinfo)
            day += datetime.timedelta(days=1)
        raise CronError(f"schedule {self.text!r} never fires")
