import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { LockKeys, type Db } from './db.js'

const defaultDir = fileURLToPath(new URL('../../migrations/', import.meta.url))

/**
 * Applies the plain SQL files of `dir` (named `NNN_name.sql`) in order, each once, each in
 * its own transaction, recorded in `schema_migrations`. A session advisory lock makes
 * processes that start together take turns; the one that comes second finds the work done.
 * @throws Error when an applied migration's file has changed since it ran.
 */
export async function migrate (db: Db, dir = defaultDir): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_[\w-]+\.sql$/.test(f)).sort()
  return await db.withLock(LockKeys.migrate, async (q) => {
    await q.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`)
    const done = new Map((await q.query<{ version: string, checksum: string }>('SELECT version, checksum FROM schema_migrations')).rows
      .map((r) => [r.version, r.checksum]))
    const applied: string[] = []
    for (const file of files) {
      const sql = await readFile(`${dir}/${file}`, 'utf8')
      const checksum = createHash('sha256').update(sql).digest('hex')
      const version = file.replace(/\.sql$/, '')
      const seen = done.get(version)
      if (seen !== undefined) {
        if (seen !== checksum) throw new Error(`migration ${file} was changed after it was applied`)
        continue
      }
      await db.tx(async (t) => {
        for (const statement of splitStatements(sql)) await t.query(statement)
        await t.query('INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)', [version, checksum])
      })
      applied.push(version)
    }
    return applied
  })
}

/** Splits a migration into statements at `;` line ends (migrations hold no functions with inner `;`). */
function splitStatements (sql: string): string[] {
  return sql.split(/;\s*$/m).map((s) => s.replace(/^\s*--.*$/gm, '').trim()).filter((s) => s.length > 0)
}
