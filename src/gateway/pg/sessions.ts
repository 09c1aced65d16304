import type { Clock } from '../../clock.js'
import { cutOffKeys, type AccessClaims } from '../../lineage/claims.js'
import type { CutOffEvent, LiveStatus } from '../../lineage/live-status.js'

/** What the index needs of a live PostgreSQL session. */
export interface LiveSession {
  claims: AccessClaims
  /** Ends the session with FATAL `code` (default 28000) and this reason. */
  kill: (reason: string, code?: string) => void
  /** Whether a statement is running upstream (absent: never). */
  busy?: () => boolean
}

/**
 * Open PostgreSQL sessions by every ancestor `jti` and every principal of their chain
 * (DESIGN.md "Live connections"). A cut-off applied to the view ends the matching sessions at
 * once; a reload of the view re-checks every session; each session also ends when the earliest
 * end of its chain arrives (token expiry, a contract end date), which no change announces: at
 * its timer, or at the next sweep by the wall clock (`sweepMs`), whichever comes first, as a
 * timer runs late when the host slept or its clock was stepped. While the view cannot be
 * proven fresh (`stale`), a cut-off may have been committed, and acknowledged, that it has not
 * seen: each sweep ends the sessions with a statement running (FATAL 57P03); an idle session
 * stays, as its next statement is refused.
 */
export class SessionIndex<S extends LiveSession = LiveSession> {
  private readonly byKey = new Map<string, Set<S>>()
  private readonly all = new Map<S, { keys: string[], deadline: number, timer?: NodeJS.Timeout }>()
  private readonly off: Array<() => void>

  constructor (private readonly view: LiveStatus, private readonly clock: Clock, sweepMs = 1000, private readonly stale: () => string | undefined = () => undefined) {
    const sweep = setInterval(() => { this.sweep() }, sweepMs)
    sweep.unref()
    this.off = [view.onCutOff((e) => this.cutOff(e)), view.onReset(() => this.recheck([...this.all.keys()])), () => clearInterval(sweep)]
  }

  get size (): number { return this.all.size }

  /** Indexes `s` until the returned function is called. */
  add (s: S): () => void {
    const c = s.claims
    const keys = cutOffKeys(c)
    for (const k of keys) {
      let set = this.byKey.get(k)
      if (set === undefined) this.byKey.set(k, set = new Set())
      set.add(s)
    }
    const entry = { keys, deadline: Infinity, timer: undefined }
    this.all.set(s, entry)
    this.arm(s, entry)
    return () => this.remove(s)
  }

  /** Ends `s` when the earliest end of its chain arrives, if that is sooner than what it waits for now. */
  private arm (s: S, entry: { deadline: number, timer?: NodeJS.Timeout }): void {
    const deadline = this.view.endOf(s.claims.exp, s.claims.lineage).at
    if (deadline >= entry.deadline) return
    entry.deadline = deadline
    clearTimeout(entry.timer)
    entry.timer = setTimeout(() => { this.due(s, entry) }, Math.max(0, deadline - this.clock.now()))
    entry.timer.unref()
  }

  /** The end `s` waited for has come: it ends, unless its chain's end was put off meanwhile (a later contract end date). */
  private due (s: S, entry: { deadline: number, timer?: NodeJS.Timeout }): void {
    const ended = this.view.endedAt(s.claims.jti, s.claims.exp, s.claims.lineage, this.clock.now())
    if (ended !== undefined) return s.kill(`chain cut off: ${ended}`)
    entry.deadline = Infinity
    this.arm(s, entry)
  }

  /** Stops watching, and hands back the sessions still open, for the caller to end. */
  close (): S[] {
    for (const f of this.off) f()
    for (const entry of this.all.values()) clearTimeout(entry.timer)
    return [...this.all.keys()]
  }

  /**
   * Ends the sessions whose end has come by the wall clock, whatever their timers say, and,
   * while the view is stale, those with a statement running.
   */
  private sweep (): void {
    const now = this.clock.now()
    const stale = this.stale()
    for (const [s, entry] of [...this.all]) {
      if (stale !== undefined && s.busy?.() === true) s.kill(stale, '57P03')
      else if (entry.deadline <= now) this.due(s, entry)
    }
  }

  private remove (s: S): void {
    const entry = this.all.get(s)
    if (entry === undefined) return
    clearTimeout(entry.timer)
    for (const k of entry.keys) {
      const set = this.byKey.get(k)
      set?.delete(s)
      if (set?.size === 0) this.byKey.delete(k)
    }
    this.all.delete(s)
  }

  private cutOff (e: CutOffEvent): void {
    const set = this.byKey.get(e.kind === 'token' ? e.jti : `p:${e.id}`)
    if (set !== undefined) this.recheck([...set])
  }

  /** Ends each of `sessions` whose chain the view no longer finds live; the others wait for an end date brought forward. */
  private recheck (sessions: S[]): void {
    const now = this.clock.now()
    for (const s of sessions) {
      const cut = this.view.check(s.claims.jti, s.claims.lineage, now)
      if (cut !== undefined) s.kill(`chain cut off: ${cut.message}`)
      else {
        const entry = this.all.get(s)
        if (entry !== undefined) this.arm(s, entry)
      }
    }
  }
}
