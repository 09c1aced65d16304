import express, { type Router } from 'express'
import { InvalidBearer } from '../../errors.js'
import { authenticateCaller, bearerOf, type Caller } from '../caller.js'
import type { BrokerContext } from '../context.js'
import { introspect } from '../introspect.js'
import { endedCaller, revokeToken } from '../revoke.js'
import { grantTypes, tokenRequest } from '../token-request.js'
import { required, single, type Form } from '../form-params.js'
import { oauthEndpoint } from './oauth-endpoint.js'
import { rejectOtherMethods } from './method-not-allowed.js'
import { issuerUrl } from '../issuer-url.js'

/** `POST /oauth/introspect` (RFC 7662). */
async function introspection (ctx: BrokerContext, form: Form, authorization: string | undefined): Promise<unknown> {
  await authenticateCaller(ctx, authorization, { client_id: single(form, 'client_id'), client_secret: single(form, 'client_secret') }, false)
  return await introspect(ctx, required(form, 'token'))
}

/** `POST /oauth/revoke` (RFC 7009): an empty 200. */
async function revocation (ctx: BrokerContext, form: Form, authorization: string | undefined): Promise<undefined> {
  let caller: Caller
  try {
    caller = await authenticateCaller(ctx, authorization, { client_id: single(form, 'client_id'), client_secret: single(form, 'client_secret') }, true)
  } catch (err) {
    // RFC 7009 §2.2: a token already dead that revokes itself, or one below it, has nothing left to ask for; not an error.
    const bearer = err instanceof InvalidBearer ? bearerOf(authorization) : undefined
    const token = single(form, 'token')
    const ended = bearer === undefined || token === undefined ? undefined : await endedCaller(ctx, bearer, token)
    if (ended === undefined) throw err
    caller = ended
  }
  await revokeToken(ctx, caller, required(form, 'token'))
  return undefined
}

/** `POST /oauth/token`; also served ahead of the router, see `createBrokerHandler`. */
export function tokenEndpoint (ctx: BrokerContext): ReturnType<typeof oauthEndpoint> {
  // Refusals are counted by their error code (a fixed set): a burst of invalid_client or
  // invalid_request is someone trying tokens or secrets.
  return oauthEndpoint(ctx.log, async (form, authorization) => await tokenRequest(ctx, form, authorization), (error) => { ctx.metrics.tokenRefusals.inc({ error }) })
}

/** The OAuth endpoints and the RFC 8414 metadata. */
export function oauthRoutes (ctx: BrokerContext): Router {
  const r = express.Router()
  r.get('/.well-known/oauth-authorization-server', (_req, res) => {
    res.json({
      issuer: ctx.issuer,
      token_endpoint: issuerUrl(ctx.issuer, '/oauth/token'),
      jwks_uri: issuerUrl(ctx.issuer, '/.well-known/jwks.json'),
      introspection_endpoint: issuerUrl(ctx.issuer, '/oauth/introspect'),
      revocation_endpoint: issuerUrl(ctx.issuer, '/oauth/revoke'),
      grant_types_supported: [grantTypes.clientCredentials, grantTypes.tokenExchange],
      response_types_supported: [],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      // No scopes_supported: scopes are `<target>:<action>` for targets an admin adds at any time,
      // and an empty list (what a fixed list would be) reads as "no scope is supported" (RFC 8414 §2).
      service_documentation: 'https://github.com/lineage/lineage#readme'
    })
  })
  r.get('/.well-known/jwks.json', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=60').json(ctx.keys().jwks)
  })
  r.post('/oauth/token', tokenEndpoint(ctx))
  r.post('/oauth/introspect', oauthEndpoint(ctx.log, async (form, authorization) => await introspection(ctx, form, authorization)))
  r.post('/oauth/revoke', oauthEndpoint(ctx.log, async (form, authorization) => await revocation(ctx, form, authorization)))
  rejectOtherMethods(r)
  return r
}
