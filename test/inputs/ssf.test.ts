import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose'
import { adminToken, rootToken, seedContractor, startTestBroker } from '../helpers/broker.js'

const b = await startTestBroker()
const client = await seedContractor(b)
const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
const stranger = (await generateKeyPair('ES256')).privateKey
const jwk = { ...(await exportJWK(publicKey)), kid: 'idp-1', alg: 'ES256' }
// A transmitter that publishes its keys at a URL, served on loopback.
const remote = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
const jwksServer = createServer(async (_req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ keys: [{ ...(await exportJWK(remote.publicKey)), kid: 'r1', alg: 'EdDSA' }] })) })
await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve))
t.teardown(async () => { jwksServer.close(); await b.close() })

const issuer = 'https://idp.example.com'
const audience = 'https://lineage.example.com/ssf'
const pushAuth = 'Bearer push-secret-from-the-idp-0001'
const tx = await b.admin('POST', '/v1/transmitters', { issuer, audience, jwks: { keys: [jwk] }, authorization: pushAuth })
await b.admin('POST', '/v1/transmitters', { issuer: 'https://remote.example.com', audience, jwks_uri: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks` })
const risc = 'https://schemas.openid.net/secevent/risc/event-type/'
const caep = 'https://schemas.openid.net/secevent/caep/event-type/'
let n = 0

async function set (claims: Record<string, unknown>, opts: { key?: CryptoKey, kid?: string, typ?: string, alg?: string } = {}): Promise<string> {
  return await new SignJWT({ iss: issuer, aud: audience, iat: Math.floor(b.clock.now() / 1000), jti: `set-${++n}`, ...claims })
    .setProtectedHeader({ alg: opts.alg ?? 'ES256', kid: opts.kid ?? 'idp-1', typ: opts.typ ?? 'secevent+jwt' })
    .sign(opts.key ?? privateKey)
}
async function push (token: string, auth: string | null = pushAuth): Promise<{ status: number, body: any }> {
  const r = await fetch(`${b.url}/ssf/events`, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt', ...(auth === null ? {} : { authorization: auth }) }, body: token })
  const text = await r.text()
  return { status: r.status, body: text === '' ? undefined : JSON.parse(text) }
}
const active = async (token: string): Promise<boolean> => (await b.form('/oauth/introspect', { token }, { authorization: `Bearer ${adminToken}` })).body.active
const status = async (id: string): Promise<string> => (await b.admin('GET', `/v1/principals/${id}`)).body.status

t.test('transmitters are configured through the admin API; the push secret is never shown', async (t) => {
  t.equal(tx.status, 201)
  t.match(tx.body, { id: /^tx_/, issuer, audience, authorization: true })
  t.notMatch(JSON.stringify(tx.body), 'push-secret')
  t.equal((await b.admin('GET', `/v1/transmitters/${tx.body.id as string}`)).status, 200)
  t.equal((await b.admin('POST', '/v1/transmitters', { issuer, audience, jwks: { keys: [jwk] } })).status, 409)
  t.equal((await b.admin('POST', '/v1/transmitters', { issuer: 'x', audience })).status, 400, 'keys are required')
  t.equal((await b.admin('POST', '/v1/transmitters', { issuer: 'y', audience, jwks: { keys: [{ ...jwk, d: 'secret' }] } })).status, 400, 'no private keys')
  // SETs are verified with asymmetric algorithms only: a shared secret would verify nothing, and GET would show it back.
  t.equal((await b.admin('POST', '/v1/transmitters', { issuer: 'z', audience, jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0LXNoYXJlZC13aXRoLXRoZS1pZHA', kid: 'hs' }] } })).status, 400, 'no symmetric keys')
  t.equal((await b.admin('POST', '/v1/transmitters', { issuer: 'y', audience, jwks: { keys: [{ ...jwk, k: 'c2hhcmVkLXNlY3JldC0wMTIzNDU2Nzg5' }] } })).status, 400, 'no shared secret beside a public key, which every GET would show')
  t.equal((await b.admin('GET', '/v1/transmitters/tx_nope')).status, 404)
})

t.test('the SSF verification event is accepted and changes nothing', async (t) => {
  const r = await push(await set({ events: { 'https://schemas.openid.net/secevent/ssf/event-type/verification': { state: 'abc' } } }))
  t.same(r, { status: 202, body: undefined })
})

t.test('the SSF stream-updated event (OpenID SSF 1.0: the transmitter paused, disabled or enabled its stream) is accepted and changes nothing', async (t) => {
  const before = await rootToken(b, client)
  for (const status of ['paused', 'disabled', 'enabled']) {
    const r = await push(await set({ sub_id: { format: 'opaque', id: 'stream-1' }, events: { 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated': { status, reason: 'maintenance' } } }))
    t.same(r, { status: 202, body: undefined }, status)
  }
  t.ok(await active(before))
  t.equal(await status('alice'), 'active')
})

t.test('CAEP session-revoked cuts off live chains without offboarding; a repeated jti acts once', async (t) => {
  const before = await rootToken(b, client)
  const token = await set({ events: { [`${caep}session-revoked`]: { subject: { format: 'email', email: 'alice@example.com' }, event_timestamp: 1 } } })
  t.equal((await push(token)).status, 202)
  t.notOk(await active(before))
  t.equal(await status('alice'), 'active')
  b.clock.advance(5)
  const after = await rootToken(b, client)
  t.ok(await active(after), 'new tokens may follow')
  t.equal((await push(token)).status, 202, 'the retry is accepted')
  t.ok(await active(after), 'and acted on once')
})

t.test('RISC credential-compromise cuts off the subject\'s live chains without offboarding, as credential-change does', async (t) => {
  await b.admin('POST', '/v1/principals/alice/reinstate')
  b.clock.advance(5)
  const before = await rootToken(b, client)
  t.ok(await active(before))
  const r = await push(await set({ sub_id: { format: 'email', email: 'alice@example.com' }, events: { [`${risc}credential-compromise`]: { credential_type: 'password', reason_admin: { en: 'found in a breach corpus' } } } }))
  t.same(r, { status: 202, body: undefined })
  t.notOk(await active(before), 'tokens minted while the credential was exposed are cut off')
  t.equal(await status('alice'), 'active', 'the account itself stays')
  b.clock.advance(5)
  t.ok(await active(await rootToken(b, client)), 'new tokens may follow')
})

t.test('RISC account-disabled offboards the subject, named by iss_sub or opaque too', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'dora', kind: 'human', email: 'dora@example.com' })
  await b.admin('POST', '/v1/principals', { id: 'eve', kind: 'human' })
  t.equal((await push(await set({ sub_id: { format: 'iss_sub', iss: issuer, sub: 'dora@example.com' }, events: { [`${risc}account-disabled`]: {} } }))).status, 202)
  t.equal(await status('dora'), 'offboarded')
  const viaRemote = await new SignJWT({ iss: 'https://remote.example.com', aud: audience, iat: Math.floor(b.clock.now() / 1000), jti: 'r-1', sub_id: { format: 'opaque', id: 'eve' }, events: { [`${risc}account-purged`]: {} } })
    .setProtectedHeader({ alg: 'EdDSA', kid: 'r1', typ: 'secevent+jwt' }).sign(remote.privateKey)
  t.equal((await push(viaRemote, null)).status, 202, 'keys fetched from the transmitter\'s jwks_uri')
  t.equal(await status('eve'), 'offboarded')
  // An iss_sub from another issuer's namespace, and an email subject that is only someone's id: nobody.
  await b.admin('POST', '/v1/principals', { id: 'gil', kind: 'human' })
  const foreign = await push(await set({ sub_id: { format: 'iss_sub', iss: 'https://other-idp.example', sub: 'gil' }, events: { [`${risc}account-disabled`]: {} } }))
  t.same([foreign.status, foreign.body.err], [400, 'invalid_request'])
  const byId = await push(await set({ sub_id: { format: 'email', email: 'gil' }, events: { [`${risc}account-disabled`]: {} } }))
  t.same([byId.status, byId.body.err], [400, 'invalid_request'])
  t.equal(await status('gil'), 'active')
})

t.test('a complex subject (OpenID SSF, as CAEP\'s session-revoked examples send it) names the principal by its user member', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'ivy', kind: 'human', email: 'ivy@example.com', grants: ['api:read'] })
  await b.admin('POST', '/v1/principals', { id: 'svc-ivy', kind: 'service', sponsor: 'ivy', grants: ['api:read'] })
  const c = await b.admin('POST', '/v1/principals/svc-ivy/clients')
  const token = await rootToken(b, { clientId: c.body.client_id, clientSecret: c.body.client_secret })
  t.ok(await active(token))
  const revoked = await push(await set({
    sub_id: { format: 'complex', user: { format: 'iss_sub', iss: issuer, sub: 'ivy@example.com' }, session: { format: 'opaque', id: 'dMTlD|1600802906337.16' }, tenant: { format: 'opaque', id: '123456789' } },
    events: { [`${caep}session-revoked`]: { event_timestamp: 1615304991643 } }
  }))
  t.same(revoked, { status: 202, body: undefined }, 'session-revoked with a complex subject')
  t.notOk(await active(token), 'the user\'s live chains are cut off')
  t.equal(await status('ivy'), 'active')
  const disabled = await push(await set({ events: { [`${risc}account-disabled`]: { subject: { format: 'complex', user: { format: 'email', email: 'IVY@example.com' }, device: { format: 'opaque', id: 'laptop-1' } } } } }))
  t.same(disabled, { status: 202, body: undefined }, 'account-disabled with a complex subject')
  t.equal(await status('ivy'), 'offboarded')
  // A complex subject with no user, or a user that is itself complex, names nobody.
  for (const [name, sub] of [['no user', { format: 'complex', session: { format: 'opaque', id: 's-1' } }], ['a nested complex user', { format: 'complex', user: { format: 'complex', user: { format: 'email', email: 'alice@example.com' } } }]] as const) {
    const r = await push(await set({ sub_id: sub, events: { [`${risc}account-disabled`]: {} } }))
    t.same([r.status, r.body.err], [400, 'invalid_request'], name)
  }
  t.equal(await status('alice'), 'active')
})

t.test('an aliases subject (RFC 9493: one subject under several identifiers) names the principal its understood identifiers name, and nobody when they name two', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'jon', kind: 'human', email: 'jon@example.com' })
  await b.admin('POST', '/v1/principals', { id: 'kay', kind: 'human', email: 'kay@example.com' })
  const two = await push(await set({ sub_id: { format: 'aliases', identifiers: [{ format: 'email', email: 'jon@example.com' }, { format: 'opaque', id: 'kay' }] }, events: { [`${risc}account-disabled`]: {} } }))
  t.same([two.status, two.body.err], [400, 'invalid_request'], 'aliases naming two principals')
  t.match(two.body.description, /different principals/)
  for (const [name, ids] of [['none understood', [{ format: 'phone_number', phone_number: '+12065550100' }]], ['none at all', []], ['not a list', { format: 'email', email: 'jon@example.com' }]] as const) {
    const r = await push(await set({ sub_id: { format: 'aliases', identifiers: ids }, events: { [`${risc}account-disabled`]: {} } }))
    t.same([r.status, r.body.err], [400, 'invalid_request'], name)
  }
  t.equal(await status('jon'), 'active')
  t.equal(await status('kay'), 'active')
  const r = await push(await set({
    sub_id: { format: 'aliases', identifiers: [{ format: 'phone_number', phone_number: '+12065550100' }, { format: 'iss_sub', iss: 'https://elsewhere.example', sub: 'kay' }, { format: 'email', email: 'Jon@Example.com' }, { format: 'iss_sub', iss: issuer, sub: 'jon' }] },
    events: { [`${risc}account-disabled`]: {} }
  }))
  t.same(r, { status: 202, body: undefined })
  t.equal(await status('jon'), 'offboarded', 'the principal its email and iss_sub name')
  t.equal(await status('kay'), 'active', 'not the one another namespace\'s iss_sub would have named')
})

t.test('a transmitter whose clock runs ahead is given the same 300 s for nbf as for iat: its SET acts, not 400 and lost', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'nia', kind: 'human', email: 'nia@example.com' })
  const ahead = Math.floor(b.clock.now() / 1000) + 60
  const r = await push(await set({ iat: ahead, nbf: ahead, sub_id: { format: 'email', email: 'nia@example.com' }, events: { [`${risc}account-disabled`]: {} } }))
  t.same(r, { status: 202, body: undefined })
  t.equal(await status('nia'), 'offboarded')
  const far = Math.floor(b.clock.now() / 1000) + 3600
  const late = await push(await set({ iat: far - 3300, nbf: far, sub_id: { format: 'email', email: 'nia@example.com' }, events: { [`${risc}account-purged`]: {} } }))
  t.same([late.status, late.body.err], [400, 'invalid_request'], 'an nbf an hour ahead is refused')
})

t.test('a transmitter whose keys cannot be fetched gets 503, so it pushes again', async (t) => {
  const down = createServer((_req, res) => { res.statusCode = 503; res.end() })
  await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { down.close() })
  const iss = 'https://flaky.example.com'
  const made = await b.admin('POST', '/v1/transmitters', { issuer: iss, audience, jwks_uri: `http://127.0.0.1:${(down.address() as AddressInfo).port}/jwks` })
  t.equal(made.status, 201)
  await b.admin('POST', '/v1/principals', { id: 'hal', kind: 'human', email: 'hal@example.com' })
  const token = await new SignJWT({ iss, aud: audience, iat: Math.floor(b.clock.now() / 1000), jti: 'f-1', sub_id: { format: 'email', email: 'hal@example.com' }, events: { [`${risc}account-disabled`]: {} } })
    .setProtectedHeader({ alg: 'EdDSA', kid: 'r1', typ: 'secevent+jwt' }).sign(remote.privateKey)
  const r = await fetch(`${b.url}/ssf/events`, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt' }, body: token })
  t.equal(r.status, 503)
  t.equal(r.headers.get('retry-after'), '30')
  t.equal(await status('hal'), 'active')
  // A key server that answers with 64 MB is not read past 64 KiB, with a length or without.
  let sent = 0
  const huge = createServer((req, res) => {
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    if (req.url === '/sized') res.setHeader('content-length', String(1024 * chunk.length))
    const more = (): void => {
      while (sent < 1024 * chunk.length) { sent += chunk.length; if (!res.write(chunk)) { res.once('drain', more); return } }
      res.end()
    }
    res.on('close', () => {})
    more()
  })
  await new Promise<void>((resolve) => huge.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { huge.closeAllConnections(); huge.close() })
  for (const path of ['/sized', '/streamed']) {
    const big = `https://big${path.slice(1)}.example.com`
    t.equal((await b.admin('POST', '/v1/transmitters', { issuer: big, audience, jwks_uri: `http://127.0.0.1:${(huge.address() as AddressInfo).port}${path}` })).status, 201)
    const set2 = await new SignJWT({ iss: big, aud: audience, iat: Math.floor(b.clock.now() / 1000), jti: `h-${path}`, sub_id: { format: 'email', email: 'hal@example.com' }, events: { [`${risc}account-disabled`]: {} } })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'r1', typ: 'secevent+jwt' }).sign(remote.privateKey)
    const answered = await fetch(`${b.url}/ssf/events`, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt' }, body: set2 })
    t.equal(answered.status, 503, path)
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.ok(sent < 32 * 1024 * 1024, `${path}: ${Math.round(sent / 1e6)} MB of a 64 MB answer were taken`)
    sent = 0
  }
  t.equal(await status('hal'), 'active')
})

