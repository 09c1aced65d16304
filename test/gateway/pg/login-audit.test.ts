import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import pg from 'pg'
import t, { type Test } from 'tap'
import { claimsOf, rootToken, seedContractor, startTestBroker, type TestBroker } from '../../helpers/broker.js'
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
  /** A broker, a gateway (its view's freshness given by `freshAt` when set, asked from the gateway's start on) and a target `held` reached through a held relay. */
  async function heldTarget (t: Test, freshAt?: (b: TestBroker) => number): Promise<{ b: TestBroker, gw: Awaited<ReturnType<typeof startTestGateway>>, relay: Awaited<ReturnType<typeof heldRelay>>, token: string, jti: string }> {
    const b = await startTestBroker()
    const gw = await startTestGateway(b, { freshAt: freshAt === undefined ? undefined : () => freshAt(b) })
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
    return { b, gw, relay, token, jti: claimsOf(token).jti }
  }

  const startLogin = (gw: { pgPort: number }, token: string): Promise<unknown> => {
    const c = new pg.Client({ host: '127.0.0.1', port: gw.pgPort, user: 'agent', password: token, database: 'held' })
    c.on('error', () => {})
    return c.connect().then(async () => { await c.end(); return undefined }, (err: { code?: string }) => err)
  }

  const heldEvents = async (b: TestBroker): Promise<Array<Record<string, any>>> => {
    await b.broker.ctx.audit.flush()
    return ((await b.admin('GET', '/v1/audit?target=held')).body as { events: Array<Record<string, any>> }).events
  }

  t.test('a login refused because its chain was cut off while the upstream login ran is recorded, with its lineage', async (t) => {
    const { b, gw, relay, token, jti } = await heldTarget(t)
    const login = startLogin(gw, token)
    await relay.asked
    t.equal((await b.admin('POST', `/v1/tokens/${jti}/revoke`, { reason: 'leaked' })).status, 200)
    relay.release()
    t.match(await login, { code: '28000' }, 'the client is refused')
    t.match(await heldEvents(b), [{ kind: 'gateway.pg', decision: 'deny', jti, root: jti, principals: ['alice', 'ci-nightly'], detail: { event: 'login', reason: /cut off/ } }],
      'the refusal is in the trail, and no allowed login')
  })

  t.test('a login whose gateway can no longer prove its view fresh when the upstream login ends is refused, as one that began so is', async (t) => {
    let freshAt: number | undefined
    const { b, gw, relay, token, jti } = await heldTarget(t, (b) => freshAt ?? b.clock.now())
    const login = startLogin(gw, token)
    await relay.asked
    // The database stopped answering this gateway meanwhile: a cut-off committed since would be unknown to it.
    freshAt = b.clock.now() - 60_000
    relay.release()
    t.match(await login, { code: '57P03' }, 'the client is refused')
    t.match(await heldEvents(b), [{ kind: 'gateway.pg', decision: 'deny', jti, detail: { event: 'login', reason: /live-status view is \d+ ms old/ } }],
      'the refusal is in the trail, and no allowed login')
  })
}
