import type { Db, Queryable } from '../storage/db.js'
import { chainHash, genesisHash, type AuditEvent } from './record.js'

export interface VerifyResult {
  ok: boolean
  records: number
  /** The first problem found, naming the record. */
  problem?: string
  /** When intact: the last record's number and hash (0 and the genesis hash for an empty trail), to keep elsewhere as an anchor. */
  head?: Anchor
  /** Events the writers dropped (buffer full), as the chain's `audit.dropped` records count them; only when there are any. */
  dropped?: { events: number, gaps: number }
}

/**
 * A record's number and hash, kept outside the database by an earlier verification. Whoever
 * can write both tables can recompute every hash after an edit; the anchored record then
 * no longer has the hash kept.
 */
export interface Anchor { seq: number, hash: string }

/** `SEQ:HASH` as an anchor. @throws TypeError when it is not one. */
export function parseAnchor (text: string): Anchor {
  const m = /^([1-9]\d{0,15}):([0-9a-f]{64})$/.exec(text)
  if (m === null) throw new TypeError('an anchor is SEQ:HASH, a record number and its 64-character hex hash, as a verification printed them')
  return { seq: Number(m[1]), hash: m[2] }
}

// Every stored record with its lineage's fields, as the view `audit` shows them, but a record
// whose lineage is missing too (the view's join leaves it out, where it would go unseen): with
// NULL arrays, it reads as altered.
const stored = `(SELECT r.seq, r.at, r.kind, r.decision, r.status, r.target, r.method, r.path, r.jti, l.root, l.principals, l.actors, r.detail, r.hash
  FROM audit_records r LEFT JOIN audit_lineages l ON l.id = r.lineage) AS audit`

const altered = (seq: number): string => `record ${seq} does not match its hash: it was altered, or one before it was removed`

interface Row { seq: number, at: Date, kind: AuditEvent['kind'], decision: AuditEvent['decision'] | null, status: number | null, target: string | null, method: string | null, path: string | null, jti: string | null, root: string | null, principals: string[], actors: string[], detail_text: string, hash: string, as_written: boolean }

// A JSON string (skipped whole, digits and all) or a number, in jsonb's text.
const jsonToken = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?/g

/** `JSON.stringify(x)` in plain notation, as PostgreSQL prints a number that text gave to jsonb (`1e-7`: `0.0000001`). */
function plain (x: number): string {
  const s = JSON.stringify(x)
  const e = s.indexOf('e')
  if (e < 0) return s
  const sign = s.startsWith('-') ? '-' : ''
  const mantissa = s.slice(sign.length, e)
  const digits = mantissa.replace('.', '')
  const point = (mantissa.includes('.') ? mantissa.indexOf('.') : mantissa.length) + Number(s.slice(e + 1))
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`
  if (point >= digits.length) return sign + digits + '0'.repeat(point - digits.length)
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`
}

/**
 * Whether every number in a detail's jsonb text is as a writer stores it. jsonb keeps the digits it
 * was given, more than a double holds (`5.0000000000000001`, `1e400`), while the driver reads the
 * nearest double, which is what the hash covers: such an edit would not reach the hash.
 */
function numbersAsWritten (text: string): boolean {
  if (!/\d/.test(text)) return true
  for (const [token] of text.matchAll(jsonToken)) {
    if (!token.startsWith('"') && plain(Number(token)) !== token) return false
  }
  return true
}

/**
 * Re-computes the whole hash chain: an edited record changes its hash, a removed one leaves a
 * gap in `seq` or breaks the next hash, a truncated tail disagrees with `audit_head`, and a
 * record before the first or past the head was not added by a writer. Everything is read in
 * one snapshot, so records other processes add meanwhile are the next verification's.
 *
 * Embedded, a transaction holds PGlite's one connection, so one over a long trail would stall
 * every other query of the process (the change-log poll that keeps the gateway's view fresh
 * included) for as long as it runs: there the pages are read outside one, the event loop
 * turning between them, and only the last page and the head together in one, so that what
 * writers add meanwhile is checked too.
 */
export async function verifyAudit (db: Db, opts: { anchor?: Anchor, pageSize?: number } = {}): Promise<VerifyResult> {
  const pageSize = opts.pageSize ?? 5000
  if (db.kind === 'pglite') {
    const walk = newWalk()
    const early = await verifyPages(db, walk, pageSize, opts.anchor)
    if (early !== undefined) return early
    return await db.tx(async (q) => await verifyPages(q, walk, pageSize, opts.anchor) ?? await verifyHead(q, walk, opts.anchor))
  }
  return await db.tx(async (q) => {
    await q.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ')
    const walk = newWalk()
    return await verifyPages(q, walk, pageSize, opts.anchor) ?? await verifyHead(q, walk, opts.anchor)
  })
}

