"""A scenario's schedule means what an Azure Functions timer's NCRONTAB means (NCrontab 3.3.3),
in the API, in the scheduler and in the console's preview: both day fields must match, day of
week is 0-6, no cron or Quartz extensions, nothing that never falls due, UTC.

devhost.ncrontab reads NCRONTAB as the host does (tests/unit/test_devhost_ncrontab.py); the
scenario schedule must compute the same due times.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.app.console import next_due_times
from core.kernel.errors import BadRequest
from core.runs import scheduler
from core.scenarios.schedule import check_schedule, due_times, next_due
from devhost.config import parse_timespan
from devhost.ncrontab import Schedule

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 1, 1, tzinfo=UTC)


def _next(expression: str, count: int, start: datetime = START) -> list[datetime]:
    return list(due_times(expression, start, start + timedelta(days=30 * 366)))[:count]


def _host(expression: str, count: int, start: datetime = START) -> list[datetime]:
    parsed, moment, found = Schedule.parse(expression), start, []
    for _ in range(count):
        moment = parsed.next_after(moment)
        found.append(moment)
    return found


def test_both_day_fields_must_match_as_in_ncrontab() -> None:
    """``0 0 0 13 * 5`` is every Friday the 13th; croniter's default fires on every 13th and
    every Friday."""
    assert [d.date().isoformat() for d in _next("0 0 0 13 * 5", 3)] == ["2026-02-13", "2026-03-13", "2026-11-13"]
    assert next_due("0 0 0 13 * 5", START) == datetime(2026, 2, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 0 13 * 5",
        "0 */5 * * * *",
        "0 30 9 * * 1-5",
        "*/20 * * * * *",
        "0 0 12 1,15 * *",
        "0 0 0 * JUL wed",
        "0 0 0 29 2 *",
        "5-10/2 0 0 * * *",
    ],
)
def test_due_times_agree_with_the_hosts_reading(expression: str) -> None:
    check_schedule(expression)
    assert _next(expression, 5) == _host(expression, 5)


@pytest.mark.parametrize(
    ("expression", "field"),
    [
        ("0 0 0 * * 7", "day-of-week 7"),
        ("0 0 0 * * 1-7", "day-of-week 7"),
        ("0 0 0 ? * 1", "'?'"),
        ("0 0 0 L * *", "'L'"),
        ("0 0 0 * * 5L", "'L'"),
        ("0 0 0 15W * *", "'W'"),
        ("0 0 0 * * 1#2", "'#'"),
    ],
)
def test_forms_ncrontab_does_not_have_are_refused_naming_the_field(expression: str, field: str) -> None:
    with pytest.raises(BadRequest) as refused:
        check_schedule(expression)
    assert refused.value.code == "InvalidSchedule" and field in refused.value.message


@pytest.mark.parametrize("expression", ["0 0 0 31 2 *", "0 0 0 30 2 *", "0 0 0 31 4 *", "0 0 0 31 2 1"])
def test_a_schedule_that_never_falls_due_is_refused(expression: str) -> None:
    with pytest.raises(BadRequest) as refused:
        check_schedule(expression)
    assert refused.value.code == "InvalidSchedule" and "never falls due" in refused.value.message
    assert next_due(expression, START) is None


def test_due_times_are_utc_whatever_zone_the_moment_is_in() -> None:
    elsewhere = START.astimezone(timezone(timedelta(hours=2)))
    assert (
        _next("0 0 9 * * *", 2, elsewhere)
        == _next("0 0 9 * * *", 2)
        == [datetime(2026, 1, 1, 9, tzinfo=UTC), datetime(2026, 1, 2, 9, tzinfo=UTC)]
    )
    assert all(d.tzinfo == UTC for d in _next("0 0 9 * * *", 2, elsewhere))


def test_the_consoles_preview_agrees() -> None:
    assert next_due_times("0 0 0 13 * 5", now=START, count=2) == ["2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z"]
    for expression in ("0 0 0 * * 7", "0 0 0 31 2 *"):
        with pytest.raises(BadRequest) as refused:
            next_due_times(expression, now=START)
        assert refused.value.code == "InvalidSchedule"


def test_a_schedule_message_appears_one_polling_interval_before_it_falls_due() -> None:
    """The lead must cover the longest wait between polls of an empty queue, or a due time would
    wait for the host's next poll."""
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    assert scheduler.LEAD.total_seconds() >= parse_timespan(queues["maxPollingInterval"], "maxPollingInterval")
    assert timedelta(minutes=1) <= scheduler.RESEED_PERIOD  # at most one tick a minute while idle
