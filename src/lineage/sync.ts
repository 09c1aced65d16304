import type { Clock } from '../clock.js'
import { before } from '../deadline.js'
import type { Db } from '../storage/db.js'
import type { Logger } from '../log.js'
import { readChanges, readSnapshot } from './changes.js'
import type { LiveStatus } from './live-status.js'
import { oldestAcceptedExp } from './verify.js'
import type { ChangeFeed } from './feed.js'
import { createPgFeed } from './pg-feed.js'
import { createConfirmations, type Confirmations } from './confirmations.js'
import { clockStepMs } from './view-staleness.js'

export interface ViewSync {
  /** Loads the snapshot, subscribes to the feed and starts the safety poll. */
  start: () => Promise<void>
  /** Applies every change committed so far; concurrent calls share one read. */
  catchUp: () => Promise<void>
  /**
   * After this process committed a change: applies it here, tells the other processes, and
   * resolves once every live one confirms it applied it (or after `LINEAGE_MAX_STALENESS_MS`,
   * past which one that did not refuses everything), so an acknowledgement sent afterwards holds.
   */
  afterWrite: () => Promise<void>
  /** Epoch ms of the last moment this view was proven current. */
  freshAt: () => number
  /** The other live processes and the sequence number each has confirmed. */
  peers: () => Map<string, number>
  stop: () => Promise<void>
}

const batch = 1000
const heartbeatMs = 1000
/** How long a stop waits for a read of the change log under way, and then for the feed to close. */
const stopWaitMs = 2000

/**
 * Keeps a `LiveStatus` current from the change log (DESIGN.md "The source of truth and the
 * feed"): correctness comes from the log read in order, speed from the feed (Redis pub/sub
 * when given, else PostgreSQL NOTIFY; none in the embedded case, where this process is alone).
 *
 * @param opts.maxStalenessMs how long a write waits for other processes to confirm it; the poll runs at a quarter of it when that is under a second.
 */
export function createViewSync (opts: { db: Db, view: LiveStatus, clock: Clock, log: Logger, maxStalenessMs: number, pollMs?: number, feed?: ChangeFeed }): ViewSync {
  const { db, view, clock, log } = opts
  // With no change to read, the poll alone proves the view current: it runs well inside the
  // staleness limit, or a healthy process would find its view past a limit under a second
  // between two polls (and for a slow read or a late timer under any limit) and refuse.
  const pollMs = opts.pollMs ?? Math.max(10, Math.min(1000, Math.floor(opts.maxStalenessMs / 4)))
  const feed = opts.feed ?? (db.listen === undefined ? undefined : createPgFeed({ ...db, listen: db.listen }, log))
  const confirmations: Confirmations | undefined = feed === undefined
    ? undefined
    : createConfirmations({ send: (m) => { feed.confirm(m) }, boundMs: opts.maxStalenessMs, silentMs: opts.maxStalenessMs + 2 * heartbeatMs })
  let fresh = 0
  // The latest clock reading by which revocations were left out or forgotten as expired.
  let forgotBy = 0
  let reported = -1
  let inFlight: Promise<void> | undefined
  let again = false
  const timers: NodeJS.Timeout[] = []

  function report (): void {
    reported = view.seq
    confirmations?.report(view.seq)
  }

  async function reload (): Promise<void> {
    const started = clock.now()
    view.reset(await readSnapshot(db, oldestAcceptedExp(started)))
    fresh = started
    forgotBy = started
  }

  async function readAll (): Promise<void> {
    const started = clock.now()
    if (started < forgotBy - clockStepMs) {
      // The clock went back: revocations forgotten as expired by the later reading are of tokens
      // unexpired by this one, and the log holds them only once. The tables hold them all.
      log.warn({ back_ms: forgotBy - started }, 'clock went back, reloading live status')
      await reload()
      if (view.seq !== reported) report()
      return
    }
    for (;;) {
      const rows = await readChanges(db, view.seq, batch)
      if (rows.length > 0 && rows[0].seq !== view.seq + 1) {
        // The log cannot prove nothing was missed: start over from the tables.
        log.warn({ have: view.seq, next: rows[0].seq }, 'change log gap, reloading live status')
        await reload()
        break
      }
      let unreadable = false
      for (const c of rows) {
        try {
          view.apply(c)
        } catch (err) {
          // A row this process cannot apply: the tables still hold the truth, so start over from them.
          log.error({ seq: c.seq, kind: c.kind, err: (err as Error).message }, 'unreadable change-log row, reloading live status')
          unreadable = true
          break
        }
      }
      if (unreadable) {
        await reload()
        break
      }
      if (rows.length < batch) {
        fresh = started
        break
      }
    }
    if (view.seq !== reported) report()
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

  // A database that stops answering fails every poll: logged when that starts and when it ends, not at each poll.
  let catchUpFailing = false
  const catchUpLogged = (): void => {
    catchUp().then(() => {
      if (catchUpFailing) log.info({ seq: view.seq }, 'catch-up recovered')
      catchUpFailing = false
    }, (err) => {
      if (!catchUpFailing) log.warn({ err: (err as Error).message }, 'catch-up failed; retrying at every poll')
      catchUpFailing = true
    })
  }

  return {
    start: async () => {
      const { rows } = await db.query<{ value: string }>("SELECT value FROM settings WHERE key = 'deployment_id'")
      await reload()
      await feed?.subscribe(rows[0].value, { onChange: catchUpLogged, onConnected: catchUpLogged, onConfirm: (m) => confirmations?.receive(m) })
      await catchUp()
      timers.push(setInterval(() => {
        const now = clock.now()
        forgotBy = Math.max(forgotBy, now)
        view.forgetExpired(oldestAcceptedExp(now))
        catchUpLogged()
      }, pollMs))
      // Tells the others this process is alive, so a silent one can be told from a slow one.
      if (confirmations !== undefined) timers.push(setInterval(report, heartbeatMs))
      for (const t of timers) t.unref()
    },
    catchUp,
    afterWrite: async () => {
      await catchUp()
      const seq = view.seq
      feed?.announce(seq)
      const missing = await confirmations?.waitFor(seq) ?? []
      if (missing.length > 0) {
        log.warn({ seq, unconfirmed: missing }, 'processes did not confirm a change in time; past LINEAGE_MAX_STALENESS_MS they refuse everything until they catch up')
      }
    },
    freshAt: () => fresh,
    peers: () => confirmations?.peers() ?? new Map(),
    stop: async () => {
      for (const t of timers) clearInterval(t)
      confirmations?.leave()
      // A read the database never answers (a hung network path) is not waited for past a few
      // seconds, nor is the feed's close: ending its connection waits for the server's end of it,
      // which a hung path never brings (PostgreSQL's LISTEN connection, say).
      await before(inFlight ?? Promise.resolve(), performance.now() + stopWaitMs).catch(() => {})
      await before(feed?.close() ?? Promise.resolve(), performance.now() + stopWaitMs).catch(() => {})
    }
  }
}
