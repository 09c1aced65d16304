import { timingSafeEqual } from 'node:crypto'
import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeJwt, errors as joseErrors, jwtVerify, type FetchImplementation, type JWTVerifyGetKey } from 'jose'
import type { BrokerContext } from '../../broker/context.js'
import { cutOffChains } from '../../broker/cut-off-chains.js'
import { resolvePrincipal } from '../../broker/resolve-principal.js'
import { setStatus } from '../../broker/set-status.js'
import { Conflict } from '../../errors.js'
import { hashSecret } from '../../secrets.js'
import { transmitterByIssuer, type Transmitter } from './transmitters.js'

/** RFC 8935 §2.3 error codes. */
export type SetErr = 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience' | 'authentication_failed' | 'access_denied' | 'temporarily_unavailable'

/** A refused push: 400 with `{"err","description"}` (RFC 8935 §2.3). */
export class SetRefused extends Error {
  constructor (readonly err: SetErr, description: string, readonly status = 400) {
    super(description)
    this.name = 'SetRefused'
  }
}

// jose errors that say the SET is wrong rather than that its keys could not be had.
const keyVerdicts = new Set(['ERR_JWKS_NO_MATCHING_KEY', 'ERR_JWKS_MULTIPLE_MATCHING_KEYS', 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'ERR_JWS_INVALID', 'ERR_JWT_INVALID', 'ERR_JOSE_ALG_NOT_ALLOWED', 'ERR_JOSE_NOT_SUPPORTED', 'ERR_JWK_INVALID', 'ERR_JWT_CLAIM_VALIDATION_FAILED'])

const risc = 'https://schemas.openid.net/secevent/risc/event-type/'
const caep = 'https://schemas.openid.net/secevent/caep/event-type/'
const verification = 'https://schemas.openid.net/secevent/ssf/event-type/verification'
// OpenID SSF 1.0: the transmitter tells the receiver its stream was enabled, paused or disabled; it names no person.
const streamUpdated = 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated'
const actions = new Map<string, 'offboard' | 'cut_off'>([
  [`${risc}account-disabled`, 'offboard'],
  [`${risc}account-purged`, 'offboard'],
  // The account stays the person's, but whoever holds the credential may hold tokens minted with it.
  [`${risc}credential-compromise`, 'cut_off'],
  [`${caep}session-revoked`, 'cut_off'],
  [`${caep}credential-change`, 'cut_off']
])
const maxSetBytes = 64 * 1024
const skewSeconds = 300
// Transmitters sign with asymmetric keys; the token's header never picks the family.
const algorithms = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']

/** Key sets by transmitter, so a remote JWKS is fetched once and refreshed on an unknown `kid`. */
const keySets = new WeakMap<object, Map<string, JWTVerifyGetKey>>()

function keysOf (ctx: BrokerContext, t: Transmitter): JWTVerifyGetKey {
  let byId = keySets.get(ctx)
  if (byId === undefined) keySets.set(ctx, byId = new Map())
  const cacheKey = `${t.id} ${t.jwks_uri ?? JSON.stringify(t.jwks)}`
  let keys = byId.get(cacheKey)
  if (keys === undefined) {
    keys = t.jwks !== null ? createLocalJWKSet(t.jwks) : createRemoteJWKSet(new URL(t.jwks_uri as string), { cooldownDuration: 5000, [customFetch]: cappedFetch })
    byId.set(cacheKey, keys)
  }
  return keys
}

const maxJwksBytes = 64 * 1024

/** fetch for a transmitter's JWKS that reads at most 64 KiB: a larger answer is refused unread (as a 413), not buffered. */
const cappedFetch: FetchImplementation = async (url, options) => {
  const res = await fetch(url, options)
  const tooLarge = (): Response => new Response(null, { status: 413 })
  if (Number(res.headers.get('content-length') ?? 0) > maxJwksBytes) { await res.body?.cancel(); return tooLarge() }
  const chunks: Uint8Array[] = []
  let total = 0
  const reader = res.body?.getReader()
  for (;;) {
    const r = reader === undefined ? { done: true as const, value: undefined } : await reader.read()
    if (r.done) break
    total += r.value.length
    if (total > maxJwksBytes) { await reader?.cancel(); return tooLarge() }
    chunks.push(r.value)
  }
  return new Response(Buffer.concat(chunks), { status: res.status, headers: res.headers })
}

