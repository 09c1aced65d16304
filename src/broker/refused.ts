import type { AuditLineage } from '../audit/record.js'
import type { LineageError } from '../errors.js'
import type { BrokerContext } from './context.js'

/** The most of one request value (a scope list) a refusal keeps. */
const maxText = 1000
/** The most values of a repeated parameter (audience, resource) a refusal keeps, and of each value. */
const maxValues = 16
const maxValue = 200

const cut = (s: string, max: number): string => s.length > max ? `${s.slice(0, max)}…` : s

/**
 * What the caller asked for as a refusal records it. A caller that proved who it is, with a
 * token that may be long dead, still writes what it likes into the form: bounded, every refusal
 * costs the trail a few kilobytes, not the 256 KB a form may hold.
 */
function bounded (detail: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(detail)) {
    if (typeof v === 'string') out[k] = cut(v, maxText)
    else if (Array.isArray(v)) {
      const kept = v.slice(0, maxValues).map((x) => cut(String(x), maxValue))
      out[k] = v.length > maxValues ? [...kept, `… ${v.length - maxValues} more`] : kept
    } else out[k] = v
  }
  return out
}

/**
 * Records a token request refused to a caller that proved who it is: a genuine subject token
 * (cut off, expired, asking for more than it holds), or a client whose secret is right but whose
 * principal may not have a token now. An offboarded contractor's job still trying is worth
 * finding in the trail. A caller that proved nothing (a made-up token, a wrong secret) is not
 * recorded, so guesses cannot fill the trail.
 * @param who the lineage of the token presented, or the principals behind the client
 */
export function recordRefused (ctx: BrokerContext, who: Partial<AuditLineage> & { principals: string[] }, err: LineageError, detail: Record<string, unknown>): void {
  ctx.audit.record({
    at: ctx.clock.now(),
    kind: 'token.refused',
    decision: 'deny',
    status: err.status,
    jti: who.jti,
    root: who.root,
    principals: who.principals,
    actors: who.actors ?? [],
    detail: { error: err.error, reason: cut(err.message, maxText), ...bounded(detail) }
  })
}
