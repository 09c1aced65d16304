import type { LineageClaim } from './claims.js'

export type PrincipalStatus = 'active' | 'suspended' | 'offboarded'

/** What the view knows of a principal: enough to judge any chain that names it. */
export interface PrincipalState {
  id: string
  kind: 'human' | 'service'
  status: PrincipalStatus
  sponsor: string | null
  /** Contract end, epoch ms: from then on the principal counts as offboarded. */
  endsAt: number | null
  /** Chains rooted at or before this instant (epoch ms) stay cut off even after a reinstatement. */
  cutOffAt: number | null
  /** A service whose sponsor was offboarded: unusable until an admin assigns it a sponsor. */
  sponsorLapsed?: boolean
}

/** One row of the change log, as every process applies it. */
export type Change =
  | { seq: number, kind: 'token.revoked', data: { jti: string, exp: number } }
  | { seq: number, kind: 'principal', data: { id: string, kind: 'human' | 'service', status: PrincipalStatus, sponsor: string | null, ends_at: number | null, cut_off_at: number | null, sponsor_lapsed?: boolean } }
  | { seq: number, kind: 'keys', data: Record<string, never> }
  | { seq: number, kind: 'target', data: { name: string } }

/** Why a chain is not live, worded for an operator. */
export interface CutOff {
  code: 'token_revoked' | 'ancestor_revoked' | 'principal_inactive' | 'principal_ended' | 'principal_cut_off' | 'principal_unknown' | 'sponsor_changed'
  message: string
  /** The token or principal at fault. */
  subject: string
}

export type CutOffEvent = { kind: 'token', jti: string } | { kind: 'principal', id: string }

/**
 * The live-status view (DESIGN.md): the revoked set, every principal's status and the last
 * change applied. A chain check is depth + principals hash lookups; nothing here queries.
 */
export class LiveStatus {
  private readonly revoked = new Map<string, number>()
  private readonly principals = new Map<string, PrincipalState>()
  private readonly listeners = new Set<(e: CutOffEvent) => void>()
  private readonly changeListeners = new Set<(c: Change) => void>()
  private readonly resetListeners = new Set<() => void>()
  /** Sequence number of the last change applied. */
  seq = 0

  /**
   * Why the chain `lineage` + `jti` is not live at `nowMs`, or undefined when it is:
   * no ancestor (nor the token) revoked, every principal active, before its end date, not
   * cut off since the root was issued, and every service still sponsored by the human before it.
   */
  check (jti: string, lineage: LineageClaim, nowMs: number): CutOff | undefined {
    const chain = lineage.chain
    for (let i = 0; i < chain.length; i++) {
      if (this.revoked.has(chain[i])) return { code: 'ancestor_revoked', subject: chain[i], message: `ancestor token ${chain[i]} was revoked` }
    }
    if (this.revoked.has(jti)) return { code: 'token_revoked', subject: jti, message: `token ${jti} was revoked` }
    const acted = lineage.actor_tokens
    if (acted !== undefined) {
      for (let i = 0; i < acted.length; i++) {
        if (this.revoked.has(acted[i])) return { code: 'ancestor_revoked', subject: acted[i], message: `actor token ${acted[i]} (or one it descends from) was revoked` }
      }
    }
    const names = lineage.principals
    for (let i = 0; i < names.length; i++) {
      const p = this.principals.get(names[i])
      if (p === undefined) return { code: 'principal_unknown', subject: names[i], message: `principal ${names[i]} is unknown` }
      if (p.status !== 'active') return { code: 'principal_inactive', subject: p.id, message: `principal ${p.id} is ${p.status}` }
      if (p.endsAt !== null && nowMs >= p.endsAt) return { code: 'principal_ended', subject: p.id, message: `principal ${p.id} reached its end date ${new Date(p.endsAt).toISOString()}` }
      if (p.cutOffAt !== null && lineage.rooted_at <= p.cutOffAt) return { code: 'principal_cut_off', subject: p.id, message: `principal ${p.id} was cut off at ${new Date(p.cutOffAt).toISOString()}, after this chain began` }
      if (p.kind === 'service' && p.sponsorLapsed === true) {
        return { code: 'sponsor_changed', subject: p.id, message: `service ${p.id} lost its sponsor ${p.sponsor ?? ''} to an offboarding and has not been given one since` }
      }
      if (p.kind === 'service' && (i === 0 || p.sponsor !== names[i - 1])) {
        return { code: 'sponsor_changed', subject: p.id, message: `service ${p.id} is no longer sponsored by ${i === 0 ? 'anyone in this chain' : names[i - 1]}` }
      }
    }
    return undefined
  }

