// The Key Vault behind the JUNCTION_SECRET_* app settings: credentials that process http steps
// send to outside systems (docs/deploy.md, "Secrets for http steps"). The values live only here; the function app reads them
// through Key Vault references with its managed identity, so no secret passes through a
// template, a parameter file, the azd environment or the deployment history. Access is RBAC
// only (no access policies): the app's identity may read secrets, nothing more.

@description('Key Vault name (3-24 letters, digits and dashes).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the resource.')
param tags object = {}

@description('Recover the soft-deleted vault of this name (createMode recover) instead of creating it: after the resource group was deleted, purge protection keeps the name for the retention period.')
param recoverSoftDeleted bool = false

@description('Reached only through a private endpoint (network.bicep): public network access off.')
param vnetEnabled bool = false

@description('Days a deleted secret can be recovered.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Deny with vnetEnabled; by default Flex Consumption without VNet integration has no fixed outbound addresses, so a Deny rule would stop the platform resolving Key Vault references; every read needs an Entra ID token and the Key Vault Secrets User role
  // checkov:skip=CKV_AZURE_189: public network access is off with vnetEnabled; by default the platform reaches the vault over its public endpoint; there are no access policies and no keys, RBAC decides every read
  name: name
  location: location
  tags: tags
  properties: {
    createMode: recoverSoftDeleted ? 'recover' : 'default'
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: vnetEnabled ? 'None' : 'AzureServices'
      defaultAction: vnetEnabled ? 'Deny' : 'Allow'
    }
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
