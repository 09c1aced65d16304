import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError } from '../errors.js'
import type { Db } from './db.js'
import { openPostgres } from './postgres.js'
import { openPglite } from './pglite.js'
import { migrate } from './migrate.js'
import { lockDataDir } from './data-dir-lock.js'

/**
 * A data directory that cannot hold the embedded database (a file, not writable, its files
 * damaged): one line naming the variable, since PGlite's own error names neither the
 * directory nor the cause ("PGlite failed to initialize properly").
 */
function unusable (dir: string, err: unknown): ConfigError {
  if (err instanceof ConfigError) return err
  return new ConfigError('LINEAGE_DATA_DIR', `cannot open the embedded database in ${dir} (${(err as Error).message}): it must be a directory this user may read and write, holding a database Lineage left intact`)
}

/**
 * Opens the configured database (PostgreSQL when a URL is given, else PGlite under `dataDir`,
 * held by this process until it is closed) and migrates it.
 * @throws ConfigError naming LINEAGE_DATA_DIR when `dataDir` cannot be used or another running process holds it.
 */
export async function openDb (opts: { databaseUrl?: string, dataDir?: string, poolSize?: number }): Promise<Db> {
  let db: Db
  if (opts.databaseUrl !== undefined) {
    db = openPostgres(opts.databaseUrl, { max: opts.poolSize })
  } else if (opts.dataDir !== undefined) {
    const dir = opts.dataDir
    const unlock = await mkdir(dir, { recursive: true, mode: 0o700 }).then(async () => await lockDataDir(dir)).catch((err) => { throw unusable(dir, err) })
    try {
      const pglite = await openPglite(join(dir, 'pgdata'))
      db = { ...pglite, close: async () => { try { await pglite.close() } finally { await unlock() } } }
    } catch (err) {
      await unlock()
      throw unusable(dir, err)
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
