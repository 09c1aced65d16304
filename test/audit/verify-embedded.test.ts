import t from 'tap'
import { createAuditLog } from '../../src/audit/audit-log.js'
import type { AuditEvent } from '../../src/audit/record.js'
import { verifyAudit } from '../../src/audit/verify.js'
import { silentLogger } from '../../src/log.js'
import { openTestDb } from '../helpers/db.js'

const event = (i: number): AuditEvent => ({
  at: 1_795_000_000_000 + i, kind: 'gateway.http', decision: 'deny', status: 401, target: 'api', method: 'GET', path: `/x/${i}`,
  jti: `j${i}`, root: 'r', principals: ['alice', 'ci'], actors: ['b'], detail: { reason: 'bad token' }
})

t.test('embedded, verifying a long trail lets the process\'s other queries run between its pages, and checks what writers add meanwhile', async (t) => {
  const { db, close } = await openTestDb('pglite')
  t.teardown(close)
  const log = createAuditLog(db, silentLogger(), { maxBatch: 500 })
  for (let i = 0; i < 3000; i++) log.record(event(i))
  await log.flush()

  const started = performance.now()
  let verified = 0
  const verifying = verifyAudit(db, { pageSize: 50 }).then((r) => { verified = performance.now() - started; return r })
  await new Promise((resolve) => setTimeout(resolve, 5))
  // What the change-log poll does while the verification runs: one query, which a transaction
  // over the whole trail would hold up to its end (PGlite is one connection).
  let queried = 0
  const other = db.query('SELECT 1').then(() => { queried = performance.now() - started })
  for (let i = 3000; i < 3100; i++) log.record(event(i))
  await log.flush()
  const [result] = await Promise.all([verifying, other])
  t.ok(queried < verified / 2, `the query waited ${Math.round(queried)} ms of the verification's ${Math.round(verified)} ms`)
  t.match(result, { ok: true }, 'records added meanwhile are checked with the head, not taken for a broken chain')
  t.ok(result.records >= 3000)
  await log.stop()
  t.match(await verifyAudit(db), { ok: true, records: 3100 })
})
