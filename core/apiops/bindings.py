"""Imported APIs and the bindings of their operations to scenarios: the management use-cases.

``PUT /management/apis/{apiName}`` imports a document (``core.apiops.documents`` reads and
validates it, ``core.apiops.operations`` extracts its operations); ``PUT
/management/apis/{apiName}/operations/{operationId}`` binds one operation to a scenario. Only
bound operations are served (``core.apiops.gateway``); docs/api-operations.md describes them.

Route conflicts (``core.apiops.routes.find_conflict``) are refused with 409 naming both operations:
at import among all of the document's operations (so ``/pet/{name}`` (string) beside
``/pet/getStatus`` is refused however they are bound), and at bind/re-import against every
operation bound in any other API. What is stored where is ``core.apiops.registry``'s.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from core.apiops import registry
from core.apiops.authenticate import BACKENDS
from core.apiops.documents import read_document, validate_document
from core.apiops.operations import OPERATION_ID, extract_operations
from core.apiops.routes import Segment, find_conflict, parse_template, path_param_types
from core.identity.signatures import SIGNATURE, normalise_signature
from core.kernel import clock
from core.kernel.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from core.kernel.ids import parse_guid
from core.kernel.jsonschema import GUID, validate
from core.kernel.jsonvalue import dumps
from core.kernel.settings import Settings
from core.scenarios.repository import get_scenario
from core.store import tables
from core.store.errors import EntityChanged, EntityMissing
from core.store.storage import IF_UNCHANGED, Storage
from core.traffic.addresses import IP_ALLOW_LIST, normalise_allow_list
from core.traffic.ratelimit import RATE_LIMIT, normalise_rate_limit
from core.web.cors import normalise_cors

logger = logging.getLogger(__name__)

API_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

AUTH_TYPES = tuple(BACKENDS)
"""The schemes a binding may name: one backend each (``core.apiops.authenticate``)."""
BINDING: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["scenarioId"],
    "properties": {
        "scenarioId": GUID,
        "authentication": {
            "type": "object",
            "additionalProperties": False,
            "required": ["type"],
            "properties": {
                "type": {"type": "string", "enum": list(AUTH_TYPES)},
                "trustedIssuers": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 20,
                    "items": {"type": "string", "minLength": 1, "maxLength": 65536},
                },
                "issuer": {"type": "string", "minLength": 9, "maxLength": 500},
                "anyTenantUser": {
                    "type": "boolean",
                    "description": "oauth2 with Azure AD: users of the tenant outside JUNCTION_AAD_GROUP_ID may call it too",
                },
                "audience": {"type": "string", "minLength": 1, "maxLength": 500},
                "scopes": {
                    "type": "array",
                    "maxItems": 50,
                    "uniqueItems": True,
                    "items": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!#-\\[\\]-~]+$"},
                },
            },
        },
        "ipAllowList": IP_ALLOW_LIST,
        "rateLimit": RATE_LIMIT,
        "allowedProtocols": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "enum": ["http", "https"]},
        },
        "cors": {
            "type": ["object", "null"],  # null: no CORS, as GET shows it (so a binding round-trips)
            "additionalProperties": False,
            "properties": {
                "allowedOrigins": {
                    "oneOf": [
                        {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 300}},
                        {"type": "string", "maxLength": 20000},
                    ]
                },
                "allowCredentials": {"type": "boolean"},
            },
        },
        "signature": SIGNATURE,
        "respond": {
            "type": "string",
            "enum": ["sync", "async"],
            "default": "sync",
            "description": "async: answer 202 with a status URL (Location) and run the process from the queue",
        },
    },
}


def parse_api_name(value: str | None) -> str:
    if value is None or not API_NAME.match(value):
        raise BadRequest("an API name is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit", "InvalidApiName")
    return value


def parse_operation_id(value: str | None) -> str:
    if value is None or not OPERATION_ID.match(value):
        raise BadRequest("an operationId is 1-128 letters, digits, '_', '.', '-' or '~'", "InvalidOperationId")
    return value


def _label(api_name: str, operation: Mapping[str, Any]) -> str:
    name = operation.get("operationId") or "(no operationId)"
    return f"{api_name}/{name} ({operation['method']} {operation['path']})"


def _routes(api_name: str, operations: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, tuple[Segment, ...]]]:
    return [(_label(api_name, op), op["method"], parse_template(op["path"], path_param_types(op))) for op in operations]


def _refuse_conflict(found: tuple[str, str] | None) -> None:
    if found is not None:
        raise Conflict(f"{found[0]} and {found[1]} could match the same request", "RouteConflict")


def _view(api_name: str, entity: Mapping[str, Any], operations: Sequence[Mapping[str, Any]], bindings: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "name": api_name,
        "title": entity.get("Title"),
        "version": entity.get("Version"),
        "specification": entity.get("Dialect"),
        "importedAt": entity.get("ImportedAt"),
        "operations": [
            {
                "operationId": op.get("operationId"),
                "method": op["method"],
                "path": op["path"],
                "summary": op.get("summary") or None,
                "scopes": op.get("scopes") or [],
                "binding": bindings.get(op.get("operationId") or "") if op.get("operationId") else None,
            }
            for op in operations
        ],
    }


def import_api(storage: Storage, api_name: str, body: bytes, content_type: str | None, *, if_match: str | None = None) -> tuple[dict[str, Any], str, bool]:
    """Import (or re-import) a document; ``(view, etag, created)``.

    Re-importing keeps the bindings of operationIds that still exist (with the operation's new
    method, path and parameters) and drops the others.
    """
    api_name = parse_api_name(api_name)
    document = read_document(body, content_type)
    dialect = validate_document(document)
    operations = extract_operations(document, dialect)
    _refuse_conflict(find_conflict(_routes(api_name, operations)))
    table = storage.table(tables.APIS)
    key = registry.api_key(api_name)
    existing: Any = None
    try:
        existing = table.get_entity(registry.API_PARTITION, key, select=["RowKey", "DocumentBlob", "OperationsBlob"])
    except EntityMissing:
        existing = None
    if if_match is not None and if_match != "*" and (existing is None or existing.metadata.get("etag") != if_match):
        raise PreconditionFailed("the API was changed since it was read (ETag mismatch)", "EtagMismatch")
    if if_match == "*" and existing is None:
        raise PreconditionFailed("the API does not exist", "EtagMismatch")

    by_id = {op["operationId"]: op for op in operations if op.get("operationId")}
    all_bindings = registry.all_bindings(storage)
    mine = [b for b in all_bindings if b.get("ApiKey") == key]
    others = [b for b in all_bindings if b.get("ApiKey") != key]
    kept = [(b, by_id[b["OperationId"]]) for b in mine if b.get("OperationId") in by_id]
    dropped = [b for b in mine if b.get("OperationId") not in by_id]
    other_routes = []
    for entity in others:
        operation, _ = registry.binding_parts(storage, entity)
        other_routes.extend(_routes(entity["Api"], [operation]))
    _refuse_conflict(find_conflict(_routes(api_name, [op for _, op in kept]), other_routes))

    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    plain: dict[str, Any] = {
        "PartitionKey": registry.API_PARTITION,
        "RowKey": key,
        "Name": api_name,
        "Title": str(info.get("title") or "")[:500],
        "Version": str(info.get("version") or "")[:100],
        "Dialect": dialect,
        "ImportedAt": clock.now_iso(),
    }
    values = {"Document": dumps(document).encode(), "Operations": dumps(operations).encode()}
    entity = storage.pack_entity(plain, values, lambda name: f"apis/{key}/{name.lower()}.json")
    if existing is not None and if_match not in (None, "*"):
        try:
            table.update_entity(entity, mode="replace", etag=if_match, match_condition=IF_UNCHANGED)
        except EntityChanged:
            raise PreconditionFailed("the API was changed since it was read (ETag mismatch)", "EtagMismatch") from None
    else:
        table.upsert_entity(entity, mode="replace")
    for name in ("DocumentBlob", "OperationsBlob"):
        if existing is not None and existing.get(name) and not entity.get(name):
            storage.delete_blob(existing[name])
    bindings: dict[str, dict[str, Any]] = {}
    for binding_entity, operation in kept:
        _, binding = registry.binding_parts(storage, binding_entity)
        registry.write_binding(storage, api_name, operation, binding)
        bindings[operation["operationId"]] = binding
    for binding_entity in dropped:
        registry.delete_binding_entity(storage, binding_entity)
        logger.info("API %s: dropped the binding of %s, no longer in the document", api_name, binding_entity.get("OperationId"))
    registry.bump_version(storage)
    logger.info("imported API %s (%s, %d operations, %d bindings kept)", api_name, dialect, len(operations), len(kept))
    stored = table.get_entity(registry.API_PARTITION, key, select=["RowKey"])
    return _view(api_name, entity, operations, bindings), stored.metadata["etag"], existing is None


def get_api(storage: Storage, api_name: str) -> tuple[dict[str, Any], str]:
    """The API's operations with method, full path and binding; ``(view, etag)``."""
    api_name = parse_api_name(api_name)
    entity = registry.get_api_entity(storage, api_name)
    return _view(api_name, entity, registry.operations_of(storage, entity), registry.bindings_of(storage, api_name)), entity.metadata["etag"]


