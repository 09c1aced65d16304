import t from 'tap'
import pg from 'pg'
import { adminToken, rootToken, seedContractor, startTestBroker } from '../helpers/broker.js'
import { hashSecret } from '../../src/secrets.js'
import { bodyOf } from '../helpers/http.js'

const b = await startTestBroker()
t.teardown(b.close)

t.test('the admin API refuses a missing or wrong admin token', async (t) => {
  for (const auth of [undefined, 'Bearer nope', `Basic ${adminToken}`, `Bearer ${adminToken}x`]) {
    const r = await fetch(`${b.url}/v1/principals/alice`, { headers: auth === undefined ? {} : { authorization: auth } })
    t.equal(r.status, 401, String(auth))
    t.match(await bodyOf(r), { error: 'unauthorized' })
    t.ok(r.headers.get('www-authenticate'))
  }
})

t.test('principals are created once, with checked fields', async (t) => {
  const ok = await b.admin('POST', '/v1/principals', { id: 'dana', kind: 'human', email: 'dana@example.com', grants: ['db:read', 'db:read'] })
  t.equal(ok.status, 201)
  t.match(ok.body, { id: 'dana', kind: 'human', status: 'active', sponsor: null, ends_at: null, sponsor_lapsed: false, grants: ['db:read'], usable_scopes: ['db:read'] })
  t.equal((await b.admin('POST', '/v1/principals', { id: 'dana', kind: 'human' })).status, 409)
  t.equal((await b.admin('POST', '/v1/principals', { id: 'dana2', kind: 'human', email: 'dana@example.com' })).status, 409, 'email is unique')
  t.equal((await b.admin('POST', '/v1/principals', { id: 'dana3', kind: 'human', email: 'Dana@Example.COM' })).status, 409, 'in any case')
  const ends = await b.admin('POST', '/v1/principals', { id: 'erin', kind: 'human', ends_at: '2030-01-31 17:00:00+01:00' })
  t.equal(ends.body.ends_at, '2030-01-31T16:00:00.000Z', 'an RFC 3339 date-time with an offset')
  const bad: Array<[unknown, RegExp]> = [
    [{ id: 'x', kind: 'robot' }, /kind/],
    [{ id: '', kind: 'human' }, /id/],
    [{ id: 'a b', kind: 'human' }, /id/],
    [{ id: 'svc', kind: 'service' }, /sponsor/],
    [{ id: 'svc', kind: 'service', sponsor: 'nobody' }, /does not exist/],
    [{ id: 'h', kind: 'human', sponsor: 'dana' }, /no sponsor/],
    [{ id: 'h', kind: 'human', grants: ['db:drop'] }, /unknown action/],
    [{ id: 'h', kind: 'human', grants: 'db:read' }, /array/],
    [{ id: 'h', kind: 'human', ends_at: 'tomorrow' }, /ends_at/],
    [{ id: 'h', kind: 'human', ends_at: '1' }, /ends_at/],
    [{ id: 'h', kind: 'human', ends_at: 'Sat, 30 Nov 2030 17:00:00 GMT' }, /ends_at/],
    [{ id: 'h', kind: 'human', ends_at: '-271821-04-20T00:00:00Z' }, /ends_at/],
    [{ id: 'h', kind: 'human', ends_at: '0000-01-01T00:00:00Z' }, /ends_at/],
    [{ id: 'h', kind: 'human', ends_at: 1_900_000_000 }, /ends_at/],
    [{ id: 'h', kind: 'human', email: 'not-an-address' }, /email/],
    [[1, 2], /JSON object/]
  ]
  for (const [body, why] of bad) {
    const r = await b.admin('POST', '/v1/principals', body)
    t.equal(r.status, 400, JSON.stringify(body))
    t.equal(r.body.error, 'invalid_request')
    t.match(r.body.error_description, why)
  }
  await b.admin('POST', '/v1/principals', { id: 'svc-a', kind: 'service', sponsor: 'dana' })
  const bySvc = await b.admin('POST', '/v1/principals', { id: 'svc-b', kind: 'service', sponsor: 'svc-a' })
  t.equal(bySvc.status, 400, 'a service cannot sponsor a service')
  const malformed = await fetch(`${b.url}/v1/principals`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: '{"id":' })
  t.equal(malformed.status, 400)
  t.equal((await bodyOf(malformed)).error, 'invalid_request')
})

