"""A small NCRONTAB parser: the six-field schedules of Azure Functions timer triggers.

Fields: ``second minute hour day month day-of-week``; each is ``*``, a number, a name (``Jan``,
``Mon``), a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a comma list of those. Day-of-week 0 and 7
are Sunday. As in cron (and NCrontab), when both day and day-of-week are restricted a day matches
if either does. Five-field schedules (no seconds) are accepted too, with second 0. TimeSpan
schedules (``00:05:00``) mean "every five minutes", as the host reads them.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

MONTHS = {
    name: i
    for i, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1
    )
}
DAYS = {name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES: tuple[dict[str, int], ...] = ({}, {}, {}, {}, MONTHS, DAYS)


class CronError(ValueError):
    """A schedule the host would refuse; the message says which field is wrong."""


def _value(text: str, field: int) -> int:
    names = _NAMES[field]
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    if not text.isdigit():
        raise CronError(f"{text!r} is not a number or a name")
    return int(text)


def _parse_field(text: str, field: int) -> frozenset[int]:
    low, high = _RANGES[field]
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronError(f"empty item in {text!r}")
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise CronError(f"bad step in {item!r}")
            step = int(step_text)
        if base == "*":
            start, end = low, high
            if field == 5:
                end = 6
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, field), _value(last, field)
        else:
            start = _value(base, field)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise CronError(f"{item!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    if field == 5 and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; ``next_after`` gives the next occurrence strictly after a time."""

    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    day_any: bool
    weekday_any: bool
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
            every = frozenset(range(60))
            return cls(
                stripped,
                every,
                every,
                frozenset(range(24)),
                frozenset(range(1, 32)),
                frozenset(range(1, 13)),
                frozenset(range(7)),
                True,
                True,
                span,
            )
        fields = stripped.split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) == 6:
            fields = ["*" if f == "?" and i in (3, 5) else f for i, f in enumerate(fields)]
        if len(fields) != 6:
            raise CronError(f"schedule {text!r}: expected six fields (second minute hour day month day-of-week)")
        parsed = []
        for index, field in enumerate(fields):
            try:
                parsed.append(_parse_field(field, index))
            except CronError as exc:
                names = ("second", "minute", "hour", "day", "month", "day-of-week")
                raise CronError(f"schedule {text!r}, {names[index]} field: {exc}") from None
        return cls(stripped, *parsed, day_any=fields[3] == "*", weekday_any=fields[5] == "*")

    def _day_matches(self, day: datetime.date) -> bool:
        weekday = (day.weekday() + 1) % 7  # Python Monday=0 -> cron Sunday=0
        in_days = day.day in self.days
        in_weekdays = weekday in self.weekdays
        if self.day_any or self.weekday_any:
            return in_days and in_weekdays
        return in_days or in_weekdays

    def next_after(self, moment: datetime.datetime) -> datetime.datetime:
        """The first time strictly after ``moment`` (same tzinfo) that the schedule fires."""
        if self.interval is not None:
            return moment + self.interval
        start = moment.replace(microsecond=0) + datetime.timedelta(seconds=1)
        day = start.date()
        limit = day + datetime.timedelta(days=366 * 5)
        while day <= limit:
            if day.month in self.months and self._day_matches(day):
                first_day = day == start.date()
                for hour in sorted(self.hours):
                    if first_day and hour < start.hour:
                        continue
                    for minute in sorted(self.minutes):
                        if first_day and hour == start.hour and minute < start.minute:
                            continue
                        for second in sorted(self.seconds):
                            candidate = datetime.datetime.combine(
                                day, datetime.time(hour, minute, second), tzinfo=moment.tzinfo
                            )
                            if candidate >= start:
                                return candidate
            day += datetime.timedelta(days=1)
        raise CronError(f"schedule {self.text!r} never fires")
