"""infra/ is well-formed: every template parses, modules resolve, parameter files match main.bicep,
and azd's files say what azd needs."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from pycep import BicepParser

from tests.infra.bicep import INFRA, ROOT, bicep_files, body, dump, get, load_templates, module_params, unquote


@pytest.fixture(scope="module")
def templates():
    return load_templates()


def test_infra_has_templates():
    names = {p.relative_to(INFRA).as_posix() for p in bicep_files()}
    assert {
        "main.bicep",
        "app/identity.bicep",
        "app/storage.bicep",
        "app/monitoring.bicep",
        "app/function.bicep",
        "app/rbac.bicep",
        "app/alerts.bicep",
    } <= names


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path):
    parsed = BicepParser().parse(file_path=path)
    assert parsed.get("resources") or parsed.get("modules"), f"{path.name} declares nothing"


def test_modules_resolve_to_local_files(templates):
    for file, template in templates.items():
        for symbol, module in (template.get("modules") or {}).items():
            assert module["type"] == "local", f"{file}: module {symbol} must be a local file, not a registry module"
            target = (INFRA / file).parent / module["detail"]["path"]
            assert target.is_file(), f"{file}: module {symbol} points at missing {module['detail']['path']}"


def test_module_params_exist_in_the_module(templates):
    for file, template in templates.items():
        for symbol, module in (template.get("modules") or {}).items():
            target = ((INFRA / file).parent / module["detail"]["path"]).resolve().relative_to(INFRA).as_posix()
            declared = templates[target]["parameters"]
            passed = set(module_params(template, symbol))
            assert passed <= set(declared), f"{file}: {symbol} passes unknown params {sorted(passed - set(declared))}"
            required = {name for name, p in declared.items() if p.get("default") is None}
            assert required <= passed, f"{file}: {symbol} misses required params {sorted(required - passed)}"


def test_resources_are_plain_resource_blocks(templates):
    text = "\n".join(p.read_text(encoding="utf-8") for p in bicep_files())
    assert not re.search(r"\bbr[:/]", text), "no registry modules: offline checks must see every resource"
    assert not re.search(r"\bts:", text), "no template-spec modules"


def test_api_versions_are_current(templates):
    minimum = {
        "Microsoft.Web/sites": "2023-12-01",  # functionAppConfig
        "Microsoft.Web/serverfarms": "2023-12-01",
        "Microsoft.Storage/storageAccounts": "2023-05-01",
        "Microsoft.Insights/components": "2020-02-02",
        "Microsoft.OperationalInsights/workspaces": "2023-09-01",
        "Microsoft.ManagedIdentity/userAssignedIdentities": "2023-01-31",
        "Microsoft.Authorization/roleAssignments": "2022-04-01",
        "Microsoft.Insights/scheduledQueryRules": "2023-12-01",  # LogAlert with criteria.allOf, autoMitigate
        "Microsoft.Insights/actionGroups": "2023-01-01",
    }
    for template in templates.values():
        for resource in (template.get("resources") or {}).values():
            floor = minimum.get(resource["type"])
            if floor:
                assert resource["api_version"] >= floor, (
                    f"{resource['type']}@{resource['api_version']} is older than {floor}"
                )


# --- main.bicep: what azd expects -------------------------------------------------------------------


def test_main_is_subscription_scoped(templates):
    assert templates["main.bicep"]["globals"]["scope"]["value"] == "subscription"


def test_main_creates_a_tagged_resource_group(templates):
    main = templates["main.bicep"]
    groups = [r for r in main["resources"].values() if r["type"] == "Microsoft.Resources/resourceGroups"]
    assert len(groups) == 1
    tags = main["variables"]["tags"]["value"]
    assert {unquote(k): v for k, v in tags.items()}.get("azd-env-name") == "environmentName"
    assert groups[0]["config"]["tags"] == "tags"


def test_main_derives_a_resource_token(templates):
    token = templates["main.bicep"]["variables"]["resourceToken"]["value"]
    assert "unique_string" in dump(token)
    assert '"environmentName"' in dump(token)


def test_main_outputs_the_function_app(templates):
    outputs = templates["main.bicep"]["outputs"]
    for name in (
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
        "AZURE_RESOURCE_GROUP",
        "AZURE_FUNCTION_APP_NAME",
        "SERVICE_API_URI",
        "JUNCTION_URL",
    ):
        assert name in outputs, f"main.bicep must output {name}"


def test_every_resource_is_tagged_with_the_environment(templates):
    for file, template in templates.items():
        if file == "app/rbac.bicep":
            continue  # role assignments take no tags
        for symbol, resource in (template.get("resources") or {}).items():
            if resource["existing"] or "/" in resource["type"].split("/", 1)[1]:
                continue  # child resources inherit from their parent
            tags = get(body(resource["config"]), "tags")
            assert tags is not None, f"{file}: {symbol} has no tags"


def test_function_app_is_tagged_for_azd_deploy(templates):
    site = templates["app/function.bicep"]["resources"]["functionApp"]["config"]
    assert '"\'azd-service-name\'": "serviceName"' in dump(site["tags"])
    assert module_params(templates["main.bicep"], "functionApp")["serviceName"] == "api"


# --- parameters files --------------------------------------------------------------------------------


def _parameter_file(name: str) -> dict:
    data = json.loads((INFRA / name).read_text(encoding="utf-8"))
    assert "deploymentParameters.json" in data["$schema"]
    return data["parameters"]


@pytest.mark.parametrize("name", ["main.parameters.json", "main.parameters.example.json"])
def test_parameter_file_names_exist_in_main(templates, name):
    declared = templates["main.bicep"]["parameters"]
    unknown = sorted(set(_parameter_file(name)) - set(declared))
    assert not unknown, f"{name} sets parameters main.bicep does not declare: {unknown}"


@pytest.mark.parametrize("name", ["main.parameters.json", "main.parameters.example.json"])
def test_parameter_file_sets_every_required_parameter(templates, name):
    declared = templates["main.bicep"]["parameters"]
    required = {n for n, p in declared.items() if p.get("default") is None}
    assert required <= set(_parameter_file(name)), f"{name} misses {sorted(required - set(_parameter_file(name)))}"


def test_azd_parameters_use_environment_substitutions():
    values = {name: p["value"] for name, p in _parameter_file("main.parameters.json").items()}
    assert values["environmentName"] == "${AZURE_ENV_NAME}"
    assert values["location"] == "${AZURE_LOCATION}"
    assert values["principalId"] == "${AZURE_PRINCIPAL_ID=}"
    for name, value in values.items():
        assert re.fullmatch(r"\$\{[A-Z_]+(=[^}]*)?\}", value), f"{name}: {value!r} is not an azd substitution"


def test_azd_sets_every_parameter_with_the_template_default(templates):
    """Every main.bicep parameter can be set with `azd env set` (main.parameters.json), and the
    default after `=` is the template's own, so an unset variable changes nothing."""
    declared = templates["main.bicep"]["parameters"]
    values = {name: p["value"] for name, p in _parameter_file("main.parameters.json").items()}
    missing = sorted(set(declared) - set(values))
    assert not missing, f"main.parameters.json has no azd variable for {missing}"
    for name, param in declared.items():
        match = re.fullmatch(r"\$\{[A-Z_]+(?:=([^}]*))?\}", values[name])
        assert match, f"{name}: {values[name]!r}"
        default = param.get("default")
        if default is None or not isinstance(default, str | bool | int):
            continue  # required, or computed in the template (an empty azd value keeps it)
        written = str(default).lower() if isinstance(default, bool) else str(default)
        assert match.group(1) == written, f"{name}: azd default {match.group(1)!r}, template default {written!r}"


