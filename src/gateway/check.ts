import type { Clock } from '../clock.js'
import { InvalidToken, LineageError, Unavailable } from '../errors.js'
import { currentActor, type AccessClaims } from '../lineage/claims.js'
import type { LiveStatus } from '../lineage/live-status.js'
import { verifyAccessToken, type KeyLookup } from '../lineage/verify.js'
import { viewStaleness } from '../lineage/view-staleness.js'
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
  /** When the view was last proven current (epoch ms), and how old it may be before every request is refused. */
  freshness?: { freshAt: () => number, maxStalenessMs: number }
}

/** 403 with `WWW-Authenticate: Bearer error="insufficient_scope"` (RFC 6750 §3.1). */
export class InsufficientScope extends LineageError {
  constructor (description: string) { super('ERR_INSUFFICIENT_SCOPE', 'insufficient_scope', 403, description) }
}

/** True when the space-separated `scope` holds `needed` or `<target>:*`, without splitting it. */
function hasScope (scope: string, target: string, needed: string): boolean {
  const padded = ` ${scope} `
  return padded.includes(` ${needed} `) || padded.includes(` ${target}:* `)
}

/** A gateway decision: the claims when the token was genuine, and the refusal if there is one. */
export type Decision =
  | { allowed: true, claims: AccessClaims }
  | { allowed: false, refusal: InvalidToken | InsufficientScope, claims?: AccessClaims }

/**
 * Decides a bearer token for one action on one target: `authenticate`, then `authorize`.
 * A refusal says which check failed (401 `InvalidToken`, 403 `InsufficientScope`) and, past
 * the signature, carries the claims so the refusal is recorded with its lineage. Synchronous
 * when the token's signature is already known good (the common case), a promise otherwise.
 */
export function checkAccess (deps: CheckDeps, token: string | undefined, target: Target, request: Omit<PolicyRequest, 'depth' | 'principals' | 'actor'>): Decision | Promise<Decision> {
  const who = authenticate(deps, token, target)
  return who instanceof Promise ? who.then((w) => withAuthorization(w, target, request)) : withAuthorization(who, target, request)
}

function withAuthorization (who: Decision, target: Target, request: Omit<PolicyRequest, 'depth' | 'principals' | 'actor'>): Decision {
  if (!who.allowed) return who
  const refusal = authorize(who.claims, target, request)
  return refusal === undefined ? who : { allowed: false, refusal, claims: who.claims }
}

/** Why the live-status view cannot be trusted at `now` (older than the limit), or undefined when it can. */
export function staleness (deps: Pick<CheckDeps, 'freshness'>, now: number): string | undefined {
  return deps.freshness === undefined ? undefined : viewStaleness(deps.freshness.freshAt(), deps.freshness.maxStalenessMs, now)
}

/**
 * The token half of a check: signature, `exp`/`nbf`, the whole chain live (no ancestor
 * revoked, every principal active and within its end date) and the target in `aud`.
 * Synchronous when the signature is already known good; a promise when it must be verified
 * (which may fetch the broker's keys).
 * @throws Unavailable when the view cannot be proven fresh (fail closed).
 */
export function authenticate (deps: CheckDeps, token: string | undefined, target: Target): Decision | Promise<Decision> {
  const now = deps.clock.now()
  // Fail closed: a view that cannot be proven current might be missing a cut-off.
  const stale = staleness(deps, now)
  if (stale !== undefined) throw new Unavailable(stale)
  if (token === undefined) return { allowed: false, refusal: new InvalidToken('a bearer token is required', 'ERR_TOKEN_MISSING') }
  const known = deps.verified.get(token, Math.floor(now / 1000))
  if (known !== undefined) return liveFor(deps, known, target, now)
  return verifyAccessToken(token, { keys: deps.keys, issuer: deps.issuer, clock: deps.clock, maxDepth: deps.maxDepth }).then((claims): Decision => {
    deps.verified.add(token, claims)
    // The view may have moved while the keys were fetched, or stopped being proven current
    // (a fetch can take seconds): check it as of now.
    const later = deps.clock.now()
    const staleNow = staleness(deps, later)
    if (staleNow !== undefined) throw new Unavailable(staleNow)
    return liveFor(deps, claims, target, later)
  }, (err: unknown): Decision => {
    if (err instanceof InvalidToken) return { allowed: false, refusal: err, claims: err.claims }
    throw err
  })
}

/**
 * The claims of `token` if it is genuine (signature, issuer, `exp` aside: an expired token's
 * claims come back too), from memory when verified before; undefined for one that is not. For
 * the record of a refusal made before any token was checked (an unknown target): who sent it.
 */
export async function genuineClaims (deps: CheckDeps, token: string): Promise<AccessClaims | undefined> {
  const known = deps.verified.get(token, Math.floor(deps.clock.now() / 1000))
  if (known !== undefined) return known
  try {
    const claims = await verifyAccessToken(token, { keys: deps.keys, issuer: deps.issuer, clock: deps.clock, maxDepth: deps.maxDepth })
    deps.verified.add(token, claims)
    return claims
  } catch (err) {
    return err instanceof InvalidToken ? err.claims : undefined
  }
}

/** Genuine claims against the live view at `now` and the target's audience. */
function liveFor (deps: CheckDeps, claims: AccessClaims, target: Target, now: number): Decision {
  // The signature check leaves a few seconds' leeway past `exp`, but a live connection ends at
  // `exp` itself (LiveStatus.endedAt): one accepted in between would reach the upstream and
  // then be cut at once. The broker's exchange holds to `exp` too.
  if (now >= claims.exp * 1000) return { allowed: false, refusal: new InvalidToken('token expired', 'ERR_TOKEN_EXPIRED'), claims }
  const cut = deps.view.check(claims.jti, claims.lineage, now)
  if (cut !== undefined) return { allowed: false, refusal: new InvalidToken(`chain cut off: ${cut.message}`, 'ERR_TOKEN_CUT_OFF'), claims }
  if (!claims.aud.includes(target.name)) return { allowed: false, refusal: new InsufficientScope(`the token's audience does not include ${target.name}`), claims }
  return { allowed: true, claims }
}

/** The action half of a check: the scope `<target>:<action>`, then the target's policy. */
export function authorize (claims: AccessClaims, target: Target, request: Omit<PolicyRequest, 'depth' | 'principals' | 'actor'>): InsufficientScope | undefined {
  const needed = `${target.name}:${request.action}`
  if (!hasScope(claims.scope, target.name, needed)) return new InsufficientScope(`scope ${needed} is required`)
  const policy = policyRefusal(target.policy, {
    action: request.action, depth: claims.lineage.depth, principals: claims.lineage.principals, actor: currentActor(claims),
    method: request.method, path: request.path, tables: request.tables, statements: request.statements, command: request.command
  })
  return policy === undefined ? undefined : new InsufficientScope(policy)
}
