import { epochSeconds } from '../clock.js'
import { auditLineage } from '../audit/record.js'
import { InvalidRequest, InvalidScope, InvalidToken, LineageError, listed } from '../errors.js'
import { nestAct, type AccessClaims } from '../lineage/claims.js'
import { scopeProblem, splitScope, targetOf, uncovered } from '../lineage/scopes.js'
import { maxActorTokens, maxPrincipals } from '../lineage/verify.js'
import { accessTokenType } from './client-credentials.js'
import type { BrokerContext } from './context.js'
import { issueToken, type TokenResponse } from './issue.js'
import { liveClaims } from './live-token.js'
import { recordRefused } from './refused.js'
import { requestedTargets } from './targets.js'

export const tokenTypes = {
  accessToken: accessTokenType,
  jwt: 'urn:ietf:params:oauth:token-type:jwt'
} as const

/** RFC 8693 §2.1, already parsed from the form. */
export interface ExchangeRequest {
  subjectToken: string
  subjectTokenType: string
  actorToken?: string
  actorTokenType?: string
  requestedTokenType?: string
  scope?: string[]
  audience: string[]
  resource: string[]
  /** Extension: a name for the new process, the child's current actor. */
  actor?: string
  /** Extension: lifetime in seconds, capped at the parent's. */
  ttl?: number
  context: Record<string, string>
}

/** The subject token's claims once it is known genuine, live or not: a refusal is recorded with them. */
interface Seen { subject?: AccessClaims }

async function checked (ctx: BrokerContext, which: 'subject_token' | 'actor_token', token: string, seen: Seen): Promise<AccessClaims> {
  try {
    return await liveClaims(ctx, token)
  } catch (err) {
    if (which === 'subject_token' && err instanceof InvalidToken) seen.subject = err.claims
    // RFC 8693 §2.2.2: a subject or actor token that is invalid for any reason is invalid_request.
    if (err instanceof InvalidToken) throw new InvalidRequest(`${which}: ${err.message}`, err.code)
    throw err
  }
}

/**
 * What a child's chain rests on besides its ancestors: its parent's principals and actor tokens,
 * and, when an actor token acts for the subject, that token with its own ancestors and actor
 * tokens, and the principals it rests on (its sponsor and its subject), put before the
 * subject's own so that each service still follows its sponsor. Every use of the child and of
 * its descendants then checks them too: offboarding the person whose token acted, or revoking
 * that token or one it descends from, cuts off what it acted in. `acting` is the part of
 * `principals` taken from actor tokens, down the whole chain.
 * @throws InvalidRequest when the child would rest on too many principals or tokens, or on a
 * principal cut off after the subject's chain began (the child would be dead on arrival)
 */
function actedLineage (ctx: BrokerContext, parent: AccessClaims, actor: AccessClaims | undefined): { principals: string[], acting: string[], actorTokens: string[] | undefined } {
  const inherited = parent.lineage.actor_tokens ?? []
  const own = new Set([...parent.lineage.chain, parent.jti, ...inherited])
  const actorTokens = [...inherited]
  if (actor !== undefined) for (const j of [...actor.lineage.chain, actor.jti, ...(actor.lineage.actor_tokens ?? [])]) if (!own.has(j)) { own.add(j); actorTokens.push(j) }
  if (actorTokens.length > maxActorTokens) throw new InvalidRequest(`actor_token: the child would list ${actorTokens.length} actor tokens, more than the ${maxActorTokens} a verifier accepts`)
  const names = parent.lineage.principals
  // The subject's own principals end the list: its sponsor and itself for a service, itself for a human.
  const subject = ctx.view.principal(parent.sub)?.kind === 'service' && names.length > 1 ? 2 : 1
  const acting = names.slice(0, names.length - subject)
  if (actor !== undefined && !actor.lineage.principals.every((p) => names.includes(p))) acting.push(...actor.lineage.principals)
  const principals = [...acting, ...names.slice(names.length - subject)]
  if (principals.length > maxPrincipals) throw new InvalidRequest(`actor_token: the child would rest on ${principals.length} principals, more than the ${maxPrincipals} a verifier accepts`)
  const cut = ctx.view.check(parent.jti, { ...parent.lineage, principals }, ctx.clock.now())
  if (cut !== undefined) throw new InvalidRequest(`actor_token: chain cut off: ${cut.message}`, 'ERR_TOKEN_CUT_OFF')
  return { principals, acting, actorTokens: actorTokens.length > 0 ? actorTokens : undefined }
}

