"""Run records: one entity per run, in the scenario's partition, newest first.

Run ids count down with time (``core.kernel.ids.new_run_id``), so a plain partition query lists the newest
runs first. Status moves ``queued -> running -> succeeded | failed``; a run that will be retried
goes back to ``queued`` with its last error kept.

A run's final state is recorded by ``finish_run``: what storage refuses to keep (a value too
large for any layout, one with no JSON form) ends the run ``failed`` with the reason, so
bookkeeping that fails never makes the process run again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, MutableMapping
from datetime import datetime
from typing import Any

from core.kernel import clock, telemetry
from core.kernel.errors import NotFound, PayloadTooLarge
from core.kernel.ids import parse_guid, run_id_floor
from core.kernel.jsonvalue import dumps
from core.runs.messages import input_blob_name
from core.store import tables
from core.store.errors import EntityChanged, EntityMissing, StorageError
from core.store.storage import IF_UNCHANGED, Entity, Storage
from core.web.paging import page

logger = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
FINAL = frozenset({SUCCEEDED, FAILED})
# The run values that may be large, each packed (``Storage.pack_merge``) under this property name.
PACKED_VALUES = {"output": "Output", "steps": "Steps", "intermediate": "Intermediate", "error": "Error"}


# Caller-supplied text in a run's trigger summary (a Content-Type header, a caller's name) is kept
# up to this many characters; the whole summary up to TRIGGER_MAX_CHARS (a string property).
TRIGGER_TEXT_CHARS = 1000
TRIGGER_MAX_CHARS = 16_000
# A step record keeps this much of its error; the run's ``error`` holds the whole text.
STEP_ERROR_CHARS = 1000


def bounded(value: Any, limit: int = TRIGGER_TEXT_CHARS, *, depth: int = 0) -> Any:
    """``value`` with every string cut to ``limit`` characters (marked with an ellipsis), lists and
    objects to their first 100 items: what Junction keeps of text a caller chose."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "\u2026"
    if depth > 8:
        return None
    if isinstance(value, dict):
        return {str(k)[:limit]: bounded(v, limit, depth=depth + 1) for k, v in list(value.items())[:100]}
    if isinstance(value, list | tuple):
        return [bounded(v, limit, depth=depth + 1) for v in list(value)[:100]]
    return value


def trigger_text(trigger: dict[str, Any]) -> str:
    """The trigger summary as stored: bounded, and small enough for one string property."""
    text = dumps(bounded(trigger))
    if len(text) > TRIGGER_MAX_CHARS:
        text = dumps({"type": bounded(trigger.get("type"), 100), "truncated": True})
    return text


def new_run_entity(scenario_id: str, run_id: str, trigger: dict[str, Any]) -> dict[str, Any]:
    return {
        "PartitionKey": scenario_id,
        "RowKey": run_id,
        "Status": QUEUED,
        "CreatedAt": clock.now_iso(),
        "Trigger": trigger_text(trigger),
        "Attempts": 0,
    }


def insert_run(storage: Storage, scenario_id: str, run_id: str, trigger: dict[str, Any]) -> Entity:
    """Record a queued run; returns the entity as stored, with its ETag (pass it to ``update_run``)."""
    return storage.insert(tables.RUNS, new_run_entity(scenario_id, run_id, trigger))


def queued_record(entity: Entity) -> dict[str, Any]:
    """What the run message carries of a record just inserted: its ETag and plain properties,
    from which ``claimed_entity`` rebuilds it without reading it."""
    return {"etag": entity.metadata["etag"], "createdAt": entity["CreatedAt"], "trigger": entity["Trigger"]}


def queued_entity(scenario_id: str, run_id: str, record: Mapping[str, Any]) -> Entity | None:
    """The run record as ``insert_run`` stored it, rebuilt from ``queued_record``'s summary (None
    when the summary is not one): exact, since a queued record holds nothing else."""
    etag, created, trigger = record.get("etag"), record.get("createdAt"), record.get("trigger")
    if not (isinstance(etag, str) and isinstance(created, str) and isinstance(trigger, str)):
        return None
    entity = Entity({"PartitionKey": scenario_id, "RowKey": run_id, "Status": QUEUED, "CreatedAt": created, "Trigger": trigger, "Attempts": 0})
    entity._metadata = {"etag": etag}
    return entity


