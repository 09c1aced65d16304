import { errors as joseErrors, jwtVerify, type CryptoKey, type JWTHeaderParameters } from 'jose'
import type { Clock } from '../clock.js'
import { InvalidToken } from '../errors.js'
import type { AccessClaims, Act } from './claims.js'

/** Pinned: a token's own header never chooses the algorithm (RFC 8725 §3.1). */
export const acceptedAlgs = ['EdDSA']
/** Far above any token Lineage issues at the deepest allowed chain; refused before parsing. */
export const maxTokenBytes = 16 * 1024
/** The most principals a chain may rest on (its sponsor, its subject, and those of actor tokens that acted in it). */
export const maxPrincipals = 8
/** The most tokens a chain may list in `actor_tokens`. */
export const maxActorTokens = 32
/** Small clock tolerance for `exp`/`nbf` (RFC 9068 §4). */
export const clockToleranceSeconds = 5

/**
 * The oldest `exp` (epoch seconds) that verification may still accept at `nowMs`. A revocation
 * is kept while its token's `exp` is at or after it: forgetting it earlier would let the
 * revoked token, and its descendants, pass again within the clock tolerance.
 */
export function oldestAcceptedExp (nowMs: number): number {
  return Math.floor(nowMs / 1000) - clockToleranceSeconds - 1
}

/** Finds the public key for a header's `kid`; undefined when there is none. */
export type KeyLookup = (kid: string) => CryptoKey | undefined | Promise<CryptoKey | undefined>

const reasons: Record<string, string> = {
  ERR_JWT_EXPIRED: 'token expired',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'signature verification failed',
  ERR_JOSE_ALG_NOT_ALLOWED: 'signing algorithm not allowed',
  ERR_JWS_INVALID: 'malformed token',
  ERR_JWT_INVALID: 'malformed token claims',
  ERR_JOSE_NOT_SUPPORTED: 'unsupported token',
  ERR_JWKS_NO_MATCHING_KEY: 'unknown signing key'
}

function describe (err: unknown, maxDepth: number): InvalidToken {
  if (err instanceof InvalidToken) return err
  const code = err instanceof joseErrors.JOSEError ? err.code : undefined
  // jose checks `exp` after the signature: an expired token's claims are genuine, and its
  // refusal is recorded with them (when they have the shape of a Lineage token's).
  if (code === 'ERR_JWT_EXPIRED') return new InvalidToken(reasons[code], 'ERR_TOKEN_EXPIRED', genuineShape((err as joseErrors.JWTExpired).payload, maxDepth))
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    const claim = (err as joseErrors.JWTClaimValidationFailed).claim
    const text = claim === 'nbf' || claim === 'iat' ? 'token is not yet valid' : `claim "${claim}" is invalid`
    return new InvalidToken(text, 'ERR_TOKEN_CLAIM')
  }
  if (code !== undefined && reasons[code] !== undefined) return new InvalidToken(reasons[code], code === 'ERR_JWT_EXPIRED' ? 'ERR_TOKEN_EXPIRED' : 'ERR_TOKEN_SIGNATURE')
  return new InvalidToken('malformed token', 'ERR_TOKEN_MALFORMED')
}

// U+0000 and unpaired surrogates: no id Lineage issues holds one, and PostgreSQL cannot store them.
const unstorable = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256 && !unstorable.test(v)
const isStrArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr)

function actDepth (act: unknown, limit: number): number {
  let n = 0
  for (let a = act; a !== undefined; a = (a as Act).act) {
    if (typeof a !== 'object' || a === null || !isStr((a as Act).sub) || ++n > limit) return -1
  }
  return n
}

/**
 * Checks what the signature covers but the signature alone does not make true: the shape
 * of every claim, and that `lineage` and `act` agree with each other (a child of depth d has
 * d ancestors and d actors). Guards against a token from a buggy or older issuer.
 */
