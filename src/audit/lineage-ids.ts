import type { Queryable } from '../storage/db.js'
import type { AuditEvent } from './record.js'

/** What `lineageIds` gives for a batch: the lineage id of each event, and the ids it read or added. */
export interface BatchLineages {
  ids: number[]
  /** Ids not known before this batch, to `remember` once the batch's transaction commits. */
  learned: Map<string, number>
}

export interface LineageIds {
  /** The key of the lineage `e` names (root, principals, actors), as its arrays hold it now: what `resolve` takes. */
  keyOf: (e: Pick<AuditEvent, 'root' | 'principals' | 'actors'>) => string
  /** The `audit_lineages` id of each lineage, by key, reading or adding, in `q`'s transaction, the rows not known yet. */
  resolve: (q: Queryable, keys: readonly string[]) => Promise<BatchLineages>
  /** Keeps ids a committed batch read or added. */
  remember: (learned: Map<string, number>) => void
}

interface Lineage { i: number, root: string | null, principals: string[], actors: string[] }

const none: string[] = []
const rowsOf = 'json_to_recordset($1::json) AS x(i int, root text, principals text[], actors text[])'

function same (a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * The lineages audit records name (root, principals, actors), each stored once in
 * `audit_lineages`. Records name few of them (every record of a token names the same one), so
 * ids are kept in memory, at most `max` of them; an id learned in a transaction is kept only
 * once that transaction commits, since a rolled-back row is no row. Writers add lineages only
 * while they hold `audit_head`'s lock, so two of them never add the same one.
 */
export function lineageIds (opts: { max?: number } = {}): LineageIds {
  const max = opts.max ?? 100_000
  const known = new Map<string, number>()
  // The last key worked out for an array of principals: the gateway gives every record of a
  // token the same arrays, so the key is not built again for each of them (unless an array
  // now holds other elements: a record must never name a lineage its hash does not cover).
  const keys = new WeakMap<string[], { root: string | null, actors: string[], items: string[], actorItems: string[], key: string }>()

  function keyOf (e: Pick<AuditEvent, 'root' | 'principals' | 'actors'>): string {
    const root = e.root ?? null
    const principals = e.principals ?? none
    const actors = e.actors ?? none
    const kept = keys.get(principals)
    if (kept !== undefined && kept.root === root && kept.actors === actors && same(kept.items, principals) && same(kept.actorItems, actors)) return kept.key
    const key = JSON.stringify([root, principals, actors])
    if (principals !== none) keys.set(principals, { root, actors, items: principals.slice(), actorItems: actors.slice(), key })
    return key
  }

  async function resolve (q: Queryable, keys: readonly string[]): Promise<BatchLineages> {
    const ids = new Array<number>(keys.length)
    const missing = new Map<string, Lineage & { at: number[] }>()
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]
      const id = known.get(key)
      if (id !== undefined) ids[i] = id
      else {
        const m = missing.get(key)
        if (m !== undefined) m.at.push(i)
        else {
          const [root, principals, actors] = JSON.parse(key) as [string | null, string[], string[]]
          missing.set(key, { i: missing.size, root, principals, actors, at: [i] })
        }
      }
    }
    const learned = new Map<string, number>()
    if (missing.size === 0) return { ids, learned }
    const wanted = [...missing.values()]
    const json = JSON.stringify(wanted.map(({ i, root, principals, actors }) => ({ i, root, principals, actors })))
    const { rows: found } = await q.query<{ i: number, id: string }>(`SELECT x.i, min(l.id) AS id FROM ${rowsOf}
      JOIN audit_lineages l ON (l.root = x.root OR (l.root IS NULL AND x.root IS NULL)) AND l.principals = x.principals AND l.actors = x.actors
      GROUP BY x.i`, [json])
    const byIndex = new Map(found.map((r) => [r.i, Number(r.id)]))
    const added = wanted.filter((w) => !byIndex.has(w.i))
    if (added.length > 0) {
      const { rows } = await q.query<{ i: number, id: string }>(`WITH x AS (SELECT * FROM ${rowsOf}),
        added AS (INSERT INTO audit_lineages (root, principals, actors) SELECT root, principals, actors FROM x ORDER BY i RETURNING id, root, principals, actors)
        SELECT x.i, added.id FROM x JOIN added ON added.root IS NOT DISTINCT FROM x.root AND added.principals = x.principals AND added.actors = x.actors`,
      [JSON.stringify(added.map(({ i, root, principals, actors }) => ({ i, root, principals, actors })))])
      for (const r of rows) byIndex.set(r.i, Number(r.id))
    }
    for (const [key, m] of missing) {
      const id = byIndex.get(m.i)
      if (id === undefined) throw new Error(`audit lineage ${m.i} was neither found nor added`)
      learned.set(key, id)
      for (const at of m.at) ids[at] = id
    }
    return { ids, learned }
  }

  return {
    keyOf,
    resolve,
    remember: (learned) => {
      if (known.size + learned.size > max) known.clear()
      for (const [key, id] of learned) known.set(key, id)
    }
  }
}
