import t from 'tap'
import { verifyAccessToken } from '../../src/lineage/verify.js'
import { adminToken, claimsOf, exchangeToken, rootToken, seedContractor, startTestBroker, type TestBroker } from '../helpers/broker.js'

const b = await startTestBroker()
t.teardown(b.close)
const client = await seedContractor(b)
const adminAuth = { authorization: `Bearer ${adminToken}` }

async function chain (depth: number, from?: string): Promise<string[]> {
  const tokens = [from ?? await rootToken(b, client)]
  for (let i = 1; i <= depth; i++) {
    const r = await exchangeToken(b, tokens[i - 1], { actor: `agent-${i}` })
    if (r.status !== 200) throw new Error(JSON.stringify(r.body))
    tokens.push(r.body.access_token)
  }
  return tokens
}
const active = async (bb: TestBroker, token: string): Promise<boolean> => (await bb.form('/oauth/introspect', { token }, adminAuth)).body.active

t.test('revoking a token cuts off its whole subtree and nothing above or beside it', async (t) => {
  const [root, one, two, three] = await chain(3)
  const sibling = (await exchangeToken(b, root, { actor: 'sibling' })).body.access_token
  const r = await b.admin('POST', `/v1/tokens/${claimsOf(one).jti}/revoke`, { reason: 'test' })
  t.equal(r.status, 200)
  t.same(r.body, { revoked: 3 })
  t.notOk(await active(b, one))
  t.notOk(await active(b, two))
  t.notOk(await active(b, three))
  t.ok(await active(b, root))
  t.ok(await active(b, sibling))
  const child = await exchangeToken(b, three)
  t.equal(child.status, 400)
  t.equal(child.body.error, 'invalid_request')
  t.match(child.body.error_description, `ancestor token ${claimsOf(one).jti} was revoked`)
  const again = await b.admin('POST', `/v1/tokens/${claimsOf(one).jti}/revoke`)
  t.same(again.body, { revoked: 0 }, 'revoking twice is harmless')
  const node = await b.admin('GET', `/v1/tokens/${claimsOf(three).jti}`)
  t.equal(node.body.status, 'revoked')
  t.match(node.body.status_reason, /ancestor/)
  t.equal((await b.admin('POST', '/v1/tokens/nope/revoke')).status, 404)
})

t.test('RFC 7009 revocation is allowed to an ancestor token, the owning client and the admin only', async (t) => {
  const [root, one, two] = await chain(2)
  const other = await chain(1)
  const denied = await b.form('/oauth/revoke', { token: two }, { authorization: `Bearer ${other[1]}` })
  t.equal(denied.status, 400)
  t.equal(denied.body.error, 'unauthorized_client')
  t.ok(await active(b, two))
  const byAncestor = await b.form('/oauth/revoke', { token: two, token_type_hint: 'access_token' }, { authorization: `Bearer ${one}` })
  t.equal(byAncestor.status, 200)
  t.notOk(await active(b, two))
  t.ok(await active(b, one))
  const byClient = await b.form('/oauth/revoke', { token: one, client_id: client.clientId, client_secret: client.clientSecret })
  t.equal(byClient.status, 200)
  t.notOk(await active(b, one))
  const byAdmin = await b.form('/oauth/revoke', { token: root }, adminAuth)
  t.equal(byAdmin.status, 200)
  t.notOk(await active(b, root))
  const unknown = await b.form('/oauth/revoke', { token: 'not.a.token' }, adminAuth)
  t.equal(unknown.status, 200, 'an unknown token is answered 200')
  const anonymous = await b.form('/oauth/revoke', { token: root })
  t.equal(anonymous.status, 401)
  const selfRevoked = await b.form('/oauth/revoke', { token: other[1] }, { authorization: `Bearer ${other[1]}` })
  t.equal(selfRevoked.status, 200, 'a token may revoke itself')
  t.notOk(await active(b, other[1]))
})

