import type { Db } from '../storage/db.js'
import type { Logger } from '../log.js'
import { changesChannel } from './changes.js'
import type { ChangeFeed } from './feed.js'

/** NOTIFY channel for confirmations (confirmations.ts). */
const appliedChannel = 'lineage_applied'

/**
 * The feed when only PostgreSQL is configured: LISTEN on the change channel (`appendChange`
 * sends the NOTIFY in the committing transaction, so `announce` has nothing to do) and on the
 * confirmation channel. NOTIFY is scoped to the database, so `scope` needs no channel name.
 */
export function createPgFeed (db: Db & { listen: NonNullable<Db['listen']> }, log: Logger): ChangeFeed {
  let unlisten: (() => Promise<void>) | undefined
  let closed = false
  let retry: NodeJS.Timeout | undefined

  return {
    announce: () => {},
    confirm: (message) => {
      if (!closed) db.query('SELECT pg_notify($1, $2)', [appliedChannel, message]).catch(() => {})
    },
    subscribe: async (_scope, h) => {
      // One retry pending at a time, whatever reports the loss.
      const again = (ms: number): void => {
        if (closed || retry !== undefined) return
        retry = setTimeout(() => { retry = undefined; connect().catch(() => {}) }, ms)
        retry.unref()
      }
      async function connect (): Promise<void> {
        try {
          unlisten = await db.listen([changesChannel, appliedChannel], (channel, payload) => {
            if (channel === changesChannel) h.onChange()
            else h.onConfirm(payload)
          }, (err) => {
            log.warn({ err: err.message }, 'change feed lost, resubscribing')
            unlisten = undefined
            again(500)
          })
          if (closed) await unlisten()
          else h.onConnected()
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'change feed unavailable, retrying')
          again(1000)
        }
      }
      await connect()
    },
    close: async () => {
      closed = true
      if (retry !== undefined) clearTimeout(retry)
      await unlisten?.()
    }
  }
}
