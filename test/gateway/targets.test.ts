import t from 'tap'
import { parseTarget, TargetDirectory } from '../../src/gateway/targets.js'
import type { Queryable } from '../../src/storage/db.js'

/** A database whose answers the test releases one by one, in any order. */
function heldDb (): { db: Queryable, answer: (i: number, rows: unknown[]) => void, asked: () => number } {
  const waiting: Array<(rows: unknown[]) => void> = []
  const db = { query: async () => await new Promise((resolve) => { waiting.push((rows) => resolve({ rows, rowCount: rows.length })) }) } as unknown as Queryable
  return { db, answer: (i, rows) => waiting[i](rows), asked: () => waiting.length }
}

const row = (name: string, version: string): Record<string, unknown> => ({
  name, kind: 'http', upstream: `http://127.0.0.1:1/${version}`, headers: {}, policy: { rules: [] }, audit_statements: 'text', created_at: new Date(), updated_at: new Date()
})
const settle = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

t.test('two reloads answered out of order leave the newer definition, not the one answered last', async (t) => {
  const { db, answer } = heldDb()
  const dir = new TargetDirectory(db)
  const first = dir.reload('api')
  const second = dir.reload('api')
  answer(1, [row('api', 'v2')])
  await second
  answer(0, [row('api', 'v1')])
  await first
  t.equal(dir.get('api')?.upstream.pathname, '/v2')
})

t.test('a deletion read after a save is not undone by the save\'s read answering last', async (t) => {
  const { db, answer } = heldDb()
  const dir = new TargetDirectory(db)
  const saved = dir.reload('api')
  const deleted = dir.reload('api')
  answer(1, [])
  await deleted
  answer(0, [row('api', 'v1')])
  await saved
  t.equal(dir.get('api'), undefined)
})

t.test('a whole load answered after a newer reload keeps the reload\'s answer, and drops what it no longer finds', async (t) => {
  const { db, answer } = heldDb()
  const dir = new TargetDirectory(db)
  const initial = dir.load()
  answer(0, [row('api', 'v1'), row('old', 'v1')])
  await initial
  const load = dir.load()
  const reload = dir.reload('api')
  answer(2, [row('api', 'v3')])
  await reload
  answer(1, [row('api', 'v2')])
  await load
  await settle()
  t.equal(dir.get('api')?.upstream.pathname, '/v3', 'the reload started after the load is newer')
  t.equal(dir.get('old'), undefined, 'a target the load did not find is gone')
  const older = dir.load()
  const newer = dir.load()
  answer(4, [row('api', 'v4')])
  await newer
  answer(3, [row('api', 'v3'), row('old', 'v1')])
  await older
  t.equal(dir.get('api')?.upstream.pathname, '/v4')
  t.equal(dir.get('old'), undefined, 'an older load answering last brings nothing back')
})

t.test('a read that started before a whole load which did not find the name brings nothing back', async (t) => {
  const { db, answer } = heldDb()
  const dir = new TargetDirectory(db)
  const created = dir.reload('api')
  const load = dir.load()
  answer(1, [])
  await load
  answer(0, [row('api', 'v1')])
  await created
  t.equal(dir.get('api'), undefined, 'the load is newer: api was deleted before it read')
})

t.test('a target saved while a gateway loads its targets at start is taken, its change heard', async (t) => {
  const { startTestBroker } = await import('../helpers/broker.js')
  const { startTestGateway } = await import('../helpers/gateway.js')
  const b = await startTestBroker({ backend: 'pglite' })
  t.teardown(() => b.close())
  const ctx = b.broker.ctx
  let loading = true
  // The whole load reads before the save; the view applies the save's change before the load answers.
  const db = {
    ...ctx.db,
    query: async (sql: string, params?: unknown[]) => {
      const r = await ctx.db.query(sql, params)
      if (loading && /FROM targets$/.test(sql.trim())) {
        loading = false
        // Written without a change-log entry: the one change the gateway can hear of is the one applied here.
        await ctx.db.query(`INSERT INTO targets (name, kind, upstream, headers, policy, audit_statements) VALUES ('late', 'http', 'http://127.0.0.1:1/', '{}', '{"rules":[]}', 'text')`)
        ctx.view.apply({ seq: ctx.view.seq, kind: 'target', data: { name: 'late' } })
      }
      return r
    }
  } as typeof ctx.db
  const gw = await startTestGateway(b, { db })
  t.teardown(() => gw.close())
  for (let i = 0; i < 50 && gw.gateway.targets.get('late') === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(gw.gateway.targets.get('late'), 'the gateway holds the target saved during its load')
})

t.test('a target whose reload fails (the database blinked) is read again until it is taken', async (t) => {
  const { startTestBroker } = await import('../helpers/broker.js')
  const { startTestGateway } = await import('../helpers/gateway.js')
  const b = await startTestBroker({ backend: 'pglite' })
  t.teardown(() => b.close())
  const ctx = b.broker.ctx
  let failures = 1
  const db = {
    ...ctx.db,
    query: async (sql: string, params?: unknown[]) => {
      if (failures > 0 && /FROM targets WHERE name = \$1/.test(sql)) { failures--; throw new Error('connection terminated unexpectedly') }
      return await ctx.db.query(sql, params)
    }
  } as typeof ctx.db
  const gw = await startTestGateway(b, { db })
  t.teardown(() => gw.close())
  await ctx.db.query(`INSERT INTO targets (name, kind, upstream, headers, policy, audit_statements) VALUES ('blink', 'http', 'http://127.0.0.1:1/', '{}', '{"rules":[]}', 'text')`)
  ctx.view.apply({ seq: ctx.view.seq, kind: 'target', data: { name: 'blink' } })
  for (let i = 0; i < 150 && gw.gateway.targets.get('blink') === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(failures, 0, 'the first read failed')
  t.ok(gw.gateway.targets.get('blink'), 'the gateway holds the target once a read succeeds')
})

t.test('a postgres upstream whose password is not valid percent-encoding is refused when the target is made, without echoing it', async (t) => {
  for (const upstream of ['postgres://app:Pass100%Word@db.internal/wh', 'postgres://app%zz:pw@db.internal/wh', 'postgres://app:pw@db.internal/w%h']) {
    let caught: unknown
    try { parseTarget('wh', { kind: 'postgres', upstream }) } catch (err) { caught = err }
    t.match(caught, { name: 'InvalidInput', status: 400, message: /percent-encoding/ }, upstream)
    t.notMatch(String((caught as Error | undefined)?.message), /Pass100/, 'the password is not in the refusal')
  }
  t.equal(parseTarget('wh', { kind: 'postgres', upstream: 'postgres://app:Pass100%25Word@db.internal/wh' }).upstream.password, 'Pass100%25Word')
})
