"""Starting a run: the run record (``queued``) and its queue message, for every kind of trigger.

Accept, schedules and API continuations all start runs the same way, so the message format and
the rule "an input too large for a queue message goes to a blob" live here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.kernel.ids import new_run_id
from core.kernel.jsonvalue import dumps
from core.kernel.principal import Principal
from core.runs import records as runs
from core.store.storage import Storage

MESSAGE_VERSION = 1
# A queue message holds 64 KiB of base64, so 48 KiB of text; inputs larger than this go to a blob.
MAX_INLINE_MESSAGE = 45_000


def message_trigger(trigger: Mapping[str, Any], principal: Principal | None) -> dict[str, Any]:
    """What the run's process will see as ``#trigger`` (before its body is added).

    The principal's name and claims win; without one, a trigger that already carries them (an
    API call, authenticated by the gateway) keeps its own.
    """
    data = dict(trigger.get("data", {}))
    if principal is not None or "username" not in data:
        data["username"] = principal.name if principal else None
    claims = dict(principal.claims) if principal else dict(trigger.get("claims") or {})
    return {**trigger, "data": data, "claims": claims}


def input_blob_name(scenario_id: str, run_id: str) -> str:
    return f"inputs/{scenario_id}/{run_id}.json"


def enqueue(storage: Storage, message: dict[str, Any]) -> None:
    """Send a run message; ``message["input"]`` moves to a blob when the message would be too big."""
    text = dumps(message)
    if len(text.encode("utf-8")) > MAX_INLINE_MESSAGE:
        blob_name = input_blob_name(message["scenarioId"], message["runId"])
        storage.container().upload_blob(blob_name, dumps(message).encode("utf-8"), overwrite=True)
        text = dumps({"v": MESSAGE_VERSION, "scenarioId": message["scenarioId"], "runId": message["runId"], "messageBlob": blob_name})
    storage.queue().send_message(text)


def start_run(
    storage: Storage,
    scenario_id: str,
    trigger: Mapping[str, Any],
    *,
    body: Any,
    has_body: bool,
    principal: Principal | None,
    run_id: str | None = None,
) -> str:
    """Record a queued run and enqueue it; returns its id.

    If the message cannot be sent, the caller gets the error (503 when storage is down), so the
    run was never accepted; its record is removed (``runs.discard_run``, retried until storage is
    back) rather than left ``queued`` with nothing to run it.
    """
    run_id = run_id or new_run_id()
    entity = runs.insert_run(storage, scenario_id, run_id, dict(trigger))
    message = {
        "v": MESSAGE_VERSION,
        "scenarioId": scenario_id,
        "runId": run_id,
        "hasBody": has_body,
        "trigger": message_trigger(trigger, principal),
        "input": body,
    }
    try:
        enqueue(storage, message)
    except Exception:
        runs.discard_run(storage, entity)
        raise
    return run_id
