import { createHmac } from 'node:crypto'
import t from 'tap'
import { SignJWT, generateKeyPair, importPKCS8, type CryptoKey } from 'jose'
import { claimsOf, exchangeToken, rootToken, seedContractor, startTestBroker } from '../helpers/broker.js'
import { getJson } from '../helpers/http.js'

const b = await startTestBroker()
t.teardown(b.close)
const client = await seedContractor(b)
const good = await rootToken(b, client)
const goodClaims = claimsOf(good)
const goodHeader = JSON.parse(Buffer.from(good.split('.')[0], 'base64url').toString())

// The test plays an insider who holds the broker's real private key, to show that claims
// which the signature covers are still checked.
const { rows } = await b.testDb.db.query<{ private_pkcs8: string, kid: string }>('SELECT kid, private_pkcs8 FROM signing_keys')
const realKey: CryptoKey = await importPKCS8(rows[0].private_pkcs8, 'EdDSA')
const now = Math.floor(b.clock.now() / 1000)

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
async function signed (claims: Record<string, unknown>, key: CryptoKey = realKey, kid = goodHeader.kid): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid }).sign(key)
}
function nestedAct (levels: number): unknown {
  let act: Record<string, unknown> = { sub: 'a' }
  for (let i = 1; i < levels; i++) act = { sub: 'a', act }
  return act
}

const jwks = await getJson(`${b.url}/.well-known/jwks.json`)
const publicX = Buffer.from(JSON.stringify(jwks.keys[0]))
const hmacHeader = b64({ alg: 'HS256', typ: 'at+jwt', kid: goodHeader.kid })
const hmacBody = b64(goodClaims)
const stranger = (await generateKeyPair('EdDSA', { crv: 'Ed25519' })).privateKey
const [h, p, s] = good.split('.')

const hostile: Record<string, () => Promise<string>> = {
  'alg none': async () => `${b64({ alg: 'none', typ: 'at+jwt', kid: goodHeader.kid })}.${p}.`,
  'an HMAC token signed with the public key': async () => `${hmacHeader}.${hmacBody}.${createHmac('sha256', publicX).update(`${hmacHeader}.${hmacBody}`).digest('base64url')}`,
  'an unknown kid': async () => await signed(goodClaims, stranger, 'no-such-key'),
  'a stranger key claiming our kid': async () => await signed(goodClaims, stranger),
  'another issuer': async () => await signed({ ...goodClaims, iss: 'https://evil.example' }),
  expired: async () => await signed({ ...goodClaims, exp: now - 60, iat: now - 120 }),
  'nbf in the future': async () => await signed({ ...goodClaims, nbf: now + 600 }),
  'a tampered payload': async () => `${h}.${b64({ ...goodClaims, scope: 'api:* db:* ssh:*' })}.${s}`,
  'a forged lineage claim (unsigned change)': async () => `${h}.${b64({ ...goodClaims, lineage: { ...goodClaims.lineage, principals: ['bob', 'ci-nightly'] } })}.${s}`,
  'a lineage whose chain disagrees with its depth': async () => await signed({ ...goodClaims, lineage: { ...goodClaims.lineage, depth: 2 } }),
  'a lineage whose last principal is not the sub': async () => await signed({ ...goodClaims, lineage: { ...goodClaims.lineage, principals: ['alice'] } }),
  'actor_tokens that are not a list of ids (signed)': async () => await signed({ ...goodClaims, lineage: { ...goodClaims.lineage, actor_tokens: [42] } }),
  'an empty actor_tokens (signed)': async () => await signed({ ...goodClaims, lineage: { ...goodClaims.lineage, actor_tokens: [] } }),
  'more actor_tokens than a chain may list (signed)': async () => await signed({ ...goodClaims, lineage: { ...goodClaims.lineage, actor_tokens: Array.from({ length: 33 }, (_, i) => `t-${i}`) } }),
  'a 64 KB token': async () => `${h}.${b64({ ...goodClaims, pad: 'x'.repeat(64 * 1024) })}.${s}`,
  'a deeply nested act (signed)': async () => await signed({ ...goodClaims, act: nestedAct(600) }),
  'a deeply nested act (oversized)': async () => `${h}.${b64(JSON.stringify({ ...goodClaims, act: null }).replace('"act":null', '"act":' + '{"sub":"a","act":'.repeat(5_000) + '{"sub":"a"}' + '}'.repeat(5_000)))}.${s}`,
  'an exp that is not whole seconds (signed)': async () => await signed({ ...goodClaims, exp: goodClaims.exp + 0.5 }),
  'an exp past any date (signed)': async () => await signed({ ...goodClaims, exp: 1e300 }),
  'a rooted_at that is not whole milliseconds (signed)': async () => await signed({ ...goodClaims, lineage: { ...goodClaims.lineage, rooted_at: goodClaims.lineage.rooted_at + 0.5 } }),
  'a jti holding NUL (signed)': async () => await signed({ ...goodClaims, jti: 'a\u0000b' }),
  'no client_id (signed)': async () => await signed({ ...goodClaims, client_id: undefined }),
  'an empty aud (signed)': async () => await signed({ ...goodClaims, aud: [] }),
  'a may_act that is not an object (signed)': async () => await signed({ ...goodClaims, may_act: null }),
  'a may_act naming no one (signed)': async () => await signed({ ...goodClaims, may_act: { sub: 42 } }),
  'a typ other than at+jwt': async () => await new SignJWT(goodClaims).setProtectedHeader({ alg: 'EdDSA', kid: goodHeader.kid, typ: 'JWT' }).sign(realKey),
  'garbage': async () => 'not-a-token',
  'three dots of nothing': async () => '..',
  'binary junk': async () => Buffer.from([0xff, 0xfe, 0x00, 0x41]).toString('latin1')
}