def list_apis(storage: Storage) -> list[dict[str, Any]]:
    entities = storage.table(tables.APIS).query_entities(
        "PartitionKey eq @pk", parameters={"pk": registry.API_PARTITION}, select=["Name", "Title", "Version", "Dialect", "ImportedAt"]
    )
    return sorted(
        ({"name": e.get("Name"), "title": e.get("Title"), "version": e.get("Version"), "specification": e.get("Dialect"), "importedAt": e.get("ImportedAt")} for e in entities),
        key=lambda a: a["name"] or "",
    )


def delete_api(storage: Storage, api_name: str, *, if_match: str | None = None) -> None:
    """Remove the API and every binding of its operations."""
    api_name = parse_api_name(api_name)
    entity = registry.get_api_entity(storage, api_name)
    if if_match not in (None, "*") and entity.metadata.get("etag") != if_match:
        raise PreconditionFailed("the API was changed since it was read (ETag mismatch)", "EtagMismatch")
    for binding_entity in storage.table(tables.APIBINDINGS).query_entities(
        "PartitionKey eq @pk and ApiKey eq @api", parameters={"pk": registry.BINDING_PARTITION, "api": registry.api_key(api_name)}
    ):
        registry.delete_binding_entity(storage, binding_entity)
    storage.table(tables.APIS).delete_entity(registry.API_PARTITION, registry.api_key(api_name))
    for name in ("DocumentBlob", "OperationsBlob"):
        if entity.get(name):
            storage.delete_blob(entity[name])
    registry.bump_version(storage)
    logger.info("deleted API %s", api_name)


