"""The management API: each route hands the request to one function in ``core.app.management``."""

from __future__ import annotations

from collections.abc import Callable

import azure.functions as func

from core.kernel.settings import Settings, get_settings
from core.store.storage import Storage, get_storage
from core.web.exchange import Reply, Request
from triggers.http import handles_errors, management_request, reply_response

bp = func.Blueprint()

Operation = Callable[[Storage, Settings, Request], Reply]


def _serve(name: str, req: func.HttpRequest) -> func.HttpResponse:
    """Call ``core.app.management.<name>``; the module loads with the first management call."""
    from core.app import management

    operation: Operation = getattr(management, name)
    return reply_response(operation(get_storage(), get_settings(), management_request(req)))


@bp.function_name("managementScenarios")
@bp.route(route="management/scenarios", methods=["GET", "POST"])
@handles_errors("managementScenarios")
def scenarios(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("scenarios_collection", req)


@bp.function_name("managementScenario")
@bp.route(route="management/scenarios/{scenarioId}", methods=["GET", "PUT", "PATCH", "DELETE"])
@handles_errors("managementScenario")
def scenario(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("scenario_item", req)


@bp.function_name("managementScenarioCache")
@bp.route(route="management/scenarios/{scenarioId}/cache", methods=["PUT", "DELETE"])
@handles_errors("managementScenarioCache")
def scenario_cache(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("scenario_cache", req)


@bp.function_name("managementRuns")
@bp.route(route="management/scenarios/{scenarioId}/runs", methods=["GET"])
@handles_errors("managementRuns")
def scenario_runs(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("scenario_runs", req)


@bp.function_name("managementRun")
@bp.route(route="management/scenarios/{scenarioId}/runs/{runId}", methods=["GET"])
@handles_errors("managementRun")
def scenario_run(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("scenario_runs", req)


@bp.function_name("managementTokens")
@bp.route(route="management/tokens", methods=["GET", "POST"])
@handles_errors("managementTokens")
def tokens(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("tokens_collection", req)


@bp.function_name("managementToken")
@bp.route(route="management/tokens/{tokenId}", methods=["DELETE"])
@handles_errors("managementToken")
def token(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("token_item", req)


@bp.function_name("managementOpenApi")
@bp.route(route="management/openapi.json", methods=["GET"])
@handles_errors("managementOpenApi")
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("openapi_document", req)


@bp.function_name("managementHealth")
@bp.route(route="management/health", methods=["GET"])
@handles_errors("managementHealth")
def health(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("health_details", req)


@bp.function_name("managementApis")
@bp.route(route="management/apis", methods=["GET"])
@handles_errors("managementApis")
def apis(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("apis_collection", req)


@bp.function_name("managementApi")
@bp.route(route="management/apis/{apiName}", methods=["GET", "PUT", "DELETE"])
@handles_errors("managementApi")
def api(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("apis_item", req)


@bp.function_name("managementApiOperation")
@bp.route(route="management/apis/{apiName}/operations/{operationId}", methods=["GET", "PUT", "DELETE"])
@handles_errors("managementApiOperation")
def api_operation(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("api_operation_item", req)


@bp.function_name("managementApiKeys")
@bp.route(route="management/apikeys", methods=["GET", "POST"])
@handles_errors("managementApiKeys")
def apikeys(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("apikeys_collection", req)


@bp.function_name("managementApiKey")
@bp.route(route="management/apikeys/{apikeyId}", methods=["DELETE"])
@handles_errors("managementApiKey")
def apikey(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("apikey_item", req)


@bp.function_name("managementUsers")
@bp.route(route="management/users", methods=["GET", "POST"])
@handles_errors("managementUsers")
def users(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("users_collection", req)


@bp.function_name("managementUser")
@bp.route(route="management/users/{username}", methods=["DELETE"])
@handles_errors("managementUser")
def user(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("user_item", req)