def discard_run(storage: Storage, entity: Entity) -> None:
    """Remove the record of a run whose queue message could not be sent.

    The caller was told the run was not accepted, so a record left ``queued`` would promise a run
    that never comes. Storage is often what failed, so a delete that fails now is handed to
    ``unstarted_runs`` to try again until storage is back. The delete is conditional on the ETag
    the insert returned: if the send did reach the queue after all (its answer was lost) and the
    worker has started the run, the record is the worker's and stays.
    """
    try:
        _delete_unstarted(storage, entity)
    except Exception as exc:  # noqa: BLE001 - the original error is what the caller needs
        logger.warning("could not remove the record of unstarted run %s yet (%s); retrying in the background", entity["RowKey"], type(exc).__name__)
        unstarted_runs.retry_later(storage, entity)


def _delete_unstarted(storage: Storage, entity: Entity) -> None:
    try:
        storage.table(tables.RUNS).delete_entity(
            entity["PartitionKey"], entity["RowKey"], etag=entity.metadata["etag"], match_condition=IF_UNCHANGED
        )
    except (EntityMissing, EntityChanged):
        pass  # already gone, or started by a worker after all: nothing to undo


class UnstartedRuns:
    """Deletes of unstarted runs' records that failed, retried with back-off from one thread.

    Kept in memory only: if the process ends before storage comes back, the record stays
    ``queued`` (docs/reliability.md, "A gap the fault tests found"). One thread per process,
    started on first use, so the common path costs nothing.
    """

    PATIENCE_SECONDS = 600.0

    def __init__(self) -> None:
        self._pending: list[tuple[float, Storage, Entity]] = []
        self._outstanding = 0  # pending, plus those being tried right now
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def retry_later(self, storage: Storage, entity: Entity) -> None:
        with self._lock:
            self._pending.append((time.monotonic() + self.PATIENCE_SECONDS, storage, entity))
            self._outstanding += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="junction-unstarted-runs", daemon=True)
                self._thread.start()
        self._wake.set()

    def pending(self) -> int:
        """How many records are still to be removed."""
        with self._lock:
            return self._outstanding

    def _run(self) -> None:
        delay = 0.5
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                with self._lock:
                    if not self._pending:
                        self._thread = None
                        return
                continue
            failed = []
            for give_up_at, storage, entity in batch:
                try:
                    _delete_unstarted(storage, entity)
                    logger.info("removed the record of unstarted run %s", entity["RowKey"])
                except Exception as exc:  # noqa: BLE001 - storage still away: keep trying
                    if time.monotonic() < give_up_at:
                        failed.append((give_up_at, storage, entity))
                    else:
                        logger.error("gave up removing the record of unstarted run %s: %s", entity["RowKey"], type(exc).__name__)
            with self._lock:
                self._pending.extend(failed)
                self._outstanding -= len(batch) - len(failed)
            delay = min(delay * 2, 10.0) if failed else 0.5


unstarted_runs = UnstartedRuns()


def read_run_entity(storage: Storage, scenario_id: str, run_id: str) -> Any:
    try:
        return storage.table(tables.RUNS).get_entity(scenario_id, run_id)
    except EntityMissing:
        raise NotFound(f"no run {run_id} in scenario {scenario_id}", "RunNotFound") from None


def _blob_name(entity: Mapping[str, Any]) -> Any:
    lower = {prop: name for name, prop in PACKED_VALUES.items()}
    return lambda prop: f"runs/{entity['PartitionKey']}/{entity['RowKey']}/{lower[prop]}"


def _text_bytes(text: str) -> bytes:
    """UTF-8 of an error text; a lone surrogate is written as its escape, never a failure."""
    return text.encode("utf-8", "backslashreplace")


def _step_records(records: Any, run_error: Any) -> Any:
    """Step records as stored: a long error is kept as an excerpt and a reference to the run's
    ``error`` (or marked truncated), never a second copy of the whole text."""
    if not isinstance(records, list):
        return records
    out = []
    for record in records:
        error = record.get("error") if isinstance(record, dict) else None
        if isinstance(error, str) and len(error) > STEP_ERROR_CHARS:
            record = {**record, "error": error[:STEP_ERROR_CHARS] + "\u2026", "errorChars": len(error)}
            if error == run_error:
                record["errorRef"] = "#/error"
        out.append(record)
    return out


def encode_value(name: str, value: Any, run_error: Any = None) -> bytes:
    """The bytes a run value is stored as. ValueError/TypeError/RecursionError for a value that
    has no JSON form (a circular one, say)."""
    if name == "error":
        return b"" if value is None else _text_bytes(str(value))
    if name == "steps":
        value = _step_records(value, run_error)
    return dumps(value).encode("utf-8")


