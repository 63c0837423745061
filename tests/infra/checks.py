"""The properties of the deployment (security, and what Flex Consumption accepts), each a
function over the parsed templates.

Each check raises AssertionError when its property is missing. test_security.py runs them on
infra/ as it is; test_mutations.py runs them on copies with the property removed, to prove that
every check can fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.infra.bicep import ROOT, Resource, Templates, app_settings, dump, get, module_params, one, resources, unquote
from tests.infra.evaluate import TemplateError, evaluate

# Built-in Azure role definition IDs: the same GUIDs in every tenant and cloud.
ROLE_IDS = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
}

# JUNCTION_* settings the app reads that are deliberately not deployed: secrets, which a keyless
# deployment does not hold (Graph calls use the managed identity instead).
UNDEPLOYED_SETTINGS = {
    "JUNCTION_GRAPH_CLIENT_SECRET": "a client secret; the deployment uses the managed identity for Graph",
    "JUNCTION_GRAPH_CLIENT_CERTIFICATE_PATH": "a certificate file path; Flex Consumption cannot load certificates",
}

STORAGE = "Microsoft.Storage/storageAccounts"
KEY_VAULT = "Microsoft.KeyVault/vaults"
SITE = "Microsoft.Web/sites"

Check = Callable[[Templates], None]
CHECKS: dict[str, Check] = {}


def check(func: Check) -> Check:
    CHECKS[func.__name__] = func
    return func


# --- storage ------------------------------------------------------------------------------------


@check
def storage_disallows_shared_keys(t: Templates) -> None:
    assert one(t, STORAGE).prop("properties", "allowSharedKeyAccess") is False


@check
def storage_disallows_public_blobs(t: Templates) -> None:
    assert one(t, STORAGE).prop("properties", "allowBlobPublicAccess") is False


@check
def storage_requires_tls12(t: Templates) -> None:
    assert one(t, STORAGE).prop("properties", "minimumTlsVersion") == "TLS1_2"


@check
def storage_requires_https(t: Templates) -> None:
    assert one(t, STORAGE).prop("properties", "supportsHttpsTrafficOnly") is True


@check
def storage_defaults_to_entra_auth(t: Templates) -> None:
    assert one(t, STORAGE).prop("properties", "defaultToOAuthAuthentication") is True


@check
def storage_has_private_deployment_container(t: Templates) -> None:
    container = one(t, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert container.prop("properties", "publicAccess") == "None"
    site = one(t, SITE)
    assert site.prop("properties", "functionAppConfig", "deployment", "storage", "type") == "blobContainer"


# --- key vault ------------------------------------------------------------------------------------


@check
def key_vault_is_rbac_only_and_recoverable(t: Templates) -> None:
    vault = one(t, KEY_VAULT)
    assert vault.prop("properties", "enableRbacAuthorization") is True, "RBAC only: no access policies"
    assert vault.prop("properties", "accessPolicies") is None
    assert vault.prop("properties", "enableSoftDelete") is True
    assert vault.prop("properties", "enablePurgeProtection") is True
    assert vault.prop("properties", "enabledForTemplateDeployment") is False, "no template may read the secrets"


# --- monitoring ---------------------------------------------------------------------------------


@check
def application_insights_disables_local_auth(t: Templates) -> None:
    assert one(t, "Microsoft.Insights/components").prop("properties", "disableLocalAuth") is True


@check
def log_analytics_disables_local_auth(t: Templates) -> None:
    workspace = one(t, "Microsoft.OperationalInsights/workspaces")
    assert workspace.prop("properties", "features", "disableLocalAuth") is True


# --- alerts (docs/operations.md) -----------------------------------------------------------------

ALERT_RULE = "Microsoft.Insights/scheduledQueryRules"
ACTION_GROUP = "Microsoft.Insights/actionGroups"

# The telemetry contract of docs/operations.md ("Telemetry names"): the application side exports
# these names, and the alert queries may use no others. Metric name -> its dimensions.
TELEMETRY_METRICS = {
    "junction.runs.started": {"junction.scenario.id", "junction.trigger.type"},
    "junction.runs.ended": {"junction.scenario.id", "junction.run.status"},
    "junction.run.duration": {"junction.scenario.id", "junction.run.status"},
    "junction.queue.depth": {"junction.queue"},
    "junction.queue.oldest_age": {"junction.queue"},
    "junction.http.refused": {"http.response.status_code", "junction.function"},
    "junction.identity.failures": {"junction.identity.kind"},
}
TELEMETRY_SPAN_ATTRIBUTES = {"junction.scenario.id", "junction.run.id", "junction.step.id", "junction.step.type"}
TELEMETRY_TABLES = {"requests", "dependencies", "customMetrics", "traces", "exceptions"}

# Sample values for the alert module's parameters: distinct, so a threshold wired to the wrong
# parameter (or to a constant) shows.
ALERT_PARAMS = {"queueAgeMinutes": 17, "failedRunPercent": 23}
_APPI_ID, _ACTION_GROUP_ID = "/appi", "/action-group"

# What Azure accepts for a log search alert rule (scheduledQueryRules 2023-12-01), in minutes.
ALERT_FREQUENCIES = {"PT1M": 1, "PT5M": 5, "PT10M": 10, "PT15M": 15, "PT30M": 30, "PT45M": 45, "PT1H": 60}
ALERT_WINDOWS = {**ALERT_FREQUENCIES, "PT2H": 120, "PT3H": 180, "PT6H": 360, "PT12H": 720, "P1D": 1440}


def alert_rules(t: Templates, alert_email: str = "") -> list[dict]:
    """Every alert rule as deployed (the loop over the ``rules`` variable, evaluated), with the
    action group's and the component's ids standing in as ``/action-group`` and ``/appi``."""
    rule = one(t, ALERT_RULE)
    assert rule.loop is not None and rule.loop["detail"]["array_name"] == "rules", "one rule per entry of the rules variable"
    template = t[rule.file]
    names = {**ALERT_PARAMS, "alertEmail": alert_email, "namePrefix": "alert", "location": "region", "tags": {}}
    objects = {"applicationInsights": {"id": _APPI_ID}, "actionGroup": {"id": _ACTION_GROUP_ID}}
    item = rule.loop["detail"]["item_name"]
    return [evaluate(template, rule.body, **names, **objects, **{item: entry}) for entry in evaluate(template, "rules", **names)]


def alert_rule(t: Templates, signal: str, alert_email: str = "") -> dict:
    """The one rule whose query reads ``signal``."""
    found = [r for r in alert_rules(t, alert_email) if signal in str(get(r, "properties", "criteria", "allOf"))]
    assert len(found) == 1, f"expected one alert rule reading {signal!r}, found {len(found)}"
    return found[0]


def alert_condition(rule: dict) -> dict:
    conditions = get(rule, "properties", "criteria", "allOf")
    assert isinstance(conditions, list) and len(conditions) == 1, "one condition per rule"
    return conditions[0]


def _alert_param_from_main(t: Templates, module_param: str, main_param: str) -> None:
    assert module_params(t["main.bicep"], "alerts").get(module_param) == main_param, f"main.bicep must pass {module_param} from {main_param}"
    assert main_param in t["main.bicep"]["parameters"]


@check
def alert_rules_query_application_insights_and_notify_only_when_asked(t: Templates) -> None:
    """Every rule is enabled, reads the Application Insights component, resolves by itself, fires
    on AggregatedValue > threshold, and notifies the e-mail action group exactly when an address
    is given; without one the rules still exist (fired alerts show in the portal). The rules run
    with no identity: the app's managed identity gets nothing for them."""
    group = one(t, ACTION_GROUP)
    assert group.prop("location") == "global"
    assert evaluate(t[group.file], get(t[group.file]["resources"][group.symbol]["config"], "condition"), alertEmail="") is False
    assert evaluate(t[group.file], get(t[group.file]["resources"][group.symbol]["config"], "condition"), alertEmail="ops@example.com") is True
    receivers = group.prop("properties", "emailReceivers")
    assert [get(r, "emailAddress") for r in receivers] == ["alertEmail"], "the one receiver is the alertEmail parameter"
    assert get(t[group.file]["resources"][one(t, ALERT_RULE).symbol]["config"], "condition") is None, "the rules exist with or without e-mail"
    assert get(t["main.bicep"]["modules"]["alerts"]["config"], "condition") is None, "the alerts module is always deployed"
    _alert_param_from_main(t, "alertEmail", "alertEmail")
    assert t["main.bicep"]["parameters"]["alertEmail"]["default"] == ""
    for email, groups in (("", []), ("ops@example.com", [_ACTION_GROUP_ID])):
        rules = alert_rules(t, email)
        assert len(rules) >= 5 and len({rule["name"] for rule in rules}) == len(rules), "five rules or more, each its own name"
        for rule in rules:
            props = rule["properties"]
            assert rule.get("kind") == "LogAlert" and "identity" not in rule, rule.get("name")
            assert props.get("enabled") is True and props.get("autoMitigate") is True
            assert props.get("scopes") == [_APPI_ID], "each rule reads the Application Insights component"
            assert props.get("severity") in range(5)
            frequency, window = props.get("evaluationFrequency"), props.get("windowSize")
            assert frequency in ALERT_FREQUENCIES and window in ALERT_WINDOWS and ALERT_WINDOWS[window] >= ALERT_FREQUENCIES[frequency]
            condition = alert_condition(rule)
            assert condition.get("operator") == "GreaterThan" and condition.get("metricMeasureColumn") == "AggregatedValue"
            assert "AggregatedValue" in condition["query"]
            assert get(props, "actions", "actionGroups") == groups, f"{rule['name']}: action groups with alertEmail={email!r}"


