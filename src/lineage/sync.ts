import type { Clock } from '../clock.js'
import type { Db } from '../storage/db.js'
import type { Logger } from '../log.js'
import { changesChannel, readChanges, readSnapshot } from './changes.js'
import type { LiveStatus } from './live-status.js'
import type { ChangeFeed } from './feed.js'

export interface ViewSync {
  /** Loads the snapshot, subscribes to the feed and starts the safety poll. */
  start: () => Promise<void>
  /** Applies every change committed so far; concurrent calls share one read. */
  catchUp: () => Promise<void>
  /** After this process committed a change: apply it here, then tell the other processes. */
  afterWrite: () => Promise<void>
  /** Epoch ms of the last moment this view was proven current. */
  freshAt: () => number
  stop: () => Promise<void>
}

const batch = 1000

/**
 * Keeps a `LiveStatus` current from the change log (DESIGN.md "The source of truth and the
 * feed"): correctness comes from the log read in order, speed from NOTIFY (PostgreSQL) or
 * from the writer calling `catchUp` itself (every write in this process does).
 */
export function createViewSync (opts: { db: Db, view: LiveStatus, clock: Clock, log: Logger, pollMs?: number, feed?: ChangeFeed }): ViewSync {
  const { db, view, clock, log } = opts
  let fresh = 0
  let inFlight: Promise<void> | undefined
  let again = false
  let timer: NodeJS.Timeout | undefined
  let unlisten: (() => Promise<void>) | undefined
  let stopped = false

  async function reload (): Promise<void> {
    const started = clock.now()
    view.reset(await readSnapshot(db, Math.floor(started / 1000)))
    fresh = started
  }

  async function readAll (): Promise<void> {
    const started = clock.now()
    for (;;) {
      const rows = await readChanges(db, view.seq, batch)
      if (rows.length > 0 && rows[0].seq !== view.seq + 1) {
        // The log cannot prove nothing was missed: start over from the tables.
        log.warn({ have: view.seq, next: rows[0].seq }, 'change log gap, reloading live status')
        await reload()
        return
      }
      for (const c of rows) view.apply(c)
      if (rows.length < batch) break
    }
    fresh = started
  }

  function catchUp (): Promise<void> {
    if (inFlight !== undefined) {
      again = true
      return inFlight
    }
    inFlight = (async () => {
      try {
        do {
          again = false
          await readAll()
        } while (again)
      } finally {
        inFlight = undefined
      }
    })()
    return inFlight
  }

  async function subscribe (): Promise<void> {
    if (opts.feed !== undefined) {
      const again = (): void => { catchUp().catch((err) => log.warn({ err: (err as Error).message }, 'catch-up failed')) }
      await opts.feed.subscribe(again, again)
      return
    }
    if (db.listen === undefined || stopped) return
    try {
      unlisten = await db.listen(changesChannel, () => { catchUp().catch((err) => log.error({ err }, 'catch-up failed')) }, (err) => {
        log.warn({ err: err.message }, 'change feed lost, resubscribing')
        unlisten = undefined
        setTimeout(() => { subscribe().catch(() => {}) }, 500).unref()
      })
      await catchUp()
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'change feed unavailable, retrying')
      setTimeout(() => { subscribe().catch(() => {}) }, 1000).unref()
    }
  }

  return {
    start: async () => {
      await reload()
      await subscribe()
      timer = setInterval(() => {
        view.forgetExpired(Math.floor(clock.now() / 1000))
        catchUp().catch((err) => log.warn({ err: (err as Error).message }, 'live-status poll failed'))
      }, opts.pollMs ?? 1000)
      timer.unref()
    },
    catchUp,
    afterWrite: async () => {
      await catchUp()
      opts.feed?.announce(view.seq)
    },
    freshAt: () => fresh,
    stop: async () => {
      stopped = true
      if (timer !== undefined) clearInterval(timer)
      await unlisten?.()
      await opts.feed?.close()
      await inFlight?.catch(() => {})
    }
  }
}
