import { connect, createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import t from 'tap'
import type { AccessClaims } from '../../src/lineage/claims.js'
import { LiveStatus, type PrincipalState } from '../../src/lineage/live-status.js'
import { ConnectionIndex } from '../../src/gateway/http/connections.js'
import { SessionIndex, type LiveSession } from '../../src/gateway/pg/sessions.js'

// The wall clock of these tests: it moves only when a test says so, as a host's clock steps
// while the gateway's timers, which run on another clock, do not see it.
const start = Date.UTC(2026, 10, 26, 12)
const clock = { ms: start, now () { return this.ms } }
const alice = (endsAt: number | null): PrincipalState => ({ id: 'alice', kind: 'human', status: 'active', sponsor: null, endsAt, cutOffAt: null })
const claims = { jti: 'child', exp: start / 1000 + 3600, lineage: { chain: ['root'], principals: ['alice'], depth: 1, rooted_at: start - 1000 } } as unknown as AccessClaims
const delay = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

function liveView (endsAt: number | null): LiveStatus {
  const v = new LiveStatus()
  v.reset({ seq: 1, principals: [alice(endsAt)], revoked: [] })
  return v
}

t.test('a PostgreSQL session ends at its chain\'s end by the wall clock, though its timer has not run', async (t) => {
  clock.ms = start
  const index = new SessionIndex(liveView(start + 3_600_000), clock, 20)
  t.teardown(() => { index.close() })
  const killed: string[] = []
  const s: LiveSession = { claims, kill: (reason) => { killed.push(reason) } }
  const remove = index.add(s)
  await delay(60)
  t.same(killed, [], 'alive before its end')
  clock.ms = start + 3_600_001 // the clock stepped an hour on; the hour's timer is far off
  await delay(80)
  t.match(killed, [/^chain cut off: principal alice reached its end date/])
  remove()
})

t.test('a session whose contract end date was put off is not ended at the old one', async (t) => {
  clock.ms = start
  const view = liveView(start + 30)
  const index = new SessionIndex(view, clock, 1000)
  t.teardown(() => { index.close() })
  const killed: string[] = []
  const remove = index.add({ claims, kill: (reason) => { killed.push(reason) } })
  view.apply({ seq: 2, kind: 'principal', data: { id: 'alice', kind: 'human', status: 'active', sponsor: null, ends_at: start + 3_600_000, cut_off_at: null } })
  clock.ms = start + 100
  await delay(100)
  t.same(killed, [], 'its timer ran, found the chain live and waits for the new end')
  clock.ms = start + 3_600_000
  await delay(1100)
  t.equal(killed.length, 1, 'and it ends at the new one')
  remove()
})

t.test('a connection is closed at its chain\'s end by the wall clock, though its timer has not run', async (t) => {
  clock.ms = start
  const index = new ConnectionIndex(liveView(start + 3_600_000), clock, 20)
  t.teardown(() => { index.close() })
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const accepted = once(server, 'connection')
  const client = connect((server.address() as { port: number }).port, '127.0.0.1')
  const [socket] = await accepted as [Socket]
  const closed = once(client, 'close')
  index.release(index.track(socket, claims))
  await delay(60)
  t.equal(socket.destroyed, false, 'open before its end')
  clock.ms = start + 3_600_001
  await closed
  t.equal(socket.destroyed, true)
})
