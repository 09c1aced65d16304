import { appendChange, principalChange } from '../lineage/changes.js'
import type { BrokerContext } from './context.js'
import { cutOffInstant } from './cut-off-instant.js'
import { columns, mustLoad, type FullRow } from './principal-view.js'
import type { StatusOptions } from './set-status.js'

/**
 * Cuts off every live chain that names principal `id` without changing its status (CAEP
 * session-revoked, credential-change): one row, like an offboarding, but new tokens may follow.
 * @returns whether the event was new (a repeated event id changes nothing).
 * @throws NotFound
 */
export async function cutOffChains (ctx: BrokerContext, id: string, opts: Pick<StatusOptions, 'reason' | 'event'> = {}): Promise<{ duplicate: boolean }> {
  const now = ctx.clock.now()
  const duplicate = await ctx.db.tx(async (q) => {
    await mustLoad(q, id, true)
    if (opts.event !== undefined) {
      const seen = await q.query('INSERT INTO inbound_events (source, event_id, principal) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [opts.event.source, opts.event.id, id])
      if (seen.rowCount === 0) return true
    }
    const { rows } = await q.query<FullRow>(`UPDATE principals SET cut_off_at = $2, updated_at = now() WHERE id = $1 RETURNING ${columns}`, [id, await cutOffInstant(q, id, now)])
    await appendChange(q, principalChange(rows[0]))
    return false
  })
  if (!duplicate) {
    // Recorded before anything that could fail after the commit.
    ctx.log.info({ principal: id, reason: opts.reason, source: opts.event?.source }, 'live chains cut off')
    ctx.audit.record({ at: now, kind: 'principal.status', principals: [id], detail: { status: 'cut_off', reason: opts.reason ?? null, ...(opts.event !== undefined ? { source: opts.event.source, event: opts.event.id } : {}) } })
  }
  await ctx.sync.afterWrite()
  return { duplicate }
}
