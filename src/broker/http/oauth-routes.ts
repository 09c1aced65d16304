import express, { type Request, type Response, type Router } from 'express'
import { InvalidClient, InvalidRequest, UnsupportedGrantType } from '../../errors.js'
import { authenticateCaller, clientCredentialsOf } from '../caller.js'
import { clientCredentials } from '../client-credentials.js'
import { authenticateClient } from '../clients.js'
import type { BrokerContext } from '../context.js'
import { exchange } from '../exchange.js'
import { introspect } from '../introspect.js'
import { revokeToken } from '../revoke.js'
import { actorParam, contextParams, multi, required, scopeParam, single, ttlParam, type Form } from './form.js'

export const grantTypes = {
  clientCredentials: 'client_credentials',
  tokenExchange: 'urn:ietf:params:oauth:grant-type:token-exchange'
} as const

function formOf (req: Request): Form {
  if (!req.is('application/x-www-form-urlencoded') || typeof req.body !== 'object' || req.body === null) {
    throw new InvalidRequest('the body must be application/x-www-form-urlencoded')
  }
  return req.body as Form
}

function noStore (res: Response): Response {
  return res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' })
}

/** `POST /oauth/token`: dispatches on `grant_type`. */
async function token (ctx: BrokerContext, req: Request, res: Response): Promise<void> {
  const form = formOf(req)
  const grant = required(form, 'grant_type')
  if (grant === grantTypes.clientCredentials) {
    const creds = clientCredentialsOf(req.headers.authorization, { client_id: single(form, 'client_id'), client_secret: single(form, 'client_secret') })
    if (creds === undefined) throw new InvalidClient('client authentication is required')
    const out = await clientCredentials(ctx, { clientId: creds.id, clientSecret: creds.secret, scope: scopeParam(form), ttl: ttlParam(form), context: contextParams(form) })
    noStore(res).json(out)
    return
  }
  if (grant === grantTypes.tokenExchange) {
    // The subject token is the credential; a client that authenticates anyway must get it right (RFC 6749 §3.2.1).
    const creds = clientCredentialsOf(req.headers.authorization, { client_id: single(form, 'client_id'), client_secret: single(form, 'client_secret') })
    if (creds !== undefined) await authenticateClient(ctx, creds.id, creds.secret)
    const actorToken = single(form, 'actor_token')
    const actorTokenType = single(form, 'actor_token_type')
    if (actorToken === undefined && actorTokenType !== undefined) throw new InvalidRequest('actor_token_type without actor_token')
    if (actorToken !== undefined && actorTokenType === undefined) throw new InvalidRequest('missing parameter actor_token_type')
    const out = await exchange(ctx, {
      subjectToken: required(form, 'subject_token'),
      subjectTokenType: required(form, 'subject_token_type'),
      actorToken,
      actorTokenType,
      requestedTokenType: single(form, 'requested_token_type'),
      scope: scopeParam(form),
      audience: multi(form, 'audience'),
      resource: multi(form, 'resource'),
      actor: actorParam(form),
      ttl: ttlParam(form),
      context: contextParams(form)
    })
    noStore(res).json(out)
    return
  }
  throw new UnsupportedGrantType(`unsupported grant_type ${grant.slice(0, 100)}`)
}

/** `POST /oauth/introspect` (RFC 7662). */
async function introspection (ctx: BrokerContext, req: Request, res: Response): Promise<void> {
  const form = formOf(req)
  await authenticateCaller(ctx, req.headers.authorization, { client_id: single(form, 'client_id'), client_secret: single(form, 'client_secret') }, false)
  noStore(res).json(await introspect(ctx, required(form, 'token')))
}

/** `POST /oauth/revoke` (RFC 7009). */
async function revocation (ctx: BrokerContext, req: Request, res: Response): Promise<void> {
  const form = formOf(req)
  const caller = await authenticateCaller(ctx, req.headers.authorization, { client_id: single(form, 'client_id'), client_secret: single(form, 'client_secret') }, true)
  await revokeToken(ctx, caller, required(form, 'token'))
  noStore(res).status(200).end()
}

/** The OAuth endpoints and the RFC 8414 metadata. */
export function oauthRoutes (ctx: BrokerContext): Router {
  const r = express.Router()
  const form = express.urlencoded({ extended: false, limit: '256kb', parameterLimit: 64 })
  r.get('/.well-known/oauth-authorization-server', (_req, res) => {
    res.json({
      issuer: ctx.issuer,
      token_endpoint: `${ctx.issuer}/oauth/token`,
      jwks_uri: `${ctx.issuer}/.well-known/jwks.json`,
      introspection_endpoint: `${ctx.issuer}/oauth/introspect`,
      revocation_endpoint: `${ctx.issuer}/oauth/revoke`,
      grant_types_supported: [grantTypes.clientCredentials, grantTypes.tokenExchange],
      response_types_supported: [],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      scopes_supported: [],
      service_documentation: 'https://github.com/lineage/lineage#readme'
    })
  })
  r.get('/.well-known/jwks.json', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=60').json(ctx.keys().jwks)
  })
  r.post('/oauth/token', form, async (req, res) => { await token(ctx, req, res) })
  r.post('/oauth/introspect', form, async (req, res) => { await introspection(ctx, req, res) })
  r.post('/oauth/revoke', form, async (req, res) => { await revocation(ctx, req, res) })
  return r
}
