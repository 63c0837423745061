"""Starting a run: the run record (``queued``) and its queue message, for every kind of trigger.

Accept and schedules start runs the same way: the record first, then the message
(``core.runs.messages``). The message is what makes the run happen, so a run whose message could
not be sent is not left behind as a record that promises it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.kernel.ids import new_run_id
from core.kernel.principal import Principal
from core.runs import records as runs
from core.runs.messages import RunMessage, enqueue, message_trigger
from core.store.storage import Storage


def start_run(
    storage: Storage,
    scenario_id: str,
    trigger: Mapping[str, Any],
    *,
    body: Any,
    has_body: bool,
    principal: Principal | None,
    run_id: str | None = None,
    scenario_etag: str | None = None,
    record: Mapping[str, Any] | None = None,
) -> str:
    """Record a queued run and enqueue it; returns its id.

    If the message cannot be sent, the caller gets the error (503 when storage is down), so the
    run was never accepted; its record is removed (``core.runs.records.discard_run``, retried
    until storage is back) rather than left ``queued`` with nothing to run it.

    ``record`` is what the run record keeps of the trigger when it should not keep all of it (an
    API call's request data stays in the message, as for a call run while its caller waits).

    The message carries the record as inserted and ``scenario_etag`` (the scenario version the
    caller read, when it read one), so the worker need not read either (``core.runs.messages``).
    """
    run_id = run_id or new_run_id()
    entity = runs.insert_run(storage, scenario_id, run_id, dict(record if record is not None else trigger))
    message = RunMessage(
        scenario_id,
        run_id,
        body,
        has_body,
        message_trigger(trigger, principal),
        record=runs.queued_record(entity),
        scenario_etag=scenario_etag,
    )
    try:
        enqueue(storage, message)
    except Exception:
        runs.discard_run(storage, entity)
        raise
    runs.note_started(scenario_id, run_id, trigger.get("type"))
    return run_id
