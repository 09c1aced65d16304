import t from 'tap'
import { startTestBroker } from '../helpers/broker.js'

const b = await startTestBroker()
t.teardown(b.close)

async function changes (): Promise<Array<Record<string, any>>> {
  const r = await b.admin('GET', '/v1/audit?limit=1000')
  return r.body.events.filter((e: { kind: string }) => e.kind === 'admin.change').reverse()
}

t.test('every change made through the admin API is recorded, with what it changed and no secret', async (t) => {
  t.equal((await b.admin('POST', '/v1/principals', { id: 'alice', kind: 'human', email: 'alice@example.com', grants: ['api:read'] })).status, 201)
  t.equal((await b.admin('POST', '/v1/principals', { id: 'ci', kind: 'service', sponsor: 'alice', grants: ['api:read'] })).status, 201)
  t.equal((await b.admin('PUT', '/v1/principals/ci/grants', { grants: ['api:read', 'db:read'] })).status, 200)
  const client = await b.admin('POST', '/v1/principals/ci/clients')
  t.equal(client.status, 201)
  const target = { name: 'api', kind: 'http', upstream: 'http://127.0.0.1:9/', headers: { authorization: 'Bearer upstream-secret-1234' }, policy: { rules: [{ effect: 'deny', methods: ['DELETE'] }] } }
  t.equal((await b.admin('POST', '/v1/targets', target)).status, 201)
  t.equal((await b.admin('PUT', '/v1/targets/api', { ...target, name: undefined, policy: { rules: [] } })).status, 200)
  t.equal((await b.admin('POST', '/v1/targets', { name: 'db', kind: 'postgres', upstream: 'postgres://app:db-password-5678@127.0.0.1:5432/app' })).status, 201)
  t.equal((await b.admin('DELETE', '/v1/targets/db')).status, 204)
  const tx = await b.admin('POST', '/v1/transmitters', { issuer: 'https://idp.example.com', audience: 'lineage', jwks_uri: 'https://idp.example.com/jwks', authorization: 'Bearer transmitter-secret-9012' })
  t.equal(tx.status, 201)
  t.equal((await b.admin('DELETE', `/v1/transmitters/${tx.body.id as string}`)).status, 204)
  const kid = (await b.admin('POST', '/v1/keys/rotate')).body.kid

  const got = await changes()
  t.match(got, [
    { principals: ['alice'], target: null, detail: { action: 'principal.created', by: 'admin', kind: 'human', email: 'alice@example.com', sponsor: null, grants: ['api:read'] } },
    { principals: ['ci'], detail: { action: 'principal.created', kind: 'service', sponsor: 'alice' } },
    { principals: ['ci'], detail: { action: 'principal.grants', grants: ['api:read', 'db:read'] } },
    { principals: ['ci'], detail: { action: 'client.created', client_id: client.body.client_id } },
    { target: 'api', principals: [], detail: { action: 'target.created', kind: 'http', header_names: ['authorization'], policy: { rules: [{ effect: 'deny', methods: ['DELETE'] }] } } },
    { target: 'api', detail: { action: 'target.replaced', policy: { rules: [] } } },
    { target: 'db', detail: { action: 'target.created', kind: 'postgres' } },
    { target: 'db', detail: { action: 'target.deleted' } },
    { detail: { action: 'transmitter.created', id: tx.body.id, issuer: 'https://idp.example.com', audience: 'lineage' } },
    { detail: { action: 'transmitter.deleted', id: tx.body.id } },
    { detail: { action: 'keys.rotated', kid } }
  ])
  t.equal(got.length, 11, 'one record a change')
  const all = JSON.stringify((await b.admin('GET', '/v1/audit?limit=1000')).body)
  for (const secret of ['upstream-secret-1234', 'db-password-5678', 'transmitter-secret-9012', client.body.client_secret]) t.notOk(all.includes(secret), 'no secret in the trail')
  t.equal((await b.admin('GET', '/v1/audit?target=api')).body.events.length, 2, 'a target\'s changes are found by its name')
  t.match((await b.admin('POST', '/v1/audit/verify')).body, { ok: true })
})

t.test('a refused change records nothing', async (t) => {
  const before = (await changes()).length
  t.equal((await b.admin('POST', '/v1/principals', { id: 'alice', kind: 'human' })).status, 409)
  t.equal((await b.admin('POST', '/v1/targets', { name: 'bad', kind: 'http', upstream: 'ftp://x' })).status, 400)
  t.equal((await b.admin('PUT', '/v1/principals/nobody/grants', { grants: [] })).status, 404)
  t.equal((await b.admin('DELETE', '/v1/targets/nothing')).status, 404)
  t.equal((await changes()).length, before)
})