t.test('a caller with no credentials is invalid_client, and one whose bearer token is not live invalid_token, each with its challenge', async (t) => {
  const [, one] = await chain(1)
  for (const path of ['/oauth/introspect', '/oauth/revoke']) {
    const none = await b.form(path, { token: one })
    t.same([none.status, none.body.error, none.headers.get('www-authenticate')], [401, 'invalid_client', 'Basic realm="lineage"'], `${path}: RFC 6749 §5.2, no client authentication included`)
  }
  const dead = await b.form('/oauth/revoke', { token: one }, { authorization: 'Bearer not-a-jwt' })
  t.same([dead.status, dead.body.error, dead.headers.get('www-authenticate')], [401, 'invalid_token', 'Bearer realm="lineage", error="invalid_token"'], 'RFC 6750 §3.1')
  // RFC 7662 §2.3: a bearer token that may not introspect is answered as RFC 6750 §3 says, in the scheme it came in.
  for (const [what, token] of [['a wrong admin token', 'ladm_wrong'], ['an access token, live but no introspection caller', one]]) {
    const r = await b.form('/oauth/introspect', { token: one }, { authorization: `Bearer ${token}` })
    t.same([r.status, r.body.error, r.headers.get('www-authenticate')], [401, 'invalid_token', 'Bearer realm="lineage", error="invalid_token"'], `introspection with ${what}`)
  }
})

t.test('introspection needs an authenticated caller and shows the lineage of a live token', async (t) => {
  const [, one] = await chain(1)
  t.equal((await b.form('/oauth/introspect', { token: one })).status, 401)
  t.equal((await b.form('/oauth/introspect', { token: one }, { authorization: 'Bearer wrong' })).status, 401)
  const r = await b.form('/oauth/introspect', { token: one, client_id: client.clientId, client_secret: client.clientSecret })
  t.equal(r.status, 200)
  t.match(r.body, { active: true, sub: 'ci-nightly', client_id: client.clientId, act: { sub: 'agent-1' }, lineage: { depth: 1, principals: ['alice', 'ci-nightly'] } })
  t.equal(r.headers.get('cache-control'), 'no-store')
})

t.test('a broker whose live-status view cannot be brought up to date refuses exchanges and calls every token inactive, then recovers', async (t) => {
  const [root] = await chain(0)
  const sync = b.broker.ctx.sync
  // The database stopped answering this process a while ago: a revocation made by another broker since would be unknown here.
  b.broker.ctx.sync = { ...sync, freshAt: () => b.clock.now() - 60_000, catchUp: async () => { throw new Error('the database does not answer') } }
  try {
    const exchanged = await exchangeToken(b, root)
    t.equal(exchanged.status, 503)
    t.equal(exchanged.body.error, 'temporarily_unavailable')
    t.match(exchanged.body.error_description, /live-status view is \d+ ms old/)
    const r = await b.form('/oauth/introspect', { token: root }, adminAuth)
    t.equal(r.status, 200)
    t.same(r.body, { active: false })
  } finally {
    b.broker.ctx.sync = sync
  }
  t.ok(await active(b, root), 'a view brought up to date again answers again')
  t.equal((await exchangeToken(b, root)).status, 200)
})

t.test('a broker whose clock went back since its view was last read refuses, as a gateway does, until the view is read again', async (t) => {
  const [root] = await chain(0)
  const sync = b.broker.ctx.sync
  // Read "a minute from now" by this clock, and the database unreachable since: how old the view really is cannot be told.
  b.broker.ctx.sync = { ...sync, freshAt: () => b.clock.now() + 60_000, catchUp: async () => { throw new Error('the database does not answer') } }
  try {
    const exchanged = await exchangeToken(b, root)
    t.equal(exchanged.status, 503)
    t.match(exchanged.body.error_description, /clock went back/)
    t.same((await b.form('/oauth/introspect', { token: root }, adminAuth)).body, { active: false })
  } finally {
    b.broker.ctx.sync = sync
  }
  t.equal((await exchangeToken(b, root)).status, 200)
})

