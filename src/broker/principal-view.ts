import { NotFound } from '../errors.js'
import type { PrincipalRow } from '../lineage/changes.js'
import type { PrincipalStatus } from '../lineage/live-status.js'
import { intersect } from '../lineage/scopes.js'
import type { Queryable } from '../storage/db.js'

/** A principal's row as read whole from `principals`. */
export interface FullRow extends PrincipalRow {
  email: string | null
  status_source: string | null
  grants: string[]
  created_at: Date
  updated_at: Date
}

/** A principal as the admin API shows it. */
export interface PrincipalView {
  id: string
  kind: 'human' | 'service'
  email: string | null
  sponsor: string | null
  /** Effective status: a human past `ends_at` counts as offboarded. */
  status: PrincipalStatus
  ends_at: string | null
  /** A service whose sponsor was offboarded since it was given: unusable until it is given a sponsor again. */
  sponsor_lapsed: boolean
  grants: string[]
  /** Grants intersected with the sponsor's, and empty while the sponsor is not active. */
  usable_scopes: string[]
  created_at: string
  updated_at: string
}

/** The columns of `FullRow`, for SELECT and RETURNING. */
export const columns = 'id, kind, email, sponsor, status, ends_at, cut_off_at, sponsor_lapsed, status_source, grants, created_at, updated_at'

/** A principal's status now: a human past `ends_at` counts as offboarded. */
export function effectiveStatus (p: PrincipalRow, nowMs: number): PrincipalStatus {
  if (p.status === 'active' && p.ends_at !== null && p.ends_at.getTime() <= nowMs) return 'offboarded'
  return p.status
}

/** Reads principal `id`, locked until the transaction ends when `lock`. */
export async function load (q: Queryable, id: string, lock = false): Promise<FullRow | undefined> {
  const { rows } = await q.query<FullRow>(`SELECT ${columns} FROM principals WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id])
  return rows[0]
}

/** Reads principal `id`, locked until the transaction ends when `lock`. @throws NotFound */
export async function mustLoad (q: Queryable, id: string, lock = false): Promise<FullRow> {
  const p = await load(q, id, lock)
  if (p === undefined) throw new NotFound(`principal ${id} not found`)
  return p
}

/** What a principal may put in a root token now: grants ∩ the sponsor's, nothing while either is not active. */
export async function usableScopes (q: Queryable, p: FullRow, nowMs: number): Promise<string[]> {
  if (effectiveStatus(p, nowMs) !== 'active') return []
  if (p.kind === 'human') return p.grants
  if (p.sponsor_lapsed) return []
  const s = p.sponsor === null ? undefined : await load(q, p.sponsor)
  if (s === undefined || effectiveStatus(s, nowMs) !== 'active') return []
  return intersect(p.grants, s.grants)
}

/** The principal as the admin API shows it. */
export async function present (q: Queryable, p: FullRow, nowMs: number): Promise<PrincipalView> {
  return {
    id: p.id,
    kind: p.kind,
    email: p.email,
    sponsor: p.sponsor,
    status: effectiveStatus(p, nowMs),
    ends_at: p.ends_at?.toISOString() ?? null,
    sponsor_lapsed: p.sponsor_lapsed,
    grants: p.grants,
    usable_scopes: await usableScopes(q, p, nowMs),
    created_at: p.created_at.toISOString(),
    updated_at: p.updated_at.toISOString()
  }
}
