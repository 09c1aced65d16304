import { InvalidBearer, InvalidClient, InvalidRequest, InvalidToken } from '../errors.js'
import type { AccessClaims } from '../lineage/claims.js'
import type { PrincipalState } from '../lineage/live-status.js'
import { secretMatches } from '../secrets.js'
import { authenticateClient } from './clients.js'
import type { BrokerContext } from './context.js'
import { liveClaims } from './live-token.js'

/** Who is calling an OAuth endpoint that needs a caller: introspection and revocation. */
export type Caller =
  | { kind: 'admin' }
  | { kind: 'client', clientId: string, principal: string }
  | { kind: 'bearer', claims: AccessClaims }

/** Client credentials from HTTP Basic (RFC 6749 §2.3.1: form-urlencoded id and secret) or the body. */
export function clientCredentialsOf (authorization: string | undefined, form: { client_id?: string, client_secret?: string }): { id: string, secret: string } | undefined {
  if (authorization !== undefined && /^basic /i.test(authorization)) {
    if (form.client_secret !== undefined) throw new InvalidRequest('use one client authentication method, not two')
    const raw = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8')
    const colon = raw.indexOf(':')
    if (colon < 0) throw new InvalidClient('malformed Basic credentials')
    let creds
    try {
      creds = { id: decodeURIComponent(raw.slice(0, colon).replace(/\+/g, ' ')), secret: decodeURIComponent(raw.slice(colon + 1).replace(/\+/g, ' ')) }
    } catch {
      throw new InvalidClient('malformed Basic credentials')
    }
    if (form.client_id !== undefined && form.client_id !== creds.id) throw new InvalidRequest('client_id differs from the client the Basic credentials name')
    return creds
  }
  if (form.client_id !== undefined && form.client_secret !== undefined) return { id: form.client_id, secret: form.client_secret }
  return undefined
}

export function bearerOf (authorization: string | undefined): string | undefined {
  const m = authorization === undefined ? null : /^bearer\s+(\S+)\s*$/i.exec(authorization)
  return m === null ? undefined : m[1]
}

/** True when `token` is the admin token (hashes compared in constant time). */
export function isAdminToken (ctx: BrokerContext, token: string): boolean {
  return secretMatches(token, ctx.adminTokenHash)
}

/**
 * A client acts for its principal: one that is not active now (offboarded, suspended, past its
 * end date, or a service whose sponsor is not active or whose sponsorship lapsed with an
 * offboarding, CONTRACT.md §3: unusable until given a sponsor) authenticates nothing.
 * @throws InvalidClient
 */
async function mustBeActive (ctx: BrokerContext, id: string): Promise<void> {
  const live = (p: PrincipalState | undefined, now: number): boolean => p !== undefined && p.status === 'active' && (p.endsAt === null || now < p.endsAt)
  // A principal created a moment ago in another process: read the log once.
  if (ctx.view.principal(id) === undefined) await ctx.sync.catchUp()
  const p = ctx.view.principal(id)
  const now = ctx.clock.now()
  if (!live(p, now) || (p?.kind === 'service' && (p.sponsorLapsed === true || !live(p.sponsor === null ? undefined : ctx.view.principal(p.sponsor), now)))) {
    throw new InvalidClient(`the client's principal ${id} is not active`)
  }
}

/**
 * Identifies the caller: admin bearer token, client credentials, or (when `allowBearer`) a
 * live Lineage access token.
 * @throws InvalidClient for bad or missing credentials (RFC 6749 §5.2 counts "no client
 *   authentication included" as invalid_client); InvalidBearer for a bearer token not live, or
 *   (when bearer tokens are not allowed) not the admin token.
 */
export async function authenticateCaller (ctx: BrokerContext, authorization: string | undefined, form: { client_id?: string, client_secret?: string }, allowBearer: boolean): Promise<Caller> {
  const creds = clientCredentialsOf(authorization, form)
  if (creds !== undefined) {
    const c = await authenticateClient(ctx, creds.id, creds.secret)
    await mustBeActive(ctx, c.principal)
    return { kind: 'client', clientId: c.client_id, principal: c.principal }
  }
  const bearer = bearerOf(authorization)
  if (bearer !== undefined) {
    if (isAdminToken(ctx, bearer)) return { kind: 'admin' }
    // RFC 7662 §2.3: a bearer token that may not make this call is refused as RFC 6750 §3 says,
    // with a Bearer challenge: the caller chose that scheme, not Basic (RFC 6749 §5.2).
    if (!allowBearer) throw new InvalidBearer('bearer token: only the admin token is a caller here, or use client credentials')
    try {
      return { kind: 'bearer', claims: await liveClaims(ctx, bearer) }
    } catch (err) {
      if (err instanceof InvalidToken) throw new InvalidBearer(`bearer token: ${err.message}`)
      throw err
    }
  }
  throw new InvalidClient(`authenticate with client credentials or the admin token${allowBearer ? ', or a live access token' : ''}`)
}
