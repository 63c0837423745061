"""NCRONTAB schedules of timer triggers: six fields, lists, ranges, steps, names, day rules."""

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
    assert occurrences("0 0 0 * * 7", "2024-01-01T00:00:00", 1) == ["2024-01-07 00:00:00"]
    assert occurrences("0 0 12 1 Feb *", "2024-01-01T00:00:00", 2) == ["2024-02-01 12:00:00", "2025-02-01 12:00:00"]


def test_day_and_weekday_both_restricted_match_either() -> None:
    # The 13th, or any Friday (cron semantics).
    assert occurrences("0 0 0 13 * 5", "2024-09-01T00:00:00", 3) == [
        "2024-09-06 00:00:00",
        "2024-09-13 00:00:00",
        "2024-09-20 00:00:00",
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
        "*/0 * * * * *",
        "a * * * * *",
        "5-1 * * * * *",
        "* * * 31 2 *",
    ],
)
def test_bad_schedules_are_refused(bad: str) -> None:
    with pytest.raises(CronError):
        Schedule.parse(bad).next_after(at("2024-01-01T00:00:00"))
