import { systemClock, type Clock } from '../clock.js'
import { before } from '../deadline.js'
import { Fifo } from '../fifo.js'
import type { Logger } from '../log.js'
import type { Db } from '../storage/db.js'
import { copyRow } from '../storage/copy-text.js'
import { lineageIds } from './lineage-ids.js'
import { chainHashOf, hashedFields, isoTime, storable, type AuditEvent } from './record.js'

export interface AuditLog {
  /** Queues an event; never blocks or fails the caller. */
  record: (e: AuditEvent) => void
  /** Writes everything queued; resolves when it is committed (or rejects if the database is down). */
  flush: () => Promise<void>
  /** Events waiting to be written, events dropped because the buffer was full, and whether writes fail (or hang) now. */
  backlog: () => { queued: number, dropped: number, failing: boolean }
  stop: () => Promise<void>
}

// The columns a queued event has no value for until its batch is written come first.
const columns = 'seq, lineage, hash, at, kind, decision, status, target, method, path, jti, detail'

/**
 * An event encoded for its batch: its lineage's key (`LineageIds.keyOf`) and the rest as the
 * hash and the COPY text take it, worked out before the batch's transaction takes the chain's
 * lock, so that the writer holding it only numbers, hashes and joins.
 */
interface Encoded {
  lineage: string
  /** `hashedFields`. */
  fields: string
  /** The COPY text of the columns after seq, lineage and hash, newline included. */
  row: string
}

/**
 * What a queued event holds in memory, roughly, in characters: a fixed part, and the text an
 * agent chooses (a path or an unknown target name of up to 16 KiB, a reason quoting one). The
 * lineage's arrays are not counted: the records of one token share them.
 */
function sizeOf (e: AuditEvent): number {
  let n = 512 + (e.path?.length ?? 0) + (e.target?.length ?? 0) + (e.method?.length ?? 0)
  const d = e.detail
  if (d !== undefined) for (const k in d) { const v = d[k]; n += k.length + (typeof v === 'string' ? v.length : 16) }
  return n
}

// Events encoded between turns of the event loop: a batch encoded at once held it for a
// millisecond or more, which every request waiting behind it added to its latency.
const encodeSlice = 25

/**
 * Writes audit events in batches off the request path, chained by hash under the lock of
 * `audit_head` so that every process extends one chain. While the database is unreachable,
 * events wait in a buffer bounded in events (`maxBuffer`) and in size (`maxBufferChars`, as
 * events an agent fills with 16 KiB paths would take gigabytes to reach the first bound), and
 * the write is retried; past either bound new events are
 * counted as dropped and `backlog().dropped` says so, and once there is room again an
 * `audit.dropped` record takes their place in the chain: how many, from when to when, of which
 * kinds. Readiness fails while writes fail, and while one has hung for `stallMs`.
 */
