import { createHmac, timingSafeEqual } from 'node:crypto'
import { InvalidInput, LineageError, NotFound } from '../errors.js'
import type { BrokerContext } from '../broker/context.js'
import { resolvePrincipal } from '../broker/resolve-principal.js'
import { setStatus } from '../broker/set-status.js'
import type { PrincipalStatus } from '../lineage/live-status.js'

/**
 * 401 for an unsigned, wrongly signed or stale webhook, with the challenge RFC 9110 §15.5.2
 * requires of every 401: the scheme names the header the sender must sign with.
 */
export class BadSignature extends LineageError {
  constructor (description: string) { super('ERR_BAD_SIGNATURE', 'invalid_signature', 401, description, { 'WWW-Authenticate': 'Lineage-Signature realm="lineage-hr"' }) }
}

/** How old a signed delivery may be (Stripe-style convention). */
export const toleranceSeconds = 300

const types = new Map<string, PrincipalStatus>([
  ['principal.offboarded', 'offboarded'],
  ['principal.suspended', 'suspended'],
  ['principal.reinstated', 'active']
])

/**
 * Checks `Lineage-Signature: t=<unix>,v1=<hex>` over `"<t>.<raw body>"` (HMAC-SHA256): the
 * timestamp within the tolerance, then a constant-time compare after a length check. Several
 * `v1` values are allowed (secret rotation); one must match.
 * @throws BadSignature
 */
export function verifySignature (secret: string, header: string | undefined, raw: Buffer, nowSeconds: number): void {
  if (header === undefined) throw new BadSignature('missing Lineage-Signature')
  let t: number | undefined
  const sigs: string[] = []
  for (const part of header.split(',')) {
    const [k, v] = part.trim().split('=', 2)
    if (k === 't' && /^\d{1,12}$/.test(v ?? '')) t = Number(v)
    else if (k === 'v1' && /^[0-9a-f]{64}$/i.test(v ?? '')) sigs.push(v.toLowerCase())
  }
  if (t === undefined || sigs.length === 0) throw new BadSignature('malformed Lineage-Signature')
  if (Math.abs(nowSeconds - t) > toleranceSeconds) throw new BadSignature('signature timestamp outside the 300 s tolerance')
  const expected = createHmac('sha256', secret).update(`${t}.`).update(raw).digest()
  const ok = sigs.some((s) => {
    const given = Buffer.from(s, 'hex')
    return given.length === expected.length && timingSafeEqual(given, expected)
  })
  if (!ok) throw new BadSignature('signature does not match')
}

/** A JSON string as it is, a whole number as its decimal digits; anything else is left for the caller to refuse. */
function asText (v: unknown): unknown {
  return typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : v
}

/**
 * `POST /hooks/hr`: a signed HR event. The event id and the principal's new status are
 * committed together before the answer; a repeated id changes nothing.
 * @throws BadSignature (401), InvalidInput (400), NotFound (404)
 */
export async function handleHrEvent (ctx: BrokerContext, secret: string, signature: string | undefined, raw: Buffer): Promise<{ id: string, principal: string, status: PrincipalStatus, duplicate: boolean }> {
  verifySignature(secret, signature, raw, Math.floor(ctx.clock.now() / 1000))
  let body: unknown
  try { body = JSON.parse(raw.toString('utf8')) } catch { throw new InvalidInput('the body is not JSON') }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidInput('the body must be a JSON object')
  const sent = body as { id?: unknown, type?: unknown, principal?: unknown }
  // HR systems number their events and their people: a whole number stands for its digits.
  const e = { id: asText(sent.id), type: sent.type, principal: asText(sent.principal) }
  if (typeof e.id !== 'string' || e.id.length === 0 || e.id.length > 200) throw new InvalidInput('id must be a string of 1-200 characters or a whole number')
  const status = typeof e.type === 'string' ? types.get(e.type) : undefined
  if (status === undefined) throw new InvalidInput(`type must be one of ${[...types.keys()].join(', ')}`)
  if (typeof e.principal !== 'string' || e.principal.length === 0 || e.principal.length > 320) throw new InvalidInput('principal must be a principal id or email (a string, or a whole number)')
  const id = await resolvePrincipal(ctx.db, e.principal)
  if (id === undefined) throw new NotFound(`no principal ${e.principal.slice(0, 100)}`)
  const out = await setStatus(ctx, id, status, { reason: `HR event ${e.type as string}`, event: { source: 'hr', id: e.id }, count: false })
  return { id: e.id, principal: id, status: out.principal.status, duplicate: out.duplicate }
}
