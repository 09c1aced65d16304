import t from 'tap'
import { adminToken, claimsOf, exchangeToken, rootToken, seedContractor, startTestBroker } from '../helpers/broker.js'

const b = await startTestBroker()
t.teardown(b.close)
const client = await seedContractor(b)
const adminAuth = { authorization: `Bearer ${adminToken}` }

async function chain (depth: number): Promise<string[]> {
  const tokens = [await rootToken(b, client)]
  for (let i = 1; i <= depth; i++) tokens.push((await exchangeToken(b, tokens[i - 1], { actor: `agent-${i}` })).body.access_token)
  return tokens
}
const revoke = async (token: string, by: string): Promise<{ status: number, error?: string }> => {
  const r = await b.form('/oauth/revoke', { token }, { authorization: `Bearer ${by}` })
  return { status: r.status, ...(r.body?.error === undefined ? {} : { error: r.body.error }) }
}
const active = async (token: string): Promise<boolean> => (await b.form('/oauth/introspect', { token }, adminAuth)).body.active

t.test('a token revoking itself again, or after a cascade cut it off, is answered 200 (RFC 7009 §2.2: what it asks is already done)', async (t) => {
  const [root, one, two] = await chain(2)
  t.same(await revoke(two, two), { status: 200 }, 'the first time')
  t.same(await revoke(two, two), { status: 200 }, 'a retry, with the token it revoked')
  t.same(await revoke(one, root), { status: 200 }, 'an ancestor cuts the chain off')
  t.same(await revoke(one, one), { status: 200 }, 'the token the cascade ended revokes itself: nothing left to do')
  t.notOk(await active(one))
  t.ok(await active(root), 'nothing above it')
  const off = await chain(1)
  await b.admin('POST', '/v1/principals/alice/offboard')
  t.same(await revoke(off[1], off[1]), { status: 200 }, 'a token an offboarding cut off')
  t.same(await revoke(off[1], off[0]), { status: 200 }, 'and its ancestor, cut off too, asking for it')
  await b.admin('POST', '/v1/principals/alice/reinstate')
  await b.admin('PUT', '/v1/principals/ci-nightly/sponsor', { sponsor: 'alice' })
  b.clock.advance(5)
})

t.test('a dead token is still no caller for any other token', async (t) => {
  const [dead] = await chain(0)
  await b.admin('POST', `/v1/tokens/${claimsOf(dead).jti as string}/revoke`)
  const [, live] = await chain(1)
  t.same(await revoke(live, dead), { status: 401, error: 'invalid_token' }, 'not in its chain')
  t.ok(await active(live))
  t.same(await revoke(live, 'not-a-jwt'), { status: 401, error: 'invalid_token' }, 'a made-up bearer')
  const [, mine] = await chain(1)
  const forged = `${mine.slice(0, mine.lastIndexOf('.'))}.${'A'.repeat(86)}`
  t.same(await revoke(mine, forged), { status: 401, error: 'invalid_token' }, 'a bearer whose signature is not the broker\'s')
  t.ok(await active(mine))
})
