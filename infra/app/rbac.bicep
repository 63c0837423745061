// Least-privilege role assignments. The app's identity gets exactly the data-plane roles Junction
// and the Functions host need on its own storage account, Application Insights component and Key
// Vault; the
// deploying user (optional) gets what `junction token create`, setting the JUNCTION_SECRET_* values
// in Key Vault, and troubleshooting need.
// Names are deterministic guid()s, so a redeployment updates rather than duplicates them.

@description('Name of the storage account (AzureWebJobsStorage).')
param storageAccountName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Name of the Key Vault behind the JUNCTION_SECRET_* settings.')
param keyVaultName string

@description('Principal (object) ID of the app\'s user-assigned managed identity.')
param identityPrincipalId string

@description('Object ID of the deploying user or pipeline; empty grants nothing.')
param deployerPrincipalId string = ''

@description('Type of the deploying principal.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

// Built-in role definition IDs (the same in every tenant and cloud).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

// Blob Data Owner: the host's blob leases and the Flex Consumption deployment package.
// Queue Data Contributor: the run queue and the host's poison queue.
// Table Data Contributor: Junction's tables (created by the app on first use).
var identityStorageRoles = [
  storageBlobDataOwner
  storageQueueDataContributor
  storageTableDataContributor
]

// The deploying user: create the first admin token straight in Table Storage, and inspect queues
// and payload blobs when troubleshooting. No Owner role, nothing on the management plane.
var deployerStorageRoles = [
  storageBlobDataContributor
  storageQueueDataContributor
  storageTableDataContributor
]

// On the Key Vault: set and rotate the JUNCTION_SECRET_* values (read, write, no purge).
var deployerKeyVaultRoles = [
  keyVaultSecretsOfficer
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource identityStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in identityStorageRoles: {
  name: guid(storage.id, identityPrincipalId, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource identityMonitoring 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identityPrincipalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Key Vault Secrets User on the one vault: the platform resolves the JUNCTION_SECRET_* references
// with the app's identity. It can read secrets, not list keys or change anything.
resource identityKeyVault 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, identityPrincipalId, keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource deployerStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in (empty(deployerPrincipalId) ? [] : deployerStorageRoles): {
  name: guid(storage.id, deployerPrincipalId, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}]

// The deploying user sets and rotates the JUNCTION_SECRET_* values (docs/deploy.md).
resource deployerKeyVault 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in (empty(deployerPrincipalId) ? [] : deployerKeyVaultRoles): {
  name: guid(keyVault.id, deployerPrincipalId, roleId)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}]
