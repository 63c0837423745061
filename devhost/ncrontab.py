"""NCRONTAB schedules of Azure Functions timer triggers, evaluated with croniter.

Six fields ``second minute hour day month day-of-week`` (names like ``Jan``/``Mon`` allowed, 0 and
7 are Sunday, a day matches when day *or* day-of-week matches if both are restricted, as in cron
and NCrontab). Five-field schedules get second 0; ``?`` means ``*``. TimeSpan schedules
(``00:05:00``) mean "every five minutes", as the host reads them. croniter does the calendar
arithmetic: the same library core/schedules.py uses, rather than a parser of our own.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from croniter import CroniterError, croniter


class CronError(ValueError):
    """A schedule the host would refuse; the message says what is wrong."""


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; ``next_after`` gives the next occurrence strictly after a time."""

    text: str
    cron: str | None
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
        fields = stripped.split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            raise CronError(f"schedule {text!r}: expected six fields (second minute hour day month day-of-week)")
        expression = " ".join("*" if f == "?" and i in (3, 5) else f for i, f in enumerate(fields))
        if any(int(a) > int(b) for a, b in re.findall(r"(\d+)-(\d+)", expression)):
            raise CronError(f"schedule {text!r}: a range runs backwards (NCrontab refuses it; croniter would wrap)")
        if not croniter.is_valid(expression, second_at_beginning=True):
            raise CronError(f"schedule {text!r} is not a valid NCRONTAB expression")
        schedule = cls(stripped, expression)
        schedule.next_after(datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))  # never fires -> CronError
        return schedule

    def next_after(self, moment: datetime.datetime) -> datetime.datetime:
        """The first time strictly after ``moment`` (same tzinfo) that the schedule fires."""
        if self.interval is not None:
            return moment + self.interval
        try:
            following: datetime.datetime = croniter(self.cron, moment, second_at_beginning=True).get_next(datetime.datetime)
        except (ValueError, KeyError, CroniterError) as exc:  # e.g. 30 February
            raise CronError(f"schedule {self.text!r} never fires") from exc
        return following
