"""Executes queued runs (called by the queue-triggered function, once per message).

Retries belong to the queue: a transient failure (storage, say, or an ``http`` step whose
upstream still answers 5xx or 429, times out or cannot be reached after the step's own retries)
is raised so the host makes the message visible again, and after ``MAX_ATTEMPTS`` the host
moves it to the poison queue; the run is marked ``failed`` on that last attempt so its record
never stays ``queued``. A failure that retrying cannot fix (a step that fails on this input, an
upstream's 4xx, a ``throw``) ends the run at once. A message
whose run has already ended is acknowledged without running anything, so no run executes twice
to the end.

A message may also be a *continuation*: an API call answered early by ``intermediateReturn``
leaves the rest of its process here, with the position and step results it had reached.

The run of an API call bound with ``"respond": "async"`` (its trigger says ``"respond": "async"``)
has a caller polling its status URL: its early answer is recorded the moment the process reaches
``intermediateReturn``, so the caller gets it then, not when the whole run ends.
"""

from __future__ import annotations

import logging
from typing import Any

from core.kernel import clock, telemetry
from core.kernel.errors import JunctionError
from core.kernel.settings import Settings
from core.process.engine import ProcessResult, RunContext, run_process
from core.process.errors import ProcessFailed
from core.process.http_step import call_step, poll_source
from core.runs import records as runs
from core.runs.messages import RunMessage, parse_message, read_whole
from core.scenarios.cache import ScenarioCache
from core.scenarios.repository import get_scenario_version
from core.store.errors import EntityChanged, EntityMissing
from core.store.storage import Storage

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # host.json extensions.queues.maxDequeueCount


def execute_run(storage: Storage, settings: Settings, message_text: str, dequeue_count: int) -> str:
    """Run the process a message names; returns the run's final status (or raises to retry)."""
    message = parse_message(message_text)
    if message is None:
        logger.error("dropping a run message that is not valid JSON of the expected shape")
        return "invalid"
    telemetry.annotate(scenario_id=message.scenario_id, run_id=message.run_id)
    claimed = _claim(storage, message, dequeue_count)
    if isinstance(claimed, str):
        return claimed
    entity = claimed
    earlier_records = runs.step_records(storage, entity)
    try:
        message = read_whole(storage, message)
        outcome = _execute(storage, settings, message, entity)
    except ProcessFailed as exc:
        records = earlier_records + exc.records
        if exc.retryable:  # an upstream's 5xx or 429, a time-out: the queue tries the run again
            _record_retry(storage, entity, message.run_id, dequeue_count, exc, records)
            raise
        logger.info("run %s failed at step %s: %s", message.run_id, exc.step, exc.message[:300])
        kept = {"intermediate": exc.intermediate} if exc.answered_early else {}
        if exc.response is not None and message.trigger.get("respond") == "async":
            kept["output"] = exc.response  # a throw step's response: what the status URL answers
        status = runs.finish_run(storage, entity, runs.FAILED, error=exc.message, FailedStep=exc.step, steps=records, **kept)
        _cleanup(storage, message)
        return status
    except JunctionError as exc:  # the scenario was deleted, say: retrying will not help
        status = runs.finish_run(storage, entity, runs.FAILED, error=exc.message)
        _cleanup(storage, message)
        return status
    except Exception as exc:
        final = dequeue_count >= MAX_ATTEMPTS
        logger.warning("run %s attempt %d failed%s: %s", message.run_id, dequeue_count, " (giving up)" if final else "", str(exc)[:300])
        error = f"attempt {dequeue_count}: {type(exc).__name__}: {exc}"
        try:
            if final:
                runs.finish_run(storage, entity, runs.FAILED, error=error)
            else:
                runs.update_run(storage, entity, Status=runs.QUEUED, error=error)
        except Exception:  # noqa: BLE001 - storage may be the thing that is down
            logger.warning("could not record the failure of run %s", message.run_id)
        raise
    # The process has run: from here on, nothing may make it run again (runs.finish_run).
    changes: dict[str, Any] = {"steps": earlier_records + outcome.records}
    if outcome.answered_early:  # nobody waits on a queued run: the record keeps the early answer
        changes["intermediate"] = outcome.intermediate
    status = runs.finish_run(storage, entity, runs.SUCCEEDED, output=outcome.result, error=None, **changes)
    _cleanup(storage, message)
    return status