def update_run(storage: Storage, entity: Any, *, to_blobs: bool = False, if_unchanged: bool = False, **changes: Any) -> None:
    """Merge ``changes`` into the run; ``output``, ``steps``, ``intermediate`` and ``error`` are
    packed (large ones in blobs) so that the run entity as stored stays within the budget.

    ``entity`` is the run as stored (from ``read_run_entity`` or ``insert_run``); it is updated in
    place, so the next update knows what the entity already holds. A partial one (keys only) is
    read first. ``to_blobs`` keeps every packed value in a blob (``finish_run``'s fallback).

    ``if_unchanged``: only if the record is still as ``entity`` was read (its ETag), else
    ``core.store.errors.EntityChanged``; for writes that must happen once."""
    known = entity if "CreatedAt" in entity else read_run_entity(storage, entity["PartitionKey"], entity["RowKey"])
    plain = {name: value for name, value in changes.items() if name not in PACKED_VALUES}
    values = {
        PACKED_VALUES[name]: encode_value(name, value, changes.get("error"))
        for name, value in changes.items()
        if name in PACKED_VALUES
    }
    props = storage.pack_merge(known, plain, values, _blob_name(known), names=tuple(PACKED_VALUES.values()), to_blobs=to_blobs)
    if if_unchanged:
        storage.table(tables.RUNS).update_entity(props, mode="merge", etag=known.metadata["etag"], match_condition=IF_UNCHANGED)
    else:
        storage.table(tables.RUNS).update_entity(props, mode="merge")
    for target in {id(known): known, id(entity): entity}.values():
        if isinstance(target, MutableMapping):
            target.update({k: v for k, v in props.items() if v is not None})


def is_refusal(exc: BaseException) -> bool:
    """Whether storage (or Junction's own size check) refused what was written, so that writing it
    again cannot succeed: a value with no JSON form, an entity too large, a storage 400 or 413."""
    if isinstance(exc, PayloadTooLarge | ValueError | TypeError | RecursionError):
        return True
    return isinstance(exc, StorageError) and exc.status_code in (400, 413)


