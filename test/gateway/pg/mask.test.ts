import { createHash, createHmac } from 'node:crypto'
import { inspect } from 'node:util'
import pg from 'pg'
import t from 'tap'
import { exchangeToken, rootToken, seedContractor, startTestBroker, type TestBroker } from '../../helpers/broker.js'
import { backends, createTestDatabase, databaseUrl, openTestDb } from '../../helpers/db.js'
import { startTestGateway } from '../../helpers/gateway.js'
import { loadMaskKey } from '../../../src/gateway/pg/mask-key.js'
import type { Queryable } from '../../../src/storage/db.js'

const keyHex = async (db: Queryable): Promise<string> =>
  (await db.query<{ value: string }>("SELECT value FROM settings WHERE key = 'mask_key'")).rows[0].value
const unkeyed = (value: string): string => createHash('sha256').update(value).digest('hex').slice(0, 16)
const keyed = (hex: string, value: string): string => createHmac('sha256', Buffer.from(hex, 'hex')).update(value).digest('hex').slice(0, 16)

for (const backend of backends) {
  t.test(`${backend}: each deployment gets its own 32-byte mask key when its database is migrated`, async (t) => {
    const one = await openTestDb(backend)
    t.teardown(one.close)
    const two = await openTestDb(backend)
    t.teardown(two.close)
    const a = await keyHex(one.db)
    t.match(a, /^[0-9a-f]{64}$/)
    t.not(a, await keyHex(two.db), 'another database, another key')
  })
}

t.test('the key is refused when missing or malformed, and the loaded key shows no key material', async (t) => {
  const d = await openTestDb('pglite')
  t.teardown(d.close)
  const hex = await keyHex(d.db)
  const key = await loadMaskKey(d.db)
  t.equal(key.symmetricKeySize, 32)
  t.notMatch(inspect(key, { showHidden: true, depth: 5 }), hex.slice(0, 16), 'not in what a log would print')
  t.equal(JSON.stringify({ key }), '{"key":{}}', 'nor in JSON')
  await d.db.query("UPDATE settings SET value = 'abc' WHERE key = 'mask_key'")
  await t.rejects(loadMaskKey(d.db), /mask_key is missing or not 64 hex digits/)
  await d.db.query("DELETE FROM settings WHERE key = 'mask_key'")
  await t.rejects(loadMaskKey(d.db), /mask_key is missing/)
})

if (databaseUrl === undefined) {
  t.comment('DATABASE_URL not set: the hash mask tests through the gateway (they need a real upstream) are skipped')
} else {
  const upstream = await createTestDatabase()
  const direct = new pg.Client({ connectionString: upstream.url })
  await direct.connect()
  t.teardown(async () => {
    await direct.end()
    await upstream.drop()
  })
  await direct.query(`CREATE TABLE customers (id int PRIMARY KEY, ssn text);
    INSERT INTO customers VALUES (1, '123-45-6789'), (2, NULL)`)

  /** A deployment (a broker on its own database) whose target `db` hashes customers.ssn, and a reader's token for it. */
  const deployment = async (): Promise<{ b: TestBroker, token: string }> => {
    const b = await startTestBroker()
    t.teardown(b.close)
    const client = await seedContractor(b, ['db:*'])
    const created = await b.admin('POST', '/v1/targets', {
      name: 'db', kind: 'postgres', upstream: upstream.url, policy: { rules: [{ effect: 'mask', columns: ['customers.ssn'], with: 'hash' }] }
    })
    if (created.status !== 201) throw new Error(JSON.stringify(created.body))
    const r = await exchangeToken(b, await rootToken(b, client), { actor: 'reader', scope: 'db:read' })
    if (r.status !== 200) throw new Error(JSON.stringify(r.body))
    return { b, token: r.body.access_token }
  }
  /** ssn of every customer, by id, read through a gateway of `b` (text, or binary results). */
  const ssns = async (b: TestBroker, token: string, binary = false): Promise<Array<string | null>> => {
    const gw = await startTestGateway(b)
    try {
      // node-postgres's `binary` option (missing from its types) asks for every result column in binary.
      const c = new pg.Client({ host: '127.0.0.1', port: gw.pgPort, user: 'agent', password: token, database: 'db', binary } as pg.ClientConfig)
      await c.connect()
      try {
        return (await c.query('SELECT ssn FROM customers ORDER BY id')).rows.map((r: { ssn: string | null }) => r.ssn)
      } finally {
        await c.end()
      }
    } finally {
      await gw.close()
    }
  }
  const a = await deployment()
  const other = await deployment()

  t.test('a hashed column is HMAC-SHA-256 under the deployment\'s key, not a digest anyone could compute from a guess', async (t) => {
    const [ssn, none] = await ssns(a.b, a.token)
    t.not(ssn, unkeyed('123-45-6789'), 'not the unkeyed SHA-256 a dictionary of SSNs would reverse')
    t.equal(ssn, keyed(await keyHex(a.b.testDb.db), '123-45-6789'), 'the HMAC under settings.mask_key, cut to 16 hex digits')
    t.equal(none, null, 'NULL stays NULL')
    t.same(await ssns(a.b, a.token, true), [ssn, null], 'binary results give the same digest')
  })

  t.test('every gateway of a deployment gives a value the same digest, and another deployment another', async (t) => {
    const first = await ssns(a.b, a.token)
    t.same(await ssns(a.b, a.token), first, 'a second gateway process on the same database')
    const theirs = await ssns(other.b, other.token)
    t.not(theirs[0], first[0], 'a deployment on another database')
    t.equal(theirs[0], keyed(await keyHex(other.b.testDb.db), '123-45-6789'))
  })
}
