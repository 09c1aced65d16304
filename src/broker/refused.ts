import type { AuditLineage } from '../audit/record.js'
import type { LineageError } from '../errors.js'
import type { BrokerContext } from './context.js'

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
    detail: { error: err.error, reason: err.message, ...detail }
  })
}