@check
def alert_on_poisoned_runs(t: Templates) -> None:
    """Any run message that reached <prefix>-runs-poison in the window (failPoisonedRun ran), or
    any message still waiting there (failPoisonedRun itself failing)."""
    condition = alert_condition(alert_rule(t, "failPoisonedRun"))
    assert "junction.queue.depth" in condition["query"] and "== 'poison'" in condition["query"]
    assert condition["threshold"] == 0 and condition["timeAggregation"] == "Total"


@check
def alert_on_failed_run_rate(t: Templates) -> None:
    condition = alert_condition(alert_rule(t, "junction.runs.ended"))
    query = condition["query"]
    assert "junction.run.status" in query and "== 'failed'" in query and "by scenario" in query, "a failure rate per scenario"
    assert condition["threshold"] == ALERT_PARAMS["failedRunPercent"] and condition["timeAggregation"] == "Maximum"
    _alert_param_from_main(t, "failedRunPercent", "alertFailedRunPercent")


@check
def alert_on_http_5xx_rate(t: Templates) -> None:
    rule = alert_rule(t, "resultCode")
    condition = alert_condition(rule)
    query = condition["query"]
    assert query.lstrip().startswith("requests") and "toint(resultCode) >= 500" in query and "itemCount" in query
    assert condition["threshold"] == 5 and rule["properties"]["severity"] == 1


