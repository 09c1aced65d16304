import { createServer, type AddressInfo } from 'node:net'
import pg from 'pg'
import t from 'tap'
import type { AuditEvent } from '../../../src/audit/record.js'
import { rootToken, seedContractor, startTestBroker, type TestBroker } from '../../helpers/broker.js'
import { createTestDatabase, databaseUrl } from '../../helpers/db.js'
import { errorResponse } from '../../../src/gateway/pg/protocol/backend.js'
import { startTestGateway } from '../../helpers/gateway.js'

/** What the broker's audit log is given from now on, as it is given: the stop's caller writes the log next, then closes the database. */
function recordsOf (b: TestBroker): AuditEvent[] {
  const audit = b.broker.ctx.audit
  const recorded: AuditEvent[] = []
  const record = audit.record
  audit.record = (e) => { recorded.push(e); record(e) }
  return recorded
}

if (databaseUrl === undefined) {
  t.comment('DATABASE_URL not set: the PostgreSQL gateway tests (they need a real upstream) are skipped')
} else {
  t.test('a stop ends every open session before it returns: the statement each was running is recorded, and its client is told', async (t) => {
    const b = await startTestBroker()
    const gw = await startTestGateway(b)
    const upstream = await createTestDatabase()
    const direct = new pg.Client({ connectionString: upstream.url })
    await direct.connect()
    t.teardown(async () => {
      await direct.end()
      await new Promise<void>((resolve) => gw.gateway.httpServer.close(() => resolve()))
      await b.close()
      await upstream.drop()
    })
    const client = await seedContractor(b, ['db:*'])
    t.equal((await b.admin('POST', '/v1/targets', { name: 'db', kind: 'postgres', upstream: upstream.url })).status, 201)
    const token = await rootToken(b, client)
    const recorded = recordsOf(b)

    const c = new pg.Client({ host: '127.0.0.1', port: gw.pgPort, user: 'agent', password: token, database: 'db' })
    c.on('error', () => {})
    await c.connect()
    const running = c.query("SELECT 'at the stop', pg_sleep(30)").then(() => undefined, (err: { code?: string }) => err)
    for (let i = 0; i < 250; i++) {
      const { rows } = await direct.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT ''at the stop'', pg_sleep(30)'")
      if (rows[0].n > 0) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }

    await gw.gateway.stop()
    t.match(recorded.filter((e) => e.path === "SELECT 'at the stop', pg_sleep(30)"), [{ kind: 'gateway.pg', decision: 'allow', method: 'read', detail: { error: /./ } }], 'the running statement is recorded by the time the stop returns')
    t.match(await running, { code: '57P01' }, 'the client is told the gateway is stopping, as PostgreSQL tells it at a shutdown')
  })

  t.test('a stop waits for a login under way, so that how it ended is recorded by the time the stop returns', async (t) => {
    const b = await startTestBroker()
    const gw = await startTestGateway(b)
    // An upstream that takes a second to refuse the gateway's login.
    let asked: () => void = () => {}
    const loginUnderWay = new Promise<void>((resolve) => { asked = resolve })
    const slow = createServer((s) => {
      s.once('data', () => {
        asked()
        setTimeout(() => { s.end(errorResponse({ severity: 'FATAL', code: '28P01', message: 'password authentication failed' })) }, 1000)
      })
      s.on('error', () => {})
    })
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve))
    t.teardown(async () => {
      slow.close()
      await new Promise<void>((resolve) => gw.gateway.httpServer.close(() => resolve()))
      await b.close()
    })
    const client = await seedContractor(b, ['slow:*'])
    t.equal((await b.admin('POST', '/v1/targets', { name: 'slow', kind: 'postgres', upstream: `postgres://app:pw@127.0.0.1:${(slow.address() as AddressInfo).port}/app?sslmode=disable` })).status, 201)
    const token = await rootToken(b, client)
    const recorded = recordsOf(b)
    const c = new pg.Client({ host: '127.0.0.1', port: gw.pgPort, user: 'agent', password: token, database: 'slow' })
    c.on('error', () => {})
    const login = c.connect().then(() => undefined, (err: Error) => err)
    await loginUnderWay
    await gw.gateway.stop()
    t.match(recorded.filter((e) => e.target === 'slow'), [{ kind: 'gateway.pg', decision: 'deny', detail: { event: 'login', reason: /refused the gateway's login/ } }], 'the login\'s end is recorded')
    t.ok(await login instanceof Error, 'and the client refused')
  })
}
