// Junction on Azure Functions Flex Consumption, keyless: `azd up`, or
//   az deployment sub create --location <region> --template-file infra/main.bicep \
//     --parameters infra/main.parameters.json environmentName=<name> location=<region>
// See docs/deploy.md.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the environment (azd env name). Names the resource group and seeds the unique resource token.')
param environmentName string

@minLength(1)
@description('Azure region for every resource. It must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create or reuse; empty means rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object ID of the deploying user or pipeline, granted storage data roles for `junction token create`; empty grants nothing.')
param principalId string = ''

@description('Type of principalId.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

// ---------------------------------------------------------------------------------------------
// Junction settings (README, "Settings"): each becomes the JUNCTION_* app setting of the same meaning
// ---------------------------------------------------------------------------------------------

@description('JUNCTION_AAD_TENANT_ID: Azure AD (Entra ID) tenant whose tokens are accepted; empty disables Azure AD.')
param aadTenantId string = ''

@description('JUNCTION_AAD_AUDIENCE: accepted aud values, comma-separated (the app registration\'s client ID and/or App ID URI). Required when aadTenantId is set.')
param aadAudience string = ''

@description('JUNCTION_AAD_GROUP_ID: optional object ID of a group callers must be members of.')
param aadGroupId string = ''

@description('JUNCTION_AAD_ADMIN_GROUP_ID: object ID of the group whose members may use the management API.')
param aadAdminGroupId string = ''

@description('JUNCTION_AAD_ADMIN_ROLE: app role (value) that may use the management API, e.g. Junction.Admin.')
param aadAdminRole string = ''

@description('JUNCTION_AAD_TRIGGER_ROLE: app role (value) that may call the trigger URLs.')
param aadTriggerRole string = 'Junction.Trigger'

@description('JUNCTION_AAD_AUTHORITY_HOST: Entra ID authority host; empty means this cloud\'s login endpoint.')
param aadAuthorityHost string = ''

@description('JUNCTION_CONSOLE_CLIENT_ID: client ID of the console\'s single-page-application registration (redirect URI https://<app host>/console/); empty hides "Sign in with Microsoft". Needs aadTenantId.')
param consoleClientId string = ''

@description('JUNCTION_GRAPH_ENDPOINT: Microsoft Graph endpoint for group-overage checks (sovereign clouds differ).')
param graphEndpoint string = 'https://graph.microsoft.com'

@description('JUNCTION_GRAPH_CLIENT_ID: optional app registration for Graph calls; empty means the managed identity (needs GroupMember.Read.All).')
param graphClientId string = ''

@description('JUNCTION_MAX_BODY_BYTES: request body limit in bytes (at most 100000000).')
@minValue(1)
@maxValue(100000000)
param maxBodyBytes int = 10485760

@description('JUNCTION_OUTBOUND_ALLOWED_HOSTS: hosts that process http steps may call, comma-separated; empty means none.')
param outboundAllowedHosts string = ''

@description('JUNCTION_OAUTH_ISSUERS: OpenID Connect issuers (https URLs, comma-separated) that oauth2 API operations may trust besides Azure AD; empty means Azure AD only.')
param oauthIssuers string = ''

@description('JUNCTION_OUTBOUND_SECRET_HOSTS: JUNCTION_SECRET_NAME=host entries (comma-separated) binding secrets to the hosts http steps may send them to; a secret not named here may go to any allowed host.')
param outboundSecretHosts string = ''

@description('JUNCTION_RUN_RETENTION_DAYS: runs older than this many days are removed daily.')
@minValue(1)
@maxValue(3650)
param runRetentionDays int = 30

@description('JUNCTION_MAX_RUN_QUEUE_DEPTH: admission control; Accept answers 503 with Retry-After while the run queue holds more messages than this (0 = no bound).')
@minValue(0)
@maxValue(10000000)
param maxRunQueueDepth int = 0

@description('JUNCTION_API_DEADLINE_SECONDS: seconds an API operation may wait for its process before answering 504; App Service cuts a response at 230 s.')
@minValue(1)
@maxValue(200)
param apiDeadlineSeconds int = 180

@description('JUNCTION_SCENARIO_HOLD_SECONDS: seconds an instance answers Accept and GetCacheData from a scenario it read before reading it again; a change saved elsewhere holds within this time (0 = read on every call).')
@minValue(0)
@maxValue(60)
param scenarioHoldSeconds int = 1

@description('JUNCTION_TABLE_PREFIX: prefix of Junction\'s table names (a letter, then up to 19 letters or digits); anything else fails the deployment before a resource is made, as the app would refuse it at start-up.')
@minLength(1)
@maxLength(20)
param tablePrefix string = 'junction'

@description('JUNCTION_PUBLIC_BASE_URL: public base URL printed in trigger URLs (e.g. behind a custom domain); empty means the host name each request came to (https://<function app>.azurewebsites.net).')
param publicBaseUrl string = ''

@description('JUNCTION_SECRET_<NAME> settings for http steps, comma-separated names (e.g. ORDERS_API,ERP). Each is a Key Vault reference to the secret <name> in lower case with _ as - (orders-api); set the values in the vault, never here.')
param keyVaultSettingNames string = ''

// ---------------------------------------------------------------------------------------------
// Hosting
// ---------------------------------------------------------------------------------------------

@description('Request TLS client certificates, forwarded to Junction in X-ARR-ClientCert, for API operations bound with certificate authentication. Off by default.')
param clientCertEnabled bool = false

@description('Client certificate mode when clientCertEnabled: Optional (callers without a certificate still connect) or Required (every caller must present one). OptionalInteractiveUser is not offered: it makes the front end renegotiate TLS.')
@allowed([
  'Optional'
  'Required'
])
param clientCertMode string = 'Optional'

@description('Semicolon-separated path prefixes for which no client certificate is requested (e.g. /ExternalData;/management). Any exclusion path makes the front end renegotiate TLS: HTTP/2 is turned off, TLS 1.3 callers cannot present a certificate, POST and PUT bodies over 100 KB fail. Junction refuses certificate-bound operations under these paths.')
param clientCertExclusionPaths string = ''

@description('Maximum instances per function group: the HTTP functions scale together as one group, and each queue or timer function scales on its own, so the app as a whole can reach this many times the number of groups. 40 is the lowest value Flex Consumption accepts in most regions, 1000 the highest.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('HTTP requests one instance takes at once (functionAppConfig.scaleAndConcurrency.triggers.http.perInstanceConcurrency). Python apps default to 1; 3 is where one instance stopped getting more done in bench/http_concurrency.py (docs/deploy.md, Scale).')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 3

@description('Memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Python version of the function app; Flex Consumption runs 3.11 and 3.12 for Junction.')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('Spread instances over availability zones (the region must have them). Flex Consumption then keeps at least two always-ready instances per function group, billed around the clock; storage is made zone-redundant too (LRS becomes ZRS, GRS becomes GZRS).')
param zoneRedundant bool = false

@description('Put storage and Key Vault behind private endpoints in a new virtual network the app is integrated with, and turn their public network access off.')
param vnetEnabled bool = false

@description('Recover the soft-deleted Key Vault of an earlier deployment of this environment (createMode recover) instead of creating one: needed to deploy again after `azd down`, since purge protection keeps the name for 90 days. Set it back to false afterwards.')
param keyVaultRecover bool = false

@description('Storage replication.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSkuName string = 'Standard_LRS'

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

// ---------------------------------------------------------------------------------------------
// Alerts (docs/operations.md): the rules always exist; an e-mail address adds an action group
// ---------------------------------------------------------------------------------------------

@description('E-mail address that fired alerts are sent to (an action group is created for it); empty sends nothing, and fired alerts show in the portal only (Monitor > Alerts).')
param alertEmail string = ''

@description('Alert when the oldest message of the run queue has waited longer than this many minutes.')
@minValue(1)
@maxValue(1440)
param alertQueueAgeMinutes int = 10

@description('Alert when, in the last hour, more than this percentage of a scenario\'s ended runs failed (scenarios with at least 5 ended runs).')
@minValue(1)
@maxValue(100)
param alertFailedRunPercent int = 10

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'junction'
}
var functionAppName = 'func-junction-${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'
// The app refuses any other table prefix at start-up (core/settings.py: a letter, then up to 19
// letters or digits). Refuse it here first, before anything is created: ARM evaluates only the
// branch a condition takes, so an invalid prefix reads a property that does not exist and the
// deployment fails with this sentence in its error.
var prefixLetters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'
var prefixCharacters = '${prefixLetters}0123456789'
var tablePrefixCharactersValid = [for i in range(0, length(tablePrefix)): contains(prefixCharacters, substring(tablePrefix, i, 1))]
var tablePrefixIsValid = contains(prefixLetters, first(tablePrefix)) && !contains(tablePrefixCharactersValid, false)
var noProperties = json('{}')
var validTablePrefix = tablePrefixIsValid ? tablePrefix : noProperties['tablePrefix (JUNCTION_TABLE_PREFIX) must be a letter followed by up to 19 letters or digits']

// A zone-redundant plan needs zone-redundant storage for its host state and deployment package.
var zonalStorageSku = (storageSkuName == 'Standard_LRS') ? 'Standard_ZRS' : ((storageSkuName == 'Standard_GRS') ? 'Standard_GZRS' : storageSkuName)
var effectiveStorageSkuName = zoneRedundant ? zonalStorageSku : storageSkuName

var loginEndpoint = environment().authentication.loginEndpoint
var defaultAuthorityHost = endsWith(loginEndpoint, '/') ? substring(loginEndpoint, 0, length(loginEndpoint) - 1) : loginEndpoint

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module identity './app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-junction-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage './app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    skuName: effectiveStorageSkuName
    deploymentContainerName: deploymentContainerName
    scheduleQueueName: '${toLower(validTablePrefix)}-schedules'
    runQueueName: '${toLower(validTablePrefix)}-runs'
    vnetEnabled: vnetEnabled
  }
}

