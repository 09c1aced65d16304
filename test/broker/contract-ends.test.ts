import t from 'tap'
import { createBroker } from '../../src/broker/broker.js'
import pino from 'pino'
import { recordContractEnds, watchContractEnds } from '../../src/broker/contract-ends.js'
import { silentLogger } from '../../src/log.js'
import { adminToken, startTestBroker } from '../helpers/broker.js'

const b = await startTestBroker()
t.teardown(b.close)

async function statusRecords (id: string): Promise<Array<{ detail: Record<string, unknown> }>> {
  await b.broker.ctx.audit.flush()
  const r = await b.admin('GET', `/v1/audit?principal=${id}&limit=1000`)
  return r.body.events.filter((e: { kind: string }) => e.kind === 'principal.status')
}

const waitFor = async <T>(what: () => Promise<T[]>, n: number): Promise<T[]> => {
  const until = Date.now() + 10_000
  for (;;) {
    const got = await what()
    if (got.length >= n || Date.now() > until) return got
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

t.test('a contract end is recorded as an offboarding, once, by the broker on its own', async (t) => {
  const ends = new Date(b.clock.now() + 60_000).toISOString()
  t.equal((await b.admin('POST', '/v1/principals', { id: 'carl', kind: 'human', ends_at: ends, grants: ['api:read'] })).status, 201)
  t.equal((await b.admin('POST', '/v1/principals', { id: 'carl-ci', kind: 'service', sponsor: 'carl', grants: ['api:read'] })).status, 201)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.same(await statusRecords('carl'), [], 'nothing before the end')

  b.clock.advance(61_000)
  const records = await waitFor(async () => await statusRecords('carl'), 1)
  t.equal(records.length, 1, 'recorded within a few seconds of the end, with no webhook')
  t.match(records[0], { principals: ['carl'], detail: { status: 'offboarded', reason: `contract ended ${ends}`, source: 'ends_at' } })
  t.match((await b.admin('GET', '/v1/principals/carl')).body, { status: 'offboarded', ends_at: ends })
  const service = await b.admin('GET', '/v1/principals/carl-ci')
  t.same(service.body.usable_scopes, [], 'its service lost its sponsor')

  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal(await recordContractEnds(b.broker.ctx), 0, 'found no more')
  t.equal((await statusRecords('carl')).length, 1, 'and recorded no second time')
})

t.test('brokers sharing a database record one end once', async (t) => {
  const other = await createBroker({ db: b.testDb.db, clock: b.clock, log: silentLogger(), issuer: b.url, maxDepth: 8, rootTtl: 3600, adminToken, audit: b.broker.ctx.audit, contractEndsMs: 3_600_000 })
  t.teardown(other.stop)
  for (const id of ['dora', 'eli', 'fay']) await b.admin('POST', '/v1/principals', { id, kind: 'human', ends_at: new Date(b.clock.now() + 1000).toISOString() })
  b.clock.advance(2000)
  const found = await Promise.all([recordContractEnds(b.broker.ctx), recordContractEnds(other.ctx), recordContractEnds(b.broker.ctx)])
  t.ok(found.some((n) => n > 0))
  for (const id of ['dora', 'eli', 'fay']) t.equal((await statusRecords(id)).length, 1, id)
})

t.test('a human reinstated after the end is not offboarded by it again', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'gus', kind: 'human', ends_at: new Date(b.clock.now() + 1000).toISOString() })
  b.clock.advance(2000)
  await recordContractEnds(b.broker.ctx)
  t.equal((await b.admin('POST', '/v1/principals/gus/reinstate', {})).status, 200)
  await recordContractEnds(b.broker.ctx)
  t.same((await statusRecords('gus')).map((r) => r.detail.status), ['active', 'offboarded'], 'the end, then the reinstatement (newest first), nothing more')
  t.equal((await b.admin('GET', '/v1/principals/gus')).body.status, 'offboarded', 'and it still counts as ended by its date')
})

t.test('a human with no end, or one still to come, is left alone', async (t) => {
  await b.admin('POST', '/v1/principals', { id: 'hal', kind: 'human' })
  await b.admin('POST', '/v1/principals', { id: 'ivy', kind: 'human', ends_at: new Date(b.clock.now() + 86_400_000).toISOString() })
  await recordContractEnds(b.broker.ctx)
  t.same(await statusRecords('hal'), [])
  t.same(await statusRecords('ivy'), [])
  t.equal((await b.admin('GET', '/v1/principals/ivy')).body.status, 'active')
})

t.test('a database that fails every look is logged when the failures start and when they end, not at every look', async (t) => {
  const lines: Array<{ msg: string }> = []
  const log = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line)) } })
  let down = true
  const db = { ...b.broker.ctx.db, query: async (sql: string, params?: unknown[]) => { if (down) throw new Error('connection refused'); return await b.broker.ctx.db.query(sql, params) } } as typeof b.broker.ctx.db
  const watch = watchContractEnds({ ...b.broker.ctx, db, log }, 20)
  await new Promise((resolve) => setTimeout(resolve, 200))
  down = false
  await new Promise((resolve) => setTimeout(resolve, 100))
  await watch.stop()
  t.same(lines.map((l) => l.msg), ['recording contract ends failed; trying again every look', 'recording contract ends recovered'])
})