@check
def alert_on_run_queue_age(t: Templates) -> None:
    rule = alert_rule(t, "junction.queue.oldest_age")
    condition = alert_condition(rule)
    assert "== 'runs'" in condition["query"] and "/ 60.0" in condition["query"], "the gauge is in seconds, the threshold in minutes"
    assert condition["threshold"] == ALERT_PARAMS["queueAgeMinutes"] and condition["timeAggregation"] == "Maximum"
    assert rule["properties"]["severity"] == 1
    _alert_param_from_main(t, "queueAgeMinutes", "alertQueueAgeMinutes")


@check
def alert_on_key_download_failures(t: Templates) -> None:
    condition = alert_condition(alert_rule(t, "junction.identity.failures"))
    assert "'jwks'" in condition["query"], "Azure AD signing-key downloads"
    assert condition["threshold"] == 0 and condition["timeAggregation"] == "Total"


# Application Insights tables by their names in the component (classic) and in the workspace.
_KNOWN_TABLES = {
    "requests", "dependencies", "customMetrics", "traces", "exceptions", "customEvents", "pageViews",
    "availabilityResults", "browserTimings", "performanceCounters",
    "AppRequests", "AppDependencies", "AppMetrics", "AppTraces", "AppExceptions", "AppEvents",
}  # fmt: skip


def telemetry_names_used(query: str) -> tuple[set[str], set[str], set[str], set[str]]:
    """(tables, Junction metric names, customDimensions keys, function names) a Kusto query reads."""
    tables = set(re.findall(r"\b([A-Za-z]+)\b", query)) & _KNOWN_TABLES
    metrics = set(re.findall(r"'(junction\.[a-z_.]+)'", query)) - TELEMETRY_SPAN_ATTRIBUTES - {
        d for names in TELEMETRY_METRICS.values() for d in names
    }
    dimensions = set(re.findall(r"customDimensions\[\s*'([^']+)'\s*\]", query))
    functions = set(re.findall(r"\bname\s*==\s*'([A-Za-z]+)'", query))
    return tables, metrics, dimensions, functions


def app_function_names() -> set[str]:
    return {name for path in (ROOT / "triggers").glob("*.py") for name in re.findall(r'function_name\("([A-Za-z]+)"\)', path.read_text(encoding="utf-8"))}


def assert_query_uses_the_contract(query: str, where: str) -> None:
    tables, metrics, dimensions, functions = telemetry_names_used(query)
    assert tables and tables <= TELEMETRY_TABLES, f"{where}: tables {sorted(tables)}"
    assert metrics <= set(TELEMETRY_METRICS), f"{where}: metrics outside the contract {sorted(metrics - set(TELEMETRY_METRICS))}"
    allowed = TELEMETRY_SPAN_ATTRIBUTES | {d for names in TELEMETRY_METRICS.values() for d in names}
    assert dimensions <= allowed, f"{where}: dimensions outside the contract {sorted(dimensions - allowed)}"
    if tables == {"customMetrics"} and len(metrics) == 1:  # one metric alone: only its own dimensions
        (metric,) = metrics
        assert dimensions <= TELEMETRY_METRICS[metric], f"{where}: {metric} has no dimension {sorted(dimensions - TELEMETRY_METRICS[metric])}"
    unknown = functions - app_function_names()
    assert not unknown, f"{where}: no function is named {sorted(unknown)}"