t.test('grants can be replaced and unknown principals are 404', async (t) => {
  const r = await b.admin('PUT', '/v1/principals/dana/grants', { grants: ['api:*'] })
  t.equal(r.status, 200)
  t.same(r.body.grants, ['api:*'])
  t.equal((await b.admin('PUT', '/v1/principals/ghost/grants', { grants: [] })).status, 404)
  t.equal((await b.admin('GET', '/v1/principals/ghost')).status, 404)
  t.equal((await b.admin('POST', '/v1/principals/ghost/offboard')).status, 404)
  t.equal((await b.admin('POST', '/v1/principals/ghost/clients')).status, 404)
  t.equal((await b.admin('GET', '/v1/tokens/ghost')).status, 404)
  t.equal((await b.admin('GET', '/v1/tokens/ghost/tree')).status, 404)
  t.equal((await b.admin('GET', '/v1/nothing-here')).status, 404)
})

t.test('a path parameter that is not valid percent-encoding is 400, never a 500', async (t) => {
  for (const path of ['/v1/principals/%C0', '/v1/principals/%E0%A4/grants', '/v1/tokens/%FF', '/v1/tokens/%C0/tree', '/v1/targets/%C0']) {
    const r = await b.admin('GET', path)
    t.equal(r.status, 400, path)
    t.equal(r.body.error, 'invalid_request', path)
  }
})

/**
 * Holds `id`'s row as an offboarding does while it commits, runs `during` (an admin call), waits
 * until that call either answers or waits on the row, then commits the offboarding.
 */
async function offboardingRaces (id: string, during: () => Promise<{ status: number, body: any }>): Promise<{ status: number, body: any }> {
  const c = new pg.Client({ connectionString: b.testDb.url })
  await c.connect()
  try {
    await c.query('BEGIN')
    await c.query('SELECT 1 FROM principals WHERE id = $1 FOR UPDATE', [id])
    let answered = false
    const call = during().finally(() => { answered = true })
    for (;;) {
      const { rows } = await c.query("SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()")
      if (answered || rows[0].n > 0) break
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    await c.query("UPDATE principals SET status = 'offboarded' WHERE id = $1", [id])
    await c.query("UPDATE principals SET sponsor_lapsed = true WHERE sponsor = $1 AND kind = 'service'", [id])
    await c.query('COMMIT')
    return await call
  } finally {
    await c.end()
  }
}

t.test('a service is never given a sponsor whose offboarding commits meanwhile', { skip: b.testDb.url === undefined ? 'needs PostgreSQL: PGlite runs one transaction at a time' : false }, async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'erin', kind: 'human', grants: ['db:read'] })
  const created = await offboardingRaces('erin', async () => await b.admin('POST', '/v1/principals', { id: 'erin-bot', kind: 'service', sponsor: 'erin', grants: ['db:read'] }))
  t.equal(created.status, 400, JSON.stringify(created.body))
  t.match(created.body.error_description, /sponsor erin is not active/)

  await b.admin('POST', '/v1/principals', { id: 'fred', kind: 'human', grants: ['db:read'] })
  await b.admin('POST', '/v1/principals', { id: 'gail', kind: 'human', grants: ['db:read'] })
  await b.admin('POST', '/v1/principals', { id: 'fred-bot', kind: 'service', sponsor: 'fred', grants: ['db:read'] })
  const moved = await offboardingRaces('gail', async () => await b.admin('PUT', '/v1/principals/fred-bot/sponsor', { sponsor: 'gail' }))
  t.equal(moved.status, 400, JSON.stringify(moved.body))
  t.equal((await b.admin('GET', '/v1/principals/fred-bot')).body.sponsor, 'fred')
})

