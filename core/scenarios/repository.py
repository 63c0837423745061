"""Scenarios: what a trigger starts. Stored one entity each, updated with ETags.

The document a tenant sends is validated against ``core.scenarios.schemas.SCENARIO`` (which also appears in the
published OpenAPI document) and its process by the engine, before anything is written.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from core.identity.signatures import normalise_signature
from core.kernel import clock
from core.kernel.errors import BadRequest, NotFound, PreconditionFailed
from core.kernel.ids import new_id
from core.kernel.jsonschema import validate
from core.kernel.jsonvalue import dumps
from core.scenarios import schemas
from core.scenarios.held import HeldVersions, RecentReads
from core.store import tables
from core.store.errors import EntityChanged, EntityMissing, StorageError
from core.store.storage import IF_UNCHANGED, Storage
from core.traffic.addresses import normalise_allow_list
from core.traffic.ratelimit import normalise_rate_limit
from core.web.paging import page

logger = logging.getLogger(__name__)

PARTITION = "scenario"
# A deleted scenario leaves a tombstone here until retention has removed the last of its runs
# (core.runs.retention): the runs of a scenario are found by its id, never by scanning the run table.
DELETED_PARTITION = "deleted"
DEFAULT_TRIGGERS = {"enabled": False, "allowAnonymous": False}


@dataclass(frozen=True)
class Scenario:
    id: str
    document: dict[str, Any]
    etag: str
    created_at: str | None
    updated_at: str | None
    in_blob: bool = False
    schedule_since: str | None = None
    stored_bytes: int = 0
    """The document's size as stored (0 when not read from storage): what holding it costs."""

    @property
    def triggers_enabled(self) -> bool:
        return bool(self.document.get("externalTriggers", {}).get("enabled"))

    @property
    def allow_anonymous(self) -> bool:
        return bool(self.document.get("externalTriggers", {}).get("allowAnonymous"))

    @property
    def ip_allow_list(self) -> list[str] | None:
        """The addresses and ranges that may call its external triggers; None: any."""
        return self.document.get("externalTriggers", {}).get("ipAllowList")

    @property
    def rate_limit(self) -> dict[str, Any] | None:
        return self.document.get("externalTriggers", {}).get("rateLimit")

    @property
    def signature(self) -> dict[str, Any] | None:
        """``externalTriggers.signature``: how Accept verifies a sender's signature, if at all."""
        return self.document.get("externalTriggers", {}).get("signature")

    @property
    def process(self) -> dict[str, Any]:
        return self.document.get("process") or {"steps": []}

    def to_json(self, base_url: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, **self.document}
        body["createdAt"] = self.created_at
        body["updatedAt"] = self.updated_at
        body["etag"] = self.etag
        if base_url is not None:
            body["triggerUrls"] = trigger_urls(base_url, self.id)
        return body


def trigger_urls(base_url: str, scenario_id: str) -> dict[str, str]:
    base = base_url.rstrip("/")
    return {
        "get": f"{base}/ExternalData/Accept/{scenario_id}",
        "post": f"{base}/ExternalData/Accept/{scenario_id}",
        "cache": f"{base}/ExternalData/GetCacheData/{scenario_id}?keyJson=",
    }


def _normalise(document: Any, allowed_hosts: Sequence[str]) -> dict[str, Any]:
    """The document as stored, after every check a run would otherwise trip over."""
    # cold start: these load when a scenario is saved, not when the app starts (Accept only reads).
    from core.process.allowlist import check_url
    from core.process.validation import validate_process
    from core.scenarios.schedule import check_schedule

    validate(document, schemas.SCENARIO, "scenario")
    validate_process(document["process"], allowed_hosts)
    if "source" in document:
        check_url(document["source"]["url"], allowed_hosts, where="source.url")
    if "schedule" in document:
        check_schedule(document["schedule"])
    normalised = copy.deepcopy(document)
    triggers = {**DEFAULT_TRIGGERS, **document.get("externalTriggers", {})}
    # Absent and null both mean "no list" / "no limit": stored absent, so GET shows what was meant.
    allow_list = normalise_allow_list(triggers.pop("ipAllowList", None), "scenario.externalTriggers.ipAllowList")
    if allow_list is not None:
        triggers["ipAllowList"] = allow_list
    rate_limit = normalise_rate_limit(triggers.pop("rateLimit", None))
    if rate_limit is not None:
        triggers["rateLimit"] = rate_limit
    normalised["externalTriggers"] = triggers
    if "signature" in triggers:
        triggers["signature"] = normalise_signature(triggers["signature"], "scenario.externalTriggers.signature")
    return normalised


