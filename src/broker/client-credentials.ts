import { epochSeconds } from '../clock.js'
import { InvalidClient, InvalidScope, LineageError, listed } from '../errors.js'
import { scopeProblem, targetOf, targetsOf, uncovered } from '../lineage/scopes.js'
import { authenticateClient } from './clients.js'
import type { BrokerContext } from './context.js'
import { issueToken, type TokenResponse } from './issue.js'
import { principalForIssue } from './principals.js'
import { recordRefused } from './refused.js'
import { requestedTargets } from './targets.js'

export interface ClientCredentialsRequest {
  clientId: string
  clientSecret: string
  scope?: string[]
  /** RFC 8707 `resource` URIs. */
  resource?: string[]
  /** Target names, as RFC 8693 `audience`. */
  audience?: string[]
  ttl?: number
  context: Record<string, string>
}

export const accessTokenType = 'urn:ietf:params:oauth:token-type:access_token'

/**
 * RFC 6749 §4.4: a root token for the principal behind the client. Its lineage starts here:
 * no ancestors, the principals are the sponsor (for a service) and the principal itself.
 * `resource` and `audience` narrow it to those targets (RFC 8707 §2), as they do an exchange.
 * @throws InvalidClient (bad credentials, principal or sponsor not active), InvalidScope, InvalidTarget
 */
export async function clientCredentials (ctx: BrokerContext, req: ClientCredentialsRequest): Promise<TokenResponse> {
  const client = await authenticateClient(ctx, req.clientId, req.clientSecret)
  // The client proved who it is: a refusal from here on is recorded, with the principals behind it.
  const behind = { principals: [client.principal] }
  try {
    return await issueFor(ctx, req, client, behind)
  } catch (err) {
    if (err instanceof LineageError) recordRefused(ctx, behind, err, { client_id: client.client_id, scope: req.scope?.join(' ') ?? null, audience: req.audience ?? [], resource: req.resource ?? [] })
    throw err
  }
}

async function issueFor (ctx: BrokerContext, req: ClientCredentialsRequest, client: { client_id: string, principal: string }, behind: { principals: string[] }): Promise<TokenResponse> {
  const now = ctx.clock.now()
  const p = await principalForIssue(ctx.db, client.principal, now)
  if (p.row.sponsor !== null) behind.principals = [p.row.sponsor, p.row.id]
  if (p.status !== 'active') throw new InvalidClient(`principal ${p.row.id} is ${p.status}`)
  if (p.usable.length === 0) {
    // A service without an active sponsor is unusable, as its client is for introspection; one
    // whose grants and sponsor's merely do not meet authenticated fine and holds no scope.
    if (p.sponsorLost) {
      // A lapsed sponsor stays lapsed when reinstated: say what brings the service back.
      const why = p.row.sponsor_lapsed
        ? `: its sponsor ${p.row.sponsor ?? ''} was offboarded; assign one again (PUT /v1/principals/${p.row.id}/sponsor)`
        : p.row.sponsor === null ? '' : `: ${p.row.sponsor} is not active`
      throw new InvalidClient(`service ${p.row.id} has no active sponsor${why}`)
    }
    throw new InvalidScope(`principal ${p.row.id} holds no usable scope`)
  }
  // RFC 8707 §2: a resource is honoured or refused (invalid_target), never ignored for a broader token.
  const targets = requestedTargets({ audience: req.audience ?? [], resource: req.resource ?? [] }, targetsOf(p.usable), `${p.row.id}'s usable scopes`)
  let scope = targets === undefined ? p.usable : p.usable.filter((s) => targets.includes(targetOf(s)))
  if (req.scope !== undefined) {
    for (const s of req.scope) {
      const problem = scopeProblem(s)
      if (problem !== undefined) throw new InvalidScope(problem)
    }
    const missing = uncovered(p.usable, req.scope)
    if (missing.length > 0) throw new InvalidScope(`not among ${p.row.id}'s usable scopes: ${listed(missing)}`)
    const outside = targets === undefined ? [] : req.scope.filter((s) => !targets.includes(targetOf(s)))
    if (outside.length > 0) throw new InvalidScope(`outside the requested resource or audience: ${listed(outside)}`)
    scope = req.scope
  }
  const iat = epochSeconds(ctx.clock)
  const exp = iat + Math.min(req.ttl ?? ctx.rootTtl, ctx.rootTtl)
  const { token, claims } = await issueToken(ctx, {
    sub: p.row.id,
    aud: targets ?? targetsOf(scope),
    scope,
    exp,
    client_id: client.client_id,
    lineage: { chain: [], principals: p.row.sponsor === null ? [p.row.id] : [p.row.sponsor, p.row.id], depth: 0, rooted_at: now },
    context: req.context
  })
  return { access_token: token, issued_token_type: accessTokenType, token_type: 'Bearer', expires_in: claims.exp - iat, scope: claims.scope }
}
