// The storage account behind AzureWebJobsStorage: Junction's tables, the run queue, large
// payloads, and the Flex Consumption deployment package. Shared keys are disabled: the app, the
// Functions host and the deploying user all reach it with Microsoft Entra ID (role assignments).

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the resource.')
param tags object = {}

@description('Replication. Standard_LRS is the cheapest; choose Standard_ZRS where the region offers it for zone redundancy.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_LRS'

@description('Blob container that holds the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Queue runs are posted to: <JUNCTION_TABLE_PREFIX>-runs, as the app names it.')
param runQueueName string = 'junction-runs'

@description('Queue each schedule\'s next due time waits on: <JUNCTION_TABLE_PREFIX>-schedules, as the app names it.')
param scheduleQueueName string = 'junction-schedules'

@description('Reached only through private endpoints (network.bicep): public network access off.')
param vnetEnabled bool = false

@description('Days that deleted blobs and containers can be restored.')
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int = 7

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Deny with vnetEnabled; by default Flex Consumption without VNet integration has no fixed outbound addresses, so a Deny rule would lock out the Functions host; access is Entra ID only (shared keys off)
  // checkov:skip=CKV_AZURE_59: public network access is off with vnetEnabled; by default the account must be reachable from the Functions host over the public endpoint; every request needs an Entra ID token and an RBAC role
  // checkov:skip=CKV_AZURE_206: LRS is the default because ZRS/GRS is not offered in every Flex Consumption region; set storageSkuName to Standard_ZRS or Standard_GZRS where it is
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: vnetEnabled ? 'None' : 'AzureServices'
      defaultAction: vnetEnabled ? 'Deny' : 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// The app creates its queues on first use too; creating them here means the queue triggers have
// something to listen to from the first start.
resource runQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: runQueueName
}

resource scheduleQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: scheduleQueueName
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainer.name}'