t.test('a SET signed with a key the transmitter rotated to within seconds of the last key fetch gets 503, so it is pushed again, not dropped', async (t) => {
  const old = await generateKeyPair('ES256', { extractable: true })
  const next = await generateKeyPair('ES256', { extractable: true })
  let served = [{ ...(await exportJWK(old.publicKey)), kid: 'old', alg: 'ES256' }]
  const rotating = createServer((_req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ keys: served })) })
  await new Promise<void>((resolve) => rotating.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { rotating.close() })
  const iss = 'https://rotating.example.com'
  t.equal((await b.admin('POST', '/v1/transmitters', { issuer: iss, audience, jwks_uri: `http://127.0.0.1:${(rotating.address() as AddressInfo).port}/jwks` })).status, 201)
  await b.admin('POST', '/v1/principals', { id: 'jan', kind: 'human', email: 'jan@example.com' })
  await b.admin('POST', '/v1/principals', { id: 'kim', kind: 'human', email: 'kim@example.com' })
  const signed = async (jti: string, email: string, kid: string, key: CryptoKey): Promise<string> => await new SignJWT({ iss, aud: audience, iat: Math.floor(b.clock.now() / 1000), jti, sub_id: { format: 'email', email }, events: { [`${risc}account-disabled`]: {} } })
    .setProtectedHeader({ alg: 'ES256', kid, typ: 'secevent+jwt' }).sign(key)
  t.equal((await push(await signed('rot-1', 'jan@example.com', 'old', old.privateKey), null)).status, 202, 'the old key, fetched now')
  t.equal(await status('jan'), 'offboarded')
  // The transmitter rotates and signs its next event with the new key at once.
  served = [{ ...(await exportJWK(next.publicKey)), kid: 'new', alg: 'ES256' }]
  const rotated = await fetch(`${b.url}/ssf/events`, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt' }, body: await signed('rot-2', 'kim@example.com', 'new', next.privateKey) })
  t.equal(rotated.status, 503, 'not 400, which tells the transmitter never to push it again')
  t.equal(rotated.headers.get('retry-after'), '30')
  t.match(await rotated.json(), { err: 'temporarily_unavailable' })
  t.equal(await status('kim'), 'active')
  // A key the set holds that does not verify the signature is a verdict, refresh or not.
  const forged = await push(await signed('rot-3', 'kim@example.com', 'old', stranger), null)
  t.same([forged.status, forged.body.err], [400, 'invalid_key'])
  t.equal(await status('kim'), 'active')
})

