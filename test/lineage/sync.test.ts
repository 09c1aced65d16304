import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { createBroker, type Broker } from '../../src/broker/broker.js'
import { revokeSubtree } from '../../src/broker/revoke.js'
import { createPrincipal } from '../../src/broker/principals.js'
import { setStatus } from '../../src/broker/set-status.js'
import { systemClock } from '../../src/clock.js'
import { createLogger, silentLogger } from '../../src/log.js'
import { LiveStatus } from '../../src/lineage/live-status.js'
import { createViewSync } from '../../src/lineage/sync.js'
import { appendChange } from '../../src/lineage/changes.js'
import { openPostgres } from '../../src/storage/postgres.js'
import { TestClock } from '../helpers/clock.js'
import { createTestDatabase, databaseUrl, defaultBackend, openTestDb } from '../helpers/db.js'
import { migrate } from '../../src/storage/migrate.js'
import type { Db } from '../../src/storage/db.js'

async function until (cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return cond()
}

/** Two brokers on one fresh database, as two processes; a long poll, so only NOTIFY delivers changes in time. */
async function twoBrokers (t: Test): Promise<{ a: Broker, b: Broker, clock: TestClock, dbA: Db }> {
  const fresh = await createTestDatabase()
  const dbA = openPostgres(fresh.url)
  const dbB = openPostgres(fresh.url)
  await migrate(dbA)
  const clock = new TestClock()
  const opts = { clock, log: silentLogger(), issuer: 'http://issuer.test', maxDepth: 8, rootTtl: 3600, adminToken: 'ladm_sync-test-admin-token-000', pollMs: 60_000 }
  const a = await createBroker({ ...opts, db: dbA })
  const b = await createBroker({ ...opts, db: dbB })
  t.teardown(async () => {
    await a.stop(); await b.stop(); await dbA.close(); await dbB.close(); await fresh.drop()
  })
  return { a, b, clock, dbA }
}

if (databaseUrl === undefined) {
  t.comment('DATABASE_URL not set: the cross-process feed test is skipped')
} else {
  t.test('a cut-off made by one broker reaches another broker on the same database through NOTIFY', async (t) => {
    const { a, b, clock } = await twoBrokers(t)
    await createPrincipal(a.ctx, { id: 'alice', kind: 'human', grants: ['db:read'] })
    t.ok(await until(() => b.ctx.view.principal('alice') !== undefined, 3000), 'B hears of the new principal')

    await revokeSubtree(a.ctx, 'some-jti', Math.floor(clock.now() / 1000) + 60, 'admin')
    t.ok(await until(() => b.ctx.view.isRevoked('some-jti'), 3000), 'B applies the revocation')

    await setStatus(a.ctx, 'alice', 'offboarded')
    t.ok(await until(() => b.ctx.view.principal('alice')?.status === 'offboarded', 3000), 'B applies the offboarding')
    t.equal(a.ctx.view.seq, b.ctx.view.seq)
  })

  t.test('a change-log row no process can apply is stepped over through a reload, and later changes still arrive', async (t) => {
    const { a, b, clock, dbA } = await twoBrokers(t)
    await dbA.tx(async (q) => {
      const { rows } = await q.query<{ seq: number }>('UPDATE change_head SET seq = seq + 1 WHERE id = 1 RETURNING seq')
      await q.query("INSERT INTO changes (seq, kind, data) VALUES ($1, 'token.revoked', 'null')", [rows[0].seq])
    })
    await b.ctx.sync.catchUp()
    await revokeSubtree(a.ctx, 'later-jti', Math.floor(clock.now() / 1000) + 60, 'admin')
    t.ok(await until(() => b.ctx.view.isRevoked('later-jti'), 3000), 'B applies the revocation after the bad row')
  })

  t.test('a LISTEN connection that keeps being cut is replaced by one connection each time, and closed at the end', async (t) => {
    const { createPgFeed } = await import('../../src/lineage/pg-feed.js')
    const { default: pg } = await import('pg')
    const fresh = await createTestDatabase()
    const db = openPostgres(fresh.url)
    const admin = new pg.Client({ connectionString: databaseUrl })
    await admin.connect()
    t.teardown(async () => { await admin.end(); await db.close(); await fresh.drop() })
    const name = new URL(fresh.url).pathname.slice(1)
    const listening = async (): Promise<number[]> => (await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'", [name])).rows.map((r) => r.pid)
    /** The LISTEN connections once one other than `gone` is up (or after 5 s). */
    const settled = async (gone: number): Promise<number[]> => {
      let pids = await listening()
      for (let w = 0; w < 100 && !(pids.length >= 1 && !pids.includes(gone)); w++) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        pids = await listening()
      }
      await new Promise((resolve) => setTimeout(resolve, 600)) // past the reconnect delay: a second one would be up by now
      return await listening()
    }
    let changes = 0
    const feed = createPgFeed(db as Parameters<typeof createPgFeed>[0], silentLogger())
    await feed.subscribe('x', { onChange: () => { changes++ }, onConnected: () => {}, onConfirm: () => {} })
    let last = -1
    for (let i = 0; i < 4; i++) {
      const pids = await settled(last)
      t.equal(pids.length, 1, `round ${i}: one LISTEN connection`)
      last = pids[0]
      await admin.query('SELECT pg_terminate_backend($1)', [last])
    }
    t.equal((await settled(last)).length, 1)
    await db.query("SELECT pg_notify('lineage_changes', '1')")
    t.ok(await until(() => changes > 0, 3000))
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.equal(changes, 1, 'one NOTIFY, heard once')
    await feed.close()
    for (let w = 0; w < 40 && (await listening()).length !== 0; w++) await new Promise((resolve) => setTimeout(resolve, 50))
    t.same(await listening(), [], 'none left after close')
  })
}

