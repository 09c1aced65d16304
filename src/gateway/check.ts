import type { Clock } from '../clock.js'
import { InvalidToken, LineageError } from '../errors.js'
import { actorsOf, type AccessClaims } from '../lineage/claims.js'
import type { LiveStatus } from '../lineage/live-status.js'
import { covers, splitScope } from '../lineage/scopes.js'
import { verifyAccessToken, type KeyLookup } from '../lineage/verify.js'
import type { VerifiedTokens } from '../lineage/verified-tokens.js'
import { policyRefusal, type PolicyRequest } from './policy.js'
import type { Target } from './targets.js'

/** What the gateway's check needs; all of it in memory but for a JWKS refresh on an unknown `kid`. */
export interface CheckDeps {
  view: LiveStatus
  keys: KeyLookup
  verified: VerifiedTokens
  issuer: string
  clock: Clock
  maxDepth: number
}

/** 403 with `WWW-Authenticate: Bearer error="insufficient_scope"` (RFC 6750 §3.1). */
export class InsufficientScope extends LineageError {
  constructor (description: string) { super('ERR_INSUFFICIENT_SCOPE', 'insufficient_scope', 403, description) }
}

/**
 * Checks a bearer token for one action on one target: signature, `exp`/`nbf`, the whole chain
 * live (no ancestor revoked, every principal active and within its end date), the target in
 * `aud`, the scope for the action, then the target's policy.
 * @returns the token's claims.
 * @throws InvalidToken (401) saying which check failed; InsufficientScope (403).
 */
export async function checkAccess (deps: CheckDeps, token: string | undefined, target: Target, request: Omit<PolicyRequest, 'depth' | 'principals' | 'actor'>): Promise<AccessClaims> {
  if (token === undefined) throw new InvalidToken('a bearer token is required', 'ERR_TOKEN_MISSING')
  const now = deps.clock.now()
  let claims = deps.verified.get(token, Math.floor(now / 1000))
  if (claims === undefined) {
    claims = await verifyAccessToken(token, { keys: deps.keys, issuer: deps.issuer, clock: deps.clock, maxDepth: deps.maxDepth })
    deps.verified.add(token, claims)
  }
  const cut = deps.view.check(claims.jti, claims.lineage, now)
  if (cut !== undefined) throw new InvalidToken(`chain cut off: ${cut.message}`, 'ERR_TOKEN_CUT_OFF')
  if (!claims.aud.includes(target.name)) throw new InsufficientScope(`the token's audience does not include ${target.name}`)
  const needed = `${target.name}:${request.action}`
  if (!covers(splitScope(claims.scope), needed)) throw new InsufficientScope(`scope ${needed} is required`)
  const refusal = policyRefusal(target.policy, { ...request, depth: claims.lineage.depth, principals: claims.lineage.principals, actor: actorsOf(claims.act)[0] })
  if (refusal !== undefined) throw new InsufficientScope(refusal)
  return claims
}