module keyVault './app/keyvault.bicep' = {
  name: 'keyVault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    recoverSoftDeleted: keyVaultRecover
    vnetEnabled: vnetEnabled
  }
}

module network './app/network.bicep' = if (vnetEnabled) {
  name: 'network'
  scope: rg
  params: {
    name: 'vnet-junction-${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
  }
}

module monitoring './app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-junction-${resourceToken}'
    applicationInsightsName: 'appi-junction-${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
  }
}

module alerts './app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    namePrefix: 'alert-junction-${resourceToken}'
    actionGroupName: 'ag-junction-${resourceToken}'
    location: location
    tags: tags
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    alertEmail: alertEmail
    queueAgeMinutes: alertQueueAgeMinutes
    failedRunPercent: alertFailedRunPercent
  }
}

module rbac './app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    identityPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module functionApp './app/function.bicep' = {
  name: 'functionApp'
  scope: rg
  // The host needs its storage roles before it first starts (and, with vnetEnabled, the private
  // endpoints: virtualNetworkSubnetId below already makes it wait for the network module).
  dependsOn: [
    rbac
  ]
  params: {
    name: functionAppName
    planName: 'plan-junction-${resourceToken}'
    location: location
    tags: tags
    serviceName: 'api'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    maximumInstanceCount: maximumInstanceCount
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    instanceMemoryMB: instanceMemoryMB
    pythonVersion: pythonVersion
    zoneRedundant: zoneRedundant
    virtualNetworkSubnetId: vnetEnabled ? network.outputs.appSubnetId : ''
    clientCertEnabled: clientCertEnabled
    clientCertMode: clientCertMode
    clientCertExclusionPaths: clientCertExclusionPaths
    aadTenantId: aadTenantId
    aadAudience: aadAudience
    aadGroupId: aadGroupId
    aadAdminGroupId: aadAdminGroupId
    aadAdminRole: aadAdminRole
    aadTriggerRole: aadTriggerRole
    aadAuthorityHost: empty(aadAuthorityHost) ? defaultAuthorityHost : aadAuthorityHost
    consoleClientId: consoleClientId
    graphEndpoint: graphEndpoint
    graphClientId: graphClientId
    maxBodyBytes: maxBodyBytes
    outboundAllowedHosts: outboundAllowedHosts
    oauthIssuers: oauthIssuers
    outboundSecretHosts: outboundSecretHosts
    runRetentionDays: runRetentionDays
    apiDeadlineSeconds: apiDeadlineSeconds
    maxRunQueueDepth: maxRunQueueDepth
    scenarioHoldSeconds: scenarioHoldSeconds
    tablePrefix: validTablePrefix
    publicBaseUrl: publicBaseUrl
    keyVaultName: keyVault.outputs.name
    keyVaultSettingNames: keyVaultSettingNames
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs (azd stores them in .azure/<env>/.env)
// ---------------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = functionApp.outputs.url
output JUNCTION_URL string = empty(publicBaseUrl) ? functionApp.outputs.url : publicBaseUrl
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AzureWebJobsStorage__tableServiceUri string = storage.outputs.tableEndpoint
output AzureWebJobsStorage__queueServiceUri string = storage.outputs.queueEndpoint
output AzureWebJobsStorage__blobServiceUri string = storage.outputs.blobEndpoint
output JUNCTION_TABLE_PREFIX string = validTablePrefix
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