t.test('a revoked token stays refused through the clock tolerance after its exp, then is forgotten', async (t) => {
  const b2 = await startTestBroker()
  t.teardown(b2.close)
  const c2 = await seedContractor(b2)
  const parent = (await exchangeToken(b2, await rootToken(b2, c2), { actor: 'short', ttl: '20' })).body.access_token
  const child = (await exchangeToken(b2, parent, { actor: 'shorter' })).body.access_token
  await b2.admin('POST', `/v1/tokens/${claimsOf(parent).jti}/revoke`)
  const view = b2.broker.ctx.view
  // As a gateway checks a token: verification (with its clock tolerance), then the chain.
  const ctx = b2.broker.ctx
  const verify = async (token: string): Promise<unknown> => await verifyAccessToken(token, { keys: ctx.verifier, issuer: ctx.issuer, clock: ctx.clock, maxDepth: ctx.maxDepth })
    .then((c) => ctx.view.check(c.jti, c.lineage, ctx.clock.now())?.message ?? 'live', (err: Error) => err.message)
  b2.clock.advance(22_000) // 2 s past exp: still within the 5 s verification tolerance
  await new Promise((resolve) => setTimeout(resolve, 500)) // two polls of the view
  t.ok(view.isRevoked(claimsOf(parent).jti), 'the revocation is kept while verification would accept the token')
  t.match(await verify(child), /was revoked/)
  t.notOk(await active(b2, parent), 'introspection: an expired token is not active')
  b2.clock.advance(5_000)
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.notOk(view.isRevoked(claimsOf(parent).jti), 'forgotten once no verification accepts the token')
  t.match(await verify(child), /expired/)
})

t.test('a client whose principal, or its sponsor, is not active may not introspect or revoke', async (t) => {
  const b3 = await startTestBroker()
  t.teardown(b3.close)
  const c3 = await seedContractor(b3)
  const token = await rootToken(b3, c3)
  const asClient = { client_id: c3.clientId, client_secret: c3.clientSecret }
  t.equal((await b3.form('/oauth/introspect', { token, ...asClient })).status, 200)
  await b3.admin('POST', '/v1/principals/alice/offboard')
  const r = await b3.form('/oauth/introspect', { token, ...asClient })
  t.equal(r.status, 401)
  t.equal(r.body.error, 'invalid_client')
  t.match(r.body.error_description, /principal ci-nightly is not active/)
  t.equal((await b3.form('/oauth/revoke', { token, ...asClient })).status, 401)

  // Reinstating the sponsor is not assigning one: the service stays unusable (CONTRACT.md §3), its client too.
  t.equal((await b3.admin('POST', '/v1/principals/alice/reinstate')).status, 200)
  const lapsed = await b3.form('/oauth/introspect', { token: 'x', ...asClient })
  t.same([lapsed.status, lapsed.body.error], [401, 'invalid_client'], 'a service whose sponsorship lapsed may not introspect')
  t.match(lapsed.body.error_description, /principal ci-nightly is not active/)
  t.equal((await b3.form('/oauth/revoke', { token, ...asClient })).status, 401, 'nor revoke')
  t.equal((await b3.admin('PUT', '/v1/principals/ci-nightly/sponsor', { sponsor: 'alice' })).status, 200)
  t.equal((await b3.form('/oauth/introspect', { token: 'x', ...asClient })).status, 200, 'once given a sponsor again, it may')
})