/**
 * RFC 8693 token exchange: a child of the subject token, never broader, longer-lived or deeper
 * than allowed, recorded in the lineage tree before it is returned.
 * @throws InvalidRequest (bad or cut-off subject/actor token, depth exceeded), InvalidScope, InvalidTarget
 */
export async function exchange (ctx: BrokerContext, req: ExchangeRequest): Promise<TokenResponse> {
  const seen: Seen = {}
  try {
    return await exchangeChecked(ctx, req, seen)
  } catch (err) {
    if (seen.subject !== undefined && err instanceof LineageError) {
      recordRefused(ctx, auditLineage(seen.subject), err, { scope: req.scope?.join(' ') ?? null, audience: req.audience, resource: req.resource, actor: req.actor ?? null })
    }
    throw err
  }
}

async function exchangeChecked (ctx: BrokerContext, req: ExchangeRequest, seen: Seen): Promise<TokenResponse> {
  if (req.subjectTokenType !== tokenTypes.accessToken && req.subjectTokenType !== tokenTypes.jwt) {
    throw new InvalidRequest(`unsupported subject_token_type ${req.subjectTokenType.slice(0, 100)}`)
  }
  if (req.actorToken !== undefined && req.actorTokenType !== tokenTypes.accessToken && req.actorTokenType !== tokenTypes.jwt) {
    throw new InvalidRequest('unsupported actor_token_type')
  }
  const issuedType = req.requestedTokenType ?? tokenTypes.accessToken
  if (issuedType !== tokenTypes.accessToken && issuedType !== tokenTypes.jwt) throw new InvalidRequest('requested_token_type must be an access token or a JWT')

  const parent = await checked(ctx, 'subject_token', req.subjectToken, seen)
  seen.subject = parent
  const actorClaims = req.actorToken === undefined ? undefined : await checked(ctx, 'actor_token', req.actorToken, seen)
  const mayAct = (parent as AccessClaims & { may_act?: { sub?: unknown } }).may_act
  if (mayAct !== undefined && (actorClaims === undefined || mayAct.sub !== actorClaims.sub)) {
    throw new InvalidRequest('the actor is not allowed to act for the subject (may_act)')
  }

  const depth = parent.lineage.depth + 1
  if (depth > ctx.maxDepth) throw new InvalidRequest(`depth ${depth} exceeds the maximum of ${ctx.maxDepth}`, 'ERR_DEPTH_EXCEEDED')

  const parentScope = splitScope(parent.scope)
  const targets = requestedTargets(req, parent.aud, "the subject token's audience")
  let scope: string[]
  if (req.scope !== undefined) {
    for (const s of req.scope) {
      const problem = scopeProblem(s)
      if (problem !== undefined) throw new InvalidScope(problem)
    }
    const missing = uncovered(parentScope, req.scope)
    if (missing.length > 0) throw new InvalidScope(`not held by the subject token: ${listed(missing)}`)
    const outside = targets === undefined ? [] : req.scope.filter((s) => !targets.includes(targetOf(s)))
    if (outside.length > 0) throw new InvalidScope(`outside the requested audience: ${listed(outside)}`)
    scope = req.scope
  } else {
    scope = targets === undefined ? parentScope : parentScope.filter((s) => targets.includes(targetOf(s)))
  }
  if (scope.length === 0) throw new InvalidScope('no scope left for the child token')
  const aud = targets ?? parent.aud.filter((t) => scope.some((s) => targetOf(s) === t))

  const now = epochSeconds(ctx.clock)
  // Acting for the subject lasts no longer than the actor's own token.
  const exp = Math.min(parent.exp, actorClaims?.exp ?? parent.exp, req.ttl === undefined ? parent.exp : now + req.ttl)
  if (exp <= now) throw new InvalidRequest('subject_token: token expired')
  const { principals, acting, actorTokens } = actedLineage(ctx, parent, actorClaims)

  const actor = req.actor ?? actorClaims?.sub ?? 'unnamed'
  const { token, claims } = await issueToken(ctx, {
    sub: parent.sub,
    aud,
    scope,
    exp,
    client_id: parent.client_id,
    act: nestAct(actor, parent.act),
    lineage: { chain: [...parent.lineage.chain, parent.jti], principals, depth, rooted_at: parent.lineage.rooted_at, ...(actorTokens === undefined ? {} : { actor_tokens: actorTokens }) },
    acting,
    context: req.context
  })
  return { access_token: token, issued_token_type: issuedType, token_type: 'Bearer', expires_in: claims.exp - now, scope: claims.scope }
}
