import { Redis } from 'ioredis'
import type { Logger } from '../log.js'

/**
 * The fast half of change propagation (DESIGN.md): it only says "there is something after N".
 * Correctness comes from reading the change log in order, so a lost message costs latency,
 * never a missed cut-off.
 */
export interface ChangeFeed {
  /** Tells every process that the change log has reached `seq`. Never throws. */
  announce: (seq: number) => void
  /**
   * Calls `onChange` for every announcement, and `onConnected` whenever the subscription is
   * (re-)established: what was announced while disconnected is then read from the log.
   */
  subscribe: (onChange: () => void, onConnected: () => void) => Promise<void>
  close: () => Promise<void>
}

const channel = 'lineage:changes'

/** A feed over Redis pub/sub: one connection publishes, a second one subscribes. */
export function createRedisFeed (url: string, log: Logger): ChangeFeed {
  const options = { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: (n: number) => Math.min(50 * n, 1000) }
  const pub = new Redis(url, options)
  const sub = new Redis(url, { ...options, enableOfflineQueue: true })
  let down = false
  for (const c of [pub, sub]) {
    c.on('error', (err: Error) => {
      if (!down) log.warn({ err: err.message }, 'redis feed unavailable; the change log poll carries changes meanwhile')
      down = true
    })
  }
  return {
    announce: (seq) => {
      pub.publish(channel, String(seq)).catch(() => {})
    },
    subscribe: async (onChange, onConnected) => {
      sub.on('message', (ch: string) => { if (ch === channel) onChange() })
      sub.on('ready', () => {
        if (down) log.info('redis feed back')
        down = false
        onConnected()
      })
      await Promise.all([pub.connect().catch(() => {}), sub.connect().catch(() => {})])
      await sub.subscribe(channel).catch(() => {})
    },
    close: async () => {
      pub.disconnect()
      sub.disconnect()
    }
  }
}