def test_example_parameters_have_the_declared_types(templates):
    declared = templates["main.bicep"]["parameters"]
    python_type = {"string": str, "int": int, "bool": bool}
    for name, p in _parameter_file("main.parameters.example.json").items():
        assert isinstance(p["value"], python_type[declared[name]["type"]]), (
            f"{name} should be a {declared[name]['type']}"
        )


# --- azd and the linter ------------------------------------------------------------------------------


def test_azure_yaml_deploys_a_python_function_app():
    config = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    assert config["infra"]["path"] == "infra"
    services = config["services"]
    assert list(services) == ["api"]
    assert services["api"]["host"] == "function"
    assert services["api"]["language"] == "python"
    assert (ROOT / services["api"]["project"] / "function_app.py").is_file() or services["api"]["project"] == "."


def test_funcignore_keeps_infra_and_tests_out_of_the_package():
    ignored = (ROOT / ".funcignore").read_text(encoding="utf-8").split()
    for name in ("infra", "tests", "azure.yaml", ".azure"):  # .azure: azd's environments (.env with outputs)
        assert name in ignored


def test_bicepconfig_enables_the_security_linter_rules():
    config = json.loads((INFRA / "bicepconfig.json").read_text(encoding="utf-8"))
    core = config["analyzers"]["core"]
    assert core["enabled"] is True
    for rule in (
        "no-hardcoded-env-urls",
        "outputs-should-not-contain-secrets",
        "secure-parameter-default",
        "secure-secrets-in-params",
        "use-secure-value-for-secure-inputs",
        "no-unused-params",
        "no-unused-vars",
    ):
        assert core["rules"][rule]["level"] == "error", f"bicepconfig.json: {rule} should be an error"


def test_no_hardcoded_cloud_urls():
    # What the no-hardcoded-env-urls linter rule refuses, checked here too since no Bicep CLI runs.
    hosts = (
        "login.microsoftonline.com",
        "management.azure.com",
        "core.windows.net",
        "graph.windows.net",
        "vault.azure.net",
    )
    for path in bicep_files():
        code = "\n".join(
            line for line in path.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("//")
        )
        for host in hosts:
            assert host not in code, f"{path.name}: use environment() instead of {host}"


def test_the_deployed_run_queue_is_the_one_the_app_uses(templates):
    """The queue trigger listens on <prefix>-runs (core.store.tables.run_queue_name, lower case); the
    deployment must create that queue, whatever prefix the operator chooses."""
    from core.store.tables import run_queue_name

    deployed = module_params(templates["main.bicep"], "storage")["runQueueName"]
    assert deployed == "${toLower(validTablePrefix)}-runs"
    for prefix in ("junction", "Tenant7"):
        assert run_queue_name({"JUNCTION_TABLE_PREFIX": prefix}) == f"{prefix.lower()}-runs"


def test_the_deployed_schedule_queue_is_the_one_the_app_uses(templates):
    """The schedule queue's trigger listens on <prefix>-schedules (core.store.tables.schedule_queue_name)."""
    from core.store.tables import schedule_queue_name

    deployed = module_params(templates["main.bicep"], "storage")["scheduleQueueName"]
    assert deployed == "${toLower(validTablePrefix)}-schedules"
    for prefix in ("junction", "Tenant7"):
        assert schedule_queue_name({"JUNCTION_TABLE_PREFIX": prefix}) == f"{prefix.lower()}-schedules"