@check
def alert_queries_use_only_the_telemetry_contract(t: Templates) -> None:
    for rule in alert_rules(t):
        assert_query_uses_the_contract(alert_condition(rule)["query"], rule["name"])


# --- plan and function app -----------------------------------------------------------------------


@check
def plan_is_flex_consumption_linux(t: Templates) -> None:
    plan = one(t, "Microsoft.Web/serverfarms")
    assert plan.prop("sku", "name") == "FC1"
    assert plan.prop("sku", "tier") == "FlexConsumption"
    assert plan.prop("properties", "reserved") is True  # Linux


PYTHON_VERSIONS = ["3.11", "3.12"]  # what Flex Consumption runs and Junction supports (pyproject: >=3.11)


@check
def function_app_runs_a_supported_python(t: Templates) -> None:
    site = one(t, SITE)
    assert "linux" in site.prop("kind").split(",")
    runtime = site.prop("properties", "functionAppConfig", "runtime")
    assert get(runtime, "name") == "python"
    assert get(runtime, "version") == "pythonVersion", "the Python version is a parameter"
    for file in ("main.bicep", "app/function.bicep"):
        assert decorator(t[file], "pythonVersion", "allowed") == PYTHON_VERSIONS, f"{file}: Python {PYTHON_VERSIONS} only"
        assert t[file]["parameters"]["pythonVersion"]["default"] in PYTHON_VERSIONS
    assert module_params(t["main.bicep"], "functionApp").get("pythonVersion") == "pythonVersion"


@check
def function_app_is_https_only(t: Templates) -> None:
    assert one(t, SITE).prop("properties", "httpsOnly") is True


@check
def function_app_requires_tls12(t: Templates) -> None:
    config = one(t, SITE).prop("properties", "siteConfig")
    assert get(config, "minTlsVersion") == "1.2"
    assert get(config, "scmMinTlsVersion") == "1.2"


@check
def function_app_disables_ftp(t: Templates) -> None:
    """Flex Consumption refuses ``siteConfig.ftpsState`` (ARM error 51021), so FTP is kept off by
    the ``ftp`` basic publishing credentials policy alone (no FTP credential exists), and checkov's
    CKV_AZURE_78 is an accepted exception (tests/infra/test_checkov.py)."""
    site = one(t, SITE)
    assert site.prop("properties", "siteConfig", "ftpsState") is None, "Flex Consumption rejects ftpsState"
    ftp = [p for p in resources(t, f"{SITE}/basicPublishingCredentialsPolicies") if p.prop("name") == "ftp"]
    assert [p.prop("properties", "allow") for p in ftp] == [False], "the ftp publishing policy must allow nothing"


@check
def function_app_disables_basic_publishing_credentials(t: Templates) -> None:
    policies = {
        p.prop("name"): p.prop("properties", "allow")
        for p in resources(t, f"{SITE}/basicPublishingCredentialsPolicies")
    }
    assert policies == {"ftp": False, "scm": False}


@check
def function_app_runs_as_user_assigned_identity(t: Templates) -> None:
    site = one(t, SITE)
    assert site.prop("identity", "type") == "UserAssigned"
    auth = site.prop("properties", "functionAppConfig", "deployment", "storage", "authentication")
    assert get(auth, "type") == "UserAssignedIdentity"
    assert get(auth, "userAssignedIdentityResourceId") == "identityId"


@check
def function_app_leaves_platform_cors_off(t: Templates) -> None:
    # Junction answers CORS per API operation; platform CORS would answer preflights first.
    assert one(t, SITE).prop("properties", "siteConfig", "cors") is None


@check
def function_app_client_certificates_are_opt_in(t: Templates) -> None:
    site = one(t, SITE)
    assert site.prop("properties", "clientCertEnabled") == "clientCertEnabled"
    assert site.prop("properties", "clientCertMode") == "clientCertMode"
    for file in ("main.bicep", "app/function.bicep"):
        params = t[file]["parameters"]
        assert params["clientCertEnabled"]["type"] == "bool"
        assert params["clientCertEnabled"]["default"] is False, f"{file}: client certificates must be off by default"
        assert params["clientCertMode"]["default"] == "Optional"


def decorator(template: dict, param: str, kind: str) -> object:
    """The argument of a parameter's decorator (``min_value``, ``allowed`` ...), or None."""
    for item in template["parameters"][param].get("decorators") or []:
        if item["type"] == kind:
            return item["argument"]
    return None


