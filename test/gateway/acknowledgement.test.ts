import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createTestDatabase, databaseUrl } from '../helpers/db.js'
import { startLineage, type LineageProcess } from '../helpers/process.js'
import { startUpstream } from '../helpers/gateway.js'

if (databaseUrl === undefined) {
  t.comment('DATABASE_URL not set: the acknowledgement test is skipped')
} else {
  t.test('a cut-off is acknowledged only once every gateway process enforces it: a frozen gateway holds the answer for LINEAGE_MAX_STALENESS_MS at most, a stopped one not at all', async (t) => {
    const fresh = await createTestDatabase()
    const dir = await mkdtemp(join(tmpdir(), 'lineage-ack-'))
    const up = await startUpstream()
    const adminToken = 'ladm_ack-test-admin-token-0123456789'
    const bound = 1500
    // No REDIS_URL: confirmations travel over PostgreSQL NOTIFY.
    const common = { DATABASE_URL: fresh.url, LINEAGE_DATA_DIR: dir, LINEAGE_LOG_LEVEL: 'error', LINEAGE_ADMIN_TOKEN: adminToken, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0', LINEAGE_MAX_STALENESS_MS: String(bound) }
    const broker = await startLineage({ ...common, LINEAGE_ROLE: 'broker' })
    const gateways: LineageProcess[] = []
    for (let i = 0; i < 2; i++) gateways.push(await startLineage({ ...common, LINEAGE_ROLE: 'gateway', LINEAGE_ISSUER: broker.listening.broker }))
    t.teardown(async () => {
      for (const g of gateways) { g.proc.kill('SIGCONT'); await g.stop() }
      await broker.stop()
      await up.close()
      await fresh.drop()
      await rm(dir, { recursive: true, force: true })
    })
    const b = broker.listening.broker
    const post = async (path: string, body: unknown, auth = `Bearer ${adminToken}`, type = 'application/json'): Promise<Response> =>
      await fetch(b + path, { method: 'POST', headers: { authorization: auth, 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) })
    await post('/v1/targets', { name: 'api', kind: 'http', upstream: up.url })
    const rootToken = async (id: string): Promise<string> => {
      await post('/v1/principals', { id: `${id}-human`, kind: 'human', grants: ['api:*'] })
      await post('/v1/principals', { id, kind: 'service', sponsor: `${id}-human`, grants: ['api:*'] })
      const c = await (await post(`/v1/principals/${id}/clients`, {})).json() as { client_id: string, client_secret: string }
      const res = await post('/oauth/token', new URLSearchParams({ grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret }).toString(), '', 'application/x-www-form-urlencoded')
      return ((await res.json()) as { access_token: string }).access_token
    }
    // A request caught on a keep-alive connection that a cut-off closes is sent again.
    const status = async (g: LineageProcess, token: string): Promise<number> => {
      for (;;) {
        try { return (await fetch(`${g.listening.gateway_http}/api/x`, { headers: { authorization: `Bearer ${token}` } })).status } catch {}
      }
    }
    const offboard = async (id: string): Promise<number> => {
      const started = Date.now()
      t.equal((await post(`/v1/principals/${id}-human/offboard`, {})).status, 200)
      return Date.now() - started
    }
    // A few heartbeats, so the broker knows both gateways.
    await new Promise((resolve) => setTimeout(resolve, 1200))

    const one = await rootToken('one')
    t.same([await status(gateways[0], one), await status(gateways[1], one)], [200, 200])
    const fast = await offboard('one')
    t.ok(fast < bound, `with every gateway answering, the acknowledgement comes without waiting for the bound (${fast} ms)`)
    t.same([await status(gateways[0], one), await status(gateways[1], one)], [401, 401], 'and both refuse at once')

    const two = await rootToken('two')
    t.equal(await status(gateways[1], two), 200)
    gateways[1].proc.kill('SIGSTOP')
    const held = await offboard('two')
    t.ok(held >= bound - 50 && held < bound + 1000, `a frozen gateway holds the acknowledgement for the bound (${held} ms)`)
    gateways[1].proc.kill('SIGCONT')
    t.not(await status(gateways[1], two), 200, 'once it wakes, the frozen gateway does not accept the cut-off chain')
    t.equal(await status(gateways[0], two), 401)

    await gateways[1].stop()
    const three = await rootToken('three')
    t.equal(await status(gateways[0], three), 200)
    const after = await offboard('three')
    t.ok(after < bound, `a gateway that stopped is not waited for (${after} ms)`)
    t.equal(await status(gateways[0], three), 401)
  })
}
