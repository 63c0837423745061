"""Run records: one entity per run, in the scenario's partition, newest first.

Run ids count down with time (``ids.new_run_id``), so a plain partition query lists the newest
runs first. Status moves ``queued -> running -> succeeded | failed``; a run that will be retried
goes back to ``queued`` with its last error kept.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError

from core import clock
from core.errors import NotFound
from core.ids import parse_guid
from core.jsonvalue import dumps
from core.paging import page
from core.storage import Storage

logger = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
FINAL = frozenset({SUCCEEDED, FAILED})
# The run values that may be large, each packed (``Storage.pack``) under this property name.
PACKED_VALUES = {"output": "Output", "steps": "Steps", "intermediate": "Intermediate", "error": "Error"}


def new_run_entity(scenario_id: str, run_id: str, trigger: dict[str, Any]) -> dict[str, Any]:
    return {
        "PartitionKey": scenario_id,
        "RowKey": run_id,
        "Status": QUEUED,
        "CreatedAt": clock.now_iso(),
        "Trigger": dumps(trigger),
        "Attempts": 0,
    }


def insert_run(storage: Storage, scenario_id: str, run_id: str, trigger: dict[str, Any]) -> None:
    storage.table("runs").create_entity(new_run_entity(scenario_id, run_id, trigger))


def discard_run(storage: Storage, scenario_id: str, run_id: str) -> None:
    """Remove the record of a run that could not be started (best effort: storage may be down)."""
    try:
        storage.table("runs").delete_entity(scenario_id, run_id)
    except Exception as exc:  # noqa: BLE001 - the original error is what the caller needs
        logger.warning("could not remove the record of unstarted run %s: %s", run_id, type(exc).__name__)


def read_run_entity(storage: Storage, scenario_id: str, run_id: str) -> Any:
    try:
        return storage.table("runs").get_entity(scenario_id, run_id)
    except ResourceNotFoundError:
        raise NotFound(f"no run {run_id} in scenario {scenario_id}", "RunNotFound") from None


def update_run(storage: Storage, entity: Any, *, if_unchanged: bool = False, **changes: Any) -> None:
    """Merge ``changes`` into the run (``output`` is packed; ``error`` truncated).

    ``if_unchanged``: only if the record is still as ``entity`` was read (its ETag), else
    ``azure.core.exceptions.ResourceModifiedError``; for writes that must happen once."""
    props: dict[str, Any] = {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"]}
    for name, value in changes.items():
        if name not in PACKED_VALUES:
            props[name] = value
            continue
        if name == "error":  # kept whole, however long
            data = b"" if value is None else str(value).encode("utf-8")
        else:
            data = dumps(value).encode("utf-8")
        props.update(storage.pack(PACKED_VALUES[name], data, f"runs/{entity['PartitionKey']}/{entity['RowKey']}/{name}"))
    if if_unchanged:
        storage.table("runs").update_entity(
            props, mode="merge", etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified
        )
        return
    storage.table("runs").update_entity(props, mode="merge")


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


def _unpacked_json(storage: Storage, entity: Any, name: str) -> Any:
    data = storage.unpack(name, entity)
    return json.loads(data) if data else None


def step_records(storage: Storage, entity: Any) -> list[dict[str, Any]]:
    """Each step's start, end, status and error, in the order they ran."""
    return list(_unpacked_json(storage, entity, "Steps") or [])


def get_run(storage: Storage, scenario_id: str, run_id: str) -> dict[str, Any]:
    run_id = parse_guid(run_id, "the run id", "InvalidRunId")
    return run_to_json(storage, read_run_entity(storage, scenario_id, run_id), with_output=True)


def list_runs(storage: Storage, scenario_id: str, *, top: int, skiptoken: str | None, link: Any) -> dict[str, Any]:
    pager = storage.table("runs").query_entities(
        "PartitionKey eq @pk", parameters={"pk": scenario_id}, results_per_page=top
    )
    return page(pager, skiptoken=skiptoken, convert=lambda e: run_to_json(storage, e, with_output=False), link=link)