def _entity(
    storage: Storage, scenario_id: str, document: dict[str, Any], created_at: str, previous: Scenario | None = None
) -> dict[str, Any]:
    now = clock.now_iso()
    schedule = document.get("schedule") or ""
    # A schedule runs from when it was set: its first due time is the first one after that, so a
    # new (or changed) schedule never starts runs for due times before it existed.
    unchanged = previous is not None and (previous.document.get("schedule") or "") == schedule
    since = (previous.schedule_since or previous.updated_at) if unchanged and previous is not None else None
    plain = {
        "PartitionKey": PARTITION,
        "RowKey": scenario_id,
        "Name": document["name"],
        "HasSchedule": bool(schedule),
        "Schedule": schedule,
        "ScheduleSince": (since or now) if schedule else "",
        "CreatedAt": created_at,
        "UpdatedAt": now,
    }
    return storage.pack_entity(plain, {"Doc": dumps(document).encode("utf-8")}, lambda _: f"scenarios/{scenario_id}")


def _from_entity(storage: Storage, entity: Any) -> Scenario:
    data = storage.unpack("Doc", entity) or b"{}"
    return Scenario(
        id=entity["RowKey"],
        document=json.loads(data),
        etag=entity.metadata["etag"],
        created_at=entity.get("CreatedAt"),
        updated_at=entity.get("UpdatedAt"),
        in_blob=bool(entity.get("DocBlob")),
        schedule_since=entity.get("ScheduleSince") or None,
        stored_bytes=len(data),
    )


def get_scenario(storage: Storage, scenario_id: str) -> Scenario:
    try:
        entity = storage.table(tables.SCENARIOS).get_entity(PARTITION, scenario_id)
    except EntityMissing:
        raise NotFound(f"no scenario with id {scenario_id}", "ScenarioNotFound") from None
    return _from_entity(storage, entity)


_versions: HeldVersions[Scenario] = HeldVersions()


_recent: RecentReads[Scenario] = RecentReads()


def _recent_key(storage: Storage, scenario_id: str) -> tuple[str, str]:
    return storage.table(tables.SCENARIOS).url, scenario_id


def get_scenario_recent(storage: Storage, scenario_id: str, hold_seconds: float) -> Scenario:
    """The scenario as read by this process at most ``hold_seconds`` ago, else read now and held.

    For external triggers only (``core.scenarios.held.RecentReads`` says why); management and runs
    read it fresh. The held document is shared: callers must not change it.
    """
    if hold_seconds <= 0:
        return get_scenario(storage, scenario_id)
    key = _recent_key(storage, scenario_id)
    now = time.monotonic()
    held = _recent.get(key, now)
    if held is not None:
        return held
    generation = _recent.generation()
    scenario = get_scenario(storage, scenario_id)
    _recent.keep(key, now + hold_seconds, scenario, generation)
    return scenario


def get_scenario_version(storage: Storage, scenario_id: str, etag: str | None) -> Scenario:
    """The scenario at version ``etag`` (the one that accepted a run) when this process holds it,
    else the scenario as stored now, which is then held.

    So a run executes the version that accepted it or a later one, never an earlier one; one
    changed or deleted after the Accept may still run as accepted, as it would have had its run
    started a moment sooner. The held document is shared: callers must not change it.
    """
    held = _versions.get(scenario_id, etag) if etag else None
    if held is not None:
        return held
    scenario = get_scenario(storage, scenario_id)
    _versions.keep(scenario)
    return scenario


def create_scenario(storage: Storage, document: Any, allowed_hosts: Sequence[str] = ()) -> Scenario:
    normalised = _normalise(document, allowed_hosts)
    scenario_id = new_id()
    now = clock.now_iso()
    entity = _entity(storage, scenario_id, normalised, now)
    metadata = storage.table(tables.SCENARIOS).create_entity(entity)
    logger.info("created scenario %s", scenario_id)
    return Scenario(scenario_id, normalised, metadata["etag"], now, entity["UpdatedAt"], schedule_since=entity["ScheduleSince"] or None)


