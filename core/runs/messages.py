"""The run message: the one writer and reader of what travels on the run queue.

Accept, schedules and API calls that answered early all start or continue runs with a message
on ``<prefix>-runs``; the worker (``core.runs.worker``) and the poison handler
(``core.runs.poison``) read it. The format is docs/architecture.md, "The run message": a JSON
object ``{"v", "scenarioId", "runId", "hasBody", "trigger", "input"}``, with ``resume`` for a
continuation. A message that would not fit a queue message goes to a blob, and the queue gets
``{"v", "scenarioId", "runId", "messageBlob"}`` naming it.

A run started by ``core.runs.starter`` also carries ``record`` (the queued run record as it was
inserted: its ETag, ``createdAt`` and trigger summary) and ``scenarioEtag`` (the version of the
scenario that accepted it): with them the worker claims the run with one conditional write
instead of a read and a write, and reuses a scenario it already holds instead of reading it
(docs/architecture.md, "Storage calls per run").

A message carries ``traceparent`` (W3C) when telemetry is on, so that the run's spans join the
trace of the call that started it; the queue keeps it even when the rest is in a blob.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.kernel import telemetry
from core.kernel.jsonvalue import dumps
from core.kernel.principal import Principal
from core.store.storage import Storage

MESSAGE_VERSION = 1
# A queue message holds 64 KiB of base64, so 48 KiB of text; inputs larger than this go to a blob.
MAX_INLINE_MESSAGE = 45_000
# W3C Trace Context, version 00: trace id, parent span id, flags; all-zero ids are invalid.
_TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass(frozen=True)
class RunMessage:
    """One run to execute: which run, its input and trigger, and (for a continuation) where the
    process stopped. ``message_blob`` names the blob holding the whole message, when it has one."""

    scenario_id: str
    run_id: str
    input: Any
    has_body: bool
    trigger: dict[str, Any]
    message_blob: str | None = None
    resume: dict[str, Any] | None = None
    record: dict[str, Any] | None = None
    scenario_etag: str | None = None
    traceparent: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "v": MESSAGE_VERSION,
            "scenarioId": self.scenario_id,
            "runId": self.run_id,
            "hasBody": self.has_body,
            "trigger": self.trigger,
            "input": self.input,
        }
        if self.resume is not None:
            data["resume"] = self.resume
        data.update(self._hints())
        return data

    def _hints(self) -> dict[str, Any]:
        """What lets the worker skip storage reads; kept in the queue even when the rest is in a blob."""
        hints: dict[str, Any] = {}
        if self.record is not None:
            hints["record"] = self.record
        if self.scenario_etag is not None:
            hints["scenarioEtag"] = self.scenario_etag
        if self.traceparent is not None:
            hints["traceparent"] = self.traceparent
        return hints


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
    """The blob of a message too large for the queue (retention removes it with its run)."""
    return f"inputs/{scenario_id}/{run_id}.json"


def enqueue(storage: Storage, message: RunMessage) -> None:
    """Send a run message; the whole message moves to a blob when it would be too big. With
    telemetry on, the message carries the current span's ``traceparent``."""
    if message.traceparent is None:
        message = dataclasses.replace(message, traceparent=telemetry.traceparent())
    text = dumps(message.to_json())
    if len(text.encode("utf-8")) > MAX_INLINE_MESSAGE:
        blob_name = input_blob_name(message.scenario_id, message.run_id)
        storage.container().upload_blob(blob_name, text.encode("utf-8"), overwrite=True)
        pointer = {"v": MESSAGE_VERSION, "scenarioId": message.scenario_id, "runId": message.run_id, "messageBlob": blob_name}
        text = dumps({**pointer, **message._hints()})
    storage.queue().send_message(text)


def _traceparent(value: Any) -> str | None:
    """A valid W3C traceparent, or None: a malformed one starts a new trace rather than failing."""
    return value if isinstance(value, str) and _TRACEPARENT.fullmatch(value) else None


def traceparent_of(text: str) -> str | None:
    """The ``traceparent`` a queue message carries (the queue trigger's span continues that
    trace), or None."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return _traceparent(data.get("traceparent")) if isinstance(data, dict) else None


def parse_message(text: str) -> RunMessage | None:
    """The run a queue message names, or None for a message that is not Junction's."""
    try:
        data = json.loads(text)
        record = data.get("record")
        scenario_etag = data.get("scenarioEtag")
        return RunMessage(
            scenario_id=str(data["scenarioId"]),
            run_id=str(data["runId"]),
            input=data.get("input"),
            has_body=bool(data.get("hasBody")),
            trigger=dict(data.get("trigger") or {}),
            message_blob=data.get("messageBlob"),
            resume=data.get("resume"),
            record=dict(record) if isinstance(record, dict) else None,
            scenario_etag=scenario_etag if isinstance(scenario_etag, str) else None,
            traceparent=_traceparent(data.get("traceparent")),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def read_whole(storage: Storage, message: RunMessage) -> RunMessage:
    """``message`` as it was sent: read from its blob when the queue held only a pointer."""
    if not message.message_blob:
        return message
    text = storage.container().download_blob(message.message_blob).readall().decode("utf-8")
    whole = parse_message(text)
    if whole is None:
        raise ValueError("the stored run message is not valid")
    return dataclasses.replace(
        whole, message_blob=message.message_blob, record=message.record, scenario_etag=message.scenario_etag, traceparent=whole.traceparent or message.traceparent
    )
