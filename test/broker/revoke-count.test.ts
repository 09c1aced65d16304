import t from 'tap'
import { adminToken, claimsOf, exchangeToken, rootToken, seedContractor, startTestBroker } from '../helpers/broker.js'

// The `revoked` a revocation answers counts the live tokens it cut off: none that an earlier
// revocation of an ancestor, or of the token itself, had cut off already.

const b = await startTestBroker()
t.teardown(b.close)
const client = await seedContractor(b)

async function chain (depth: number): Promise<string[]> {
  const tokens = [await rootToken(b, client)]
  for (let i = 1; i <= depth; i++) tokens.push((await exchangeToken(b, tokens[i - 1], { actor: `agent-${i}` })).body.access_token)
  return tokens
}
const revoke = async (token: string): Promise<unknown> => (await b.admin('POST', `/v1/tokens/${claimsOf(token).jti}/revoke`, {})).body

t.test('a token revoked after its ancestor was counts none: its subtree was cut off already', async (t) => {
  const [root, one, two, three] = await chain(3)
  const beside = (await exchangeToken(b, root, { actor: 'beside' })).body.access_token
  t.same(await revoke(one), { revoked: 3 }, 'one, two and three')
  t.same(await revoke(two), { revoked: 0 }, 'two and three were dead')
  t.same(await revoke(three), { revoked: 0 })
  t.same(await revoke(root), { revoked: 2 }, 'root and beside: one\'s subtree was counted before')
  t.same(await revoke(beside), { revoked: 0 })
})

t.test('RFC 7009 revocation of a token whose ancestor was revoked, then an admin count below it: none', async (t) => {
  const [, one, two, three] = await chain(3)
  t.equal((await b.form('/oauth/revoke', { token: one }, { authorization: `Bearer ${adminToken}` })).status, 200)
  t.same(await revoke(two), { revoked: 0 })
  t.same(await revoke(three), { revoked: 0 })
})

t.test('a token revoked before its ancestor is counted once, by the first revocation', async (t) => {
  const [root, one, two] = await chain(2)
  t.same(await revoke(two), { revoked: 1 })
  t.same(await revoke(root), { revoked: 2 }, 'root and one')
  t.same(await revoke(one), { revoked: 0 })
})