def normalise_binding(body: Any, operation: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """The stored binding: validated strictly, defaults applied, PEMs and origins normalised."""
    validate(body, BINDING, "binding")
    from core.identity.certificates import parse_trusted_issuers  # cold start: cryptography's x509

    auth_in = body.get("authentication") or {"type": "none"}
    kind = auth_in["type"]
    auth: dict[str, Any] = {"type": kind}
    if "trustedIssuers" in auth_in and kind != "certificate":
        raise BadRequest("binding.authentication.trustedIssuers is only for type 'certificate'", "InvalidBinding")
    if "scopes" in auth_in and kind != "oauth2":
        raise BadRequest("binding.authentication.scopes is only for type 'oauth2'", "InvalidBinding")
    if kind == "certificate":
        auth["trustedIssuers"] = parse_trusted_issuers(auth_in.get("trustedIssuers") or [])
    if ("issuer" in auth_in or "audience" in auth_in) and kind != "oauth2":
        raise BadRequest("binding.authentication.issuer and audience are only for type 'oauth2'", "InvalidBinding")
    if kind == "oauth2":
        issuer = auth_in.get("issuer")
        if issuer is not None:
            # Another OpenID Connect issuer: only one the operator listed, and with an audience of
            # its own (Junction's Azure AD audiences mean nothing to another issuer).
            if issuer not in settings.oauth_issuers:
                raise BadRequest(
                    f"binding.authentication.issuer {issuer!r} is not one of JUNCTION_OAUTH_ISSUERS", "IssuerNotAllowed"
                )
            if "audience" not in auth_in:
                raise BadRequest("binding.authentication.audience is required with an issuer", "InvalidBinding")
            auth["issuer"], auth["audience"] = issuer, auth_in["audience"]
        elif "audience" in auth_in:
            raise BadRequest("binding.authentication.audience goes with an issuer; Azure AD uses JUNCTION_AAD_AUDIENCE", "InvalidBinding")
        elif not settings.aad_enabled:
            raise BadRequest(
                "oauth2 needs Azure AD (JUNCTION_AAD_TENANT_ID and JUNCTION_AAD_AUDIENCE) or an issuer from JUNCTION_OAUTH_ISSUERS",
                "AzureAdDisabled",
            )
        auth["scopes"] = list(auth_in["scopes"]) if "scopes" in auth_in else list(operation.get("scopes") or [])
        if auth_in.get("anyTenantUser"):
            if issuer is not None:
                raise BadRequest("binding.authentication.anyTenantUser is for Azure AD tokens, not another issuer's", "InvalidBinding")
            auth["anyTenantUser"] = True
    elif "anyTenantUser" in auth_in:
        raise BadRequest("binding.authentication.anyTenantUser is only for type 'oauth2'", "InvalidBinding")
    stored: dict[str, Any] = {
        "scenarioId": parse_guid(body["scenarioId"], "binding.scenarioId", "InvalidBinding"),
        "authentication": auth,
        "allowedProtocols": sorted(set(body.get("allowedProtocols") or ["http", "https"])),
        "cors": normalise_cors(body.get("cors")),
        "respond": body.get("respond", "sync"),
        "boundAt": clock.now_iso(),
    }
    # Absent and null both mean "no list" / "no limit", and are stored absent.
    allow_list = normalise_allow_list(body.get("ipAllowList"), "binding.ipAllowList")
    if allow_list is not None:
        stored["ipAllowList"] = allow_list
    rate_limit = normalise_rate_limit(body.get("rateLimit"))
    if rate_limit is not None:
        stored["rateLimit"] = rate_limit
    if "signature" in body:
        stored["signature"] = normalise_signature(body["signature"], "binding.signature")
    return stored


def _find_operation(storage: Storage, api_name: str, operation_id: str) -> dict[str, Any]:
    entity = registry.get_api_entity(storage, api_name)
    for operation in registry.operations_of(storage, entity):
        if operation.get("operationId") == operation_id:
            return operation
    raise NotFound(f"API {api_name} has no operation {operation_id}", "OperationNotFound")


def bind_operation(storage: Storage, settings: Settings, api_name: str, operation_id: str, body: Any, *, check_scenario: bool = True) -> dict[str, Any]:
    """Bind (or re-bind) an operation; the stored binding with the operation's method and path.

    409 when a bound operation of another API could match the same request.
    """
    api_name = parse_api_name(api_name)
    operation_id = parse_operation_id(operation_id)
    operation = _find_operation(storage, api_name, operation_id)
    binding = normalise_binding(body, operation, settings)
    if check_scenario:
        try:
            get_scenario(storage, binding["scenarioId"])
        except NotFound:
            raise BadRequest(f"binding.scenarioId: no scenario with id {binding['scenarioId']}", "ScenarioNotFound") from None
    key = registry.api_key(api_name)
    other_routes = []
    for entity in registry.all_bindings(storage):
        if entity.get("ApiKey") == key:
            continue  # the API's own operations were checked against each other at import
        other_op, _ = registry.binding_parts(storage, entity)
        other_routes.extend(_routes(entity["Api"], [other_op]))
    _refuse_conflict(find_conflict(_routes(api_name, [operation]), other_routes))
    registry.write_binding(storage, api_name, operation, binding)
    registry.bump_version(storage)
    logger.info("bound %s/%s (%s %s) to scenario %s with %s authentication", api_name, operation_id, operation["method"], operation["path"], binding["scenarioId"], binding["authentication"]["type"])
    return binding_view(api_name, operation, binding)


def binding_view(api_name: str, operation: Mapping[str, Any], binding: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "api": api_name,
        "operationId": operation.get("operationId"),
        "method": operation["method"],
        "path": operation["path"],
        "binding": dict(binding) if binding is not None else None,
    }


def get_binding(storage: Storage, api_name: str, operation_id: str) -> dict[str, Any]:
    api_name = parse_api_name(api_name)
    operation_id = parse_operation_id(operation_id)
    operation = _find_operation(storage, api_name, operation_id)
    try:
        entity = storage.table(tables.APIBINDINGS).get_entity(registry.BINDING_PARTITION, registry.binding_key(api_name, operation_id))
    except EntityMissing:
        return binding_view(api_name, operation, None)
    _, binding = registry.binding_parts(storage, entity)
    return binding_view(api_name, operation, binding)


def unbind_operation(storage: Storage, api_name: str, operation_id: str) -> None:
    api_name = parse_api_name(api_name)
    operation_id = parse_operation_id(operation_id)
    try:
        entity = storage.table(tables.APIBINDINGS).get_entity(registry.BINDING_PARTITION, registry.binding_key(api_name, operation_id))
    except EntityMissing:
        raise NotFound(f"{api_name}/{operation_id} is not bound", "BindingNotFound") from None
    registry.delete_binding_entity(storage, entity)
    registry.bump_version(storage)
    logger.info("unbound %s/%s", api_name, operation_id)
