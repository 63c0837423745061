// The Flex Consumption (FC1) Linux plan and the Junction function app (Python 3.11 or 3.12).
// HTTPS only, TLS 1.2, no FTP or SCM basic publishing credentials, runs as the user-assigned identity;
// storage and Application Insights are reached with that identity (no connection strings, no keys).

@description('Function app name (globally unique: it is the host name).')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('azd service name (azure.yaml) this app deploys.')
param serviceName string = 'api'

@description('Resource ID of the user-assigned managed identity the app runs as.')
param identityId string

@description('Client ID of that identity (AzureWebJobsStorage__clientId, AZURE_CLIENT_ID).')
param identityClientId string

@description('Blob, queue and table endpoints of the AzureWebJobsStorage account.')
param blobEndpoint string
param queueEndpoint string
param tableEndpoint string

@description('URL of the blob container that holds the deployment package.')
param deploymentContainerUrl string

@description('Application Insights connection string (identifies the resource; ingestion needs Entra ID).')
param applicationInsightsConnectionString string

@description('Maximum instances per function group (HTTP functions together; each queue or timer function alone). Flex Consumption accepts 40 to 1000 in most regions.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('HTTP requests one instance takes at once (all HTTP functions scale as one group). Python apps default to 1.')
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

@description('Python version (functionAppConfig.runtime.version).')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('Spread the plan\'s instances over availability zones.')
param zoneRedundant bool = false

@description('Subnet (delegated to Microsoft.App/environments) the app integrates with; empty for none.')
param virtualNetworkSubnetId string = ''

@description('Ask callers for a TLS client certificate (forwarded to Junction in X-ARR-ClientCert) for API operations that use certificate authentication.')
param clientCertEnabled bool = false

// OptionalInteractiveUser is left out: it makes the front end renegotiate TLS, which fails with
// HTTP/2 and TLS 1.3 and limits POST and PUT bodies to 100 KB.
@description('Optional: a caller may connect without a certificate. Required: every connection must present one (breaks anonymous and token callers).')
@allowed([
  'Optional'
  'Required'
])
param clientCertMode string = 'Optional'

@description('Semicolon-separated path prefixes for which no client certificate is requested, e.g. /ExternalData;/management. Any exclusion path makes the front end renegotiate TLS: HTTP/2 is then turned off, TLS 1.3 callers cannot present a certificate, and POST and PUT bodies over 100 KB fail.')
param clientCertExclusionPaths string = ''

@description('JUNCTION_AAD_TENANT_ID: tenant whose Azure AD tokens are accepted; empty disables Azure AD.')
param aadTenantId string = ''

@description('JUNCTION_AAD_AUDIENCE: accepted aud values, comma-separated.')
param aadAudience string = ''

@description('JUNCTION_AAD_GROUP_ID: optional group callers must belong to.')
param aadGroupId string = ''

@description('JUNCTION_AAD_ADMIN_GROUP_ID: group whose members may use the management API.')
param aadAdminGroupId string = ''

@description('JUNCTION_AAD_ADMIN_ROLE: app role that may use the management API.')
param aadAdminRole string = ''

@description('JUNCTION_AAD_TRIGGER_ROLE: app role that may call the trigger URLs.')
param aadTriggerRole string = 'Junction.Trigger'

@description('JUNCTION_AAD_AUTHORITY_HOST: the Entra ID authority host of this cloud.')
param aadAuthorityHost string

@description('JUNCTION_CONSOLE_CLIENT_ID: the console\'s single-page-application registration; empty hides "Sign in with Microsoft".')
param consoleClientId string = ''

@description('JUNCTION_GRAPH_ENDPOINT: Microsoft Graph endpoint for group-overage checks.')
param graphEndpoint string = 'https://graph.microsoft.com'

@description('JUNCTION_GRAPH_CLIENT_ID: optional app registration for Graph calls; empty uses the managed identity.')
param graphClientId string = ''

@description('JUNCTION_MAX_BODY_BYTES: request body limit in bytes.')
@minValue(1)
@maxValue(100000000)
param maxBodyBytes int = 10485760

@description('JUNCTION_OUTBOUND_ALLOWED_HOSTS: hosts that http steps may call, comma-separated.')
param outboundAllowedHosts string = ''

@description('JUNCTION_OAUTH_ISSUERS: OpenID Connect issuers oauth2 API operations may trust besides Azure AD.')
param oauthIssuers string = ''

@description('JUNCTION_OUTBOUND_SECRET_HOSTS: JUNCTION_SECRET_NAME=host entries binding secrets to the hosts they may be sent to.')
param outboundSecretHosts string = ''

@description('JUNCTION_RUN_RETENTION_DAYS: runs older than this many days are removed daily.')
param runRetentionDays int = 30

@description('JUNCTION_MAX_RUN_QUEUE_DEPTH: Accept answers 503 while the run queue holds more messages than this; 0 = no bound.')
@minValue(0)
@maxValue(10000000)
param maxRunQueueDepth int = 0

@description('JUNCTION_API_DEADLINE_SECONDS: seconds an API operation may wait for its process (under the front end\'s 230 s).')
@minValue(1)
@maxValue(200)
param apiDeadlineSeconds int = 180

@description('JUNCTION_SCENARIO_HOLD_SECONDS: how long an instance answers external triggers from a scenario it read; 0 = read on every call.')
@minValue(0)
@maxValue(60)
param scenarioHoldSeconds int = 1

@description('JUNCTION_TABLE_PREFIX: prefix of Junction\'s table names.')
param tablePrefix string = 'junction'

@description('JUNCTION_PUBLIC_BASE_URL: base URL Junction prints in trigger URLs; empty means the host name each request came to.')
param publicBaseUrl string = ''

@description('Key Vault that holds the values of the JUNCTION_SECRET_* settings.')
param keyVaultName string

@description('Names of JUNCTION_SECRET_<NAME> settings, comma-separated (e.g. ORDERS_API,ERP); each is a Key Vault reference to the secret <name> (lower case, _ as -).')
param keyVaultSettingNames string = ''

// JUNCTION_SECRET_ORDERS_API = @Microsoft.KeyVault(VaultName=kv-...;SecretName=orders-api): the
// platform resolves the reference with the app's identity (keyVaultReferenceIdentity below), so
// the value is in no template, parameter file or deployment record. No version is named: a new
// version of the secret is picked up within a day, or at once on restart.
// Exclusion paths make the front end renegotiate TLS to ask for a certificate, which HTTP/2 forbids.
var clientCertRenegotiates = clientCertEnabled && !empty(clientCertExclusionPaths)

var secretSettingNames = empty(keyVaultSettingNames) ? [] : split(replace(keyVaultSettingNames, ' ', ''), ',')
var secretSettings = [for settingName in secretSettingNames: {
  name: 'JUNCTION_SECRET_${toUpper(settingName)}'
  value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${toLower(replace(settingName, '_', '-'))})'
}]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy is the zoneRedundant parameter, off by default: it exists only in regions with availability zones, and a zone-redundant Flex plan keeps two always-ready instances per function group, billed around the clock
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Junction's trigger URLs are called by outside systems (webhooks, schedulers), so the app must be public; every route authenticates in the app
  // checkov:skip=CKV_AZURE_17: client certificates are opt-in (clientCertEnabled) for API operations that use certificate authentication; requiring them would lock out anonymous and token callers
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero; always-ready instances would bill around the clock (see docs/deploy.md, cost at rest)
  // checkov:skip=CKV_AZURE_78: Flex Consumption rejects siteConfig.ftpsState (ARM error 51021); FTP stays off through the ftp basicPublishingCredentialsPolicies below (allow: false), so no FTP credential exists
  // checkov:skip=CKV_AZURE_67: HTTP/2 is on (http20Enabled) unless client certificate exclusion paths make the front end renegotiate TLS, which HTTP/2 forbids
  // checkov:skip=CKV_AZURE_18: same reason: http20Enabled is off only while clientCertExclusionPaths are in use
  // checkov:skip=CKV_AZURE_213: a scale-to-zero plan has no idle instances for App Service's health check to probe; Junction's GET /health is probed by an Application Insights availability test instead (docs/operations.md)
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // No ARR affinity cookie: any instance serves any request (Junction keeps no session state).
    clientAffinityEnabled: false
    publicNetworkAccess: 'Enabled'
    // With vnetEnabled, outbound traffic (storage, Key Vault references) goes through the network.
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    clientCertEnabled: clientCertEnabled
    clientCertMode: clientCertMode
    clientCertExclusionPaths: clientCertExclusionPaths
    keyVaultReferenceIdentity: identityId
    // Platform CORS stays off (no siteConfig.cors): Junction answers CORS per API operation, and
    // Flex Consumption does not support the platform CORS settings anyway.
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: !clientCertRenegotiates
      remoteDebuggingEnabled: false
      // Identity-based connections only: there is deliberately no AzureWebJobsStorage connection
      // string and no key anywhere. FUNCTIONS_WORKER_RUNTIME and the Python version come from
      // functionAppConfig.runtime (Flex Consumption does not use those app settings).
      appSettings: concat([
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: blobEndpoint
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: queueEndpoint
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: tableEndpoint
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        {
          name: 'JUNCTION_AAD_TENANT_ID'
          value: aadTenantId
        }
        {
          name: 'JUNCTION_AAD_AUDIENCE'
          value: aadAudience
        }
        {
          name: 'JUNCTION_AAD_GROUP_ID'
          value: aadGroupId
        }
        {
          name: 'JUNCTION_AAD_ADMIN_GROUP_ID'
          value: aadAdminGroupId
        }
        {
          name: 'JUNCTION_AAD_ADMIN_ROLE'
          value: aadAdminRole
        }
        {
          name: 'JUNCTION_AAD_TRIGGER_ROLE'
          value: aadTriggerRole
        }
        {
          name: 'JUNCTION_AAD_AUTHORITY_HOST'
          value: aadAuthorityHost
        }
        {
          name: 'JUNCTION_CONSOLE_CLIENT_ID'
          value: consoleClientId
        }
        {
          name: 'JUNCTION_GRAPH_ENDPOINT'
          value: graphEndpoint
        }
        {
          name: 'JUNCTION_GRAPH_CLIENT_ID'
          value: graphClientId
        }
        {
          name: 'JUNCTION_MAX_BODY_BYTES'
          value: string(maxBodyBytes)
        }
        {
          name: 'JUNCTION_OUTBOUND_ALLOWED_HOSTS'
          value: outboundAllowedHosts
        }
        {
          name: 'JUNCTION_OAUTH_ISSUERS'
          value: oauthIssuers
        }
        {
          name: 'JUNCTION_OUTBOUND_SECRET_HOSTS'
          value: outboundSecretHosts
        }
        {
          name: 'JUNCTION_RUN_RETENTION_DAYS'
          value: string(runRetentionDays)
        }
        {
          name: 'JUNCTION_API_DEADLINE_SECONDS'
          value: string(apiDeadlineSeconds)
        }
        {
          name: 'JUNCTION_MAX_RUN_QUEUE_DEPTH'
          value: string(maxRunQueueDepth)
        }
        {
          name: 'JUNCTION_SCENARIO_HOLD_SECONDS'
          value: string(scenarioHoldSeconds)
        }
        {
          name: 'JUNCTION_TABLE_PREFIX'
          value: tablePrefix
        }
        {
          name: 'JUNCTION_PUBLIC_BASE_URL'
          value: publicBaseUrl
        }
        // What the front end does with client certificates, from the parameters that configure it
        // above: Junction trusts X-ARR-ClientCert only where these say the front end sets it.
        {
          name: 'JUNCTION_CLIENT_CERT_ENABLED'
          value: string(clientCertEnabled)
        }
        {
          name: 'JUNCTION_CLIENT_CERT_MODE'
          value: clientCertMode
        }
        {
          name: 'JUNCTION_CLIENT_CERT_EXCLUSION_PATHS'
          value: clientCertExclusionPaths
        }
      ], secretSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// No FTP or SCM basic-auth publishing credentials: deployments authenticate with Entra ID.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output id string = functionApp.id
output defaultHostName string = functionApp.properties.defaultHostName
output url string = 'https://${functionApp.properties.defaultHostName}'
output planId string = plan.id
