import t from 'tap'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createAuditLog } from '../../src/audit/audit-log.js'
import { chainHash, genesisHash, isoTime, type AuditEvent } from '../../src/audit/record.js'
import { queryAudit } from '../../src/audit/query.js'
import { verifyAudit } from '../../src/audit/verify.js'
import { silentLogger } from '../../src/log.js'
import type { Db } from '../../src/storage/db.js'
import { migrate } from '../../src/storage/migrate.js'
import { openPglite } from '../../src/storage/pglite.js'
import { backends, openTestDb } from '../helpers/db.js'

const lineages = [
  { jti: 'j-a', root: 'r-1', principals: ['alice', 'ci'], actors: ['planner', 'worker'] },
  { jti: 'j-b', root: 'r-2', principals: ['bob'], actors: ['worker'] },
  {}
]
const event = (i: number): AuditEvent => ({ at: 1_795_000_000_000 + i, kind: 'gateway.pg', decision: 'allow', target: 'db', method: 'read', path: `SELECT ${i}`, ...lineages[i % 3], detail: { rows: i } })

async function lineageRows (db: Db): Promise<number> {
  return Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_lineages')).rows[0].n)
}

for (const backend of backends) {
  t.test(`audit lineages on ${backend}`, async (t) => {
    const { db, close } = await openTestDb(backend)
    t.teardown(close)

    t.test('records of one lineage share its row, in one writer and across writers, and read back whole', async (t) => {
      for (let w = 0; w < 2; w++) {
        const log = createAuditLog(db, silentLogger(), { maxBatch: 7 })
        // Fresh arrays for each record, as the broker's events bring them.
        for (let i = w * 30; i < w * 30 + 30; i++) log.record(structuredClone(event(i)))
        await log.stop()
      }
      t.equal(await lineageRows(db), 3, 'one row for each of the three lineages, the empty one included')
      t.match(await verifyAudit(db), { ok: true, records: 60 })
      const rows = (await db.query<Record<string, unknown>>('SELECT seq, jti, root, principals, actors FROM audit ORDER BY seq')).rows
      t.same(rows.map((r) => [r.jti, r.root, r.principals, r.actors]), Array.from({ length: 60 }, (_, i) => {
        const l = lineages[i % 3] as Partial<AuditEvent>
        return [l.jti ?? null, l.root ?? null, l.principals ?? [], l.actors ?? []]
      }))
      t.same((await queryAudit(db, { principal: 'bob', limit: '1000' })).events.map((e: any) => e.seq), [59, 56, 53, 50, 47, 44, 41, 38, 35, 32, 29, 26, 23, 20, 17, 14, 11, 8, 5, 2], 'found by principal')
      t.equal((await queryAudit(db, { root: 'r-1', limit: '1000' })).events.length, 20, 'found by root')
      t.equal((await queryAudit(db, { jti: 'j-b', target: 'db', limit: '5' })).events.length, 5, 'found by jti and target')
    })

    t.test('an array of principals changed after a record was queued names the lineage it holds then', async (t) => {
      const before = await lineageRows(db)
      const principals = ['dora']
      const actors = ['x']
      const log = createAuditLog(db, silentLogger())
      log.record({ ...event(200), root: 'r-d', principals, actors })
      await log.flush()
      principals.push('eve')
      actors[0] = 'y'
      log.record({ ...event(201), root: 'r-d', principals, actors })
      await log.stop()
      t.equal(await lineageRows(db), before + 2)
      t.match(await verifyAudit(db), { ok: true })
      t.same((await db.query<{ principals: string[], actors: string[] }>("SELECT principals, actors FROM audit WHERE root = 'r-d' ORDER BY seq")).rows, [{ principals: ['dora'], actors: ['x'] }, { principals: ['dora', 'eve'], actors: ['y'] }])
    })

    t.test('a lineage added in a batch that rolls back is added again when the batch is retried', async (t) => {
      let failCopies = 1
      const failing: Db = Object.create(db, {
        tx: {
          value: async <T>(fn: (q: Parameters<Parameters<Db['tx']>[0]>[0]) => Promise<T>): Promise<T> => await db.tx(async (q) => await fn({
            query: q.query,
            copyIn: async (table, columns, rows) => {
              if (failCopies-- > 0) throw new Error('connection lost')
              await q.copyIn(table, columns, rows)
            }
          }))
        }
      })
      const before = await lineageRows(db)
      const records = (await verifyAudit(db)).records
      const log = createAuditLog(failing, silentLogger())
      log.record({ ...event(100), root: 'r-new', principals: ['carol'], actors: [] })
      await t.rejects(log.flush(), /connection lost/)
      t.equal(await lineageRows(db), before, 'the lineage added went with the transaction')
      await log.flush()
      await log.stop()
      t.equal(await lineageRows(db), before + 1)
      t.match(await verifyAudit(db), { ok: true, records: records + 1 })
      t.same((await queryAudit(db, { principal: 'carol' })).events.map((e: any) => e.seq), [records + 1], 'the record names the lineage that was kept')
    })
  })
}

t.test('records written before lineages had their own table verify after the migration, their lineages shared', async (t) => {
  const all = fileURLToPath(new URL('../../migrations/', import.meta.url))
  const dir = await mkdtemp(join(tmpdir(), 'lineage-migrations-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await cp(all, dir, { recursive: true, filter: (f) => !/013_audit_lineages\.sql$/.test(f) })
  const db = await openPglite(undefined)
  t.teardown(async () => { await db.close() })
  await migrate(db, dir)
  // Records as the writer stored them before: each with its lineage's fields in its own columns.
  let prev = genesisHash
  for (let seq = 1; seq <= 12; seq++) {
    const e = event(seq)
    prev = chainHash(seq, e, prev, isoTime(e.at))
    await db.query(`INSERT INTO audit (seq, at, kind, decision, target, method, path, jti, root, principals, actors, detail, hash)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
    [seq, isoTime(e.at), e.kind, e.decision, e.target, e.method, e.path, e.jti ?? null, e.root ?? null, e.principals ?? [], e.actors ?? [], e.detail, prev])
  }
  await db.query('UPDATE audit_head SET seq = 12, hash = $1', [prev])
  t.same(await migrate(db, all), ['013_audit_lineages'])
  t.match(await verifyAudit(db), { ok: true, records: 12 }, 'the same chain, read with its lineages')
  t.equal(await lineageRows(db), 3)
  const log = createAuditLog(db, silentLogger())
  for (let seq = 13; seq <= 15; seq++) log.record(event(seq))
  await log.stop()
  t.match(await verifyAudit(db), { ok: true, records: 15 })
  t.equal(await lineageRows(db), 3, 'later records name the lineages the migration stored')
})
