import { InvalidInput } from '../errors.js'
import type { Queryable } from '../storage/db.js'
import { parseRfc3339 } from '../clock.js'

export interface AuditFilter {
  principal?: string
  root?: string
  jti?: string
  target?: string
  since?: string
  limit?: string
}

/**
 * Audit records matching every given filter, newest first (`GET /v1/audit`).
 * @throws InvalidInput for a malformed `since` or `limit`.
 */
export async function queryAudit (q: Queryable, f: AuditFilter): Promise<{ events: unknown[] }> {
  const where: string[] = []
  const params: unknown[] = []
  const add = (sql: string, v: unknown): void => { params.push(v); where.push(sql.replace('?', `$${params.length}`)) }
  if (f.principal !== undefined) add('principals @> ARRAY[?]::text[]', f.principal)
  if (f.root !== undefined) add('root = ?', f.root)
  if (f.jti !== undefined) add('jti = ?', f.jti)
  if (f.target !== undefined) add('target = ?', f.target)
  if (f.since !== undefined) {
    const since = parseRfc3339(f.since)
    if (since === undefined) throw new InvalidInput('since must be an RFC 3339 date-time')
    // Date keeps whole milliseconds, dropping finer digits: records are stamped in whole
    // milliseconds, so an instant past one starts at the next.
    const finer = /\.\d{3}(\d+)/.exec(f.since)?.[1]
    add('at >= ?', finer !== undefined && /[1-9]/.test(finer) ? new Date(since.getTime() + 1) : since)
  }
  const limit = f.limit === undefined ? 100 : /^\d{1,4}$/.test(f.limit) ? Number(f.limit) : NaN
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new InvalidInput('limit must be an integer from 1 to 1000')
  params.push(limit)
  const { rows } = await q.query<Record<string, unknown> & { at: Date | number }>(
    `SELECT seq, at, kind, decision, status, target, method, path, jti, root, principals, actors, detail, hash FROM audit
      ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY seq DESC LIMIT $${params.length}`, params)
  // A time no writer stores (infinity, which the driver reads as a number) is listed as PostgreSQL spells it; verify names the record.
  return { events: rows.map((r) => ({ ...r, at: r.at instanceof Date ? r.at.toISOString() : r.at === -Infinity ? '-infinity' : 'infinity' })) }
}
