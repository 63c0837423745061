"""Runs whose message the host gave up on: the function on ``<run queue>-poison`` marks them failed.

The worker marks a run ``failed`` itself when its last attempt *raises*. But when the last attempt
never finishes - the worker process crashed, was killed, or ran past ``functionTimeout`` - nobody
writes the record, and the host does not run the message again: once its dequeue count is past
``maxDequeueCount`` the host moves it to ``<queue>-poison`` without running it. Without this
function such a run would stay ``running`` forever.

The poison message is the run message as it was queued. A run that already ended is left as it is
(the worker recorded why), so a run is marked failed here at most once; either way the run's
input blob, if any, is removed: nothing will read it again.
"""

from __future__ import annotations

import logging

from core.kernel import clock, telemetry
from core.kernel.errors import JunctionError
from core.runs import records as runs
from core.runs.messages import parse_message
from core.runs.worker import MAX_ATTEMPTS
from core.store.errors import EntityChanged
from core.store.storage import Storage

logger = logging.getLogger(__name__)


def poison_reason(attempts: int) -> str:
    return (
        f"the run's message went to the poison queue after {attempts} attempt(s) of at most {MAX_ATTEMPTS}: "
        "the last attempt did not finish (the worker crashed, was stopped or ran out of time), and the "
        "host does not run a message again after its last attempt"
    )


def fail_poisoned_run(storage: Storage, message_text: str) -> str:
    """Mark the run a poison message names ``failed`` unless it already ended; returns its status
    afterwards (``invalid``/``missing`` when the message names no run). Raises (so the host retries)
    only when storage fails."""
    message = parse_message(message_text)
    if message is None:
        logger.error("poison queue: a message that is not a run message; dropping it")
        return "invalid"
    telemetry.annotate(scenario_id=message.scenario_id, run_id=message.run_id)
    try:
        entity = runs.read_run_entity(storage, message.scenario_id, message.run_id)
    except JunctionError:
        logger.warning("poison queue: run %s has no record (scenario deleted?); dropping its message", message.run_id)
        _remove_input(storage, message.message_blob)
        return "missing"
    status = str(entity.get("Status"))
    if status not in runs.FINAL:
        attempts = int(entity.get("Attempts") or 0)
        try:
            runs.update_run(
                storage, entity, if_unchanged=True, Status=runs.FAILED, EndedAt=clock.now_iso(), error=poison_reason(attempts)
            )
        except EntityChanged:
            # Someone wrote the record since it was read: another copy of this message, say. Look
            # again; if it still has not ended, raise so the host retries this message.
            entity = runs.read_run_entity(storage, message.scenario_id, message.run_id)
            if entity.get("Status") not in runs.FINAL:
                raise
            status = str(entity.get("Status"))
        else:
            status = runs.FAILED
            runs.note_ended(entity, status)
            logger.error("run %s marked failed: its message was poisoned after %d attempt(s)", message.run_id, attempts)
    else:
        logger.info("poison queue: run %s already %s; nothing to record", message.run_id, status)
    _remove_input(storage, message.message_blob)
    return status


def _remove_input(storage: Storage, blob: str | None) -> None:
    if blob:
        storage.delete_blob(blob)
