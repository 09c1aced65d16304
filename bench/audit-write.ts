/**
 * `npm run bench:audit-write`: what one audit record costs PostgreSQL, and which part of that
 * is the audit table's indexes. Lineage's own writer (`createAuditLog`, its hash chain and one
 * `COPY` per batch of 250) writes `BENCH_RECORDS` (default 50,000) records like those of
 * `bench:gateway-pg` (a `gateway.pg` statement by a depth-3 token) into a freshly migrated
 * database, once with the records' table as migrations leave it (primary key, `jti`, `target`
 * and `lineage` b-trees; root and principals are indexed once per lineage, in `audit_lineages`)
 * and once each with fewer indexes; the backends' CPU time is read from /proc, the writer's own
 * (this process: hashing, COPY text, the client) from `process.cpuUsage`. Two rounds, in turn.
 * No peer: this measures where a cost lies, it has no target.
 */
import { createAuditLog } from '../src/audit/audit-log.js'
import type { AuditEvent } from '../src/audit/record.js'
import { silentLogger } from '../src/log.js'
import { migrate } from '../src/storage/migrate.js'
import { openPostgres } from '../src/storage/postgres.js'
import { withCleanup } from './lib/cleanup.js'
import { createBenchDatabase, withClient } from './lib/database.js'
import { envInt } from './lib/env.js'
import { machineFacts, serverVersion } from './lib/machine.js'
import { PostgresCpu } from './lib/postgres-cpu.js'

const records = envInt('BENCH_RECORDS', 50_000)
const rounds = envInt('BENCH_ROUNDS', 2)

const indexes = {
  jti: 'CREATE INDEX audit_jti ON audit_records (jti, seq)',
  target: 'CREATE INDEX audit_target ON audit_records (target, seq)',
  records_lineage: 'CREATE INDEX audit_records_lineage ON audit_records (lineage, seq)'
}
const variants: Array<{ name: string, keep: Array<keyof typeof indexes> }> = [
  { name: 'as migrated (all three)', keep: ['jti', 'target', 'records_lineage'] },
  { name: 'without the lineage', keep: ['jti', 'target'] },
  { name: 'only the lineage', keep: ['records_lineage'] },
  { name: 'primary key only', keep: [] }
]

/**
 * Records of one session after another, 1,000 statements each, as the PostgreSQL gateway writes
 * them: a session's records share its lineage's arrays (`auditLineage`).
 */
function events (): AuditEvent[] {
  const out: AuditEvent[] = []
  let lineage = { jti: '', root: '', principals: [] as string[], actors: [] as string[] }
  for (let i = 0; i < records; i++) {
    const session = Math.floor(i / 1000)
    if (i % 1000 === 0) lineage = { jti: `jti-${session}-3`, root: `jti-${session}-0`, principals: ['alice', 'ci-nightly'], actors: ['fetcher', 'worker', 'planner'] }
    out.push({ at: 1_795_000_000_000 + i, kind: 'gateway.pg', decision: 'allow', target: 'bench', method: 'read', path: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;', ...lineage, detail: { rows: 1 } })
  }
  return out
}

await withCleanup(async (defer) => {
  console.log(await machineFacts())
  const db = await createBenchDatabase('audit_bench')
  defer('drop the database', db.drop)
  console.log(`postgres: ${serverVersion(await withClient(db.url, async (c) => (await c.query<{ version: string }>('SELECT version()')).rows[0]))}`)
  const store = openPostgres(db.url, { max: 2 })
  defer('close the pool', store.close)
  await migrate(store)
  console.log(`${records} records a run, written by createAuditLog (batches of 250), ${rounds} rounds\n`)

  const results = new Map<string, Array<{ pg: number, writer: number }>>()
  for (let round = 1; round <= rounds; round++) {
    for (const v of variants) {
      await store.query('TRUNCATE audit_records')
      await store.query("UPDATE audit_head SET seq = 0, hash = repeat('0', 64)")
      for (const name of Object.keys(indexes)) await store.query(`DROP INDEX IF EXISTS audit_${name}`)
      for (const k of v.keep) await store.query(indexes[k])
      await store.query('CHECKPOINT')
      const log = createAuditLog(store, silentLogger(), { intervalMs: 60_000, maxBuffer: records })
      const batch = events()
      const cpu = await PostgresCpu.start([db.name])
      const before = process.cpuUsage()
      for (const e of batch) log.record(e)
      await log.flush()
      const used = process.cpuUsage(before)
      const pg = (await cpu.stop()).get(db.name) ?? 0
      await log.stop()
      const r = { pg: pg * 1000 / records, writer: (used.user + used.system) / records }
      results.set(v.name, [...(results.get(v.name) ?? []), r])
      console.log(`  round ${round} ${v.name}: PostgreSQL ${r.pg.toFixed(1)} µs/record, writer ${r.writer.toFixed(1)} µs/record`)
    }
  }
  console.log('\nbest of each (least PostgreSQL CPU):')
  const full = Math.min(...(results.get(variants[0].name) ?? []).map((r) => r.pg))
  for (const v of variants) {
    const runs = results.get(v.name) ?? []
    const best = runs.reduce((a, b) => (b.pg < a.pg ? b : a))
    console.log(`${v.name.padEnd(24)} PostgreSQL ${best.pg.toFixed(1).padStart(5)} µs/record (${(best.pg / full).toFixed(2)} of as migrated), writer ${best.writer.toFixed(1)} µs/record`)
  }
})
