"""Schedules: scenarios that carry a six-field NCRONTAB ``schedule`` start on their own.

Nothing ticks while no schedule is due. Each scheduled scenario's next due time is one message on
the schedule queue (``<prefix>-schedules``), sent with a visibility delay so that it appears
``LEAD`` before it falls due (the host finds a message within one ``maxPollingInterval`` of its
appearing, so it is in hand by the due time). Its queue trigger calls ``handle_due``, which

1. drops the message when the scenario's schedule is gone or was set again since the message was
   sent (it carries ``ScheduleSince``: a superseded chain never starts a run);
2. waits out the rest of the lead, then claims the due time by inserting ``(scenario, due time)``
   into the schedules table with the message's id: Table Storage lets exactly one insert of a key
   succeed, so duplicate messages, two instances and the re-seed racing the chain start one run
   per due time, and only the claim's owner goes on (a retry of the owner's own message finishes
   what its failed attempt began, with the run id the claim holds);
3. starts the run and sends the next due time, and notes it in the chain row (partition
   ``chain`` of the schedules table: since, next due time).

A wait longer than a queue message's 7-day visibility limit is chained: the message comes back
early, is sent again for the same due time, and starts nothing.

The re-seed timer (``reseed``, every ``RESEED_PERIOD``) re-creates a chain whose row is missing,
belongs to an older schedule, or whose next due time passed more than ``GRACE`` ago without the
chain moving on: a message lost for good (poisoned after 5 failed attempts, removed by hand)
delays its schedule by at most one re-seed period (plus ``GRACE``). Saving a scenario whose schedule is new or changed seeds its chain at
once (``seed``).

A schedule starts from when it was set (``ScheduleSince``, kept by ``core.scenarios.repository``):
its first run is its first due time after that, never one before. A due time found more than
``LOOKBACK`` late (the app was stopped, or scaled to zero and slow to start) is skipped, not
caught up: the chain goes on with the first due time at most ``LOOKBACK`` old.

Claims are kept per scenario, with due times as row keys, so retention removes old ones with one
range query per scenario (``remove_claims_before``). docs/architecture.md, "The path of a run",
and docs/latency.md, "A scheduled run", say what this costs and how late a run starts.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.kernel import clock
from core.kernel.errors import NotFound
from core.kernel.ids import new_run_id
from core.kernel.jsonvalue import dumps
from core.runs.records import read_run_entity
from core.runs.starter import start_run
from core.scenarios.repository import schedule_of, scheduled_scenarios
from core.scenarios.schedule import next_due
from core.store import tables
from core.store.errors import EntityExists, EntityMissing
from core.store.storage import Storage

logger = logging.getLogger(__name__)

LOOKBACK = timedelta(minutes=2)
LEAD = timedelta(seconds=2)
"""How long before its due time a message appears: host.json's ``maxPollingInterval``, the
longest the host waits between polls of an empty queue (a unit test keeps them in step)."""
EARLY = LEAD + timedelta(seconds=5)
"""A message found earlier than this before its due time is a stage of a long wait: sent again."""
MAX_DELAY = timedelta(days=7) - timedelta(minutes=1)
"""Azure caps a message's visibility delay at 7 days."""
RESEED_PERIOD = timedelta(minutes=10)
"""The re-seed timer's period (triggers/schedules.py): the most a lost message delays a schedule."""
GRACE = timedelta(seconds=30)
"""A chain whose next due time is this far past without having moved on is lost. Its message is
in hand by the due time, so half a minute is ample; judging a merely late chain lost costs nothing
but a second chain, which dies at the first due time the two share."""
CHAIN_PARTITION = "chain"
MESSAGE_VERSION = 1


