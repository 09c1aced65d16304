import { InvalidClient, InvalidRequest, UnsupportedGrantType } from '../errors.js'
import { clientCredentialsOf } from './caller.js'
import { clientCredentials } from './client-credentials.js'
import { authenticateClient } from './clients.js'
import type { BrokerContext } from './context.js'
import { exchange } from './exchange.js'
import type { TokenResponse } from './issue.js'
import { actorParam, contextParams, multi, required, scopeParam, single, ttlParam, type Form } from './form-params.js'

export const grantTypes = {
  clientCredentials: 'client_credentials',
  tokenExchange: 'urn:ietf:params:oauth:grant-type:token-exchange'
} as const

/**
 * A token request (`POST /oauth/token`), dispatched on `grant_type`.
 * @param authorization the request's Authorization header, for client authentication.
 * @throws the contract's OAuth errors.
 */
export async function tokenRequest (ctx: BrokerContext, form: Form, authorization: string | undefined): Promise<TokenResponse> {
  const grant = required(form, 'grant_type')
  const creds = clientCredentialsOf(authorization, { client_id: single(form, 'client_id'), client_secret: single(form, 'client_secret') })
  if (grant === grantTypes.clientCredentials) {
    if (creds === undefined) throw new InvalidClient('client authentication is required')
    return await clientCredentials(ctx, { clientId: creds.id, clientSecret: creds.secret, scope: scopeParam(form), resource: multi(form, 'resource'), audience: multi(form, 'audience'), ttl: ttlParam(form), context: contextParams(form) })
  }
  if (grant === grantTypes.tokenExchange) {
    // The subject token is the credential; a client that authenticates anyway must get it right (RFC 6749 §3.2.1).
    if (creds !== undefined) await authenticateClient(ctx, creds.id, creds.secret)
    const actorToken = single(form, 'actor_token')
    const actorTokenType = single(form, 'actor_token_type')
    if (actorToken === undefined && actorTokenType !== undefined) throw new InvalidRequest('actor_token_type without actor_token')
    if (actorToken !== undefined && actorTokenType === undefined) throw new InvalidRequest('missing parameter actor_token_type')
    return await exchange(ctx, {
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
  }
  throw new UnsupportedGrantType(`unsupported grant_type ${grant.slice(0, 100)}`)
}
