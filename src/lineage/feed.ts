import { Redis } from 'ioredis'
import { before } from '../deadline.js'
import type { Logger } from '../log.js'

/** What a feed subscriber is told. */
export interface FeedHandlers {
  /** Something was committed after what this process may have read. */
  onChange: () => void
  /** The subscription is (re-)established: what was announced meanwhile is read from the log. */
  onConnected: () => void
  /** Another process's confirmation message (confirmations.ts). */
  onConfirm: (message: string) => void
}

/**
 * The fast half of change propagation (DESIGN.md): it only says "there is something after N",
 * and carries each process's confirmation of what it has applied. Correctness comes from
 * reading the change log in order, so a lost message costs latency, never a missed cut-off.
 */
export interface ChangeFeed {
  /** Tells every process that the change log has reached `seq`. Never throws. */
  announce: (seq: number) => void
  /** Sends a confirmation message to every process. Never throws. */
  confirm: (message: string) => void
  /**
   * Subscribes for the deployment `scope` (its id: deployments sharing a transport never
   * hear each other). Resolves once the first attempt is made; reconnects on its own.
   */
  subscribe: (scope: string, handlers: FeedHandlers) => Promise<void>
  close: () => Promise<void>
}

/** How long a close waits for Redis to answer QUIT. */
const quitMs = 1000
/** How long a subscription waits, at start, for Redis to answer. */
const startMs = 2000

/** A feed over Redis pub/sub: one connection publishes, a second one subscribes. */
export function createRedisFeed (url: string, log: Logger): ChangeFeed {
  const options = { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: (n: number) => Math.min(50 * n, 1000) }
  const pub = new Redis(url, options)
  const sub = new Redis(url, { ...options, enableOfflineQueue: true })
  let changes: string | undefined
  let applied: string | undefined
  let down = false
  for (const c of [pub, sub]) {
    c.on('error', (err: Error) => {
      if (!down) log.warn({ err: err.message }, 'redis feed unavailable; the change log poll carries changes meanwhile')
      down = true
    })
  }
  const publish = (channel: string | undefined, message: string): void => {
    if (channel !== undefined) pub.publish(channel, message).catch(() => {})
  }
  return {
    announce: (seq) => { publish(changes, String(seq)) },
    confirm: (message) => { publish(applied, message) },
    subscribe: async (scope, h) => {
      const channels = [`lineage:${scope}:changes`, `lineage:${scope}:applied`]
      changes = channels[0]
      applied = channels[1]
      sub.on('message', (ch: string, message: string) => {
        if (ch === changes) h.onChange()
        else if (ch === applied) h.onConfirm(message)
      })
      // ioredis subscribes again on a reconnect only to channels a subscribe went through for;
      // one that failed (Redis down at start) is made again whenever the connection is ready.
      let subscribed = false
      const subscribe = async (): Promise<void> => {
        if (!subscribed) await sub.subscribe(...channels).then(() => { subscribed = true }, () => {})
      }
      sub.on('ready', () => {
        if (down) log.info('redis feed back')
        down = false
        subscribe().finally(() => h.onConnected()).catch(() => {})
      })
      // Not waited for past `startMs`: a Redis that accepts the connection and then says nothing
      // (a hung network path) would hold the process's start for as long as it hangs, while the
      // change log carries every change meanwhile. Both go on in the background.
      const attempt = Promise.all([pub.connect().catch(() => {}), sub.connect().catch(() => {})]).then(subscribe)
      await before(attempt, performance.now() + startMs).catch(() => {})
    },
    close: async () => {
      // `quit` lets a last message (this process leaving) go out first. A Redis that stops
      // answering on a connection that stays open (a hung network path) would never answer it,
      // and the process could never stop: it gets a moment, then the connection is dropped.
      await before(pub.quit(), performance.now() + quitMs).catch(() => {})
      pub.disconnect()
      sub.disconnect()
    }
  }
}
