import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { openPglite } from '../../src/storage/pglite.js'
import { openPostgres } from '../../src/storage/postgres.js'
import { migrate } from '../../src/storage/migrate.js'
import type { Db } from '../../src/storage/db.js'

export const databaseUrl = process.env.DATABASE_URL === '' ? undefined : process.env.DATABASE_URL

/** A new, empty PostgreSQL database with a random name on the server at DATABASE_URL; dropped by `drop`. */
export async function createTestDatabase (): Promise<{ url: string, drop: () => Promise<void> }> {
  if (databaseUrl === undefined) throw new Error('DATABASE_URL is not set')
  const name = `lineage_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: databaseUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(databaseUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: databaseUrl })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    }
  }
}

export interface TestDb { db: Db, url?: string, backend: 'postgres' | 'pglite', close: () => Promise<void> }

/** A migrated database on `backend`: in-memory PGlite, or a fresh database on DATABASE_URL. */
export async function openTestDb (backend: 'postgres' | 'pglite'): Promise<TestDb> {
  if (backend === 'pglite') {
    const db = await openPglite(undefined)
    await migrate(db)
    return { db, backend, close: async () => { await db.close() } }
  }
  const fresh = await createTestDatabase()
  const db = openPostgres(fresh.url)
  await migrate(db)
  return { db, url: fresh.url, backend, close: async () => { await db.close(); await fresh.drop() } }
}

/** The backend tests run on: PostgreSQL when DATABASE_URL is set (CI), else embedded PGlite. */
export const defaultBackend: 'postgres' | 'pglite' = databaseUrl === undefined ? 'pglite' : 'postgres'

/** Every backend the storage contract suite must pass on here. */
export const backends: Array<'postgres' | 'pglite'> = databaseUrl === undefined ? ['pglite'] : ['pglite', 'postgres']