t.test('client secrets and the admin token are stored only as hashes', async (t) => {
  const client = await seedContractor(b)
  const { rows } = await b.testDb.db.query<{ secret_hash: Buffer }>('SELECT secret_hash FROM clients WHERE client_id = $1', [client.clientId])
  t.same(Buffer.from(rows[0].secret_hash), hashSecret(client.clientSecret))
  const dump = JSON.stringify((await b.testDb.db.query('SELECT * FROM clients')).rows) + JSON.stringify((await b.testDb.db.query('SELECT * FROM settings')).rows)
  t.notMatch(dump, client.clientSecret)
  t.notMatch(dump, adminToken)
  t.ok(await rootToken(b, client))
})

t.test('audit verify says how many records the database did not take before the check', async (t) => {
  const audit = b.broker.ctx.audit
  const { flush, backlog } = audit
  audit.flush = async () => { throw new Error('the database refused the batch') }
  audit.backlog = () => ({ queued: 3, dropped: 0, failing: true })
  t.teardown(() => { audit.flush = flush; audit.backlog = backlog })
  const r = await b.admin('POST', '/v1/audit/verify')
  t.equal(r.status, 200)
  t.match(r.body, { ok: true, unwritten: 3 })
})

t.test('GET /v1/audit pages with before, given once', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'pat', kind: 'human', grants: ['api:read'] })
  await b.admin('POST', '/v1/principals', { id: 'pat-ci', kind: 'service', sponsor: 'pat', grants: ['api:read'] })
  const c = (await b.admin('POST', '/v1/principals/pat-ci/clients')).body
  for (let i = 0; i < 3; i++) await rootToken(b, { clientId: c.client_id, clientSecret: c.client_secret })
  const first = await b.admin('GET', '/v1/audit?limit=2')
  t.equal(first.body.events.length, 2)
  const next = await b.admin('GET', `/v1/audit?limit=2&before=${first.body.events[1].seq as number}`)
  t.equal(next.status, 200)
  t.ok(next.body.events.length > 0 && next.body.events.every((e: { seq: number }) => e.seq < first.body.events[1].seq), 'older records only')
  t.equal((await b.admin('GET', '/v1/audit?before=3&before=2')).status, 400)
})

t.test('a NUL or an unpaired surrogate anywhere in an admin body, which PostgreSQL cannot store, is 400, never a 500 or text stored altered', async (t) => {
  const bodies: Array<[string, unknown]> = [
    ['/v1/targets', { name: 'nul1', kind: 'http', upstream: 'http://x', policy: { rules: [{ effect: 'deny', reason: 'x\u0000' }] } }],
    ['/v1/targets', { name: 'nul2', kind: 'http', upstream: 'http://x', policy: { rules: [{ effect: 'deny', paths: ['/a\u0000'] }] } }],
    ['/v1/targets', { name: 'nul3', kind: 'http', upstream: 'http://x', policy: { rules: [{ effect: 'deny', actors: ['a\u0000'] }] } }],
    ['/v1/transmitters', { issuer: 'https://nul.example', audience: 'a', jwks: { keys: [{ kty: 'EC', x: '\u0000' }] } }],
    ['/v1/transmitters', { issuer: 'https://nul.example', audience: 'a', jwks: { keys: [{ kty: 'EC', 'x\u0000': 'y' }] } }],
    ['/v1/targets', { name: 'lone1', kind: 'http', upstream: 'http://x', policy: { rules: [{ effect: 'deny', reason: 'x\ud800' }] } }],
    ['/v1/transmitters', { issuer: 'https://lone.example', audience: 'a', jwks: { keys: [{ kty: 'EC', x: '\udc00y' }] } }],
    ['/v1/principals', { id: 'lone', kind: 'human', email: 'a\ud800@example.com' }]
  ]
  for (const [path, body] of bodies) {
    const r = await b.admin('POST', path, body)
    t.equal(r.status, 400, JSON.stringify(body))
    t.match(r.body, { error: 'invalid_request', error_description: /NUL.*surrogates/ })
  }
  const deep = `{"name":"deep","kind":"http","upstream":"http://x","policy":${'['.repeat(100_000)}${']'.repeat(100_000)}}`
  const r = await fetch(`${b.url}/v1/targets`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: deep })
  t.equal(r.status, 400, 'a body nested as deep as its size allows is checked without overflowing the stack')
})