def _write(storage: Storage, current: Scenario, document: dict[str, Any], if_match: str | None) -> Scenario:
    entity = _entity(storage, current.id, document, current.created_at or clock.now_iso(), current)
    key = _recent_key(storage, current.id)
    _recent.forget(key)  # and again below, once written: see RecentReads.generation
    try:
        metadata = storage.table(tables.SCENARIOS).update_entity(
            entity,
            mode="replace",
            etag=if_match or current.etag,
            match_condition=IF_UNCHANGED,
        )
    except (EntityChanged, EntityMissing):
        raise _stale(current.id) from None
    except StorageError as exc:
        if exc.status_code == 412:
            raise _stale(current.id) from None
        raise
    finally:
        _recent.forget(key)
    return Scenario(
        current.id, document, metadata["etag"], current.created_at, entity["UpdatedAt"], schedule_since=entity["ScheduleSince"] or None
    )


def _stale(scenario_id: str) -> PreconditionFailed:
    return PreconditionFailed(
        f"scenario {scenario_id} was changed by someone else; read it again and retry with its ETag",
        "ETagMismatch",
    )


def _check_if_match(current: Scenario, if_match: str | None) -> str | None:
    """``If-Match`` absent or ``*``: unconditional against what was just read."""
    if if_match is None or if_match.strip() == "*":
        return None
    if if_match.strip() != current.etag:
        raise _stale(current.id)
    return if_match.strip()


READ_ONLY = ("id", "createdAt", "updatedAt", "etag", "triggerUrls")
"""Fields GET adds to a scenario. A client may send them back (GET, edit, PUT): see ``_check_read_only``."""


def _split_read_only(document: Any) -> tuple[Any, dict[str, Any]]:
    """The document without the read-only fields, and those fields as sent."""
    if not isinstance(document, dict):
        return document, {}
    sent = {name: document[name] for name in READ_ONLY if name in document}
    return {k: v for k, v in document.items() if k not in sent}, sent


def _check_read_only(current: Scenario, sent: dict[str, Any], if_match: str | None, base_url: str | None) -> None:
    """Read-only fields sent back are accepted when they say what GET says, and ignored.

    ``id``, ``createdAt`` and ``triggerUrls`` can never change: a different value is a 400 that
    names the field. ``etag`` and ``updatedAt`` name the version the copy was read at: a different
    value means someone changed the scenario since, so it is a 412 (as a stale ``If-Match``),
    unless the request says ``If-Match: *`` (replace whatever is there).
    """
    fixed: dict[str, Any] = {"id": current.id, "createdAt": current.created_at}
    if base_url is not None:
        fixed["triggerUrls"] = trigger_urls(base_url, current.id)
    for name, value in sent.items():
        if name in fixed and value != fixed[name] and not (name == "id" and isinstance(value, str) and value.lower() == current.id):
            raise BadRequest(
                f"scenario.{name} is read-only: it is {dumps(fixed[name])}, not {dumps(value)[:200]}; leave it out or send it unchanged",
                "ReadOnlyField",
            )
    if (if_match or "").strip() == "*":
        return
    for name, now in (("etag", current.etag), ("updatedAt", current.updated_at)):
        if name in sent and sent[name] != now:
            raise _stale(current.id)


def replace_scenario(
    storage: Storage,
    scenario_id: str,
    document: Any,
    if_match: str | None,
    allowed_hosts: Sequence[str] = (),
    base_url: str | None = None,
) -> Scenario:
    document, sent = _split_read_only(document)
    normalised = _normalise(document, allowed_hosts)
    current = get_scenario(storage, scenario_id)
    _check_read_only(current, sent, if_match, base_url)
    return _write(storage, current, normalised, _check_if_match(current, if_match))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def patch_scenario(
    storage: Storage,
    scenario_id: str,
    patch: Any,
    if_match: str | None,
    allowed_hosts: Sequence[str] = (),
    base_url: str | None = None,
) -> Scenario:
    current = get_scenario(storage, scenario_id)
    patch, sent = _split_read_only(patch)
    # A patch that cannot make a valid scenario is a 400 whatever the ETag, as it is for PUT.
    normalised = _normalise(merge_patch(current.document, patch), allowed_hosts)
    _check_read_only(current, sent, if_match, base_url)
    return _write(storage, current, normalised, _check_if_match(current, if_match))