t.test('offboarding the sponsor cuts off every token rooted at the service; reinstating brings none back', async (t) => {
  const b2 = await startTestBroker()
  t.teardown(b2.close)
  const c2 = await seedContractor(b2)
  const roots = await Promise.all([1, 2, 3].map(async () => await rootToken(b2, c2)))
  const kids = await Promise.all(roots.map(async (r) => (await exchangeToken(b2, r, { actor: 'agent' })).body.access_token))
  const grandkid = (await exchangeToken(b2, kids[2], { actor: 'nested' })).body.access_token
  t.same((await b2.admin('POST', `/v1/tokens/${claimsOf(kids[2]).jti}/revoke`)).body, { revoked: 2 })
  const off = await b2.admin('POST', '/v1/principals/alice/offboard', { reason: 'contract ended' })
  t.equal(off.status, 200)
  t.same(off.body, { id: 'alice', status: 'offboarded', revoked: 5 }, 'the revoked subtree is not counted again')
  t.notOk(await active(b2, grandkid))
  for (const k of [...roots, ...kids]) t.notOk(await active(b2, k))
  const refused = await exchangeToken(b2, kids[0])
  t.match(refused.body.error_description, 'principal alice is offboarded')
  const cc = await b2.form('/oauth/token', { grant_type: 'client_credentials', client_id: c2.clientId, client_secret: c2.clientSecret })
  t.equal(cc.status, 401, 'the service cannot get a new root while its sponsor is gone')
  const svc = await b2.admin('GET', '/v1/principals/ci-nightly')
  t.same(svc.body.usable_scopes, [])
  const offAgain = await b2.admin('POST', '/v1/principals/alice/offboard')
  t.equal(offAgain.body.revoked, 0)

  const back = await b2.admin('POST', '/v1/principals/alice/reinstate')
  t.equal(back.status, 200)
  t.equal(back.body.status, 'active')
  for (const k of [...roots, ...kids]) t.notOk(await active(b2, k), 'cut off before stays cut off')
  b2.clock.advance(5)
  const still = await b2.form('/oauth/token', { grant_type: 'client_credentials', client_id: c2.clientId, client_secret: c2.clientSecret })
  t.equal(still.status, 401, 'the service stays unusable: reinstating its sponsor is not assigning one')
  t.match((await b2.admin('GET', '/v1/principals/ci-nightly')).body, { status: 'active', sponsor: 'alice', sponsor_lapsed: true, usable_scopes: [] }, 'the principal says why')
  const given = await b2.admin('PUT', '/v1/principals/ci-nightly/sponsor', { sponsor: 'alice' })
  t.equal(given.status, 200)
  t.equal(given.body.sponsor_lapsed, false)
  b2.clock.advance(5)
  const fresh = await rootToken(b2, c2)
  t.ok(await active(b2, fresh), 'new tokens work once an admin assigns it a sponsor, the same one included')
  for (const k of [...roots, ...kids]) t.notOk(await active(b2, k), 'and the old chains stay dead')
})

t.test('a new sponsor makes the service usable again without reviving old chains', async (t) => {
  const b3 = await startTestBroker()
  t.teardown(b3.close)
  const c3 = await seedContractor(b3)
  const old = await rootToken(b3, c3)
  await b3.admin('POST', '/v1/principals', { id: 'bob', kind: 'human', grants: ['db:read'] })
  await b3.admin('POST', '/v1/principals/alice/offboard')
  const r = await b3.admin('PUT', '/v1/principals/ci-nightly/sponsor', { sponsor: 'bob' })
  t.equal(r.status, 200)
  t.equal(r.body.sponsor, 'bob')
  t.same(r.body.usable_scopes, ['db:read'], 'usable scopes follow the new sponsor')
  b3.clock.advance(5)
  const fresh = await rootToken(b3, c3)
  t.same(claimsOf(fresh).lineage.principals, ['bob', 'ci-nightly'])
  t.ok(await active(b3, fresh))
  t.notOk(await active(b3, old))
  t.equal((await b3.admin('PUT', '/v1/principals/ci-nightly/sponsor', { sponsor: 'alice' })).status, 400, 'an offboarded human cannot sponsor')
  t.equal((await b3.admin('PUT', '/v1/principals/bob/sponsor', { sponsor: 'bob' })).status, 400, 'humans have no sponsor')
})

