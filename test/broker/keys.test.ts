import t from 'tap'
import { adminToken, claimsOf, exchangeToken, rootToken, seedContractor, startTestBroker } from '../helpers/broker.js'
import { getJson } from '../helpers/http.js'

t.test('rotating keys publishes a new kid while tokens signed by the old one stay valid until they expire', async (t) => {
  const b = await startTestBroker({ rootTtl: 600 })
  t.teardown(b.close)
  const client = await seedContractor(b)
  const before = await rootToken(b, client)
  const oldKid = JSON.parse(Buffer.from(before.split('.')[0], 'base64url').toString()).kid

  const rotated = await b.admin('POST', '/v1/keys/rotate')
  t.equal(rotated.status, 201)
  t.not(rotated.body.kid, oldKid)
  const jwks = await getJson(`${b.url}/.well-known/jwks.json`)
  t.same(jwks.keys.map((k: { kid: string }) => k.kid).sort(), [oldKid, rotated.body.kid].sort())

  const after = await rootToken(b, client)
  t.equal(JSON.parse(Buffer.from(after.split('.')[0], 'base64url').toString()).kid, rotated.body.kid)
  const child = await exchangeToken(b, before, { actor: 'after-rotation' })
  t.equal(child.status, 200, 'a token signed by the retired key still exchanges')
  t.equal(JSON.parse(Buffer.from(child.body.access_token.split('.')[0], 'base64url').toString()).kid, rotated.body.kid)

  // Once every token the old key signed has expired, the old key is no longer published.
  b.clock.advance(601_000)
  await b.broker.ctx.reloadKeys()
  const later = await getJson(`${b.url}/.well-known/jwks.json`)
  t.same(later.keys.map((k: { kid: string }) => k.kid), [rotated.body.kid])
  const intro = await b.form('/oauth/introspect', { token: before }, { authorization: `Bearer ${adminToken}` })
  t.same(intro.body, { active: false })
  t.ok(claimsOf(after).exp > 0)
})

t.test('keys survive a restart on the same database', async (t) => {
  const b = await startTestBroker()
  t.teardown(b.close)
  const first = b.broker.ctx.keys().active.kid
  const { loadKeyRing } = await import('../../src/broker/keys.js')
  const again = await loadKeyRing(b.testDb.db, b.clock, 3600)
  t.equal(again.active.kid, first)
})