type Subject = { format?: unknown, email?: unknown, iss?: unknown, sub?: unknown, id?: unknown, user?: unknown, identifiers?: unknown } | undefined

/** Most identifiers an `aliases` subject may list. */
const maxAliases = 20

/**
 * The principal a SET's subject identifier names (RFC 9493 `email`, `iss_sub`, `opaque`): an
 * email only by email; an `iss_sub` only in the transmitter's own namespace, by external id. A
 * `complex` subject (OpenID SSF 1.0: `user`, `session`, `device`, `tenant`… members, each a
 * simple identifier) names the principal by its `user` member. An `aliases` subject (RFC 9493:
 * one subject under several identifiers) names the principal its understood identifiers
 * name, all alike; others (a phone number, another namespace's `iss_sub`) are passed over.
 */
async function subjectOf (ctx: BrokerContext, subject: unknown, issuer: string): Promise<string | undefined> {
  let s = subject as Subject
  if (typeof s !== 'object' || s === null) throw new SetRefused('invalid_request', 'the event has no subject identifier (sub_id)')
  // CAEP transmitters name a session-revoked subject as {user, session, tenant}: the person is the user member.
  if (s.format === 'complex') {
    s = s.user as Subject
    if (typeof s !== 'object' || s === null || s.format === 'complex') throw new SetRefused('invalid_request', 'a complex subject must name its user (email, iss_sub or opaque)')
  }
  if (s.format !== 'aliases') return await simpleSubjectOf(ctx, s, issuer)
  const ids = s.identifiers
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > maxAliases) throw new SetRefused('invalid_request', `an aliases subject lists 1-${maxAliases} identifiers`)
  const named = new Set<string>()
  let understood = 0
  for (const a of ids as Subject[]) {
    if (typeof a !== 'object' || a === null || !['email', 'iss_sub', 'opaque'].includes(a.format as string)) continue
    if (a.format === 'iss_sub' && a.iss !== issuer) continue
    understood++
    const id = await simpleSubjectOf(ctx, a, issuer)
    if (id !== undefined) named.add(id)
  }
  if (understood === 0) throw new SetRefused('invalid_request', 'an aliases subject must list an email, iss_sub (in the transmitter\'s namespace) or opaque identifier')
  // One subject under every alias: aliases naming two principals name no one for certain.
  if (named.size > 1) throw new SetRefused('invalid_request', 'the subject\'s aliases name different principals')
  return [...named][0]
}

/** The principal an `email`, `iss_sub` or `opaque` identifier names. @throws SetRefused */
async function simpleSubjectOf (ctx: BrokerContext, s: NonNullable<Subject>, issuer: string): Promise<string | undefined> {
  const ref = s.format === 'email' ? s.email : s.format === 'iss_sub' ? s.sub : s.format === 'opaque' ? s.id : undefined
  if (typeof ref !== 'string' || ref.length === 0 || ref.length > 320) throw new SetRefused('invalid_request', 'unsupported or malformed subject identifier (email, iss_sub, opaque, aliases of them and a complex subject\'s user are understood)')
  if (s.format === 'iss_sub' && s.iss !== issuer) throw new SetRefused('invalid_request', 'an iss_sub subject must be in the transmitter\'s own namespace (iss)')
  try {
    return await resolvePrincipal(ctx.db, ref, s.format === 'email' ? 'email' : 'external')
  } catch (err) {
    if (err instanceof Conflict) throw new SetRefused('invalid_request', err.message)
    throw err
  }
}

/**
 * Receives one pushed Security Event Token (RFC 8935, RFC 8417): the transmitter by `iss`, its
 * Authorization header if configured, the signature by its keys, `typ`, `aud`, `iat`, no `sub`
 * or `exp`, exactly one event. RISC account-disabled/purged offboard the subject; RISC
 * credential-compromise and CAEP session-revoked/credential-change cut off its live chains
 * without offboarding; the SSF verification and stream-updated events are accepted and change
 * nothing (the second is logged). A repeated (`iss`, `jti`) acts once.
 * @throws SetRefused
 */