t.test('chains rooted by a broker whose clock runs ahead are cut off by an offboarding, a reinstatement and a session cut-off made by one whose clock is behind', async (t) => {
  const { cutOffChains } = await import('../../src/broker/cut-off-chains.js')
  const b5 = await startTestBroker()
  t.teardown(b5.close)
  const c5 = await seedContractor(b5)
  // Brokers share the database but not a clock: this root is stamped by one 2 s ahead.
  b5.clock.advance(2000)
  const ahead = await rootToken(b5, c5)
  const kid = (await exchangeToken(b5, ahead, { actor: 'agent' })).body.access_token
  b5.clock.advance(-2000)
  t.equal((await b5.admin('POST', '/v1/principals/alice/offboard')).status, 200)
  t.notOk(await active(b5, kid))
  t.equal((await b5.admin('POST', '/v1/principals/alice/reinstate')).status, 200)
  t.equal((await b5.admin('PUT', '/v1/principals/ci-nightly/sponsor', { sponsor: 'alice' })).status, 200)
  t.notOk(await active(b5, ahead), 'a chain that began before the offboarding stays cut off after the reinstatement and the new assignment')
  t.notOk(await active(b5, kid))

  b5.clock.advance(4000)
  const later = await rootToken(b5, c5)
  t.ok(await active(b5, later))
  b5.clock.advance(-2000)
  await cutOffChains(b5.broker.ctx, 'alice', { reason: 'session revoked' })
  t.notOk(await active(b5, later), 'a session cut-off reaches it too')
})

t.test('a contract end date cuts off to the second with no job running', async (t) => {
  const b4 = await startTestBroker()
  t.teardown(b4.close)
  const endsAt = new Date(b4.clock.now() + 60_000)
  endsAt.setMilliseconds(0)
  await b4.admin('POST', '/v1/principals', { id: 'carol', kind: 'human', ends_at: endsAt.toISOString(), grants: ['api:read'] })
  await b4.admin('POST', '/v1/principals', { id: 'carol-ci', kind: 'service', sponsor: 'carol', grants: ['api:read'] })
  const c = (await b4.admin('POST', '/v1/principals/carol-ci/clients')).body
  const root = await rootToken(b4, { clientId: c.client_id, clientSecret: c.client_secret })
  b4.clock.advance(endsAt.getTime() - b4.clock.now() - 1)
  t.ok(await active(b4, root), 'one millisecond before the end')
  b4.clock.advance(1)
  t.notOk(await active(b4, root), 'at the end')
  const p = await b4.admin('GET', '/v1/principals/carol')
  t.equal(p.body.status, 'offboarded')
  const cc = await b4.form('/oauth/token', { grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret })
  t.equal(cc.status, 401)
})

t.test('a new sponsor, which cuts off the live chains the service holds, is recorded in the audit trail', async (t) => {
  const b6 = await startTestBroker()
  t.teardown(b6.close)
  const c6 = await seedContractor(b6)
  const live = await rootToken(b6, c6)
  await b6.admin('POST', '/v1/principals', { id: 'bob', kind: 'human', grants: ['db:read'] })
  t.equal((await b6.admin('PUT', '/v1/principals/ci-nightly/sponsor', { sponsor: 'bob' })).status, 200)
  t.notOk(await active(b6, live), 'the chain rooted under alice is cut off')
  const { events } = (await b6.admin('GET', '/v1/audit?principal=ci-nightly')).body
  t.match(events.filter((e: { kind: string }) => e.kind === 'principal.status'), [{ principals: ['ci-nightly'], detail: { status: 'cut_off', sponsor: 'bob', previous_sponsor: 'alice' } }])
  t.equal((await b6.admin('PUT', '/v1/principals/ci-nightly/sponsor', { sponsor: 'bob' })).status, 200)
  t.equal((await b6.admin('GET', '/v1/audit?principal=ci-nightly')).body.events.filter((e: { kind: string }) => e.kind === 'principal.status').length, 1, 'the same sponsor again changes nothing and records nothing')
})