export function createAuditLog (db: Db, log: Logger, opts: { intervalMs?: number, maxBuffer?: number, maxBufferChars?: number, maxBatch?: number, lockTimeoutMs?: number, stallMs?: number, stopRetryMs?: number, clock?: Clock } = {}): AuditLog {
  const maxBuffer = opts.maxBuffer ?? 100_000
  const maxBufferChars = opts.maxBufferChars ?? 128 * 1024 * 1024
  const maxBatch = opts.maxBatch ?? 250
  const lockTimeoutMs = opts.lockTimeoutMs ?? 5000
  const stallMs = opts.stallMs ?? 10_000
  const stopRetryMs = opts.stopRetryMs ?? 5000
  const clock = opts.clock ?? systemClock
  const queue = new Fifo<AuditEvent>()
  // `sizeOf` of every event queued.
  let queuedChars = 0
  const full = (): boolean => queue.length >= maxBuffer || queuedChars >= maxBufferChars
  const enqueue = (e: AuditEvent): void => {
    queue.push(e)
    queuedChars += sizeOf(e)
  }
  let dropped = 0
  // When dropping was last logged: under sustained overload every batch written opens a gap, and a line each would flood the log.
  let warned = -Infinity
  const warnEveryMs = 10_000
  // The events dropped since the last `audit.dropped` record was queued.
  let gap: { count: number, first: number, last: number, kinds: Record<string, number> } | undefined
  let failing = false
  let writing: Promise<void> | undefined
  // When the batch being written was started. A database the network no longer reaches answers
  // nothing, not even an error: a write that takes this long counts as failing.
  let batchStarted: number | undefined
  /** When a batch was last written (`performance.now()`): a stop waits while writes go on. */
  let lastWritten = 0
  // The last record of a batch until its write is known to have succeeded. A write can fail
  // after its COMMIT took effect (the connection dropped before the answer): the retry then
  // finds that record in the chain and does not write the batch again.
  let unconfirmed: { seq: number, hash: string, count: number } | undefined
  const lineages = lineageIds()
  // Set once the stop's last write is done: nothing writes what is queued after it.
  let stopped = false

  function encoded (event: AuditEvent): Encoded {
    const at = isoTime(event.at)
    let e: AuditEvent
    let fields: string
    try {
      e = storable(event)
      fields = hashedFields(e, at)
    } catch {
      // A detail JSON cannot hold (a BigInt, a cycle): the record stands, saying so, where it would
      // otherwise fail every write of its batch, and of the queue behind it, for good.
      e = storable({ ...event, detail: { error: 'detail not representable as JSON' } })
      fields = hashedFields(e, at)
    }
    return {
      lineage: lineages.keyOf(e),
      fields,
      row: copyRow([at, e.kind, e.decision ?? null, e.status ?? null, e.target ?? null, e.method ?? null, e.path ?? null, e.jti ?? null, JSON.stringify(e.detail ?? {})])
    }
  }

  async function encodedBatch (batch: AuditEvent[]): Promise<Encoded[]> {
    const out = new Array<Encoded>(batch.length)
    for (let i = 0; i < batch.length; i++) {
      if (i > 0 && i % encodeSlice === 0) await new Promise((resolve) => setImmediate(resolve))
      out[i] = encoded(batch[i])
    }
    return out
  }

  function drop (e: AuditEvent): void {
    dropped++
    if (gap === undefined) {
      gap = { count: 0, first: e.at, last: e.at, kinds: {} }
      if (clock.now() - warned >= warnEveryMs) {
        warned = clock.now()
        log.warn({ queued: queue.length, dropped }, 'audit buffer full; events are dropped, each gap marked by an audit.dropped record')
      }
    }
    gap.count++
    gap.first = Math.min(gap.first, e.at)
    gap.last = Math.max(gap.last, e.at)
    gap.kinds[e.kind] = (gap.kinds[e.kind] ?? 0) + 1
  }

  /** Queues the record of the events dropped since the last one, where they would have been, once there is room. */
  function markGap (): void {
    if (gap === undefined || full()) return
    const { count, first, last, kinds } = gap
    enqueue({ at: clock.now(), kind: 'audit.dropped', detail: { dropped: count, first_at: isoTime(first), last_at: isoTime(last), kinds } })
    gap = undefined
  }

  /** Writes `batch`, or finds it written already; resolves to how many events left the queue. */
  async function writeBatch (batch: Encoded[]): Promise<number> {
    let learned: Map<string, number> | undefined
    const written = await db.tx(async (q) => {
      // The head's lock held elsewhere (a writer whose connection hangs, a table lock) fails the
      // write instead of stalling it unseen: the batch stays queued and readiness says so.
      await q.query(`SET LOCAL lock_timeout = ${lockTimeoutMs}`)
      const { rows } = await q.query<{ seq: number, hash: string }>('SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE')
      let { seq, hash } = rows[0]
      if (unconfirmed !== undefined) {
        const { seq: last, hash: lastHash, count } = unconfirmed
        const { rows: written } = await q.query<{ hash: string }>('SELECT hash FROM audit_records WHERE seq = $1', [last])
        if (written[0]?.hash === lastHash) return count
      }
      const found = await lineages.resolve(q, batch.map((e) => e.lineage))
      // COPY: a fraction of what an INSERT of the same rows costs the database.
      let text = ''
      for (let i = 0; i < batch.length; i++) {
        const e = batch[i]
        seq += 1
        hash = chainHashOf(seq, hash, e.fields)
        text += `${seq}\t${found.ids[i]}\t${hash}\t${e.row}`
      }
      unconfirmed = { seq, hash, count: batch.length }
      await q.copyIn('audit_records', columns, text)
      await q.query('UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1', [seq, hash])
      learned = found.learned
      return batch.length
    })
    if (learned !== undefined) lineages.remember(learned)
    return written
  }

  /**
   * Writes queued events, a batch at a time. The timer's drain stops after a batch once fewer
   * than a full batch wait, leaving them to the next tick: writing back to back would spend a
   * transaction on every few events under light load.
   */
  async function drain (all: boolean): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.first(maxBatch)
      let written: number
      batchStarted = clock.now()
      try {
        written = await writeBatch(await encodedBatch(batch))
      } catch (err) {
        if (!failing) log.error({ err: (err as Error).message, queued: queue.length }, 'audit write failed; buffering and retrying')
        failing = true
        throw err
      } finally {
        batchStarted = undefined
      }
      if (failing) log.info({ queued: queue.length }, 'audit writes recovered')
      failing = false
      unconfirmed = undefined
      for (let i = 0; i < written; i++) queuedChars -= sizeOf(queue.at(i) as AuditEvent)
      queue.drop(written)
      lastWritten = performance.now()
      markGap()
      if (!all && queue.length < maxBatch) return
    }
  }

  function flush (all: boolean): Promise<void> {
    writing ??= drain(all).finally(() => { writing = undefined })
    return writing
  }

  /** `p`, or a rejection once `stopRetryMs` have passed since the last batch was written. */
  async function whileWriting (p: Promise<void>): Promise<void> {
    let settled = false
    const watched = p.finally(() => { settled = true })
    for (;;) {
      try {
        return await before(watched, lastWritten + stopRetryMs)
      } catch (err) {
        if (settled || lastWritten + stopRetryMs <= performance.now()) throw err
      }
    }
  }

  // A write already running may be the timer's, which can leave part of the queue.
  async function flushAll (): Promise<void> {
    await flush(true)
    if (queue.length > 0) await flush(true)
  }

  const timer = setInterval(() => { flush(false).catch(() => {}) }, opts.intervalMs ?? 100)
  timer.unref()

  return {
    record: (e) => {
      if (stopped) {
        // Work that outlived the stop (a request cut off at its end, still running): lost, but not unseen.
        log.error({ kind: e.kind, jti: e.jti, target: e.target, principals: e.principals }, 'audit record made after the audit log stopped; it is lost')
        return
      }
      markGap()
      if (full()) drop(e)
      else enqueue(e)
    },
    flush: flushAll,
    backlog: () => ({ queued: queue.length, dropped, failing: failing || (batchStarted !== undefined && clock.now() - batchStarted > stallMs) }),
    stop: async () => {
      clearInterval(timer)
      // A write failing as the stop begins (the timer's, say) may be a passing fault: tried again
      // until `stopRetryMs` have passed with no batch written, then what is queued is given up as
      // lost. A write that hangs (a database the network no longer reaches) is given up the same
      // way. A long backlog written batch after batch is waited for, however long it takes.
      lastWritten = performance.now()
      for (;;) {
        try {
          await whileWriting(flushAll())
          stopped = true
          return
        } catch (err) {
          if (performance.now() - lastWritten >= stopRetryMs) {
            stopped = true
            log.error({ err: (err as Error).message, lost: queue.length }, 'audit records could not be written before stopping')
            return
          }
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
      }
    }
  }
}
