import { randomUUID } from 'node:crypto'

/**
 * Which processes have applied the change log how far, so a process that commits a cut-off
 * can hold its acknowledgement until every live process enforces it.
 *
 * Every process reports the sequence number it has applied (after each catch-up, and as a
 * heartbeat). A wait ends when every live process has reported the number, or after
 * `boundMs`: by then a process that did not confirm has either applied the change (any log
 * read it started after the commit includes it) or cannot prove a view that fresh, so it
 * refuses everything (DESIGN.md "Freshness"). Either way nothing is accepted after the
 * acknowledgement. A process silent for `silentMs` (the bound plus a heartbeat or two) is
 * taken as gone: its last read started before it fell silent, so it is past the bound too.
 */
export interface Confirmations {
  readonly id: string
  /** Handles a message another process sent with `send`. Malformed ones are ignored. */
  receive: (message: string) => void
  /** Tells every other process that this one has applied the log up to `seq`. */
  report: (seq: number) => void
  /** Resolves once every live process has reported `seq` or beyond, or after the bound; lists the ones that did not. */
  waitFor: (seq: number) => Promise<string[]>
  /** Live processes other than this one, with the sequence number each last reported. */
  peers: () => Map<string, number>
  /** Tells the other processes this one is leaving, and releases every wait. */
  leave: () => void
}

interface Peer { seq: number, heardAt: number }
interface Waiter { seq: number, done: (missing: string[]) => void }

const idPattern = /^[0-9a-f-]{36}$/

/**
 * @param opts.send publishes a message to every process of the deployment (the change feed).
 * @param opts.boundMs `LINEAGE_MAX_STALENESS_MS`: the longest a wait lasts.
 * @param opts.silentMs how long a process that sends nothing stays live; more than `boundMs` plus a heartbeat.
 */
export function createConfirmations (opts: { send: (message: string) => void, boundMs: number, silentMs: number, now?: () => number }): Confirmations {
  const now = opts.now ?? (() => performance.now())
  const id = randomUUID()
  const peers = new Map<string, Peer>()
  const waiters = new Set<Waiter>()
  let sweeper: NodeJS.Timeout | undefined

  function lagging (seq: number): string[] {
    const t = now()
    const out: string[] = []
    for (const [peer, p] of peers) {
      if (t - p.heardAt > opts.silentMs) peers.delete(peer)
      else if (p.seq < seq) out.push(peer)
    }
    return out
  }

  function settle (): void {
    for (const w of waiters) if (lagging(w.seq).length === 0) w.done([])
    if (waiters.size === 0 && sweeper !== undefined) {
      clearInterval(sweeper)
      sweeper = undefined
    }
  }

  return {
    id,
    receive: (message) => {
      const [peer, value] = message.split(' ')
      if (peer === id || peer === undefined || !idPattern.test(peer)) return
      if (value === 'bye') peers.delete(peer)
      else {
        const seq = Number(value)
        if (!Number.isSafeInteger(seq) || seq < 0) return
        const p = peers.get(peer)
        peers.set(peer, { seq: Math.max(seq, p?.seq ?? 0), heardAt: now() })
      }
      if (waiters.size > 0) settle()
    },
    report: (seq) => { opts.send(`${id} ${seq}`) },
    waitFor: async (seq) => {
      if (lagging(seq).length === 0) return []
      return await new Promise<string[]>((resolve) => {
        const w: Waiter = {
          seq,
          done: (missing) => {
            clearTimeout(timer)
            waiters.delete(w)
            resolve(missing)
          }
        }
        const timer = setTimeout(() => { w.done(lagging(seq)) }, opts.boundMs)
        waiters.add(w)
        // A process that falls silent mid-wait stops counting once it has been silent for `silentMs`.
        sweeper ??= setInterval(settle, 250)
      })
    },
    peers: () => {
      lagging(0)
      return new Map([...peers].map(([peer, p]) => [peer, p.seq]))
    },
    leave: () => {
      opts.send(`${id} bye`)
      for (const w of waiters) w.done(lagging(w.seq))
      settle()
    }
  }
}
