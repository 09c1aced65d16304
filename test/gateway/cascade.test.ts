import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { freePort, startRedis } from '../helpers/redis.js'
import { createTestDatabase, databaseUrl } from '../helpers/db.js'
import { startLineage, type LineageProcess } from '../helpers/process.js'
import { startUpstream } from '../helpers/gateway.js'

if (databaseUrl === undefined || process.env.REDIS_URL === undefined) {
  t.comment('DATABASE_URL or REDIS_URL not set: the multi-process cascade test is skipped')
} else {
  t.test('one broker and three gateway processes: a SCIM deactivation cuts a three-deep cascade off in every gateway, and after a Redis restart a later offboarding still does', async (t) => {
    const fresh = await createTestDatabase()
    const dir = await mkdtemp(join(tmpdir(), 'lineage-cascade-'))
    const up = await startUpstream()
    const redisPort = await freePort()
    let redis = await startRedis(redisPort)
    const adminToken = 'ladm_cascade-test-admin-token-012345'
    const scimToken = 'scim-cascade-test-token-0123456789'
    const common = { DATABASE_URL: fresh.url, REDIS_URL: `redis://127.0.0.1:${redisPort}`, LINEAGE_DATA_DIR: dir, LINEAGE_LOG_LEVEL: 'error', LINEAGE_ADMIN_TOKEN: adminToken, LINEAGE_SCIM_TOKEN: scimToken, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0' }
    const broker = await startLineage({ ...common, LINEAGE_ROLE: 'broker' })
    const gateways: LineageProcess[] = []
    for (let i = 0; i < 3; i++) gateways.push(await startLineage({ ...common, LINEAGE_ROLE: 'gateway', LINEAGE_ISSUER: broker.listening.broker }))
    t.teardown(async () => {
      for (const g of gateways) await g.stop()
      await broker.stop()
      redis.kill('SIGKILL')
      await up.close()
      await fresh.drop()
      await rm(dir, { recursive: true, force: true })
    })
    const b = broker.listening.broker
    const post = async (path: string, body: unknown, auth = `Bearer ${adminToken}`, type = 'application/json'): Promise<any> =>
      await (await fetch(b + path, { method: 'POST', headers: { authorization: auth, 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) })).json()
    const exchange = async (subject: string, actor: string): Promise<string> => (await post('/oauth/token', new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: subject, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', actor
    }).toString(), '', 'application/x-www-form-urlencoded')).access_token

    const user = await post('/scim/v2/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'contractor@example.com', externalId: 'ext-42', active: true }, `Bearer ${scimToken}`, 'application/scim+json')
    const contractor: string = user.id
    await post('/v1/principals', { id: 'mentor', kind: 'human', email: 'mentor@example.com', grants: ['api:*'] })
    await fetch(`${b}/v1/principals/${contractor}/grants`, { method: 'PUT', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ grants: ['api:*'] }) })
    await post('/v1/principals', { id: 'ci', kind: 'service', sponsor: contractor, grants: ['api:*'] })
    await post('/v1/principals', { id: 'ci2', kind: 'service', sponsor: 'mentor', grants: ['api:*'] })
    await post('/v1/targets', { name: 'api', kind: 'http', upstream: up.url })
    const clientToken = async (service: string): Promise<string> => {
      const c = await post(`/v1/principals/${service}/clients`, {})
      return (await post('/oauth/token', new URLSearchParams({ grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret }).toString(), '', 'application/x-www-form-urlencoded')).access_token
    }
    const chain = async (root: string): Promise<string[]> => {
      const one = await exchange(root, 'build')
      const two = await exchange(one, 'tests')
      return [root, one, two, await exchange(two, 'psql')]
    }
    const agents = await chain(await clientToken('ci'))
    const others = await chain(await clientToken('ci2'))

    // Through every gateway: a request caught on a connection a cut-off closes is sent again.
    const status = async (g: LineageProcess, token: string): Promise<number> => {
      for (;;) {
        try { return (await fetch(`${g.listening.gateway_http}/api/x`, { headers: { authorization: `Bearer ${token}` } })).status } catch {}
      }
    }
    const all = async (tokens: string[]): Promise<number[]> => await Promise.all(gateways.flatMap((g) => tokens.map(async (tk) => await status(g, tk))))
    const settle = async (tokens: string[], want: number): Promise<number[]> => {
      let got = await all(tokens)
      for (let i = 0; i < 100 && got.some((s) => s !== want); i++) { await new Promise((resolve) => setTimeout(resolve, 20)); got = await all(tokens) }
      return got
    }
    t.same(await settle([...agents, ...others], 200), Array(24).fill(200), 'every agent works through every gateway')

    const off = await fetch(`${b}/scim/v2/Users/${contractor}`, { method: 'PATCH', headers: { authorization: `Bearer ${scimToken}`, 'content-type': 'application/scim+json' }, body: JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', path: 'active', value: false }] }) })
    t.equal(off.status, 200)
    // The 2xx waits for every gateway to confirm: no retry, the very next request is refused.
    t.same(await all(agents), Array(12).fill(401), 'once acknowledged, every agent is refused by every gateway')
    t.same(await all(others), Array(12).fill(200), 'the mentor\'s cascade is untouched')

    redis.kill('SIGKILL')
    await once(redis, 'exit')
    redis = await startRedis(redisPort)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    await post('/v1/principals/mentor/offboard', {})
    t.same(await all(others), Array(12).fill(401), 'after Redis restarted, a later offboarding still reaches every gateway before it is acknowledged')
  })
}
