"""Schedules as chains of delayed queue messages (core.runs.scheduler), against Azurite.

Each due time is one message on the schedule queue; these tests hand such messages to
``handle_due`` as the queue trigger would, with a clock of their own (the wait before a due time is
the clock's, so no test sleeps), and read what was claimed, started and sent in Azurite: the claims
and the chain row in the schedules table, the runs, the messages on the queue. No due time may
run twice, whatever duplicates, racing instances or the re-seed do.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.kernel import clock
from core.kernel.ids import new_run_id
from core.kernel.settings import Settings
from core.runs import records as runs
from core.runs import scheduler
from core.runs.scheduler import CHAIN_PARTITION, DueMessage, handle_due, reseed, seed
from core.scenarios import repository as scenarios
from core.store import tables
from core.store.storage import Storage

EVERY_MINUTE = "0 * * * * *"


class Clock:
    """A clock the handler reads and sleeps on: sleeping moves it on, nothing waits."""

    def __init__(self, start: datetime) -> None:
        self.moment = start
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.moment

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.moment += timedelta(seconds=seconds)


def _scenario(storage: Storage, schedule: str | None = EVERY_MINUTE) -> scenarios.Scenario:
    document: dict[str, Any] = {"name": "s", "process": {"steps": [{"type": "return", "value": "#trigger.dueAt"}]}}
    if schedule:
        document["schedule"] = schedule
    return scenarios.create_scenario(storage, document)


def _next_minute(after: datetime) -> datetime:
    return after.replace(second=0, microsecond=0) + timedelta(minutes=1)


def _handle(
    storage: Storage, message: DueMessage, message_id: str, at: datetime
) -> tuple[dict[str, Any] | None, Clock]:
    fake = Clock(at)
    return handle_due(storage, message.to_text(), message_id, now=fake, sleep=fake.sleep), fake


def _runs(storage: Storage, scenario_id: str) -> list[dict[str, Any]]:
    return list(runs.list_runs(storage, scenario_id, top=100, skiptoken=None, link=str)["value"])


def _chain(storage: Storage, scenario_id: str) -> dict[str, Any] | None:
    rows = list(
        storage.table(tables.SCHEDULES).query_entities(
            "PartitionKey eq @pk and RowKey eq @rk", parameters={"pk": CHAIN_PARTITION, "rk": scenario_id}
        )
    )
    return dict(rows[0]) if rows else None


def _queued(storage: Storage) -> int:
    """Messages on the schedule queue, visible or not (each test has a queue of its own)."""
    return int(storage.queue(storage.schedule_queue_name).get_queue_properties().approximate_message_count)


def _first_due(scenario: scenarios.Scenario) -> DueMessage:
    since = clock.parse_iso(scenario.schedule_since or "")
    return DueMessage(scenario.id, _next_minute(since), scenario.schedule_since or "")


def test_a_due_time_waits_for_its_moment_starts_one_run_and_sends_the_next(storage: Storage) -> None:
    scenario = _scenario(storage)
    message = _first_due(scenario)
    started, fake = _handle(storage, message, "m1", message.due - timedelta(seconds=1.5))
    assert fake.slept == [1.5]  # found before its due time (the lead): waits for it, then starts
    assert started is not None and started["dueAt"] == clock.iso(message.due)
    [run] = _runs(storage, scenario.id)
    assert (
        run["id"] == started["runId"]
        and run["trigger"]["type"] == "schedule"
        and run["trigger"]["dueAt"] == clock.iso(message.due)
    )
    chain = _chain(storage, scenario.id)
    assert (
        chain is not None
        and chain["NextDue"] == clock.iso(message.due + timedelta(minutes=1))
        and chain["Since"] == scenario.schedule_since
    )
    assert _queued(storage) == 1  # the next due time waits on the queue, invisible until its lead


def test_duplicate_messages_of_one_due_time_start_one_run_and_one_next(storage: Storage) -> None:
    scenario = _scenario(storage)
    message = _first_due(scenario)
    first, _ = _handle(storage, message, "m1", message.due)
    second, _ = _handle(storage, message, "m2", message.due)  # a duplicate: the re-seed, or a second chain
    assert first is not None and second is None
    assert len(_runs(storage, scenario.id)) == 1
    assert _queued(storage) == 1  # only the owner of the due time goes on: duplicates die out


def test_two_instances_handling_duplicates_at_once_start_one_run(storage: Storage) -> None:
    scenario = _scenario(storage)
    message = _first_due(scenario)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: _handle(storage, message, f"m{i}", message.due)[0], range(4)))
    assert sum(r is not None for r in results) == 1
    assert len(_runs(storage, scenario.id)) == 1
    assert _queued(storage) == 1


def test_a_retried_message_finishes_its_own_claim_with_the_claimed_run_id(storage: Storage) -> None:
    """The owner's first attempt claimed the due time and died before starting the run: its retry
    (the same message id) starts the run with the id the claim holds; nobody else does, and a
    third attempt starts nothing more."""
    scenario = _scenario(storage)
    message = _first_due(scenario)
    run_id = new_run_id()
    storage.table(tables.SCHEDULES).create_entity(
        {
            "PartitionKey": scenario.id,
            "RowKey": clock.iso(message.due),
            "ClaimedAt": clock.now_iso(),
            "RunId": run_id,
            "MessageId": "m1",
        }
    )
    assert _handle(storage, message, "m2", message.due)[0] is None
    retried, _ = _handle(storage, message, "m1", message.due)
    assert retried is not None and retried["runId"] == run_id
    assert _handle(storage, message, "m1", message.due)[0] is None
    assert [r["id"] for r in _runs(storage, scenario.id)] == [run_id]


def test_a_due_time_the_old_timer_claimed_starts_nothing_but_the_chain_goes_on(storage: Storage) -> None:
    scenario = _scenario(storage)
    message = _first_due(scenario)
    storage.table(tables.SCHEDULES).create_entity(
        {"PartitionKey": scenario.id, "RowKey": clock.iso(message.due), "ClaimedAt": clock.now_iso()}
    )
    assert _handle(storage, message, "m1", message.due)[0] is None
    assert _runs(storage, scenario.id) == []
    chain = _chain(storage, scenario.id)
    assert chain is not None and chain["NextDue"] == clock.iso(message.due + timedelta(minutes=1))


def test_a_message_of_a_schedule_changed_or_removed_since_starts_nothing(storage: Storage) -> None:
    scenario = _scenario(storage)
    old = _first_due(scenario)
    changed = scenarios.patch_scenario(storage, scenario.id, {"schedule": "30 * * * * *"}, None)
    assert changed.schedule_since != scenario.schedule_since
    assert _handle(storage, old, "m1", old.due)[0] is None  # superseded: it carries the old ScheduleSince
    scenarios.patch_scenario(storage, scenario.id, {"schedule": None}, None)
    current = DueMessage(scenario.id, old.due, changed.schedule_since or "")
    assert _handle(storage, current, "m2", current.due)[0] is None  # removed
    gone = _scenario(storage)
    scenarios.delete_scenario(storage, gone.id, None)
    assert _handle(storage, _first_due(gone), "m3", _first_due(gone).due)[0] is None  # deleted
    assert _runs(storage, scenario.id) == [] and _queued(storage) == 0
    assert not scheduler.has_claims(storage, scenario.id)


def test_a_schedule_changed_back_to_the_same_expression_still_supersedes_its_old_chain(storage: Storage) -> None:
    scenario = _scenario(storage)
    old = _first_due(scenario)
    scenarios.patch_scenario(storage, scenario.id, {"schedule": None}, None)
    again = scenarios.patch_scenario(storage, scenario.id, {"schedule": EVERY_MINUTE}, None)
    assert again.schedule_since != scenario.schedule_since
    assert _handle(storage, old, "m1", old.due)[0] is None


def test_seeding_starts_with_the_first_due_time_after_the_schedule_was_set(storage: Storage) -> None:
    scenario = _scenario(storage, "* * * * * *")
    since = clock.parse_iso(scenario.schedule_since or "")
    due = seed(storage, scenario.id, "* * * * * *", scenario.schedule_since or "", now=since - timedelta(minutes=5))
    assert due is not None and since < due <= since + timedelta(seconds=1)  # never back-dated
    later = since + timedelta(minutes=5)
    due = seed(storage, scenario.id, "* * * * * *", scenario.schedule_since or "", now=later)
    assert due is not None and later < due <= later + timedelta(seconds=1)


def test_a_due_time_found_long_after_it_fell_due_is_skipped_not_caught_up(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    """After downtime the waiting message is found late: due times older than the look-back are
    not run; the chain resumes with the first due time at most the look-back old."""
    scenario = _scenario(storage)
    message = _first_due(scenario)
    found = message.due + timedelta(minutes=30, seconds=10)
    with caplog.at_level(logging.WARNING, logger="core.runs.scheduler"):
        started, _ = _handle(storage, message, "m1", found)
    assert started is None and _runs(storage, scenario.id) == []
    assert "skipped, not caught up" in caplog.text
    chain = _chain(storage, scenario.id)
    assert chain is not None and chain["NextDue"] == clock.iso(_next_minute(found - scheduler.LOOKBACK))
    resumed = DueMessage(scenario.id, clock.parse_iso(chain["NextDue"]), message.since)
    assert _handle(storage, resumed, "m2", found)[0] is not None  # within the look-back: started


def test_a_wait_longer_than_seven_days_is_chained_and_starts_nothing_early(storage: Storage) -> None:
    scenario = _scenario(storage, "0 0 0 1 1 *")
    now = clock.now()
    due = seed(storage, scenario.id, "0 0 0 1 1 *", scenario.schedule_since or "", now=now)
    assert due is not None and due - now > timedelta(days=7)
    assert _queued(storage) == 1
    early = DueMessage(scenario.id, due, scenario.schedule_since or "")
    started, fake = _handle(storage, early, "m1", now + timedelta(days=7))
    assert started is None and fake.slept == []  # sent again for the same due time, nothing waits
    assert _queued(storage) == 2 and _runs(storage, scenario.id) == []
    assert not scheduler.has_claims(storage, scenario.id)
    chain = _chain(storage, scenario.id)
    assert chain is not None and chain["NextDue"] == clock.iso(due)


def test_reseed_seeds_missing_lost_and_outdated_chains_and_leaves_live_ones(storage: Storage) -> None:
    now = clock.now() + timedelta(hours=1)
    live, missing, lost, outdated = (_scenario(storage) for _ in range(4))
    for scenario in (live, lost, outdated):
        seed(storage, scenario.id, EVERY_MINUTE, scenario.schedule_since or "", now=now - timedelta(seconds=20))
    table = storage.table(tables.SCHEDULES)
    late = now - scheduler.GRACE - timedelta(seconds=1)  # its message would have been handled by now
    table.upsert_entity({"PartitionKey": CHAIN_PARTITION, "RowKey": lost.id, "NextDue": clock.iso(late)}, mode="merge")
    table.upsert_entity(
        {"PartitionKey": CHAIN_PARTITION, "RowKey": outdated.id, "Since": "2020-01-01T00:00:00.000Z"}, mode="merge"
    )
    gone = _scenario(storage)
    seed(storage, gone.id, EVERY_MINUTE, gone.schedule_since or "", now=now)
    scenarios.delete_scenario(storage, gone.id, None)
    seeded = reseed(storage, now)
    assert {s["scenarioId"] for s in seeded} == {missing.id, lost.id, outdated.id}
    for scenario in (live, missing, lost, outdated):
        chain = _chain(storage, scenario.id)
        assert (
            chain is not None
            and chain["Since"] == scenario.schedule_since
            and clock.parse_iso(chain["NextDue"]) > now - scheduler.GRACE
        )
    assert _chain(storage, gone.id) is None  # the chain row of a deleted scenario goes
    assert reseed(storage, now) == []  # every chain live now


def test_a_stored_schedule_that_never_falls_due_does_not_stop_the_reseed_of_others(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    """Saving refuses such a schedule now; one stored earlier must not abort the re-seed (it
    aborted every tick of the old timer)."""
    bad = _scenario(storage)
    storage.table(tables.SCENARIOS).update_entity(
        {"PartitionKey": "scenario", "RowKey": bad.id, "Schedule": "0 0 0 31 2 *"}, mode="merge"
    )
    good = _scenario(storage)
    with caplog.at_level(logging.WARNING, logger="core.runs.scheduler"):
        seeded = reseed(storage, clock.now())
    assert [s["scenarioId"] for s in seeded] == [good.id]
    assert "never falls due" in caplog.text


def test_the_reseed_racing_a_live_chain_still_runs_each_due_time_once(storage: Storage) -> None:
    """The re-seed judged a late chain lost and seeded a second one: the two chains meet at their
    first common due time, where one of them ends."""
    scenario = _scenario(storage)
    first = _first_due(scenario)
    a1, _ = _handle(storage, first, "a1", first.due)  # chain A: due time 1, sends due time 2
    second = DueMessage(scenario.id, first.due + timedelta(minutes=1), first.since)
    results = [
        _handle(storage, second, "a2", second.due)[0],  # chain A's message for due time 2
        _handle(storage, second, "b1", second.due)[0],  # chain B, seeded by the re-seed for due time 2
    ]
    assert a1 is not None and sum(r is not None for r in results) == 1
    due = sorted(run["trigger"]["dueAt"] for run in _runs(storage, scenario.id))
    assert due == [clock.iso(first.due), clock.iso(second.due)]
    assert _queued(storage) == 2  # due time 2 sent by A's first message, due time 3 by its owner only


def test_retention_keeps_chain_rows_and_claims_are_per_scenario(storage: Storage) -> None:
    scenario = _scenario(storage)
    message = _first_due(scenario)
    _handle(storage, message, "m1", message.due)
    assert scheduler.has_claims(storage, scenario.id)
    scheduler.remove_claims_before(storage, scenario.id, message.due + timedelta(seconds=1))
    assert not scheduler.has_claims(storage, scenario.id)
    assert _chain(storage, scenario.id) is not None


def test_the_schedule_queue_is_the_prefixs_own(storage: Storage, settings: Settings) -> None:
    assert storage.schedule_queue_name == f"{settings.table_prefix}-schedules"
    assert tables.schedule_queue_name({"JUNCTION_TABLE_PREFIX": settings.table_prefix}) == storage.schedule_queue_name


def test_a_message_that_is_not_a_due_time_is_dropped(storage: Storage) -> None:
    fake = Clock(datetime(2030, 1, 1, tzinfo=UTC))
    assert handle_due(storage, "not json", "m1", now=fake, sleep=fake.sleep) is None
    assert handle_due(storage, '{"v": 1}', "m1", now=fake, sleep=fake.sleep) is None
