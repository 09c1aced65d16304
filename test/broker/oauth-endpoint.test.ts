import { connect } from 'node:net'
import pino from 'pino'
import t from 'tap'
import { adminToken, seedContractor, startTestBroker } from '../helpers/broker.js'

// Every line the broker logs, as written.
const lines: string[] = []
const b = await startTestBroker({ log: pino({ level: 'info' }, { write: (line: string) => { lines.push(line) } }) })
t.teardown(b.close)
const client = await seedContractor(b)

/** Makes every statement on the clients table fail, as a database that went away would, for `fn`. */
async function clientsTableFails<T> (fn: () => Promise<T>): Promise<T> {
  const db = b.broker.ctx.db
  const query = db.query
  db.query = (async (sql: string, params?: unknown[]) => {
    if (/(FROM|INTO) clients/.test(sql)) throw new Error('connection terminated')
    return await query.call(db, sql, params)
  }) as typeof db.query
  try { return await fn() } finally { db.query = query }
}

t.test('a 500 on an OAuth endpoint logs the path, never the query string', async (t) => {
  const secret = 'lsec_leaked-in-the-query-0123456789'
  for (const path of ['/oauth/token', '/oauth/introspect', '/oauth/revoke']) {
    lines.length = 0
    const fields: Record<string, string> = path === '/oauth/token'
      ? { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret }
      : { token: 'x', client_id: client.clientId, client_secret: client.clientSecret }
    const r = await clientsTableFails(async () => await fetch(`${b.url}${path}?client_secret=${secret}&access_token=${secret}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString()
    }))
    t.equal(r.status, 500, path)
    t.same(await r.json(), { error: 'server_error', error_description: 'internal error' })
    const failed = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request failed')
    t.equal(failed.length, 1, `${path}: the failure is logged once`)
    t.equal(failed[0]?.path, path, `${path}: with its path`)
    t.notOk(lines.some((l) => l.includes('leaked') || l.includes('?')), `${path}: and nothing of the query string`)
  }
})

t.test('a 500 on the admin API logs the path, never the query string', async (t) => {
  lines.length = 0
  const r = await clientsTableFails(async () => await fetch(`${b.url}/v1/principals/ci-nightly/clients?token=leaked`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } }))
  t.equal(r.status, 500)
  const failed = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request failed')
  t.equal(failed[0]?.path, '/v1/principals/ci-nightly/clients')
  t.notOk(lines.some((l) => l.includes('leaked')))
})

t.test('a client that hangs up partway through its form is no server failure: nothing logged as one, nothing counted as server_error', async (t) => {
  const serverErrors = async (): Promise<string | undefined> => /lineage_token_refusals_total\{error="server_error"\} (\d+)/.exec(await (await fetch(`${b.url}/metrics`)).text())?.[1]
  const before = await serverErrors()
  for (const path of ['/oauth/token', '/oauth/introspect', '/oauth/revoke']) {
    lines.length = 0
    await new Promise<void>((resolve, reject) => {
      const s = connect(Number(new URL(b.url).port), '127.0.0.1', () => {
        s.write(`POST ${path} HTTP/1.1\r\nHost: broker\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=client_`)
        setTimeout(() => { s.destroy(); resolve() }, 100)
      })
      s.on('error', reject)
    })
    // The broker notices the hang-up and finishes with the request.
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.same(lines.map((l) => JSON.parse(l)).filter((l) => l.level >= 50), [], `${path}: no error logged`)
  }
  t.equal(await serverErrors(), before, 'no token request counted as a server error')
})
