import { randomUUID, sign } from 'node:crypto'
import { epochSeconds } from '../clock.js'
import { actorsOf, type AccessClaims, type Act, type LineageClaim } from '../lineage/claims.js'
import { InvalidScope } from '../errors.js'
import { maxTokenBytes } from '../lineage/verify.js'
import type { BrokerContext } from './context.js'
import type { SigningKey } from './keys.js'

export interface NewToken {
  sub: string
  aud: string[]
  scope: string[]
  exp: number
  client_id: string
  act?: Act
  lineage: LineageClaim
  /** The first principals of `lineage.principals`, taken from actor tokens (none for a root token). */
  acting?: string[]
  /** What the caller said about itself, recorded in the tree. */
  context: Record<string, string>
}

/** An Ed25519 signature (64 bytes) in base64url. */
const signatureChars = 86

/** The RFC 8693 §2.2.1 / RFC 6749 §5.1 success body. */
export interface TokenResponse {
  access_token: string
  issued_token_type: string
  token_type: 'Bearer'
  expires_in: number
  scope: string
}

/**
 * Records the token in the lineage tree, then signs it: a token exists only once its node is
 * committed (an exchange never hands out a token the tree does not know).
 */
export async function issueToken (ctx: BrokerContext, t: NewToken): Promise<{ token: string, claims: AccessClaims }> {
  const iat = epochSeconds(ctx.clock)
  const jti = randomUUID()
  const claims: AccessClaims = {
    iss: ctx.issuer,
    sub: t.sub,
    aud: t.aud,
    exp: t.exp,
    iat,
    jti,
    client_id: t.client_id,
    scope: t.scope.join(' '),
    ...(t.act !== undefined ? { act: t.act } : {}),
    lineage: t.lineage
  }
  // A token no verifier would accept is not issued (nor recorded): the gateways cap its length.
  const key = ctx.keys().active
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url')
  const length = key.header.length + payload.length + 2 + signatureChars
  if (length > maxTokenBytes) throw new InvalidScope(`the token would be ${length} bytes, more than the ${maxTokenBytes} a verifier accepts: ask for fewer scopes or audiences`)
  const names = t.lineage.principals
  const acting = t.acting ?? []
  const own = names.slice(acting.length)
  await ctx.ledger.record({
    jti,
    parent: t.lineage.chain.at(-1) ?? null,
    root: t.lineage.chain[0] ?? jti,
    depth: t.lineage.depth,
    sub: t.sub,
    sponsor: own.length > 1 ? own[0] : null,
    acting: acting.length > 0 ? acting : null,
    actor_tokens: t.lineage.actor_tokens ?? null,
    client_id: t.client_id,
    actor: t.act?.sub ?? null,
    scope: claims.scope,
    aud: t.aud,
    ancestors: t.lineage.chain,
    iat,
    exp: t.exp,
    rooted_at: t.lineage.rooted_at,
    context: t.context
  })
  ctx.audit.record({
    at: ctx.clock.now(),
    kind: 'token.issued',
    jti,
    root: t.lineage.chain[0] ?? jti,
    principals: names,
    actors: actorsOf(t.act),
    detail: { parent: t.lineage.chain.at(-1) ?? null, depth: t.lineage.depth, scope: claims.scope, aud: t.aud, client_id: t.client_id, exp: t.exp, ...t.context }
  })
  ctx.metrics.tokensIssued.inc({ grant: t.lineage.depth === 0 ? 'client_credentials' : 'token_exchange' })
  const token = signToken(key, payload)
  ctx.verified.add(token, claims)
  return { token, claims }
}

/**
 * JWS compact serialization (RFC 7515 §7.1) with Ed25519 (RFC 8037): header and payload
 * base64url-encoded, joined by a dot, signed. Done with node:crypto directly rather than jose's
 * WebCrypto path because it runs once per exchange; verification stays with jose.
 */
function signToken (key: SigningKey, payload: string): string {
  const input = `${key.header}.${payload}`
  return `${input}.${sign(null, Buffer.from(input), key.privateKey).toString('base64url')}`
}
