import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import pg from 'pg'
import t from 'tap'
import { claimsOf, rootToken, seedContractor, startTestBroker } from '../../helpers/broker.js'
import { createTestDatabase, databaseUrl } from '../../helpers/db.js'
import { startTestGateway } from '../../helpers/gateway.js'

/**
 * A TCP relay to `upstream` that holds what the gateway sends until `release` is called: the
 * gateway's login to the upstream stays under way for as long as a test needs.
 */
async function heldRelay (upstream: URL): Promise<{ port: number, asked: Promise<void>, release: () => void, close: () => void }> {
  let asked: () => void = () => {}
  const askedP = new Promise<void>((resolve) => { asked = resolve })
  let release: () => void = () => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  const sockets: Socket[] = []
  const server = createServer((s) => {
    s.pause()
    sockets.push(s)
    s.on('error', () => {})
    asked()
    void released.then(() => {
      const up = connect(Number(upstream.port || 5432), upstream.hostname)
      sockets.push(up)
      up.on('error', () => s.destroy())
      s.pipe(up).pipe(s)
      s.resume()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    asked: askedP,
    release,
    close: () => { for (const s of sockets) s.destroy(); server.close() }
  }
}

if (databaseUrl === undefined) {
  t.comment('DATABASE_URL not set: the PostgreSQL gateway tests (they need a real upstream) are skipped')
} else {
  t.test('a login refused because its chain was cut off while the upstream login ran is recorded, with its lineage', async (t) => {
    const b = await startTestBroker()
    const gw = await startTestGateway(b)
    const upstream = await createTestDatabase()
    const relay = await heldRelay(new URL(upstream.url))
    t.teardown(async () => {
      relay.close()
      await gw.close()
      await b.close()
      await upstream.drop()
    })
    const via = new URL(upstream.url)
    via.host = `127.0.0.1:${relay.port}`
    via.searchParams.set('sslmode', 'disable')
    const client = await seedContractor(b, ['held:*'])
    t.equal((await b.admin('POST', '/v1/targets', { name: 'held', kind: 'postgres', upstream: via.toString() })).status, 201)
    const token = await rootToken(b, client)
    const { jti } = claimsOf(token)

    const c = new pg.Client({ host: '127.0.0.1', port: gw.pgPort, user: 'agent', password: token, database: 'held' })
    c.on('error', () => {})
    const login = c.connect().then(() => undefined, (err: { code?: string }) => err)
    await relay.asked
    t.equal((await b.admin('POST', `/v1/tokens/${jti}/revoke`, { reason: 'leaked' })).status, 200)
    relay.release()
    t.match(await login, { code: '28000' }, 'the client is refused')

    await b.broker.ctx.audit.flush()
    const { events } = (await b.admin('GET', '/v1/audit?target=held')).body as { events: Array<Record<string, any>> }
    t.match(events, [{ kind: 'gateway.pg', decision: 'deny', jti, root: jti, principals: ['alice', 'ci-nightly'], detail: { event: 'login', reason: /cut off/ } }],
      'the refusal is in the trail, and no allowed login')
  })
}
