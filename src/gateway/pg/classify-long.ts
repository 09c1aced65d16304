import { Worker } from 'node:worker_threads'
import { frozen, type Classification } from './classify.js'

/**
 * Statements too long for the classifier's cache (`longStatementChars`, 16 KiB) are classified
 * on a worker thread. Parsing takes time in proportion to the text, about 0.3 s for 1 MiB, and
 * the event loop is every session's: on it, one agent sending long statements would stall
 * every other session on the gateway. Shorter texts are classified where they arrive; most are
 * found in the cache.
 */
/** What the worker is asked (internal to this module and its worker). */
export interface LongJob { id: number, sql: string, fingerprint: boolean }
/** What it answers. */
export interface LongResult { id: number, c: Classification, fingerprint?: string }

/** A long statement's classification, and its fingerprint when asked for. */
export interface Classified { c: Classification, fingerprint?: string }

// The worker may hold a parse tree of a 1 MiB statement and its spare parser; more is a fault.
const heapMb = 512

let worker: Worker | undefined
const waiting = new Map<number, (r: Classified) => void>()
let nextId = 0

function start (): Worker {
  const here = import.meta.url
  // Under tsx (`npm start`, the tests) a worker does not inherit the TypeScript loader: it registers it first.
  const w = here.endsWith('.ts')
    ? new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./classify-long-worker.ts', here).href)}) })`, { eval: true, resourceLimits: { maxOldGenerationSizeMb: heapMb } })
    : new Worker(new URL('./classify-long-worker.js', here), { resourceLimits: { maxOldGenerationSizeMb: heapMb } })
  w.on('message', (r: LongResult) => {
    const done = waiting.get(r.id)
    waiting.delete(r.id)
    // An idle worker does not keep the process alive (added listeners ref it, so this comes after them).
    if (waiting.size === 0) w.unref()
    done?.({ c: frozen(r.c), fingerprint: r.fingerprint })
  })
  // A worker that fails (out of memory, say) fails closed what it held; the next job starts another.
  const stopped = (): void => {
    if (worker !== w) return
    worker = undefined
    for (const done of waiting.values()) done({ c: unavailable })
    waiting.clear()
  }
  w.on('error', stopped)
  w.on('exit', stopped)
  w.unref()
  return w
}

const unavailable: Classification = frozen({ class: 'admin', statements: [], tables: [], count: 1, reason: 'the classifier stopped' })

/**
 * Classifies `sql` on the worker thread, and fingerprints it when `fingerprint` is set. Never
 * rejects: a worker that fails answers admin ("the classifier stopped").
 */
export async function classifyLong (sql: string, fingerprint: boolean): Promise<Classified> {
  worker ??= start()
  const id = nextId++
  const answer = new Promise<Classified>((resolve) => { waiting.set(id, resolve) })
  worker.ref()
  worker.postMessage({ id, sql, fingerprint } satisfies LongJob)
  return await answer
}

/** Stops the worker (tests, a process shutting down); jobs it held answer admin. */
export async function stopLongClassifier (): Promise<void> {
  await worker?.terminate()
}
