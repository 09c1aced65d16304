import pg from 'pg'
import t from 'tap'
import { createAuditLog } from '../../src/audit/audit-log.js'
import { verifyAudit } from '../../src/audit/verify.js'
import { silentLogger } from '../../src/log.js'
import { migrate } from '../../src/storage/migrate.js'
import { openPostgres } from '../../src/storage/postgres.js'
import { createTestDatabase, databaseUrl } from '../helpers/db.js'

t.test('a database whose DateStyle is not ISO reads times back as they were written', { skip: databaseUrl === undefined ? 'DATABASE_URL is not set' : false }, async (t) => {
  const fresh = await createTestDatabase()
  t.teardown(fresh.drop)
  const admin = new pg.Client({ connectionString: fresh.url })
  await admin.connect()
  const name = new URL(fresh.url).pathname.slice(1)
  for (const style of ['SQL, DMY', 'German', 'Postgres, MDY']) {
    await admin.query(`ALTER DATABASE ${name} SET DateStyle = '${style}'`)
    const db = openPostgres(fresh.url, { max: 2 })
    const { rows: [r] } = await db.query<{ at: Date }>("SELECT '2026-11-27T10:00:00.123Z'::timestamptz AS at")
    t.equal(r.at instanceof Date ? r.at.toISOString() : r.at, '2026-11-27T10:00:00.123Z', style)
    await migrate(db)
    const log = createAuditLog(db, silentLogger())
    log.record({ at: Date.parse('2026-11-27T10:00:00.123Z'), kind: 'principal.status', principals: ['alice'], detail: { status: 'offboarded' } })
    await log.stop()
    t.match(await verifyAudit(db), { ok: true }, `${style}: the audit trail verifies`)
    await db.close()
  }
  await admin.end()
})
