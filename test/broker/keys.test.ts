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

t.test('a key retired by a broker whose clock runs ahead of the database\'s stays published while the tokens it signed live', async (t) => {
  const b = await startTestBroker({ rootTtl: 600 })
  t.teardown(b.close)
  const client = await seedContractor(b)
  b.clock.advance(120_000)
  const before = await rootToken(b, client)
  t.equal((await b.admin('POST', '/v1/keys/rotate')).status, 201)
  // Ten seconds before the token expires, by the clock that issued it.
  b.clock.advance(590_000)
  await b.broker.ctx.reloadKeys()
  const child = await exchangeToken(b, before, { actor: 'late' })
  t.equal(child.status, 200, JSON.stringify(child.body))
  const oldKid = JSON.parse(Buffer.from(before.split('.')[0], 'base64url').toString()).kid
  t.ok((await getJson(`${b.url}/.well-known/jwks.json`)).keys.some((k: { kid: string }) => k.kid === oldKid), 'the old key is still published')
  t.ok(b.broker.ctx.keys().verifiers.has(oldKid), 'and still verifies what it signed')
})

t.test('keys survive a restart on the same database', async (t) => {
  const b = await startTestBroker()
  t.teardown(b.close)
  const first = b.broker.ctx.keys().active.kid
  const { loadKeyRing } = await import('../../src/broker/keys.js')
  const again = await loadKeyRing(b.testDb.db, b.clock, 3600)
  t.equal(again.active.kid, first)
})

t.test('rotations at once leave one active key, and a token too long for any verifier is not issued', async (t) => {
  const b = await startTestBroker()
  t.teardown(b.close)
  const rotations = await Promise.all([1, 2, 3, 4].map(async () => await b.admin('POST', '/v1/keys/rotate')))
  t.same(rotations.map((r) => r.status), [201, 201, 201, 201])
  const { rows } = await b.broker.ctx.db.query<{ n: number }>('SELECT count(*)::int AS n FROM signing_keys WHERE retired_at IS NULL')
  t.equal(rows[0].n, 1)
  // 600 grants make a root token of more than 16 KB.
  const grants = Array.from({ length: 600 }, (_, i) => `target${i}:read`)
  await b.admin('POST', '/v1/principals', { id: 'wide', kind: 'human', grants })
  await b.admin('POST', '/v1/principals', { id: 'wide-svc', kind: 'service', sponsor: 'wide', grants })
  const c = (await b.admin('POST', '/v1/principals/wide-svc/clients')).body
  const r = await b.form('/oauth/token', { grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret })
  t.equal(r.status, 400)
  t.equal(r.body.error, 'invalid_scope')
  t.match(r.body.error_description, /more than the 16384 a verifier accepts/)
  const narrow = await b.form('/oauth/token', { grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret, scope: 'target1:read' })
  t.equal(narrow.status, 200, 'a narrower one is')
})

t.test('a token signed with a key rotated in by another process a moment ago verifies at once', async (t) => {
  const { sign } = await import('node:crypto')
  const { loadKeyRing, rotateKeys } = await import('../../src/broker/keys.js')
  const { liveClaims } = await import('../../src/broker/live-token.js')
  const b = await startTestBroker()
  t.teardown(b.close)
  const root = await rootToken(b, await seedContractor(b))
  // Another process rotates and signs with the new key before this one has read it.
  const ctx = b.broker.ctx
  await rotateKeys(ctx.db, ctx.clock)
  const theirs = await loadKeyRing(ctx.db, ctx.clock, 3600)
  // Usually this process has not read the new key yet (the change may reach it first through NOTIFY).
  const input = `${theirs.active.header}.${root.split('.')[1]}`
  const token = `${input}.${sign(null, Buffer.from(input), theirs.active.privateKey).toString('base64url')}`
  t.equal((await liveClaims(ctx, token)).jti, claimsOf(root).jti)
  await t.rejects(liveClaims(ctx, `${'eyJhbGciOiJFZERTQSIsImtpZCI6Im5vcGUiLCJ0eXAiOiJhdCtqd3QifQ'}.${root.split('.')[1]}.${root.split('.')[2]}`), /unknown signing key nope/, 'a kid nobody made is still unknown')
})