@dataclass(frozen=True)
class DueMessage:
    """One due time of one schedule: what waits on the schedule queue."""

    scenario_id: str
    due: datetime
    since: str
    """The schedule's ``ScheduleSince`` when the message was sent: a message of a schedule set
    again since (or removed) starts nothing."""

    def to_text(self) -> str:
        return dumps(
            {"v": MESSAGE_VERSION, "scenarioId": self.scenario_id, "dueAt": clock.iso(self.due), "since": self.since}
        )


def parse_due(text: str) -> DueMessage | None:
    """The due time a schedule message names, or None for a message that is not Junction's."""
    try:
        data = json.loads(text)
        return DueMessage(str(data["scenarioId"]), clock.parse_iso(str(data["dueAt"])), str(data["since"]))
    except (ValueError, KeyError, TypeError):
        return None


def _parse(moment: str | None) -> datetime | None:
    try:
        return clock.parse_iso(moment) if moment else None
    except ValueError:
        return None


def send_due(storage: Storage, message: DueMessage, now: datetime) -> None:
    """Put a due time on the schedule queue, visible ``LEAD`` before it (at most 7 days from now),
    and note it as the chain's next due time."""
    delay = min(MAX_DELAY, max(timedelta(0), message.due - LEAD - now))
    storage.queue(storage.schedule_queue_name).send_message(
        message.to_text(), visibility_timeout=int(delay.total_seconds()), time_to_live=-1
    )
    storage.table(tables.SCHEDULES).upsert_entity(
        {
            "PartitionKey": CHAIN_PARTITION,
            "RowKey": message.scenario_id,
            "Since": message.since,
            "NextDue": clock.iso(message.due),
            "UpdatedAt": clock.iso(now),
        }
    )


def seed(
    storage: Storage, scenario_id: str, expression: str, since: str, now: datetime | None = None
) -> datetime | None:
    """Start a schedule's chain with its first due time after both ``now`` and when it was set;
    returns that due time (None for a schedule that never falls due)."""
    now = now or clock.now()
    set_at = _parse(since)
    due = next_due(expression, max(now, set_at) if set_at is not None else now)
    if due is None:
        logger.warning("schedule %r of scenario %s never falls due; nothing is scheduled", expression, scenario_id)
        return None
    send_due(storage, DueMessage(scenario_id, due, since), now)
    return due


LEGACY_CLAIM = ""
"""What ``_claim`` returns for a due time the 15-second timer of earlier versions claimed: its run
was started then, and no chain owns it, so this one goes on without starting anything."""


def _claim(storage: Storage, message: DueMessage, message_id: str) -> str | None:
    """The run id this message starts the due time with, or None when another message owns it.

    The claim holds the message's id and the run id: the same message retried (its previous
    attempt failed after claiming) finds its own claim and finishes with the same run id.
    """
    claims = storage.table(tables.SCHEDULES)
    row = clock.iso(message.due)
    run_id = new_run_id()
    try:
        claims.create_entity(
            {
                "PartitionKey": message.scenario_id,
                "RowKey": row,
                "ClaimedAt": clock.now_iso(),
                "RunId": run_id,
                "MessageId": message_id,
            }
        )
        return run_id
    except EntityExists:
        claim = claims.get_entity(message.scenario_id, row)
    if not claim.get("MessageId"):
        return LEGACY_CLAIM
    if claim.get("MessageId") != message_id or not claim.get("RunId"):
        return None
    return str(claim["RunId"])


def _start(storage: Storage, message: DueMessage, run_id: str) -> bool:
    """Start the due time's run with ``run_id``; False when a previous attempt already had."""
    if not run_id:
        return False
    try:
        read_run_entity(storage, message.scenario_id, run_id)
        return False
    except NotFound:
        pass
    trigger = {"type": "schedule", "dueAt": clock.iso(message.due), "caller": {"kind": "schedule"}}
    try:
        start_run(storage, message.scenario_id, trigger, body=None, has_body=False, principal=None, run_id=run_id)
    except EntityExists:
        return False
    return True