@check
def maximum_instance_count_is_within_what_flex_accepts(t: Templates) -> None:
    """maximumInstanceCount applies per function group (the HTTP group, each queue or timer
    function); Flex Consumption refuses values under 40 in most regions, and over 1000."""
    for file in ("main.bicep", "app/function.bicep"):
        template = t[file]
        assert decorator(template, "maximumInstanceCount", "min_value") == 40, f"{file}: @minValue(40)"
        assert decorator(template, "maximumInstanceCount", "max_value") == 1000, f"{file}: @maxValue(1000)"
        assert 40 <= template["parameters"]["maximumInstanceCount"]["default"] <= 1000
    site = one(t, SITE)
    scale = site.prop("properties", "functionAppConfig", "scaleAndConcurrency")
    assert get(scale, "maximumInstanceCount") == "maximumInstanceCount"


@check
def client_certificate_settings_follow_the_site(t: Templates) -> None:
    """The app trusts X-ARR-ClientCert only where JUNCTION_CLIENT_CERT_* say the front end sets
    it, so those settings must come from the very parameters that configure the front end; and
    nothing may make the front end renegotiate TLS while HTTP/2 is on (renegotiation fails there)."""
    site = one(t, SITE)
    settings = app_settings(t)
    for prop, setting in (
        ("clientCertEnabled", "JUNCTION_CLIENT_CERT_ENABLED"),
        ("clientCertMode", "JUNCTION_CLIENT_CERT_MODE"),
        ("clientCertExclusionPaths", "JUNCTION_CLIENT_CERT_EXCLUSION_PATHS"),
    ):
        param = site.prop("properties", prop)
        assert param in t["app/function.bicep"]["parameters"], f"{prop} must be a parameter"
        value = settings.get(setting)
        assert value == param or get(value, "function", "parameters", "value_to_convert") == param, (
            f"{setting} must come from the parameter behind {prop}, got {dump(value)}"
        )
    for file in ("main.bicep", "app/function.bicep"):
        assert decorator(t[file], "clientCertMode", "allowed") == ["Optional", "Required"], (
            f"{file}: OptionalInteractiveUser renegotiates TLS"
        )
    template = t[site.file]
    http2 = site.prop("properties", "siteConfig", "http20Enabled")
    for enabled, paths in ((False, ""), (True, ""), (False, "/public"), (True, "/public;/ExternalData")):
        on = evaluate(template, http2, clientCertEnabled=enabled, clientCertExclusionPaths=paths)
        renegotiates = enabled and bool(paths)
        assert on is not renegotiates, f"http20Enabled must be {not renegotiates} with clientCertEnabled={enabled}, paths={paths!r}"


@check
def function_app_has_no_client_affinity(t: Templates) -> None:
    # No ARR affinity cookie: any instance serves any request; Junction keeps no session state.
    assert one(t, SITE).prop("properties", "clientAffinityEnabled") is False


@check
def http_concurrency_is_a_parameter(t: Templates) -> None:
    """Python apps default to one HTTP request per instance at a time; Junction deploys the value
    bench/http_concurrency.py measured (docs/deploy.md, Scale), as a parameter."""
    scale = one(t, SITE).prop("properties", "functionAppConfig", "scaleAndConcurrency")
    assert get(scale, "triggers", "http", "perInstanceConcurrency") == "httpPerInstanceConcurrency"
    defaults = set()
    for file in ("main.bicep", "app/function.bicep"):
        param = t[file]["parameters"]["httpPerInstanceConcurrency"]
        assert param["type"] == "int" and decorator(t[file], "httpPerInstanceConcurrency", "min_value") == 1
        defaults.add(param["default"])
    assert defaults == {3}, f"the measured default is 3 in both templates, got {defaults}"
    assert module_params(t["main.bicep"], "functionApp").get("httpPerInstanceConcurrency") == "httpPerInstanceConcurrency"


STORAGE_SKUS = ("Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_GZRS")


@check
def zone_redundancy_is_a_parameter_with_zonal_storage(t: Templates) -> None:
    """Off by default (regions without zones; two always-ready instances per group when on). On, it
    makes the plan zone-redundant and the storage account too, which Microsoft asks for."""
    plan = one(t, "Microsoft.Web/serverfarms")
    assert plan.prop("properties", "zoneRedundant") == "zoneRedundant"
    for file in ("main.bicep", "app/function.bicep"):
        assert t[file]["parameters"]["zoneRedundant"]["default"] is False, f"{file}: zone redundancy is opt-in"
    assert module_params(t["main.bicep"], "functionApp").get("zoneRedundant") == "zoneRedundant"
    sku = module_params(t["main.bicep"], "storage")["skuName"]
    zonal = {"Standard_LRS": "Standard_ZRS", "Standard_GRS": "Standard_GZRS"}
    for chosen in STORAGE_SKUS:
        assert evaluate(t["main.bicep"], sku, zoneRedundant=False, storageSkuName=chosen) == chosen
        assert evaluate(t["main.bicep"], sku, zoneRedundant=True, storageSkuName=chosen) == zonal.get(chosen, chosen)


