// Key Vault for Midcore release signing: an RBAC vault (Premium, so keys can be HSM-backed), an
// RSA-HSM signing key, a user-assigned managed identity that CI signs as, federated credentials
// for GitHub Actions and Azure DevOps, and a custom role that allows only reading the key and
// signing with it.
//
// Deploy into a resource group:
//   az deployment group create -g RG -f azure/infra/keyvault.bicep \
//     -p vaultName=myvault githubRepository=OWNER/REPO githubEnvironment=release-signing
//
// The identity's client id (output signerClientId) is what AZURE_CLIENT_ID or the service
// connection's client id must be. Nothing here creates a secret.

@description('Vault name, globally unique: 3-24 letters, digits and hyphens.')
param vaultName string

@description('Location of the vault and the identity.')
param location string = resourceGroup().location

@description('Name of the signing key.')
param keyName string = 'release-signing'

@description('RSA modulus size of the signing key, in bits.')
@allowed([3072, 4096])
param keySize int = 3072

@description('GitHub repository allowed to sign, as OWNER/REPO. Empty: no GitHub federated credential.')
param githubRepository string = ''

@description('GitHub environment whose jobs may sign (the subject is repo:OWNER/REPO:environment:NAME).')
param githubEnvironment string = 'release-signing'

@description('Azure DevOps organization id (GUID) for the issuer https://vstoken.dev.azure.com/ID. Empty: no Azure DevOps federated credential.')
param azureDevOpsOrganizationId string = ''

@description('Azure DevOps service connection subject, sc://ORGANIZATION/PROJECT/CONNECTION-NAME.')
param azureDevOpsSubject string = ''

var federationAudience = 'api://AzureADTokenExchange'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: vaultName
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'premium'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

resource signingKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' = {
  parent: vault
  name: keyName
  properties: {
    kty: 'RSA-HSM'
    keySize: keySize
    keyOps: [
      'sign'
      'verify'
    ]
    attributes: {
      enabled: true
    }
  }
}

resource signer 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${vaultName}-signer'
  location: location
}

resource githubCredential 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = if (!empty(githubRepository)) {
  parent: signer
  name: 'github-${githubEnvironment}'
  properties: {
    issuer: 'https://token.actions.githubusercontent.com'
    subject: 'repo:${githubRepository}:environment:${githubEnvironment}'
    audiences: [
      federationAudience
    ]
  }
}

resource azureDevOpsCredential 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = if (!empty(azureDevOpsOrganizationId)) {
  parent: signer
  name: 'azure-devops'
  // Federated credentials on one identity must be created one at a time.
  dependsOn: [
    githubCredential
  ]
  properties: {
    issuer: 'https://vstoken.dev.azure.com/${azureDevOpsOrganizationId}'
    subject: azureDevOpsSubject
    audiences: [
      federationAudience
    ]
  }
}

// Smaller than the built-in Key Vault Crypto User, which also allows encrypt, decrypt, wrap
// and unwrap: the signer only reads the key and signs digests.
resource signerRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'midcore-key-vault-signer')
  properties: {
    roleName: 'Midcore Key Vault Signer (${resourceGroup().name})'
    description: 'Read Key Vault keys and sign with them; nothing else.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: [
          'Microsoft.KeyVault/vaults/keys/read'
          'Microsoft.KeyVault/vaults/keys/sign/action'
        ]
        notDataActions: []
      }
    ]
  }
}

// Scoped to the one key, not the vault.
resource signerAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(signingKey.id, signer.id, signerRole.id)
  scope: signingKey
  properties: {
    roleDefinitionId: signerRole.id
    principalId: signer.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

@description('Client id for AZURE_CLIENT_ID or the service connection.')
output signerClientId string = signer.properties.clientId

@description('Tenant id for AZURE_TENANT_ID.')
output tenantId string = subscription().tenantId

@description('Key reference for midcore-sign.')
output keyReference string = 'azure-kv://${vaultName}.vault.azure.net/keys/${keyName}'
