import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import pg from 'pg'
import t from 'tap'
import { databaseUrl } from '../../helpers/db.js'
import { startPgTarget } from '../../helpers/pg-target.js'

// A session's memory under statements far larger than any real one. In a file of its own: on a
// loaded machine this alone takes minutes, which test/gateway/pg/gateway.test.ts cannot spare.
if (databaseUrl === undefined) {
  t.comment('DATABASE_URL not set: skipped')
} else {
  const { gw, token } = await startPgTarget(t, {
    rules: [
      { effect: 'mask', columns: ['customers.email'], with: 'email' },
      { effect: 'mask', columns: ['*.ssn'], with: 'last4' }
    ]
  })
  const reader = await token('reader', 'db:read')

  t.test('statements naming tens of thousands of tables each do not pile up in a session\'s memory', async (t) => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const heap = (): number => { gc(); return process.memoryUsage().heapUsed }
    const c = new pg.Client({ host: '127.0.0.1', port: gw.pgPort, user: 'agent', password: reader, database: 'db' })
    await c.connect()
    t.teardown(async () => { await c.end() })
    const before = heap()
    for (let k = 0; k < 30; k++) {
      // About 600 KiB of text, well under the statement limit; every run names other tables.
      const sql = `SELECT 1 FROM ${Array.from({ length: 60000 }, (_, i) => `t${i}x${k}`).join(',')}`
      await c.query(sql).catch(() => {})
    }
    // Each classification of such a text holds its 60,000 names (over 2 MB): a session used to keep a thousand of them.
    t.ok(heap() - before < 30 * 1024 * 1024, `heap grew by ${Math.round((heap() - before) / 1048576)} MiB`)
    t.same((await c.query('SELECT 1 AS ok')).rows, [{ ok: 1 }])
  })
}