t.test('with a LINEAGE_MAX_STALENESS_MS under the one-second poll, a healthy process still proves its view that fresh at every moment', async (t) => {
  const testDb = await openTestDb(defaultBackend)
  t.teardown(testDb.close)
  const sync = createViewSync({ db: testDb.db, view: new LiveStatus(), clock: systemClock, log: silentLogger(), maxStalenessMs: 400 })
  await sync.start()
  t.teardown(sync.stop)
  let oldest = 0
  const end = Date.now() + 2500
  while (Date.now() < end) {
    oldest = Math.max(oldest, Date.now() - sync.freshAt())
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.ok(oldest <= 400, `the view was never older than the limit (at most ${oldest} ms)`)
})

t.test('a database that stops answering the poll is logged once, and its recovery once, not at every poll', async (t) => {
  const testDb = await openTestDb('pglite')
  t.teardown(testDb.close)
  let down = false
  let refused = 0
  const db: Db = { ...testDb.db, kind: 'pglite', listen: undefined, query: async (sql, params) => { if (down) { refused++; throw new Error('connection refused') } return await testDb.db.query(sql, params) } }
  const lines: Array<{ level: number, msg: string }> = []
  const sink = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString())); done() } })
  const sync = createViewSync({ db, view: new LiveStatus(), clock: new TestClock(), log: createLogger('info', sink), maxStalenessMs: 5000, pollMs: 10 })
  await sync.start()
  t.teardown(sync.stop)
  // Waited for by what happened, not by time: a loaded machine runs the polls late.
  const until = async (done: () => boolean): Promise<void> => {
    for (let i = 0; i < 1000 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  down = true
  await until(() => refused >= 5)
  t.ok(refused >= 5, 'several polls failed')
  down = false
  await until(() => lines.some((l) => l.msg === 'catch-up recovered'))
  t.same(lines.map((l) => [l.level, l.msg]), [[40, 'catch-up failed; retrying at every poll'], [30, 'catch-up recovered']])
})

t.test('revocations forgotten while the clock ran ahead are known again once it is set back, before the view counts as fresh', async (t) => {
  const testDb = await openTestDb('pglite')
  t.teardown(testDb.close)
  const clock = new TestClock()
  const view = new LiveStatus()
  const sync = createViewSync({ db: testDb.db, view, clock, log: silentLogger(), maxStalenessMs: 5000, pollMs: 10 })
  await sync.start()
  t.teardown(sync.stop)
  const exp = Math.floor(clock.now() / 1000) + 600
  await testDb.db.tx(async (q) => {
    await q.query("INSERT INTO revocations (jti, exp, revoked_by) VALUES ('leaked', $1, 'admin')", [exp])
    await appendChange(q, { kind: 'token.revoked', data: { jti: 'leaked', exp } })
  })
  await sync.catchUp()
  t.ok(view.isRevoked('leaked'))
  // Stepped an hour ahead (a bad time source): by this clock the token has expired, and the poll forgets its revocation.
  clock.advance(3_600_000)
  await until(() => !view.isRevoked('leaked'), 10_000)
  t.notOk(view.isRevoked('leaked'), 'forgotten while the clock ran ahead')
  // Set right again: the token is unexpired, so its revocation must be known by the time the view is fresh.
  clock.advance(-3_600_000)
  await until(() => clock.now() - sync.freshAt() >= 0, 10_000)
  t.ok(clock.now() - sync.freshAt() >= 0, 'the view was read again after the step back')
  t.ok(view.isRevoked('leaked'), 'the revocation is known again')
})
