import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Db } from './db.js'
import { openPostgres } from './postgres.js'
import { openPglite } from './pglite.js'
import { migrate } from './migrate.js'
import { lockDataDir } from './data-dir-lock.js'

/**
 * Opens the configured database (PostgreSQL when a URL is given, else PGlite under `dataDir`,
 * held by this process until it is closed) and migrates it.
 * @throws ConfigError when another running process holds `dataDir`.
 */
export async function openDb (opts: { databaseUrl?: string, dataDir?: string, poolSize?: number }): Promise<Db> {
  let db: Db
  if (opts.databaseUrl !== undefined) {
    db = openPostgres(opts.databaseUrl, { max: opts.poolSize })
  } else if (opts.dataDir !== undefined) {
    await mkdir(opts.dataDir, { recursive: true, mode: 0o700 })
    const unlock = await lockDataDir(opts.dataDir)
    try {
      const pglite = await openPglite(join(opts.dataDir, 'pgdata'))
      db = { ...pglite, close: async () => { try { await pglite.close() } finally { await unlock() } } }
    } catch (err) {
      await unlock()
      throw err
    }
  } else {
    db = await openPglite(undefined)
  }
  try {
    await migrate(db)
  } catch (err) {
    await db.close()
    throw err
  }
  return db
}
