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
    const common = { DATABASE_URL: fresh.url, LINEAGE_DATA_DIR: dir, LINEAGE_LOG_LEVEL: 'warn', LINEAGE_ADMIN_TOKEN: adminToken, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0' }
    const broker = await startLineage({ ...common, LINEAGE_ROLE: 'broker' })
    const gateway = await startLineage({ ...common, LINEAGE_ROLE: 'gateway', LINEAGE_ISSUER: broker.listening.broker })
    t.teardown(async () => { await gateway.stop(); await broker.stop(); await up.close(); await fresh.drop(); await rm(dir, { recursive: true, force: true }) })
    t.same(Object.keys(broker.listening), ['broker'])
    t.same(Object.keys(gateway.listening), ['gateway_http'])

    const b = broker.listening.broker
    const admin = async (path: string, body?: unknown): Promise<any> => await (await fetch(b + path, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) })).json()
    await admin('/v1/principals', { id: 'alice', kind: 'human', grants: ['api:read'] })
    await admin('/v1/principals', { id: 'ci', kind: 'service', sponsor: 'alice', grants: ['api:read'] })
    const c = await admin('/v1/principals/ci/clients')
    await admin('/v1/targets', { name: 'api', kind: 'http', upstream: up.url })
    const root = (await (await fetch(`${b}/oauth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret }) })).json() as { access_token: string }).access_token
    const get = async (): Promise<Response> => await fetch(`${gateway.listening.gateway_http}/api/hello`, { headers: { authorization: `Bearer ${root}` } })

    let first = await get()
    for (let i = 0; i < 50 && first.status === 404; i++) { await new Promise((resolve) => setTimeout(resolve, 20)); first = await get() }
    t.equal(first.status, 200, 'the gateway learned the target and the broker\'s keys')
    await admin('/v1/principals/alice/offboard')
    const started = Date.now()
    let refused = await get()
    while (refused.status === 200 && Date.now() - started < 2000) refused = await get()
    t.equal(refused.status, 401)
    t.match(refused.headers.get('www-authenticate'), 'principal alice is offboarded')
    t.ok(Date.now() - started < 1000, `cut off in the other process within a second (${Date.now() - started} ms)`)
  })
}
