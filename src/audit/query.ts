import { InvalidInput } from '../errors.js'
import type { Queryable } from '../storage/db.js'
import { parseRfc3339 } from '../clock.js'

export interface AuditFilter {
  principal?: string
  root?: string
  jti?: string
  target?: string
  since?: string
  /** Records numbered below this `seq`: the next page, given the last `seq` of the one before. */
  before?: string
  limit?: string
}

/**
 * Audit records matching every given filter, newest first (`GET /v1/audit`). Records are read
 * with their lineage (`audit_lineages`), as the view `audit` shows them.
 * @throws InvalidInput for a malformed `since`, `before` or `limit`.
 */
export async function queryAudit (q: Queryable, f: AuditFilter): Promise<{ events: unknown[] }> {
  const params: unknown[] = []
  const param = (v: unknown): string => { params.push(v); return `$${params.length}` }
  // Filters on the lineage (principal, root) and on the record itself (jti, target, since).
  const byLineage: string[] = []
  const byRecord: string[] = []
  if (f.principal !== undefined) byLineage.push(`l.principals @> ARRAY[${param(f.principal)}]::text[]`)
  if (f.root !== undefined) byLineage.push(`l.root = ${param(f.root)}`)
  if (f.jti !== undefined) byRecord.push(`r.jti = ${param(f.jti)}`)
  if (f.target !== undefined) byRecord.push(`r.target = ${param(f.target)}`)
  if (f.since !== undefined) {
    const since = parseRfc3339(f.since)
    if (since === undefined) throw new InvalidInput('since must be an RFC 3339 date-time')
    // Date keeps whole milliseconds, dropping finer digits: records are stamped in whole
    // milliseconds, so an instant past one starts at the next.
    const finer = /\.\d{3}(\d+)/.exec(f.since)?.[1]
    byRecord.push(`r.at >= ${param(finer !== undefined && /[1-9]/.test(finer) ? new Date(since.getTime() + 1) : since)}`)
  }
  if (f.before !== undefined) {
    if (!/^[1-9]\d{0,14}$/.test(f.before)) throw new InvalidInput('before must be a record number (seq) from 1')
    byRecord.push(`r.seq < ${param(Number(f.before))}`)
  }
  const limit = f.limit === undefined ? 100 : /^\d{1,4}$/.test(f.limit) ? Number(f.limit) : NaN
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new InvalidInput('limit must be an integer from 1 to 1000')
  const n = param(limit)
  const recordWhere = byRecord.length > 0 ? `AND ${byRecord.join(' AND ')}` : ''
  // Filtered by lineage: the newest records of each matching lineage, then the newest of those,
  // so that a root or principal with a long history is not read whole to list its last records.
  const from = byLineage.length > 0
    ? `audit_lineages l CROSS JOIN LATERAL (SELECT * FROM audit_records r WHERE r.lineage = l.id ${recordWhere} ORDER BY r.seq DESC LIMIT ${n}) r
      WHERE ${byLineage.join(' AND ')}`
    : `audit_records r JOIN audit_lineages l ON l.id = r.lineage WHERE true ${recordWhere}`
  const { rows } = await q.query<Record<string, unknown> & { at: Date | number }>(
    `SELECT r.seq, r.at, r.kind, r.decision, r.status, r.target, r.method, r.path, r.jti, l.root, l.principals, l.actors, r.detail, r.hash
      FROM ${from} ORDER BY r.seq DESC LIMIT ${n}`, params)
  // A time no writer stores (infinity, which the driver reads as a number) is listed as PostgreSQL spells it; verify names the record.
  return { events: rows.map((r) => ({ ...r, at: r.at instanceof Date ? r.at.toISOString() : r.at === -Infinity ? '-infinity' : 'infinity' })) }
}