def describe_refusal(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "a value is nested too deeply to store"
    if isinstance(exc, ValueError) and "Circular reference" in str(exc):
        return "a value refers to itself (a circular value)"
    if isinstance(exc, PayloadTooLarge):
        return exc.message
    if isinstance(exc, StorageError):
        code = getattr(exc, "error_code", None) or exc.reason
        return f"storage refused the record ({exc.status_code} {code})"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def note_started(scenario_id: str, run_id: str, trigger_type: str | None) -> None:
    """Telemetry of a run that was accepted (recorded and, for queued runs, enqueued):
    ``junction.runs.started``, and the run's ids on the current span (docs/operations.md)."""
    telemetry.annotate(scenario_id=scenario_id, run_id=run_id)
    telemetry.count(telemetry.RUNS_STARTED, scenario_id=scenario_id, attributes={telemetry.TRIGGER_TYPE: trigger_type})


def note_ended(entity: Any, status: str) -> None:
    """Telemetry of a run that ended: ``junction.runs.ended`` and ``junction.run.duration`` (from
    its record's creation to now, the queue's wait included)."""
    if not telemetry.enabled():
        return
    scenario = {telemetry.SCENARIO_ID: entity.get("PartitionKey"), telemetry.RUN_STATUS: status}
    telemetry.count(telemetry.RUNS_ENDED, attributes=scenario)
    created = entity.get("CreatedAt")
    if created:
        seconds = (clock.now() - clock.parse_iso(str(created))).total_seconds()
        telemetry.record(telemetry.RUN_DURATION, max(0.0, seconds), attributes=scenario)


def finish_run(storage: Storage, entity: Any, status: str, **changes: Any) -> str:
    """Record a run's final state and count it (``note_ended``); returns the status recorded."""
    recorded = _finish_run(storage, entity, status, **changes)
    note_ended(entity, recorded)
    return recorded


def _finish_run(storage: Storage, entity: Any, status: str, **changes: Any) -> str:
    """Record a run's final state; returns the status recorded.

    Bookkeeping that fails must not make the process run again: when storage refuses the final
    record (``is_refusal``), the run is recorded ``failed`` with the reason, its values moved to
    blobs (those that have a JSON form), and nothing is raised. Only a transient storage failure
    (unreachable, throttled) is raised, for the caller's retry.
    """
    try:
        update_run(storage, entity, Status=status, EndedAt=clock.now_iso(), **changes)
        return status
    except Exception as exc:
        if not is_refusal(exc):
            raise
        reason = describe_refusal(exc)
    logger.warning("run %s: its %s record could not be stored (%s); recording it failed", entity.get("RowKey"), status, reason)
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for name in ("output", "intermediate", "steps"):
        if name in changes:
            try:
                encode_value(name, changes[name])
                kept[name] = changes[name]
            except (ValueError, TypeError, RecursionError):
                dropped.append(name)
    message = f"the run {'ended' if status == SUCCEEDED else 'failed'} but its record could not be stored: {reason}"
    if dropped:
        message += f" (not kept: {', '.join(dropped)})"
    if changes.get("error"):
        message += f". The run's own error: {changes['error']}"
    extra = {"FailedStep": changes["FailedStep"]} if changes.get("FailedStep") else {}
    for attempt in (kept, {}):
        try:
            update_run(storage, entity, to_blobs=True, Status=FAILED, EndedAt=clock.now_iso(), error=message, **extra, **attempt)
            return FAILED
        except Exception as exc:
            if not is_refusal(exc):
                raise
            logger.error("run %s: the failure record was refused too (%s)", entity.get("RowKey"), describe_refusal(exc))
    try:
        update_run(storage, entity, Status=FAILED, EndedAt=clock.now_iso(), error=f"the run's record could not be stored: {reason}"[:2000])
    except Exception as exc:
        if not is_refusal(exc):
            raise
        # Nothing more can be written; running the process again would not change that.
        logger.error("run %s: no failure record could be stored (%s)", entity.get("RowKey"), describe_refusal(exc))
    return FAILED


def run_to_json(storage: Storage, entity: Any, *, with_output: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": entity["RowKey"],
        "scenarioId": entity["PartitionKey"],
        "status": entity.get("Status"),
        "createdAt": entity.get("CreatedAt"),
        "startedAt": entity.get("StartedAt"),
        "endedAt": entity.get("EndedAt"),
        "attempts": entity.get("Attempts", 0),
        "trigger": json.loads(entity.get("Trigger") or "{}"),
        # "replace": a read never fails on bytes an older version stored (a lone surrogate, say).
        "error": (storage.unpack("Error", entity) or b"").decode("utf-8", errors="replace") or None,
        "failedStep": entity.get("FailedStep"),
    }
    if with_output:
        body["output"] = _unpacked_json(storage, entity, "Output")
        body["intermediate"] = _unpacked_json(storage, entity, "Intermediate")
        body["steps"] = step_records(storage, entity)
    return body


def early_answer(storage: Storage, entity: Any) -> tuple[bool, Any]:
    """``(True, value)`` once the run has passed an ``intermediateReturn`` (its value may be null)."""
    data = storage.unpack("Intermediate", entity)
    return (True, json.loads(data)) if data else (False, None)


def output_of(storage: Storage, entity: Any) -> Any:
    return _unpacked_json(storage, entity, "Output")


def _unpacked_json(storage: Storage, entity: Any, name: str) -> Any:
    data = storage.unpack(name, entity)
    return json.loads(data) if data else None


def step_records(storage: Storage, entity: Any) -> list[dict[str, Any]]:
    """Each step's start, end, status and error, in the order they ran."""
    return list(_unpacked_json(storage, entity, "Steps") or [])


def get_run(storage: Storage, scenario_id: str, run_id: str) -> dict[str, Any]:
    run_id = parse_guid(run_id, "the run id", "InvalidRunId")
    return run_to_json(storage, read_run_entity(storage, scenario_id, run_id), with_output=True)


def remove_runs_before(storage: Storage, scenario_id: str, cutoff: datetime) -> int:
    """Remove a scenario's runs started before ``cutoff`` with their blobs; how many were removed.

    Run ids count down with time, so these runs are one range of row keys (``run_id_floor``),
    which Table Storage serves from its index starting at the cutoff."""
    table = storage.table(tables.RUNS)
    blob_columns = [f"{prop}Blob" for prop in PACKED_VALUES.values()]
    old = table.query_entities(
        "PartitionKey eq @pk and RowKey gt @cutoff",
        parameters={"pk": scenario_id, "cutoff": run_id_floor(cutoff.timestamp())},
        select=["PartitionKey", "RowKey", *blob_columns],
    )
    removed = 0
    for entity in old:
        table.delete_entity(entity["PartitionKey"], entity["RowKey"])
        # Every large value the run kept, and the input of a run that never finished (a poison
        # message leaves its input blob behind; a finished run's worker already deleted it).
        for blob_name in [entity.get(column) for column in blob_columns] + [input_blob_name(entity["PartitionKey"], entity["RowKey"])]:
            if blob_name:
                storage.delete_blob(blob_name)
        removed += 1
    return removed


def list_runs(storage: Storage, scenario_id: str, *, top: int, skiptoken: str | None, link: Any) -> dict[str, Any]:
    def query(count: int) -> Any:
        return storage.table(tables.RUNS).query_entities("PartitionKey eq @pk", parameters={"pk": scenario_id}, results_per_page=count)

    return page(query, top=top, skiptoken=skiptoken, convert=lambda e: run_to_json(storage, e, with_output=False), link=link)
