import type { Queryable } from '../storage/db.js'
import type { Change, PrincipalState } from './live-status.js'

/** NOTIFY channel that tells other processes "there is something after N". */
export const changesChannel = 'lineage_changes'

type ChangeInput = Omit<Change, 'seq'>

/**
 * Appends a change in the caller's transaction and returns its sequence number. The row lock
 * on `change_head` makes numbers gap-free and commit in order; NOTIFY is delivered on commit.
 */
export async function appendChange (q: Queryable, change: ChangeInput): Promise<number> {
  const { rows } = await q.query<{ seq: number }>('UPDATE change_head SET seq = seq + 1 WHERE id = 1 RETURNING seq')
  const seq = rows[0].seq
  await q.query('INSERT INTO changes (seq, kind, data) VALUES ($1, $2, $3)', [seq, change.kind, JSON.stringify(change.data)])
  await q.query('SELECT pg_notify($1, $2)', [changesChannel, String(seq)])
  return seq
}

/** Changes after `seq`, in order, at most `limit`. */
export async function readChanges (q: Queryable, seq: number, limit: number): Promise<Change[]> {
  const { rows } = await q.query<{ seq: number, kind: Change['kind'], data: Change['data'] }>(
    'SELECT seq, kind, data FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2', [seq, limit])
  return rows as Change[]
}

export async function headSeq (q: Queryable): Promise<number> {
  const { rows } = await q.query<{ seq: number }>('SELECT seq FROM change_head WHERE id = 1')
  return rows[0].seq
}

export interface PrincipalRow {
  id: string
  kind: 'human' | 'service'
  status: PrincipalState['status']
  sponsor: string | null
  ends_at: Date | null
  cut_off_at: Date | null
  sponsor_lapsed: boolean
}

/** The change-log form of a principal row. */
export function principalChange (p: PrincipalRow): ChangeInput {
  return {
    kind: 'principal',
    data: { id: p.id, kind: p.kind, status: p.status, sponsor: p.sponsor, ends_at: p.ends_at?.getTime() ?? null, cut_off_at: p.cut_off_at?.getTime() ?? null, sponsor_lapsed: p.sponsor_lapsed }
  }
}

/** Reads the whole live-status snapshot; revocations of tokens with `exp` before `oldestExp` are left out. */
export async function readSnapshot (q: Queryable, oldestExp: number): Promise<{ seq: number, principals: PrincipalState[], revoked: Array<{ jti: string, exp: number }> }> {
  // Head first: anything committed after it is replayed from the log, and replay is idempotent.
  const seq = await headSeq(q)
  const principals = (await q.query<PrincipalRow>('SELECT id, kind, status, sponsor, ends_at, cut_off_at, sponsor_lapsed FROM principals')).rows
  const revoked = (await q.query<{ jti: string, exp: number }>('SELECT jti, exp FROM revocations WHERE exp >= $1', [oldestExp])).rows
  return {
    seq,
    principals: principals.map((p) => ({ id: p.id, kind: p.kind, status: p.status, sponsor: p.sponsor, endsAt: p.ends_at?.getTime() ?? null, cutOffAt: p.cut_off_at?.getTime() ?? null, sponsorLapsed: p.sponsor_lapsed })),
    revoked
  }
}