def _template_accepts_prefix(t: Templates, prefix: str) -> bool:
    main = t["main.bicep"]
    low, high = decorator(main, "tablePrefix", "min_length"), decorator(main, "tablePrefix", "max_length")
    if not low <= len(prefix) <= high:
        return False  # ARM refuses the parameter itself
    try:
        return evaluate(main, "validTablePrefix", tablePrefix=prefix) == prefix
    except TemplateError:
        return False


@check
def table_prefix_is_validated_as_the_app_validates_it(t: Templates) -> None:
    """A prefix the app would refuse at start-up (core/kernel/settings.py) fails the deployment before any
    resource is made, and everything that uses the prefix takes the validated one."""
    from core.kernel.errors import ConfigurationError
    from core.store.tables import run_queue_name

    samples = ["junction", "J", "Tenant7", "a" * 20, "a" * 21, "", "7up", "_x", "x-y", "x y", "caf\u00e9", "ab.c", "Z9z9"]
    for prefix in samples:
        try:
            run_queue_name({"JUNCTION_TABLE_PREFIX": prefix})
            app = bool(prefix)  # an empty value means the default, "junction", in the app
        except ConfigurationError:
            app = False
        assert _template_accepts_prefix(t, prefix) == app, f"tablePrefix {prefix!r}: the app {'accepts' if app else 'refuses'} it"
    used = dump([list(module_params(t["main.bicep"], m).values()) for m in ("storage", "functionApp")] + [t["main.bicep"]["outputs"]])
    assert '"tablePrefix"' not in used and "${toLower(tablePrefix)}" not in used, "use validTablePrefix, not the raw parameter"


@check
def key_vault_can_be_recovered_after_azd_down(t: Templates) -> None:
    """Purge protection keeps a deleted vault's name for 90 days; keyVaultRecover deploys again by
    recovering it (createMode recover), off by default since recover fails when nothing is deleted."""
    vault = one(t, KEY_VAULT)
    mode = vault.prop("properties", "createMode")
    assert evaluate(t[vault.file], mode, recoverSoftDeleted=True) == "recover"
    assert evaluate(t[vault.file], mode, recoverSoftDeleted=False) == "default"
    assert t["main.bicep"]["parameters"]["keyVaultRecover"]["default"] is False
    assert module_params(t["main.bicep"], "keyVault").get("recoverSoftDeleted") == "keyVaultRecover"