def handle_due(
    storage: Storage,
    text: str,
    message_id: str,
    *,
    now: Callable[[], datetime] = clock.now,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any] | None:
    """Handle one message of the schedule queue; returns what it started (or None).

    Raising leaves the message to the queue's retries: a storage failure is retried, and the
    claim keeps a retry from starting a second run.
    """
    message = parse_due(text)
    if message is None:
        logger.warning("schedule queue: message %s is not a due time; dropped", message_id)
        return None
    current = schedule_of(storage, message.scenario_id)
    if current is None or current[1] != message.since:
        logger.info(
            "schedule of scenario %s was removed or set again; due time %s dropped",
            message.scenario_id,
            clock.iso(message.due),
        )
        return None
    expression, since = current
    moment = now()
    if message.due - moment > EARLY:
        send_due(storage, message, moment)  # a wait longer than a message can be delayed: the next stage
        return None
    if message.due > moment:
        sleep((message.due - moment).total_seconds())
        moment = now()
    started: dict[str, Any] | None = None
    if moment - message.due > LOOKBACK:
        logger.warning(
            "scenario %s: due time %s found %.0f s late (the app was stopped or slow to start); skipped, not caught up",
            message.scenario_id,
            clock.iso(message.due),
            (moment - message.due).total_seconds(),
        )
        after = moment - LOOKBACK
    else:
        run_id = _claim(storage, message, message_id)
        if run_id is None:
            logger.info(
                "scenario %s: due time %s is another message's; dropped", message.scenario_id, clock.iso(message.due)
            )
            return None
        if _start(storage, message, run_id):
            logger.info(
                "schedule started run %s of scenario %s due %s", run_id, message.scenario_id, clock.iso(message.due)
            )
            started = {"scenarioId": message.scenario_id, "runId": run_id, "dueAt": clock.iso(message.due)}
        after = message.due
    set_at = _parse(since)
    following = next_due(expression, max(after, set_at) if set_at is not None else after)
    if following is None:
        logger.warning(
            "schedule %r of scenario %s never falls due again; its chain ends", expression, message.scenario_id
        )
    else:
        send_due(storage, DueMessage(message.scenario_id, following, since), now())
    return started


def _alive(chain: dict[str, Any] | None, since: str, now: datetime) -> bool:
    if chain is None or chain.get("Since") != since:
        return False
    next_due_at = _parse(chain.get("NextDue"))
    return next_due_at is not None and next_due_at >= now - GRACE


def reseed(storage: Storage, now: datetime | None = None) -> list[dict[str, Any]]:
    """Seed every schedule whose chain is missing or lost; remove chain rows of schedules that are
    gone. One query of the scheduled scenarios, one of the chain rows, then a message and a row
    per chain seeded. A schedule that fails is logged and the others go on."""
    now = now or clock.now()
    table = storage.table(tables.SCHEDULES)
    chains = {e["RowKey"]: e for e in table.query_entities("PartitionKey eq @pk", parameters={"pk": CHAIN_PARTITION})}
    seeded: list[dict[str, Any]] = []
    scheduled: set[str] = set()
    for scenario_id, expression, since in scheduled_scenarios(storage):
        scheduled.add(scenario_id)
        since = since or ""
        if _alive(chains.get(scenario_id), since, now):
            continue
        try:
            due = seed(storage, scenario_id, expression, since, now)
        except Exception:  # noqa: BLE001 - one scenario's trouble must not stop the others
            logger.exception("could not seed the schedule of scenario %s", scenario_id)
            continue
        if due is not None:
            logger.warning(
                "schedule of scenario %s had no live chain; seeded with due time %s", scenario_id, clock.iso(due)
            )
            seeded.append({"scenarioId": scenario_id, "dueAt": clock.iso(due)})
    for scenario_id in set(chains) - scheduled:
        try:
            table.delete_entity(CHAIN_PARTITION, scenario_id)
        except EntityMissing:
            pass
    return seeded


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
    return storage.partition_has_rows(tables.SCHEDULES, scenario_id)