export async function receiveSet (ctx: BrokerContext, token: string, authorization: string | undefined): Promise<void> {
  if (token.length === 0 || token.length > maxSetBytes) throw new SetRefused('invalid_request', 'the body must be one compact JWS of at most 64 KiB')
  let iss: unknown
  try { iss = decodeJwt(token).iss } catch { throw new SetRefused('invalid_request', 'the body is not a JWT') }
  const t = typeof iss === 'string' ? await transmitterByIssuer(ctx.db, iss) : undefined
  if (t === undefined) throw new SetRefused('invalid_issuer', 'unknown issuer')
  if (t.authorization_sha256 !== null) {
    const given = hashSecret(authorization ?? '')
    if (!timingSafeEqual(given, t.authorization_sha256)) throw new SetRefused('authentication_failed', 'wrong or missing Authorization')
  }
  let payload: Record<string, unknown>
  const keys = keysOf(ctx, t)
  // A remote key set fetched moments ago is not fetched again for an unknown `kid` (jose's cooldown).
  const coolingDown = (keys as { coolingDown?: boolean }).coolingDown === true
  try {
    // The skew allowed `iat` holds for an `nbf` too (JWT libraries add one by default): a transmitter
    // whose clock runs ahead would otherwise have its SET refused 400, a verdict on the SET, not a retry.
    payload = (await jwtVerify(token, keys, { issuer: t.issuer, audience: t.audience, typ: 'secevent+jwt', algorithms, currentDate: new Date(ctx.clock.now()), clockTolerance: skewSeconds })).payload
  } catch (err) {
    const code = err instanceof joseErrors.JOSEError ? err.code : ''
    if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
      const claim = (err as joseErrors.JWTClaimValidationFailed).claim
      if (claim === 'aud') throw new SetRefused('invalid_audience', 'the SET is not for this receiver')
      if (claim === 'iss') throw new SetRefused('invalid_issuer', 'wrong issuer')
      throw new SetRefused('invalid_request', `claim ${claim} is invalid`)
    }
    if (code === 'ERR_JWT_EXPIRED') throw new SetRefused('invalid_request', 'exp must not be present in a SET')
    // A `kid` the transmitter rotated to since that fetch is no verdict either: 503 has it pushed again once its keys can be fetched anew.
    if (code === 'ERR_JWKS_NO_MATCHING_KEY' && coolingDown) throw new SetRefused('temporarily_unavailable', 'the SET names a key the transmitter\'s keys fetched moments ago do not hold; push again later', 503)
    // The key server failing is no verdict on the SET: a 5xx makes the transmitter push it again (RFC 8935 §2.4 keeps 400 for "do not retry").
    if (t.jwks_uri !== null && !keyVerdicts.has(code)) throw new SetRefused('temporarily_unavailable', 'the transmitter\'s keys could not be fetched; push again later', 503)
    throw new SetRefused('invalid_key', 'the signature does not verify with the transmitter\'s keys')
  }
  // RFC 8417 §2.2: a SET carries no `sub` and no `exp`; its time is `iat`.
  if ('sub' in payload || 'exp' in payload) throw new SetRefused('invalid_request', 'sub and exp must not be present in a SET')
  const now = Math.floor(ctx.clock.now() / 1000)
  if (typeof payload.iat !== 'number' || payload.iat > now + skewSeconds) throw new SetRefused('invalid_request', 'iat is missing or in the future')
  if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 256) throw new SetRefused('invalid_request', 'jti is required')
  const events = payload.events as Record<string, unknown> | undefined
  const types = typeof events === 'object' && events !== null ? Object.keys(events) : []
  if (types.length !== 1) throw new SetRefused('invalid_request', 'a SET carries exactly one event')
  const type = types[0]
  if (type === verification) return
  if (type === streamUpdated) {
    // A paused or disabled stream brings no offboarding until it is enabled again: the operator is told.
    const update = events?.[type] as { status?: unknown, reason?: unknown } | undefined
    ctx.log.warn({ issuer: t.issuer, status: String(update?.status).slice(0, 100), reason: String(update?.reason ?? '').slice(0, 500) }, 'an SSF transmitter updated its stream')
    return
  }
  const action = actions.get(type)
  if (action === undefined) throw new SetRefused('invalid_request', `event type ${type.slice(0, 200)} is not understood`)
  const event = events?.[type] as { subject?: unknown } | undefined
  const id = await subjectOf(ctx, payload.sub_id ?? event?.subject, t.issuer)
  if (id === undefined) throw new SetRefused('invalid_request', 'no principal matches the subject')
  const source = { source: `ssf:${t.issuer}`.slice(0, 500), id: payload.jti }
  const reason = `SSF ${type.slice(type.lastIndexOf('/') + 1)}`
  if (action === 'offboard') await setStatus(ctx, id, 'offboarded', { reason, event: source, count: false })
  else await cutOffChains(ctx, id, { reason, event: source })
}
