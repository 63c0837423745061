"""NCRONTAB schedules of timer triggers as NCrontab 3.3.3 reads them: six fields, lists, ranges,
steps, names, both day fields must match, day of week 0-6, no cron or Quartz extensions."""

from __future__ import annotations

import datetime

import pytest

from devhost.ncrontab import CronError, Schedule

UTC = datetime.UTC


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def occurrences(schedule: str, start: str, count: int) -> list[str]:
    parsed = Schedule.parse(schedule)
    moment = at(start)
    result = []
    for _ in range(count):
        moment = parsed.next_after(moment)
        result.append(moment.strftime("%Y-%m-%d %H:%M:%S"))
    return result


def test_every_five_minutes() -> None:
    assert occurrences("0 */5 * * * *", "2024-01-01T10:03:10", 3) == [
        "2024-01-01 10:05:00",
        "2024-01-01 10:10:00",
        "2024-01-01 10:15:00",
    ]


def test_every_second_and_strictly_after() -> None:
    assert occurrences("* * * * * *", "2024-01-01T10:00:00", 2) == ["2024-01-01 10:00:01", "2024-01-01 10:00:02"]


def test_lists_ranges_and_steps() -> None:
    assert occurrences("5,10 0 9-10 * * *", "2024-01-01T00:00:00", 5) == [
        "2024-01-01 09:00:05",
        "2024-01-01 09:00:10",
        "2024-01-01 10:00:05",
        "2024-01-01 10:00:10",
        "2024-01-02 09:00:05",
    ]
    assert occurrences("0 0 8-18/5 * * *", "2024-01-01T00:00:00", 3) == [
        "2024-01-01 08:00:00",
        "2024-01-01 13:00:00",
        "2024-01-01 18:00:00",
    ]


def test_weekdays_and_names() -> None:
    # 2024-01-01 is a Monday; "0 30 9 * * 1-5" is weekdays at 09:30.
    assert occurrences("0 30 9 * * Mon-Fri", "2024-01-05T10:00:00", 2) == ["2024-01-08 09:30:00", "2024-01-09 09:30:00"]
    assert occurrences("0 0 0 * * 0", "2024-01-01T00:00:00", 1) == ["2024-01-07 00:00:00"]
    assert occurrences("0 0 12 1 Feb *", "2024-01-01T00:00:00", 2) == ["2024-02-01 12:00:00", "2025-02-01 12:00:00"]
    # NCrontab takes any prefix of the English name, ignoring case.
    assert occurrences("0 0 0 * * t", "2024-01-01T00:00:00", 1) == ["2024-01-02 00:00:00"]  # Tuesday
    assert occurrences("0 0 0 1 SEPTEMBER *", "2024-01-01T00:00:00", 1) == ["2024-09-01 00:00:00"]


def test_both_day_fields_must_match() -> None:
    # Friday the 13th only: NCrontab checks the day of week on days of the day-of-month field
    # (cron would fire on every 13th and every Friday).
    assert occurrences("0 0 0 13 * 5", "2024-01-01T00:00:00", 3) == [
        "2024-09-13 00:00:00",
        "2024-12-13 00:00:00",
        "2025-06-13 00:00:00",
    ]


def test_steps_and_ranges_as_ncrontab_reads_them() -> None:
    assert occurrences("5/20 * * * * *", "2024-01-01T00:00:00", 3) == [
        "2024-01-01 00:00:05",
        "2024-01-01 00:00:25",
        "2024-01-01 00:00:45",
    ]
    # A step of 0 is 1; a backwards range is swapped.
    assert occurrences("*/0 * * * * *", "2024-01-01T00:00:00", 1) == ["2024-01-01 00:00:01"]
    assert occurrences("0 0 5-3 * * *", "2024-01-01T00:00:00", 3) == [
        "2024-01-01 03:00:00",
        "2024-01-01 04:00:00",
        "2024-01-01 05:00:00",
    ]


def test_leap_day() -> None:
    assert occurrences("0 0 0 29 2 *", "2024-03-01T00:00:00", 1) == ["2028-02-29 00:00:00"]


def test_timespan_schedule_and_five_fields() -> None:
    assert occurrences("00:00:30", "2024-01-01T00:00:00", 2) == ["2024-01-01 00:00:30", "2024-01-01 00:01:00"]
    assert occurrences("*/15 * * * *", "2024-01-01T00:01:00", 1) == ["2024-01-01 00:15:00"]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "* * * *",
        "60 * * * * *",
        "* * 24 * * *",
        "* * * 0 * *",
        "* * * * 13 *",
        "a * * * * *",
        "* * * 31 2 *",
        "0 0 0 * * 7",  # day of week is 0-6
        "0 0 0 * * 1-7",
        "0 0 0 ? * *",  # Quartz and cron extensions NCrontab does not have
        "0 0 0 L * *",
        "0 0 0 * * 5L",
        "0 0 0 * * 5#3",
        "0 0 0 15W * *",
        "0 0 0 * * Funday",
        "0 0 0 1,,2 * *",
        "0 0 0 * * * *",
        "0 */x * * * *",
    ],
)
def test_bad_schedules_are_refused(bad: str) -> None:
    with pytest.raises(CronError):
        Schedule.parse(bad).next_after(at("2024-01-01T00:00:00"))
