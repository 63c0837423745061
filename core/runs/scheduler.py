"""Schedules: scenarios that carry a six-field NCRONTAB ``schedule`` start on their own.

A timer-triggered function calls ``start_due_runs`` every 15 seconds. Each due time is claimed
by inserting ``(scenario, due time)`` into the schedules table: Table Storage lets exactly one
insert of a key succeed, so when several instances tick at once each due time starts one run.
A tick looks back ``LOOKBACK`` so a late tick still starts what fell due; due times older than
that (the app was stopped) are skipped, not caught up. The look-back never reaches before the
schedule was set (``ScheduleSince``, kept by ``core.scenarios.repository``): a new schedule
starts with its first due time after that moment, never with a burst of back-dated runs.

Claims are kept per scenario, with due times as row keys, so retention removes old ones with one
range query per scenario (``remove_claims_before``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from core.kernel import clock
from core.kernel.settings import Settings
from core.runs.starter import start_run
from core.scenarios.repository import scheduled_scenarios
from core.scenarios.schedule import due_times
from core.store import tables
from core.store.errors import EntityExists
from core.store.storage import Storage

logger = logging.getLogger(__name__)

LOOKBACK = timedelta(minutes=2)


def _claim(storage: Storage, scenario_id: str, due: datetime) -> bool:
    try:
        storage.table(tables.SCHEDULES).create_entity(
            {"PartitionKey": scenario_id, "RowKey": clock.iso(due), "ClaimedAt": clock.now_iso()}
        )
        return True
    except EntityExists:
        return False


def _since(set_at: str | None, now: datetime) -> datetime:
    """Due times after this moment are started: the look-back, but never before the schedule was
    set (``set_at``)."""
    try:
        since = clock.parse_iso(set_at) if set_at else None
    except ValueError:
        since = None
    return max(now - LOOKBACK, since) if since is not None else now - LOOKBACK


def start_due_runs(storage: Storage, settings: Settings, now: datetime | None = None) -> list[dict[str, Any]]:
    """Start a run for every due time not yet claimed; returns what this call started."""
    now = now or clock.now()
    started: list[dict[str, Any]] = []
    for scenario_id, expression, set_at in scheduled_scenarios(storage):
        for due in due_times(expression, _since(set_at, now), now):
            if not _claim(storage, scenario_id, due):
                continue
            trigger = {"type": "schedule", "dueAt": clock.iso(due), "caller": {"kind": "schedule"}}
            run_id = start_run(storage, scenario_id, trigger, body=None, has_body=False, principal=None)
            logger.info("schedule started run %s of scenario %s due %s", run_id, scenario_id, clock.iso(due))
            started.append({"scenarioId": scenario_id, "runId": run_id, "dueAt": clock.iso(due)})
    return started


def remove_claims_before(storage: Storage, scenario_id: str, cutoff: datetime) -> None:
    """Remove a scenario's claims of due times before ``cutoff`` (one range of row keys)."""
    claims = storage.table(tables.SCHEDULES)
    for entity in claims.query_entities(
        "PartitionKey eq @pk and RowKey lt @cutoff",
        parameters={"pk": scenario_id, "cutoff": clock.iso(cutoff)},
        select=["PartitionKey", "RowKey"],
    ):
        claims.delete_entity(entity["PartitionKey"], entity["RowKey"])


def has_claims(storage: Storage, scenario_id: str) -> bool:
    """Whether any claim of the scenario is left (one item read)."""
    pager = storage.table(tables.SCHEDULES).query_entities(
        "PartitionKey eq @pk", parameters={"pk": scenario_id}, select=["RowKey"], results_per_page=1
    )
    return next(iter(pager), None) is not None
