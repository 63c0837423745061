"""Running a process while a caller waits (API operations), with an early answer.

The run is recorded as ``running`` and executed here. If the process reaches
``intermediateReturn``, the caller gets that value at once and the rest of the process goes to
the run queue as a continuation (position, step results, trigger), where the worker finishes it
like any other run. Otherwise the run ends here: ``succeeded`` with the process result, or
``failed`` with the error (a ``throw`` step's response travels back to the caller). A run never
stays ``running`` because its record could not be stored (``core.runs.records.finish_run``).

The caller waits, so the run has a ``deadline`` (core/kernel/deadline.py): each ``http`` step gets at
most the time left, and when it passes the run ends ``failed`` with that reason and the step it
stopped, and the outcome says ``timed_out`` (the caller gets 504).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.kernel import clock
from core.kernel.deadline import Deadline, DeadlinePassed
from core.kernel.ids import new_run_id
from core.kernel.principal import Principal
from core.kernel.settings import Settings
from core.process.engine import RunContext, run_process
from core.process.errors import ProcessFailed
from core.process.http_step import call_step
from core.runs import records as runs
from core.runs.messages import RunMessage, enqueue, message_trigger
from core.scenarios.cache import ScenarioCache
from core.scenarios.repository import Scenario
from core.store.storage import Storage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncOutcome:
    run_id: str
    status: str  # "succeeded", "failed", or "running" (answered early, continuing)
    result: Any = None
    error: str | None = None
    failed_step: str | None = None
    response: Any = None  # a throw step's response
    timed_out: bool = False  # the deadline passed: the run was stopped


def run_now(
    storage: Storage,
    settings: Settings,
    scenario: Scenario,
    trigger: Mapping[str, Any],
    body: Any,
    principal: Principal | None,
    deadline: Deadline | None = None,
) -> SyncOutcome:
    deadline = deadline or Deadline(settings.api_deadline_seconds)
    run_id = new_run_id()
    summary = {key: value for key, value in trigger.items() if key not in ("data", "claims")}
    entity = runs.insert_run(storage, scenario.id, run_id, summary)
    runs.update_run(storage, entity, Status=runs.RUNNING, StartedAt=clock.now_iso(), Attempts=1)
    runs.note_started(scenario.id, run_id, summary.get("type"))
    full_trigger = message_trigger(trigger, principal)
    full_trigger["data"] = {**full_trigger["data"], "body": body}
    context = RunContext(input=body, trigger=full_trigger)
    try:
        outcome = run_process(
            scenario.process,
            context,
            ScenarioCache(storage, scenario.id),
            http=lambda step, resolve: _http_within(deadline, step, resolve, settings),
            stop_at_intermediate=True,
        )
    except ProcessFailed as exc:
        timed_out = deadline.tripped
        error = f"{exc.message}; the caller got 504 and the run was stopped" if timed_out else exc.message
        if timed_out:
            logger.warning("API call run %s stopped at step %s: %s", run_id, exc.step, deadline.describe())
        status = runs.finish_run(storage, entity, runs.FAILED, error=error, FailedStep=exc.step, steps=exc.records)
        response = None if timed_out else exc.response
        return SyncOutcome(run_id, status, error=error, failed_step=exc.step, response=response, timed_out=timed_out)
    except Exception as exc:
        # Storage trouble in a cache step, say: the caller gets the error, the run never stays
        # ``running`` (best effort: storage may be what is failing).
        try:
            runs.finish_run(storage, entity, runs.FAILED, error=f"{type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001 - the original error is what the caller needs
            logger.warning("could not record the failure of run %s", run_id)
        raise
    if outcome.kind == "intermediate":
        resume = {"position": outcome.position, "steps": outcome.steps, "result": context.result}
        continuation = RunMessage(scenario.id, run_id, body, True, full_trigger, resume=resume)
        try:
            runs.update_run(storage, entity, intermediate=outcome.result, steps=outcome.records)
            enqueue(storage, continuation)
        except Exception as exc:
            if not runs.is_refusal(exc):
                try:  # storage is down: the caller gets the error, the run does not stay running
                    runs.finish_run(storage, entity, runs.FAILED, error=f"the rest of the run could not be queued: {type(exc).__name__}")
                except Exception:  # noqa: BLE001
                    logger.warning("could not record the failure of run %s", run_id)
                raise
            error = f"the early answer or the rest of the run could not be stored: {runs.describe_refusal(exc)}"
            runs.finish_run(storage, entity, runs.FAILED, error=error, steps=outcome.records)
            return SyncOutcome(run_id, runs.FAILED, error=error)
        logger.info("run %s answered early; the rest continues from the queue", run_id)
        return SyncOutcome(run_id, runs.RUNNING, result=outcome.result)
    status = runs.finish_run(storage, entity, runs.SUCCEEDED, output=outcome.result, steps=outcome.records)
    if status != runs.SUCCEEDED:  # the result could not be recorded: the run failed
        return SyncOutcome(run_id, status, error="the run's result could not be stored")
    return SyncOutcome(run_id, runs.SUCCEEDED, result=outcome.result)


def _http_within(deadline: Deadline, step: Mapping[str, Any], resolve: Callable[[Any], Any], settings: Settings) -> Any:
    """An ``http`` step that ends when the deadline passes, however the upstream behaves."""
    try:
        return deadline.run(lambda: call_step(step, resolve, settings.outbound_allowed_hosts, deadline=deadline))
    except DeadlinePassed as exc:
        raise ProcessFailed("http", str(exc)) from None
