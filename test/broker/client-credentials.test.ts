import t from 'tap'
import { claimsOf, seedContractor, startTestBroker } from '../helpers/broker.js'

const b = await startTestBroker()
t.teardown(b.close)
const client = await seedContractor(b)
const issue = async (extra: Record<string, string | string[]>): Promise<{ status: number, body: any }> =>
  await b.form('/oauth/token', { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret, ...extra })

t.test('resource and audience on client_credentials narrow the root token to those targets (RFC 8707 §2)', async (t) => {
  const byResource = await issue({ resource: 'urn:lineage:target:db' })
  t.equal(byResource.status, 200)
  t.equal(byResource.body.scope, 'db:read db:write')
  t.same(claimsOf(byResource.body.access_token).aud, ['db'])
  const byUrl = await issue({ resource: 'https://gateway.example/api/v1/things' })
  t.equal(byUrl.body.scope, 'api:*')
  t.same(claimsOf(byUrl.body.access_token).aud, ['api'])
  const byAudience = await issue({ audience: 'api' })
  t.same(claimsOf(byAudience.body.access_token).aud, ['api'])
  const both = await issue({ resource: ['urn:lineage:target:db', 'https://gateway.example/api'] })
  t.same(claimsOf(both.body.access_token).aud.sort(), ['api', 'db'])
  const withScope = await issue({ resource: 'urn:lineage:target:db', scope: 'db:read' })
  t.equal(withScope.body.scope, 'db:read')
  t.same(claimsOf(withScope.body.access_token).aud, ['db'])
})

t.test('a resource the client cannot reach is invalid_target, never a token for something else', async (t) => {
  const refused: Array<Record<string, string | string[]>> = [
    { resource: 'urn:lineage:target:billing' },
    { resource: 'https://gateway.example/billing' },
    { resource: 'https://gateway.example/db#part' },
    { resource: 'not a uri' },
    { audience: 'billing' },
    { resource: ['urn:lineage:target:db', 'urn:lineage:target:billing'] }
  ]
  for (const extra of refused) {
    const r = await issue(extra)
    t.equal(r.status, 400, JSON.stringify(extra))
    t.equal(r.body.error, 'invalid_target', JSON.stringify(extra))
  }
  const outside = await issue({ resource: 'urn:lineage:target:db', scope: 'api:read' })
  t.equal(outside.status, 400)
  t.equal(outside.body.error, 'invalid_scope', 'a scope outside the requested resource')
})

t.test('a service whose grants and active sponsor\'s do not meet is invalid_scope; one whose sponsor is gone is invalid_client', async (t) => {
  t.equal((await b.admin('POST', '/v1/principals', { id: 'bea', kind: 'human', grants: ['db:read'] })).status, 201)
  t.equal((await b.admin('POST', '/v1/principals', { id: 'bea-bot', kind: 'service', sponsor: 'bea', grants: ['ssh:exec'] })).status, 201)
  const c = (await b.admin('POST', '/v1/principals/bea-bot/clients')).body
  const ask = async (extra: Record<string, string>): Promise<{ status: number, body: any }> =>
    await b.form('/oauth/token', { grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret, ...extra })
  for (const extra of [{}, { scope: 'ssh:exec' }] as Array<Record<string, string>>) {
    const r = await ask(extra)
    t.equal(r.status, 400, JSON.stringify(extra))
    t.equal(r.body.error, 'invalid_scope', JSON.stringify(extra))
  }
  t.equal((await b.admin('POST', '/v1/principals/bea/offboard')).status, 200)
  const gone = await ask({ scope: 'ssh:exec' })
  t.equal(gone.status, 401)
  t.equal(gone.body.error, 'invalid_client')
})

t.test('a service whose sponsor was offboarded and reinstated is told to be given a sponsor again', async (t) => {
  t.equal((await b.admin('POST', '/v1/principals', { id: 'dee', kind: 'human', grants: ['db:read'] })).status, 201)
  t.equal((await b.admin('POST', '/v1/principals', { id: 'dee-ci', kind: 'service', sponsor: 'dee', grants: ['db:read'] })).status, 201)
  const c = (await b.admin('POST', '/v1/principals/dee-ci/clients')).body
  const ask = async (): Promise<{ status: number, body: any }> =>
    await b.form('/oauth/token', { grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret })
  t.equal((await b.admin('POST', '/v1/principals/dee/offboard')).status, 200)
  t.equal((await b.admin('POST', '/v1/principals/dee/reinstate')).status, 200)
  // dee is active again, yet dee-ci stays unusable: the refusal must say why, and what to do.
  t.match((await ask()).body, { error: 'invalid_client', error_description: 'service dee-ci has no active sponsor: its sponsor dee was offboarded; assign one again (PUT /v1/principals/dee-ci/sponsor)' })
  t.equal((await b.admin('PUT', '/v1/principals/dee-ci/sponsor', { sponsor: 'dee' })).status, 200)
  t.equal((await ask()).status, 200)
})

t.test('a client that authenticates but is refused a token is recorded with the principals behind it; a wrong secret is not', async (t) => {
  t.equal((await b.admin('POST', '/v1/principals', { id: 'cal', kind: 'human', grants: ['db:read'] })).status, 201)
  t.equal((await b.admin('POST', '/v1/principals', { id: 'cal-ci', kind: 'service', sponsor: 'cal', grants: ['db:read'] })).status, 201)
  const c = (await b.admin('POST', '/v1/principals/cal-ci/clients')).body
  const ask = async (secret: string): Promise<{ status: number, body: any }> =>
    await b.form('/oauth/token', { grant_type: 'client_credentials', client_id: c.client_id, client_secret: secret, scope: 'db:read' })
  const refusals = async (): Promise<any[]> => {
    await b.broker.ctx.audit.flush()
    return (await b.admin('GET', '/v1/audit?principal=cal-ci')).body.events.filter((e: { kind: string }) => e.kind === 'token.refused')
  }
  t.equal((await ask(c.client_secret)).status, 200)
  t.equal((await b.admin('POST', '/v1/principals/cal/offboard')).status, 200)
  // The contractor has left; her CI job still asks for a token.
  t.equal((await ask(c.client_secret)).body.error, 'invalid_client')
  t.match(await refusals(), [{
    kind: 'token.refused', decision: 'deny', status: 401, jti: null, root: null, principals: ['cal', 'cal-ci'], actors: [],
    detail: { error: 'invalid_client', reason: /no active sponsor/, client_id: c.client_id, scope: 'db:read' }
  }])
  t.equal((await ask('lsec_wrong')).status, 401)
  t.equal((await refusals()).length, 1, 'a wrong secret proves nothing and is not recorded')
})
