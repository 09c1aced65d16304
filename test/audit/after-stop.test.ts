import t from 'tap'
import pino from 'pino'
import { createAuditLog } from '../../src/audit/audit-log.js'
import { verifyAudit } from '../../src/audit/verify.js'
import { defaultBackend, openTestDb } from '../helpers/db.js'

t.test('a record made after the stop\'s last write is reported lost in the log, not queued where nothing writes it', async (t) => {
  const { db, close } = await openTestDb(defaultBackend)
  t.teardown(close)
  const lines: Array<Record<string, unknown>> = []
  const log = createAuditLog(db, pino({ level: 'error' }, { write: (line: string) => { lines.push(JSON.parse(line)) } }), { intervalMs: 60_000 })
  log.record({ at: 1_795_000_000_000, kind: 'token.revoked', jti: 'before-the-stop', principals: [] })
  await log.stop()
  log.record({ at: 1_795_000_000_001, kind: 'principal.status', principals: ['frank'], detail: { status: 'offboarded' } })
  t.same(log.backlog(), { queued: 0, dropped: 0, failing: false })
  t.match(lines, [{ msg: 'audit record made after the audit log stopped; it is lost', kind: 'principal.status', principals: ['frank'] }])
  t.match(await verifyAudit(db), { ok: true, records: 1 }, 'what came before the stop is written')
})
