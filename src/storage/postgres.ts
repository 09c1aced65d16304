import { finished } from 'node:stream/promises'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { refuseNul, type Db, type Queryable } from './db.js'

// int8 (count(*), bigint columns) as JS numbers: every bigint Lineage stores (epoch seconds,
// sequence numbers, counts) stays far below 2^53.
const int8 = 20
const types = {
  getTypeParser: (oid: number, format?: string) =>
    oid === int8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')
}

/**
 * A `Db` on a PostgreSQL server through a `pg.Pool`. A server that accepts a connection and
 * then says nothing (a hung host, a proxy with no backend) fails it after `connectTimeoutMs`
 * (10 s), instead of holding the caller as long as the operating system would; TCP keepalive
 * finds a connection whose server vanished (a network partition) that would otherwise wait
 * for an answer forever, the LISTEN connection included.
 */
export function openPostgres (url: string, opts: { max?: number, connectTimeoutMs?: number } = {}): Db {
  const alive = { connectionString: url, keepAlive: true, keepAliveInitialDelayMillis: 10_000 }
  const connection = { ...alive, connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000 }
  // pg.Pool applies its own connectionTimeoutMillis to waiting for a free client too, which
  // would fail a caller queued behind busy clients (a burst, a long offboarding) after 10 s:
  // each new client bounds its own connection's setup instead, and the pool's wait is unbounded.
  class TimedClient extends pg.Client {
    constructor (config?: pg.ClientConfig) { super({ ...config, connectionTimeoutMillis: connection.connectionTimeoutMillis }) }
  }
  // The driver reads times only in the ISO style: a server or database set to another (SQL,
  // German, Postgres) would have every timestamptz read back as null. Set on each new
  // connection before the pool hands it out.
  const onConnect = async (c: pg.ClientBase): Promise<void> => { await c.query("SET DateStyle = 'ISO, MDY'") }
  const pool = new pg.Pool({ ...alive, max: opts.max ?? 10, types, Client: TimedClient as unknown as new () => pg.ClientBase, onConnect })
  // An idle client that loses its server must not crash the process; the next query reconnects.
  pool.on('error', () => {})

  const run: Queryable['query'] = async (sql, params) => {
    refuseNul(params)
    const r = await pool.query(sql, params as unknown[])
    return { rows: r.rows, rowCount: r.rowCount ?? 0 }
  }

  async function copyIn (c: pg.PoolClient, table: string, columns: string, rows: string): Promise<void> {
    const stream = c.query(copyFrom(`COPY ${table} (${columns}) FROM STDIN`))
    stream.end(rows)
    await finished(stream)
  }

  // A checked-out client whose server goes away fails the query in flight and also emits
  // 'error': with no listener, that would end the process.
  const ignore = (): void => {}

  async function withClient<T> (fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect()
    client.on('error', ignore)
    let broken = false
    try {
      return await fn(client)
    } catch (err) {
      broken = true
      throw err
    } finally {
      client.off('error', ignore)
      client.release(broken)
    }
  }

  const wrap = (c: pg.PoolClient): Queryable => ({
    query: async (sql, params) => {
      refuseNul(params)
      const r = await c.query(sql, params as unknown[])
      return { rows: r.rows, rowCount: r.rowCount ?? 0 }
    },
    copyIn: async (table, columns, rows) => { await copyIn(c, table, columns, rows) }
  })

  return {
    kind: 'postgres',
    query: run,
    copyIn: async (table, columns, rows) => withClient(async (c) => { await copyIn(c, table, columns, rows) }),
    tx: async (fn) => withClient(async (c) => {
      await c.query('BEGIN')
      try {
        const out = await fn(wrap(c))
        await c.query('COMMIT')
        return out
      } catch (err) {
        await c.query('ROLLBACK').catch(() => {})
        throw err
      }
    }),
    withLock: async (key, fn) => withClient(async (c) => {
      await c.query('SELECT pg_advisory_lock($1)', [key])
      try {
        return await fn(wrap(c))
      } finally {
        await c.query('SELECT pg_advisory_unlock($1)', [key])
      }
    }),
    listen: async (channels, onNotify, onError) => {
      const client = new pg.Client(connection)
      // A lost connection says so with 'error', 'end' or both: the caller hears of it once.
      let lost = false
      const fail = (err: Error): void => {
        if (lost) return
        lost = true
        client.end().catch(() => {})
        onError(err)
      }
      client.on('error', fail)
      client.on('end', () => fail(new Error('listen connection ended')))
      client.on('notification', (n) => { if (channels.includes(n.channel)) onNotify(n.channel, n.payload ?? '') })
      try {
        await client.connect()
        for (const channel of channels) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
      } catch (err) {
        // The caller hears of this failure from the rejection, not also from `onError`.
        client.removeAllListeners('end')
        client.removeAllListeners('error')
        client.on('error', () => {})
        await client.end().catch(() => {})
        throw err
      }
      return async () => {
        lost = true
        await client.end().catch(() => {})
      }
    },
    close: async () => { await pool.end() }
  }
}
