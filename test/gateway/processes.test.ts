import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createTestDatabase, databaseUrl } from '../helpers/db.js'
import { startLineage } from '../helpers/process.js'
import { startUpstream } from '../helpers/gateway.js'

if (databaseUrl === undefined) {
  t.comment('DATABASE_URL not set: the separate-process gateway test is skipped')
} else {
  t.test('a LINEAGE_ROLE=gateway process serves targets and follows cut-offs made by a broker process', async (t) => {
    const fresh = await createTestDatabase()
    const dir = await mkdtemp(join(tmpdir(), 'lineage-roles-'))
    const up = await startUpstream()
    const adminToken = 'ladm_roles-test-admin-token-0123456789'
    const common = { DATABASE_URL: fresh.url, LINEAGE_DATA_DIR: dir, LINEAGE_LOG_LEVEL: 'warn', LINEAGE_ADMIN_TOKEN: adminToken, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0' }
    const broker = await startLineage({ ...common, LINEAGE_ROLE: 'broker' })
    const gateway = await startLineage({ ...common, LINEAGE_ROLE: 'gateway', LINEAGE_ISSUER: broker.listening.broker })
    t.teardown(async () => { await gateway.stop(); await broker.stop(); await up.close(); await fresh.drop(); await rm(dir, { recursive: true, force: true }) })
    t.same(Object.keys(broker.listening), ['broker'])
    t.same(Object.keys(gateway.listening), ['gateway_http', 'gateway_pg'])

    const b = broker.listening.broker
    const admin = async (path: string, body?: unknown, method = 'POST'): Promise<any> => await (await fetch(b + path, { method, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) })).json()
    await admin('/v1/principals', { id: 'alice', kind: 'human', grants: ['api:read', 'pgt:read'] })
    await admin('/v1/principals', { id: 'ci', kind: 'service', sponsor: 'alice', grants: ['api:read', 'pgt:read'] })
    const c = await admin('/v1/principals/ci/clients')
    await admin('/v1/targets', { name: 'api', kind: 'http', upstream: up.url })
    await admin('/v1/targets', { name: 'pgt', kind: 'postgres', upstream: fresh.url })
    const root = (await (await fetch(`${b}/oauth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret }) })).json() as { access_token: string }).access_token
    // A cut-off closes the connections that carried the chain; a request caught on one is sent again.
    const get = async (): Promise<Response> => {
      for (;;) {
        try {
          return await fetch(`${gateway.listening.gateway_http}/api/hello`, { headers: { authorization: `Bearer ${root}` } })
        } catch {}
      }
    }

    let first = await get()
    for (let i = 0; i < 50 && first.status === 404; i++) { await new Promise((resolve) => setTimeout(resolve, 20)); first = await get() }
    t.equal(first.status, 200, 'the gateway learned the target and the broker\'s keys')
    const { default: pg } = await import('pg')
    const [host, port] = gateway.listening.gateway_pg.split(':')
    const session = new pg.Client({ host, port: Number(port), user: 'ci', password: root, database: 'pgt' })
    await session.connect()
    t.same((await session.query('SELECT 1 AS one')).rows, [{ one: 1 }], 'a PostgreSQL session through the gateway process')
    const ended = new Promise<{ code?: string, at: number }>((resolve) => session.on('error', (err: Error & { code?: string }) => resolve({ code: err.code, at: Date.now() })))
    await admin('/v1/principals/alice/offboard')
    const started = Date.now()
    let refused = await get()
    while (refused.status === 200 && Date.now() - started < 2000) refused = await get()
    t.equal(refused.status, 401)
    t.match(refused.headers.get('www-authenticate'), 'principal alice is offboarded')
    t.ok(Date.now() - started < 1000, `cut off in the other process within a second (${Date.now() - started} ms)`)
    const fatal = await ended
    t.equal(fatal.code, '28000', 'the PostgreSQL session ended with FATAL 28000')
    t.ok(fatal.at - started < 1000)

    // A rotated key reaches the gateway through the broker's JWKS, fetched again on an unknown kid.
    await admin('/v1/principals/alice/reinstate')
    await admin('/v1/principals/ci/sponsor', { sponsor: 'alice' }, 'PUT')
    await new Promise((resolve) => setTimeout(resolve, 10))
    const rotated = await admin('/v1/keys/rotate')
    const fresh2 = (await (await fetch(`${b}/oauth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret }) })).json() as { access_token: string }).access_token
    t.equal(JSON.parse(Buffer.from(fresh2.split('.')[0], 'base64url').toString()).kid, rotated.kid)
    let afterRotation = 0
    for (let i = 0; i < 40 && afterRotation !== 200; i++) {
      afterRotation = (await fetch(`${gateway.listening.gateway_http}/api/hello`, { headers: { authorization: `Bearer ${fresh2}` } })).status
      if (afterRotation !== 200) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    t.equal(afterRotation, 200, 'a token signed by the new key is accepted')

    // A graceful stop writes every audit record first; a stream still open is cut after a grace period.
    const stream = await fetch(`${gateway.listening.gateway_http}/api/sse`, { headers: { authorization: `Bearer ${fresh2}` } })
    t.equal(stream.status, 200)
    const reading = stream.arrayBuffer().catch(() => undefined)
    const stopping = Date.now()
    t.equal(await gateway.stop(), 0)
    t.ok(Date.now() - stopping < 9000, `stopped ${Date.now() - stopping} ms after SIGTERM with a stream open`)
    await reading
    t.equal(await broker.stop(), 0)
    const db = new pg.Client({ connectionString: fresh.url })
    await db.connect()
    const { rows } = await db.query("SELECT decision, status FROM audit WHERE kind = 'gateway.http' AND principals @> ARRAY['alice'] OR (kind = 'gateway.http' AND status = 401)")
    const streams = (await db.query("SELECT count(*)::int AS n FROM audit WHERE kind = 'gateway.http' AND path = '/sse'")).rows[0].n
    await db.end()
    t.ok(rows.some((r) => r.decision === 'allow' && r.status === 200), 'allowed requests recorded')
    t.ok(rows.some((r) => r.decision === 'deny' && r.status === 401), 'the refusal after the cut-off recorded')
    t.equal(streams, 1, 'the stream cut at the stop recorded')
  })
}
