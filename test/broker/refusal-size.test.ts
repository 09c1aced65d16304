import t from 'tap'
import { exchangeToken, rootToken, seedContractor, startTestBroker } from '../helpers/broker.js'

const b = await startTestBroker()
t.teardown(b.close)
const client = await seedContractor(b)

/** The detail of the newest audit records, as stored. */
async function newestRecords (n: number): Promise<Array<{ kind: string, size: number }>> {
  await b.broker.ctx.audit.flush()
  const { rows } = await b.testDb.db.query<{ kind: string, size: number }>('SELECT kind, length(detail::text) AS size FROM audit ORDER BY seq DESC LIMIT $1', [n])
  return rows
}

t.test('a refused token request echoes and records a bounded part of what it asked for, however much the form held', async (t) => {
  const root = await rootToken(b, client)
  const long = `api:${'r'.repeat(200_000)}`
  const many = Array.from({ length: 60 }, (_, i) => `zz${i}:read`).join(' ')
  const cases: Array<[string, Record<string, string | string[]>]> = [
    ['one malformed 200 KB scope', { scope: long }],
    ['many scopes not held', { scope: `${many} ${'zz:read '.repeat(20_000).trim()}` }],
    ['60 audiences of 4 KB', { audience: Array.from({ length: 60 }, (_, i) => `t${i}${'x'.repeat(4000)}`) }],
    ['60 resources of 4 KB', { resource: Array.from({ length: 60 }, (_, i) => `https://gw/t${i}${'x'.repeat(4000)}`) }]
  ]
  for (const [name, fields] of cases) {
    const exchanged = await exchangeToken(b, root, fields)
    t.equal(exchanged.status, 400, name)
    t.ok(exchanged.body.error_description.length <= 2000, `${name}: the exchange's error_description is ${exchanged.body.error_description.length as number} characters`)
    const issued = await b.form('/oauth/token', { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret, ...fields })
    t.equal(issued.status, 400, name)
    t.ok(issued.body.error_description.length <= 2000, `${name}: client_credentials' error_description is ${issued.body.error_description.length as number} characters`)
    for (const r of await newestRecords(2)) {
      t.equal(r.kind, 'token.refused', name)
      t.ok(r.size <= 16_384, `${name}: the refusal is recorded in ${r.size} characters`)
    }
  }
})

t.test('a refusal still names what was refused', async (t) => {
  const root = await rootToken(b, client)
  const r = await exchangeToken(b, root, { scope: 'db:read nope:read' })
  t.equal(r.body.error, 'invalid_scope')
  t.match(r.body.error_description, 'nope:read')
  const bad = await exchangeToken(b, root, { scope: 'db:fly' })
  t.match(bad.body.error_description, '"db:fly" names unknown action "fly"')
  await b.broker.ctx.audit.flush()
  const { rows } = await b.testDb.db.query<{ detail: { scope: string, reason: string } }>("SELECT detail FROM audit WHERE kind = 'token.refused' ORDER BY seq DESC LIMIT 2")
  t.same(rows.map((x) => x.detail.scope), ['db:fly', 'db:read nope:read'], 'a short request is recorded whole')
})
