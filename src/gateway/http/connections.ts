import type { Socket } from 'node:net'
import type { Clock } from '../../clock.js'
import { cutOffKeys, type AccessClaims } from '../../lineage/claims.js'
import type { CutOffEvent, LiveStatus } from '../../lineage/live-status.js'

/** What the index holds for one connection: the chains it answers for and their keys. */
interface Entry { keys: string[], chains: AccessClaims[], deadline: number, busy: number, timer?: NodeJS.Timeout }

/**
 * Open client connections by every ancestor `jti` and every principal of the chains they
 * carried (DESIGN.md "Live connections"). A cut-off applied to the view re-checks the matching
 * connections and closes those whose chain is dead: streaming responses end, keep-alive
 * connections go. A reload of the view re-checks every connection. A connection is also
 * closed when the earliest end of its chain arrives (token expiry, a contract end date), since
 * no change-log row announces those: at its timer, or at the next sweep by the wall clock
 * (`sweepMs`), whichever comes first, as a timer runs late when the host slept or its clock
 * was stepped. While the view cannot be proven fresh (`stale`), a cut-off may have been
 * committed, and acknowledged, that it has not seen: each sweep ends the responses still
 * under way; an idle connection stays, as its next request is refused.
 */
export class ConnectionIndex {
  private readonly byKey = new Map<string, Set<Socket>>()
  private readonly entries = new Map<Socket, Entry>()
  private readonly off: Array<() => void>

  constructor (private readonly view: LiveStatus, private readonly clock: Clock, sweepMs = 1000, private readonly stale: () => string | undefined = () => undefined) {
    const sweep = setInterval(() => { this.sweep() }, sweepMs)
    sweep.unref()
    this.off = [view.onCutOff((e) => this.cutOff(e)), view.onReset(() => this.recheck([...this.entries.keys()])), () => clearInterval(sweep)]
  }

  /**
   * Indexes `socket` under the chain of `claims` until `release` of what it returns (when the
   * response is done), and afterwards until another chain's request uses the connection: an
   * idle keep-alive connection answers for the last chain it carried, not for every chain it
   * ever carried. `socket` must not have closed yet.
   */
  track (socket: Socket, claims: AccessClaims): Entry {
    let entry = this.entries.get(socket)
    if (entry === undefined) {
      entry = { keys: [], chains: [], deadline: Infinity, busy: 0 }
      this.entries.set(socket, entry)
      socket.once('close', () => this.forget(socket))
    }
    entry.busy++
    // Keep-alive: the same token again on the same connection is indexed already.
    if (entry.chains[entry.chains.length - 1]?.jti === claims.jti) return entry
    // Nothing else in flight on it: the connection now belongs to this chain alone.
    if (entry.busy === 1 && entry.keys.length > 0) this.unindex(socket, entry)
    entry.chains.push(claims)
    const keys = cutOffKeys(claims)
    for (const k of keys) {
      if (entry.keys.includes(k)) continue
      entry.keys.push(k)
      let set = this.byKey.get(k)
      if (set === undefined) this.byKey.set(k, set = new Set())
      set.add(socket)
    }
    this.arm(socket, entry, claims)
    return entry
  }

  /** Closes `socket` when the earliest end of the chain of `claims` arrives, if that is sooner than what it waits for now. */
  private arm (socket: Socket, entry: Entry, claims: AccessClaims): void {
    const deadline = this.view.endOf(claims.exp, claims.lineage).at
    if (deadline >= entry.deadline) return
    entry.deadline = deadline
    if (entry.timer !== undefined) clearTimeout(entry.timer)
    entry.timer = setTimeout(() => { this.due(socket, entry) }, Math.max(0, deadline - this.clock.now()))
    entry.timer.unref()
  }

  /** The end `socket` waited for has come: it closes, unless its chains' ends were put off meanwhile (a later contract end date). */
  private due (socket: Socket, entry: Entry): void {
    const now = this.clock.now()
    if (entry.chains.some((c) => this.view.endedAt(c.jti, c.exp, c.lineage, now) !== undefined)) {
      socket.destroy()
      return
    }
    entry.deadline = Infinity
    for (const c of entry.chains) this.arm(socket, entry, c)
  }

  /** The response a `track` was for is done. */
  release (entry: Entry): void {
    entry.busy--
  }

  /** How many connections are indexed under `key` (a jti, or `p:<principal>`). */
  count (key: string): number {
    return this.byKey.get(key)?.size ?? 0
  }

  close (): void {
    for (const f of this.off) f()
  }

  /**
   * Closes the connections whose chain's end has come by the wall clock, whatever their timers
   * say, and, while the view is stale, those with a response under way.
   */
  private sweep (): void {
    const now = this.clock.now()
    const stale = this.stale() !== undefined
    for (const [socket, entry] of [...this.entries]) {
      if (stale && entry.busy > 0) socket.destroy()
      else if (entry.deadline <= now) this.due(socket, entry)
    }
  }

  private cutOff (e: CutOffEvent): void {
    const set = this.byKey.get(e.kind === 'token' ? e.jti : `p:${e.id}`)
    if (set !== undefined) this.recheck([...set])
  }

  /** Closes each of `sockets` that carries a chain the view no longer finds live; the others wait for an end date brought forward. */
  private recheck (sockets: Socket[]): void {
    const now = this.clock.now()
    for (const socket of sockets) {
      const entry = this.entries.get(socket)
      if (entry === undefined) continue
      if (entry.chains.some((c) => this.view.check(c.jti, c.lineage, now) !== undefined)) socket.destroy()
      else for (const c of entry.chains) this.arm(socket, entry, c)
    }
  }

  private forget (socket: Socket): void {
    const entry = this.entries.get(socket)
    if (entry === undefined) return
    this.unindex(socket, entry)
    this.entries.delete(socket)
  }

  private unindex (socket: Socket, entry: Entry): void {
    if (entry.timer !== undefined) clearTimeout(entry.timer)
    entry.timer = undefined
    entry.deadline = Infinity
    for (const k of entry.keys) {
      const set = this.byKey.get(k)
      set?.delete(socket)
      if (set?.size === 0) this.byKey.delete(k)
    }
    entry.keys = []
    entry.chains = []
  }
}
