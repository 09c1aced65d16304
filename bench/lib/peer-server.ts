/**
 * The peer: oidc-provider 9 as a Node team would deploy it for machine-to-machine tokens,
 * `client_credentials` issuing EdDSA-signed JWT access tokens (RFC 9068) for one resource
 * server. Run as its own process; replies over IPC with its token endpoint and client.
 */
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair } from 'jose'
import { Provider } from 'oidc-provider'
import { serveForParent } from './forked.js'

export interface PeerInfo {
  tokenUrl: string
  clientId: string
  clientSecret: string
  resource: string
  scope: string
}

const resource = 'https://api.example.com/'
const scope = 'api:read'

async function signingJwks (): Promise<{ keys: Array<Record<string, unknown>> }> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  const jwk = await exportJWK(privateKey)
  return { keys: [{ ...jwk, kid: 'peer-ed25519', alg: 'EdDSA', use: 'sig' }] }
}

function configuration (jwks: { keys: Array<Record<string, unknown>> }, clientId: string, clientSecret: string): Record<string, unknown> {
  return {
    jwks,
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic'
    }],
    // The keystore holds only the Ed25519 key, so the default RS256 would match no key.
    clientDefaults: { id_token_signed_response_alg: 'EdDSA' },
    scopes: [scope],
    ttl: { ClientCredentials: 3600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope, accessTokenFormat: 'jwt', accessTokenTTL: 3600, jwt: { sign: { alg: 'EdDSA' } } })
      }
    }
  }
}

async function start (): Promise<PeerInfo> {
  const server = createServer({ keepAliveTimeout: 65_000 })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const clientId = 'peer-bench'
  const clientSecret = randomBytes(32).toString('base64url')
  const provider = new Provider(issuer, configuration(await signingJwks(), clientId, clientSecret))
  server.on('request', provider.callback())
  return { tokenUrl: `${issuer}/token`, clientId, clientSecret, resource, scope }
}

serveForParent('peer', async () => await start())
