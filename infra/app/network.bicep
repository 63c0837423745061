// Optional private networking (vnetEnabled): a virtual network with a subnet the Flex Consumption
// app integrates with (delegated to Microsoft.App/environments) and a subnet for private
// endpoints: storage (blob, queue, table) and Key Vault, each with its private DNS zone linked to
// the network, so the app resolves the accounts' usual host names to private addresses. The
// storage account and the vault then turn public network access off (storage.bicep,
// keyvault.bicep). Modelled on Azure-Samples/functions-quickstart-python-http-azd.

@description('Virtual network name.')
param name string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Address space of the network.')
param addressPrefix string = '10.0.0.0/16'

@description('Subnet the app integrates with (delegated to Microsoft.App/environments), inside addressPrefix.')
param appSubnetPrefix string = '10.0.1.0/24'

@description('Subnet of the private endpoints, inside addressPrefix.')
param privateEndpointSubnetPrefix string = '10.0.2.0/24'

@description('Storage account (AzureWebJobsStorage) that gets blob, queue and table private endpoints.')
param storageAccountName string

@description('Key Vault that gets a private endpoint.')
param keyVaultName string

// Names of the private DNS zones, from this cloud's suffixes (no hard-coded public-cloud host).
var endpoints = [
  {
    service: 'blob'
    zone: 'privatelink.blob.${environment().suffixes.storage}'
  }
  {
    service: 'queue'
    zone: 'privatelink.queue.${environment().suffixes.storage}'
  }
  {
    service: 'table'
    zone: 'privatelink.table.${environment().suffixes.storage}'
  }
  {
    service: 'vault'
    zone: 'privatelink${replace(environment().suffixes.keyvaultDns, '.vault.', '.vaultcore.')}'
  }
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        // Flex Consumption's VNet integration: outbound traffic of the app leaves from here.
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [for endpoint in endpoints: {
  name: endpoint.zone
  location: 'global'
  tags: tags
}]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (endpoint, i) in endpoints: {
  parent: zones[i]
  name: '${name}-link'
  location: 'global'
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [for endpoint in endpoints: {
  name: 'pe-${endpoint.service}-${name}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: vnet.properties.subnets[1].id
    }
    privateLinkServiceConnections: [
      {
        name: endpoint.service
        properties: {
          privateLinkServiceId: (endpoint.service == 'vault') ? vault.id : storage.id
          groupIds: [
            endpoint.service
          ]
        }
      }
    ]
  }
}]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [for (endpoint, i) in endpoints: {
  parent: privateEndpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: endpoint.service
        properties: {
          privateDnsZoneId: zones[i].id
        }
      }
    ]
  }
}]

output id string = vnet.id
output appSubnetId string = vnet.properties.subnets[0].id