def delete_scenario(storage: Storage, scenario_id: str, if_match: str | None) -> None:
    current = get_scenario(storage, scenario_id)
    etag = _check_if_match(current, if_match) or current.etag
    key = _recent_key(storage, scenario_id)
    _recent.forget(key)
    # The tombstone first: should the delete then fail, a tombstone of a live scenario is harmless.
    storage.table(tables.SCENARIOS).upsert_entity({"PartitionKey": DELETED_PARTITION, "RowKey": scenario_id, "DeletedAt": clock.now_iso()})
    try:
        storage.table(tables.SCENARIOS).delete_entity(
            PARTITION, scenario_id, etag=etag, match_condition=IF_UNCHANGED
        )
    except (EntityChanged, EntityMissing):
        raise _stale(scenario_id) from None
    finally:
        _recent.forget(key)  # a read in flight since the first forget is not held either
    if current.in_blob:
        storage.delete_blob(f"scenarios/{scenario_id}")
    logger.info("deleted scenario %s", scenario_id)


def list_scenarios(
    storage: Storage, *, top: int, skiptoken: str | None, base_url: str, link: Any
) -> dict[str, Any]:
    def query(count: int) -> Any:
        return storage.table(tables.SCENARIOS).query_entities("PartitionKey eq @pk", parameters={"pk": PARTITION}, results_per_page=count)

    return page(
        query,
        top=top,
        skiptoken=skiptoken,
        convert=lambda entity: _from_entity(storage, entity).to_json(base_url),
        link=link,
    )


def scenario_ids(storage: Storage) -> list[str]:
    """The id of every scenario (one partition query of the keys)."""
    entities = storage.table(tables.SCENARIOS).query_entities("PartitionKey eq @pk", parameters={"pk": PARTITION}, select=["RowKey"])
    return [entity["RowKey"] for entity in entities]


def scheduled_scenarios(storage: Storage) -> Iterator[tuple[str, str, str | None]]:
    """``(scenario id, schedule, when it was set)`` of every scenario with a schedule: one
    partition query of four properties. Scenarios stored before ``ScheduleSince`` existed give
    their last update as the moment their schedule was set."""
    entities = storage.table(tables.SCENARIOS).query_entities(
        "PartitionKey eq @pk and HasSchedule eq @yes",
        parameters={"pk": PARTITION, "yes": True},
        select=["RowKey", "Schedule", "ScheduleSince", "UpdatedAt"],
    )
    for entity in entities:
        if entity.get("Schedule"):
            yield entity["RowKey"], entity["Schedule"], entity.get("ScheduleSince") or entity.get("UpdatedAt")


def schedule_of(storage: Storage, scenario_id: str) -> tuple[str, str] | None:
    """``(schedule, when it was set)`` of one scenario, or None when it has none or is gone: one
    point read of three properties. The scheduler checks a due time's message against it, so a
    message of a schedule changed or removed since starts nothing."""
    try:
        entity = storage.table(tables.SCENARIOS).get_entity(PARTITION, scenario_id, select=["Schedule", "ScheduleSince", "UpdatedAt"])
    except EntityMissing:
        return None
    if not entity.get("Schedule"):
        return None
    return entity["Schedule"], entity.get("ScheduleSince") or entity.get("UpdatedAt") or ""


def deleted_scenario_ids(storage: Storage) -> list[str]:
    """Scenarios deleted whose runs retention has not yet removed."""
    entities = storage.table(tables.SCENARIOS).query_entities("PartitionKey eq @pk", parameters={"pk": DELETED_PARTITION}, select=["RowKey"])
    return [entity["RowKey"] for entity in entities]


def drop_tombstone(storage: Storage, scenario_id: str) -> None:
    try:
        storage.table(tables.SCENARIOS).delete_entity(DELETED_PARTITION, scenario_id)
    except EntityMissing:
        pass
