import type { BrokerContext } from './context.js'
import { setStatus } from './set-status.js'

/** The `inbound_events` source (and `status_source`) of an offboarding by contract end date. */
export const contractEndSource = 'ends_at'

const batch = 100

/**
 * Records the offboarding of every human whose `ends_at` has passed. Such a human counts as
 * offboarded from that instant in every process without this (CONTRACT.md §3); what this adds is
 * the offboarding itself in the tables and the audit trail (§7), as any other input makes it: the
 * status set to `offboarded` by source `ends_at`, its services' sponsorship lapsed, one
 * `principal.status` record. Each end is acted on once, however many brokers look at the same
 * time: the principal id is the event id of `inbound_events`, committed with the change.
 * @returns how many ended principals it found (at most `batch`)
 */
export async function recordContractEnds (ctx: BrokerContext): Promise<number> {
  const now = ctx.clock.now()
  const { rows } = await ctx.db.query<{ id: string, ends_at: Date }>(
    `SELECT id, ends_at FROM principals p
      WHERE ends_at <= $1 AND status = 'active' AND kind = 'human'
        AND NOT EXISTS (SELECT 1 FROM inbound_events e WHERE e.source = $2 AND e.event_id = p.id)
      ORDER BY ends_at LIMIT $3`, [new Date(now), contractEndSource, batch])
  for (const p of rows) {
    await setStatus(ctx, p.id, 'offboarded', { event: { source: contractEndSource, id: p.id }, reason: `contract ended ${p.ends_at.toISOString()}`, count: false })
  }
  return rows.length
}

/**
 * Looks for contract ends every `everyMs` (and at once) until stopped. A failed look is tried
 * again at the next (nothing depends on it but the record, which comes late), logged when the
 * failures start and when they end, not at every look.
 */
export function watchContractEnds (ctx: BrokerContext, everyMs: number): { stop: () => Promise<void> } {
  let running: Promise<void> | undefined
  let failing = false
  const look = (): void => {
    running ??= (async () => {
      // A full batch means more may be waiting.
      while (await recordContractEnds(ctx) === batch);
      if (failing) ctx.log.info('recording contract ends recovered')
      failing = false
    })()
      .catch((err) => {
        if (!failing) ctx.log.error({ err }, 'recording contract ends failed; trying again every look')
        failing = true
      })
      .finally(() => { running = undefined })
  }
  const timer = setInterval(look, everyMs)
  timer.unref()
  look()
  return {
    stop: async () => {
      clearInterval(timer)
      await running
    }
  }
}
