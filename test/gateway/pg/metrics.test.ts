import pg from 'pg'
import t from 'tap'
import { exchangeToken, rootToken, seedContractor, startTestBroker } from '../../helpers/broker.js'
import { createTestDatabase, databaseUrl } from '../../helpers/db.js'
import { startTestGateway } from '../../helpers/gateway.js'

if (databaseUrl === undefined) {
  t.comment('DATABASE_URL not set: the PostgreSQL gateway tests (they need a real upstream) are skipped')
} else {
  const b = await startTestBroker()
  const gw = await startTestGateway(b)
  const upstream = await createTestDatabase()
  t.teardown(async () => {
    await gw.close()
    await b.close()
    await upstream.drop()
  })
  const client = await seedContractor(b, ['db:*'])
  const created = await b.admin('POST', '/v1/targets', { name: 'db', kind: 'postgres', upstream: upstream.url })
  if (created.status !== 201) throw new Error(JSON.stringify(created.body))
  const reader = (await exchangeToken(b, await rootToken(b, client), { actor: 'reader', scope: 'db:read' })).body.access_token as string
  const connection = (database: string): pg.ClientConfig => ({ host: '127.0.0.1', port: gw.pgPort, user: 'agent', password: reader, database })
  const metric = async (series: string): Promise<number | undefined> => {
    const text = await (await fetch(`${gw.url}/_lineage/metrics`)).text()
    const line = text.split('\n').find((l) => l.startsWith(`${series} `))
    return line === undefined ? undefined : Number(line.slice(series.length + 1))
  }

  t.test('the PostgreSQL gateway counts its sessions, their statements by decision, and logins to no target', async (t) => {
    const nowhere = new pg.Client(connection('nowhere'))
    await t.rejects(nowhere.connect(), { code: '3D000' })
    t.equal(await metric('lineage_gateway_requests_total{target="(none)",decision="deny"}'), 1, 'a login to a database that is no target is a refusal')

    const c = new pg.Client(connection('db'))
    await c.connect()
    t.equal(await metric('lineage_gateway_requests_total{target="db",decision="allow"}'), 1)
    t.equal(await metric('lineage_gateway_pg_sessions{target="db"}'), 1, 'one session open')
    await c.query('SELECT 1')
    await c.query('SELECT 2')
    await t.rejects(c.query('CREATE TABLE t (x int)'), { code: '42501' })
    t.equal(await metric('lineage_gateway_pg_statements_total{target="db",decision="allow"}'), 2)
    t.equal(await metric('lineage_gateway_pg_statements_total{target="db",decision="deny"}'), 1)
    await c.end()
    for (let i = 0; i < 100 && await metric('lineage_gateway_pg_sessions{target="db"}') !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    t.equal(await metric('lineage_gateway_pg_sessions{target="db"}'), 0, 'none once it ended')
  })
}
