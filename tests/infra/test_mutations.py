"""Each security check fails when its property is removed or weakened.

A mutation edits a copy of one template's text (never the file), parses it, and runs the check
on the templates with that copy in place: the check must raise AssertionError.
"""

from __future__ import annotations

import re

import pytest

from tests.infra.bicep import INFRA, load_templates, parse_text
from tests.infra.checks import CHECKS

STORAGE = "app/storage.bicep"
FUNCTION = "app/function.bicep"
MONITORING = "app/monitoring.bicep"
RBAC = "app/rbac.bicep"
MAIN = "main.bicep"
KEY_VAULT = "app/keyvault.bicep"
NETWORK = "app/network.bicep"
ALERTS = "app/alerts.bicep"


def alert_entry(name: str) -> str:
    """The text of one entry of the alert rules variable, to remove it whole."""
    found = re.search(rf"  \{{\n    name: '{name}'\n.*?\n  \}}\n", (INFRA / ALERTS).read_text(encoding="utf-8"), re.S)
    assert found, f"no alert entry {name!r} in {ALERTS}"
    return found[0]


# (check, file, text in the file, replacement)
MUTATIONS = [
    ("storage_disallows_shared_keys", STORAGE, "    allowSharedKeyAccess: false\n", ""),
    ("storage_disallows_shared_keys", STORAGE, "allowSharedKeyAccess: false", "allowSharedKeyAccess: true"),
    ("storage_disallows_public_blobs", STORAGE, "    allowBlobPublicAccess: false\n", ""),
    ("storage_requires_tls12", STORAGE, "minimumTlsVersion: 'TLS1_2'", "minimumTlsVersion: 'TLS1_0'"),
    ("storage_requires_https", STORAGE, "    supportsHttpsTrafficOnly: true\n", ""),
    ("storage_defaults_to_entra_auth", STORAGE, "    defaultToOAuthAuthentication: true\n", ""),
    ("storage_has_private_deployment_container", STORAGE, "publicAccess: 'None'", "publicAccess: 'Blob'"),
    ("key_vault_is_rbac_only_and_recoverable", KEY_VAULT, "enableRbacAuthorization: true", "enableRbacAuthorization: false"),
    ("key_vault_is_rbac_only_and_recoverable", KEY_VAULT, "    enablePurgeProtection: true\n", ""),
    ("key_vault_is_rbac_only_and_recoverable", KEY_VAULT, "enabledForTemplateDeployment: false", "enabledForTemplateDeployment: true"),
    (
        "key_vault_is_rbac_only_and_recoverable",
        KEY_VAULT,
        "    enableRbacAuthorization: true\n",
        "    enableRbacAuthorization: true\n    accessPolicies: []\n",
    ),
    ("outbound_secrets_are_key_vault_references", FUNCTION, "    keyVaultReferenceIdentity: identityId\n", ""),
    ("outbound_secrets_are_key_vault_references", FUNCTION, "value: '@Microsoft.KeyVault(VaultName=${keyVaultName};", "value: '${keyVaultName};"),
    ("outbound_secrets_are_key_vault_references", FUNCTION, "], secretSettings)", "])"),
    ("outbound_secrets_are_key_vault_references", MAIN, "    keyVaultSettingNames: keyVaultSettingNames\n", ""),
    ("application_insights_disables_local_auth", MONITORING, "    DisableLocalAuth: true\n", ""),
    ("log_analytics_disables_local_auth", MONITORING, "      disableLocalAuth: true\n", ""),
    ("plan_is_flex_consumption_linux", FUNCTION, "name: 'FC1'", "name: 'Y1'"),
    ("plan_is_flex_consumption_linux", FUNCTION, "    reserved: true\n", ""),
    ("function_app_runs_a_supported_python", FUNCTION, "version: pythonVersion", "version: '3.10'"),
    ("function_app_runs_a_supported_python", MAIN, "@allowed([\n  '3.11'\n  '3.12'\n])", "@allowed([\n  '3.10'\n  '3.11'\n  '3.12'\n])"),
    ("function_app_runs_a_supported_python", MAIN, "    pythonVersion: pythonVersion\n", ""),
    ("function_app_is_https_only", FUNCTION, "    httpsOnly: true\n", ""),
    ("function_app_requires_tls12", FUNCTION, "      minTlsVersion: '1.2'\n", ""),
    ("function_app_disables_ftp", FUNCTION, "      remoteDebuggingEnabled: false\n", "      remoteDebuggingEnabled: false\n      ftpsState: 'Disabled'\n"),
    (
        "function_app_disables_ftp",
        FUNCTION,
        "  name: 'ftp'\n  properties: {\n    allow: false",
        "  name: 'ftp'\n  properties: {\n    allow: true",
    ),
    (
        "function_app_disables_basic_publishing_credentials",
        FUNCTION,
        "  name: 'scm'\n  properties: {\n    allow: false",
        "  name: 'scm'\n  properties: {\n    allow: true",
    ),
    (
        "function_app_runs_as_user_assigned_identity",
        FUNCTION,
        "            type: 'UserAssignedIdentity'\n",
        "            type: 'SystemAssignedIdentity'\n",
    ),
    (
        "function_app_leaves_platform_cors_off",
        FUNCTION,
        "      remoteDebuggingEnabled: false\n",
        "      remoteDebuggingEnabled: false\n      cors: {\n        allowedOrigins: [\n          '*'\n        ]\n      }\n",
    ),
    (
        "function_app_client_certificates_are_opt_in",
        MAIN,
        "param clientCertEnabled bool = false",
        "param clientCertEnabled bool = true",
    ),
    ("maximum_instance_count_is_within_what_flex_accepts", MAIN, "@minValue(40)\n@maxValue(1000)\nparam maximumInstanceCount", "@minValue(1)\n@maxValue(1000)\nparam maximumInstanceCount"),
    ("maximum_instance_count_is_within_what_flex_accepts", FUNCTION, "@minValue(40)\n@maxValue(1000)\nparam maximumInstanceCount", "@minValue(1)\n@maxValue(1000)\nparam maximumInstanceCount"),
    ("client_certificate_settings_follow_the_site", FUNCTION, "value: string(clientCertEnabled)", "value: 'true'"),
    ("client_certificate_settings_follow_the_site", FUNCTION, "          name: 'JUNCTION_CLIENT_CERT_EXCLUSION_PATHS'\n", "          name: 'JUNCTION_CLIENT_CERT_EXCLUDED'\n"),
    ("client_certificate_settings_follow_the_site", MAIN, "  'Optional'\n  'Required'\n])\nparam clientCertMode", "  'Optional'\n  'OptionalInteractiveUser'\n  'Required'\n])\nparam clientCertMode"),
    ("client_certificate_settings_follow_the_site", FUNCTION, "http20Enabled: !clientCertRenegotiates", "http20Enabled: true"),
    ("client_certificate_settings_follow_the_site", FUNCTION, "var clientCertRenegotiates = clientCertEnabled && !empty(clientCertExclusionPaths)", "var clientCertRenegotiates = !empty(clientCertExclusionPaths)"),
    ("function_app_has_no_client_affinity", FUNCTION, "    clientAffinityEnabled: false\n", ""),
    ("function_app_has_no_client_affinity", FUNCTION, "clientAffinityEnabled: false", "clientAffinityEnabled: true"),
    ("http_concurrency_is_a_parameter", FUNCTION, "        triggers: {\n          http: {\n            perInstanceConcurrency: httpPerInstanceConcurrency\n          }\n        }\n", ""),
    ("http_concurrency_is_a_parameter", MAIN, "param httpPerInstanceConcurrency int = 3", "param httpPerInstanceConcurrency int = 1"),
    ("http_concurrency_is_a_parameter", MAIN, "    httpPerInstanceConcurrency: httpPerInstanceConcurrency\n", ""),
    ("zone_redundancy_is_a_parameter_with_zonal_storage", FUNCTION, "    zoneRedundant: zoneRedundant\n", ""),
    ("zone_redundancy_is_a_parameter_with_zonal_storage", MAIN, "var effectiveStorageSkuName = zoneRedundant ? zonalStorageSku : storageSkuName", "var effectiveStorageSkuName = storageSkuName"),
    ("zone_redundancy_is_a_parameter_with_zonal_storage", MAIN, "((storageSkuName == 'Standard_GRS') ? 'Standard_GZRS' : storageSkuName)", "storageSkuName"),
    ("zone_redundancy_is_a_parameter_with_zonal_storage", MAIN, "param zoneRedundant bool = false", "param zoneRedundant bool = true"),
    ("table_prefix_is_validated_as_the_app_validates_it", MAIN, "var validTablePrefix = tablePrefixIsValid ? tablePrefix :", "var validTablePrefix = true ? tablePrefix :"),
    ("table_prefix_is_validated_as_the_app_validates_it", MAIN, "contains(prefixLetters, first(tablePrefix)) && ", ""),
    ("table_prefix_is_validated_as_the_app_validates_it", MAIN, "var prefixCharacters = '${prefixLetters}0123456789'", "var prefixCharacters = '${prefixLetters}0123456789-'"),
    ("table_prefix_is_validated_as_the_app_validates_it", MAIN, "runQueueName: '${toLower(validTablePrefix)}-runs'", "runQueueName: '${toLower(tablePrefix)}-runs'"),
    ("table_prefix_is_validated_as_the_app_validates_it", MAIN, "    tablePrefix: validTablePrefix\n", "    tablePrefix: tablePrefix\n"),
    ("key_vault_can_be_recovered_after_azd_down", KEY_VAULT, "    createMode: recoverSoftDeleted ? 'recover' : 'default'\n", ""),
    ("key_vault_can_be_recovered_after_azd_down", MAIN, "    recoverSoftDeleted: keyVaultRecover\n", ""),
    ("private_network_closes_storage_and_key_vault", STORAGE, "publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'", "publicNetworkAccess: 'Enabled'"),
    ("private_network_closes_storage_and_key_vault", KEY_VAULT, "defaultAction: vnetEnabled ? 'Deny' : 'Allow'", "defaultAction: 'Allow'"),
    ("private_network_closes_storage_and_key_vault", MAIN, "    runQueueName: '${toLower(validTablePrefix)}-runs'\n    vnetEnabled: vnetEnabled\n", "    runQueueName: '${toLower(validTablePrefix)}-runs'\n"),
    ("private_network_closes_storage_and_key_vault", NETWORK, "  {\n    service: 'queue'\n    zone: 'privatelink.queue.${environment().suffixes.storage}'\n  }\n", ""),
    ("private_network_closes_storage_and_key_vault", NETWORK, "serviceName: 'Microsoft.App/environments'", "serviceName: 'Microsoft.Web/serverFarms'"),
    ("private_network_closes_storage_and_key_vault", NETWORK, "zone: 'privatelink.table.${environment().suffixes.storage}'", "zone: 'privatelink.table.core.windows.net'"),
    ("private_network_closes_storage_and_key_vault", FUNCTION, "    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId\n", ""),
    ("private_network_closes_storage_and_key_vault", MAIN, "    virtualNetworkSubnetId: vnetEnabled ? network.outputs.appSubnetId : ''\n", ""),
    ("storage_connection_is_identity_based", FUNCTION, "value: 'managedidentity'", "value: 'connectionstring'"),
    (
        "storage_connection_is_identity_based",
        FUNCTION,
        "        {\n          name: 'AzureWebJobsStorage__credential'\n",
        "        {\n          name: 'AzureWebJobsStorage'\n        }\n        {\n          name: 'AzureWebJobsStorage__credential'\n",
    ),
    (
        "app_uses_identity_client_id",
        FUNCTION,
        "          name: 'AZURE_CLIENT_ID'\n",
        "          name: 'AZURE_CLIENT_ID_UNUSED'\n",
    ),
    ("application_insights_uses_entra_auth", FUNCTION, ";Authorization=AAD'", "'"),
    (
        "every_junction_setting_is_a_parameter",
        FUNCTION,
        "          name: 'JUNCTION_OUTBOUND_ALLOWED_HOSTS'\n",
        "          name: 'JUNCTION_OUTBOUND_HOSTS'\n",
    ),
    ("every_junction_setting_is_a_parameter", FUNCTION, "value: aadTriggerRole", "value: 'Junction.Trigger'"),
    (
        "role_definition_ids_are_the_built_in_guids",
        RBAC,
        "3913510d-42f4-4e42-8a64-420c390055eb",
        "3913510d-42f4-4e42-8a64-420c390055ec",
    ),
    (
        "identity_has_least_privilege_roles",
        RBAC,
        "  storageBlobDataOwner\n  storageQueueDataContributor\n",
        "  storageBlobDataOwner\n",
    ),
    (
        "identity_has_least_privilege_roles",
        RBAC,
        "var identityStorageRoles = [\n",
        "var identityStorageRoles = [\n  '8e3af657-a8ff-443c-a75c-2fe8c4bcb635'\n",
    ),
    (
        "deployer_roles_are_optional_data_roles",
        RBAC,
        "(empty(deployerPrincipalId) ? [] : deployerStorageRoles)",
        "deployerStorageRoles",
    ),
    (
        "deployer_roles_are_optional_data_roles",
        RBAC,
        "(empty(deployerPrincipalId) ? [] : deployerKeyVaultRoles)",
        "deployerKeyVaultRoles",
    ),
    ("deployer_roles_are_optional_data_roles", RBAC, "var deployerKeyVaultRoles = [\n  keyVaultSecretsOfficer\n", "var deployerKeyVaultRoles = [\n"),
    ("identity_has_least_privilege_roles", RBAC, "roleDefinitions', keyVaultSecretsUser)", "roleDefinitions', keyVaultSecretsOfficer)"),
    (
        "role_definition_ids_are_the_built_in_guids",
        RBAC,
        "4633458b-17de-408a-b874-0445c86b69e6",
        "4633458b-17de-408a-b874-0445c86b69e7",
    ),
    (
        "role_assignment_names_are_deterministic",
        RBAC,
        "name: guid(keyVault.id, identityPrincipalId, keyVaultSecretsUser)",
        "name: guid(keyVault.id, identityPrincipalId)",
    ),
    (
        "role_assignment_names_are_deterministic",
        RBAC,
        "name: guid(storage.id, identityPrincipalId, roleId)",
        "name: 'fixed-name'",
    ),
    (
        "identity_assignments_are_service_principals",
        RBAC,
        "    principalId: identityPrincipalId\n    principalType: 'ServicePrincipal'\n",
        "    principalId: identityPrincipalId\n    principalType: 'User'\n",
    ),
    ("alert_rules_query_application_insights_and_notify_only_when_asked", ALERTS, " = if (!empty(alertEmail)) {", " = {"),
    ("alert_rules_query_application_insights_and_notify_only_when_asked", ALERTS, "actionGroups: empty(alertEmail) ? [] : [", "actionGroups: ["),
    ("alert_rules_query_application_insights_and_notify_only_when_asked", MAIN, "module alerts './app/alerts.bicep' = {", "module alerts './app/alerts.bicep' = if (!empty(alertEmail)) {"),
    ("alert_rules_query_application_insights_and_notify_only_when_asked", ALERTS, "emailAddress: alertEmail", "emailAddress: 'ops@example.com'"),
    ("alert_rules_query_application_insights_and_notify_only_when_asked", ALERTS, "    autoMitigate: true\n", "    autoMitigate: false\n"),
    ("alert_rules_query_application_insights_and_notify_only_when_asked", ALERTS, "    enabled: true\n    scopes:", "    enabled: false\n    scopes:"),
    ("alert_rules_query_application_insights_and_notify_only_when_asked", ALERTS, "      applicationInsights.id\n", "      '/subscriptions'\n"),
    ("alert_rules_query_application_insights_and_notify_only_when_asked", ALERTS, "    windowSize: 'PT10M'\n", "    windowSize: 'PT1M'\n"),
    ("alert_rules_query_application_insights_and_notify_only_when_asked", ALERTS, "operator: 'GreaterThan'", "operator: 'LessThan'"),
    ("alert_rules_query_application_insights_and_notify_only_when_asked", MAIN, "    alertEmail: alertEmail\n", ""),
    ("alert_on_poisoned_runs", ALERTS, alert_entry("poisoned-runs"), ""),
    ("alert_on_poisoned_runs", ALERTS, "customDimensions['junction.queue']) == 'poison'", "customDimensions['junction.queue']) == 'runs'"),
    ("alert_on_failed_run_rate", ALERTS, alert_entry("failed-runs"), ""),
    ("alert_on_failed_run_rate", ALERTS, "threshold: failedRunPercent", "threshold: 10"),
    ("alert_on_failed_run_rate", ALERTS, "status == 'failed') by scenario", "status == 'failed')"),
    ("alert_on_failed_run_rate", MAIN, "    failedRunPercent: alertFailedRunPercent\n", ""),
    ("alert_on_http_5xx_rate", ALERTS, alert_entry("http-5xx"), ""),
    ("alert_on_http_5xx_rate", ALERTS, "toint(resultCode) >= 500", "toint(resultCode) >= 400"),
    ("alert_on_http_5xx_rate", ALERTS, "    severity: 1\n    evaluationFrequency: 'PT5M'\n    windowSize: 'PT15M'\n", "    severity: 3\n    evaluationFrequency: 'PT5M'\n    windowSize: 'PT15M'\n"),
    ("alert_on_run_queue_age", ALERTS, alert_entry("run-queue-age"), ""),
    ("alert_on_run_queue_age", ALERTS, "threshold: queueAgeMinutes", "threshold: 10"),
    ("alert_on_run_queue_age", ALERTS, "max(value) / 60.0", "max(value)"),
    ("alert_on_run_queue_age", MAIN, "    queueAgeMinutes: alertQueueAgeMinutes\n", ""),
    ("alert_on_key_download_failures", ALERTS, alert_entry("key-downloads"), ""),
    ("alert_on_key_download_failures", ALERTS, "in ('jwks', 'oidc')", "in ('oidc')"),
    ("alert_queries_use_only_the_telemetry_contract", ALERTS, "name == 'junction.identity.failures'", "name == 'junction.identity.failure'"),
    ("alert_queries_use_only_the_telemetry_contract", ALERTS, "customDimensions['junction.run.status']", "customDimensions['junction.status']"),
    ("alert_queries_use_only_the_telemetry_contract", ALERTS, "customDimensions['junction.identity.kind']", "customDimensions['junction.queue']"),
    ("alert_queries_use_only_the_telemetry_contract", ALERTS, "where name == 'failPoisonedRun'", "where name == 'failPoisoned'"),
    ("alert_queries_use_only_the_telemetry_contract", ALERTS, "requests\n| where toint(resultCode)", "AppRequests\n| where toint(resultCode)"),
    (
        "no_keys_or_connection_strings",
        FUNCTION,
        "value: 'ClientId=${identityClientId};Authorization=AAD'",
        "value: 'AccountKey=${identityClientId}'",
    ),
]


def test_every_check_has_a_mutation():
    assert {m[0] for m in MUTATIONS} == set(CHECKS)


@pytest.mark.parametrize(
    ("name", "file", "old", "new"), MUTATIONS, ids=[f"{m[0]}-{i}" for i, m in enumerate(MUTATIONS)]
)
def test_check_fails_without_its_property(name, file, old, new):
    text = (INFRA / file).read_text(encoding="utf-8")
    assert old in text, f"the mutation no longer matches {file}: update it with the template"
    templates = dict(load_templates())
    templates[file] = parse_text(text.replace(old, new))
    with pytest.raises(AssertionError):
        CHECKS[name](templates)