def _claim(storage: Storage, message: RunMessage, dequeue_count: int) -> Any:
    """Mark the run ``running`` for this attempt and return its record, or return the status
    that says why nothing runs.

    A message from ``core.runs.starter`` carries the record as inserted: one write conditional on
    its ETag both checks that nothing has touched the run since (no attempt, no end) and marks it,
    where a read and a write were needed. When the ETag no longer matches (a retry, a repeated
    message), the record is read and judged as before: a run already ended is acknowledged.
    """
    started = {"StartedAt": clock.now_iso(), "Attempts": dequeue_count}
    entity = runs.queued_entity(message.scenario_id, message.run_id, message.record) if message.record else None
    if entity is not None:
        try:
            runs.update_run(storage, entity, if_unchanged=True, Status=runs.RUNNING, **started)
            return entity
        except (EntityChanged, EntityMissing):
            pass  # changed since it was queued, or gone: the read below tells which
        except Exception as exc:
            if not runs.is_refusal(exc):
                raise
            return runs.finish_run(storage, entity, runs.FAILED, error=f"the run could not be started: {runs.describe_refusal(exc)}")
    try:
        entity = runs.read_run_entity(storage, message.scenario_id, message.run_id)
    except JunctionError:
        logger.warning("run %s has no record (scenario deleted?); dropping its message", message.run_id)
        return "missing"
    if entity.get("Status") in runs.FINAL:
        logger.info("run %s already %s; acknowledging a repeated message", message.run_id, entity["Status"])
        return str(entity["Status"])
    try:
        runs.update_run(storage, entity, Status=runs.RUNNING, StartedAt=entity.get("StartedAt") or started["StartedAt"], Attempts=dequeue_count)
    except Exception as exc:
        if not runs.is_refusal(exc):
            raise
        return runs.finish_run(storage, entity, runs.FAILED, error=f"the run could not be started: {runs.describe_refusal(exc)}")
    return entity


def _record_retry(storage: Storage, entity: Any, run_id: str, dequeue_count: int, exc: ProcessFailed, records: list[dict[str, Any]]) -> None:
    """The run goes back to ``queued`` with this attempt's error; on the last attempt it is
    ``failed`` with the step and the step records. (Records of earlier attempts are not kept:
    the next attempt starts the process again and would read them as a continuation's.)"""
    final = dequeue_count >= MAX_ATTEMPTS
    logger.warning("run %s attempt %d failed at step %s%s: %s", run_id, dequeue_count, exc.step, " (giving up)" if final else "", exc.message)
    error = f"attempt {dequeue_count}: step {exc.step}: {exc.message}"
    if not final:
        runs.update_run(storage, entity, Status=runs.QUEUED, error=error)
        return
    kept = {"intermediate": exc.intermediate} if exc.answered_early else {}
    runs.finish_run(storage, entity, runs.FAILED, error=error, FailedStep=exc.step, steps=records, **kept)


def _execute(storage: Storage, settings: Settings, message: RunMessage, entity: Any) -> ProcessResult:
    scenario = get_scenario_version(storage, message.scenario_id, message.scenario_etag)
    body = message.input
    resume = message.resume or {}
    if not message.has_body and not resume and scenario.document.get("source"):
        body = poll_source(scenario.document["source"], settings.outbound_allowed_hosts)
    trigger = {**message.trigger, "data": {**message.trigger.get("data", {}), "body": body}}
    context = RunContext(input=body, trigger=trigger, steps=dict(resume.get("steps", {})), result=resume.get("result"))
    cache = ScenarioCache(storage, scenario.id)

    def http(step: Any, resolve: Any) -> Any:
        return call_step(step, resolve, settings.outbound_allowed_hosts)

    polled = message.trigger.get("respond") == "async" and not resume
    first = run_process(scenario.process, context, cache, http=http, start=resume.get("position"), stop_at_intermediate=polled)
    if first.kind != "intermediate":
        return first
    runs.update_run(storage, entity, intermediate=first.result)  # the polling caller's answer, now
    try:
        rest = run_process(scenario.process, context, cache, http=http, start=first.position)
    except ProcessFailed as exc:
        exc.records = first.records + exc.records
        exc.intermediate, exc.answered_early = first.result, True
        raise
    return ProcessResult(rest.kind, rest.result, rest.steps, first.records + rest.records, rest.position, first.result, True)


def _cleanup(storage: Storage, message: RunMessage) -> None:
    if message.message_blob:
        storage.delete_blob(message.message_blob)