t.test('bad SETs get RFC 8935 errors and change nothing', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'fred', kind: 'human', email: 'fred@example.com' })
  const ev = { [`${risc}account-disabled`]: { subject: { format: 'email', email: 'fred@example.com' } } }
  const cases: Array<[string, Promise<string> | string, string | null, string]> = [
    ['unsigned garbage', 'not-a-jwt', pushAuth, 'invalid_request'],
    ['unknown issuer', set({ iss: 'https://evil.example', events: ev }), pushAuth, 'invalid_issuer'],
    ['missing push authorization', set({ events: ev }), null, 'authentication_failed'],
    ['wrong push authorization', set({ events: ev }), 'Bearer nope-nope-nope-nope', 'authentication_failed'],
    ['wrong signature', set({ events: ev }, { key: stranger }), pushAuth, 'invalid_key'],
    ['wrong audience', set({ aud: 'https://other.example', events: ev }), pushAuth, 'invalid_audience'],
    ['wrong typ', set({ events: ev }, { typ: 'JWT' }), pushAuth, 'invalid_request'],
    ['sub present', set({ sub: 'fred', events: ev }), pushAuth, 'invalid_request'],
    ['exp present', set({ exp: Math.floor(b.clock.now() / 1000) + 60, events: ev }), pushAuth, 'invalid_request'],
    ['iat in the future', set({ iat: Math.floor(b.clock.now() / 1000) + 3600, events: ev }), pushAuth, 'invalid_request'],
    ['two events', set({ events: { ...ev, [`${caep}session-revoked`]: {} } }), pushAuth, 'invalid_request'],
    ['unknown event', set({ events: { 'https://example.com/odd': { subject: { format: 'email', email: 'fred@example.com' } } } }), pushAuth, 'invalid_request'],
    ['event named __proto__', set({ events: { ['__proto__']: { subject: { format: 'email', email: 'fred@example.com' } } } }), pushAuth, 'invalid_request'],
    ['event named constructor', set({ events: { constructor: { subject: { format: 'email', email: 'fred@example.com' } } } }), pushAuth, 'invalid_request'],
    ['unknown user', set({ events: { [`${risc}account-disabled`]: { subject: { format: 'email', email: 'ghost@example.com' } } } }), pushAuth, 'invalid_request'],
    ['bad subject format', set({ events: { [`${risc}account-disabled`]: { subject: { format: 'phone_number', phone_number: '+1' } } } }), pushAuth, 'invalid_request'],
    ['oversized', 'x'.repeat(70_000), pushAuth, 'invalid_request'],
    ['a subject with a NUL', set({ events: { [`${risc}account-disabled`]: { subject: { format: 'email', email: 'fred\u0000@example.com' } } } }), pushAuth, 'invalid_request']
  ]
  for (const [name, token, auth, err] of cases) {
    const r = await push(await token, auth)
    t.equal(r.status, 400, name)
    t.equal(r.body.err, err, name)
    t.type(r.body.description, 'string', name)
  }
  const nul = await push(await set({ events: { [`${risc}account-disabled`]: { subject: { format: 'email', email: 'fred\u0000@example.com' } } } }))
  t.match(nul.body.description, /NUL/, 'the reason, not a parse failure')
  t.equal(await status('fred'), 'active')
  t.equal((await b.admin('DELETE', `/v1/transmitters/${tx.body.id as string}`)).status, 204)
  t.equal((await push(await set({ events: ev }))).body.err, 'invalid_issuer', 'a deleted transmitter is unknown')
})
