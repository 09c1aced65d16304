import pg from 'pg'
import type { Test } from 'tap'
import { exchangeToken, rootToken, seedContractor, startTestBroker, type TestBroker } from './broker.js'
import { createTestDatabase } from './db.js'
import { startTestGateway, type TestGatewayOptions } from './gateway.js'

export interface PgTarget {
  b: TestBroker
  gw: Awaited<ReturnType<typeof startTestGateway>>
  upstream: { url: string, drop: () => Promise<void> }
  /** A client straight to the upstream database, for setting it up and reading what agents left. */
  direct: pg.Client
  /** The contractor's client (holding `db:*`) and its root token. */
  client: Awaited<ReturnType<typeof seedContractor>>
  root: string
  /** A child of the contractor's root token (or of `from`), with `actor` and `scope`. */
  token: (actor: string, scope: string, from?: string) => Promise<string>
}

/**
 * A broker and a gateway beside a fresh upstream database holding `customers` (two rows with
 * emails and SSNs) and `orders`, plus `tables` (SQL), and the postgres target `db` on it with
 * the policy `rules`; a contractor holding `db:*`. Everything is closed when `t` ends.
 */
export async function startPgTarget (t: Test, opts: { rules: unknown[], tables?: string, gateway?: TestGatewayOptions }): Promise<PgTarget> {
  const b = await startTestBroker()
  const gw = await startTestGateway(b, opts.gateway)
  const upstream = await createTestDatabase()
  const direct = new pg.Client({ connectionString: upstream.url })
  await direct.connect()
  t.teardown(async () => {
    await direct.end()
    await gw.close()
    await b.close()
    await upstream.drop()
  })
  await direct.query(`CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text);
    INSERT INTO customers VALUES (1, 'Ann', 'ann@example.com', '123-45-6789'), (2, 'Bob', 'bob@example.org', NULL);
    CREATE TABLE orders (id int PRIMARY KEY, item text);
    ${opts.tables ?? ''}`)
  const client = await seedContractor(b, ['db:*'])
  const created = await b.admin('POST', '/v1/targets', { name: 'db', kind: 'postgres', upstream: upstream.url, policy: { rules: opts.rules } })
  if (created.status !== 201) throw new Error(JSON.stringify(created.body))
  const root = await rootToken(b, client)
  const token = async (actor: string, scope: string, from = root): Promise<string> => {
    const r = await exchangeToken(b, from, { actor, scope })
    if (r.status !== 200) throw new Error(JSON.stringify(r.body))
    return r.body.access_token
  }
  return { b, gw, upstream, direct, client, root, token }
}
