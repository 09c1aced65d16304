import type { AuditEvent } from '../audit/record.js'
import type { BrokerContext } from './context.js'

/** What the admin API changed, besides statuses and revocations (recorded where they are made). */
export type AdminAction =
  | 'principal.created' | 'principal.grants' | 'client.created'
  | 'target.created' | 'target.replaced' | 'target.deleted'
  | 'transmitter.created' | 'transmitter.deleted' | 'keys.rotated'

/**
 * Records a change made through the admin API, after it committed: who may do what, to which
 * upstream, under which policy, is as much a part of an incident's story as what was done with it.
 * `detail` holds what the API shows of the thing changed, never a secret (a target's header
 * values, an upstream's password, a client secret, a transmitter's authorization are not in the
 * views it is made from).
 */
export function recordAdminChange (ctx: BrokerContext, action: AdminAction, about: Pick<AuditEvent, 'principals' | 'target'>, detail: Record<string, unknown> = {}): void {
  ctx.audit.record({ at: ctx.clock.now(), kind: 'admin.change', ...about, detail: { action, by: 'admin', ...detail } })
}