  /**
   * Why a live connection of the token must end at `nowMs` (its chain is not live, or the token,
   * `exp` in epoch seconds, has expired), or undefined while it may go on.
   */
  endedAt (jti: string, exp: number, lineage: LineageClaim, nowMs: number): string | undefined {
    const cut = this.check(jti, lineage, nowMs)
    if (cut !== undefined) return cut.message
    return nowMs >= exp * 1000 ? 'the token expired' : undefined
  }

  /**
   * When a live chain ends with no change announcing it (epoch ms): its token's `exp`, or the
   * earliest end date of a principal in it if sooner; `why` says which.
   */
  endOf (exp: number, lineage: LineageClaim): { at: number, why: string } {
    let at = exp * 1000
    let why = 'the token expired'
    for (const p of lineage.principals) {
      const ends = this.principals.get(p)?.endsAt
      if (ends != null && ends < at) { at = ends; why = `principal ${p} reached its end date` }
    }
    return { at, why }
  }

  /** The state of principal `id`, if known. */
  principal (id: string): PrincipalState | undefined {
    return this.principals.get(id)
  }

  isRevoked (jti: string): boolean {
    return this.revoked.has(jti)
  }

  /** Every revoked `jti` whose token may still be unexpired. */
  revokedJtis (): string[] {
    return [...this.revoked.keys()]
  }

  /** Replaces everything with a snapshot read from the tables. */
  reset (snapshot: { seq: number, principals: PrincipalState[], revoked: Array<{ jti: string, exp: number }> }): void {
    this.principals.clear()
    this.revoked.clear()
    for (const p of snapshot.principals) this.principals.set(p.id, p)
    for (const r of snapshot.revoked) this.revoked.set(r.jti, r.exp)
    this.seq = snapshot.seq
    for (const fn of this.resetListeners) fn()
  }

  /** Applies one change; idempotent, so a change seen twice does no harm. */
  apply (change: Change): void {
    if (change.kind === 'token.revoked') {
      this.revoked.set(change.data.jti, change.data.exp)
      this.emit({ kind: 'token', jti: change.data.jti })
    } else if (change.kind === 'principal') {
      const d = change.data
      const before = this.principals.get(d.id)
      const lapsed = d.sponsor_lapsed === true
      this.principals.set(d.id, { id: d.id, kind: d.kind, status: d.status, sponsor: d.sponsor, endsAt: d.ends_at, cutOffAt: d.cut_off_at, sponsorLapsed: lapsed })
      const weaker = before !== undefined && (d.status !== 'active' || d.cut_off_at !== before.cutOffAt || d.sponsor !== before.sponsor || d.ends_at !== before.endsAt || (lapsed && before.sponsorLapsed !== true))
      if (weaker) this.emit({ kind: 'principal', id: d.id })
    }
    if (change.seq > this.seq) this.seq = change.seq
    for (const fn of this.changeListeners) fn(change)
  }

  /**
   * Forgets revocations of tokens with `exp` before `oldestExp` (epoch seconds), which no
   * verification accepts any more: no descendant can outlive its parent (DESIGN.md).
   */
  forgetExpired (oldestExp: number): number {
    let n = 0
    for (const [jti, exp] of this.revoked) {
      if (exp < oldestExp) { this.revoked.delete(jti); n++ }
    }
    return n
  }

  /** Calls `fn` for every cut-off applied (gateways close live connections with it). */
  onCutOff (fn: (e: CutOffEvent) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /** Calls `fn` for every change applied (the broker reloads its keys on `keys`). */
  onChange (fn: (c: Change) => void): () => void {
    this.changeListeners.add(fn)
    return () => this.changeListeners.delete(fn)
  }

  /** Calls `fn` after every reload from a snapshot: whatever mirrors the change log reloads too. */
  onReset (fn: () => void): () => void {
    this.resetListeners.add(fn)
    return () => this.resetListeners.delete(fn)
  }

  get size (): { principals: number, revoked: number } {
    return { principals: this.principals.size, revoked: this.revoked.size }
  }

  private emit (e: CutOffEvent): void {
    for (const fn of this.listeners) fn(e)
  }
}