@check
def private_network_closes_storage_and_key_vault(t: Templates) -> None:
    """vnetEnabled: the app integrates with a delegated subnet, storage (blob, queue, table) and Key
    Vault get private endpoints with private DNS zones, and their public network access is off."""
    main = t["main.bicep"]
    assert main["parameters"]["vnetEnabled"]["default"] is False
    assert get(main["modules"]["network"]["config"], "condition") == "vnetEnabled"
    for symbol in ("storage", "keyVault"):
        assert module_params(main, symbol).get("vnetEnabled") == "vnetEnabled", f"{symbol} must follow vnetEnabled"
    for resource in (one(t, STORAGE), one(t, KEY_VAULT)):
        template = t[resource.file]
        for vnet, access, action in ((True, "Disabled", "Deny"), (False, "Enabled", "Allow")):
            assert evaluate(template, resource.prop("properties", "publicNetworkAccess"), vnetEnabled=vnet) == access, resource.symbol
            acls = resource.prop("properties", "networkAcls")
            assert evaluate(template, get(acls, "defaultAction"), vnetEnabled=vnet) == action, resource.symbol
    network = t["app/network.bicep"]
    endpoints = evaluate(network, "endpoints")
    assert sorted(e["service"] for e in endpoints) == ["blob", "queue", "table", "vault"]
    for endpoint in endpoints:
        assert endpoint["zone"].startswith("privatelink") and "environment().suffixes" in endpoint["zone"], endpoint
    vnet = one(t, "Microsoft.Network/virtualNetworks")
    delegations = [d for subnet in vnet.prop("properties", "subnets") for d in get(subnet, "properties", "delegations") or []]
    assert [get(d, "properties", "serviceName") for d in delegations] == ["Microsoft.App/environments"]
    pe = one(t, "Microsoft.Network/privateEndpoints")
    assert pe.loop is not None and pe.loop["detail"]["array_name"] == "endpoints", "one private endpoint per service"
    groups = one(t, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups")
    assert groups.loop is not None and groups.loop["detail"]["array_name"] == "endpoints", "each endpoint registers in its zone"
    links = one(t, "Microsoft.Network/privateDnsZones/virtualNetworkLinks")
    assert links.loop is not None and links.loop["detail"]["array_name"] == "endpoints", "each zone is linked to the network"
    site = one(t, SITE)
    assert "virtualNetworkSubnetId" in dump(site.prop("properties", "virtualNetworkSubnetId"))
    subnet = module_params(main, "functionApp").get("virtualNetworkSubnetId")
    assert "appSubnetId" in dump(subnet) and '"vnetEnabled"' in dump(subnet)


# --- app settings --------------------------------------------------------------------------------


@check
def storage_connection_is_identity_based(t: Templates) -> None:
    settings = app_settings(t)
    assert "AzureWebJobsStorage" not in settings, "no storage connection string: identity-based connections only"
    assert settings.get("AzureWebJobsStorage__credential") == "managedidentity"
    assert settings.get("AzureWebJobsStorage__clientId") == "identityClientId"
    for kind in ("blob", "queue", "table"):
        assert settings.get(f"AzureWebJobsStorage__{kind}ServiceUri") == f"{kind}Endpoint"


@check
def app_uses_identity_client_id(t: Templates) -> None:
    assert app_settings(t).get("AZURE_CLIENT_ID") == "identityClientId"


@check
def application_insights_uses_entra_auth(t: Templates) -> None:
    settings = app_settings(t)
    assert settings.get("APPLICATIONINSIGHTS_CONNECTION_STRING")
    assert "Authorization=AAD" in str(settings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING"))
    assert "ClientId=${identityClientId}" in str(settings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING"))


def app_junction_settings() -> set[str]:
    """Every JUNCTION_* name the app's settings module reads (the JUNCTION_SECRET_* family, whose
    names the operator chooses, is checked by ``outbound_secrets_are_key_vault_references``)."""
    text = (ROOT / "core" / "kernel" / "settings.py").read_text(encoding="utf-8")
    return {name for name in re.findall(r"\b(JUNCTION_[A-Z0-9_]+)\b", text) if not name.startswith(SECRET_PREFIX)}


SECRET_PREFIX = "JUNCTION_SECRET_"


@check
def outbound_secrets_are_key_vault_references(t: Templates) -> None:
    """The JUNCTION_SECRET_* settings http steps read (core/process/http_step.py) are deployable, and only as
    Key Vault references resolved with the app's identity: the values are in no template."""
    outbound = (ROOT / "core" / "process" / "http_step.py").read_text(encoding="utf-8") + (ROOT / "core" / "process" / "egress.py").read_text(encoding="utf-8")
    assert f'"{SECRET_PREFIX}"' in outbound, "the app no longer reads JUNCTION_SECRET_* settings: update this check"
    secret = {name: value for name, value in app_settings(t).items() if name.startswith(SECRET_PREFIX)}
    assert len(secret) == 1, f"one loop of {SECRET_PREFIX}* settings, got {sorted(secret)}"
    (name, value), = secret.items()
    assert "${" in name, "the names come from a parameter, not a fixed list"
    assert str(value).startswith("@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName="), f"not a Key Vault reference: {value}"
    assert one(t, SITE).prop("properties", "keyVaultReferenceIdentity") == "identityId"
    assert "keyVaultSettingNames" in t["app/function.bicep"]["parameters"]
    module = module_params(t["main.bicep"], "functionApp")
    assert module.get("keyVaultSettingNames") == "keyVaultSettingNames" and "keyVaultSettingNames" in t["main.bicep"]["parameters"]


@check
def every_junction_setting_is_a_parameter(t: Templates) -> None:
    settings = app_settings(t)
    function_params = t["app/function.bicep"]["parameters"]
    main_params = t["main.bicep"]["parameters"]
    module = module_params(t["main.bicep"], "functionApp")
    wanted = app_junction_settings() - set(UNDEPLOYED_SETTINGS)
    missing = sorted(wanted - set(settings))
    assert not missing, f"app settings the deployment does not set: {missing}"
    for name, value in settings.items():
        if not name.startswith("JUNCTION_") or name.startswith(SECRET_PREFIX):
            continue
        # The value is a parameter of function.bicep (string(param) for numbers) ...
        param = value if isinstance(value, str) else get(value, "function", "parameters", "value_to_convert")
        assert param in function_params, f"{name} must come from a parameter, got {dump(value)}"
        # ... which main.bicep passes from a parameter of its own.
        passed = dump(module.get(param))
        for variable, declared in (t["main.bicep"].get("variables") or {}).items():
            if f'"{variable}"' in passed:  # a variable of main.bicep, such as the validated tablePrefix
                passed += dump(declared["value"])
        assert any(re.search(rf'"{p}"', passed) for p in main_params), f"main.bicep must pass {param} from a parameter"


# --- role assignments -----------------------------------------------------------------------------


def _rbac_variables(t: Templates) -> dict[str, object]:
    return {name: var["value"] for name, var in t["app/rbac.bicep"]["variables"].items()}


def _role_variables(t: Templates) -> dict[str, str]:
    return {name: value for name, value in _rbac_variables(t).items() if isinstance(value, str)}


def _assignment_roles(t: Templates, assignment: Resource) -> list[str]:
    """GUIDs of the roles one role-assignment resource grants (one, or one per loop item)."""
    variables = _rbac_variables(t)
    role_ref = get(assignment.prop("properties", "roleDefinitionId"), "function", "parameters", "resource_name_1")
    if assignment.loop is None:
        return [str(variables.get(role_ref, role_ref))]
    array = assignment.loop["detail"]["array_name"]
    listed = array if isinstance(array, str) else get(array, "operator", "operands", "false_value")
    return [str(variables.get(item, item)) for item in variables[listed]]  # type: ignore[union-attr]


def _assignments(t: Templates) -> list[Resource]:
    return list(resources(t, "Microsoft.Authorization/roleAssignments"))


def granted(t: Templates, principal: str) -> dict[str, str]:
    """{role GUID: scope symbol} granted to ``principal`` (a parameter name in rbac.bicep)."""
    roles: dict[str, str] = {}
    for assignment in _assignments(t):
        if assignment.prop("properties", "principalId") == principal:
            for role in _assignment_roles(t, assignment):
                roles[role] = assignment.prop("scope")
    return roles


@check
def role_definition_ids_are_the_built_in_guids(t: Templates) -> None:
    variables = _role_variables(t)
    expected = {
        "storageBlobDataOwner": ROLE_IDS["Storage Blob Data Owner"],
        "storageBlobDataContributor": ROLE_IDS["Storage Blob Data Contributor"],
        "storageQueueDataContributor": ROLE_IDS["Storage Queue Data Contributor"],
        "storageTableDataContributor": ROLE_IDS["Storage Table Data Contributor"],
        "monitoringMetricsPublisher": ROLE_IDS["Monitoring Metrics Publisher"],
        "keyVaultSecretsUser": ROLE_IDS["Key Vault Secrets User"],
        "keyVaultSecretsOfficer": ROLE_IDS["Key Vault Secrets Officer"],
    }
    assert {name: variables.get(name) for name in expected} == expected


@check
def identity_has_least_privilege_roles(t: Templates) -> None:
    roles = granted(t, "identityPrincipalId")
    assert roles == {
        ROLE_IDS["Storage Blob Data Owner"]: "storage",
        ROLE_IDS["Storage Queue Data Contributor"]: "storage",
        ROLE_IDS["Storage Table Data Contributor"]: "storage",
        ROLE_IDS["Monitoring Metrics Publisher"]: "applicationInsights",
        ROLE_IDS["Key Vault Secrets User"]: "keyVault",
    }


@check
def deployer_roles_are_optional_data_roles(t: Templates) -> None:
    roles = granted(t, "deployerPrincipalId")
    assert set(roles) == {
        ROLE_IDS["Storage Blob Data Contributor"],
        ROLE_IDS["Storage Queue Data Contributor"],
        ROLE_IDS["Storage Table Data Contributor"],
        ROLE_IDS["Key Vault Secrets Officer"],
    }
    for assignment in _assignments(t):
        if assignment.prop("properties", "principalId") == "deployerPrincipalId":
            # Granted only when a principal ID is given: the loop runs over [] otherwise.
            array = assignment.loop["detail"]["array_name"]
            assert get(array, "operator", "operands", "true_value") == [], (
                "deployer roles must be skipped without a principal"
            )


@check
def role_assignment_names_are_deterministic(t: Templates) -> None:
    for assignment in _assignments(t):
        name = assignment.prop("name")
        assert get(name, "function", "type") == "guid", f"{assignment.symbol}: name must be guid(...)"
        args = get(name, "function", "parameters")
        text = dump(args)
        assert assignment.prop("properties", "principalId") in text, (
            f"{assignment.symbol}: guid() must include the principal"
        )
        role = get(assignment.prop("properties", "roleDefinitionId"), "function", "parameters", "resource_name_1")
        assert isinstance(role, str) and f'"{role}"' in text, f"{assignment.symbol}: guid() must include the role"


@check
def identity_assignments_are_service_principals(t: Templates) -> None:
    for assignment in _assignments(t):
        if assignment.prop("properties", "principalId") == "identityPrincipalId":
            assert assignment.prop("properties", "principalType") == "ServicePrincipal"


# --- no secrets anywhere ------------------------------------------------------------------------------


def template_texts(t: Templates) -> str:
    return dump(t)


@check
def no_keys_or_connection_strings(t: Templates) -> None:
    text = template_texts(t)
    for marker in ("list_keys", "listKeys", "AccountKey=", "SharedAccessSignature", "InstrumentationKey="):
        assert marker not in text, f"the templates must not read or hold keys ({marker})"


def tag_names(resource_tags) -> set[str]:
    return {unquote(k) for k in resource_tags} if isinstance(resource_tags, dict) else set()
