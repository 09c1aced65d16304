import { PGlite } from '@electric-sql/pglite'
import { refuseNul, type Db, type Queryable } from './db.js'

/**
 * A `Db` on embedded PGlite: `dataDir` on disk, or in memory when undefined. PGlite is one
 * connection in one process, so the advisory lock only orders work inside this process.
 */
export async function openPglite (dataDir: string | undefined): Promise<Db> {
  const db = dataDir === undefined ? new PGlite() : new PGlite(dataDir)
  await db.waitReady

  const toNumber = (rows: Array<Record<string, unknown>>): Array<Record<string, unknown>> => {
    for (const row of rows) {
      for (const k in row) if (typeof row[k] === 'bigint') row[k] = Number(row[k])
    }
    return rows
  }
  const wrap = (q: Pick<PGlite, 'query'>): Queryable => ({
    query: async <T>(sql: string, params?: unknown[]) => {
      refuseNul(params)
      const r = await q.query<Record<string, unknown>>(sql, params as unknown[])
      return { rows: toNumber(r.rows) as T[], rowCount: Math.max(r.rows.length, r.affectedRows ?? 0) }
    },
    // PGlite has no client stream: COPY reads the rows from a blob it names /dev/blob.
    copyIn: async (table, columns, rows) => { await q.query(`COPY ${table} (${columns}) FROM '/dev/blob'`, [], { blob: new Blob([rows]) }) }
  })
  const self = wrap(db)
  return {
    kind: 'pglite',
    query: self.query,
    copyIn: self.copyIn,
    tx: async (fn) => db.transaction(async (tx) => fn(wrap(tx))),
    withLock: async (_key, fn) => fn(self),
    close: async () => { await db.close() }
  }
}