/** How far a verification has come: the next record expected and the hash it must follow. */
interface Walk { prev: string, expected: number, count: number, dropped: { events: number, gaps: number } }

function newWalk (): Walk {
  return { prev: genesisHash, expected: 1, count: 0, dropped: { events: 0, gaps: 0 } }
}

/** Checks the records from `walk.expected` to the last one there is; a result only when one is broken. */
async function verifyPages (q: Queryable, walk: Walk, pageSize: number, anchor: Anchor | undefined): Promise<VerifyResult | undefined> {
  // The chain starts at 1: the pages below would never read a record numbered before it.
  const { rows: [first] } = await q.query<{ seq: number | null }>('SELECT min(seq) AS seq FROM audit_records')
  if (first.seq !== null && first.seq < 1) return { ok: false, records: 0, problem: `record ${first.seq} lies before the first: it was not written by Lineage` }
  const { dropped } = walk
  for (;;) {
    // Writers store finite times in whole milliseconds, arrays that start at 1 and a detail that is
    // an object: a fraction of a millisecond or other bounds would not reach the hash (the driver
    // drops both), an infinite time reads back as no Date at all, and a NULL array or a jsonb
    // `null` detail would be hashed as the empty value it stands in for, so they are checked here.
    // The detail is read as jsonb's text and parsed here, as the driver would parse it, so that its
    // numbers can be checked as written too.
    const { rows } = await q.query<Row>(`SELECT seq, at, kind, decision, status, target, method, path, jti, root, principals, actors, detail::text AS detail_text, hash,
      isfinite(at) AND at = date_trunc('milliseconds', at)
      AND principals IS NOT NULL AND coalesce(array_lower(principals, 1), 1) = 1 AND actors IS NOT NULL AND coalesce(array_lower(actors, 1), 1) = 1
      AND jsonb_typeof(detail) = 'object' AS as_written FROM ${stored} WHERE seq >= $1 ORDER BY seq LIMIT $2`, [walk.expected, pageSize])
    for (const r of rows) {
      if (r.seq !== walk.expected) return { ok: false, records: walk.count, problem: `record ${walk.expected} is missing (next is ${r.seq})` }
      if (!r.as_written || !numbersAsWritten(r.detail_text)) return { ok: false, records: walk.count, problem: altered(r.seq) }
      const detail = JSON.parse(r.detail_text) as Record<string, unknown>
      const e: AuditEvent = {
        at: r.at.getTime(), kind: r.kind, decision: r.decision ?? undefined, status: r.status ?? undefined, target: r.target ?? undefined, method: r.method ?? undefined,
        path: r.path ?? undefined, jti: r.jti ?? undefined, root: r.root ?? undefined, principals: r.principals, actors: r.actors, detail
      }
      if (chainHash(r.seq, e, walk.prev) !== r.hash) return { ok: false, records: walk.count, problem: altered(r.seq) }
      if (r.seq === anchor?.seq && r.hash !== anchor.hash) return { ok: false, records: walk.count, problem: `record ${r.seq} no longer has the anchored hash: the chain was rewritten up to it` }
      if (r.kind === 'audit.dropped') {
        dropped.gaps++
        dropped.events += typeof detail.dropped === 'number' ? detail.dropped : 0
      }
      walk.prev = r.hash
      walk.expected++
      walk.count++
    }
    if (rows.length < pageSize) return undefined
    // PGlite answers without a turn of the event loop: without this, nothing else of the process
    // (a request, a timer) would run until the last page.
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** Checks the head against the records walked: the chain must end where and as it says. */
async function verifyHead (q: Queryable, walk: Walk, anchor: Anchor | undefined): Promise<VerifyResult> {
  const { prev, count, dropped } = walk
  const { rows: [head] } = await q.query<{ seq: number, hash: string } | undefined>('SELECT seq, hash FROM audit_head WHERE id = 1')
  if (head === undefined) return { ok: false, records: count, problem: `the chain ends at record ${count} and its head is missing: records may have been removed from the end` }
  if (count > head.seq) return { ok: false, records: count, problem: `records ${head.seq + 1} to ${count} lie past the head: they were not written by Lineage` }
  if (head.seq !== count) return { ok: false, records: count, problem: `the chain ends at record ${count} but the head says ${head.seq}: records were removed from the end` }
  if (head.hash !== prev) return { ok: false, records: count, problem: `the head gives record ${count}, the last, another hash: the head was altered, or the records up to it were rewritten` }
  if (anchor !== undefined && anchor.seq > count) return { ok: false, records: count, problem: `the chain ends at record ${count}, before the anchored record ${anchor.seq}: records were removed from the end` }
  return { ok: true, records: count, head: { seq: count, hash: prev }, ...(dropped.gaps > 0 ? { dropped } : {}) }
}
