"""The management API: one function per operation, each checking the caller is an admin.

Functions take what an HTTP trigger can hand over without interpreting it (headers, raw body,
query values) and return a ``Reply``; the trigger only turns that into an HTTP response.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from core.app import health
from core.identity import tokens
from core.identity.auth import require_admin
from core.identity.tokens import TOKEN_CREATE
from core.kernel.errors import BadRequest, NotFound, PreconditionFailed, UnsupportedMediaType
from core.kernel.ids import parse_guid
from core.kernel.jsonschema import validate
from core.kernel.jsonvalue import dumps, parse_json
from core.kernel.settings import Settings
from core.runs import records as runs
from core.runs import scheduler
from core.scenarios import repository as scenarios
from core.scenarios.cache import ScenarioCache, parse_key
from core.store.storage import Storage
from core.web.bodies import check_content_encoding, check_size, is_json_type, media_type
from core.web.exchange import RawJson, Reply, Request
from core.web.paging import parse_top

logger = logging.getLogger(__name__)

MAX_MANAGEMENT_BODY = 4 * 1024 * 1024


def _json_body(request: Request, *, merge_patch: bool = False) -> Any:
    check_size(request.body, MAX_MANAGEMENT_BODY)
    check_content_encoding(request.header("content-encoding"))
    mtype, _ = media_type(request.header("content-type"))
    if not (is_json_type(mtype) or (merge_patch and mtype == "application/merge-patch+json")):
        raise UnsupportedMediaType("send the body as application/json", "UnsupportedContentType")
    return parse_json(request.body)


def _scenario_id(request: Request) -> str:
    return parse_guid(request.route.get("scenarioId"), "the scenario id", "InvalidScenarioId")


def _link(request: Request, extra: Mapping[str, str]) -> str:
    params = {name: values[0] for name, values in request.query.items() if name == "top" and values}
    params.update(extra)
    return f"{request.base_url}{request.path}?{urlencode(params)}"


def _scenario_reply(status: int, scenario: scenarios.Scenario, base_url: str) -> Reply:
    return Reply(status, scenario.to_json(base_url), {"ETag": scenario.etag})


def _seed_schedule(storage: Storage, scenario: scenarios.Scenario) -> scenarios.Scenario:
    """A schedule this write set (new or changed: its ``ScheduleSince`` is this write's time) gets
    its chain of due times at once; the messages of the schedule it replaced start nothing.

    The scenario is saved either way: if the first message cannot be sent, the re-seed timer sends
    it within one period (core.runs.scheduler.RESEED_PERIOD), so the caller is not told it failed.
    """
    expression = scenario.document.get("schedule")
    if expression and scenario.schedule_since and scenario.schedule_since == scenario.updated_at:
        try:
            scheduler.seed(storage, scenario.id, expression, scenario.schedule_since)
        except Exception:  # noqa: BLE001 - the re-seed timer repairs it; the save itself succeeded
            logger.exception("could not seed the schedule of scenario %s; the re-seed timer will", scenario.id)
    return scenario


def scenarios_collection(storage: Storage, settings: Settings, request: Request) -> Reply:
    """``GET`` lists scenarios, ``POST`` creates one."""
    require_admin(storage, request.header("authorization"))
    base = settings.public_base_url or request.base_url
    if request.method == "POST":
        scenario = _seed_schedule(
            storage, scenarios.create_scenario(storage, _json_body(request), settings.outbound_allowed_hosts)
        )
        headers = {"ETag": scenario.etag, "Location": f"{base}/management/scenarios/{scenario.id}"}
        return Reply(201, scenario.to_json(base), headers)
    listing = scenarios.list_scenarios(
        storage,
        top=parse_top(request.param("top")),
        skiptoken=request.param("skiptoken"),
        base_url=base,
        link=lambda extra: _link(request, extra),
    )
    return Reply(200, listing)


def scenario_item(storage: Storage, settings: Settings, request: Request) -> Reply:
    """``GET``, ``PUT`` (replace), ``PATCH`` (merge patch) and ``DELETE`` one scenario."""
    require_admin(storage, request.header("authorization"))
    scenario_id = _scenario_id(request)
    base = settings.public_base_url or request.base_url
    if_match = request.header("if-match")
    if request.method == "GET":
        return _scenario_reply(200, scenarios.get_scenario(storage, scenario_id), base)
    if request.method == "PUT":
        replaced = scenarios.replace_scenario(
            storage, scenario_id, _json_body(request), if_match, settings.outbound_allowed_hosts, base
        )
        return _scenario_reply(200, _seed_schedule(storage, replaced), base)
    if request.method == "PATCH":
        patch = _json_body(request, merge_patch=True)
        patched = scenarios.patch_scenario(storage, scenario_id, patch, if_match, settings.outbound_allowed_hosts, base)
        return _scenario_reply(200, _seed_schedule(storage, patched), base)
    scenarios.delete_scenario(storage, scenario_id, if_match)
    return Reply(204)


def scenario_cache(storage: Storage, settings: Settings, request: Request) -> Reply:
    """``PUT`` writes the JSON body under ``keyJson``; ``DELETE`` removes the entry."""
    require_admin(storage, request.header("authorization"))
    key = parse_key(request.param("keyJson"))
    scenario = scenarios.get_scenario(storage, _scenario_id(request))
    cache = ScenarioCache(storage, scenario.id)
    if request.method == "PUT":
        cache.set(key, _json_body(request))
        return Reply(204)
    if not cache.delete(key):
        raise NotFound("nothing is cached under that key", "CacheEntryNotFound")
    return Reply(204)


def scenario_runs(storage: Storage, settings: Settings, request: Request) -> Reply:
    """Runs of a scenario, newest first, or one run with its output."""
    require_admin(storage, request.header("authorization"))
    scenario_id = _scenario_id(request)
    run_id = request.route.get("runId")
    if run_id is not None:
        return Reply(200, runs.get_run(storage, scenario_id, run_id))
    listing = runs.list_runs(
        storage,
        scenario_id,
        top=parse_top(request.param("top")),
        skiptoken=request.param("skiptoken"),
        link=lambda extra: _link(request, extra),
    )
    return Reply(200, listing)


def tokens_collection(storage: Storage, settings: Settings, request: Request) -> Reply:
    """``POST`` creates a token (its secret is in this reply only), ``GET`` lists them."""
    require_admin(storage, request.header("authorization"))
    if request.method == "POST":
        body = _json_body(request)
        validate(body, TOKEN_CREATE, "token")
        created = tokens.create_token(
            storage,
            name=body["name"],
            scopes=body["scopes"],
            scenario_ids=body.get("scenarioIds"),
            expires_in_days=body.get("expiresInDays"),
        )
        return Reply(201, created.to_json(), {"Cache-Control": "no-store"})
    return Reply(200, {"value": tokens.list_tokens(storage), "nextLink": None})


def token_item(storage: Storage, settings: Settings, request: Request) -> Reply:
    require_admin(storage, request.header("authorization"))
    tokens.revoke_token(storage, request.route.get("tokenId") or "")
    return Reply(204)


def openapi_document(storage: Storage, settings: Settings, request: Request) -> Reply:
    """Junction's own OpenAPI document. Public, like most API descriptions: it describes the
    routes, including the bound API operations' paths, parameters and body schemas, and holds no
    other tenant data (no scenario ids, bindings or names of keys and users).

    Built from the route table, so it is rebuilt only when the bound operations change.
    """
    # cold start: the document and the route table load with the first call that needs them
    from core.apiops.registry import route_cache
    from core.app.openapi import published_text

    return Reply(200, RawJson(published_text(route_cache(storage).get(), settings.public_base_url or request.base_url)))


def apis_collection(storage: Storage, settings: Settings, request: Request) -> Reply:
    """``GET /management/apis``: every imported API with its operations and bindings."""
    from core.apiops import bindings as apis  # cold start: API operations are optional

    require_admin(storage, request.header("authorization"))
    return Reply(200, {"value": apis.list_apis(storage), "nextLink": None})


def apis_item(storage: Storage, settings: Settings, request: Request) -> Reply:
    """``PUT`` imports (or re-imports) an OpenAPI document; ``GET`` and ``DELETE`` one API."""
    from core.apiops import bindings as apis  # cold start: API operations are optional

    require_admin(storage, request.header("authorization"))
    name = request.route.get("apiName") or ""
    if request.method == "PUT":
        check_content_encoding(request.header("content-encoding"))
        _refuse_api_view(request.body)
        view, etag, created = apis.import_api(
            storage, name, request.body, request.header("content-type"), if_match=request.header("if-match")
        )
        return Reply(201 if created else 200, view, {"ETag": etag})
    if request.method == "DELETE":
        apis.delete_api(storage, name, if_match=request.header("if-match"))
        return Reply(204)
    view, etag = apis.get_api(storage, name)
    return Reply(200, view, {"ETag": etag})


def _refuse_api_view(body: bytes) -> None:
    """An API is replaced by importing its document again. What GET returns is a summary of the
    document (no document in it), so sending it back cannot round-trip: say so plainly, rather
    than list the OpenAPI validator's complaints about it."""
    if not body.lstrip().startswith(b"{"):
        return
    try:
        value = parse_json(body)
    except BadRequest:
        return
    if isinstance(value, dict) and {"operations", "specification", "importedAt"} <= set(value) and not {"openapi", "swagger"} & set(value):
        raise BadRequest(
            "this is the summary GET /management/apis/{apiName} returns; PUT takes the OpenAPI document itself "
            "(bindings are kept for operationIds that remain, and changed with PUT .../operations/{operationId})",
            "NotAnOpenApiDocument",
        )


def api_operation_item(storage: Storage, settings: Settings, request: Request) -> Reply:
    """``PUT`` binds an operation to a scenario, ``GET`` shows the binding, ``DELETE`` unbinds."""
    from core.apiops import bindings as apis  # cold start: API operations are optional

    require_admin(storage, request.header("authorization"))
    name, operation_id = request.route.get("apiName") or "", request.route.get("operationId") or ""
    if request.method == "PUT":
        body = _binding_body(_json_body(request), apis.get_binding(storage, name, operation_id))
        return Reply(200, apis.bind_operation(storage, settings, name, operation_id, body))
    if request.method == "DELETE":
        apis.unbind_operation(storage, name, operation_id)
        return Reply(204)
    return Reply(200, apis.get_binding(storage, name, operation_id))


def _binding_body(body: Any, current: Mapping[str, Any]) -> Any:
    """The binding to store from what a client PUT: the binding itself, or the whole view GET
    returned (``{api, operationId, method, path, binding}``), edited.

    The view's outer fields and the binding's ``boundAt`` are read-only: accepted when they say
    what GET says, and ignored. ``api``, ``operationId``, ``method`` and ``path`` can never change
    here (400 naming the field); a different ``boundAt`` means the binding was changed since it
    was read (412).
    """
    if not isinstance(body, dict):
        return body
    if "binding" in body:
        for name in ("api", "operationId", "method", "path"):
            if name in body and body[name] != current.get(name):
                raise BadRequest(
                    f"binding view: {name} is read-only: it is {dumps(current.get(name))}, not {dumps(body[name])[:200]}",
                    "ReadOnlyField",
                )
        extra = sorted(set(body) - {"api", "operationId", "method", "path", "binding"})
        if extra:
            raise BadRequest(f"binding view: unknown field(s) {', '.join(extra)}", "InvalidBody")
        body = body["binding"]
        if not isinstance(body, dict):
            raise BadRequest("binding view: binding must be an object (DELETE unbinds an operation)", "InvalidBody")
    if "boundAt" in body:
        stored = (current.get("binding") or {}).get("boundAt")
        if body["boundAt"] != stored:
            raise PreconditionFailed("the binding was changed since it was read (boundAt differs); read it again", "BindingChanged")
        body = {k: v for k, v in body.items() if k != "boundAt"}
    return body


def apikeys_collection(storage: Storage, settings: Settings, request: Request) -> Reply:
    """``POST`` creates an API key (the key is in this reply only); ``GET`` lists them."""
    from core.identity import apikeys  # cold start: API operations are optional

    require_admin(storage, request.header("authorization"))
    if request.method == "POST":
        return Reply(201, apikeys.create_apikey(storage, _json_body(request)), {"Cache-Control": "no-store"})
    return Reply(200, {"value": apikeys.list_apikeys(storage), "nextLink": None})


def apikey_item(storage: Storage, settings: Settings, request: Request) -> Reply:
    from core.identity import apikeys  # cold start: API operations are optional

    require_admin(storage, request.header("authorization"))
    apikeys.delete_apikey(storage, request.route.get("apikeyId") or "")
    return Reply(204)


def users_collection(storage: Storage, settings: Settings, request: Request) -> Reply:
    """``POST`` creates a local user for Basic authentication; ``GET`` lists them (no hashes)."""
    from core.identity import users  # cold start: API operations are optional

    require_admin(storage, request.header("authorization"))
    if request.method == "POST":
        return Reply(201, users.create_user(storage, _json_body(request)), {"Cache-Control": "no-store"})
    return Reply(200, {"value": users.list_users(storage), "nextLink": None})


def user_item(storage: Storage, settings: Settings, request: Request) -> Reply:
    from core.identity import users  # cold start: API operations are optional

    require_admin(storage, request.header("authorization"))
    users.delete_user(storage, request.route.get("username") or "")
    return Reply(204)


def health_details(storage: Storage, settings: Settings, request: Request) -> Reply:
    """``GET /management/health``: storage, queues, the last schedule tick and the key caches
    (core/app/health.py), read live for an admin."""
    require_admin(storage, request.header("authorization"))
    return Reply(200, health.details(storage, settings), health.NO_STORE)