t.test('hostile subject tokens are invalid_request, never a 500, and the server keeps serving', async (t) => {
  for (const [name, make] of Object.entries(hostile)) {
    const token = await make()
    // A legitimate exchange runs alongside every hostile one.
    const [bad, ok] = await Promise.all([exchangeToken(b, token), exchangeToken(b, good, { actor: 'bystander' })])
    t.equal(bad.status, 400, `${name}: status`)
    t.equal(bad.body.error, 'invalid_request', `${name}: error`)
    t.match(bad.body.error_description, /^subject_token: /, `${name}: says which token`)
    t.equal(ok.status, 200, `${name}: a legitimate exchange still works`)
  }
})

t.test('a subject token whose may_act is malformed is invalid_request with an actor token too, never a 500', async (t) => {
  for (const name of ['a may_act that is not an object (signed)', 'a may_act naming no one (signed)']) {
    const r = await exchangeToken(b, await hostile[name](), { actor_token: good, actor_token_type: 'urn:ietf:params:oauth:token-type:access_token' })
    t.equal(r.status, 400, name)
    t.match(r.body, { error: 'invalid_request', error_description: /^subject_token: .*may_act/ }, name)
  }
})

t.test('each hostile token is told apart by its description', async (t) => {
  const why = async (name: string): Promise<string> => (await exchangeToken(b, await hostile[name]())).body.error_description
  t.match(await why('alg none'), /algorithm not allowed/)
  t.match(await why('an HMAC token signed with the public key'), /algorithm not allowed/)
  t.match(await why('an unknown kid'), /unknown signing key/)
  t.match(await why('a stranger key claiming our kid'), /signature verification failed/)
  t.match(await why('another issuer'), /"iss"/)
  t.match(await why('expired'), /expired/)
  t.match(await why('nbf in the future'), /not yet valid/)
  t.match(await why('a tampered payload'), /signature verification failed/)
  t.match(await why('a lineage whose chain disagrees with its depth'), /lineage/)
  t.match(await why('a 64 KB token'), /longer than/)
  t.match(await why('a deeply nested act (signed)'), /act does not match/)
})

t.test('revoking a hostile token is a 200 with nothing done, never a 500', async (t) => {
  for (const [name, make] of Object.entries(hostile)) {
    const r = await b.form('/oauth/revoke', { token: await make() }, { authorization: 'Bearer ladm_test-admin-token-0123456789' })
    t.equal(r.status, 200, name)
  }
  t.equal((await exchangeToken(b, good)).status, 200, 'the genuine token was not revoked')
})

t.test('introspection answers hostile tokens with active:false and nothing else', async (t) => {
  for (const [name, make] of Object.entries(hostile)) {
    const r = await b.form('/oauth/introspect', { token: await make() }, { authorization: 'Bearer ladm_test-admin-token-0123456789' })
    t.equal(r.status, 200, name)
    t.same(r.body, { active: false }, name)
  }
})
