import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** The server the benchmarks create their databases on. */
export const serverUrl = process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== ''
  ? process.env.DATABASE_URL
  : 'postgres://postgres@127.0.0.1:5432/postgres'

export interface BenchDatabase {
  /** Connection URL of the new database. */
  url: string
  name: string
  /** Drops the database, closing every connection still on it. */
  drop: () => Promise<void>
}

async function onServer<T> (fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: serverUrl })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}

/** Creates an empty database with a random name on the PostgreSQL server at `DATABASE_URL`. */
export async function createBenchDatabase (prefix: string): Promise<BenchDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`
  await onServer(async (c) => await c.query(`CREATE DATABASE ${name}`))
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    name,
    drop: async () => { await onServer(async (c) => await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)) }
  }
}

/** Runs `fn` with one client on `url`, closing it afterwards. */
export async function withClient<T> (url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}
