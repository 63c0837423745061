"""Schedules: scenarios that carry a six-field NCRONTAB ``schedule`` start on their own.

A timer-triggered function calls ``start_due_runs`` every 15 seconds. Each due time is claimed
by inserting ``(scenario, due time)`` into the schedule table: Table Storage lets exactly one
insert of a key succeed, so when several instances tick at once each due time starts one run.
A tick looks back ``LOOKBACK`` so a late tick still starts what fell due; due times older than
that (the app was stopped) are skipped, not caught up. The look-back never reaches before the
schedule was set (``ScheduleSince``, kept by ``core.scenarios.repository``): a new schedule starts with its
first due time after that moment, never with a burst of back-dated runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError

from core.kernel import clock
from core.kernel.errors import BadRequest
from core.kernel.settings import Settings
from core.store.storage import Storage

logger = logging.getLogger(__name__)

LOOKBACK = timedelta(minutes=2)
MAX_RUNS_PER_TICK = 100


def check_schedule(expression: str) -> None:
    from croniter import croniter

    if len(expression.split()) != 6 or not croniter.is_valid(expression, second_at_beginning=True):
        raise BadRequest(
            f"schedule {expression!r} is not a six-field NCRONTAB expression (second minute hour day month day-of-week)",
            "InvalidSchedule",
        )


def due_times(expression: str, since: datetime, until: datetime) -> Iterator[datetime]:
    """Due times in (since, until]."""
    from croniter import croniter

    schedule = croniter(expression, since, second_at_beginning=True)
    for _ in range(MAX_RUNS_PER_TICK):
        moment: datetime = schedule.get_next(datetime)
        if moment > until:
            return
        yield moment


def _claim(storage: Storage, scenario_id: str, due: datetime) -> bool:
    try:
        storage.table("schedules").create_entity(
            {"PartitionKey": scenario_id, "RowKey": clock.iso(due), "ClaimedAt": clock.now_iso()}
        )
        return True
    except ResourceExistsError:
        return False


def _since(entity: Any, now: datetime) -> datetime:
    """Due times after this moment are started: the look-back, but never before the schedule was
    set. Scenarios stored before ``ScheduleSince`` existed use their last update instead."""
    set_at = entity.get("ScheduleSince") or entity.get("UpdatedAt")
    try:
        since = clock.parse_iso(set_at) if set_at else None
    except ValueError:
        since = None
    return max(now - LOOKBACK, since) if since is not None else now - LOOKBACK


def start_due_runs(storage: Storage, settings: Settings, now: datetime | None = None) -> list[dict[str, Any]]:
    """Start a run for every due time not yet claimed; returns what this call started."""
    from core.runs.starter import start_run

    now = now or clock.now()
    started: list[dict[str, Any]] = []
    scheduled = storage.table("scenarios").query_entities(
        "PartitionKey eq @pk and HasSchedule eq @yes",
        parameters={"pk": "scenario", "yes": True},
        select=["RowKey", "Schedule", "ScheduleSince", "UpdatedAt"],
    )
    for entity in scheduled:
        scenario_id, expression = entity["RowKey"], entity.get("Schedule")
        if not expression:
            continue
        for due in due_times(expression, _since(entity, now), now):
            if not _claim(storage, scenario_id, due):
                continue
            trigger = {"type": "schedule", "dueAt": clock.iso(due), "caller": {"kind": "schedule"}}
            run_id = start_run(storage, scenario_id, trigger, body=None, has_body=False, principal=None)
            logger.info("schedule started run %s of scenario %s due %s", run_id, scenario_id, clock.iso(due))
            started.append({"scenarioId": scenario_id, "runId": run_id, "dueAt": clock.iso(due)})
    return started
