import pg from 'pg'
import { pool } from './cluster.js'

/** How an idle session ended: when this process saw it, with what. */
export interface SessionEnd {
  /** `performance.now()` when the first 'error' or 'end' of the client arrived. */
  at: number
  /** SQLSTATE of the error, undefined when the connection just ended. */
  code: string | undefined
  message: string
}

export interface IdleSession {
  client: pg.Client
  /** Resolves on the first 'error' or 'end' the client emits. */
  ended: Promise<SessionEnd>
}

/**
 * Opens one node-postgres session per token on `host:port`, database `database`, `concurrency`
 * logins at a time, runs `SELECT 1` on each, and leaves them idle. Each session's end (a FATAL
 * sent by the server, or the connection closing) is recorded from the moment it is connected.
 * @throws Error when a login or the first query fails; the sessions opened so far are closed.
 */
export async function openIdleSessions (host: string, port: number, database: string, tokens: string[], concurrency: number): Promise<IdleSession[]> {
  const sessions: IdleSession[] = []
  try {
    await pool(tokens, concurrency, async (token) => {
      const client = new pg.Client({ host, port, user: 'agent', password: token, database, ssl: false })
      const ended = new Promise<SessionEnd>((resolve) => {
        client.once('error', (err: Error & { code?: string }) => resolve({ at: performance.now(), code: err.code, message: err.message }))
        client.once('end', () => resolve({ at: performance.now(), code: undefined, message: 'connection ended' }))
      })
      // The session's 'error' listener stays on: a second error ("terminated unexpectedly") must not throw.
      client.on('error', () => {})
      sessions.push({ client, ended })
      await client.connect()
      await client.query('SELECT 1')
    })
  } catch (err) {
    await closeSessions(sessions)
    throw err
  }
  return sessions
}

/** Waits until every session has ended or `deadline` (a `performance.now()` time) passes; undefined for a session still open. */
export async function endsOf (sessions: IdleSession[], deadline: number): Promise<Array<SessionEnd | undefined>> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - performance.now())) })
  try {
    return await Promise.all(sessions.map(async (s) => await Promise.race([s.ended, late])))
  } finally {
    clearTimeout(timer)
  }
}

/** Ends every session that is still open. */
export async function closeSessions (sessions: IdleSession[]): Promise<void> {
  await Promise.all(sessions.map(async (s) => { await s.client.end().catch(() => {}) }))
}