function checkShape (p: Record<string, unknown>, maxDepth: number): AccessClaims {
  const bad = (what: string): never => { throw new InvalidToken(`token claims are malformed: ${what}`, 'ERR_TOKEN_MALFORMED') }
  if (!isStr(p.sub)) bad('sub')
  if (!isStr(p.jti)) bad('jti')
  if (!isStr(p.client_id)) bad('client_id')
  if (typeof p.scope !== 'string') bad('scope')
  // RFC 7519 §2 lets a NumericDate be any number; Lineage issues whole seconds, which its
  // ledger and revocations store as such (a fraction, or a value past any date, failed there).
  if (!Number.isSafeInteger(p.exp) || !Number.isSafeInteger(p.iat)) bad('exp/iat')
  const aud = typeof p.aud === 'string' ? [p.aud] : p.aud
  if (!isStrArray(aud) || aud.length === 0) bad('aud')
  const l = p.lineage as AccessClaims['lineage'] | undefined
  if (typeof l !== 'object' || l === null) bad('lineage')
  const lin = l as AccessClaims['lineage']
  if (!Number.isInteger(lin.depth) || lin.depth < 0 || lin.depth > maxDepth) bad('lineage.depth')
  if (!isStrArray(lin.chain) || lin.chain.length !== lin.depth) bad('lineage.chain')
  if (!isStrArray(lin.principals) || lin.principals.length === 0 || lin.principals.length > maxPrincipals || lin.principals[lin.principals.length - 1] !== p.sub) bad('lineage.principals')
  if (!Number.isSafeInteger(lin.rooted_at)) bad('lineage.rooted_at')
  if (lin.actor_tokens !== undefined && (!isStrArray(lin.actor_tokens) || lin.actor_tokens.length === 0 || lin.actor_tokens.length > maxActorTokens)) bad('lineage.actor_tokens')
  if (actDepth(p.act, maxDepth) !== lin.depth) bad('act does not match lineage depth')
  // RFC 8693 §4.4: an object naming who may act; an exchange compares its `sub` with the actor's.
  const mayAct = p.may_act as { sub?: unknown } | null | undefined
  if (mayAct !== undefined && (typeof mayAct !== 'object' || mayAct === null || !isStr(mayAct.sub))) bad('may_act')
  return { ...(p as unknown as AccessClaims), aud: aud as string[] }
}

/** `checkShape` of a verified payload, or undefined when it has not the shape. */
function genuineShape (payload: Record<string, unknown>, maxDepth: number): AccessClaims | undefined {
  try {
    return checkShape(payload, maxDepth)
  } catch {
    return undefined
  }
}

/**
 * Verifies a Lineage access token: size, `typ: at+jwt`, pinned algorithm, signature by a
 * known `kid`, `iss`, `exp`/`nbf` with a small tolerance, and the claims' shape. Liveness of
 * the chain is a separate check (`LiveStatus.check`).
 * @throws InvalidToken saying why.
 */
export async function verifyAccessToken (token: string, opts: { keys: KeyLookup, issuer: string, clock: Clock, maxDepth: number }): Promise<AccessClaims> {
  if (token.length > maxTokenBytes) throw new InvalidToken(`token longer than ${maxTokenBytes} bytes`, 'ERR_TOKEN_MALFORMED')
  try {
    const { payload } = await jwtVerify(token, async (header: JWTHeaderParameters) => {
      if (!acceptedAlgs.includes(header.alg)) throw new InvalidToken('signing algorithm not allowed', 'ERR_TOKEN_SIGNATURE')
      if (typeof header.kid !== 'string') throw new InvalidToken('token has no kid', 'ERR_TOKEN_SIGNATURE')
      const key = await opts.keys(header.kid)
      if (key === undefined) throw new InvalidToken(`unknown signing key ${header.kid.slice(0, 64)}`, 'ERR_TOKEN_SIGNATURE')
      return key
    }, {
      issuer: opts.issuer,
      algorithms: acceptedAlgs,
      typ: 'at+jwt',
      clockTolerance: clockToleranceSeconds,
      currentDate: new Date(opts.clock.now()),
      requiredClaims: ['exp', 'iat', 'jti', 'sub']
    })
    return checkShape(payload as Record<string, unknown>, opts.maxDepth)
  } catch (err) {
    throw describe(err, opts.maxDepth)
  }
}
